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
    with pytest.raises(ValueError, match="no unpaired score"):
        best_unpaired({"pair": "a → b", "gw": {}, "tree": None, "best_paired": 0.5})
