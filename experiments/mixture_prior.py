"""Seed 002's model: VAEs whose latent density is known, a Gaussian-mixture prior.

Trains (or loads) ``small-mix`` and ``large-mix``, the study's ``small`` and ``large`` networks
with a 10-component mixture prior whose component Pyro enumerates exactly
(:mod:`pyro_latent.vae.mixture`), three seeds each, beside the Normal-prior VAEs that
``vae_latents`` trained.  On test images it measures each model's ELBO, importance-sampled
``log p(x)``, active units, the mixture's cluster accuracy against the classes, and the
level-set trees of the model's own densities, prior and aggregate posterior
(:mod:`pyro_latent.study.mixture_prior`).  It then translates between two seeds of one
mixture architecture without pairs (:func:`~pyro_latent.study.unpaired.unpaired_comparison`).
Profiles: *full*, 4 000 test images, ``log p(x)`` of 300 with 500 draws, trees on 1 500;
*quick*, 1 000 images, 100 with 100 draws, trees on 400, two seeds (a pair to translate).
The prose is ``experiments/templates/mixture_prior.md``.
"""

from __future__ import annotations

from pyro_latent.core.threads import single_threaded
from pyro_latent.plotting import coordinate_free as cplot
from pyro_latent.study import Context, cli, experiment
from pyro_latent.study import mixture_prior as mp
from pyro_latent.study.coordinate_free import reparametrizations
from pyro_latent.study.profiles import study_vaes, training_set
from pyro_latent.study.unpaired import unpaired_comparison
from pyro_latent.translate.latent_mapping import formula_map
from pyro_latent.vae import CLASS_GROUPS, load_fashion_mnist
from pyro_latent.vae.metrics import encode_dataset

PROFILES = {
    "quick": {"seeds": 2, "n_test": 1000, "evidence_images": 100, "n_samples": 100,
              "tree_points": 400, "min_cluster_size": 15, "cloud": 400, "gw_points": (200,),
              "cluster_counts": (10,)},
    "full": {"seeds": 3, "n_test": 4000, "evidence_images": 300, "n_samples": 500,
             "tree_points": 1500, "min_cluster_size": 15, "cloud": 1500,
             "gw_points": (200, 400), "cluster_counts": (10,)},
}  # fmt: skip
PAIRS = (("small-mix", "small"), ("large-mix", "large"))


def needed_vaes(ctx: Context) -> dict:
    """Each mixture-prior preset and its Normal-prior partner, every seed."""
    seeds = [ctx.seed + s for s in range(PROFILES["quick" if ctx.quick else "full"]["seeds"])]
    return {"fashion": [(n, s) for pair in PAIRS for n in pair for s in seeds]}


@experiment("mixture_prior", title="A VAE with a known latent density: the mixture prior", order=65,
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
    images, labels = test.images.reshape(len(test.images), -1), test.labels.numpy()
    seeds = [ctx.seed + s for s in range(cfg["seeds"])]
    names = [n for pair in PAIRS for n in pair]
    vaes = study_vaes(needed_vaes(ctx)["fashion"], train, profile, ctx.runs_dir,
                      **ctx.training_options())  # fmt: skip
    ctx.lap("training")
    options = {k: cfg[k] for k in ("evidence_images", "n_samples", "tree_points",
                                   "min_cluster_size")}  # fmt: skip
    records = {
        name: [mp.model_record(vaes[f"{name}-{s}"], images, labels, groups=CLASS_GROUPS,
                               seed=ctx.seed, **options) for s in seeds]
        for name in names
    }  # fmt: skip
    ctx.lap("measurements")
    first = vaes[f"{PAIRS[0][0]}-{seeds[0]}"]
    invariance = mp.prior_tree_invariance(
        first, images[: cfg["tree_points"]], reparametrizations(first.latent_dim, ctx.seed),
        cfg["min_cluster_size"],
    )  # fmt: skip
    ctx.lap("prior tree under the maps")
    matching, drawn = [], None
    for mix, _ in PAIRS:
        src, dst = f"{mix}-{seeds[0]}", f"{mix}-{seeds[1]}"
        z1, z2 = (encode_dataset(vaes[k], images).loc for k in (src, dst))
        record, trees = unpaired_comparison(
            z1.double().numpy(), z2.double().numpy(), labels, names=(src, dst),
            cloud=cfg["cloud"], min_cluster_size=cfg["min_cluster_size"],
            gw_points=cfg["gw_points"], cluster_counts=cfg["cluster_counts"],
            clusters=(vaes[src].cluster(images).numpy(), vaes[dst].cluster(images).numpy()),
            formula=formula_map(vaes[src], vaes[dst], z1[2 * cfg["cloud"] :]).double().numpy(),
            groups=CLASS_GROUPS, seed=ctx.seed,
        )  # fmt: skip
        matching.append(record)
        drawn = drawn or trees
        ctx.lap(record["pair"])
    ctx.draw(cplot.plot_unpaired_vs_paired, "mixture_unpaired.png", matching)
    return {"profile": {**cfg, "name": profile, "seeds": seeds}, "records": records,
            "table": mp.comparison_table(records, PAIRS), "matching": matching,
            "pairs": [list(p) for p in PAIRS], "invariance": invariance,
            "invariance_model": f"{PAIRS[0][0]}-{seeds[0]}"}  # fmt: skip


if __name__ == "__main__":
    cli.run_script("mixture_prior")
