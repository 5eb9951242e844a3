"""The posterior_gaps tables on numbers, and the experiment end to end on a tiny profile."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pyro_latent.study import report
from pyro_latent.study.posterior_gaps import (
    gap_rows,
    gap_table,
    gap_verdict,
    mean_and_se,
    source_counts,
)


def test_mean_and_se():
    assert mean_and_se([1.0, 3.0]) == {"mean": 2.0, "se": pytest.approx(1.0), "n": 2}
    assert mean_and_se([5.0, None, math.nan]) == {"mean": 5.0, "se": None, "n": 1}
    assert mean_and_se([]) == {"mean": None, "se": None, "n": 0}


def _gaps(approx, amort, reliable, source):
    approx = np.asarray(approx, dtype=float)
    return {
        "log_evidence": np.where(reliable, -100.0, np.nan),
        "local_elbo": np.full(len(approx), -101.0),
        "guide_elbo": np.full(len(approx), -103.0),
        "approximation_gap": np.where(reliable, approx, np.nan),
        "amortisation_gap": np.asarray(amort, dtype=float),
        "reliable": np.asarray(reliable),
        "log_evidence_from": np.asarray(source),
    }


def test_gap_table_by_class_off_distribution_and_seed():
    groups = ["real", "real", "real", "whitened shoe"]
    rows = gap_rows("a", 0, _gaps([1, 2, 3, 9], [4, 6, 8, 20], [True, True, True, False],
                                  [1, 1, 0, -1]), groups, [0, 0, 1, 5])  # fmt: skip
    rows += gap_rows("a", 1, _gaps([5, 0, 0, 0], [2, 0, 0, 0], [True] * 4, [2] * 4),
                     groups, [1, 0, 0, 5])  # fmt: skip
    assert rows[3]["approximation_gap"] is None and rows[3]["log_evidence_from"] is None
    table = gap_table(rows, [f"c{i}" for i in range(10)])["a"]
    assert table["real"]["n_images"] == 6 and table["real"]["n_unreliable"] == 0
    assert table["real"]["approximation_gap"]["mean"] == pytest.approx(11 / 6)
    assert table["by_class"]["c1"]["approximation_gap"]["mean"] == pytest.approx(4.0)
    assert table["by_class"]["c0"]["amortisation_gap"]["n"] == 4
    whitened = table["off"]["whitened shoe"]
    assert whitened["n_unreliable"] == 1 and whitened["approximation_gap"]["n"] == 1
    assert whitened["amortisation_gap"]["mean"] == pytest.approx(10.0)
    assert table["by_seed"]["0"]["amortisation_gap"]["mean"] == pytest.approx(6.0)
    verdict = gap_verdict({"a": table})["a"]
    assert verdict["larger"] == "amortisation"  # 10/3 against 11/6 on the real images
    assert verdict["off_over_real_amortisation"]["whitened shoe"] == pytest.approx(10 / (10 / 3))
    counts = source_counts(rows)["a"]
    assert counts == {"guide": 1, "local": 2, "local_t": 4, "none": 1}


@pytest.mark.slow
@pytest.mark.needs_fashion_mnist
def test_posterior_gaps_tiny_profile(run_tiny, tmp_path):
    tiny = {"seeds": 1, "per_class": 1, "shoes": 2, "n_samples": 50, "local_steps": 20}
    record = run_tiny("posterior_gaps", tiny)
    assert set(record["figures"]) == {"posterior_gaps.png"}
    results = record["results"]
    assert set(results["table"]) == {"small", "large"} and results["n_real"] == 10
    small = results["table"]["small"]
    assert small["real"]["n_images"] == 10 and len(small["by_class"]) == 10
    assert set(small["off"]) == {"whitened shoe", "taller shoe"}
    assert sum(results["sources"]["small"].values()) == 14
    section = report.render_section(record, tmp_path / "figures")
    assert section.startswith("## ") and "{{" not in section


def _noisy_sum(x, *, seed):
    import torch

    g = torch.Generator().manual_seed(seed)
    return float(
        (torch.as_tensor(x) + torch.randn(100, generator=g)).sum()
    ), torch.get_num_threads()


def test_in_workers_returns_the_same_results_in_order_with_one_thread_each():
    from pyro_latent.core.threads import in_workers

    jobs = [(float(i), {"seed": i}) for i in range(4)]
    here = in_workers(_noisy_sum, jobs, 1)
    there = in_workers(_noisy_sum, jobs, 2)
    assert here == there and [threads for _, threads in here] == [1] * 4
    assert len({value for value, _ in here}) == 4
