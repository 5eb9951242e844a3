"""Traversal summaries on a synthetic decoder whose height and brightness are set by z directly."""

from __future__ import annotations

import pytest
import torch

from pyro_latent.concepts.traversal import (
    meter_spreads,
    purity_by_distance,
    record_from_images,
    traversal_record,
    traverse,
)
from pyro_latent.study.shoe_concepts import (
    brightness_claim_verdict,
    cav_reading,
    collinearity_verdict,
    commenter_summary,
    compare_records,
    decay_table,
    direction_table,
    fit_cavs,
    gram_schmidt_summary,
    purest_direction,
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
    assert brightness_claim_verdict(small, SPREADS)["verdict"] == "disagrees"
    claim = brightness_claim_verdict(large, SPREADS)
    # (0.11 / 0.1) brightness spreads per (2 / 2) height spreads
    assert claim["verdict"] == "agrees" and claim["value"] == pytest.approx(1.1, abs=1e-5)
    assert brightness_claim_verdict(large, SPREADS, threshold=2)["verdict"] == "disagrees"
    flat = {"height_gain": {"median": 0.0}, "brightness_leakage": {"median": 0.1}}
    assert brightness_claim_verdict(flat, SPREADS)["verdict"] == "cannot be tested"


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


def _diag(vae, angle, cos_e, found=True, alpha=0.5, sensitivity=10.0):
    commenter = {"found": found, "alpha": alpha if found else None}
    commenter["sensitivity"] = sensitivity if found else None
    return {
        "vae": vae,
        "angle_hb": angle,
        "angle_hb_pullback": angle / 2,
        "pixel_cosine_gs_euclidean": cos_e,
        "pixel_cosine_gs_pullback": 0.0,
        "commenter": commenter,
    }


def _row(vae, direction, purity):
    return {"vae": vae, "direction": direction, "purity": {"median": purity}}


def test_gram_schmidt_summary_names_the_measured_cause():
    diagnostics = [
        _diag("a", 70, 0.7),
        _diag("a", 80, 0.5),
        _diag("b", 20, 0.1),
        _diag("c", 75, 0.0),
    ]
    purities = {"a": (0.4, 0.5, 0.9), "b": (0.4, 0.5, 0.5), "c": (0.9, 0.85, 0.8)}
    names = ("two-image h", "gs euclidean", "gs pullback")
    table = [_row(v, d, p) for v, ps in purities.items() for d, p in zip(names, ps, strict=True)]
    out = gram_schmidt_summary(diagnostics, table)
    assert out["a"]["angle_hb"] == 75 and out["a"]["pixel_cosine_gs_euclidean"] == pytest.approx(
        0.6
    )
    assert (out["a"]["euclidean_worked"], out["a"]["cause"]) == (False, "metric")
    assert out["a"]["pullback_loses_height"] is False and out["c"]["pullback_loses_height"] is True
    assert (out["b"]["euclidean_worked"], out["b"]["cause"]) == (False, "angle")
    assert (out["c"]["euclidean_worked"], out["c"]["cause"]) == (True, None)
    reverse = [_row("a", "two-image b", 0.3), _row("a", "gs pullback b⊥h", 0.1)]
    both = gram_schmidt_summary(diagnostics, table + reverse)["a"]
    assert (both["purity_b"], both["purity_b_pullback"], both["purity_b_euclidean"]) == (
        0.3,
        0.1,
        None,
    )
    missing = gram_schmidt_summary([_diag("d", 70, 0.1)], [])
    assert missing["d"]["cause"] == "cannot be tested"


def test_commenter_summary_counts_and_quartiles():
    diagnostics = [_diag("a", 70, 0.1, alpha=a) for a in (0.2, 0.4, 0.6)]
    diagnostics.append(_diag("a", 70, 0.1, found=False))
    out = commenter_summary(diagnostics)["a"]
    assert (out["found"], out["total"]) == (3, 4)
    assert out["alpha"]["median"] == pytest.approx(0.4) and out["sensitivity"]["n"] == 3


def test_purity_by_distance_and_its_table():
    heights, brightness = [10, 10, 10, 12, 14], [0.5, 0.5, 0.5, 0.5, 0.7]
    points = purity_by_distance(heights, brightness, ALPHAS, SPREADS)
    # from α = 0 to α = 1: height 1 spread, no brightness; to α = 2: 2 spreads each
    assert points == [[1.0, 1.0], [2.0, pytest.approx(0.5)]]
    flat = purity_by_distance([10] * 5, [0.5] * 5, ALPHAS, SPREADS)
    assert flat == [[1.0, None], [2.0, None]]
    records = [
        {"vae": "v", "direction": "jacobian", "purity_by_distance": [[1.0, 0.9], [2.0, 0.5]]},
        {"vae": "v", "direction": "jacobian", "purity_by_distance": [[1.0, 0.7], [2.0, None]]},
        {"vae": "v", "direction": "other", "purity_by_distance": [[1.0, 0.1]]},
    ]
    assert decay_table(records, ["jacobian"]) == {
        "v": {"jacobian": [[1.0, pytest.approx(0.8)], [2.0, 0.5]]}
    }


def test_record_from_images_checks_the_count():
    images = box_decoder(torch.zeros(5, 2))
    assert record_from_images(images, ALPHAS, SPREADS)["purity"] is None  # nothing moves
    with pytest.raises(ValueError, match="4 images for 5"):
        record_from_images(images[:4], ALPHAS, SPREADS)


def test_purest_direction():
    table = [
        {"vae": "a", "direction": "h", "purity": {"median": 0.4}},
        {"vae": "a", "direction": "path", "purity": {"median": 0.9}},
        {"vae": "b", "direction": "h", "purity": {"median": None}},
    ]
    assert purest_direction(table) == {"a": {"direction": "path", "purity": 0.9}}


def test_compare_records():
    def rec(purity, leak):
        return {"height_gain": 1.0, "brightness_leakage": leak, "purity": purity}

    assert compare_records(rec(0.5, 0.1), rec(0.6, 0.2))["same_conclusion"] is True
    assert compare_records(rec(0.5, 0.1), rec(0.9, 0.2))["same_conclusion"] is False
    assert compare_records(rec(0.5, 0.1), rec(0.6, -0.2))["same_conclusion"] is False
    assert compare_records(rec(None, 0.1), rec(0.6, 0.2))["same_conclusion"] is None


def test_cav_filter_and_pattern_on_a_decoder_that_ignores_an_inactive_unit():
    """The report's 0.00: a height CAV whose filter sits on a near-constant unit the decoder
    ignores gains no height; its pattern gains the box decoder's 2 rows per unit."""
    g = torch.Generator().manual_seed(0)
    n = 3000
    s = torch.randn(n, generator=g, dtype=torch.float64)
    noise = 0.5 * torch.randn(n, generator=g, dtype=torch.float64)  # the height meter's error
    Z = torch.stack(
        [
            s + 0.3 * torch.randn(n, generator=g, dtype=torch.float64),
            torch.randn(n, generator=g, dtype=torch.float64),
            0.01 * noise + 1e-3 * torch.randn(n, generator=g, dtype=torch.float64),
        ],
        -1,
    )
    meters = {"height": (10 + 2 * s + noise).numpy(), "brightness": Z[:, 1].numpy()}
    cavs, fits = fit_cavs(Z.numpy(), meters)
    assert set(cavs) == {"height", "height pattern", "brightness", "brightness pattern"}
    assert fits["height"]["n_inactive"] == 1 and fits["height"]["r2"] > 0.9
    assert fits["height"]["filter_inactive_share"] > 0.95
    assert fits["height"]["pattern_inactive_share"] < 1e-3
    assert fits["height"]["pattern_gain"] == pytest.approx(
        float(torch.as_tensor(cavs["height"]) @ cavs["height pattern"])
        * fits["height"]["filter_gain"]
    )

    def decode(z):  # the inactive unit z₂ does not reach the image
        return box_decoder(z[:, :2])

    records = [
        {"vae": "toy", "direction": f"cav {key}", "seed": 0,
         **traversal_record(decode, torch.zeros(3), cavs[key].float(), ALPHAS, SPREADS)}
        for key in ("height", "height pattern")
    ]  # fmt: skip
    reading = cav_reading(direction_table(records), {"toy-0": fits})["toy"]
    assert reading["filter"]["height_gain"] < 0.6  # the filter's e₀ component is small
    assert reading["pattern"]["height_gain"] == pytest.approx(2.0, abs=0.3)
    assert reading["pattern_gains_more"] is True and reading["n_inactive"] == 1
    assert reading["filter"]["inactive_share"] == fits["height"]["filter_inactive_share"]
    # a VAE without the pattern rows reads None, not a crash
    only_filter = cav_reading(direction_table(records[:1]), {"toy-0": fits})["toy"]
    assert only_filter["pattern"]["height_gain"] is None
    assert only_filter["pattern_gains_more"] is None
