"""The coordinate_free experiment end to end on a tiny profile: it trains what is missing, writes
its figures and a record its template renders.  The numbers themselves are tested in
``test_analysis_*.py``."""

from __future__ import annotations

import pytest

from pyro_latent.study import report


@pytest.mark.slow
@pytest.mark.needs_fashion_mnist
def test_coordinate_free_tiny_profile(run_tiny, tmp_path):
    tiny = {"n_test": 500, "jacobian_points": 10, "layer_points": 4, "cloud": 200,
            "min_cluster_size": 10, "gw_points": (60,), "purity_shoes": 2,
            "persistence_points": 100, "cluster_counts": (5,)}  # fmt: skip
    record = run_tiny("coordinate_free", tiny)
    assert {"jacobian_spectra.png", "unpaired_vs_paired.png"} <= set(record["figures"])
    results = record["results"]
    assert set(results["spectra"]) == {"small-0", "large-0", "vae2d-a-0", "vae2d-b-0"}
    assert [row["quantity"] for row in results["invariance"]["rows"]][:3] == [
        "active_units", "axis_variance", "jacobian_rank",
    ]  # fmt: skip
    assert len(results["matching"]) == 3
    assert len(results["persistence"]["pairs"]) == 10  # every pair of the five VAEs
    assert results["invariance"]["maps"][-1] == "coupling"
    first = results["matching"][0]
    assert first["selected"]["setting"] in {c["setting"] for c in first["aligned"]}
    assert {"paired procrustes", "paired affine", "formula"} <= set(first["metrics"])
    section = report.render_section(record, tmp_path / "figures")
    assert section.startswith("## ") and "{{" not in section
