"""The shape_concepts experiment end to end on a tiny profile: it renders the world, trains the
shapes VAEs and the FashionMNIST ones it needs, measures them and renders its section.  The
numbers are tested in ``test_shape_concepts.py``, ``test_factor_directions.py``,
``test_analysis_disentanglement.py`` and ``test_vae_shapes.py``."""

from __future__ import annotations

import pytest

from pyro_latent.study import report


@pytest.mark.slow
@pytest.mark.needs_fashion_mnist
def test_shape_concepts_tiny_profile(run_tiny, tmp_path):
    tiny = {"seeds": 1, "n_test": 300, "images": 1, "readout_images": 600, "pairs": (0, 3),
            "readout_epochs": 2, "cav_images": 200, "n_fit": 300, "gw_points": 40,
            "shoes": 1}  # fmt: skip
    record = run_tiny("shape_concepts", tiny)
    results = record["results"]
    assert set(results["disentanglement"]) == {"small", "large", "conv"}
    assert results["active_units"]["small"] and len(results["active_units"]["small"]) == 2
    directions = {r["direction"] for r in results["table"]}
    assert {"two-image h", "two-image b", "gs pullback", "cav height pattern"} <= directions
    assert {t["pair"] for t in results["translation"]} >= {"small-0 → small-1"}
    assert "own" in results["translation"][0] and "formula" in results["translation"][0]
    assert set(results["fashion"]["purity"]) == {"small", "large", "conv"}
    section = report.render_section(record, tmp_path / "figures")
    assert section.startswith("## ") and "{{" not in section
