"""The vae_translation experiment end to end on a tiny profile: it trains what is missing, writes
every figure, the ArviZ mapping and a record its template renders.  The numbers themselves are
tested in ``test_translate_*.py`` and ``test_analysis_similarity.py``."""

from __future__ import annotations

import arviz as az
import pytest

from pyro_latent.study import report

FIGURES = {
    "translation_stitched.png",
    "translation_metrics.png",
    "translation_sample_efficiency.png",
    "translation_2d.png",
    "translation_concept_transfer.png",
}


@pytest.mark.slow
@pytest.mark.needs_fashion_mnist
def test_vae_translation_tiny_profile(run_tiny, tmp_path):
    tiny = {"n_fit": 300, "n_test": 200, "points": 20, "draws": 2, "proposals": 4,
            "counts": (10, 30, 100), "sizes": (10, 30)}  # fmt: skip
    record = run_tiny("vae_translation", tiny)
    assert set(record["figures"]) == FIGURES
    results = record["results"]
    assert [p["pair"] for p in results["pairs"]][:2] == ["small-0 → large-0", "large-0 → small-0"]
    assert len(results["pairs"]) == 7
    first = results["pairs"][0]
    assert set(first["scores"]) == {"linear", "affine", "procrustes", "relative", "mlp", "formula"}
    assert (
        first["sample_efficiency"]["linear"]["10"] is None
    )  # 10 pairs < 21 for 20-D least squares
    idata = az.from_netcdf(tmp_path / "results" / "vae_translation_mapping.nc")
    assert idata.posterior["z2_guide"].shape == (1, 2, 20, 20)
    section = report.render_section(record, tmp_path / "figures")
    assert section.startswith("## ") and "{{" not in section
