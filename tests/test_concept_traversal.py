"""Traversal summaries on a synthetic decoder whose height and brightness are set by z directly."""

from __future__ import annotations

import pytest
import torch

from pyro_latent.concepts.traversal import (
    brightness_claim_verdict,
    collinearity_verdict,
    direction_table,
    meter_spreads,
    traversal_record,
    traverse,
)

ALPHAS = [-2.0, -1.0, 0.0, 1.0, 2.0]
SPREADS = {"height": 2.0, "brightness": 0.1}


def box_decoder(z: torch.Tensor) -> torch.Tensor:
    """``z = (z₀, z₁)`` -> a box ``10 + 2 z₀`` rows tall (bottom-aligned) of intensity
    ``0.75 + 0.1 z₁``: height and brightness each follow one coordinate."""
    out = torch.zeros(z.shape[0], 28, 28)
    for i, (a, b) in enumerate(z.tolist()):
        rows = int(round(10 + 2 * a))
        out[i, 27 - rows + 1 :, 5:20] = 0.75 + 0.1 * b
    return out.reshape(-1, 784)


def test_a_pure_height_direction():
    record = traversal_record(
        box_decoder, torch.zeros(2), torch.tensor([1.0, 0.0]), ALPHAS, SPREADS
    )
    assert record["heights"] == [6, 8, 10, 12, 14]
    assert record["height_gain"] == pytest.approx(2.0)
    assert record["brightness_leakage"] == pytest.approx(0.0, abs=1e-6)
    assert record["purity"] == pytest.approx(1.0)
    assert (record["alpha_lo"], record["alpha_hi"]) == (-2.0, 2.0)


def test_a_pure_brightness_direction_and_a_mixed_one():
    bright = traversal_record(
        box_decoder, torch.zeros(2), torch.tensor([0.0, 1.0]), ALPHAS, SPREADS
    )
    assert bright["height_gain"] == 0 and bright["purity"] == pytest.approx(0.0)
    assert bright["brightness_leakage"] == pytest.approx(0.1, abs=1e-6)
    mixed = traversal_record(box_decoder, torch.zeros(2), torch.tensor([1.0, 1.0]), ALPHAS, SPREADS)
    # Δh = 8 rows = 4 spreads, Δβ = 0.4 = 4 spreads: half and half
    assert mixed["purity"] == pytest.approx(0.5, abs=1e-6)


def test_table_and_verdicts():
    records = []
    for vae, leak in (("small", 0.0), ("large", 1.0)):
        for shoe in range(5):
            d = torch.tensor([1.0, leak * (1 + 0.05 * shoe)])
            r = traversal_record(box_decoder, torch.zeros(2), d, ALPHAS, SPREADS)
            records.append({"vae": vae, "direction": "height", **r})
    rows = direction_table(records)
    assert [(r["vae"], r["direction"], r["n"]) for r in rows] == [
        ("small", "height", 5),
        ("large", "height", 5),
    ]
    small, large = rows
    assert small["purity"]["median"] == pytest.approx(1.0)
    assert large["brightness_leakage"]["median"] == pytest.approx(0.11, abs=1e-6)
    assert brightness_claim_verdict(small, 0.1)["verdict"] == "disagrees"
    claim = brightness_claim_verdict(large, 0.1)
    assert claim["verdict"] == "agrees" and claim["value"] == pytest.approx(0.11 / 0.2, abs=1e-6)
    flat = {"height_gain": {"median": 0.0}, "brightness_leakage": {"median": 0.1}}
    assert brightness_claim_verdict(flat, 0.1)["verdict"] == "cannot be tested"


def test_collinearity_verdict():
    assert collinearity_verdict([1.2, 1.5, 2.0], [80, 70, 60])["verdict"] == "not collinear"
    yes = collinearity_verdict([30, 50, 12], [3, 2, 5])
    assert yes["verdict"] == "collinear" and yes["value"] == 30 and yes["angle_min"] == 2
    assert collinearity_verdict([], [])["verdict"] == "cannot be tested"


def test_spreads_and_bad_traversals():
    images = box_decoder(torch.tensor([[0.0, 0.0], [1.0, 1.0], [-1.0, -1.0]]))
    spreads = meter_spreads(images)
    assert spreads["height"] == pytest.approx(2.0) and spreads["brightness"] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="alphas"):
        traverse(box_decoder, torch.zeros(2), torch.ones(2), [0.0])
    with pytest.raises(ValueError, match="one size"):
        traverse(box_decoder, torch.zeros(2), torch.ones(3), ALPHAS)
