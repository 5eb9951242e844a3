"""Unpaired translation scored against paired translators, on clouds with a known map."""

import numpy as np
import pytest

from pyro_latent.study.unpaired import unpaired_comparison


def _clouds(n=700, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 8.0], [7.0, 7.0]])
    labels = rng.integers(0, 4, size=n)
    z1 = centres[labels] + rng.normal(scale=0.6, size=(n, 2))
    A = np.array([[1.5, 0.4], [-0.3, 0.8]])
    return z1, z1 @ A.T + np.array([2.0, -1.0]), labels


def test_paired_baselines_are_exact_and_the_record_is_complete():
    z1, z2, labels = _clouds()
    record, drawing = unpaired_comparison(
        z1, z2, labels, names=("a", "b"), cloud=250, min_cluster_size=20, gw_points=(60,)
    )
    assert record["paired"]["affine"] == pytest.approx(1.0)
    assert record["best_paired"] == pytest.approx(1.0)
    assert record["held_out"] == 700 - 500
    assert set(record["gw"]) == {"60"} and -np.inf < record["gw"]["60"] <= 1.0
    assert record["fraction_of_paired"]["gw 60"] == pytest.approx(record["gw"]["60"])
    if record["tree_error"] is None:
        assert drawing[0]["title"] == "a" and len(drawing[2]) >= 1  # the roots at least
        assert 0.0 <= record["tree_class_agreement"] <= 1.0
    assert record["metrics"]["paired affine"]["top1"] > 0.5  # exact map, 200 candidates
    assert [c["setting"] for c in record["aligned"]] == ["60 points", "60 points, whitened"]
    assert record["selected"]["setting"] in {"60 points", "60 points, whitened"}


def _asymmetric_clouds(n=900, seed=1):
    """Five clusters of unequal weights in 3-D, and a rotated, scaled, shifted copy: a cloud
    with no symmetry for a matching to fall into."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(7).normal(0.0, 3.0, (5, 3))
    labels = rng.choice(5, size=n, p=[0.4, 0.25, 0.15, 0.12, 0.08])
    z1 = centres[labels] + rng.normal(scale=0.5, size=(n, 3))
    Q = np.linalg.qr(np.random.default_rng(8).normal(size=(3, 3)))[0]
    return z1, 2.0 * z1 @ Q + 1.0, labels


def test_the_aligned_setting_is_selected_without_pairs():
    z1, z2, labels = _asymmetric_clouds()
    record, _ = unpaired_comparison(
        z1, z2, labels, names=("a", "b"), cloud=300, min_cluster_size=20, gw_points=(60, 120),
        cluster_counts=(4, 8), formula=z2[600:] + 0.01, clusters=(labels, labels),
    )  # fmt: skip
    aligned = record["aligned"]
    assert [c["setting"] for c in aligned] == [
        "60 points",
        "120 points",
        "120 points, whitened",
        "4 clusters",
        "8 clusters",
        "model components",
    ]
    chosen = min(aligned, key=lambda c: c["validation_cost"])
    assert record["selected"]["setting"] == chosen["setting"]  # by the unpaired cost, not R²
    assert record["selected"]["fraction"] == pytest.approx(chosen["r2"] / record["best_paired"])
    assert record["selected"]["r2"] > 0.95  # the truth is a similarity, which it recovers
    # the generating clusters given as the "model components" match, too
    assert aligned[-1]["r2"] > 0.95
    assert record["metrics"]["formula"]["r2"] == pytest.approx(1.0, abs=1e-3)
    for m in [*record["metrics"].values(), *aligned]:
        assert {"cosine", "top1", "mean_rank", "candidates"} <= set(m)


def test_the_clouds_must_be_large_enough():
    z1, z2, labels = _clouds(n=100)
    with pytest.raises(ValueError, match="2·cloud"):
        unpaired_comparison(
            z1, z2, labels, names=("a", "b"), cloud=60, min_cluster_size=10, gw_points=()
        )


def test_best_unpaired_picks_the_best_setting_and_its_fraction():
    from pyro_latent.study.unpaired import best_unpaired

    record = {"pair": "a → b", "gw": {"100": -0.4, "200": 0.3}, "tree": 0.1, "best_paired": 0.6}
    assert best_unpaired(record) == {"setting": "gw 200", "r2": 0.3, "fraction": 0.5}
    no_tree = {**record, "tree": None, "gw": {"100": -0.4}}
    assert best_unpaired(no_tree)["setting"] == "gw 100"  # a failed tree is not a candidate
    hopeless = {**record, "best_paired": -0.2}
    assert best_unpaired(hopeless)["fraction"] is None  # the paired reference explains nothing
    aligned = {**record, "aligned": [{"method": "cluster", "setting": "4 clusters", "r2": 0.45}]}
    assert best_unpaired(aligned)["setting"] == "cluster 4 clusters"
    with pytest.raises(ValueError, match="no unpaired score"):
        best_unpaired({"pair": "a → b", "gw": {}, "tree": None, "best_paired": 0.5})
