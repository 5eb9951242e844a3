"""VAEs on FashionMNIST: the post's 2-D latent spaces and how many of 20 dimensions get used.

Trains (or reuses from ``runs/``) the presets of :mod:`pyro_latent.vae.model` and measures on the
10 000 test images (:mod:`pyro_latent.vae.metrics`, :mod:`pyro_latent.study.latent_geometry`).
Profiles: *full*, all 60 000 training images, 20 epochs, seeds ``s, s+1, s+2`` for every preset
and for the latent sizes 10 and 40 of ``small`` (18 VAEs; the 2-D figures show seed ``s``);
*quick*, the first 10 000 images, 3 epochs, one seed for the latent-size sweep and the 2-D VAEs
(10 VAEs, checkpoints under ``runs/quick/``).  Both train with 1 torch thread.  On a 2-core CPU
shared with other jobs the full profile's training took 31 to 48 minutes, the quick one's about a
minute; a second run reuses every checkpoint and only measures (under a minute).  Training is
deterministic on one machine; another CPU (other float kernels) moves the numbers in their last
digits.  The prose is ``experiments/templates/vae_latents.md``.
"""

from __future__ import annotations

import torch

from pyro_latent.core.threads import single_threaded
from pyro_latent.plotting import vae as vplot
from pyro_latent.study import Context, cli, experiment
from pyro_latent.study import latent_geometry as geo
from pyro_latent.study import vae_latents as verdicts
from pyro_latent.study.profiles import TRAINING_PROFILES, study_vaes, training_set
from pyro_latent.vae import get_preset, load_fashion_mnist
from pyro_latent.vae import metrics as m

PROFILES = {
    # epochs and training images: study.profiles.TRAINING_PROFILES (20 / all, 3 / 10 000)
    "full": {"n_seeds": 3, "sweep_seeds": 3, "two_d_seeds": 3},
    "quick": {"n_seeds": 3, "sweep_seeds": 1, "two_d_seeds": 1},
}
PRESETS_20D, PRESETS_2D = ("small", "large"), ("vae2d-a", "vae2d-b")
PRESETS = PRESETS_20D + PRESETS_2D
SWEEP = {"preset": "small", "base": 20, "others": (10, 40)}  # latent sizes of the sweep
POST_ACTIVE = {"small": (5, 6), "large": (9, 10)}  # "usually only 5 (sometimes 6)", "10 (9)"
PATH = (0, 1)  # the decoded path: from the T-shirt/top centroid to the trouser centroid
COLORS = {"small": "tab:blue", "large": "tab:orange", 10: "tab:green", 20: "tab:blue"}
THREADS = 1


def _plan(ctx: Context, profile: dict) -> tuple[list[int], dict, list]:
    """The seeds, each preset's seeds, and the sweep's configurations."""
    seeds = [ctx.seed + i for i in range(profile["n_seeds"])]
    wanted = {n: seeds[: profile["two_d_seeds" if n in PRESETS_2D else "n_seeds"]] for n in PRESETS}
    sizes = [get_preset(SWEEP["preset"]).with_latent_dim(k) for k in SWEEP["others"]]
    return seeds, wanted, sizes


def needed_vaes(ctx: Context) -> dict:
    """Every preset's seeds and the latent-size sweep (trained by the runner beforehand)."""
    profile = PROFILES["quick" if ctx.quick else "full"]
    seeds, wanted, sizes = _plan(ctx, profile)
    requests = [(n, s) for n, ss in wanted.items() for s in ss]
    return {"fashion": requests + [(c, s) for c in sizes for s in seeds[: profile["sweep_seeds"]]]}


@experiment("vae_latents", title="VAEs on FashionMNIST: 2-D latent spaces, active units", order=30,
            vaes=needed_vaes)  # fmt: skip
def run(ctx: Context) -> dict:
    with single_threaded():  # identical numbers whatever the machine; light on 2 cores
        return _run(ctx, PROFILES["quick" if ctx.quick else "full"])


def _run(ctx: Context, profile: dict) -> dict:
    name_of = "quick" if ctx.quick else "full"
    train = training_set(name_of, ctx.data_dir, ctx.download)
    test = load_fashion_mnist(ctx.data_dir, train=False, download=ctx.download)
    seeds, wanted, sizes = _plan(ctx, profile)
    vaes = study_vaes(needed_vaes(ctx)["fashion"], train, name_of, ctx.runs_dir,
                      **ctx.training_options())  # fmt: skip

    runs, shown = {}, {}  # per preset, the measurements of each seed; the VAEs of seed ctx.seed
    for name, name_seeds in wanted.items():
        runs[name] = []
        for seed in name_seeds:
            vae = vaes[f"{name}-{seed}"]
            r = geo.measure(vae, test.images, test.labels, seed=seed)
            runs[name].append({"seed": seed, **r, "train_elbo": vae.history_})
            shown.setdefault(name, vae)
    sweep = {SWEEP["base"]: runs[SWEEP["preset"]]}
    for config in sizes:
        sweep[config.latent_dim] = [
            {"seed": s, **m.summarize(vaes[f"{config.name}-{s}"], test.images, seed=s)}
            for s in seeds[: profile["sweep_seeds"]]
        ]
    encodings = {n: m.encode_dataset(vae, test.images) for n, vae in shown.items()}
    paths = {
        n: geo.class_path(shown[n], encodings[n].loc, test.labels, test.images, test.classes, *PATH)
        for n in PRESETS_2D
    }
    _draw(ctx, test, runs, dict(sorted(sweep.items())), shown, encodings, paths)
    return {
        "profile": {
            **profile,
            "epochs": TRAINING_PROFILES[name_of]["epochs"],
            "train_limit": TRAINING_PROFILES[name_of]["train_limit"],
            "n_train": len(train),
            "n_test": len(test),
            "seeds": seeds,
            "threads": THREADS,
        },
        "figure_seed": ctx.seed,
        "presets": [get_preset(n).to_dict() for n in runs],
        "presets_20d": list(PRESETS_20D),
        "runs": runs,
        "two_d": geo.two_d_summary(
            {n: runs[n] for n in PRESETS_2D},
            [{"preset": n, "seed": ctx.seed, **path} for n, (_, path) in paths.items()],
        ),
        "activity": verdicts.activity_summary(runs, POST_ACTIVE, smaller="small", larger="large"),
        "latent_sweep": {
            "preset": SWEEP["preset"],
            **verdicts.latent_size_summary(sweep, base=SWEEP["base"], larger=max(SWEEP["others"])),
            "runs": {k: sweep[k] for k in SWEEP["others"]},
        },
        "correlations": verdicts.correlation_summary(runs, two_d=PRESETS_2D),
    }


def _draw(ctx: Context, test, runs: dict, sweep: dict, shown: dict, enc: dict, paths: dict):
    """The six figures, from the VAEs of seed ``ctx.seed`` and the measurements of every run."""
    classes, labels = test.classes, test.labels
    scatter = [{"loc": enc[n].loc, "labels": labels, "title": f"{n} (test set)"} for n in paths]
    ctx.draw(vplot.plot_latents_2d, "vae2d_latents.png", scatter, classes)
    manifolds = []
    for n in PRESETS_2D:
        start, stop = geo.class_centroids(enc[n].loc, labels)[list(PATH)].tolist()
        marks = {"shoes": runs[n][0]["shoes"]["centroid"], "T-shirt": start, "Trouser": stop}
        manifolds.append({"vae": shown[n], "loc": enc[n].loc, "title": n, "marks": marks})
    ctx.draw(vplot.plot_manifolds, "vae2d_manifold.png", manifolds)
    rows = [
        {"label": n, "images": im, "captions": p["nearest_class"]} for n, (im, p) in paths.items()
    ]
    ctx.draw(vplot.plot_interpolations, "vae2d_tshirt_trouser.png", rows)

    def group(label, color, rs):
        return {"label": label, "color": color, "activities": [r["activity"] for r in rs]}

    groups = [group(n, COLORS[n], runs[n]) for n in PRESETS_20D]
    sizes = [group(f"small, {k}-D", COLORS.get(k, "tab:purple"), rs) for k, rs in sweep.items()]
    ctx.draw(vplot.plot_activity, "active_units.png", groups, sizes, threshold=m.ACTIVE_THRESHOLD)
    picks = [torch.nonzero(labels == c)[:1, 0] for c in range(10)] + [torch.tensor([10, 11])]
    images = test.images[torch.cat(picks)]  # one image per class, and two more
    ctx.draw(vplot.plot_reconstructions, "reconstructions.png", images, list(shown.items()))
    panels = [
        {"label": f"{n} (seed {ctx.seed})", "activity": m.activity(enc[n])}
        | m.correlations(enc[n], seed=ctx.seed)
        for n in PRESETS_20D
    ]
    ctx.draw(
        vplot.plot_correlations, "latent_correlations.png", panels, threshold=m.ACTIVE_THRESHOLD
    )


if __name__ == "__main__":
    cli.run_script("vae_latents")
