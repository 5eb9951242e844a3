r"""The central identity of the strip world, measured: both models give every observation
sequence the same probability.

Model 1 and model 2 describe one environment, so for every sequence ``o``

.. math::

    \log p_1(o) = \log p_2(o),

including the sequences of probability zero (both ``-∞`` when ``ε = 0``).  The functions here
measure ``max |log p₁(o) − log p₂(o)|`` over batches of sequences and count the sequences both
models call impossible; a sequence that only one model calls impossible is an error, not a
number, and so is a NaN.
"""

from __future__ import annotations

import math

import torch

__all__ = ["log_evidence_gap"]


def log_evidence_gap(model_a, model_b, batches) -> dict:
    """``max |log p_a(o) − log p_b(o)|`` over every sequence of ``batches`` (each ``[B, T, n]``).

    Returns ``{"sequences", "max_abs_diff", "impossible_in_both"}``.  Raises ``AssertionError``
    when the models disagree on which sequences are impossible; a NaN difference is returned as
    NaN rather than hidden by ``max``.
    """
    worst, impossible, count = 0.0, 0, 0
    for batch in batches:
        a, b = model_a.log_evidence(batch), model_b.log_evidence(batch)
        a_dead, b_dead = torch.isneginf(a), torch.isneginf(b)
        if bool((a_dead != b_dead).any()):
            raise AssertionError("the models disagree on which sequences are impossible")
        both = a_dead & b_dead
        impossible += int(both.sum())
        if bool((~both).any()):
            diff = float((a - b)[~both].abs().max())
            worst = diff if math.isnan(diff) or math.isnan(worst) else max(worst, diff)
        count += len(batch)
    return {"sequences": count, "max_abs_diff": worst, "impossible_in_both": impossible}
