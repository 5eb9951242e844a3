"""Unpaired translation with many starts and Wasserstein–Procrustes refinement: recovery of a
rotated, scaled and shifted copy of *another sample* of the same distribution, the unpaired
selection rules, and the closed forms of the transport cost and the retrieval metrics."""

import numpy as np
import pytest
import scipy.linalg

from pyro_latent.analysis.reparametrize import haar_orthogonal
from pyro_latent.analysis.similarity import retrieval_metrics
from pyro_latent.translate.alignment import (
    ClusterMatchingTranslator,
    GromovProcrustesTranslator,
    sign_flip_couplings,
    transport_cost,
    wasserstein_procrustes,
)
from pyro_latent.translate.translators import AffineTranslator

MEANS = np.random.default_rng(99).normal(0.0, 2.0, (5, 6))
WEIGHTS = np.array([0.35, 0.25, 0.2, 0.12, 0.08])


def mixture(n, seed):
    """An anisotropic five-component mixture in 6-D with unequal weights: no symmetry."""
    rng = np.random.default_rng(seed)
    k = rng.choice(5, size=n, p=WEIGHTS)
    return MEANS[k] + rng.normal(0.0, 0.5, (n, 6)) * np.linspace(1.5, 0.5, 6)


@pytest.fixture(scope="module")
def clouds():
    Q = haar_orthogonal(6, np.random.default_rng(0))

    def to_target(X):  # noqa: E306
        return 3.0 * X @ Q + 1.0

    test = mixture(400, 3)
    return mixture(700, 1), to_target(mixture(700, 2)), test, to_target(test)


def test_sign_flip_couplings_are_couplings_one_per_pattern():
    A = mixture(60, 4)
    couplings = sign_flip_couplings(A, -A[::-1], n_axes=3)
    assert len(couplings) == 8
    for P in couplings:
        np.testing.assert_allclose(P.sum(1), 1 / 60)
        np.testing.assert_allclose(P.sum(0), 1 / 60)
    # -A is A with every principal sign flipped: the all-flipped pattern matches row i to its copy
    assert np.mean(couplings[-1][np.arange(60), 59 - np.arange(60)] > 0) > 0.9


def test_wasserstein_procrustes_decreases_and_finds_the_rotation_of_the_same_points():
    A = mixture(300, 5)
    A = (A - A.mean(0)) / np.sqrt(((A - A.mean(0)) ** 2).sum(1).mean())
    Q = haar_orthogonal(6, np.random.default_rng(1))
    B = (A @ Q)[np.random.default_rng(2).permutation(300)]
    skew = 0.1 * np.random.default_rng(4).standard_normal((6, 6))
    start = Q @ scipy.linalg.expm(skew - skew.T)  # a rotation a few degrees from Q
    out = wasserstein_procrustes(A, B, start, n_iter=50)
    assert np.all(np.diff(out["objectives"]) <= 1e-12)
    np.testing.assert_allclose(out["rotation"], Q, atol=1e-6)
    assert out["objectives"][-1] < 1e-10


def test_gromov_procrustes_recovers_a_similarity_between_two_samples(clouds):
    A, B, test, truth = clouds
    g = GromovProcrustesTranslator(n_points=150, refine_points=500).fit(A, B)
    assert g.score(test, truth) > 0.99
    assert len(g.start_objectives_) == 1 + 8
    # the refined starts are those of lowest GW objective, and the choice is theirs
    lowest = set(np.argsort(g.start_objectives_, kind="stable")[:3].tolist())
    assert set(g.refined_objectives_) == lowest
    assert g.chosen_start_ == min(g.refined_objectives_, key=g.refined_objectives_.get)
    assert g.gw_distance_ == min(g.start_objectives_)


def separated(n, seed):
    """Eight tight clusters of unequal weights in 4-D: more clusters than dimensions + 1, so
    matched centres determine the map."""
    means = np.random.default_rng(98).normal(0.0, 3.0, (8, 4))
    weights = np.arange(1, 9) / 36
    rng = np.random.default_rng(seed)
    return means[rng.choice(8, size=n, p=weights)] + rng.normal(0.0, 0.3, (n, 4))


def test_cluster_matching_recovers_a_similarity_between_two_samples():
    Q = haar_orthogonal(4, np.random.default_rng(5))
    A, B, test = separated(800, 1), 2.0 * separated(800, 2) @ Q - 1.0, separated(300, 3)
    c = ClusterMatchingTranslator(n_clusters=8, refine_points=500, seed=1).fit(A, B)
    assert c.score(test, 2.0 * test @ Q - 1.0) > 0.99
    assert c.centres_src_.shape == (8, 4) and len(c.start_objectives_) == 21
    # Least squares on matched pairs that are only right up to the cluster shrinks the map
    # (regression dilution); Procrustes fixes the scale by the clouds' spreads and does not.
    affine = ClusterMatchingTranslator(n_clusters=8, estimator=AffineTranslator(), seed=1)
    assert (
        0.95
        < affine.fit(A, B).score(test, 2.0 * test @ Q - 1.0)
        < c.score(test, 2.0 * test @ Q - 1.0)
    )


def test_transport_cost_closed_forms():
    Y = mixture(200, 6)
    variance = ((Y - Y.mean(0)) ** 2).sum(1).mean()
    assert transport_cost(Y, Y[::-1]) == pytest.approx(0.0, abs=1e-12)
    v = np.array([1.0, -2.0, 0.5, 0.0, 0.0, 1.0])
    assert transport_cost(Y + v, Y) == pytest.approx((v**2).sum() / variance, rel=1e-9)
    with pytest.raises(ValueError, match="columns"):
        transport_cost(Y[:, :3], Y)


def test_retrieval_metrics_closed_forms():
    Y = mixture(300, 7)
    perfect = retrieval_metrics(Y, Y)
    assert perfect == {"cosine": pytest.approx(1.0), "top1": 1.0, "mean_rank": 1.0,
                       "candidates": 300}  # fmt: skip
    shuffled = retrieval_metrics(Y[np.random.default_rng(0).permutation(300)], Y)
    assert 100 < shuffled["mean_rank"] < 200 and shuffled["top1"] < 0.05
    # the worst case: each translation points away from its partner only
    assert retrieval_metrics(-Y, Y)["cosine"] == pytest.approx(-1.0)
    assert retrieval_metrics(Y, Y, n_candidates=50)["candidates"] == 50
    with pytest.raises(ValueError, match="origin"):
        retrieval_metrics(np.zeros((5, 6)), Y[:5])


def test_bad_inputs_are_refused(clouds):
    A, B, _, _ = clouds
    with pytest.raises(ValueError, match="no spread"):
        GromovProcrustesTranslator().fit(np.ones((50, 6)), B)
    with pytest.raises(ValueError, match="too few"):
        ClusterMatchingTranslator(n_clusters=40).fit(A[:50], B)
    with pytest.raises(ValueError, match="n_points"):
        GromovProcrustesTranslator(n_points=1).fit(A, B)
    with pytest.raises(ValueError, match="alpha"):
        ClusterMatchingTranslator(alpha=2.0).fit(A, B)
    with pytest.raises(ValueError, match="NaN"):
        GromovProcrustesTranslator().fit(np.full((20, 6), np.nan), B)


def test_whitening_turns_an_affine_relation_into_an_orthogonal_one():
    """The working frames of ``X`` and of ``X M + t`` (paired rows) differ by an orthogonal map
    once whitened, and not without whitening; the whitened translator maps back exactly."""
    from pyro_latent.translate.alignment import _AlignedMap, _Frame

    # Invertible and not a similarity, mild enough that no eigenvalue of Y's covariance falls
    # below the whitening floor (beyond it the relation is orthogonal only approximately).
    U, V = (
        haar_orthogonal(6, np.random.default_rng(6)),
        haar_orthogonal(6, np.random.default_rng(7)),
    )
    M = U @ np.diag(np.linspace(1.0, 1.5, 6)) @ V
    X = mixture(500, 1)
    Y = X @ M + 2.0
    for whiten, residual in ((True, lambda r: r < 1e-8), (False, lambda r: r > 0.05)):
        fx, fy = _Frame(X, 6, whiten, "X"), _Frame(Y, 6, whiten, "Y")
        A, B = fx.forward(X), fy.forward(Y)
        R = scipy.linalg.orthogonal_procrustes(A, B)[0]
        assert residual(float(np.abs(A @ R - B).max())), whiten
    fx, fy = _Frame(X, 6, True, "X"), _Frame(Y, 6, True, "Y")
    R = scipy.linalg.orthogonal_procrustes(fx.forward(X), fy.forward(Y))[0]
    aligned = _AlignedMap(fx, fy, R)
    test = mixture(100, 3)
    np.testing.assert_allclose(aligned.transform(test), test @ M + 2.0, atol=1e-8)


def test_cluster_matching_takes_given_clusters():
    """A mixture-prior VAE's components in place of k-means: the labels of the generating
    clusters here, with one cluster fewer on the target side than on the source side."""
    Q = haar_orthogonal(4, np.random.default_rng(5))
    rng = np.random.default_rng(1)
    means = np.random.default_rng(98).normal(0.0, 3.0, (8, 4))
    la, lb = rng.choice(8, 800, p=np.arange(1, 9) / 36), rng.choice(8, 800, p=np.arange(1, 9) / 36)
    A = means[la] + rng.normal(0, 0.3, (800, 4))
    B = 2.0 * (means[lb] + rng.normal(0, 0.3, (800, 4))) @ Q - 1.0
    test = separated(300, 3)
    lb_merged = np.where(lb == 7, 6, lb)  # the target's clustering merges two clusters
    c = ClusterMatchingTranslator(seed=1).fit(A, B, clusters_src=la, clusters_dst=lb_merged)
    assert c.centres_src_.shape == (8, 4) and c.centres_dst_.shape == (7, 4)
    assert c.score(test, 2.0 * test @ Q - 1.0) > 0.99
    with pytest.raises(ValueError, match="one label per point"):
        ClusterMatchingTranslator().fit(A, B, clusters_src=la[:10], clusters_dst=lb)
