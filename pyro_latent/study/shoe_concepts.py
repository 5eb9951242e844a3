r"""The shoe-concepts experiment's tables and verdicts, from many traversals (shoes × seeds).

:func:`direction_table` reduces the traversal records of
:mod:`pyro_latent.concepts.traversal` to one row per direction, with medians and interquartile
ranges; the verdict functions turn rows into
``{"verdict": "agrees" | "disagrees" | "cannot be tested", ...}`` with the number and the threshold
behind each.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from pyro_latent.concepts import shoe_directions as sd
from pyro_latent.concepts.directions import RegressionCAV
from pyro_latent.concepts.shoes import EmptyShapeError

__all__ = [
    "brightness_claim_verdict",
    "cav_reading",
    "collinearity_verdict",
    "commenter_summary",
    "compare_records",
    "decay_table",
    "direction_table",
    "fit_cavs",
    "gram_schmidt_summary",
    "measure_many_shoes",
    "median_or_none",
    "purest_direction",
    "quartiles",
]


def decay_table(records: Sequence[Mapping], directions: Sequence[str]) -> dict:
    """Median purity at each distance for the given ``directions``, per VAE:
    ``{vae: {direction: [[α, median purity], …]}}``."""
    out: dict = {}
    for r in records:
        if r["direction"] in directions:
            by_vae = out.setdefault(r["vae"], {}).setdefault(r["direction"], {})
            for alpha, purity in r["purity_by_distance"]:
                by_vae.setdefault(alpha, []).append(purity)
    return {
        vae: {
            d: [[a, quartiles(ps)["median"]] for a, ps in sorted(v.items())]
            for d, v in dirs.items()
        }
        for vae, dirs in out.items()
    }


def quartiles(values: Sequence[float]) -> dict:
    """Median and quartiles of the finite values (``None`` ones skipped), with their count."""
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return {"median": None, "q1": None, "q3": None, "n": 0}
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return {"median": float(median), "q1": float(q1), "q3": float(q3), "n": len(values)}


def direction_table(records: Sequence[Mapping]) -> list[dict]:
    """One row per ``(vae, direction)`` over records carrying those keys and the fields of
    :func:`traversal_record`: medians and quartiles of gain, leakage and purity, and the median
    monotone ``α`` range.  Rows keep the order in which each pair first appears."""
    groups: dict[tuple, list[Mapping]] = {}
    for record in records:
        groups.setdefault((record["vae"], record["direction"]), []).append(record)
    rows = []
    for (vae, direction), group in groups.items():
        lo = quartiles([r["alpha_lo"] for r in group])["median"]
        hi = quartiles([r["alpha_hi"] for r in group])["median"]
        rows.append(
            {
                "vae": vae,
                "direction": direction,
                "n": len(group),
                "height_gain": quartiles([r["height_gain"] for r in group]),
                "brightness_leakage": quartiles([r["brightness_leakage"] for r in group]),
                "purity": quartiles([r["purity"] for r in group]),
                "alpha_range": [lo, hi],
            }
        )
    return rows


def brightness_claim_verdict(row: Mapping, spreads: Mapping, threshold: float = 0.25) -> dict:
    """The post's claim for the large VAE: "moving along the height vector also increases
    brightness".

    Measured as the brightness gained per unit of height gained, both in spreads over real shoes
    (``spreads["height"]``, ``spreads["brightness"]``), from the row's medians:
    ``L = (leakage / s_β) / (gain / s_h)``.  ``L > threshold`` agrees (brightness rises at least
    ``threshold`` as fast as height, in spreads), ``L ≤ threshold`` disagrees, and a direction that
    gains no height cannot test it.
    """
    gain, leak = row["height_gain"]["median"], row["brightness_leakage"]["median"]
    s_h, s_b = spreads["height"], spreads["brightness"]
    if gain is None or leak is None or gain <= 0 or not (s_h > 0 and s_b > 0):
        return {"verdict": "cannot be tested", "value": None, "threshold": threshold}
    value = (leak / s_b) / (gain / s_h)
    return {
        "verdict": "agrees" if value > threshold else "disagrees",
        "value": value,
        "threshold": threshold,
        "leakage_per_unit": leak,
        "gain_per_unit": gain,
    }


def collinearity_verdict(
    condition_numbers: Sequence[float], angles: Sequence[float], threshold: float = 10.0
) -> dict:
    """The commenter's question, "do you run into a collinearity problem?", answered from the
    condition numbers of ``[h b]`` (and the angles between them) over shoes and seeds: yes when
    the median condition number exceeds ``threshold`` (a 10× amplification of errors in ``α``).
    """
    finite = [c for c in condition_numbers if c is not None]
    if not finite:
        return {"verdict": "cannot be tested", "value": None, "threshold": threshold}
    value = float(np.median(finite))
    return {
        "verdict": "collinear" if value > threshold else "not collinear",
        "value": value,
        "threshold": threshold,
        "angle_median": float(np.median(angles)) if len(angles) else None,
        "angle_min": float(np.min(angles)) if len(angles) else None,
    }


def median_or_none(values) -> float | None:
    """The median of the values that were measured (not ``None``), or ``None`` if none was."""
    values = [v for v in values if v is not None]
    return float(np.median(values)) if values else None


def gram_schmidt_summary(
    diagnostics: Sequence[Mapping], table: Sequence[Mapping], threshold: float = 0.8
) -> dict:
    """Why Gram–Schmidt "didn't quite work", per VAE, from the per-shoe diagnostics of
    :func:`~pyro_latent.concepts.shoe_directions.directions_at` and the :func:`direction_table`.

    For each VAE: the median angle between ``h`` and ``b`` in both metrics, the median pixel-space
    cosine between ``J h_⊥`` and ``J b`` for each Gram–Schmidt, and the median purity of ``h`` and
    of both orthogonalised directions.  ``euclidean_worked`` says whether the Euclidean ``h_⊥``
    reaches purity ``threshold``; ``cause`` names the measured reason when it does not:
    ``"metric"`` when the pull-back version is purer (the Euclidean latent metric is not the
    decoder's), ``"angle"`` when ``h`` and ``b`` are within 30° (little is left after removing
    ``b``), both, or ``"neither"``.  ``pullback_loses_height`` flags a pull-back ``h_⊥`` that is
    less pure than ``h`` itself: removing ``b``'s pixel change removed height with it.
    """
    purity = {(r["vae"], r["direction"]): r["purity"]["median"] for r in table}
    out = {}
    for vae in dict.fromkeys(d["vae"] for d in diagnostics):
        mine = [d for d in diagnostics if d["vae"] == vae]
        row = {
            key: median_or_none([d[key] for d in mine])
            for key in (
                "angle_hb",
                "angle_hb_pullback",
                "pixel_cosine_gs_euclidean",
                "pixel_cosine_gs_pullback",
            )
        }
        row |= {
            "purity_h": purity.get((vae, "two-image h")),
            "purity_euclidean": purity.get((vae, "gs euclidean")),
            "purity_pullback": purity.get((vae, "gs pullback")),
            "purity_b": purity.get((vae, "two-image b")),
            "purity_b_euclidean": purity.get((vae, "gs euclidean b⊥h")),
            "purity_b_pullback": purity.get((vae, "gs pullback b⊥h")),
            "threshold": threshold,
        }
        euclidean, pullback = row["purity_euclidean"], row["purity_pullback"]
        row["pullback_loses_height"] = (
            None if pullback is None or row["purity_h"] is None else pullback < row["purity_h"]
        )
        if euclidean is None:
            row |= {"euclidean_worked": None, "cause": "cannot be tested"}
        else:
            causes = []
            if pullback is not None and pullback > euclidean + 0.05:
                causes.append("metric")
            if row["angle_hb"] is not None and row["angle_hb"] < 30:
                causes.append("angle")
            worked = euclidean >= threshold
            row |= {
                "euclidean_worked": worked,
                "cause": None if worked else (" and ".join(causes) or "neither"),
            }
        out[vae] = row
    return out


def commenter_summary(diagnostics: Sequence[Mapping]) -> dict:
    """Per VAE: for how many shoes the bisection found an ``α`` (the brightness change crossed
    zero inside the bracket), and the quartiles of ``α`` and of its sensitivity."""
    out = {}
    for vae in dict.fromkeys(d["vae"] for d in diagnostics):
        mine = [d["commenter"] for d in diagnostics if d["vae"] == vae]
        found = [c for c in mine if c["found"]]
        out[vae] = {
            "found": len(found),
            "total": len(mine),
            "alpha": quartiles([c["alpha"] for c in found]),
            "sensitivity": quartiles([c["sensitivity"] for c in found]),
        }
    return out


def fit_cavs(codes, meters: Mapping, inactive_variance: float = 0.01) -> tuple[dict, dict]:
    """Regression CAVs (:class:`~pyro_latent.concepts.directions.RegressionCAV`) of each meter
    ``meters[name] [N]`` on the codes ``[N, D]``.

    Returns the directions for :func:`~pyro_latent.concepts.shoe_directions.directions_at` (the
    filter under ``name``, the pattern under ``"<name> pattern"``) and a record per meter:
    training R², the gains along filter and pattern (meter units per latent unit), and the share
    ``Σ_{inactive d} v_d²`` of each unit direction ``v`` on the inactive units, those whose code
    variance is at most ``inactive_variance`` (the study's active-unit threshold)."""
    codes = np.asarray(codes, dtype=np.float64)
    inactive = codes.var(0) <= inactive_variance
    directions, record = {}, {}
    for name, values in meters.items():
        cav = RegressionCAV().fit(codes, values)
        directions[name], directions[f"{name} pattern"] = cav.filter_, cav.pattern_
        record[name] = {
            "r2": cav.r2_,
            "filter_gain": cav.gain_,
            "pattern_gain": cav.pattern_gain_,
            "filter_inactive_share": float((cav.filter_.numpy()[inactive] ** 2).sum()),
            "pattern_inactive_share": float((cav.pattern_.numpy()[inactive] ** 2).sum()),
            "n_inactive": int(inactive.sum()),
        }
    return directions, record


def cav_reading(table: Sequence[Mapping], cav_fit: Mapping, meter: str = "height") -> dict:
    """Per VAE, the ``meter`` CAV's filter against its pattern: each one's median gain, leakage
    and purity from the :func:`direction_table` rows ``"cav <meter>"`` and
    ``"cav <meter> pattern"``, and the mean over seeds (``cav_fit["<vae>-<seed>"]``, records of
    :func:`fit_cavs`) of each direction's share on the inactive units.  ``pattern_gains_more``:
    the pattern's median height gain exceeds the filter's (``None`` when either is missing)."""
    rows = {(r["vae"], r["direction"]): r for r in table}
    out = {}
    for vae in dict.fromkeys(r["vae"] for r in table):
        fits = [f[meter] for key, f in cav_fit.items() if key.rsplit("-", 1)[0] == vae]
        entry = {}
        for kind, direction in (("filter", f"cav {meter}"), ("pattern", f"cav {meter} pattern")):
            row = rows.get((vae, direction))
            entry[kind] = {
                "height_gain": row["height_gain"]["median"] if row else None,
                "brightness_leakage": row["brightness_leakage"]["median"] if row else None,
                "purity": row["purity"]["median"] if row else None,
                "inactive_share": float(np.mean([f[f"{kind}_inactive_share"] for f in fits]))
                if fits
                else None,
            }
        entry["r2"] = float(np.mean([f["r2"] for f in fits])) if fits else None
        entry["n_inactive"] = max((f["n_inactive"] for f in fits), default=None)
        gains = (entry["filter"]["height_gain"], entry["pattern"]["height_gain"])
        entry["pattern_gains_more"] = None if None in gains else gains[1] > gains[0]
        out[vae] = entry
    return out


def purest_direction(table: Sequence[Mapping]) -> dict:
    """Per VAE, the direction of the :func:`direction_table` with the highest median purity, and
    that purity (``{vae: {"direction", "purity"}}``; VAEs with no measurable purity are left
    out)."""
    best: dict = {}
    for row in table:
        purity = row["purity"]["median"]
        if purity is not None and purity > best.get(row["vae"], {"purity": -1.0})["purity"]:
            best[row["vae"]] = {"direction": row["direction"], "purity": purity}
    return best


def compare_records(first: Mapping, second: Mapping, threshold: float = 0.8) -> dict:
    """Two traversals of one start side by side (e.g. the height vector from the encoder and
    from posterior means): their gain, leakage and purity, and ``same_conclusion``, whether both
    are pure height (purity ``≥ threshold``) or both are not, with brightness leaking the same
    way (same sign)."""
    keys = ("height_gain", "brightness_leakage", "purity")
    a, b = ({k: r[k] for k in keys} for r in (first, second))
    if a["purity"] is None or b["purity"] is None:
        same = None
    else:
        same = (a["purity"] >= threshold) == (b["purity"] >= threshold) and (
            (a["brightness_leakage"] > 0) == (b["brightness_leakage"] > 0)
        )
    return {"first": a, "second": b, "threshold": threshold, "same_conclusion": same}


def measure_many_shoes(
    model, shoes, picks: Sequence[int], cavs, alphas, spreads, key: Mapping
) -> tuple[list[dict], list[dict], list[dict]]:
    """:func:`~pyro_latent.concepts.shoe_directions.measure_shoe` at each shoe ``shoes[i]``,
    ``i`` in ``picks``: ``(diagnostics, records, skipped)``, each row carrying ``key`` and
    ``"shoe": i``, the records one per direction; a shoe with nothing to measure
    (:class:`~pyro_latent.concepts.shoes.EmptyShapeError`) is listed in ``skipped``."""
    diagnostics, records, skipped = [], [], []
    for shoe in picks:
        where = {**key, "shoe": shoe}
        try:
            diag, by_direction = sd.measure_shoe(model, shoes[shoe], cavs, alphas, spreads)
        except EmptyShapeError:
            skipped.append(where)
            continue
        diagnostics.append({**where, **diag})
        records += [{**where, "direction": d, **r} for d, r in by_direction.items()]
    return diagnostics, records, skipped
