"""Similarity of paired point clouds (:mod:`pyro_latent.analysis.similarity`): the estimators
against direct and brute-force computations, their invariances, their values on independent
data, and their refusals."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from scipy.stats import ortho_group

from pyro_latent.analysis import (
    hsic,
    knn_jaccard,
    latent_agreement,
    linear_cka,
    linear_hsic,
    neighbour_mrr,
)


def gaussian(n, d, seed=0):
    return np.random.default_rng(seed).standard_normal((n, d))


def related(n=60, p=6, q=4, seed=0):
    """``Y`` a noisy linear image of ``X``, so every similarity is well inside (0, 1)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    return X, X @ rng.standard_normal((p, q)) + 0.5 * rng.standard_normal((n, q))


def brute_unbiased_hsic(K, L):
    """The U-statistic behind eq. 5, over every ordered 4-tuple of distinct items:
    ``E[k_ij l_ij] + E[k_ij] E[l_qr] - 2 E[k_ij l_iq]``."""
    n = len(K)
    total = 0.0
    tuples = list(itertools.permutations(range(n), 4))
    for i, j, q, r in tuples:
        total += K[i][j] * L[i][j] + K[i][j] * L[q][r] - 2 * K[i][j] * L[i][q]
    return total / len(tuples)


# ------------------------------------------------------------------------------------- HSIC
@pytest.mark.parametrize("n", [4, 5, 7])
def test_unbiased_hsic_matches_the_brute_force_u_statistic(n):
    X, Y = related(n, 3, 2, seed=n)
    K, L = (X @ X.T).tolist(), (Y @ Y.T).tolist()
    expected = brute_unbiased_hsic(K, L)
    assert hsic(K, L) == pytest.approx(expected, rel=1e-10, abs=1e-12)
    assert linear_hsic(X, Y) == pytest.approx(expected, rel=1e-10, abs=1e-12)


def test_biased_hsic_is_the_centred_trace():
    X, Y = related(20, 5, 3)
    K, L = X @ X.T, Y @ Y.T
    H = np.eye(20) - 1.0 / 20
    expected = np.trace(K @ H @ L @ H) / 19**2
    assert hsic(K, L, unbiased=False) == pytest.approx(expected, rel=1e-12)
    assert linear_hsic(X, Y, unbiased=False) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("unbiased", [True, False])
@pytest.mark.parametrize("shape", [(50, 3, 7), (12, 40, 30)])  # features cheaper; Grams cheaper
def test_feature_space_hsic_equals_the_gram_computation(unbiased, shape):
    n, p, q = shape
    X, Y = related(n, p, q, seed=3)
    X = X + 10.0  # a large mean: the feature-space identities must not cancel it badly
    direct = hsic(X @ X.T, Y @ Y.T, unbiased=unbiased)
    assert linear_hsic(X, Y, unbiased=unbiased) == pytest.approx(direct, rel=1e-9)
    assert linear_hsic(X, X, unbiased=unbiased) == pytest.approx(
        hsic(X @ X.T, X @ X.T, unbiased=unbiased), rel=1e-9
    )


def test_cka_is_the_normalised_gram_hsic():
    X, Y = related(40, 4, 6, seed=5)
    K, L = X @ X.T, Y @ Y.T
    for unbiased in (True, False):
        expected = hsic(K, L, unbiased) / math.sqrt(hsic(K, K, unbiased) * hsic(L, L, unbiased))
        assert linear_cka(X, Y, unbiased) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("n", [0, 1, 2, 3])
def test_unbiased_estimators_need_four_items(n):
    X = np.arange(2.0 * n).reshape(n, 2) if n else np.zeros((0, 2))
    with pytest.raises(ValueError, match="at least 4 items" if n else "empty"):
        linear_cka(X, X)
    with pytest.raises(ValueError, match="at least 4 items" if n else "empty"):
        hsic(X @ X.T, X @ X.T)
    if n >= 2:
        assert math.isfinite(hsic(X @ X.T, X @ X.T, unbiased=False))


def test_hsic_refuses_matrices_that_are_not_grams():
    K = gaussian(6, 6)
    with pytest.raises(ValueError, match="symmetric"):
        hsic(K, K @ K.T)
    with pytest.raises(ValueError, match="square"):
        hsic(gaussian(6, 5), np.eye(6))
    with pytest.raises(ValueError, match="same items"):
        hsic(np.eye(6), np.eye(5))
    with pytest.raises(ValueError, match="True or False"):
        hsic(np.eye(6), np.eye(6), unbiased=1)


# -------------------------------------------------------------------------------------- CKA
@pytest.mark.parametrize("unbiased", [True, False])
def test_cka_of_a_cloud_with_itself_is_one(unbiased):
    X = gaussian(30, 4)
    assert linear_cka(X, X, unbiased) == pytest.approx(1.0, abs=1e-12)


def test_cka_is_one_for_five_items():
    A = np.array([[0.0, 1.0], [2.0, -1.0], [1.0, 3.0], [-2.0, 0.5], [0.5, -2.0]])
    assert linear_cka(A, A) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("unbiased", [True, False])
def test_cka_ignores_rotations_scalings_and_translations(unbiased):
    X, Y = related(80, 6, 4, seed=1)
    base = linear_cka(X, Y, unbiased)
    assert 0.2 < base < 0.99
    Q = ortho_group.rvs(6, random_state=2)
    R = ortho_group.rvs(4, random_state=3)
    moved = linear_cka(3.0 * X @ Q + 5.0, 0.1 * Y @ R - 2.0, unbiased)
    assert moved == pytest.approx(base, rel=1e-9)
    assert linear_cka(Y, X, unbiased) == pytest.approx(base, rel=1e-12)  # symmetric


def test_cka_sees_a_non_isotropic_scaling():
    X, Y = related(80, 6, 4, seed=1)
    stretched = Y * np.array([10.0, 1.0, 1.0, 0.1])
    assert abs(linear_cka(X, stretched) - linear_cka(X, Y)) > 0.01


def test_unbiased_cka_is_near_zero_for_independent_data_where_biased_is_not():
    # Reference (MONAI's CKA pull request, independent N(0, 1), mean of 20 seeds): at n = 64
    # biased 0.114, unbiased 0.009; only the qualitative gap is asserted here.
    biased, unbiased = [], []
    for seed in range(20):
        X, Y = gaussian(64, 10, seed=2 * seed), gaussian(64, 10, seed=2 * seed + 1)
        biased.append(linear_cka(X, Y, unbiased=False))
        unbiased.append(linear_cka(X, Y, unbiased=True))
    assert abs(np.mean(unbiased)) < 0.02
    assert np.mean(biased) > 0.05
    assert np.mean(biased) > np.mean(unbiased) + 0.05


def test_cka_takes_tensors_and_ints_and_large_clouds():
    X = torch.randn(10_000, 8, generator=torch.Generator().manual_seed(0), requires_grad=True)
    Y = X.detach().float() @ torch.randn(8, 5, generator=torch.Generator().manual_seed(1))
    value = linear_cka(X, Y)  # no 10k × 10k Gram: this is quick
    assert isinstance(value, float) and 0.3 < value <= 1.0 + 1e-12
    ints = np.arange(24).reshape(8, 3) ** 2
    assert linear_cka(ints, ints) == pytest.approx(1.0, abs=1e-12)


def test_cka_refuses_a_constant_cloud():
    X = gaussian(10, 3)
    with pytest.raises(ValueError, match="Y is constant"):
        linear_cka(X, np.full((10, 2), 0.1))
    with pytest.raises(ValueError, match="X is constant"):
        linear_cka(np.ones((10, 3)), X, unbiased=False)


def test_cka_refuses_a_cloud_with_no_unbiased_spread():
    # All points but one coincide: the unbiased self-HSIC is exactly 0 (the biased one is not).
    X = np.zeros((8, 2))
    X[-1] = [1.0, 3.0]
    Y = gaussian(8, 2)
    assert hsic(X @ X.T, X @ X.T) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="not positive"):
        linear_cka(Y, X)
    assert math.isfinite(linear_cka(Y, X, unbiased=False))


@pytest.mark.parametrize(
    ("X", "Y", "match"),
    [
        (np.ones((10, 2)), np.ones((9, 2)), "same items"),
        (np.ones(10), np.ones((10, 2)), "2-D"),
        (np.ones((10, 2, 1)), np.ones((10, 2)), "2-D"),
        (np.full((10, 2), np.nan), np.ones((10, 2)), "NaN"),
        (np.ones((10, 2)), np.full((10, 2), np.inf), "NaN or infinite"),
        (np.ones((10, 2), dtype=bool), np.ones((10, 2)), "real matrix"),
        (np.ones((10, 2), dtype=complex), np.ones((10, 2)), "real matrix"),
        ([["a", "b"]] * 10, np.ones((10, 2)), "real matrix"),
    ],
)
def test_bad_clouds_are_refused(X, Y, match):
    for function in (linear_cka, knn_jaccard, neighbour_mrr, latent_agreement):
        with pytest.raises(ValueError, match=match):
            function(X, Y)


# --------------------------------------------------------------------------- neighbourhoods
def test_knn_jaccard_is_one_for_the_same_neighbourhoods():
    X = gaussian(200, 5)
    Q = ortho_group.rvs(5, random_state=0)
    assert knn_jaccard(X, X) == 1.0
    assert knn_jaccard(X, 2.0 * X @ Q + 1.0, k=7) == 1.0
    # the neighbourhoods of a cloud embedded in more dimensions are its own
    assert knn_jaccard(X, np.hstack([X, np.zeros((200, 3))]), k=1) == 1.0


def test_knn_jaccard_is_small_for_independent_clouds():
    n, k = 300, 10
    value = knn_jaccard(gaussian(n, 4, 0), gaussian(n, 4, 1), k=k)
    # about k / (2n - k) when each list is a random k of the other n - 1 items
    assert value < 5 * k / (2 * n - k)


def test_knn_jaccard_counts_partial_overlaps():
    # on a line, item 0's two nearest are {1, 2}; reversing the spacing makes them {1, 3}
    X = np.array([[0.0], [1.0], [2.0], [10.0], [30.0]])
    Y = np.array([[0.0], [1.0], [5.0], [2.0], [30.0]])
    lists_x = [{1, 2}, {0, 2}, {0, 1}, {1, 2}, {2, 3}]
    lists_y = [{1, 3}, {0, 3}, {1, 3}, {0, 1}, {2, 3}]
    expected = np.mean([len(a & b) / len(a | b) for a, b in zip(lists_x, lists_y, strict=True)])
    assert knn_jaccard(X, Y, k=2) == pytest.approx(expected)


@pytest.mark.parametrize("k", [0, 10, 11, -1, 2.0, True, "3"])
def test_knn_jaccard_needs_fewer_neighbours_than_items(k):
    with pytest.raises(ValueError, match="k must be"):
        knn_jaccard(gaussian(10, 2), gaussian(10, 2), k=k)


def test_mrr_is_one_for_a_perfect_translation():
    Y = gaussian(500, 6)
    assert neighbour_mrr(Y, Y) == 1.0
    assert neighbour_mrr(Y + 1e-3, Y, chunk_size=7) == 1.0


def test_mrr_of_an_independent_translation_is_the_harmonic_baseline():
    n = 500
    baseline = sum(1.0 / r for r in range(1, n + 1)) / n  # E[1/rank], rank uniform on 1..n
    values = [neighbour_mrr(gaussian(n, 3, s), gaussian(n, 3, s + 100)) for s in range(5)]
    # each 1/rank has variance below π²/6n, so the mean of 5 · 500 is within ±0.005 or so
    assert np.mean(values) == pytest.approx(baseline, abs=0.006)


def test_mrr_counts_ranks_and_ties_pessimistically():
    Y = np.array([[0.0], [1.0], [3.0]])
    X = np.array([[0.9], [0.0], [2.0]])  # ranks 2 (y₁ nearer), 2 (y₀ nearer), 2 (y₁ as near)
    assert neighbour_mrr(X, Y) == pytest.approx(1 / 2)  # counting ties for: (1/2 + 1/2 + 1) / 3
    assert neighbour_mrr(np.zeros((4, 2)), np.zeros((4, 2))) == pytest.approx(1 / 4)


def test_mrr_chunks_agree_and_large_clouds_are_cheap():
    X, Y = gaussian(10_000, 4, 0), gaussian(10_000, 4, 1)
    Y[:2000] = X[:2000] + 0.01 * gaussian(2000, 4, 2)
    whole = neighbour_mrr(X, Y)
    assert whole == pytest.approx(neighbour_mrr(X, Y, chunk_size=3333), rel=1e-12)
    assert 0.19 < whole < 0.21  # a fifth translated well, the rest near H_N / N ≈ 0.001


def test_mrr_refuses_different_spaces_and_bad_chunks():
    with pytest.raises(ValueError, match="same space"):
        neighbour_mrr(gaussian(10, 2), gaussian(10, 3))
    with pytest.raises(ValueError, match="chunk_size"):
        neighbour_mrr(gaussian(10, 2), gaussian(10, 2), chunk_size=0)


# ------------------------------------------------------------------------------- agreement
def test_latent_agreement_gives_mse_over_all_entries_and_mean_r2():
    Y_true = np.array([[0.0, 10.0], [1.0, 20.0], [2.0, 30.0], [3.0, 40.0]])
    Y_pred = Y_true + np.array([[1.0, 0.0], [-1.0, 0.0], [1.0, 0.0], [-1.0, 10.0]])
    out = latent_agreement(Y_pred, Y_true)
    assert set(out) == {"mse", "r2", "r2_weighted"}
    assert all(isinstance(v, float) for v in out.values())
    assert out["mse"] == pytest.approx((4 * 1.0 + 100.0) / 8)
    r2_first = 1 - 4.0 / 5.0  # residual sum 4, total sum of squares 5
    r2_second = 1 - 100.0 / 500.0
    assert out["r2"] == pytest.approx((r2_first + r2_second) / 2)
    assert out["r2_weighted"] == pytest.approx(1 - (4.0 + 100.0) / (5.0 + 500.0))
    perfect = {"mse": 0.0, "r2": 1.0, "r2_weighted": 1.0}
    assert latent_agreement(torch.tensor(Y_true), Y_true) == perfect


def test_latent_agreement_needs_matching_shapes_and_two_items():
    with pytest.raises(ValueError, match="same shape"):
        latent_agreement(np.ones((4, 2)), np.ones((4, 3)))
    with pytest.raises(ValueError, match="at least 2 items"):
        latent_agreement(np.ones((1, 2)), np.ones((1, 2)))
