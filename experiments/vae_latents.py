"""VAEs on FashionMNIST: the post's 2-D latent spaces and how many of 20 dimensions get used.

Trains (or reuses from ``runs/``) the presets of :mod:`pyro_latent.vae.model` and measures on the
10 000 test images (:mod:`pyro_latent.vae.metrics`, :mod:`pyro_latent.vae.latent_geometry`).
Profiles: *full*, all 60 000 training images, 20 epochs, seeds ``s, s+1, s+2`` for every preset
and for the latent sizes 10 and 40 of ``small`` (18 VAEs; the 2-D figures show seed ``s``);
*quick*, the first 10 000 images, 3 epochs, one seed for the latent-size sweep and the 2-D VAEs
(10 VAEs, checkpoints under ``runs/quick/``).  Both train with 1 torch thread.  On a 2-core CPU
shared with other jobs the full profile's training took about 31 minutes, the quick one's 41 s; a
second run reuses every checkpoint and takes seconds.  The prose is
``experiments/templates/vae_latents.md``.
"""

from __future__ import annotations

import torch

from pyro_latent import cli
from pyro_latent.plotting import vae as vplot
from pyro_latent.study import Context, experiment
from pyro_latent.vae import get_preset, load_fashion_mnist, train_vae
from pyro_latent.vae import latent_geometry as geo
from pyro_latent.vae import metrics as m

PROFILES = {
    "full": {"epochs": 20, "train_limit": None, "n_seeds": 3, "sweep_seeds": 3, "two_d_seeds": 3},
    "quick": {"epochs": 3, "train_limit": 10_000, "n_seeds": 3, "sweep_seeds": 1, "two_d_seeds": 1},
}
PRESETS_20D, PRESETS_2D = ("small", "large"), ("vae2d-a", "vae2d-b")
SWEEP_LATENTS = (10, 20, 40)
POST_ACTIVE = {"small": (5, 6), "large": (9, 10)}  # "usually only 5 (sometimes 6)", "10 (9)"
CORRELATIONS = {
    "means_all": "mean_abs_offdiag_means",
    "samples_all": "mean_abs_offdiag_samples",
    "means_active": "mean_abs_offdiag_means_active",
    "samples_active": "mean_abs_offdiag_samples_active",
}
COLORS = {"small": "tab:blue", "large": "tab:orange", 10: "tab:green", 20: "tab:blue"}
THREADS = 1


@experiment("vae_latents", title="VAEs on FashionMNIST: 2-D latent spaces, active units", order=30)
def run(ctx: Context) -> dict:
    threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)  # identical numbers whatever the machine; light on 2 cores
    try:
        return _run(ctx, PROFILES["quick" if ctx.quick else "full"])
    finally:
        torch.set_num_threads(threads)


def _run(ctx: Context, profile: dict) -> dict:
    train = load_fashion_mnist(ctx.data_dir, train=True, download=ctx.download)
    train = train.subset(profile["train_limit"])
    test = load_fashion_mnist(ctx.data_dir, train=False, download=ctx.download)
    seeds = [ctx.seed + i for i in range(profile["n_seeds"])]
    n_seeds = {"small": 0, "large": 0, "vae2d-a": 0, "vae2d-b": 0}
    n_seeds.update({**dict.fromkeys(PRESETS_20D, profile["n_seeds"])})
    n_seeds.update({**dict.fromkeys(PRESETS_2D, profile["two_d_seeds"])})

    def fit(config, seed: int):
        runs_dir = ctx.runs_dir / "quick" if ctx.quick else ctx.runs_dir
        return train_vae(
            config, train, profile["epochs"], seed, ctx.device, runs_dir, resume=True
        )

    runs, shown = {}, {}  # per preset, the measurements of each seed; the VAEs of seed ctx.seed
    for name in PRESETS_20D + PRESETS_2D:
        runs[name] = []
        for seed in seeds[: n_seeds[name]]:
            vae = fit(get_preset(name), seed)
            enc = m.encode_dataset(vae, test.images)
            r = {"seed": seed, **m.summarize(vae, test.images, seed=seed)}
            if name in PRESETS_2D:
                r["shoes"] = geo.shoe_region(enc.loc, test.labels)
            r["kl_split"] = m.kl_split(r["kl_per_dim"], m.activity_mask(r["activity"]))
            runs[name].append({**r, "train_elbo": vae.history_})
            shown.setdefault(name, (vae, enc))
    sweep = {20: runs["small"]}
    for latent in (10, 40):
        config = get_preset("small").with_latent_dim(latent)
        sweep[latent] = [
            {"seed": s, **m.summarize(fit(config, s), test.images, seed=s)}
            for s in seeds[: profile["sweep_seeds"]]
        ]
    sweep = dict(sorted(sweep.items()))
    paths = {
        n: geo.class_path(vae, enc.loc, test.labels, test.images, test.classes, start=0, stop=1)
        for n, (vae, enc) in shown.items()
        if n in PRESETS_2D
    }

    classes, labels = test.classes, test.labels
    scatter = [{"loc": shown[n][1].loc, "labels": labels, "title": f"{n} (test set)"} for n in paths]
    ctx.draw(vplot.plot_latents_2d, "vae2d_latents.png", scatter, classes)
    manifolds = []
    for n in PRESETS_2D:
        vae, enc = shown[n]
        tee, trouser = geo.class_centroids(enc.loc, labels)[:2].tolist()
        marks = {"shoes": runs[n][0]["shoes"]["centroid"], "T-shirt": tee, "Trouser": trouser}
        manifolds.append({"vae": vae, "loc": enc.loc, "title": n, "marks": marks})
    ctx.draw(vplot.plot_manifolds, "vae2d_manifold.png", manifolds)
    interpolations = [
        {"label": n, "images": images, "captions": path["nearest_class"]}
        for n, (images, path) in paths.items()
    ]
    ctx.draw(vplot.plot_interpolations, "vae2d_tshirt_trouser.png", interpolations)
    activities = {n: [r["activity"] for r in rs] for n, rs in {**runs, **sweep}.items()}
    groups = [{"label": n, "color": COLORS[n], "activities": activities[n]} for n in PRESETS_20D]
    sizes = [
        {"label": f"small, {k}-D", "color": COLORS.get(k, "tab:purple"), "activities": activities[k]}
        for k in sweep
    ]
    ctx.draw(vplot.plot_activity, "active_units.png", groups, sizes)
    picks = [torch.nonzero(labels == c)[:1, 0] for c in range(10)] + [torch.tensor([10, 11])]
    rows = [(n, vae) for n, (vae, _) in shown.items()]
    ctx.draw(vplot.plot_reconstructions, "reconstructions.png", test.images[torch.cat(picks)], rows)
    panels = [
        {"label": f"{n} (seed {ctx.seed})", "activity": m.activity(shown[n][1])}
        | m.correlations(shown[n][1], seed=ctx.seed)
        for n in PRESETS_20D
    ]
    ctx.draw(vplot.plot_correlations, "latent_correlations.png", panels)

    counts = {n: [r["active_units"] for r in rs] for n, rs in {**runs, **sweep}.items()}
    path_rows = [{"preset": n, "seed": ctx.seed, **path} for n, (_, path) in paths.items()]
    spaces = [
        {"preset": n, "seed": r["seed"], "accuracy": r["shoes"]["linear_separability"]}
        for n in PRESETS_2D
        for r in runs[n]
    ]
    wheres = {n: [(r["seed"], r["shoes"]["where"]) for r in runs[n]] for n in PRESETS_2D}
    ratios = m.correlation_ratios(
        [r for n in PRESETS_20D for r in runs[n]], [r for n in PRESETS_2D for r in runs[n]]
    )
    return {
        "profile": {**profile, "n_train": len(train), "seeds": seeds, "threads": THREADS},
        "figure_seed": ctx.seed,
        "presets": [get_preset(n).to_dict() for n in runs],
        "runs": runs,
        "two_d": {
            "presets": list(PRESETS_2D),
            "seeds": seeds[: profile["two_d_seeds"]],
            "shoe_region": geo.shoe_region_verdict(spaces),
            "placement": geo.shoe_placement(wheres),
            "paths": path_rows,
            "blends": geo.blend_verdict(path_rows),
        },
        "activity": {
            "presets": [
                {
                    "preset": n,
                    "seeds": [r["seed"] for r in rs],
                    "test_elbo": m.mean_sd([r["test_elbo"] for r in rs]),
                    "active_units": counts[n],
                    "post": m.count_verdict(counts[n], POST_ACTIVE.get(n)),
                }
                for n, rs in runs.items()
            ],
            "larger_uses_more": m.larger_uses_more(counts["small"], counts["large"]),
            "kl_split": m.kl_split_verdict([r["kl_split"] for n in PRESETS_20D for r in runs[n]]),
        },
        "latent_sweep": {
            "sizes": [
                {
                    "latent_dim": k,
                    "seeds": len(rs),
                    "active_units": counts[k],
                    "test_elbo": m.mean_sd([r["test_elbo"] for r in rs]),
                }
                for k, rs in sweep.items()
            ],
            "effect": m.latent_size_effect(counts, base=20, larger=40),
            "smallest": {"latent_dim": 10, "active_units": counts[10]}
            | {"near_cap": m.near_cap(counts[10], 10)},
        },
        "correlations": {
            "presets": [
                {"preset": n, "seeds": len(rs)}
                | {k: m.mean_sd([r[key] for r in rs]) for k, key in CORRELATIONS.items()}
                for n, rs in runs.items()
            ],
            "ratios": ratios,
            "observation": m.decorrelation_verdict(ratios),
        },
    }


if __name__ == "__main__":
    cli.run_script("vae_latents")
