"""Persistence diagrams of clouds whose homology is known: a circle (one loop), a figure eight
(two loops), two blobs (two components); H0 against the minimum spanning tree; distances."""

import numpy as np
import pytest
from scipy.sparse.csgraph import minimum_spanning_tree
from scipy.spatial.distance import pdist, squareform

from pyro_latent.analysis.persistence import (
    diagram_distances,
    diagram_summary,
    persistence_diagrams,
)


def circle(n, rng, centre=(0.0, 0.0), radius=1.0, noise=0.02):
    t = rng.uniform(0, 2 * np.pi, n)
    points = np.c_[np.cos(t), np.sin(t)] * radius + np.asarray(centre)
    return points + noise * rng.standard_normal((n, 2))


def lifetimes(dgm):
    return np.sort(dgm[:, 1] - dgm[:, 0])[::-1]


@pytest.fixture(scope="module")
def rng():
    return np.random.default_rng(0)


def test_a_circle_has_one_loop(rng):
    d = persistence_diagrams(circle(300, rng), n_points=300)
    life = lifetimes(d["h1"])
    assert life[0] > 0.5 and life[1] < 0.1 * life[0]
    assert diagram_summary(d, threshold=0.2)["h1"]["above_threshold"] == 1


def test_a_figure_eight_has_two_loops(rng):
    eight = np.r_[circle(250, rng, (-1.0, 0.0)), circle(250, rng, (1.0, 0.0))]
    life = lifetimes(persistence_diagrams(eight, n_points=500)["h1"])
    assert min(life[:2]) > 0.3 and life[2] < 0.2 * min(life[:2])


def test_two_blobs_have_two_components_and_no_loop(rng):
    blobs = np.r_[rng.normal(0, 0.1, (150, 3)), rng.normal(0, 0.1, (150, 3)) + [4.0, 0, 0]]
    d = persistence_diagrams(blobs, n_points=300)
    h0 = lifetimes(d["h0"])
    assert len(d["h0"]) == 299  # N − 1 finite bars: the infinite one is dropped
    assert h0[0] > 10 * h0[1]  # the gap between the blobs, against the edges inside them
    assert lifetimes(d["h1"])[:1].sum() < 0.1 * h0[0]


def test_h0_deaths_are_the_minimum_spanning_tree_edges(rng):
    X = rng.standard_normal((60, 4))
    d = persistence_diagrams(X, n_points=60)
    mst = minimum_spanning_tree(squareform(pdist(X))).data
    expected = np.sort(mst) / np.median(pdist(X))
    np.testing.assert_allclose(np.sort(d["h0"][:, 1]), expected, rtol=1e-5)
    assert (d["h0"][:, 0] == 0).all()


def test_the_subsample_is_seeded_and_the_scale_cancels(rng):
    X = circle(800, rng)
    a = persistence_diagrams(X, n_points=200, seed=3)
    b = persistence_diagrams(X, n_points=200, seed=3)
    np.testing.assert_array_equal(a["rows"], b["rows"])
    theta = 0.7
    Q = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    moved = persistence_diagrams(5.0 * X @ Q.T + 3.0, n_points=200, seed=3)
    distances = diagram_distances(a, moved)
    assert distances["h0"]["bottleneck"] < 1e-5 and distances["h1"]["wasserstein"] < 1e-5
    assert not np.array_equal(a["rows"], persistence_diagrams(X, n_points=200, seed=4)["rows"])


def test_distances_tell_shapes_apart_and_bottleneck_is_the_smaller(rng):
    ring = persistence_diagrams(circle(300, rng), n_points=300)
    blob = persistence_diagrams(rng.standard_normal((300, 2)), n_points=300)
    d = diagram_distances(ring, blob)
    assert d["h1"]["bottleneck"] > 0.2
    for dim in ("h0", "h1"):
        assert 0 <= d[dim]["bottleneck"] <= d[dim]["wasserstein"] + 1e-12
    same = diagram_distances(ring, ring)["h1"]
    assert same["bottleneck"] < 1e-12 and same["wasserstein"] < 1e-12


def test_distances_agree_with_persims(rng):
    """GUDHI computes them, persim is an independent implementation of both."""
    import warnings

    persim = pytest.importorskip("persim")
    ring = persistence_diagrams(circle(200, rng), n_points=200)
    blob = persistence_diagrams(rng.standard_normal((200, 3)), n_points=200)
    ours = diagram_distances(ring, blob)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for dim in ("h0", "h1"):
            assert ours[dim]["bottleneck"] == pytest.approx(persim.bottleneck(ring[dim], blob[dim]))
            assert ours[dim]["wasserstein"] == pytest.approx(
                persim.wasserstein(ring[dim], blob[dim])
            )


def test_bad_clouds_and_diagrams_are_refused():
    with pytest.raises(ValueError, match="no spread"):
        persistence_diagrams(np.zeros((10, 2)))
    with pytest.raises(ValueError, match="at least 3"):
        persistence_diagrams(np.eye(2))
    with pytest.raises(ValueError, match="infinite"):
        diagram_distances({"h0": [[0, np.inf]]}, {"h0": [[0, 1.0]]}, dims=("h0",))
    with pytest.raises(ValueError, match="both diagrams need"):
        diagram_distances({"h0": []}, {"h1": []})
