"""The shoe_concepts experiment end to end on a tiny profile: it trains what is missing, traverses
both readings of each regression CAV, runs NUTS until the doubling cap, and writes a record its
template renders.  The numbers themselves are tested in ``test_concept_*.py``,
``test_shoe_directions.py`` and ``test_vae_posterior.py``."""

from __future__ import annotations

import pytest

from pyro_latent.study import report


@pytest.mark.slow
@pytest.mark.needs_fashion_mnist
def test_shoe_concepts_tiny_profile(run_tiny, tmp_path):
    tiny = {"seeds": 1, "shoes": 2, "cav_shoes": 200, "nuts_real": 0, "is_samples": 50,
            "nuts": {"n_samples": 4, "warmup_steps": 4, "n_chains": 2}, "nuts_max": 8}  # fmt: skip
    record = run_tiny("shoe_concepts", tiny)
    assert set(record["figures"]) == {
        "shoe_purity.png",
        "shoe_traversals_small.png",
        "shoe_traversals_large.png",
    }
    results = record["results"]
    directions = {(row["vae"], row["direction"]) for row in results["table"]}
    assert {("small", "cav height"), ("small", "cav height pattern")} <= directions
    fit = results["cav_fit"]["small-0"]["height"]
    assert set(fit) >= {"r2", "filter_inactive_share", "pattern_inactive_share"}
    assert set(results["cav_reading"]) == {"small", "large"}
    whitened = results["posterior"]["small"]["images"]["whitened"]
    # 4 and then 8 draws per chain cannot reach an ESS of 400: stopped at the cap, not converged
    assert [r["n_samples"] for r in whitened["rounds"]] == [4, 8]
    assert whitened["converged"] is False and results["posterior"]["small"]["converged"] is False
    assert "pareto_k" in whitened["importance"]
    section = report.render_section(record, tmp_path / "figures")
    assert section.startswith("## ") and "{{" not in section
    assert "not converged" in section and "cav height pattern" in section
