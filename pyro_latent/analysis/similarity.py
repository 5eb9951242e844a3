r"""Coordinate-free similarity of two latent point clouds of the same items.

``X [N, p]`` and ``Y [N, q]`` hold the codes of the same ``N`` items in two latent spaces, row
``i`` of each for item ``i``.  The spaces need not share a basis, nor a dimension, so the
measures here look only at what survives a change of coordinates.

**HSIC.**  For ``n × n`` Gram matrices ``K`` and ``L`` and the centring ``H = I - 11ᵀ/n``, the
biased estimator of the Hilbert–Schmidt independence criterion is

.. math::

    \mathrm{HSIC}_0(K, L) = \frac{\operatorname{tr}(K H L H)}{(n - 1)^2},

which is positive even for independent data, with a bias of order ``1/n``.  The unbiased one
(Song et al. 2012, eq. 5) zeroes the diagonals, ``K̃ = K - diag(K)``, ``L̃ = L - diag(L)``:

.. math::

    \mathrm{HSIC}_1(K, L) = \frac{1}{n(n - 3)} \Bigl[ \operatorname{tr}(\tilde K \tilde L)
        + \frac{1^\top \tilde K 1 \; 1^\top \tilde L 1}{(n - 1)(n - 2)}
        - \frac{2}{n - 2} \, 1^\top \tilde K \tilde L 1 \Bigr], \qquad n \ge 4.

It is a U-statistic, an inner product of "U-centred" Gram matrices, so
``HSIC₁(K, K) ≥ 0``; it is zero for data that carry no spread an unbiased estimate can see,
such as a cloud of coincident points with a single one apart.

**Linear CKA.**  With linear kernels ``K = XXᵀ``, ``L = YYᵀ``,

.. math::

    \mathrm{CKA}(X, Y) = \frac{\mathrm{HSIC}(XX^\top, YY^\top)}
        {\sqrt{\mathrm{HSIC}(XX^\top, XX^\top) \, \mathrm{HSIC}(YY^\top, YY^\top)}},

which is unchanged by orthogonal maps and isotropic scalings of either cloud, and by
translations (both estimators are, and the clouds are centred first).  It never needs the
``N × N`` Gram matrices: with ``a_i = ‖x_i‖²``, ``b_i = ‖y_i‖²`` and ``s = Xᵀ1``, ``t = Yᵀ1``,

.. math::

    \operatorname{tr}(\tilde K \tilde L) = \|X^\top Y\|_F^2 - \sum_i a_i b_i, \quad
    1^\top \tilde K 1 = \|s\|^2 - \sum_i a_i, \quad
    \tilde K 1 = X s - a, \quad
    1^\top \tilde K \tilde L 1 = (\tilde K 1)^\top (\tilde L 1),

and, for centred clouds, ``tr(KHLH) = ‖XᵀY‖²_F``; so :func:`linear_hsic` costs ``O(N p q)``
time and ``O(N + p q)`` memory, while :func:`hsic` takes the Gram matrices themselves.

**Neighbourhoods.**  :func:`knn_jaccard` is the mean over items of
``|N_k^X(i) ∩ N_k^Y(i)| / |N_k^X(i) ∪ N_k^Y(i)|``, the ``k`` nearest neighbours (Euclidean, the
item itself left out) in each cloud.  :func:`neighbour_mrr` scores a translation ``X → Y``: item
``i``'s rank is the position of its true partner ``y_i`` among all rows of ``Y`` ordered by
distance from the translated code ``x_i`` (rank 1 = nearest), and the score is the mean of
``1 / rank``: 1 for a perfect translation, about ``H_N / N`` (``H_N`` the harmonic number) for
one that is independent of the target.

:func:`latent_agreement` gives the pointwise errors of a translation: mean squared error and R².
"""

from __future__ import annotations

import math

import numpy as np
import torch

from pyro_latent.core.checks import as_int, check_positive_int

__all__ = [
    "hsic",
    "knn_jaccard",
    "latent_agreement",
    "linear_cka",
    "linear_hsic",
    "neighbour_mrr",
    "retrieval_metrics",
]

# A block of distances in :func:`neighbour_mrr` holds about this many float64 entries (64 MB).
_BLOCK_ENTRIES = 8 * 2**20

# Self-HSIC at or below this fraction of its natural scale ((tr of the covariance)²) is rounding
# noise around zero: taking its square root would turn noise into a similarity.
_SELF_HSIC_RTOL = 1e-10


# ------------------------------------------------------------------------------- validation
def _as_matrix(values, name: str) -> np.ndarray:
    """``values`` (array, tensor or nested list) as a finite float64 ``[N, d]`` array."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu()
        if values.dtype == torch.bool or values.is_complex():
            raise ValueError(f"{name} must be a real matrix, got dtype {values.dtype}")
        values = values.double().numpy()
    try:
        array = np.asarray(values)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real matrix, got {type(values).__name__}") from None
    if array.dtype == bool or not (
        np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)
    ):
        raise ValueError(f"{name} must be a real matrix, got dtype {array.dtype}")
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2-D [items, dims], got shape {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {array.shape})")
    array = array.astype(np.float64, copy=False)
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def _paired(X, Y, x_name: str, y_name: str) -> tuple[np.ndarray, np.ndarray]:
    """Two matrices whose rows are the same items, so their row counts must agree."""
    X, Y = _as_matrix(X, x_name), _as_matrix(Y, y_name)
    if X.shape[0] != Y.shape[0]:
        raise ValueError(
            f"{x_name} and {y_name} must hold the same items (rows), got {X.shape[0]} and "
            f"{Y.shape[0]} rows"
        )
    return X, Y


def _check_flag(value, name: str) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _check_size(n: int, unbiased: bool) -> None:
    """``HSIC₁`` divides by ``n(n - 3)`` and ``HSIC₀`` by ``(n - 1)²``."""
    needed = 4 if unbiased else 2
    if n < needed:
        which = "unbiased" if unbiased else "biased"
        raise ValueError(f"the {which} HSIC needs at least {needed} items, got {n}")


def _centred(X: np.ndarray, name: str) -> np.ndarray:
    """``X`` minus its column means, with constant columns exactly zero; a constant ``X`` is
    refused, since every similarity to it is 0 / 0."""
    constant = np.ptp(X, axis=0) == 0
    if constant.all():
        raise ValueError(f"{name} is constant (every column has zero variance)")
    out = X - X.mean(axis=0)
    out[:, constant] = 0.0  # the subtracted mean can miss a constant by an ulp
    return out


# ------------------------------------------------------------------------------------- HSIC
def hsic(K, L, unbiased: bool = True) -> float:
    """HSIC of two ``n × n`` Gram matrices, from the matrices (``O(n²)`` time and memory).

    Unbiased (default): ``HSIC₁`` of Song et al. 2012, eq. 5, which needs ``n ≥ 4``; biased:
    ``tr(KHLH) / (n - 1)²``.  See the module docstring.
    """
    unbiased = _check_flag(unbiased, "unbiased")
    K, L = _as_matrix(K, "K"), _as_matrix(L, "L")
    for name, gram in (("K", K), ("L", L)):
        if gram.shape[0] != gram.shape[1]:
            raise ValueError(f"{name} must be a square Gram matrix, got shape {gram.shape}")
        if not np.allclose(gram, gram.T, rtol=1e-10, atol=1e-12 * np.abs(gram).max()):
            raise ValueError(f"{name} must be symmetric (a Gram matrix)")
    if K.shape != L.shape:
        raise ValueError(f"K and L must be Grams of the same items, got {K.shape} and {L.shape}")
    n = K.shape[0]
    _check_size(n, unbiased)
    if not unbiased:
        centred = K - K.mean(axis=0) - K.mean(axis=1)[:, None] + K.mean()  # H K H
        return float(np.sum(centred * L) / (n - 1) ** 2)
    K_0, L_0 = K.copy(), L.copy()
    np.fill_diagonal(K_0, 0.0)
    np.fill_diagonal(L_0, 0.0)
    k_rows, l_rows = K_0.sum(axis=1), L_0.sum(axis=1)
    return _unbiased_from_terms(
        n, np.sum(K_0 * L_0), k_rows.sum(), l_rows.sum(), float(k_rows @ l_rows)
    )


def _unbiased_from_terms(n: int, trace: float, k_sum: float, l_sum: float, cross: float) -> float:
    """Eq. 5 from ``tr(K̃L̃)``, ``1ᵀK̃1``, ``1ᵀL̃1`` and ``1ᵀK̃L̃1``."""
    total = trace + k_sum * l_sum / ((n - 1) * (n - 2)) - 2.0 * cross / (n - 2)
    return float(total / (n * (n - 3)))


def _frobenius_cross(X: np.ndarray, Y: np.ndarray) -> float:
    """``‖XᵀY‖²_F = Σ_ij (XXᵀ)_ij (YYᵀ)_ij`` by whichever product is the smaller: ``p × q``
    for few dimensions, the two ``N × N`` Grams for wide clouds of few items."""
    n, p = X.shape
    q = Y.shape[1]
    if p * q <= n * n:
        return float(np.sum(np.square(X.T @ Y)))
    return float(np.sum((X @ X.T) * (Y @ Y.T)))


def _linear_hsic_centred(X: np.ndarray, Y: np.ndarray, unbiased: bool) -> float:
    """:func:`linear_hsic` for clouds already checked and centred."""
    n = X.shape[0]
    cross = _frobenius_cross(X, Y)
    if not unbiased:
        return cross / (n - 1) ** 2  # tr(KHLH) = ‖XᵀHY‖²_F, and HX = X here
    a, b = np.einsum("ij,ij->i", X, X), np.einsum("ij,ij->i", Y, Y)
    s, t = X.sum(axis=0), Y.sum(axis=0)
    k_rows, l_rows = X @ s - a, Y @ t - b  # K̃1 and L̃1
    return _unbiased_from_terms(
        n,
        cross - float(a @ b),
        float(s @ s - a.sum()),
        float(t @ t - b.sum()),
        float(k_rows @ l_rows),
    )


def linear_hsic(X, Y, unbiased: bool = True) -> float:
    """``HSIC(XXᵀ, YYᵀ)`` from the features, without forming a Gram matrix (``O(N p q)`` time,
    ``O(N + p q)`` memory); equal to :func:`hsic` on the Grams.  Needs ``N ≥ 4`` when unbiased.

    Both clouds are centred first, which changes neither estimator and keeps the differences in
    the feature-space identities (module docstring) from cancelling large means.
    """
    unbiased = _check_flag(unbiased, "unbiased")
    X, Y = _paired(X, Y, "X", "Y")
    _check_size(X.shape[0], unbiased)
    return _linear_hsic_centred(X - X.mean(axis=0), Y - Y.mean(axis=0), unbiased)


def _self_hsic(X: np.ndarray, unbiased: bool, name: str) -> float:
    """``HSIC(XXᵀ, XXᵀ)`` for a centred ``X``, refused unless clearly positive."""
    value = _linear_hsic_centred(X, X, unbiased)
    scale = (np.sum(np.square(X)) / (X.shape[0] - 1)) ** 2  # (tr Σ)², Σ the covariance
    if not value > _SELF_HSIC_RTOL * scale:
        raise ValueError(
            f"the {'unbiased' if unbiased else 'biased'} self-similarity estimate "
            f"HSIC({name}, {name}) is not positive ({value:.3g}): {name} has too little spread "
            f"for {X.shape[0]} items (e.g. all points but one coincide); more items, or "
            "unbiased=False, give a defined CKA"
        )
    return value


def linear_cka(X, Y, unbiased: bool = True) -> float:
    """Linear centred kernel alignment of ``X [N, p]`` and ``Y [N, q]`` (rows paired).

    ``HSIC(XXᵀ, YYᵀ) / sqrt(HSIC(XXᵀ, XXᵀ) HSIC(YYᵀ, YYᵀ))`` by :func:`linear_hsic`; the
    unbiased estimator (default) is near 0 for independent clouds at any ``N``, where the biased
    one is of order ``1/N``-ish above it.  A constant cloud, or one whose self-HSIC is not
    positive, raises ``ValueError`` rather than returning NaN.
    """
    unbiased = _check_flag(unbiased, "unbiased")
    X, Y = _paired(X, Y, "X", "Y")
    _check_size(X.shape[0], unbiased)
    X, Y = _centred(X, "X"), _centred(Y, "Y")
    denominator = math.sqrt(_self_hsic(X, unbiased, "X")) * math.sqrt(_self_hsic(Y, unbiased, "Y"))
    return _linear_hsic_centred(X, Y, unbiased) / denominator


# -------------------------------------------------------------------------- neighbourhoods
def knn_jaccard(X, Y, k: int = 10) -> float:
    """Mean over items of the Jaccard index of their ``k`` nearest neighbours in ``X`` and in
    ``Y`` (Euclidean, the item itself left out); ``1 ≤ k < N``.  Ties in distance are broken
    by scikit-learn's search, so duplicate points make the score depend on row order."""
    from sklearn.neighbors import NearestNeighbors

    X, Y = _paired(X, Y, "X", "Y")
    n = X.shape[0]
    k_checked = as_int(k)
    if k_checked is None or not 1 <= k_checked < n:
        raise ValueError(f"k must be an int in 1..{n - 1} (fewer than the {n} items), got {k!r}")
    # kneighbors() without a query leaves each point out of its own neighbour list
    lists = [
        NearestNeighbors(n_neighbors=k_checked).fit(Z).kneighbors(return_distance=False)
        for Z in (X, Y)
    ]
    # A list has no repeats, so an index in both lists shows up as an adjacent equal pair in
    # the sorted concatenation; this counts the intersection without an N × k × k comparison.
    both = np.sort(np.concatenate(lists, axis=1), axis=1)
    shared = np.count_nonzero(both[:, 1:] == both[:, :-1], axis=1)
    return float(np.mean(shared / (2 * k_checked - shared)))


def neighbour_mrr(X_translated, Y, *, chunk_size: int | None = None) -> float:
    """Mean reciprocal rank of each item's true partner: ``mean_i 1 / rank_i``, with ``rank_i``
    the number of rows ``y_j`` of ``Y`` at distance ``≤ ‖x_i - y_i‖`` from ``x_i`` (so rank 1 =
    nearest, and a tie counts against the translation: a code equidistant from every target
    ranks last, not first).

    ``X_translated`` and ``Y`` are ``[N, d]`` in the same space.  Distances are taken
    ``chunk_size`` rows at a time (by default blocks of about 64 MB), never ``N × N`` at once.
    """
    X, Y = _paired(X_translated, Y, "X_translated", "Y")
    if X.shape[1] != Y.shape[1]:
        raise ValueError(
            "X_translated and Y must live in the same space, got dimensions "
            f"{X.shape[1]} and {Y.shape[1]}"
        )
    n = X.shape[0]
    if chunk_size is None:
        chunk_size = max(1, _BLOCK_ENTRIES // n)
    chunk_size = check_positive_int(chunk_size, "chunk_size")
    y_norms = np.einsum("ij,ij->i", Y, Y)
    reciprocal = np.empty(n)
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        # ‖x - y_j‖² less the ‖x‖² shared by a whole row, which cannot change a ranking
        scores = X[start:stop] @ Y.T
        scores *= -2.0
        scores += y_norms
        partner = scores[np.arange(stop - start), np.arange(start, stop)]
        reciprocal[start:stop] = 1.0 / np.count_nonzero(scores <= partner[:, None], axis=1)
    return float(reciprocal.mean())


def retrieval_metrics(Y_pred, Y_true, *, n_candidates: int = 1000, seed: int = 0) -> dict:
    """vec2vec's metrics (Jha et al. 2025) of translated codes ``Y_pred`` against their true
    partners ``Y_true`` (both ``[N, d]``, rows paired), on ``n = min(N, n_candidates)`` rows
    drawn with ``numpy.random.default_rng(seed)`` (all rows if ``N ≤ n_candidates``):

    * ``"cosine"``: the mean cosine similarity of each translation to its own partner;
    * ``"top1"``: the share of translations whose partner is the most cosine-similar of the
      ``n`` candidates ``Y_true``;
    * ``"mean_rank"``: the mean rank of the partner among the candidates by cosine similarity
      (1 is best; a tie counts against the translation; a random map scores about ``n / 2``);
    * ``"candidates"``: ``n``.

    Cosines are of the raw codes, as in vec2vec, so a code at the origin has none: such rows are
    refused."""
    X, Y = _paired(Y_pred, Y_true, "Y_pred", "Y_true")
    if X.shape[1] != Y.shape[1]:
        raise ValueError(
            f"Y_pred and Y_true must have one width, got {X.shape[1]} and {Y.shape[1]}"
        )
    n_candidates = check_positive_int(n_candidates, "n_candidates")
    if X.shape[0] > n_candidates:
        rows = np.sort(np.random.default_rng(seed).choice(X.shape[0], n_candidates, replace=False))
        X, Y = X[rows], Y[rows]
    norms_x, norms_y = np.linalg.norm(X, axis=1), np.linalg.norm(Y, axis=1)
    if (norms_x <= 0).any() or (norms_y <= 0).any():
        raise ValueError("a code at the origin has no cosine similarity")
    cos = (X / norms_x[:, None]) @ (Y / norms_y[:, None]).T
    own = np.diag(cos)
    ranks = np.count_nonzero(cos >= own[:, None], axis=1)
    return {"cosine": float(own.mean()), "top1": float(np.mean(ranks == 1)),
            "mean_rank": float(ranks.mean()), "candidates": int(X.shape[0])}  # fmt: skip


def latent_agreement(Y_pred, Y_true) -> dict[str, float]:
    """Pointwise agreement of predicted codes with the targets, both ``[N, d]``, ``N ≥ 2``.

    * ``"mse"``: the squared error averaged over all ``N × d`` entries (equally: over items of
      the per-item mean over dimensions), scikit-learn's ``mean_squared_error``;
    * ``"r2"``: scikit-learn's ``r2_score`` per dimension, averaged with equal weights
      (``"uniform_average"``); a constant target dimension scores 1 if predicted exactly, else 0;
    * ``"r2_weighted"``: the same, each dimension weighted by its variance in ``Y_true``
      (``"variance_weighted"``), i.e. ``1 − Σ‖residual‖² / Σ‖Y_true − Ȳ‖²``.  A VAE's inactive
      dimensions barely vary, so a small error there sinks the uniform average while hardly
      mattering to the code; the weighted score is the one to read for VAE latents.
    """
    from sklearn.metrics import mean_squared_error, r2_score

    Y_pred, Y_true = _paired(Y_pred, Y_true, "Y_pred", "Y_true")
    if Y_pred.shape != Y_true.shape:
        raise ValueError(
            f"Y_pred and Y_true must have the same shape, got {Y_pred.shape} and {Y_true.shape}"
        )
    if Y_true.shape[0] < 2:
        raise ValueError(f"R² needs at least 2 items, got {Y_true.shape[0]}")
    return {
        "mse": float(mean_squared_error(Y_true, Y_pred)),
        "r2": float(r2_score(Y_true, Y_pred, multioutput="uniform_average")),
        "r2_weighted": float(r2_score(Y_true, Y_pred, multioutput="variance_weighted")),
    }
