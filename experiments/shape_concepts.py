"""Concepts with ground truth: a rendered shapes world, VAEs of three sizes, every direction
method scored against the true factors.

Renders the shapes world (:mod:`pyro_latent.vae.shapes`: one shape, six independent factors),
trains ``small``, ``large`` and ``conv`` on it (three seeds; checkpoints under
``runs/shapes/``), and for each VAE (:func:`~pyro_latent.study.shape_concepts.measure_vae`):
builds every height and brightness direction of ``shoe_concepts`` at evaluation images whose
counterfactuals stay in the frame, scores each by its pull-back angle to the true direction and
by purity under a factor read-out fitted on rendered images; computes MIG, DCI and SAP and the
active units.  It translates between the shapes VAEs, reading the true factors off translated
codes, and on FashionMNIST asks the size question again with the shoe meters, ``conv`` beside
``small`` and ``large``.  Profiles: *full*, 10 epochs on 60 000 images, 25 images per VAE,
5 000 codes for the metrics, 20 shoes; *quick*, 2 epochs on 5 000, one seed (two for
``small``), 3 images, 1 000 codes, 3 shoes, two of the four translation pairs.  The prose is
``experiments/templates/shape_concepts.md``.
"""

from __future__ import annotations

import numpy as np
import torch

from pyro_latent.concepts.factor_directions import FactorReadout, counterfactual
from pyro_latent.core.threads import single_threaded
from pyro_latent.plotting import shapes as splot
from pyro_latent.study import Context, cli, experiment
from pyro_latent.study import shape_concepts as sc
from pyro_latent.study.profiles import shapes_training_set, study_vaes, training_set
from pyro_latent.study.shoe_concepts import median_or_none
from pyro_latent.vae import load_fashion_mnist
from pyro_latent.vae import shapes as world

PROFILES = {
    "quick": {"seeds": 1, "n_test": 1000, "images": 3, "readout_images": 4000,
              "readout_epochs": 10, "cav_images": 1000, "n_fit": 1000, "gw_points": 100,
              "shoes": 3, "pairs": (0, 3)},
    "full": {"seeds": 3, "n_test": 5000, "images": 25, "readout_images": 20000,
             "readout_epochs": 10, "cav_images": 3000, "n_fit": 5000, "gw_points": 400,
             "shoes": 20, "pairs": (0, 1, 2, 3)},
}  # fmt: skip
PRESETS = ("small", "large", "conv")
PAIRS = (("small", 0, "large", 0), ("small", 0, "conv", 0), ("large", 0, "conv", 0),
         ("small", 0, "small", 1))  # fmt: skip
ALPHAS = [-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5]
DELTA = {"height": 1.0, "brightness": 0.05}  # central differences of the true directions


def needed_vaes(ctx: Context) -> dict:
    """Every preset and seed on the shapes world; every preset at ``ctx.seed`` on FashionMNIST."""
    seeds = [ctx.seed + i for i in range(PROFILES["quick" if ctx.quick else "full"]["seeds"])]
    shapes = [(p, s) for p in PRESETS for s in seeds] + [("small", ctx.seed + 1)] * ctx.quick
    return {"shapes": shapes, "fashion": [(p, ctx.seed) for p in PRESETS]}


@experiment("shape_concepts", title="Concepts with ground truth: the shapes world", order=45,
            vaes=needed_vaes)  # fmt: skip
def run(ctx: Context) -> dict:
    with single_threaded():  # identical numbers whatever the machine; light on 2 cores
        return _run(ctx, PROFILES["quick" if ctx.quick else "full"])


def _run(ctx: Context, cfg: dict) -> dict:
    profile = "quick" if ctx.quick else "full"
    train = shapes_training_set(profile, ctx.data_dir, ctx.seed)
    test = world.load_shapes(ctx.data_dir, train=False, seed=ctx.seed).subset(cfg["n_test"])
    seeds = [ctx.seed + i for i in range(cfg["seeds"])]
    vaes = study_vaes(needed_vaes(ctx)["shapes"], train, profile, ctx.runs_dir, world="shapes",
                      **ctx.training_options())  # fmt: skip
    ctx.lap("training")
    fit = train.subset(cfg["readout_images"])
    readout = FactorReadout(epochs=cfg["readout_epochs"], seed=ctx.seed)
    readout.fit(fit.images, fit.factors[:, 1:])
    spreads = train.factors[:, 1:].std(0).double().numpy()
    r2 = readout.r2_per_factor(test.images, test.factors[:, 1:])
    evaluation = sc.evaluation_factors(cfg["images"], ctx.seed)
    ctx.lap("read-out")
    measured, sizes = {}, {}
    for name, vae in vaes.items():
        measured[name] = sc.measure_vae(
            vae, readout, fit.subset(cfg["n_fit"]), test, evaluation, render=world.render,
            cav_images=cfg["cav_images"], alphas=ALPHAS, spreads=spreads, delta=DELTA,
            seed=ctx.seed,
        )  # fmt: skip
        sizes[name.rsplit("-", 1)[0]] = sc.weight_count(vae)
        ctx.lap(f"directions {name}")
    preset_of = {name: name.rsplit("-", 1)[0] for name in vaes}
    records = [{"vae": n, "preset": preset_of[n], **r} for n, m in measured.items()
               for r in m["records"]]  # fmt: skip
    diagnostics = [d for m in measured.values() for d in m["diagnostics"]]
    runs_of = {p: [n for n in vaes if preset_of[n] == p] for p in PRESETS}
    metrics = {p: [{"run": n, **measured[n]["metrics"]} for n in runs_of[p]] for p in PRESETS}
    units = {p: [measured[n]["active_units"] for n in runs_of[p]] for p in PRESETS}
    table = sc.direction_table(records)
    ranking, truth = sc.method_ranking(table), sc.truth_reference(table)
    ctx.draw(splot.plot_direction_scores, "shape_direction_scores.png", table)
    ctx.draw(splot.plot_disentanglement, "shape_disentanglement.png", metrics)
    ctx.draw(splot.plot_shapes_world, "shapes_world.png", _world_rows(test, evaluation[0]),
             "the shapes world: samples, then one factor moved at a time")  # fmt: skip
    translation = []
    for a, i, b, j in (PAIRS[k] for k in cfg["pairs"]):
        src, dst = f"{a}-{ctx.seed + i}", f"{b}-{ctx.seed + j}"
        if src in vaes and dst in vaes:
            translation.append(sc.translation_record(
                vaes[src], vaes[dst], fit.subset(cfg["n_fit"]), test, names=(src, dst),
                gw_points=cfg["gw_points"], seed=ctx.seed))  # fmt: skip
    ctx.lap("translation")
    fashion = _fashion_sizes(ctx, profile, cfg)
    ctx.lap("fashion-mnist sizes")
    purity = {p: median_or_none([r["purity"]["median"] for r in table if r["preset"] == p
                                 and r["concept"] == "height"
                                 and r["direction"] not in (*sc.TRUE_DIRECTIONS, "jacobian path")])
              for p in PRESETS}  # the methods' straight directions only  # fmt: skip
    mig = {p: float(np.mean([r["mig"] for r in metrics[p]])) for p in PRESETS}
    return {
        "profile": {**cfg, "name": profile, "seeds": seeds, "alphas": ALPHAS, "delta": DELTA},
        "world": {"factors": list(world.FACTORS), "n_train": len(train), "n_test": len(test),
                  "levels": {k: list(v) for k, v in world.FACTOR_LEVELS.items()},
                  "version": world.GENERATOR_VERSION},  # fmt: skip
        "readout_r2": dict(zip(world.FACTORS[1:], r2, strict=True)), "sizes": sizes,
        "active_units": units,
        "units_against_factors": sc.units_against_factors(units, len(world.FACTORS)),
        "table": table, "ranking": ranking, "truth": truth, "disentanglement": metrics,
        "separability": sc.separability_verdict(diagnostics, ranking, truth),
        "post_edit_angle": sc.quartiles([d["post_edit_angle_to_truth"] for d in diagnostics]),
        "gram_schmidt": sc.gram_schmidt_verdict(table),
        "seed_versus_model": {m: sc.seed_versus_model(
            {p: [r["dci"]["disentanglement"] if m == "dci" else r[m] for r in metrics[p]]
             for p in PRESETS}) for m in ("mig", "dci", "sap")},
        "size": {"purity": sc.size_verdict(purity, sizes), "mig": sc.size_verdict(mig, sizes),
                 "fashion_purity": sc.size_verdict(fashion["purity"], fashion["sizes"])},
        "translation": translation, "fashion": fashion, "seconds": ctx.sections,
    }  # fmt: skip


def _world_rows(test, f: torch.Tensor) -> list[dict]:
    rows = [{"label": "samples", "images": test.images[:9]}]
    for name in ("height", "brightness", "x"):
        steps = torch.linspace(-2, 2, 9) * (0.05 if name == "brightness" else 1.0)
        index = world.factor_index(name)
        moved = torch.cat([counterfactual(f[None], {index: float(s)}) for s in steps])
        rows.append({"label": f"{name} moved", "images": world.render(moved)})
    return rows


def _fashion_sizes(ctx, profile: str, cfg: dict) -> dict:
    """The size question on FashionMNIST: shoe-height purity of the post's directions under
    ``small``, ``large`` and ``conv`` (seed ``ctx.seed``), with the shoe meters."""
    train = training_set(profile, ctx.data_dir, ctx.download)
    test = load_fashion_mnist(ctx.data_dir, train=False, download=ctx.download)
    vaes = study_vaes(needed_vaes(ctx)["fashion"], train, profile, ctx.runs_dir,
                      **ctx.training_options())  # fmt: skip
    return sc.fashion_size_record(
        {p: vaes[f"{p}-{ctx.seed}"] for p in PRESETS}, test, shoes=cfg["shoes"],
        cav_images=cfg["cav_images"], alphas=ALPHAS,
    )  # fmt: skip


if __name__ == "__main__":
    cli.run_script("shape_concepts")
