"""The mixture_prior experiment end to end on a tiny profile: it trains the mixture-prior and
Normal-prior VAEs it needs, measures them and renders.  The numbers are tested in
``test_vae_mixture.py``, ``test_analysis_density_trees.py`` and ``test_analysis_unpaired.py``."""

from __future__ import annotations

import pytest

from pyro_latent.study import report


@pytest.mark.slow
@pytest.mark.needs_fashion_mnist
def test_mixture_prior_tiny_profile(run_tiny, tmp_path):
    tiny = {"seeds": 2, "n_test": 300, "evidence_images": 20, "n_samples": 20,
            "tree_points": 100, "min_cluster_size": 10, "cloud": 100, "gw_points": (40,),
            "cluster_counts": (5,)}  # fmt: skip
    record = run_tiny("mixture_prior", tiny)
    results = record["results"]
    assert set(results["records"]) == {"small-mix", "small", "large-mix", "large"}
    mixture = results["records"]["small-mix"][0]
    assert 0.0 < mixture["cluster_accuracy"] <= 1.0 and len(mixture["weights"]) == 10
    assert set(mixture["trees"]) == {"prior", "aggregate-posterior"}
    assert set(results["records"]["small"][0]["trees"]) == {"aggregate-posterior"}
    assert [t["mixture"] for t in results["table"]] == ["small-mix", "large-mix"]
    assert len(results["matching"]) == 2
    invariance = results["invariance"]
    assert invariance["identity"]["moved"] == 0 and "coupling" in invariance
    section = report.render_section(record, tmp_path / "figures")
    assert section.startswith("## ") and "{{" not in section
