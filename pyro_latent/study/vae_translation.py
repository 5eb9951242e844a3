r"""Scoring a translation between two VAEs' latent spaces on held-out images, and moving a
concept identifier from one VAE to the other.

A *translation* is any map ``T : z₁ ↦ z₂`` from VAE 1's latent space to VAE 2's: a fitted
translator of :mod:`~pyro_latent.translate.translators` (which saw paired encodings), or the
design card's formula ``μ₂(decode₁(z₁))`` of :mod:`~pyro_latent.translate.latent_mapping` (which
saw no pairs at all).  On test images ``x`` with ``z₁ = μ₁(x)``, ``z₂ = μ₂(x)``
(:func:`translation_scores`):

* **latent agreement**: MSE and ``R²`` of ``T(z₁)`` against ``z₂``, per dimension averaged
  uniformly and weighted by the target's variance (a VAE's inactive dimensions barely vary);
* **stitching** (relative representations' protocol: encoder of one model, decoder of the
  other): ``x̂ = decode₂(T(z₁))``, with per-image binary cross-entropy and MSE against ``x`` and
  against VAE 2's own reconstruction ``decode₂(z₂)`` (the cross-entropy there with the grey
  reconstruction as a soft target);
* **neighbourhoods**: Jaccard overlap of the ``k`` nearest neighbours of each item in ``T(z₁)``
  and in ``z₂``, and the mean reciprocal rank of ``z₂`` among all targets from ``T(z₁)``;
* **semantics**: accuracy of a logistic-regression class probe trained on ``z₂`` of training
  images and applied to ``T(z₁)``;
* **concepts**: shoe height and brightness (:mod:`~pyro_latent.concepts.shoes`) of the stitched
  shoe images against VAE 1's own reconstructions and VAE 2's.

**Concept transfer** (:func:`transfer_concepts`, :func:`concept_transfer_scores`).  An
identifier ``f₂`` fitted on VAE 2's codes (a ridge regression onto measured shoe height, or the
class probe) is carried back to VAE 1, along the same translation ``z₁ ↦ z₂``, as

* (i) ``f₁ = f₂ ∘ T₁→₂`` with the formula ``T₁→₂(z₁) = μ₂(decode₁(z₁))``;
* (ii) ``f₁(z₁) = E[f₂(μ₂(x)) | z₁]``, ``x ~ p₁(x | z₁)``: the posterior mapping's images,
  each encoded to VAE 2's mean, the codes ``f₂`` was fitted on;
* (iii) ``f₁(z₁) = E[f₂ˢ(z₂) | z₁]`` over the mapping's guide draws and importance-resampled
  posterior draws of ``z₂``, with ``f₂ˢ`` fitted on one guide draw per training image (a draw
  spreads like the prior along VAE 2's inactive dimensions, which an identifier fitted on
  encoder means has never seen: standardised, such draws land tens of deviations out);
* (iv) a paired translator ``T₁→₂`` fitted on encodings (for reference);

and compared with the same learner trained directly on ``n`` labelled VAE-1 codes, for a grid of
``n``.  What a transfer is *worth* is the smallest ``n`` at which direct learning matches it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from scipy.stats import spearmanr
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, r2_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch.nn import functional as F

from pyro_latent.analysis.similarity import knn_jaccard, latent_agreement, neighbour_mrr
from pyro_latent.concepts.shoes import measure_shoes
from pyro_latent.core.checks import check_positive_int
from pyro_latent.core.latent_model import decode_in_batches
from pyro_latent.translate.latent_mapping import formula_map, transferred_expectation
from pyro_latent.translate.translators import TRANSLATORS, RelativeTranslator, make_translator
from pyro_latent.vae.data import SHOE_CLASSES  # re-exported: the experiment reads it here
from pyro_latent.vae.metrics import encode_dataset

__all__ = [
    "SHOE_CLASSES",
    "class_probe",
    "concept_transfer_scores",
    "evaluate_translators",
    "height_regressor",
    "pair_codes",
    "r2",
    "sample_efficiency",
    "samples_to_match",
    "shoe_concepts",
    "transfer_concepts",
    "translation_scores",
    "translation_summary",
]


def class_probe(seed: int = 0):
    """The class probe: standardised codes, multinomial logistic regression."""
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=500, random_state=seed))


def height_regressor(alpha: float = 1.0):
    """The shoe-height identifier: standardised codes, ridge regression (a regression concept
    vector in the sense of Graziani et al.)."""
    return make_pipeline(StandardScaler(), Ridge(alpha=alpha))


def shoe_concepts(images: torch.Tensor) -> dict[str, np.ndarray]:
    """Height and brightness of each image, NaN where the shape is empty (counted by callers)."""
    return measure_shoes(images)


def _per_image_bce(probs: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    probs = probs.clamp(1e-6, 1 - 1e-6).double()
    return F.binary_cross_entropy(probs, images.double(), reduction="none").sum(-1)


def translation_scores(
    translated: np.ndarray,
    target: np.ndarray,
    dst,
    images: torch.Tensor,
    labels: np.ndarray,
    probe,
    *,
    own_reconstruction: torch.Tensor,
    src_reconstruction: torch.Tensor | None = None,
    k: int = 10,
) -> dict:
    """The metrics of the module docstring for one translation of ``N`` test images.

    Args:
        translated: ``T(z₁) [N, D₂]``.
        target: VAE 2's encoder means ``z₂ [N, D₂]`` of the same images.
        dst: VAE 2 (its decoder draws the stitched images).
        images: the test images ``[N, 784]``; ``labels`` their classes ``[N]``.
        probe: a class probe fitted on VAE 2's codes of training images.
        own_reconstruction: ``decode₂(z₂) [N, 784]``; ``src_reconstruction``, ``decode₁(z₁)``
            (for the concept comparison; optional).
        k: neighbours for the Jaccard overlap.
    """
    translated = np.asarray(translated, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    images = images.reshape(images.shape[0], -1).double()
    if translated.shape != target.shape or translated.shape[0] != images.shape[0]:
        raise ValueError(
            f"translated {translated.shape}, target {target.shape} and images "
            f"{tuple(images.shape)} must describe the same N items in VAE 2's space"
        )
    stitched = decode_in_batches(dst, translated).double()
    own = own_reconstruction.double()
    scores = {
        **latent_agreement(translated, target),
        "stitched_bce": float(_per_image_bce(stitched, images).mean()),
        "stitched_mse": float((stitched - images).square().mean()),
        "stitched_mse_to_own": float((stitched - own).square().mean()),
        "stitched_bce_to_own": float(_per_image_bce(stitched, own).mean()),
        "jaccard": knn_jaccard(translated, target, k=k),
        "mrr": neighbour_mrr(translated, target),
        "probe_accuracy": float(accuracy_score(labels, probe.predict(translated))),
    }
    shoes = np.isin(labels, SHOE_CLASSES)
    if shoes.any():
        scores["concepts"] = _concept_shift(stitched[shoes], own[shoes], src_reconstruction, shoes)
    return scores


def _concept_shift(stitched, own, src_reconstruction, shoes) -> dict:
    """Mean absolute change of height (rows) and brightness between the stitched shoes and VAE
    2's own reconstructions (and VAE 1's, when given), over the shoes measurable in both."""
    after = shoe_concepts(stitched.float())
    references = {"own": shoe_concepts(own.float())}
    if src_reconstruction is not None:
        references["src"] = shoe_concepts(src_reconstruction[torch.as_tensor(shoes)].float())
    out = {"n_shoes": int(shoes.sum())}
    for name, before in references.items():
        for concept in ("height", "brightness"):
            diff = np.abs(after[concept] - before[concept])
            out[f"{concept}_shift_vs_{name}"] = (
                float(np.nanmean(diff)) if np.isfinite(diff).any() else None
            )
        out[f"unmeasurable_vs_{name}"] = int(np.isnan(after["height"] - before["height"]).sum())
    return out


def samples_to_match(curve: Mapping[int, float], target: float) -> int | None:
    """The smallest ``n`` whose score reaches ``target`` (``None`` if none does)."""
    reached = [n for n, score in sorted(curve.items()) if score >= target]
    return reached[0] if reached else None


def concept_transfer_scores(
    identifier,
    score: Callable[[np.ndarray, np.ndarray], float],
    transferred: Mapping[str, np.ndarray],
    z_pool: np.ndarray,
    y_pool: np.ndarray,
    y_test: np.ndarray,
    z_test: np.ndarray,
    sizes: Sequence[int],
    seeds: Sequence[int] = (0, 1, 2),
) -> dict:
    """Score each transferred identifier against learning directly in the receiving VAE.

    Args:
        identifier: the unfitted learner (cloned for every direct fit).
        score: ``score(y_true, prediction)``, e.g. ``r2_score`` or accuracy.
        transferred: predictions of each transfer on the test items, ``{name: [N]}``.
        z_pool, y_pool: the receiving VAE's labelled codes; direct learning draws ``n`` of them.
        y_test, z_test: the test items' labels and the receiving VAE's codes of them.
        sizes: the ``n`` grid; seeds: repeated draws (the curve is their mean).

    Returns ``{"transfer": {name: score}, "direct": {n: mean score}, "direct_sd": {n: sd},
    "samples_to_match": {name: n or None}}``.
    """
    sizes = [check_positive_int(n, "n") for n in sizes]
    if any(n > len(y_pool) for n in sizes):
        raise ValueError(f"the n grid {sizes} exceeds the labelled pool of {len(y_pool)}")
    transfer = {name: float(score(y_test, pred)) for name, pred in transferred.items()}
    direct, direct_sd = {}, {}
    for n in sizes:
        values = []
        for seed in seeds:
            rows = np.random.default_rng(seed).choice(len(y_pool), n, replace=False)
            if len(np.unique(y_pool[rows])) < 2:  # a classifier needs two classes
                values.append(float("nan"))
                continue
            fitted = clone(identifier).fit(z_pool[rows], y_pool[rows])
            values.append(float(score(y_test, fitted.predict(z_test))))
        direct[n] = float(np.nanmean(values)) if np.isfinite(values).any() else None
        direct_sd[n] = float(np.nanstd(values)) if np.isfinite(values).any() else None
    curve = {n: v for n, v in direct.items() if v is not None}
    return {
        "transfer": transfer,
        "direct": direct,
        "direct_sd": direct_sd,
        "samples_to_match": {name: samples_to_match(curve, s) for name, s in transfer.items()},
    }


def r2(y_true, prediction) -> float:
    """``R²`` (scikit-learn's), for :func:`concept_transfer_scores`."""
    return float(r2_score(y_true, prediction))


def sample_efficiency(
    names: Sequence[str],
    z1_fit: np.ndarray,
    z2_fit: np.ndarray,
    z1_test: np.ndarray,
    z2_test: np.ndarray,
    counts: Sequence[int],
    seed: int = 0,
) -> dict[str, dict[int, float | None]]:
    """Variance-weighted latent ``R²`` on the test codes of each translator fitted on only
    ``k`` pairs, for each
    ``k`` of ``counts`` (the relative translator takes all ``k`` pairs as its anchors when
    ``k`` is below its default anchor count).  ``None`` where ``k`` is below the pairs the
    translator needs (least squares needs more pairs than source dimensions)."""
    curves: dict[str, dict[int, float]] = {}
    for name in names:
        curves[name] = {}
        for k in counts:
            params = {"n_pairs": int(k), "seed": seed}
            if name == "relative":
                params["n_anchors"] = min(int(k), RelativeTranslator().n_anchors)
            translator = make_translator(name, **params)
            if k < translator.min_pairs(z1_fit.shape[1]):  # e.g. least squares needs k > D₁
                curves[name][int(k)] = None
                continue
            fitted = translator.fit(z1_fit, z2_fit)
            prediction = fitted.transform(z1_test)
            curves[name][int(k)] = float(
                r2_score(z2_test, prediction, multioutput="variance_weighted")
            )
    return curves


def pair_codes(vae, fit_images: torch.Tensor, test_images: torch.Tensor) -> dict:
    """One VAE's encoder means of the fitting and test images (``"fit"``, ``"test"``, float64
    numpy), its :class:`~pyro_latent.vae.metrics.Encodings` of both (``"fit_enc"``, ``"enc"``)
    and its own test reconstructions ``decode(μ(x))`` (``"recon"``)."""
    enc, fit = encode_dataset(vae, test_images), encode_dataset(vae, fit_images)
    return {
        "fit": fit.loc.double().numpy(),
        "fit_enc": fit,
        "test": enc.loc.double().numpy(),
        "enc": enc,
        "recon": decode_in_batches(vae, enc.loc),
    }


def evaluate_translators(
    src, dst, c1: dict, c2: dict, y_fit, y_test, test_images, *, seed: int = 0, names=None
) -> dict:
    """Fit every translator of ``names`` (default all) on the paired fitting codes, add the
    formula ``μ₂(decode₁(z₁))``, and score each on the test codes (:func:`translation_scores`).

    Returns ``{"fitted", "translated", "scores", "baseline"}``; the baseline is VAE 2 on its own
    (reconstruction MSE, probe accuracy on its own codes), the stitching's ceiling."""
    names = TRANSLATORS if names is None else names
    y_fit, y_test = np.asarray(y_fit), np.asarray(y_test)
    probe = class_probe(seed).fit(c2["fit"], y_fit)
    fitted = {n: make_translator(n, seed=seed).fit(c1["fit"], c2["fit"]) for n in names}
    translated = {n: t.transform(c1["test"]) for n, t in fitted.items()}
    # the encoder's own codes, c1["enc"].loc, in the dtype the model gave them
    translated["formula"] = formula_map(src, dst, c1["enc"].loc).double().numpy()
    common = {"own_reconstruction": c2["recon"], "src_reconstruction": c1["recon"]}
    scores = {
        n: translation_scores(z, c2["test"], dst, test_images, y_test, probe, **common)
        for n, z in translated.items()
    }
    images = test_images.reshape(test_images.shape[0], -1).double()
    baseline = {
        "own_mse": float((c2["recon"].double() - images).square().mean()),
        "own_bce": float(_per_image_bce(c2["recon"], images).mean()),
        "probe_accuracy": float(accuracy_score(y_test, probe.predict(c2["test"]))),
    }
    return {"fitted": fitted, "translated": translated, "scores": scores, "baseline": baseline}


def transfer_concepts(
    mapping,
    translator,
    c1: dict,
    c2: dict,
    labels: Mapping[str, np.ndarray],
    heights: Mapping[str, np.ndarray],
    sizes: Sequence[int],
    seed: int = 0,
) -> dict:
    """Carry a shoe-height regression and a class probe fitted on VAE 2's codes over to VAE 1
    (module docstring, (i)–(iv)), on the ``N`` points of ``mapping`` (the first ``N`` test codes
    of VAE 1).  ``seed`` seeds the probe, the guide draws and the direct-learning subsets.

    Args:
        mapping: :class:`~pyro_latent.translate.latent_mapping.PosteriorMapping` ``p(z₂ | z₁)``
            of those points, with its formula points.
        translator: a paired translator ``z₁ ↦ z₂`` fitted on encodings.
        c1, c2: :func:`pair_codes` of VAE 1 and VAE 2.
        labels, heights: ``{"fit": [M], "test": [N_test]}`` classes and measured shoe heights
            (NaN for non-shoes) of the fitting and test images.
        sizes: the ``n`` grid for learning directly on VAE 1's codes.
    """
    n = mapping.z1.shape[0]
    if not np.allclose(mapping.z1.double().numpy(), c1["test"][:n], atol=1e-5):
        raise ValueError("mapping.z1 must be VAE 1's first N test codes, c1['test'][:N]")
    generator = torch.Generator().manual_seed(seed)
    fit_draws = c2["fit_enc"].sample(generator).double().numpy()  # one z ~ q₂(z | x) per image
    concepts = {
        "height": (height_regressor(), r2, ~np.isnan(heights["fit"]), heights),
        "class": (class_probe(seed), accuracy_score, np.ones(len(labels["fit"]), bool), labels),
    }
    out = {}
    for concept, (learner, score, rows, y) in concepts.items():
        keep = ~np.isnan(np.asarray(y["test"][:n], dtype=float))
        f2 = clone(learner).fit(c2["fit"][rows], y["fit"][rows])
        f2_draws = clone(learner).fit(fit_draws[rows], y["fit"][rows])
        z1, kept = c1["test"][:n][keep], torch.as_tensor(keep)
        predictions = {
            "formula": f2.predict(mapping.formula.double().numpy()[keep]),
            "translator (affine)": f2.predict(translator.transform(z1)),
        }
        for label, fitted, which in (
            ("posterior mapping (image means)", f2, "means"),
            ("posterior mapping (guide)", f2_draws, "guide"),
            ("posterior mapping (posterior)", f2_draws, "posterior"),
        ):
            mean = transferred_expectation(fitted, mapping.draws(which)[:, kept])
            predictions[label] = mean if mean.ndim == 1 else fitted.classes_[mean.argmax(-1)]
        grid = [s for s in sizes if s <= rows.sum()]
        pool = (c1["fit"][rows], y["fit"][rows])
        out[concept] = concept_transfer_scores(
            learner, score, predictions, *pool, y["test"][:n][keep], z1, grid,
            seeds=(seed, seed + 1, seed + 2),
        )  # fmt: skip
        out[concept]["n_test"] = int(keep.sum())
    return out


def _compare_counts(into: int | None, other: int | None) -> str | None:
    if into is None or other is None:
        return None
    return "fewer" if into < other else "more" if into > other else "as many"


def translation_summary(records: Sequence[Mapping], active_units: Mapping[str, int]) -> dict:
    """The numbers the report quotes, from the per-pair records of the experiment.

    * ``pairs``: per pair, the paired translator with the lowest stitched MSE, its MSE beside the
      formula's and VAE 2's own reconstruction's, and the ratios between them (least squares'
      too, ``linear_over_own``, when it was fitted);
    * ``asymmetry``: for each pair whose reverse is also present and whose two VAEs differ in
      preset (``src_preset``/``dst_preset`` of the records), each translator's
      variance-weighted latent ``R²`` both ways, the active units of both VAEs, which way
      translates better on average (``easier``, into ``easier_into`` from ``easier_from``), and
      whether the VAE it translates into has ``"fewer"``, ``"more"`` or ``"as many"`` active
      units (``into_has``; ``None`` when a count is missing);
    * ``cka_vs_transfer``: per pair the unbiased CKA beside the formula's transfer scores, and
      their Spearman rank correlation over the pairs (``None`` below 4 pairs).
    """
    by_pair, index = {}, {(r["src"], r["dst"]): r for r in records}
    for r in records:
        paired = {n: s for n, s in r["scores"].items() if n != "formula"}
        best = min(paired, key=lambda n: paired[n]["stitched_mse"])
        best_mse, own = paired[best]["stitched_mse"], r["baseline"]["own_mse"]
        formula = r["scores"]["formula"]["stitched_mse"]
        by_pair[r["pair"]] = {
            "best": best,
            "best_stitched_mse": best_mse,
            "formula_stitched_mse": formula,
            "own_mse": own,
            "best_over_own": best_mse / own,
            "formula_over_best": formula / best_mse,
        }
        if "linear" in r["scores"]:
            by_pair[r["pair"]]["linear_over_own"] = r["scores"]["linear"]["stitched_mse"] / own
    asymmetry = []
    for (a, b), r in index.items():
        back = index.get((b, a))
        if back is None or r["src_preset"] == r["dst_preset"] or (b, a) < (a, b):
            continue
        r2s = {
            n: [r["scores"][n]["r2_weighted"], back["scores"][n]["r2_weighted"]]
            for n in r["scores"]
        }
        forward = float(np.mean([v[0] for v in r2s.values()]))
        backward = float(np.mean([v[1] for v in r2s.values()]))
        into, other = (b, a) if forward >= backward else (a, b)
        counts = {a: active_units.get(a), b: active_units.get(b)}
        asymmetry.append({
            "forward": r["pair"], "backward": back["pair"], "r2": r2s,
            "active_units": counts,
            "mean_r2": [forward, backward],
            "easier": r["pair"] if forward >= backward else back["pair"],
            "easier_into": into, "easier_from": other,
            "into_has": _compare_counts(counts[into], counts[other]),
        })  # fmt: skip
    rows = [
        {
            "pair": r["pair"],
            "cka": r["cka"],
            **{c: r["transfer"][c]["transfer"]["formula"] for c in ("height", "class")},
        }
        for r in records
    ]
    correlation = {}
    for concept in ("height", "class"):
        if len(rows) >= 4:
            cka, scores = [x["cka"] for x in rows], [x[concept] for x in rows]
            if len(set(cka)) < 2 or len(set(scores)) < 2:
                correlation[concept] = None  # a constant side has no ranking to correlate
            else:
                correlation[concept] = float(spearmanr(cka, scores).statistic)
        else:
            correlation[concept] = None
    return {
        "pairs": by_pair,
        "asymmetry": asymmetry,
        "cka_vs_transfer": {"rows": rows, "spearman": correlation},
    }
