r"""Translating between two latent spaces without pairs, by Gromov–Wasserstein matching.

A translator of :mod:`pyro_latent.translate.translators` is fitted on *paired* codes, the two
encodings of the same images.  Here the two clouds ``X [N, p]`` and ``Y [M, q]`` are unpaired:
different items, possibly different counts and dimensions.  Gromov–Wasserstein (Mémoli 2011)
matches them by comparing each cloud with itself only.  With within-space distance matrices
``C¹ [n, n]`` and ``C² [m, m]`` and point weights ``a``, ``b``, it finds the coupling

.. math::

    T^\star = \operatorname*{arg\,min}_{T \in \Pi(a, b)}
        \sum_{i, k, j, l} \bigl(C^1_{ik} - C^2_{jl}\bigr)^2 \, T_{ij} \, T_{kl},
    \qquad \Pi(a, b) = \{T \ge 0 : T 1 = a,\; T^\top 1 = b\},

a soft matching under which pairs of points at a given distance in one space go to pairs at
the same distance in the other.  Since only ``C¹`` and ``C²`` enter, the matching is
coordinate-free: it is unchanged by any isometry (rotation, reflection, translation) of either
cloud, and, as both matrices are divided by their largest entry here, by an isotropic rescaling
too.  The flip side is that it cannot tell a cloud from its mirror image: a cloud with a
symmetry of its own has several equally good matchings, and the solver returns one of them.

The objective above is what POT (``ot.gromov``) minimises and reports: the squared loss
without the ``½`` of some papers and without the square root of the GW *distance*.  The
problem is a non-convex quadratic programme; :func:`ot.gromov.gromov_wasserstein` (``epsilon``
``None``) runs conditional gradient from the independent coupling ``a bᵀ`` and may stop at a
local optimum, :func:`ot.gromov.entropic_gromov_wasserstein` (``epsilon > 0``) adds the
entropy penalty ``ε Σ T log T``, which smooths the coupling (every point spreads its mass over
several partners) and makes it cheaper.

:class:`GromovWassersteinTranslator` turns the coupling into pairs, each source point ``x_i``
with its barycentric partner ``ŷ_i = Σ_j T_ij y_j / Σ_j T_ij`` (``= n (T Y)_i`` under uniform
weights) or its most likely one ``y_{argmax_j T_ij}``, and fits an ordinary translator
(:func:`~pyro_latent.translate.translators.make_translator`) on them.
:func:`coupling_permutation_accuracy` scores a coupling against a known matching.
"""

from __future__ import annotations

import math

import numpy as np
import ot
from scipy.spatial.distance import cdist
from sklearn.base import clone

from pyro_latent.core.checks import (
    check_long_tensor,
    check_nonnegative_int,
    check_positive_int,
    check_probability,
)
from pyro_latent.translate.translators import (
    AffineTranslator,
    UnpairedTranslator,
    check_paired_translator,
    translator_name,
)
from pyro_latent.translate.translators import _check_latents as _check_cloud

__all__ = [
    "PAIRINGS",
    "GromovWassersteinTranslator",
    "coupling_permutation_accuracy",
    "gromov_wasserstein_objective",
]

PAIRINGS = ("barycentric", "argmax")

# A distance or a row of coupling mass at or below this is zero: nothing to divide by.
_TINY = 1e-300


# ------------------------------------------------------------------------------- validation
def _check_epsilon(value) -> float | None:
    if value is None:
        return None
    out = check_probability(value, "epsilon", low=0.0, high=math.inf, include_high=False)
    if out == 0.0:
        raise ValueError("epsilon must be positive, or None for the exact solver, got 0")
    return out


def _subsample(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of ``min(n, k)`` rows drawn without replacement (all rows if ``n ≤ k``)."""
    if n <= k:
        return np.arange(n)
    return np.sort(rng.choice(n, size=k, replace=False))


def _normalised_distances(X: np.ndarray, name: str) -> np.ndarray:
    """Euclidean distances between the rows of ``X``, divided by the largest one."""
    C = cdist(X, X)
    largest = float(C.max())
    if largest <= _TINY:
        raise ValueError(f"{name} has no spread: all its points coincide")
    return C / largest


# ------------------------------------------------------------------------------------ maths
def _real_matrix(M, name: str) -> np.ndarray:
    """``M`` as a finite 2-D float64 array, or a ``ValueError`` naming ``name``."""
    try:
        out = np.asarray(M, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real matrix, got {type(M).__name__}") from None
    if out.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {out.shape}")
    if not np.isfinite(out).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return out


def gromov_wasserstein_objective(C1, C2, T) -> float:
    r"""The square-loss GW objective ``Σ_{ijkl} (C¹_ik − C²_jl)² T_ij T_kl`` of a coupling.

    Expanding the square with the coupling's own marginals ``a = T1``, ``b = Tᵀ1`` gives
    ``aᵀ(C¹∘C¹)a + bᵀ(C²∘C²)b − 2 tr(C¹ T C²ᵀ Tᵀ)``, which costs ``O(n²m + nm²)`` rather than
    ``O(n²m²)``; for a coupling in ``Π(a, b)`` it is the value POT minimises.  Rounding can
    leave a perfect matching a hair below zero, so the result is clipped at 0.

    ``C1 [n, n]`` and ``C2 [m, m]`` must be square and ``T`` ``[n, m]``, all finite: a
    ``ValueError`` naming the argument otherwise.
    """
    C1, C2, T = (_real_matrix(M, name) for M, name in ((C1, "C1"), (C2, "C2"), (T, "T")))
    for M, name in ((C1, "C1"), (C2, "C2")):
        if M.shape[0] != M.shape[1] or M.shape[0] == 0:
            raise ValueError(f"{name} must be a non-empty square matrix, got shape {M.shape}")
    if T.shape != (C1.shape[0], C2.shape[0]):
        raise ValueError(
            f"T must have shape (len(C1), len(C2)) = {(C1.shape[0], C2.shape[0])}, got {T.shape}"
        )
    a, b = T.sum(1), T.sum(0)
    cross = float(np.sum((C1 @ T @ C2.T) * T))
    value = float(a @ (C1**2) @ a + b @ (C2**2) @ b - 2.0 * cross)
    return max(value, 0.0)


def coupling_permutation_accuracy(T, true_perm) -> float:
    """Fraction of source points whose most likely partner under ``T`` is the true one.

    Args:
        T: a coupling ``[n, m]`` (non-negative, finite); row ``i`` is source point ``i``'s mass.
        true_perm: ``[n]`` integers in ``0..m-1``: source point ``i`` truly corresponds to
            target point ``true_perm[i]``.

    Returns:
        ``mean_i [argmax_j T_ij = true_perm[i]]``, in ``[0, 1]`` (ties go to the lowest ``j``).
    """
    T = _check_cloud(T, "T")
    if (T < 0).any():
        raise ValueError("T must be non-negative (a coupling)")
    perm = check_long_tensor(true_perm, "true_perm").numpy()
    if perm.ndim != 1 or perm.shape[0] != T.shape[0]:
        raise ValueError(
            f"true_perm must be 1-D with one entry per row of T ({T.shape[0]}), got shape "
            f"{perm.shape}"
        )
    if perm.min() < 0 or perm.max() >= T.shape[1]:
        raise ValueError(
            f"true_perm must hold column indices of T in 0..{T.shape[1] - 1}, got values in "
            f"{perm.min()}..{perm.max()}"
        )
    return float(np.mean(T.argmax(1) == perm))


# ------------------------------------------------------------------------------- translator
class GromovWassersteinTranslator(UnpairedTranslator):
    """A translator fitted on unpaired clouds through a Gromov–Wasserstein coupling.

    ``fit(X_src, X_dst)`` draws up to ``n_points`` rows of each cloud (``src_indices_``,
    ``dst_indices_``; ``numpy.random.default_rng(seed)``, source first), computes each
    side's Euclidean distance matrix divided by its largest entry, couples the two with uniform
    weights (``coupling_``, ``[n, m]``, rows summing to ``1/n``; ``gw_distance_`` is its GW
    objective, :func:`gromov_wasserstein_objective`, without ``½`` or square root), pairs every
    drawn source point with its partner (``pairing``: ``"barycentric"``, the coupling-weighted
    mean of the target points, or ``"argmax"``, the target point with the most mass), stores
    the pairs as ``pairs_src_`` and ``pairs_dst_``, and fits a clone of the paired translator
    ``estimator`` on them (``translator_``).  ``transform(Z)`` applies that translator and
    ``score`` is its ``R²`` on paired held-out codes (:class:`~pyro_latent.translate.
    translators.UnpairedTranslator`).

    The pairs are only as good as the matching: GW cannot tell a cloud from its mirror image,
    so a (near-)symmetric cloud may be matched to a reflected copy of its partner, and the
    exact solver can stop at a local optimum.  The barycentric partner of a point whose mass
    is split between distant targets is a point between them, which pulls a linear fit
    towards zero; ``"argmax"`` avoids that at the price of ties.

    Args:
        n_points: at most this many points of each cloud enter the coupling (the solver's cost
            grows as ``n² m + n m²`` per iteration).
        epsilon: ``None`` for the exact (conditional-gradient) solver, a positive float for the
            entropic one with that regularisation, on distances scaled to ``[0, 1]``.
        estimator: the paired translator fitted on the pairs (default
            :class:`~pyro_latent.translate.translators.AffineTranslator`); its parameters are
            reachable as ``estimator__alpha`` and so on.
        pairing: ``"barycentric"`` or ``"argmax"`` (:data:`PAIRINGS`).
        seed: seed of the subsampling.
    """

    _fitted_attribute = "coupling_"  # set last by fit

    def __init__(
        self,
        n_points: int = 400,
        epsilon: float | None = None,
        estimator=None,
        pairing: str = "barycentric",
        seed: int = 0,
    ):
        self.n_points = n_points
        self.epsilon = epsilon
        self.estimator = estimator
        self.pairing = pairing
        self.seed = seed

    # --- fitting ------------------------------------------------------------------------------
    def fit(self, X_src, X_dst):
        """Fit on unpaired clouds ``X_src [N, d_src]`` and ``X_dst [M, d_dst]``; returns
        ``self``."""
        X_src, X_dst = _check_cloud(X_src, "X_src"), _check_cloud(X_dst, "X_dst")
        n_points = check_positive_int(self.n_points, "n_points")
        epsilon = _check_epsilon(self.epsilon)
        if self.pairing not in PAIRINGS:
            raise ValueError(f"pairing must be one of {PAIRINGS}, got {self.pairing!r}")
        estimator = AffineTranslator() if self.estimator is None else self.estimator
        translator = clone(check_paired_translator(estimator, "estimator"))
        rng = np.random.default_rng(check_nonnegative_int(self.seed, "seed"))

        src_index = _subsample(X_src.shape[0], n_points, rng)
        dst_index = _subsample(X_dst.shape[0], n_points, rng)
        # Two points are the fewest with a distance to match; the translator may need more.
        needed = max(2, translator.min_pairs(X_src.shape[1]))
        if len(src_index) < needed:
            raise ValueError(
                f"{type(self).__name__} with {translator_name(translator)!r} needs at least "
                f"{needed} source "
                f"points for {X_src.shape[1]}-dimensional X_src, got {len(src_index)} (X_src "
                f"has {X_src.shape[0]} rows, n_points={n_points})"
            )
        if len(dst_index) < 2:
            raise ValueError(f"X_dst needs at least 2 points, got {len(dst_index)}")
        src, dst = X_src[src_index], X_dst[dst_index]
        C1 = _normalised_distances(src, "X_src")
        C2 = _normalised_distances(dst, "X_dst")

        coupling = self._couple(C1, C2, epsilon)
        partners = self._partners(coupling, dst)

        self.n_features_in_, self.n_features_out_ = X_src.shape[1], X_dst.shape[1]
        self.src_indices_, self.dst_indices_ = src_index, dst_index
        self.gw_distance_ = gromov_wasserstein_objective(C1, C2, coupling)
        self.pairs_src_, self.pairs_dst_ = src, partners
        self.translator_ = translator.fit(src, partners)
        # Set last: transform's fitted check looks for it, so a failed fit is not "fitted".
        self.coupling_ = coupling
        return self

    @staticmethod
    def _couple(C1: np.ndarray, C2: np.ndarray, epsilon: float | None) -> np.ndarray:
        """The GW coupling of the two distance matrices under uniform weights."""

        p = np.full(C1.shape[0], 1.0 / C1.shape[0])
        q = np.full(C2.shape[0], 1.0 / C2.shape[0])
        if epsilon is None:
            T = ot.gromov.gromov_wasserstein(C1, C2, p, q, loss_fun="square_loss")
        else:
            T = ot.gromov.entropic_gromov_wasserstein(
                C1, C2, p, q, loss_fun="square_loss", epsilon=epsilon
            )
        T = np.asarray(T, dtype=np.float64)
        if not np.isfinite(T).all():
            raise ValueError(
                f"the Gromov–Wasserstein solver returned a coupling with NaN or infinite "
                f"entries (epsilon={epsilon}); try a larger epsilon"
            )
        return T

    def _partners(self, T: np.ndarray, dst: np.ndarray) -> np.ndarray:
        """Each source point's partner among the target points ``dst``, under coupling ``T``."""
        if self.pairing == "argmax":
            return dst[T.argmax(1)]
        mass = T.sum(1)
        if (mass <= _TINY).any():
            raise ValueError(
                f"{int((mass <= _TINY).sum())} source point(s) received no coupling mass, so "
                "they have no barycentric partner; try a larger epsilon or pairing='argmax'"
            )
        # Dividing by the row's own mass rather than multiplying by n: the two agree when the
        # marginal holds exactly, and the entropic solver's marginals hold only approximately.
        return (T @ dst) / mass[:, None]
