"""Coordinate-free structure (seed 003) and translation by matching topology (seed 002).

Loads the VAEs ``vae_latents`` trained (trained here if missing) and measures, on test images:
the singular values of each decoder's Jacobian and of each encoder layer's
(:mod:`pyro_latent.analysis.jacobians`); which of the study's measurements survive a
re-parametrisation of ``small``'s latent by six maps, NICE coupling layers among them
(:mod:`pyro_latent.study.coordinate_free`, with the model-density tree and persistence diagrams);
the H0/H1 persistence diagrams of every VAE's codes and their distances
(:mod:`pyro_latent.analysis.persistence`); and the level-set trees of the codes, matched without
labels or pairs (:mod:`pyro_latent.analysis.level_sets`), beside Gromov–Wasserstein matching
(:mod:`pyro_latent.translate.gromov`), each turned into a translator and scored against paired
Procrustes.  The two clouds a pair matches are the codes of *disjoint* test images, so nothing
pairs them.  Profiles: *full*, 4 000 test images, clouds of 1 500, Gromov–Wasserstein on
100/200/400 points; *quick*, 1 000 images, clouds of 400, 100/200 points.  The prose is
``experiments/templates/coordinate_free.md``.
"""

from __future__ import annotations

import numpy as np

from pyro_latent.analysis import jacobians as jac
from pyro_latent.concepts.shoes import measure_shoes
from pyro_latent.concepts.traversal import meter_spreads
from pyro_latent.core.threads import single_threaded
from pyro_latent.plotting import coordinate_free as cplot
from pyro_latent.study import Context, cli, experiment
from pyro_latent.study import coordinate_free as inv
from pyro_latent.study.profiles import study_vaes, training_set
from pyro_latent.study.unpaired import unpaired_comparison
from pyro_latent.translate.latent_mapping import formula_map
from pyro_latent.vae import CLASS_GROUPS, SHOE_CLASSES, load_fashion_mnist
from pyro_latent.vae.metrics import active_units, encode_dataset

PROFILES = {
    "quick": {"n_test": 1000, "jacobian_points": 50, "layer_points": 10, "cloud": 400,
              "min_cluster_size": 15, "gw_points": (100, 200), "purity_shoes": 4,
              "persistence_points": 300, "cluster_counts": (10,)},
    "full": {"n_test": 4000, "jacobian_points": 300, "layer_points": 40, "cloud": 1500,
             "min_cluster_size": 15, "gw_points": (100, 200, 400), "purity_shoes": 10,
             "persistence_points": 1000, "cluster_counts": (10, 30)},
}  # fmt: skip
VAES = ("small", "large", "vae2d-a", "vae2d-b")
PAIRS = [("small", 0, "large", 0), ("vae2d-a", 0, "vae2d-b", 0), ("small", 0, "small", 1)]
GROUPS = CLASS_GROUPS


def needed_vaes(ctx: Context) -> dict:
    """Both VAEs of every pair and each of ``VAES`` at seed ``ctx.seed``."""
    runs = {(n, ctx.seed + s) for a, sa, b, sb in PAIRS for n, s in ((a, sa), (b, sb))}
    return {"fashion": sorted(runs | {(n, ctx.seed) for n in VAES})}


@experiment("coordinate_free", title="Coordinate-free structure and topology matching", order=60,
            vaes=needed_vaes)  # fmt: skip
def run(ctx: Context) -> dict:
    with single_threaded():  # identical numbers whatever the machine; light on 2 cores
        return _run(ctx, PROFILES["quick" if ctx.quick else "full"])


def _run(ctx: Context, cfg: dict) -> dict:
    profile = "quick" if ctx.quick else "full"
    train = training_set(profile, ctx.data_dir, ctx.download)
    test = load_fashion_mnist(ctx.data_dir, train=False, download=ctx.download).subset(
        cfg["n_test"]
    )
    labels = test.labels.numpy()
    opts = ctx.training_options()
    vaes = study_vaes(needed_vaes(ctx)["fashion"], train, profile, ctx.runs_dir, **opts)
    codes = {k: encode_dataset(v, test.images) for k, v in vaes.items()}
    spectra, layers = {}, {}
    for name in (f"{n}-{ctx.seed}" for n in VAES):
        s = jac.decoder_spectra(vaes[name].decode, codes[name].loc[: cfg["jacobian_points"]])
        q25, median, q75 = np.quantile(s.numpy(), [0.25, 0.5, 0.75], axis=0)
        summary = jac.spectra_summary(s, labels=labels[: cfg["jacobian_points"]])
        spectra[name] = {"median": median.tolist(), "q25": q25.tolist(), "q75": q75.tolist(),
                         "summary": summary, "active_units": int(active_units(codes[name]).sum()),
                         "latent_dim": vaes[name].latent_dim}  # fmt: skip
        spectra[name]["gap"] = inv.spectrum_gap(median, spectra[name]["active_units"])
        blocks = jac.layer_spectra(vaes[name].encoder.net, test.images[: cfg["layer_points"]])
        layers[name] = [_block(b) for b in blocks]
    ctx.lap("jacobians")
    invariance = _invariance(ctx, cfg, vaes, codes, test, labels)
    ctx.lap("invariance")
    homology = inv.persistence_table(
        {n: codes[n].loc.double().numpy() for n in sorted(codes)},
        n_points=cfg["persistence_points"], seed=ctx.seed,
    )  # fmt: skip
    ctx.lap("persistence")
    matching, drawn = [], None
    for a, sa, b, sb in PAIRS:
        src, dst = f"{a}-{ctx.seed + sa}", f"{b}-{ctx.seed + sb}"
        held = codes[src].loc[2 * cfg["cloud"] :]
        record, trees = unpaired_comparison(
            codes[src].loc.double().numpy(), codes[dst].loc.double().numpy(), labels,
            names=(src, dst), cloud=cfg["cloud"], min_cluster_size=cfg["min_cluster_size"],
            gw_points=cfg["gw_points"], cluster_counts=cfg["cluster_counts"], groups=GROUPS,
            formula=formula_map(vaes[src], vaes[dst], held).double().numpy(), seed=ctx.seed,
        )  # fmt: skip
        matching.append(record)
        drawn = drawn or trees
        ctx.lap(record["pair"])
    ctx.draw(cplot.plot_jacobian_spectra, "jacobian_spectra.png", spectra, layers)
    if drawn is not None:
        ctx.draw(cplot.plot_level_set_trees, "level_set_trees.png", *drawn, test.classes)
    ctx.draw(cplot.plot_unpaired_vs_paired, "unpaired_vs_paired.png", matching)
    return {"profile": {**cfg, "name": profile}, "spectra": spectra, "layers": layers,
            "invariance": invariance, "matching": matching, "groups": GROUPS,
            "persistence": homology}  # fmt: skip


def _block(block: dict) -> dict:
    ranks = jac.effective_rank(block["singular_values"], 1e-2)
    q25, median, q75 = np.quantile(ranks, [0.25, 0.5, 0.75])
    return {"block": block["block"], "in": block["in"], "out": block["out"],
            "rank_median": median, "rank_q25": q25, "rank_q75": q75}  # fmt: skip


def _invariance(ctx, cfg, vaes, codes, test, labels) -> dict:
    """``small`` re-parametrised by each map, measured against ``large``'s codes."""
    source, target = vaes[f"small-{ctx.seed}"], vaes[f"large-{ctx.seed}"]
    shoes = np.flatnonzero(np.isin(labels, SHOE_CLASSES))
    heights = measure_shoes(test.images[shoes])["height"]
    common = {
        "target_vae": target, "target_codes": codes[f"large-{ctx.seed}"].loc.double().numpy(),
        "shoes": shoes, "heights": heights, "spreads": meter_spreads(test.images[shoes]),
        "jacobian_points": cfg["jacobian_points"], "tree_points": cfg["cloud"],
        "purity_shoes": cfg["purity_shoes"], "min_cluster_size": cfg["min_cluster_size"],
        "persistence_points": cfg["persistence_points"], "seed": ctx.seed,
    }  # fmt: skip
    maps = inv.reparametrizations(source.latent_dim, ctx.seed)
    measured = inv.compare_with_reference({
        name: inv.coordinate_measurements(inv.wrapped(source, phi), test.images, labels, **common)
        for name, phi in maps.items()
    })  # fmt: skip
    rows = inv.invariance_rows(measured)
    return {"vae": f"small-{ctx.seed}", "target": f"large-{ctx.seed}", "maps": list(maps),
            "rows": rows, "summary": inv.invariance_summary(rows),
            "measurements": measured}  # fmt: skip


if __name__ == "__main__":
    cli.run_script("coordinate_free")
