"""Translating between the VAEs' latent spaces: the posterior mapping, the literature's
translators, and a concept moved from one VAE to another.

Loads the VAEs ``vae_latents`` trained (trained here if missing) and, for each ordered pair
(``small``↔``large``, ``vae2d-a``↔``vae2d-b``, and each preset against itself under the next
seed), fits the translators of :mod:`pyro_latent.translate.translators` on paired encodings of
training images, scores them and the formula ``μ₂(decode₁(z₁))`` on held-out test images
(:mod:`pyro_latent.study.vae_translation`), draws the posterior mapping ``p(z₂ | z₁)``
(:mod:`pyro_latent.translate.latent_mapping`) and carries a shoe-height regression and a class
probe fitted in VAE 2 over to VAE 1.  Profiles: *full*, 10 000 fitting pairs, 2 000 test
images, 400 mapped points; *quick*, 2 000, 500 and 100.  The prose is
``experiments/templates/vae_translation.md``.
"""

from __future__ import annotations

import numpy as np
import torch

from pyro_latent.analysis.similarity import linear_cka
from pyro_latent.concepts.shoes import measure_shoes
from pyro_latent.core.latent_model import decode_in_batches
from pyro_latent.core.threads import single_threaded
from pyro_latent.plotting import translation as tplot
from pyro_latent.study import Context, cli, experiment
from pyro_latent.study import vae_translation as ev
from pyro_latent.study.profiles import study_vaes, training_set
from pyro_latent.translate.latent_mapping import posterior_mapping
from pyro_latent.translate.translators import TRANSLATORS
from pyro_latent.vae import load_fashion_mnist
from pyro_latent.vae.metrics import active_units

PROFILES = {
    "quick": {
        "n_fit": 2000,
        "n_test": 500,
        "points": 100,
        "draws": 4,
        "proposals": 16,
        "counts": (10, 30, 100, 300, 1000),
        "sizes": (10, 30, 100, 300, 1000),
    },
    "full": {
        "n_fit": 10000,
        "n_test": 2000,
        "points": 400,
        "draws": 8,
        "proposals": 32,
        "counts": (10, 30, 100, 300, 1000),
        "sizes": (10, 30, 100, 300, 1000, 3000),
    },
}
# (preset, seed offset) of VAE 1, then of VAE 2
PAIRS = [("small", 0, "large", 0), ("large", 0, "small", 0), ("vae2d-a", 0, "vae2d-b", 0),
         ("vae2d-b", 0, "vae2d-a", 0), ("small", 0, "small", 1), ("large", 0, "large", 1),
         ("vae2d-a", 0, "vae2d-a", 1)]  # fmt: skip
SHOWN_PAIR = "small-0 → large-0"  # the stitched reconstructions and the sample-efficiency curve


def needed_vaes(ctx: Context) -> dict:
    """Both VAEs of every pair."""
    runs = {(n, ctx.seed + s) for a, sa, b, sb in PAIRS for n, s in ((a, sa), (b, sb))}
    return {"fashion": sorted(runs)}


@experiment("vae_translation", title="Translating between the VAEs' latent spaces", order=50,
            vaes=needed_vaes)  # fmt: skip
def run(ctx: Context) -> dict:
    with single_threaded():  # identical numbers whatever the machine; light on 2 cores
        return _run(ctx, PROFILES["quick" if ctx.quick else "full"])


def _run(ctx: Context, cfg: dict) -> dict:
    profile = "quick" if ctx.quick else "full"
    # The VAEs train on the study's whole training set (as in vae_latents, whichever runs
    # first); the translators are fitted on a subset of it.
    study_train = training_set(profile, ctx.data_dir, ctx.download)
    train = study_train.subset(cfg["n_fit"])
    test = load_fashion_mnist(ctx.data_dir, train=False, download=ctx.download)
    test = test.subset(cfg["n_test"])
    opts = ctx.training_options()
    vaes = study_vaes(needed_vaes(ctx)["fashion"], study_train, profile, ctx.runs_dir, **opts)
    pairs = [(pa, f"{pa}-{ctx.seed + sa}", pb, f"{pb}-{ctx.seed + sb}") for pa, sa, pb, sb in PAIRS]
    codes = {k: ev.pair_codes(v, train.images, test.images) for k, v in vaes.items()}
    labels = {"fit": train.labels.numpy(), "test": test.labels.numpy()}
    heights = {k: _heights(d.images, labels[k]) for k, d in (("fit", train), ("test", test))}
    records, shown = [], {}
    for src_preset, a, dst_preset, b in pairs:
        src, dst, c1, c2 = vaes[a], vaes[b], codes[a], codes[b]
        result = ev.evaluate_translators(
            src, dst, c1, c2, labels["fit"], labels["test"], test.images, seed=ctx.seed
        )
        points = torch.as_tensor(c1["test"][: cfg["points"]])
        mapping = posterior_mapping(
            src, dst, points, cfg["draws"], n_proposals=cfg["proposals"], seed=ctx.seed
        )
        affine = result["fitted"]["affine"]
        transfer = ev.transfer_concepts(
            mapping, affine, c1, c2, labels, heights, cfg["sizes"], ctx.seed
        )
        curves = ev.sample_efficiency(
            TRANSLATORS, c1["fit"], c2["fit"], c1["test"], c2["test"], cfg["counts"], ctx.seed
        )
        records.append({
            "pair": f"{a} → {b}", "src": a, "dst": b,
            "src_preset": src_preset, "dst_preset": dst_preset,
            "same_preset": src_preset == dst_preset,
            "scores": result["scores"], "baseline": result["baseline"],
            "cka": linear_cka(c1["test"], c2["test"]),
            "cka_biased": linear_cka(c1["test"], c2["test"], unbiased=False),
            "mapping": mapping.summary(dims=active_units(c2["enc"])),
            "transfer": transfer, "sample_efficiency": curves,
        })  # fmt: skip
        if records[-1]["pair"] == SHOWN_PAIR:
            mapping.to_inference_data().to_netcdf(ctx.artifact("vae_translation_mapping.nc"))
            shown.update(translated=result["translated"], pair=(a, b))
        if src.latent_dim == dst.latent_dim == 2 and "scatter" not in shown:
            picked = {n: result["translated"][n] for n in ("procrustes", "formula")}
            shown["scatter"] = {"pair": (a, b), "target": c2["test"], "labels": labels["test"],
                                "translated": picked}  # fmt: skip
        ctx.lap(f"{a} → {b}")
    _draw(ctx, test, records, shown, vaes)
    units = {k: int(active_units(c["enc"]).sum()) for k, c in codes.items()}
    return {"profile": {**cfg, "name": profile}, "pairs": records, "active_units": units,
            "translators": list(TRANSLATORS), "shown_pair": SHOWN_PAIR,
            "summary": ev.translation_summary(records, units)}  # fmt: skip


def _heights(images, labels) -> np.ndarray:
    """Measured shoe height of each shoe image, NaN for the other classes."""
    shoes = np.isin(labels, ev.SHOE_CLASSES)
    height = np.full(len(labels), np.nan)
    height[shoes] = measure_shoes(images[torch.as_tensor(shoes)])["height"]
    return height


def _draw(ctx, test, records, shown, vaes) -> None:
    a, b = shown["pair"]
    rows = {n: decode_in_batches(vaes[b], z[:10]) for n, z in shown["translated"].items()}
    ctx.draw(tplot.plot_stitched, "translation_stitched.png", test.images[:10], rows, f"{a} → {b}")
    ctx.draw(tplot.plot_translator_metrics, "translation_metrics.png", records)
    ctx.draw(tplot.plot_sample_efficiency, "translation_sample_efficiency.png", records)
    if "scatter" in shown:
        ctx.draw(tplot.plot_translated_2d, "translation_2d.png", shown["scatter"], test.classes)
    ctx.draw(tplot.plot_concept_transfer, "translation_concept_transfer.png", records)


if __name__ == "__main__":
    cli.run_script("vae_translation")
