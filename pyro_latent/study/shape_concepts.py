r"""The shape-concepts experiment's measurements, tables and verdicts: concept directions scored
against the rendered world's true factors (:mod:`pyro_latent.vae.shapes`).

At each evaluation image ``x = r(f)`` of a VAE (:func:`measure_image`) every direction of
:func:`~pyro_latent.concepts.shoe_directions.pair_directions` is built from the world's own
two-image pair (``height + 2``, a row added above and one below, and one brightness level) and
scored three ways (the post's "+2 pixels on top", ``height + 2, y - 1``, also moves the centre,
so it is not a pair of the height factor alone; its angle to the truth is a diagnostic):

* its **angle to the true direction** ``d_k`` of its concept
  (:func:`~pyro_latent.concepts.factor_directions.true_directions`) in the decoder's pull-back
  metric ``G = JᵀJ`` at ``z₀ = μ(x)``: the angle between the two image changes ``J d`` and
  ``J d_k``;
* its **purity** and **leakage** along a traversal, read by a factor read-out fitted on rendered
  images (:func:`~pyro_latent.concepts.factor_directions.factor_traversal_record`).

Per VAE it also records the disentanglement metrics of :mod:`pyro_latent.analysis.
disentanglement` (MIG, DCI, SAP) and the active units against the world's number of factors,
and :func:`translation_truth` reads the true factors off translated codes.  The verdict
functions return ``{"verdict": …}`` with the numbers and thresholds behind them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from sklearn.compose import TransformedTargetRegressor
from sklearn.metrics import r2_score
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from pyro_latent.analysis.disentanglement import dci, mutual_information_gap, sap_score
from pyro_latent.concepts import shoe_directions as sd
from pyro_latent.concepts import traversal as tr
from pyro_latent.concepts.directions import (
    angle_degrees,
    decoder_jacobian,
    two_image_direction,
    unit,
)
from pyro_latent.concepts.factor_directions import (
    FactorReadout,
    counterfactual,
    factor_record,
    factor_traversal_record,
    true_directions,
)
from pyro_latent.concepts.shoes import measure_shoes
from pyro_latent.core.checks import check_positive_int
from pyro_latent.core.latent_model import decoder_of, encoder_mean_of
from pyro_latent.study import shoe_concepts as shoe_study
from pyro_latent.study.shoe_concepts import fit_cavs, quartiles
from pyro_latent.translate.alignment import GromovProcrustesTranslator
from pyro_latent.translate.latent_mapping import formula_map
from pyro_latent.translate.translators import TRANSLATORS, make_translator
from pyro_latent.vae.data import SHOE_CLASSES
from pyro_latent.vae.metrics import active_units, encode_dataset
from pyro_latent.vae.shapes import FACTOR_LEVELS, FACTORS, ShapesData

__all__ = [
    "BRIGHTNESS_DIRECTIONS",
    "code_readout",
    "direction_table",
    "disentanglement_record",
    "evaluation_factors",
    "fashion_size_record",
    "measure_vae",
    "quartiles",
    "gram_schmidt_verdict",
    "measure_image",
    "method_ranking",
    "seed_versus_model",
    "separability_verdict",
    "size_verdict",
    "translation_record",
    "truth_reference",
    "translation_truth",
    "units_against_factors",
    "weight_count",
]

# The directions that aim at brightness; every other one aims at height.
BRIGHTNESS_DIRECTIONS = (
    "two-image b",
    "cav brightness",
    "cav brightness pattern",
    "gs euclidean b⊥h",
    "gs pullback b⊥h",
    "true brightness",
)
# The true directions themselves, traversed as a reference: what purity the truth reaches.
TRUE_DIRECTIONS = ("true height", "true brightness")
SEPARABLE_ANGLE = 60.0  # degrees between the true directions, in the pull-back metric
FOUND_MARGIN = 0.05  # a method "finds" a concept when its purity is this close to the truth's
SIZE_MARGIN = 0.05  # steps smaller than this between presets count as no change


def _concept(direction: str) -> str:
    return "brightness" if direction in BRIGHTNESS_DIRECTIONS else "height"


def measure_image(
    model,
    render: Callable,
    factors: torch.Tensor,
    readout: FactorReadout,
    cavs: Mapping[str, torch.Tensor],
    *,
    columns: Mapping[str, int],
    readout_columns: Mapping[str, int],
    alphas: Sequence[float],
    spreads,
    delta: Mapping[str, float],
    brightness_step: float,
) -> tuple[dict, dict]:
    """Every direction at the image ``r(f)`` of one factor row ``f [K]``, scored against the
    truth (module docstring).

    ``columns`` names the world's factor columns (``height``, ``y``, ``brightness``),
    ``readout_columns`` the read-out's; ``delta`` the central-difference step of each concept's
    true direction, ``brightness_step`` the two-image brightness change.  Returns
    ``(diagnostics, {direction: record})``: the diagnostics hold the pull-back angle between
    the true directions and those of
    :func:`~pyro_latent.concepts.shoe_directions.pair_directions`; each record adds
    ``angle_to_truth`` to the traversal's."""
    encode_mean, decode = encoder_mean_of(model), decoder_of(model)
    f = factors.reshape(1, -1)
    x = render(f)
    taller = render(counterfactual(f, {columns["height"]: 2.0}))  # one row above, one below
    post_edit = render(counterfactual(f, {columns["height"]: 2.0, columns["y"]: -1.0}))
    brighter = render(counterfactual(f, {columns["brightness"]: brightness_step}))
    with torch.no_grad():
        z0 = encode_mean(x)[0]
    h = two_image_direction(encode_mean, x, taller).to(z0.dtype)
    b = two_image_direction(encode_mean, x, brighter).to(z0.dtype)
    meters = {c: readout.meter(readout_columns[c]) for c in ("height", "brightness")}
    J = decoder_jacobian(decode, z0)
    G = J.T @ J  # the pull-back metric, shared with pair_directions
    directions, diagnostics = sd.pair_directions(decode, z0, h, b, cavs, meters, jacobian=J)
    truth = {
        c: true_directions(model, render, f, columns[c], delta[c])[0]
        for c in ("height", "brightness")
    }
    diagnostics["true_angle_hb_pullback"] = angle_degrees(truth["height"], truth["brightness"], G)
    diagnostics["true_angle_hb"] = angle_degrees(truth["height"], truth["brightness"])
    # The post's "+2 pixels on top" also moves the centre up a pixel: its angle to the height
    # factor alone, beside that of the pair used here (height + 2 alone).
    post = two_image_direction(encode_mean, x, post_edit).double()
    diagnostics["post_edit_angle_to_truth"] = angle_degrees(post, truth["height"], G)
    directions |= {f"true {c}": unit(truth[c]) for c in ("height", "brightness")}
    records = {}
    for name, d in directions.items():
        concept = _concept(name)
        record = factor_traversal_record(
            decode, readout, z0, d.to(z0.dtype), alphas, readout_columns[concept], spreads
        )
        records[name] = {**record, "angle_to_truth": angle_degrees(d, truth[concept], G)}
    path = sd.jacobian_path_images(decode, z0, alphas, meters)
    if path is not None:  # it starts along the Jacobian direction, hence the same angle
        record = factor_record(path, readout, alphas, readout_columns["height"], spreads)
        records["jacobian path"] = {
            **record,
            "angle_to_truth": records["jacobian"]["angle_to_truth"],
        }
    for name in records:
        del records[name]["values"]  # the curves stay out of the payload
    return diagnostics, records


def direction_table(records: Sequence[Mapping]) -> list[dict]:
    """One row per ``(vae, direction)``: quartiles of the angle to the truth, the gain (the
    target's slope per latent unit), the purity and the summed leakage, over the records
    (``vae``, ``direction`` and :func:`measure_image`'s fields).  Rows keep the order in which
    each pair first appears."""
    groups: dict[tuple, list[Mapping]] = {}
    for record in records:
        groups.setdefault((record["vae"], record["direction"]), []).append(record)
    rows = []
    for (vae, direction), group in groups.items():
        leak = [
            None if any(v is None for v in r["leakage"].values()) else sum(r["leakage"].values())
            for r in group
        ]
        rows.append(
            {
                "vae": vae,
                "preset": group[0]["preset"],
                "direction": direction,
                "concept": _concept(direction),
                "n": len(group),
                "angle_to_truth": quartiles([r["angle_to_truth"] for r in group]),
                "gain": quartiles([r["gain"] for r in group]),
                "purity": quartiles([r["purity"] for r in group]),
                "leakage": quartiles(leak),
            }
        )
    return rows


def _median(row: Mapping, key: str):
    return row[key]["median"]


def method_ranking(table: Sequence[Mapping]) -> dict:
    """For each concept, the methods' directions (not :data:`TRUE_DIRECTIONS`) ordered by
    their median purity over every VAE's medians, best first, with their median angle to the
    truth: ``{concept: [{direction, purity, angle_to_truth}, …]}``."""
    out: dict = {}
    for concept in ("height", "brightness"):
        by_direction: dict[str, dict[str, list]] = {}
        for row in table:
            if row["concept"] == concept and row["direction"] not in TRUE_DIRECTIONS:
                entry = by_direction.setdefault(row["direction"], {"purity": [], "angle": []})
                entry["purity"].append(_median(row, "purity"))
                entry["angle"].append(_median(row, "angle_to_truth"))
        ranked = [
            {
                "direction": d,
                "purity": quartiles(v["purity"])["median"],
                "angle_to_truth": quartiles(v["angle"])["median"],
            }
            for d, v in by_direction.items()
        ]
        out[concept] = sorted(ranked, key=lambda r: -(r["purity"] or 0.0))
    return out


def truth_reference(table: Sequence[Mapping]) -> dict:
    """The purity the true directions themselves reach: for each concept, the median over the
    VAEs' medians of ``true <concept>`` (``None`` when not measured)."""
    return {
        concept: quartiles(
            [_median(r, "purity") for r in table if r["direction"] == f"true {concept}"]
        )["median"]
        for concept in ("height", "brightness")
    }


def separability_verdict(diagnostics: Sequence[Mapping], ranking: Mapping, truth: Mapping) -> dict:
    """Height and brightness are *separable* directions when their true directions are far
    apart: median pull-back angle ≥ :data:`SEPARABLE_ANGLE` (the image changes they make point
    different ways).  Beside it, per concept, the best method and whether it is *found*: its
    median purity within :data:`FOUND_MARGIN` of the true direction's own (``truth``, from
    :func:`truth_reference`), or above it."""
    angle = quartiles([d["true_angle_hb_pullback"] for d in diagnostics])
    if angle["median"] is None:
        return {"verdict": "cannot be tested", "true_angle": angle}
    best = {c: (ranking[c][0] if ranking.get(c) else None) for c in ("height", "brightness")}
    found = {
        c: None
        if best[c] is None or best[c]["purity"] is None or truth.get(c) is None
        else best[c]["purity"] >= truth[c] - FOUND_MARGIN
        for c in best
    }
    return {
        "verdict": "separable" if angle["median"] >= SEPARABLE_ANGLE else "not separable",
        "true_angle": angle,
        "angle_threshold": SEPARABLE_ANGLE,
        "best": best,
        "truth_purity": dict(truth),
        "found": found,
        "found_margin": FOUND_MARGIN,
    }


def gram_schmidt_verdict(table: Sequence[Mapping]) -> dict:
    """Whether Gram–Schmidt helps when the truth is known: per VAE, the median purity and angle
    to the truth of the two-image ``h`` and of ``h`` made orthogonal to ``b`` in each metric.
    The verdict is "helps" when the pull-back Gram–Schmidt is purer than ``h`` on most VAEs."""
    rows = {(r["vae"], r["direction"]): r for r in table}
    per_vae, better = {}, []
    for vae in dict.fromkeys(r["vae"] for r in table):
        entry = {}
        for d in ("two-image h", "gs euclidean", "gs pullback"):
            if (vae, d) in rows:
                entry[d] = {
                    "purity": _median(rows[vae, d], "purity"),
                    "angle_to_truth": _median(rows[vae, d], "angle_to_truth"),
                }
        per_vae[vae] = entry
        h, gs = entry.get("two-image h"), entry.get("gs pullback")
        if h and gs and h["purity"] is not None and gs["purity"] is not None:
            better.append(gs["purity"] > h["purity"])
    if not better:
        return {"verdict": "cannot be tested", "per_vae": per_vae}
    return {
        "verdict": "helps" if sum(better) > len(better) / 2 else "does not help",
        "purer_on": int(sum(better)),
        "of": len(better),
        "per_vae": per_vae,
    }


def disentanglement_record(
    codes_fit, factors_fit, codes_test, factors_test, *, discrete: Sequence[bool], seed: int = 0
) -> dict:
    """MIG on the test codes, and DCI and SAP fitted on ``fit`` and scored on ``test``
    (:mod:`pyro_latent.analysis.disentanglement`): ``{"mig", "dci": {disentanglement,
    completeness, informativeness}, "sap"}`` with the per-factor values."""
    mig = mutual_information_gap(codes_test, factors_test)
    scores = dci(codes_fit, factors_fit, codes_test, factors_test, discrete=discrete, seed=seed)
    sap = sap_score(codes_fit, factors_fit, codes_test, factors_test, discrete=discrete)
    return {
        "mig": mig["mig"],
        "mig_per_factor": mig["per_factor"],
        "dci": {k: scores[k] for k in ("disentanglement", "completeness", "informativeness")},
        "dci_informativeness_per_factor": scores["per_factor_informativeness"],
        "sap": sap["sap"],
        "sap_per_factor": sap["per_factor"],
    }


def seed_versus_model(records: Mapping[str, Sequence[float]]) -> dict:
    """Locatello et al.'s observation, on one metric: ``records`` maps each preset to its
    values over seeds.  Compares the spread of the presets' means (``between``, s.d.) with the
    mean spread within a preset (``within``, s.d. over seeds); "seed matters more" when
    ``within ≥ between``."""
    values = {k: [v for v in vs if v is not None] for k, vs in records.items()}
    values = {k: vs for k, vs in values.items() if len(vs) >= 2}
    if len(values) < 2:
        return {"verdict": "cannot be tested"}
    means = [float(np.mean(v)) for v in values.values()]
    within = float(np.mean([np.std(v, ddof=1) for v in values.values()]))
    between = float(np.std(means, ddof=1))
    return {
        "verdict": "seed matters more" if within >= between else "model matters more",
        "within": within,
        "between": between,
    }


def units_against_factors(units: Mapping[str, Sequence[int]], n_factors: int) -> dict:
    """Does a VAE use as many latent dimensions as the world has factors?  Per preset, the
    active units of each seed, their mean, and "more", "as many" or "fewer" than
    ``n_factors`` (by the mean)."""
    out = {}
    for preset, values in units.items():
        if not len(values):
            raise ValueError(f"no active-unit counts for preset {preset!r}")
        mean = float(np.mean(values))
        verdict = "more" if mean > n_factors else "fewer" if mean < n_factors else "as many"
        out[preset] = {"units": list(values), "mean": mean, "verdict": verdict}
    return {"n_factors": n_factors, "presets": out}


def size_verdict(
    values: Mapping[str, float | None], sizes: Mapping[str, int], margin: float = SIZE_MARGIN
) -> dict:
    """Whether bigger models score higher on one measure: ``values`` per preset (a median or a
    mean over seeds), ``sizes`` their weight counts.  "bigger is better" when the measure rises
    by more than ``margin`` at every step up in size, "bigger is worse" when it falls by more
    than ``margin`` at every step, else "no clear trend"."""
    missing = [p for p in values if p not in sizes]
    if missing:
        raise ValueError(f"no weight count for preset(s) {', '.join(missing)}")
    order = sorted((p for p in values if values[p] is not None), key=lambda p: sizes[p])
    if len(order) < 2:
        return {"verdict": "cannot be tested", "order": order}
    steps = np.diff([values[p] for p in order])
    verdict = (
        "bigger is better" if (steps > margin).all()
        else "bigger is worse" if (steps < -margin).all() else "no clear trend"
    )  # fmt: skip
    return {"verdict": verdict, "order": order, "values": [values[p] for p in order],
            "margin": margin}  # fmt: skip


def weight_count(model) -> int:
    """The number of weights of a torch model."""
    return sum(p.numel() for p in model.parameters())


def code_readout(seed: int = 0) -> TransformedTargetRegressor:
    """The read-out of the continuous factors from a VAE's codes: standardised codes into an
    MLP regressor (one hidden layer of 128) of the standardised factors, predicting in the
    factors' own units.  Early stopping on a tenth of the codes ends the fit (it converges in
    well under ``max_iter`` epochs on the study's codes)."""
    mlp = MLPRegressor(
        hidden_layer_sizes=(128,), max_iter=2000, early_stopping=True, random_state=seed
    )
    return TransformedTargetRegressor(
        make_pipeline(StandardScaler(), mlp), transformer=StandardScaler()
    )


def translation_truth(
    readout_dst, factors_test: np.ndarray, translated: Mapping[str, np.ndarray], own: np.ndarray
) -> dict:
    """R² of each true factor (columns of ``factors_test``) read by VAE 2's code read-out
    (``readout_dst``, :func:`code_readout` fitted on VAE 2's own codes) off each translation of
    VAE 1's test codes, and off VAE 2's own test codes (the ceiling, ``"own"``):
    ``{name: {"per_factor": [...], "mean": r²}}``."""
    factors_test = np.asarray(factors_test, dtype=np.float64)
    out = {}
    for name, codes in {**translated, "own": own}.items():
        predicted = readout_dst.predict(np.asarray(codes, dtype=np.float64))
        r2 = r2_score(factors_test, predicted, multioutput="raw_values")
        out[name] = {"per_factor": [float(v) for v in r2], "mean": float(np.mean(r2))}
    return out


def evaluation_factors(n: int, seed: int) -> torch.Tensor:
    """``n`` factor rows of the shapes world drawn from its interior levels (every level of the
    shape), so that the two-image edits (``height + 2, y - 1``; one brightness level) and the
    true directions' steps stay inside the frame and the brightness range."""
    n = check_positive_int(n, "n (evaluation images)")
    generator = torch.Generator().manual_seed(seed + 7)
    columns = []
    for name in FACTORS:
        levels = FACTOR_LEVELS[name] if name == "shape" else FACTOR_LEVELS[name][1:-1]
        levels = torch.tensor(levels, dtype=torch.float32)
        columns.append(levels[torch.randint(len(levels), (n,), generator=generator)])
    return torch.stack(columns, 1)


def translation_record(
    src, dst, fit: ShapesData, test: ShapesData, *, names, gw_points: int, seed: int = 0
) -> dict:
    """Every paired translator of :data:`~pyro_latent.translate.translators.TRANSLATORS`
    fitted on the codes of ``fit``'s images, the formula ``μ₂(g₁(z₁))``, and the unpaired
    Gromov–Wasserstein–Procrustes on two halves of ``fit`` (different images on each side),
    each scored by :func:`translation_truth` on ``test``'s continuous factors."""
    z1, z2 = (encode_dataset(v, fit.images).loc.double().numpy() for v in (src, dst))
    t1 = encode_dataset(src, test.images).loc
    t2 = encode_dataset(dst, test.images).loc.double().numpy()
    codes = t1.double().numpy()
    translated = {
        n: make_translator(n, seed=seed).fit(z1, z2).transform(codes) for n in TRANSLATORS
    }
    translated["formula"] = formula_map(src, dst, t1).double().numpy()
    half = len(z1) // 2
    aligned = GromovProcrustesTranslator(n_points=gw_points, seed=seed).fit(z1[:half], z2[half:])
    translated["gromov-procrustes (unpaired)"] = aligned.transform(codes)
    readout = code_readout(seed).fit(z2, fit.factors[:, 1:].numpy())
    scores = translation_truth(readout, test.factors[:, 1:].numpy(), translated, t2)
    return {"pair": " → ".join(names), "factors": list(FACTORS[1:]), **scores}


def measure_vae(
    vae,
    readout: FactorReadout,
    fit: ShapesData,
    test: ShapesData,
    evaluation: torch.Tensor,
    *,
    render: Callable,
    cav_images: int,
    alphas: Sequence[float],
    spreads,
    delta: Mapping[str, float],
    seed: int = 0,
) -> dict:
    """One shapes VAE: its disentanglement (codes of ``fit`` against ``test``), active units,
    regression CAVs of the true height and brightness on ``cav_images`` codes of ``fit``, and
    :func:`measure_image` at every row of ``evaluation``.  Returns ``{"metrics",
    "active_units", "diagnostics": [...], "records": [...]}`` (records keyed by ``image``)."""
    columns = {name: FACTORS.index(name) for name in ("height", "y", "brightness")}
    readout_columns = {c: FACTORS.index(c) - 1 for c in ("height", "brightness")}
    test_enc = encode_dataset(vae, test.images)
    codes = test_enc.loc.double().numpy()
    fit_codes = encode_dataset(vae, fit.images).loc.double().numpy()
    discrete = [name == "shape" for name in FACTORS]
    metrics = disentanglement_record(
        fit_codes, fit.factors.numpy(), codes, test.factors.numpy(), discrete=discrete, seed=seed
    )
    truth = {c: fit.factors[:cav_images, columns[c]].numpy() for c in ("height", "brightness")}
    cavs, _ = fit_cavs(fit_codes[:cav_images], truth)
    diagnostics, records = [], []
    for i, f in enumerate(evaluation):
        diag, by_direction = measure_image(
            vae, render, f, readout, cavs, columns=columns, readout_columns=readout_columns,
            alphas=alphas, spreads=spreads, delta=delta, brightness_step=0.1,
        )  # fmt: skip
        diagnostics.append({"image": i, **diag})
        records += [{"image": i, "direction": d, **r} for d, r in by_direction.items()]
    return {
        "metrics": metrics,
        "active_units": int(active_units(test_enc).sum()),
        "diagnostics": diagnostics,
        "records": records,
    }


FASHION_DIRECTIONS = ("two-image h", "gs pullback", "jacobian")


def fashion_size_record(
    vaes: Mapping, test, *, shoes: int, cav_images: int, alphas: Sequence[float]
) -> dict:
    """The size question on FashionMNIST, with the shoe meters
    (:func:`~pyro_latent.concepts.shoe_directions.measure_shoe`): the shoe-height purity of
    :data:`FASHION_DIRECTIONS` under each of ``vaes`` (``{preset: VAE}``), at ``shoes`` test
    shoes spread over ``test``'s shoes, CAVs fitted on the first ``cav_images``.  Returns the
    shoe study's direction table, each preset's median purity over it, and the weight counts."""
    shoe_images = test.select(SHOE_CLASSES).images
    spreads = tr.meter_spreads(shoe_images)
    measured = measure_shoes(shoe_images[:cav_images], shoe_only=True)
    meters = {k: measured[k].tolist() for k in ("height", "brightness")}
    picks = torch.linspace(0, len(shoe_images) - 1, shoes).round().long().tolist()
    records, sizes, measured = [], {}, {}
    for preset, vae in vaes.items():
        sizes[preset] = weight_count(vae)
        codes = encode_dataset(vae, shoe_images[:cav_images]).loc.double().numpy()
        cavs, _ = shoe_study.fit_cavs(codes, meters)
        diagnostics, found, _ = shoe_study.measure_many_shoes(
            vae, shoe_images, picks, cavs, alphas, spreads, {"vae": preset}
        )
        measured[preset] = len(diagnostics)
        records += [r for r in found if r["direction"] in FASHION_DIRECTIONS]
    table = shoe_study.direction_table(records)
    purity = {
        p: shoe_study.median_or_none([r["purity"]["median"] for r in table if r["vae"] == p])
        for p in vaes
    }
    return {"table": table, "purity": purity, "sizes": sizes, "n_shoes": len(picks),
            "measured_shoes": measured}  # fmt: skip
