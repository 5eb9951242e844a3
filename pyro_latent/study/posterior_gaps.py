r"""The posterior_gaps experiment's tables: Cremer et al.'s two gaps, mean ± standard error.

:func:`gap_rows` turns the per-image arrays of :func:`~pyro_latent.vae.gaps.inference_gaps` into
one record per image; :func:`gap_table` reduces them, per VAE, to the mean and standard error of
the approximation gap ``log p(x) - L[q*]`` and the amortisation gap ``L[q*] - L[q]``, over all
real test images, per class, and for each off-distribution group (the post's whitened and
taller shoes).  A standard error is ``s / √n`` over images (seeds pooled; the seeds' own spread
is in ``by_seed``).  Images without a reliable ``log p(x)`` are counted and left out of the
approximation gap, never averaged in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from pyro_latent.vae.gaps import PROPOSALS

__all__ = ["gap_rows", "gap_table", "gap_verdict", "mean_and_se", "source_counts"]

GAPS = ("approximation_gap", "amortisation_gap")


def mean_and_se(values: Sequence[float]) -> dict:
    """``{"mean", "se", "n"}`` over the finite values (``None`` for mean and se when there are
    none; ``se`` is ``None`` for a single value)."""
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not finite:
        return {"mean": None, "se": None, "n": 0}
    se = float(np.std(finite, ddof=1) / math.sqrt(len(finite))) if len(finite) > 1 else None
    return {"mean": float(np.mean(finite)), "se": se, "n": len(finite)}


def gap_rows(vae: str, seed: int, gaps: Mapping, groups: Sequence[str], labels) -> list[dict]:
    """One record per image: ``vae``, ``seed``, ``group`` (``"real"`` or an off-distribution
    name), ``label`` (the class), the two gaps, ``log_evidence``, the two ELBOs and
    ``reliable``, and ``log_evidence_from``, the proposal of
    :data:`~pyro_latent.vae.gaps.PROPOSALS` that gave ``log p(x)`` (``None`` when none was
    reliable)."""
    keys = ("log_evidence", "local_elbo", "guide_elbo", *GAPS)
    rows = []
    for i, (group, label) in enumerate(zip(groups, labels, strict=True)):
        row = {"vae": vae, "seed": seed, "group": group, "label": int(label)}
        for key in keys:
            value = float(gaps[key][i])
            row[key] = value if math.isfinite(value) else None
        row["reliable"] = bool(gaps["reliable"][i])
        source = int(gaps["log_evidence_from"][i])
        row["log_evidence_from"] = PROPOSALS[source] if source >= 0 else None
        rows.append(row)
    return rows


def _summary(rows: Sequence[Mapping]) -> dict:
    out = {gap: mean_and_se([r[gap] for r in rows]) for gap in GAPS}
    out["log_evidence"] = mean_and_se([r["log_evidence"] for r in rows])
    out["n_images"] = len(rows)
    out["n_unreliable"] = sum(not r["reliable"] for r in rows)
    return out


def gap_table(rows: Sequence[Mapping], class_names: Sequence[str]) -> dict:
    """Per VAE: ``real`` (all real images), ``by_class`` (class name -> summary), ``off`` (group
    -> summary) and ``by_seed`` (seed -> summary of its real images); each summary has the two
    gaps and ``log_evidence`` as :func:`mean_and_se`, ``n_images`` and ``n_unreliable``."""
    table: dict = {}
    for vae in dict.fromkeys(r["vae"] for r in rows):
        mine = [r for r in rows if r["vae"] == vae]
        real = [r for r in mine if r["group"] == "real"]
        table[vae] = {
            "real": _summary(real),
            "by_class": {
                class_names[c]: _summary([r for r in real if r["label"] == c])
                for c in sorted({r["label"] for r in real})
            },
            "off": {
                g: _summary([r for r in mine if r["group"] == g])
                for g in dict.fromkeys(r["group"] for r in mine if r["group"] != "real")
            },
            "by_seed": {
                str(s): _summary([r for r in real if r["seed"] == s])
                for s in dict.fromkeys(r["seed"] for r in real)
            },
        }
    return table


def source_counts(rows: Sequence[Mapping]) -> dict:
    """Per VAE, how many images took their ``log p(x)`` from each proposal, and ``"none"``: how
    many had no reliable estimate."""
    out: dict = {}
    for row in rows:
        counts = out.setdefault(row["vae"], {**{p: 0 for p in PROPOSALS}, "none": 0})
        counts[row["log_evidence_from"] or "none"] += 1
    return out


def gap_verdict(table: Mapping) -> dict:
    """Per VAE of a :func:`gap_table`: which gap is the larger on real images (``"amortisation"``
    or ``"approximation"``, ``None`` when either mean is missing), and for each off-distribution
    group the ratio of its amortisation gap to the real images' (how much worse the encoder
    generalises off the data)."""
    out = {}
    for vae, t in table.items():
        approx = t["real"]["approximation_gap"]["mean"]
        amort = t["real"]["amortisation_gap"]["mean"]
        larger = (
            None
            if approx is None or amort is None
            else ("amortisation" if amort > approx else "approximation")
        )
        ratios = {
            g: (s["amortisation_gap"]["mean"] / amort
                if s["amortisation_gap"]["mean"] is not None and amort else None)
            for g, s in t["off"].items()
        }  # fmt: skip
        out[vae] = {"larger": larger, "off_over_real_amortisation": ratios}
    return out
