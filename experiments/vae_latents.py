"""VAEs on FashionMNIST: the post's 2-D latent spaces and how many of 20 dimensions get used.

Trains (or reuses from ``runs/``) the presets of :mod:`pyro_latent.vae.model` and measures on the
10 000 test images: the test ELBO, the active units ``Var_x(E_q[z_d|x]) > 0.01`` (Burda et al.
2015), the KL per dimension, and the correlation of posterior means against posterior samples
(Locatello et al. 2019).  Profiles:

* full: all 60 000 training images, :data:`FULL` epochs, seeds ``s, s+1, s+2`` for ``small`` and
  ``large``, for the latent sizes 10 and 40 of ``small`` and for ``vae2d-a`` and ``vae2d-b``
  (the 2-D figures show seed ``s``); 18 VAEs;
* ``--quick``: the first 10 000 training images, :data:`QUICK` epochs, same seeds except one
  seed for the latent-size sweep and the 2-D VAEs; 10 VAEs, checkpoints under ``runs/quick/``.

Both train with 1 torch thread.  Measured on a 2-core CPU shared with other jobs: the full
profile took about 21 minutes for its VAEs other than the 2-D seeds ``s+1, s+2``, and those
four about 10 minutes more; the quick profile 41 s.  A second run reuses every checkpoint and
takes seconds.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

from pyro_latent.plotting import vae as vplot
from pyro_latent.study import Context, experiment, main
from pyro_latent.vae import SHOE_CLASSES, get_preset, load_fashion_mnist, train_vae
from pyro_latent.vae.metrics import (
    ACTIVE_THRESHOLD,
    activity,
    correlations,
    encode_dataset,
    summarize,
)

FULL = dict(epochs=20, train_limit=None, n_seeds=3, sweep_seeds=3, two_d_seeds=3)
QUICK = dict(epochs=3, train_limit=10_000, n_seeds=3, sweep_seeds=1, two_d_seeds=1)
SWEEP_LATENTS = (10, 20, 40)
POST_ACTIVE = {"small": (5, 6), "large": (9, 10)}
PRESET_NAMES = ("small", "large", "vae2d-a", "vae2d-b")
BLEND_RATIO = 0.9
"""A decoded image is a T-shirt/trouser *blend* when its two nearest class-mean images are the
T-shirt and the trouser means and the nearer is at least this fraction of the farther distance."""
FIGURES = (
    "vae2d_latents.png",
    "vae2d_manifold.png",
    "vae2d_tshirt_trouser.png",
    "active_units.png",
    "reconstructions.png",
    "latent_correlations.png",
)
THREADS = 1


def _train(ctx: Context, config, train, seed: int, profile: dict):
    runs = ctx.runs_dir / "quick" if ctx.quick else ctx.runs_dir
    return train_vae(
        config,
        train,
        epochs=profile["epochs"],
        seed=seed,
        device=ctx.device,
        checkpoint_dir=runs,
        resume=True,
    )


def _fmt(values, digits=1) -> str:
    values = np.asarray(values, dtype=float)
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f}"


def _compass(offset: np.ndarray) -> str:
    """'upper left' etc. for a 2-D offset from the centre of the encodings."""
    x, y = offset
    vertical = "upper" if y > 0 else "lower"
    horizontal = "right" if x > 0 else "left"
    if abs(x) > 2.5 * abs(y):
        return f"{horizontal} side"
    if abs(y) > 2.5 * abs(x):
        return f"{'top' if y > 0 else 'bottom'}"
    return f"{vertical} {horizontal}"


def _shoe_region(loc: torch.Tensor, labels: torch.Tensor) -> dict:
    """Where the shoes lie in a 2-D latent space, and how separable they are from the rest."""
    z = loc.numpy()
    is_shoe = np.isin(labels.numpy(), SHOE_CLASSES)
    centre = np.median(z, axis=0)
    spread = z.std(axis=0)
    offset = (z[is_shoe].mean(0) - centre) / spread
    accuracy = cross_val_score(LogisticRegression(), z, is_shoe, cv=5).mean()
    return {
        "centroid": z[is_shoe].mean(0).tolist(),
        "offset_sd": offset.tolist(),
        "where": _compass(offset),
        "linear_separability": float(accuracy),
    }


@torch.no_grad()
def _path(vae, loc, labels, test_images, start: int, stop: int, n: int = 11) -> dict:
    """Decode ``n`` points on the segment between the centroids of classes ``start`` and
    ``stop``; label each decoded image by its nearest class-mean test image (L2), and record
    the second nearest and the ratio of the two distances (near 1: between two classes)."""
    a, b = loc[labels == start].mean(0), loc[labels == stop].mean(0)
    t = torch.linspace(0, 1, n).unsqueeze(1)
    images = vae.decode((1 - t) * a + t * b).cpu()
    means = torch.stack([test_images[labels == c].mean(0) for c in range(10)])
    dist, order = torch.cdist(images, means).sort(1)
    ratio = dist[:, 0] / dist[:, 1]
    blends = [
        i
        for i in range(n)
        if set(order[i, :2].tolist()) == {start, stop} and ratio[i] >= BLEND_RATIO
    ]
    return {
        "images": images,
        "nearest": order[:, 0].tolist(),
        "second": order[:, 1].tolist(),
        "ratio": ratio.tolist(),
        "blends": blends,
        "a": a.tolist(),
        "b": b.tolist(),
    }


@experiment("vae_latents", title="VAEs on FashionMNIST: 2-D latent spaces, active units", order=30)
def run(ctx: Context) -> str:
    threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)  # identical numbers whatever the machine; light on 2 cores
    try:
        return _run(ctx, QUICK if ctx.quick else FULL)
    finally:
        torch.set_num_threads(threads)


def _run(ctx: Context, profile: dict) -> str:
    started = time.perf_counter()
    train = load_fashion_mnist(ctx.data_dir, train=True, download=ctx.download)
    train = train.subset(profile["train_limit"])
    test = load_fashion_mnist(ctx.data_dir, train=False, download=ctx.download)
    classes = test.classes
    seeds = [ctx.seed + i for i in range(profile["n_seeds"])]

    # --- 20-D presets, several seeds -----------------------------------------------------------
    runs: dict[str, dict[int, dict]] = {}
    models = {}
    correlation_panels: list[dict] = []
    for name in ("small", "large"):
        runs[name] = {}
        for seed in seeds:
            vae = _train(ctx, get_preset(name), train, seed, profile)
            runs[name][seed] = summarize(vae, test.images, seed=seed)
            runs[name][seed]["train_elbo"] = vae.history_
            if name not in models:
                models[name] = vae
                correlation_panels.append(_correlation_panel(name, seed, vae, test.images))

    # --- latent-size sweep of the small preset ------------------------------------------------
    sweep: dict[int, dict[int, dict]] = {20: runs["small"]}
    for latent in SWEEP_LATENTS:
        if latent == 20:
            continue
        config = get_preset("small").with_latent_dim(latent)
        sweep[latent] = {}
        for seed in seeds[: profile["sweep_seeds"]]:
            vae = _train(ctx, config, train, seed, profile)
            sweep[latent][seed] = summarize(vae, test.images, seed=seed)

    # --- 2-D VAEs, several seeds; the figures show seed ctx.seed ------------------------------
    two_d = {}
    for name in ("vae2d-a", "vae2d-b"):
        runs[name] = {}
        shoes_by_seed = {}
        for seed in seeds[: profile["two_d_seeds"]]:
            vae = _train(ctx, get_preset(name), train, seed, profile)
            enc = encode_dataset(vae, test.images)
            runs[name][seed] = summarize(vae, test.images, seed=seed)
            runs[name][seed]["train_elbo"] = vae.history_
            shoes_by_seed[seed] = _shoe_region(enc.loc, test.labels)
            if seed == ctx.seed:
                two_d[name] = {
                    "vae": vae,
                    "loc": enc.loc,
                    "summary": runs[name][seed],
                    "shoes": shoes_by_seed[seed],
                    "path": _path(vae, enc.loc, test.labels, test.images, start=0, stop=1),
                }
        two_d[name]["shoes_by_seed"] = shoes_by_seed

    figures = _figures(ctx, test, classes, runs, sweep, two_d, models)
    vplot.plot_correlations(ctx.figure("latent_correlations.png"), correlation_panels)
    payload = {
        "profile": {**profile, "seeds": seeds, "threads": THREADS},
        "presets": {name: get_preset(name).to_dict() for name in PRESET_NAMES},
        "runs": runs,
        "latent_sweep": {str(k): v for k, v in sweep.items()},
        "two_d": {
            name: {
                "seed": ctx.seed,
                "shoes": d["shoes"],
                "shoes_by_seed": d["shoes_by_seed"],
                "tshirt_trouser_path_nearest_class": [classes[c] for c in d["path"]["nearest"]],
                "tshirt_trouser_path_second_class": [classes[c] for c in d["path"]["second"]],
                "tshirt_trouser_path_distance_ratio": d["path"]["ratio"],
                "tshirt_trouser_blends": d["path"]["blends"],
            }
            for name, d in two_d.items()
        },
        "seconds": time.perf_counter() - started,
    }
    ctx.save_json(payload)
    return _report(ctx, profile, seeds, classes, runs, sweep, two_d, figures)


def _correlation_panel(name: str, seed: int, vae, images) -> dict:
    enc = encode_dataset(vae, images)
    act = activity(enc)
    corr = correlations(enc, seed=seed)
    return {
        "label": f"{name} (seed {seed})",
        "mean_corr": corr["mean_corr"],
        "sample_corr": corr["sample_corr"],
        "order": np.argsort(-act).tolist(),
        "n_active": int((act > ACTIVE_THRESHOLD).sum()),
    }


def _figures(ctx, test, classes, runs, sweep, two_d, models) -> dict:
    panels = [
        {"loc": d["loc"], "labels": test.labels, "title": f"{name} (test set)"}
        for name, d in two_d.items()
    ]
    vplot.plot_latents_2d(ctx.figure("vae2d_latents.png"), panels, classes)
    manifold_panels = []
    for name, d in two_d.items():
        loc, labels = d["loc"], test.labels
        marks = {
            "shoes": tuple(d["shoes"]["centroid"]),
            "T-shirt": tuple(loc[labels == 0].mean(0).tolist()),
            "Trouser": tuple(loc[labels == 1].mean(0).tolist()),
        }
        manifold_panels.append({"vae": d["vae"], "loc": loc, "title": name, "marks": marks})
    vplot.plot_manifolds(ctx.figure("vae2d_manifold.png"), manifold_panels)
    vplot.plot_interpolations(
        ctx.figure("vae2d_tshirt_trouser.png"),
        [
            {
                "label": name,
                "images": d["path"]["images"],
                "captions": [classes[c] for c in d["path"]["nearest"]],
            }
            for name, d in two_d.items()
        ],
    )
    colors = {"small": "tab:blue", "large": "tab:orange"}
    groups = [
        {
            "label": name,
            "color": colors[name],
            "activities": [r["activity"] for r in runs[name].values()],
        }
        for name in ("small", "large")
    ]
    sweep_colors = {10: "tab:green", 20: "tab:blue", 40: "tab:purple"}
    sweep_items = [
        {
            "label": f"small, {latent}-D",
            "color": sweep_colors.get(latent, "k"),
            "activities": [r["activity"] for r in by_seed.values()],
        }
        for latent, by_seed in sorted(sweep.items())
    ]
    vplot.plot_activity(ctx.figure("active_units.png"), groups, sweep_items)
    picks = torch.cat([torch.nonzero(test.labels == c)[:1, 0] for c in range(10)])
    picks = torch.cat([picks, torch.tensor([10, 11])])
    rows = [(name, models[name]) for name in ("small", "large")]
    rows += [(name, d["vae"]) for name, d in two_d.items()]
    vplot.plot_reconstructions(ctx.figure("reconstructions.png"), test.images[picks], rows)
    return {}


def _active_kls(r: dict) -> list[float]:
    """The KL of the active dimensions (activity > threshold), largest first."""
    active = [
        kl for kl, act in zip(r["kl_per_dim"], r["activity"], strict=True) if act > ACTIVE_THRESHOLD
    ]
    return sorted(active, reverse=True)


def _agreement(name: str, counts: list[int]) -> str:
    lo, hi = POST_ACTIVE[name]
    inside = sum(lo <= c <= hi for c in counts)
    if inside == len(counts):
        return f"agrees with the post's {lo}–{hi}"
    if inside:
        return f"partly agrees with the post's {lo}–{hi} ({inside} of {len(counts)} seeds)"
    return f"**disagrees** with the post's {lo}–{hi}"


def _kl_story(results: list[dict]) -> str:
    """One sentence on the KL per dimension of active against inactive dimensions."""
    active_kl, inactive_kl = [], []
    for r in results:
        for act, kl in zip(r["activity"], r["kl_per_dim"], strict=True):
            (active_kl if act > ACTIVE_THRESHOLD else inactive_kl).append(kl)
    if not inactive_kl:
        return "Every dimension is active in these runs; the KL spreads over all of them."
    if not active_kl:
        return "No dimension is active in these runs: every posterior has collapsed onto the prior."
    if max(inactive_kl) < min(active_kl):
        return (
            f"The KL per dimension agrees: an inactive dimension carries at most "
            f"{max(inactive_kl):.3f} nats, an active one at least {min(active_kl):.2f} nats; the "
            "posterior of an inactive dimension has collapsed onto the prior."
        )
    return (
        f"The KL per dimension does **not** split the same way: an inactive dimension carries up "
        f"to {max(inactive_kl):.3f} nats, more than the least informative active one "
        f"({min(active_kl):.3f} nats), so the activity threshold and the KL disagree on some "
        "dimensions."
    )


def _shoe_story(two_d: dict, threshold: float = 0.95) -> str:
    """Whether the shoes form one linearly separable region in each 2-D space."""
    spaces = [
        (name, seed, sh["linear_separability"])
        for name, d in two_d.items()
        for seed, sh in d["shoes_by_seed"].items()
    ]
    worst = min(acc for _, _, acc in spaces)
    if worst >= threshold:
        return (
            "Sandals, sneakers and ankle boots form one region in every 2-D space, as in the "
            "post: a straight line in the 2-D latent space separates shoes from the rest for at "
            f"least {worst:.1%} of the test images."
        )
    below = [f"`{n}` seed {s} ({acc:.1%})" for n, s, acc in spaces if acc < threshold]
    good = len(spaces) - len(below)
    if good:
        return (
            f"A straight line separates shoes from the rest for at least {threshold:.0%} of the "
            f"test images in {good} of {len(spaces)} 2-D spaces, as in the post's shoe region; "
            f"not in {', '.join(below)}, where the shoes are only partly separated."
        )
    return (
        f"Shoes are only partly separated from the rest in every 2-D space (linear accuracy "
        f"down to {worst:.1%}); the post's clean shoe region is not reproduced here."
    )


def _where_story(two_d: dict) -> str:
    """Where the shoe region lies, per 2-D preset and seed, and what changes it (measured)."""
    multi = {n: d["shoes_by_seed"] for n, d in two_d.items() if len(d["shoes_by_seed"]) > 1}
    parts = []
    if multi:
        moved = []
        for name, by_seed in multi.items():
            wheres = [sh["where"] for sh in by_seed.values()]
            seeds = ", ".join(map(str, by_seed))
            if len(set(wheres)) > 1:
                moved.append(name)
                parts.append(f"`{name}` puts it at {', '.join(wheres)} (seeds {seeds})")
            else:
                parts.append(f"`{name}` puts it at {wheres[0]} for all seeds ({seeds})")
        text = "Where the region lies: " + "; ".join(parts) + ". "
        if moved:
            text += (
                "The place changes with the seed alone, same architecture and data, so it is "
                "arbitrary, as the post's two spaces also show."
            )
        else:
            text += "Its place is stable across the seeds measured here."
        return text
    wheres = {n: d["shoes"]["where"] for n, d in two_d.items()}
    same = len(set(wheres.values())) == 1
    listed = ", ".join(f"`{n}` {w}" for n, w in wheres.items())
    return f"With one seed per 2-D preset, the two architectures put the region at {listed}" + (
        "; whether it moves with the seed is not measured in this profile."
        if same
        else "; the architecture alone moves it (one seed each, so the seed's effect is not "
        "measured in this profile)."
    )


def _path_story(two_d: dict, classes) -> str:
    """What the decoded T-shirt → trouser path shows, from its captions and distances."""
    parts, with_blends = [], []
    for name, d in two_d.items():
        path = d["path"]
        n = len(path["nearest"])
        start, stop = path["nearest"][0], path["nearest"][-1]
        others = sorted({c for c in path["nearest"] if c not in (0, 1)})
        counts = [f"{path['nearest'].count(c)} nearest to {classes[c]}" for c in others]
        if path["blends"]:
            with_blends.append(name)
            text = (
                f"`{name}`: {len(path['blends'])} of {n} decoded images lie between the "
                f"{classes[0]} and {classes[1]} means (those are their two nearest class means, "
                f"distance ratio ≥ {BLEND_RATIO}): half T-shirt, half trouser images"
            )
        else:
            pair = [
                path["ratio"][i]
                for i in range(n)
                if {path["nearest"][i], path["second"][i]} == {0, 1}
            ]
            text = (
                f"`{name}`: no decoded image is a {classes[0]} – {classes[1]} blend by this "
                f"measure (two nearest class means {classes[0]} and {classes[1]}, distance "
                f"ratio ≥ {BLEND_RATIO}; "
                + (
                    f"the closest call has ratio {max(pair):.2f})"
                    if pair
                    else f"no image has {classes[0]} and {classes[1]} as its two nearest means)"
                )
            )
        if others:
            text += (
                f"; on the way {', '.join(counts)}, another human category rather than a "
                "region without one"
            )
        if (start, stop) != (0, 1):
            text += f"; even the endpoints decode nearest to {classes[start]} and {classes[stop]}"
        parts.append(text + ".")
    if len(with_blends) == len(two_d):
        verdict = "Both spaces have the post's 'half T-shirt, half trouser' images on this path."
    elif with_blends:
        verdict = (
            "Only " + ", ".join(f"`{n}`" for n in with_blends) + " has the post's 'half "
            "T-shirt, half trouser' images on this path."
        )
    else:
        verdict = (
            "The post's 'half T-shirt, half trouser' images are **not** reproduced on this path: "
            "the decoder moves between human categories instead."
        )
    return (
        "Each decoded image is compared with the ten class-mean test images (L2): "
        + " ".join(parts)
        + " "
        + verdict
    )


def _correlation_story(
    all_ratio: float, active_ratio: float, any_inactive: bool, two_d_ratio: float
) -> str:
    """The Locatello et al. paragraph, every claim conditional on the measured ratios."""
    text = (
        f"Measured on the 20-D presets: sample correlations are on average {all_ratio:.0%} of "
        f"the mean correlations over all dimensions and {active_ratio:.0%} over the active "
        "ones. "
    )
    if all_ratio < 0.5:
        text += (
            "Over the whole representation the observation holds: the means are clearly "
            "correlated, the samples much less. "
        )
    else:
        text += (
            "Over the whole representation the observation does **not** hold here: the samples "
            "are nearly as correlated as the means. "
        )
    text += (
        "Part of this is arithmetic: Cov(z) = Cov(μ) + diag E[σ²], so sampling can only shrink "
        "correlations, most where the posterior variance is large"
    )
    if not any_inactive:
        text += (
            "; here every dimension is active, so the gap measures how much posterior noise "
            "each dimension keeps."
        )
    elif all_ratio < 0.5 and active_ratio > 0.8:
        text += (
            ". That is why the gap lives in the inactive dimensions, whose means still co-vary "
            "slightly with the input and with each other while their samples are independent "
            "prior noise. Over the active dimensions means and samples are about equally (and "
            "weakly) correlated, so on these VAEs the effect says little about the dimensions "
            "that carry information."
        )
    elif active_ratio > 0.8:
        text += ". Over the active dimensions means and samples are about equally correlated."
    else:
        text += (
            ". Over the active dimensions the gap remains: it measures how much posterior "
            "noise each used dimension keeps."
        )
    if np.isfinite(two_d_ratio):
        text += (
            " In the 2-D VAEs the samples' mean |correlation| over both dimensions "
            f"is {two_d_ratio:.0%} of the means' (averaged over seeds before dividing)."
        )
    return text


def _report(ctx, profile, seeds, classes, runs, sweep, two_d, figures) -> str:
    full = not ctx.quick
    two_d_seeds = seeds[: profile["two_d_seeds"]]
    n_train = 60_000 if profile["train_limit"] is None else profile["train_limit"]
    lines = [
        "## VAEs trained on FashionMNIST",
        "",
        f"**Profile: {'full' if full else 'quick'}** — {n_train} training images, "
        f"{profile['epochs']} epochs of Pyro SVI (`Trace_ELBO`, Adam, lr 1e-3, batch 128), "
        f"Bernoulli likelihood on grey values (the post's binary cross-entropy); seeds "
        f"{', '.join(map(str, seeds))} for `small` and `large`. Everything is measured on the "
        "10 000 test images. "
        + (
            ""
            if full
            else "These are **quick-profile numbers** (short training on a subset); the full "
            "profile (`pyro-latent run vae_latents`) is what the comparison with the post "
            "should rest on. "
        )
        + "Presets: "
        + "; ".join(
            f"`{n}` {get_preset(n).latent_dim}-D latent, hidden {list(get_preset(n).hidden)}"
            for n in ("small", "large", "vae2d-a", "vae2d-b")
        )
        + f" (the two 2-D VAEs differ in size; seeds {', '.join(map(str, two_d_seeds))}, the "
        f"2-D figures show seed {ctx.seed}).",
        "",
        "### VAE FashionMNIST representations (2-D latent spaces)",
        "",
        "*Post:* regions of the 2-D latent spaces correspond to human concepts, e.g. a "
        "'shoe region' (top left in the first space, bottom right in the second), and some "
        "regions do not, e.g. half T-shirt, half trouser images.",
        "",
        "![2-D latent spaces](vae2d_latents.png)",
        "",
        "| VAE | seed | test ELBO (nats) | shoe centroid (z₁, z₂) | where | shoe vs rest, "
        "linear accuracy (5-fold) |",
        "|---|---|---|---|---|---|",
    ]
    for name, d in two_d.items():
        for seed, sh in d["shoes_by_seed"].items():
            lines.append(
                f"| `{name}` | {seed} | {runs[name][seed]['test_elbo']:.1f} | "
                f"({sh['centroid'][0]:.2f}, {sh['centroid'][1]:.2f}) | {sh['where']} | "
                f"{sh['linear_separability']:.3f} |"
            )
    lines += [
        "",
        _shoe_story(two_d) + " " + _where_story(two_d),
        "",
        "![decoded grids over the 2-D latent spaces](vae2d_manifold.png)",
        "",
        "Decoding the straight line from the T-shirt centroid to the trouser centroid; each image "
        "is captioned with the class whose mean test image is nearest:",
        "",
        "![T-shirt to trouser](vae2d_tshirt_trouser.png)",
        "",
    ]
    for name, d in two_d.items():
        seq = [classes[c] for c in d["path"]["nearest"]]
        compact = [seq[0]] + [c for prev, c in zip(seq, seq[1:], strict=False) if c != prev]
        lines.append(f"- `{name}`: {' → '.join(compact)}.")
    lines += ["", _path_story(two_d, classes), ""]
    lines += [
        "### VAEs with higher dimensional latent spaces",
        "",
        "*Post:* both 20-D VAEs use fewer dimensions than they have: 'For the smaller model, "
        "usually only 5 were used (though sometimes 6). For the larger model, usually 10 were "
        "used (sometimes 9).' Here a dimension is *used* (active) when "
        "Var_x(E_q[z_d|x]) > 0.01 (Burda et al. 2015).",
        "",
        "| preset | seed | test ELBO (nats) | active units | total KL (nats) | "
        "KL of the active dims (nats, largest first) |",
        "|---|---|---|---|---|---|",
    ]
    for name in ("small", "large"):
        for seed, r in runs[name].items():
            kls = _active_kls(r)
            lines.append(
                f"| `{name}` | {seed} | {r['test_elbo']:.1f} | {r['active_units']} | "
                f"{r['kl_total']:.1f} | {', '.join(f'{k:.1f}' for k in kls)} |"
            )
    lines += [
        "",
        "| preset | seeds | test ELBO (nats, mean ± sd over seeds) | active units | verdict |",
        "|---|---|---|---|---|",
    ]
    for name in PRESET_NAMES:
        counts = [r["active_units"] for r in runs[name].values()]
        lines.append(
            f"| `{name}` | {', '.join(map(str, runs[name]))} | "
            f"{_fmt([r['test_elbo'] for r in runs[name].values()])} | "
            f"{', '.join(map(str, counts))} | "
            + (_agreement(name, counts) if name in POST_ACTIVE else "2-D, not in the post's count")
            + " |"
        )
    small_counts = np.mean([r["active_units"] for r in runs["small"].values()])
    large_counts = np.mean([r["active_units"] for r in runs["large"].values()])
    order = (
        "the larger model uses more dimensions than the smaller one, as in the post"
        if large_counts > small_counts
        else "the *smaller* model uses more dimensions than the larger one, the opposite of the "
        "post"
        if small_counts > large_counts
        else "both models use as many dimensions"
    )
    lines += [
        "",
        f"Measured: {order} (mean {small_counts:.1f} against {large_counts:.1f}). "
        + _kl_story([r for name in ("small", "large") for r in runs[name].values()]),
        "",
        "![per-dimension activity](active_units.png)",
        "",
        "*Post:* 'Increasing the number of dimensions in the latent space also had little "
        "effect on the number of dimensions the model learns to use.' The small preset with "
        "latent size 10, 20 and 40:",
        "",
        "| latent size | seeds | active units | test ELBO (nats) |",
        "|---|---|---|---|",
    ]
    for latent, by_seed in sorted(sweep.items()):
        counts = [r["active_units"] for r in by_seed.values()]
        lines.append(
            f"| {latent} | {len(by_seed)} | {', '.join(map(str, counts))} | "
            f"{_fmt([r['test_elbo'] for r in by_seed.values()])} |"
        )
    means = {k: np.mean([r["active_units"] for r in v.values()]) for k, v in sweep.items()}
    counts_10 = [r["active_units"] for r in sweep[10].values()]
    change = means[40] - means[20]
    lines += [
        "",
        f"From 20 to 40 dimensions the mean number of active units changes by {change:+.1f}"
        + (
            f"; with 10 dimensions {', '.join(map(str, counts_10))} of 10 are active, so that "
            "size is at or near a cap rather than a free choice."
            if means[10] >= 9
            else "."
        )
        + (
            " This agrees with the post: more latent dimensions have little effect."
            if abs(change) <= 1.5
            else " This is more than 'little effect'."
        ),
        "",
        "![reconstructions](reconstructions.png)",
        "",
        "### Correlation of posterior means against posterior samples (Locatello et al.)",
        "",
        "*Seed 004 (Locatello et al. 2019):* the dimensions of the sampled aggregate posterior "
        "are uncorrelated, but the posterior means are correlated. Mean |off-diagonal "
        "correlation| on the test set, over all dimensions and over the active ones, per preset "
        "(mean ± sd over seeds):",
        "",
        "![|correlation| of means and samples](latent_correlations.png)",
        "",
        "| preset | seeds | means, all | samples, all | means, active | samples, active |",
        "|---|---|---|---|---|---|",
    ]
    for name in PRESET_NAMES:
        rs = list(runs[name].values())
        lines.append(
            f"| `{name}` | {len(rs)} | "
            + " | ".join(
                _fmt([r[key] for r in rs], 3)
                for key in (
                    "mean_abs_offdiag_means",
                    "mean_abs_offdiag_samples",
                    "mean_abs_offdiag_means_active",
                    "mean_abs_offdiag_samples_active",
                )
            )
            + " |"
        )

    def ratio(key_s, key_m):
        rs = [r for name in ("small", "large") for r in runs[name].values()]
        return float(np.nanmean([r[key_s] / r[key_m] for r in rs]))

    all_ratio = ratio("mean_abs_offdiag_samples", "mean_abs_offdiag_means")
    active_ratio = ratio("mean_abs_offdiag_samples_active", "mean_abs_offdiag_means_active")
    any_inactive = any(
        r["active_units"] < len(r["activity"])
        for name in ("small", "large")
        for r in runs[name].values()
    )
    two_d_runs = [r for name in ("vae2d-a", "vae2d-b") for r in runs[name].values()]
    two_d_ratio = float(
        np.nanmean([r["mean_abs_offdiag_samples"] for r in two_d_runs])
        / np.nanmean([r["mean_abs_offdiag_means"] for r in two_d_runs])
    )
    lines += ["", _correlation_story(all_ratio, active_ratio, any_inactive, two_d_ratio)]
    return "\n".join(lines)


if __name__ == "__main__":
    main("vae_latents")
