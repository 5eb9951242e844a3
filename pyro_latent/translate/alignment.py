r"""Unpaired translation that escapes the isometry trap: many starts, then Wasserstein–Procrustes.

Two clouds ``X [N, p]`` and ``Y [M, q]`` encode *different* items.  Gromov–Wasserstein
(:mod:`~pyro_latent.translate.gromov`) matches them through within-space distances only, so it
cannot tell ``Y`` from any isometric copy of it.  A cloud with a near-symmetry, such as a
roughly Gaussian cloud, has many couplings of almost the same GW objective, and a solver started
from the independent coupling returns one of them, often a mirrored one.  Alvarez-Melis and
Jaakkola (2018) answer with several starts, kept by the objective.  Grave, Joulin and Berthet
(2019) refine the result on the full clouds by alternating an orthogonal map and an optimal
transport matching.  Both translators here do both.

**Working coordinates.**  Each cloud is centred, divided by its root-mean-square norm and padded
with zero columns to the width ``w = max(p, q)``.  An orthogonal ``R [w, w]`` then relates the two
up to the isotropic scale, as in :class:`~pyro_latent.translate.translators.ProcrustesTranslator`.
With ``whiten=True`` each cloud is first whitened, ``x ↦ C^{-1/2}(x − μ)``.  If ``Y = X M + t``
for *any* invertible ``M``, the whitened clouds differ by an orthogonal map, so an affine
relation becomes one the orthogonal search can find.  That holds exactly while no eigenvalue
falls below the floor (:data:`WHITEN_FLOOR` of the largest, there so that directions a cloud
barely uses are not blown up); beyond it the relation is orthogonal only approximately.

**Wasserstein–Procrustes** (:func:`wasserstein_procrustes`) alternates, from ``R₀``:

.. math::

    P \leftarrow \operatorname*{arg\,min}_{P \in \Pi(a, b)} \langle P, C(R) \rangle,
    \quad C(R)_{ij} = \lVert x_i R - y_j \rVert^2,
    \qquad
    R \leftarrow \operatorname*{arg\,min}_{R^\top R = I} \lVert X R - \hat Y \rVert_F,
    \quad \hat y_i = \frac{\sum_j P_{ij} y_j}{\sum_j P_{ij}},

exact transport (POT's network simplex) and orthogonal Procrustes in turn.  Neither step can raise
``⟨P, C(R)⟩``, so the objective decreases monotonically, and the loop stops when it no longer
falls by a relative ``tol``.  It converges to a local optimum near its start, which is why the
start matters.

**Starts.**

* :class:`GromovProcrustesTranslator` runs GW on a subsample from the independent coupling and
  from ``2^k`` couplings that match the clouds' top ``k`` principal coordinates with every
  pattern of sign flips (the mirror images GW cannot tell apart).  It keeps the coupling with the
  lowest GW objective, never the best test score, and takes ``R₀`` by Procrustes on its
  barycentric pairs.
* :class:`ClusterMatchingTranslator` (the idea of mini-vec2vec) clusters each cloud with k-means
  and matches the clusters by fused Gromov–Wasserstein (Vayer et al. 2019).  The structure term
  is the distances between centres, and the feature term is each cluster's log weight and log
  spread.  It keeps the lowest FGW objective over several starts, and takes ``R₀`` by Procrustes
  on the matched centres.

Both then refine with Wasserstein–Procrustes on a subsample and match the whole clouds by exact
transport under the final ``R``.  The translator is the alignment itself,
``x ↦ frame_dst⁻¹(frame_src(x) R)``, or a paired ``estimator`` fitted on the matched pairs.

:func:`transport_cost` scores a fitted translator without pairs: the squared 2-Wasserstein
distance between a held-out source cloud's translation and a held-out target cloud, over the
target's variance.  It is the unpaired criterion for choosing hyper-parameters.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import ot
import scipy.linalg
from scipy.spatial.distance import cdist
from sklearn.base import clone
from sklearn.cluster import KMeans
from sklearn.metrics import r2_score

from pyro_latent.core.checks import (
    check_int,
    check_nonnegative_int,
    check_positive_int,
    check_probability,
)
from pyro_latent.translate.gromov import (
    _normalised_distances,
    _subsample,
    gromov_wasserstein_objective,
)
from pyro_latent.translate.translators import (
    UnpairedTranslator,
    check_paired_translator,
)
from pyro_latent.translate.translators import _check_latents as _check_cloud

__all__ = [
    "ClusterMatchingTranslator",
    "GromovProcrustesTranslator",
    "sign_flip_couplings",
    "transport_cost",
    "wasserstein_procrustes",
]

# A cloud whose root-mean-square norm is below this has no spread to scale by.
_TINY = 1e-12
# Whitening floors the covariance's eigenvalues at this share of the largest.
WHITEN_FLOOR = 1e-2


# ================================================================================== helpers
class _Frame:
    """A cloud's working coordinates: ``pad((x − μ) S)``, with ``S`` the isotropic ``I / rms``
    or, with ``whiten``, the symmetric whitening ``C^{-1/2}`` (eigenvalues floored at
    :data:`WHITEN_FLOOR` of the largest, so that directions the cloud barely uses are not
    blown up to unit variance) followed by the isotropic scaling."""

    def __init__(self, X: np.ndarray, width: int, whiten: bool, name: str):
        self.mean = X.mean(0)
        centred = X - self.mean
        if math.sqrt(float((centred**2).sum(1).mean())) <= _TINY:
            raise ValueError(f"{name} has no spread: all its points coincide")
        if whiten:
            values, vectors = np.linalg.eigh(np.cov(centred, rowvar=False).reshape(X.shape[1], -1))
            values = np.maximum(values, WHITEN_FLOOR * values.max())
            S = (vectors / np.sqrt(values)) @ vectors.T
        else:
            S = np.eye(X.shape[1])
        rms = math.sqrt(float(((centred @ S) ** 2).sum(1).mean()))
        self.matrix = S / rms
        self.inverse = np.linalg.inv(self.matrix)
        self.width = width

    def forward(self, X: np.ndarray) -> np.ndarray:
        return np.pad((X - self.mean) @ self.matrix, ((0, 0), (0, self.width - X.shape[1])))

    def backward(self, W: np.ndarray) -> np.ndarray:
        return W[:, : self.inverse.shape[0]] @ self.inverse + self.mean


class _AlignedMap:
    """``T(x) = frame_dst⁻¹(frame_src(x) R)``: the alignment itself as a fitted translator."""

    def __init__(self, source: _Frame, target: _Frame, rotation: np.ndarray):
        self.source, self.target, self.rotation = source, target, rotation

    def transform(self, Z) -> np.ndarray:
        Z = _check_cloud(Z, "Z")
        if Z.shape[1] != self.source.mean.shape[0]:
            raise ValueError(f"Z must have {self.source.mean.shape[0]} columns, got {Z.shape[1]}")
        return self.target.backward(self.source.forward(Z) @ self.rotation)

    def score(self, Z_src, Z_dst) -> float:
        return float(r2_score(_check_cloud(Z_dst, "Z_dst"), self.transform(Z_src)))


def _uniform(n: int) -> np.ndarray:
    return np.full(n, 1.0 / n)


def _barycentres(P: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Each row's coupling-weighted mean of ``Y``'s rows."""
    return (P @ Y) / P.sum(1, keepdims=True)


def _procrustes(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    return scipy.linalg.orthogonal_procrustes(A, B)[0]


def sign_flip_couplings(A, B, n_axes: int) -> list[np.ndarray]:
    """Couplings of the rows of ``A [n, w]`` and ``B [m, w]`` that match their top ``k =
    n_axes`` principal coordinates, one for each of the ``2^k`` sign patterns of ``A``'s: the
    exact transport plan between ``A``'s flipped and ``B``'s principal coordinates under squared
    Euclidean cost, uniform weights.  ``k`` is capped by both clouds' widths."""
    A, B = np.asarray(A, dtype=np.float64), np.asarray(B, dtype=np.float64)
    k = min(check_positive_int(n_axes, "n_axes"), A.shape[1], B.shape[1])
    pa = (A - A.mean(0)) @ np.linalg.svd(A - A.mean(0), full_matrices=False)[2][:k].T
    pb = (B - B.mean(0)) @ np.linalg.svd(B - B.mean(0), full_matrices=False)[2][:k].T
    a, b = _uniform(len(A)), _uniform(len(B))
    return [
        ot.emd(a, b, cdist(pa * np.asarray(signs), pb, "sqeuclidean"))
        for signs in itertools.product((1.0, -1.0), repeat=k)
    ]


def wasserstein_procrustes(A, B, R0, *, n_iter: int = 30, tol: float = 1e-6) -> dict:
    """Alternate exact transport and orthogonal Procrustes from ``R0`` (module docstring).

    ``A [n, w]``, ``B [m, w]``: the two clouds in working coordinates, ``R0 [w, w]``
    orthogonal.  Returns ``{"rotation", "coupling", "objectives"}``, with the transport
    objective ``⟨P, C(R)⟩`` after each matching (non-increasing)."""
    A, B = np.asarray(A, dtype=np.float64), np.asarray(B, dtype=np.float64)
    R = np.asarray(R0, dtype=np.float64)
    n_iter = check_positive_int(n_iter, "n_iter")
    tol = check_probability(tol, "tol")
    a, b = _uniform(len(A)), _uniform(len(B))
    objectives: list[float] = []
    P = None
    for step in range(n_iter):
        cost = cdist(A @ R, B, "sqeuclidean")
        P = ot.emd(a, b, cost)
        objectives.append(float((P * cost).sum()))
        converged = len(objectives) > 1 and objectives[-2] - objectives[-1] <= tol * objectives[-2]
        if converged or step == n_iter - 1:
            break  # before updating R: the returned R, P and objective belong together
        R = _procrustes(A, _barycentres(P, B))
    return {"rotation": R, "coupling": P, "objectives": objectives}


def transport_cost(translated, target) -> float:
    """``W₂²(T(A'), B') / Var(B')``: the squared 2-Wasserstein distance between a translated
    held-out source cloud and a held-out target cloud of other items (exact transport, uniform
    weights), over the target's total variance.  ``0`` when the two clouds coincide; shifting
    the translation by ``v`` adds ``(‖v‖² + 2 v·(x̄ − ȳ)) / Var``, exactly ``‖v‖² / Var`` when
    the two clouds have one mean.  Two finite samples of one distribution still cost more than
    0, so the number compares translators on the same held-out clouds; it is not an absolute
    score."""
    X, Y = _check_cloud(translated, "translated"), _check_cloud(target, "target")
    if X.shape[1] != Y.shape[1]:
        raise ValueError(f"translated has {X.shape[1]} columns, target {Y.shape[1]}")
    variance = float(((Y - Y.mean(0)) ** 2).sum(1).mean())
    if variance <= _TINY:
        raise ValueError("target has no spread")
    cost = cdist(X, Y, "sqeuclidean")
    return float((ot.emd(_uniform(len(X)), _uniform(len(Y)), cost) * cost).sum()) / variance


# ============================================================================== translators
class _AlignedTranslator(UnpairedTranslator):
    """Shared fit: working coordinates, a start ``R₀`` (the subclass's), Wasserstein–Procrustes
    on a subsample, exact matching of the whole clouds, and the paired estimator."""

    _fitted_attribute = "translator_"

    def fit(self, X_src, X_dst, **fit_params):
        """Fit on unpaired clouds ``X_src [N, d_src]`` and ``X_dst [M, d_dst]``; returns
        ``self``.  ``fit_params`` go to the subclass's starts (the cluster labels of
        :class:`ClusterMatchingTranslator`)."""
        X_src, X_dst = _check_cloud(X_src, "X_src"), _check_cloud(X_dst, "X_dst")
        self._check_params()
        translator = None
        if self.estimator is not None:
            translator = clone(check_paired_translator(self.estimator, "estimator"))
        refine_points = check_int(self.refine_points, "refine_points", minimum=2)
        rng = np.random.default_rng(check_nonnegative_int(self.seed, "seed"))
        needed = 2 if translator is None else max(2, translator.min_pairs(X_src.shape[1]))
        if X_src.shape[0] < needed or X_dst.shape[0] < 2:
            raise ValueError(
                f"{type(self).__name__} needs at least {needed} source and 2 target points, "
                f"got {X_src.shape[0]} and {X_dst.shape[0]}"
            )
        width = max(X_src.shape[1], X_dst.shape[1])
        whiten = bool(self.whiten)
        frames = _Frame(X_src, width, whiten, "X_src"), _Frame(X_dst, width, whiten, "X_dst")
        A, B = frames[0].forward(X_src), frames[1].forward(X_dst)
        objectives, rotations = self._starts(X_src, X_dst, A, B, rng, **fit_params)
        rows_a = _subsample(len(A), refine_points, rng)
        rows_b = _subsample(len(B), refine_points, rng)
        # The starts with the lowest objectives of their own kind are refined; the refined
        # transport objective, unpaired too, picks among them.
        order = np.argsort(objectives, kind="stable")[
            : check_positive_int(self.refine_starts, "refine_starts")
        ]
        refined = {
            int(i): wasserstein_procrustes(A[rows_a], B[rows_b], rotations[i], n_iter=self.n_iter)
            for i in order
        }
        best = min(refined, key=lambda i: refined[i]["objectives"][-1])
        cost = cdist(A @ refined[best]["rotation"], B, "sqeuclidean")
        coupling = ot.emd(_uniform(len(A)), _uniform(len(B)), cost)
        self.n_features_in_, self.n_features_out_ = X_src.shape[1], X_dst.shape[1]
        self.start_objectives_ = [float(v) for v in objectives]
        self.refined_objectives_ = {i: r["objectives"][-1] for i, r in refined.items()}
        self.chosen_start_ = best
        self.initial_rotation_ = rotations[best]
        self.rotation_ = refined[best]["rotation"]
        self.refine_objectives_ = refined[best]["objectives"]
        self.coupling_ = coupling
        self.matching_cost_ = float((coupling * cost).sum())
        if translator is None:
            self.translator_ = _AlignedMap(*frames, self.rotation_)
        else:
            self.translator_ = translator.fit(X_src, _barycentres(coupling, X_dst))
        return self

    def _check_params(self) -> None:
        check_positive_int(self.n_iter, "n_iter")

    def _starts(self, X_src, X_dst, A, B, rng) -> tuple[list[float], list[np.ndarray]]:
        """Each start's objective (lower is better) and its ``R₀``."""
        raise NotImplementedError


class GromovProcrustesTranslator(_AlignedTranslator):
    """Multi-start Gromov–Wasserstein, then Wasserstein–Procrustes (module docstring).

    ``fit`` couples up to ``n_points`` points of each cloud (``src_indices_``, ``dst_indices_``;
    distances over their largest, as in :class:`~pyro_latent.translate.gromov.
    GromovWassersteinTranslator`) with POT's exact GW solver from the independent coupling and
    from each of the ``2^n_axes`` sign-flip couplings (:func:`sign_flip_couplings`).  It
    records every start's objective (``start_objectives_``, the independent start first;
    ``gw_distance_`` and ``gw_coupling_`` are the lowest) and turns each coupling into an
    ``R₀`` by Procrustes on its barycentric pairs.  The ``refine_starts`` starts of lowest GW
    objective are refined by Wasserstein–Procrustes on ``refine_points`` points of each cloud
    (``refined_objectives_``), and the lowest refined transport objective wins
    (``chosen_start_``, ``rotation_``, ``refine_objectives_``): both criteria see no pairs.
    Then exact matching of the whole clouds (``coupling_``, ``matching_cost_``), and the
    translator (``translator_``): the alignment itself, or ``estimator`` fitted on the matched
    pairs.

    Args:
        n_points: points of each cloud in the GW problems.
        n_axes: principal axes whose signs are flipped (``0``: the independent start only).
        refine_starts: how many of the best starts are refined.
        whiten: whiten each cloud in its working coordinates (module docstring), so that an
            affine relation between the clouds becomes an orthogonal one.  A whitened cloud
            has no principal axes left, so the sign-flip starts then carry little information
            and more GW points are needed.  GW itself still compares the codes' own distances
            (measured: whitened distances gave worse couplings on an anisotropic mixture).
        refine_points: points of each cloud in the Wasserstein–Procrustes loop.
        n_iter: the loop's most alternations.
        estimator: ``None`` (the default) translates by the alignment itself, ``T(x) =
            frame_dst⁻¹(frame_src(x) R)``; a paired translator is instead fitted on the matched
            pairs (least squares on pairs matched only up to a cluster shrinks the map).
        seed: seed of the subsamples.
    """

    def __init__(
        self,
        n_points: int = 400,
        n_axes: int = 3,
        refine_starts: int = 3,
        refine_points: int = 800,
        n_iter: int = 30,
        whiten: bool = False,
        estimator=None,
        seed: int = 0,
    ):
        self.n_points = n_points
        self.n_axes = n_axes
        self.refine_starts = refine_starts
        self.refine_points = refine_points
        self.n_iter = n_iter
        self.whiten = whiten
        self.estimator = estimator
        self.seed = seed

    def _check_params(self):
        super()._check_params()
        check_int(self.n_points, "n_points", minimum=2)
        check_nonnegative_int(self.n_axes, "n_axes")

    def _starts(self, X_src, X_dst, A, B, rng):
        src = _subsample(len(A), self.n_points, rng)
        dst = _subsample(len(B), self.n_points, rng)
        C1 = _normalised_distances(X_src[src], "X_src")
        C2 = _normalised_distances(X_dst[dst], "X_dst")
        p, q = _uniform(len(src)), _uniform(len(dst))
        starts = [None]
        # Capped by the clouds' own widths: flipping a padding column repeats a start.
        n_axes = min(int(self.n_axes), X_src.shape[1], X_dst.shape[1])
        if n_axes:
            starts += sign_flip_couplings(A[src], B[dst], n_axes)
        couplings, objectives = [], []
        for G0 in starts:
            T = ot.gromov.gromov_wasserstein(C1, C2, p, q, loss_fun="square_loss", G0=G0)
            couplings.append(np.asarray(T, dtype=np.float64))
            objectives.append(gromov_wasserstein_objective(C1, C2, couplings[-1]))
        self.src_indices_, self.dst_indices_ = src, dst
        self.gw_distance_ = min(objectives)
        self.gw_coupling_ = couplings[int(np.argmin(objectives))]
        return objectives, [_procrustes(A[src], _barycentres(T, B[dst])) for T in couplings]


class ClusterMatchingTranslator(_AlignedTranslator):
    """k-means clusters of both clouds matched by fused Gromov–Wasserstein, then
    Wasserstein–Procrustes (module docstring).

    ``fit`` runs k-means with ``n_clusters`` centres on each cloud in working coordinates
    (``centres_src_``, ``centres_dst_``), or takes the clusters it is given,
    ``fit(X_src, X_dst, clusters_src=…, clusters_dst=…)``, one label per point (a mixture-prior
    VAE's most likely components, say; the two clusterings need not have the same size).
    Each cluster is described by its weight ``w`` (share of points) and spread ``s``
    (root-mean-square distance of its points to the centre).  The centres are coupled by POT's
    fused GW, with weights as marginals, distances between centres (over their largest) as
    structure, ``|log w − log w'|² + |log s − log s'|²`` as feature
    cost and trade-off ``alpha``.  It starts from the independent coupling and from
    ``n_restarts`` random vertices of the transport polytope (``start_objectives_``;
    ``cluster_coupling_`` has the lowest).  Each start's ``R₀`` is Procrustes on each source
    centre and its barycentric partner, weighted by cluster weight, and the rest, the choice
    among the refined starts included, is as in :class:`GromovProcrustesTranslator`.

    Args:
        n_clusters: ``K``, centres per cloud.
        n_restarts: random starts of the cluster matching, besides the independent one.
        alpha: weight of the structure term in fused GW (``1``: plain GW on the centres).
        refine_starts, refine_points, n_iter, whiten, estimator, seed: as in
            :class:`GromovProcrustesTranslator`.
    """

    def __init__(
        self,
        n_clusters: int = 30,
        n_restarts: int = 20,
        alpha: float = 0.5,
        refine_starts: int = 3,
        refine_points: int = 800,
        n_iter: int = 30,
        whiten: bool = False,
        estimator=None,
        seed: int = 0,
    ):
        self.n_clusters = n_clusters
        self.n_restarts = n_restarts
        self.alpha = alpha
        self.refine_starts = refine_starts
        self.refine_points = refine_points
        self.n_iter = n_iter
        self.whiten = whiten
        self.estimator = estimator
        self.seed = seed

    def _check_params(self):
        super()._check_params()
        check_int(self.n_clusters, "n_clusters", minimum=2)
        check_nonnegative_int(self.n_restarts, "n_restarts")
        check_probability(self.alpha, "alpha")

    def _clusters(self, A: np.ndarray, seed: int, name: str, labels=None):
        if labels is None:
            k = int(self.n_clusters)
            if len(A) < 2 * k:
                raise ValueError(
                    f"{name} has {len(A)} points, too few for {k} clusters (need {2 * k})"
                )
            labels = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(A).labels_
        else:
            labels = np.asarray(labels)
            if labels.shape != (len(A),):
                raise ValueError(
                    f"the cluster labels of {name} must hold one label per point ({len(A)}), "
                    f"got shape {labels.shape}"
                )
            labels = np.unique(labels, return_inverse=True)[1]  # empty clusters dropped
            if labels.max() < 1:
                raise ValueError(f"the cluster labels of {name} name a single cluster")
        k = int(labels.max()) + 1
        centres = np.stack([A[labels == c].mean(0) for c in range(k)])
        weights = np.bincount(labels, minlength=k) / len(A)
        spread = np.sqrt([((A[labels == c] - centres[c]) ** 2).sum(1).mean() for c in range(k)])
        features = np.c_[np.log(weights), np.log(np.maximum(spread, _TINY))]
        return centres, weights, features

    def _starts(self, X_src, X_dst, A, B, rng, clusters_src=None, clusters_dst=None):
        seed = int(rng.integers(2**31 - 1))
        ca, wa, fa = self._clusters(A, seed, "X_src", clusters_src)
        cb, wb, fb = self._clusters(B, seed, "X_dst", clusters_dst)
        C1, C2 = (
            _normalised_distances(ca, "the source centres"),
            _normalised_distances(cb, "the target centres"),
        )
        M = cdist(fa, fb, "sqeuclidean")
        M = M / max(float(M.max()), _TINY)
        shape = (len(ca), len(cb))
        # A random vertex of the transport polytope Π(wa, wb) per restart: a near-permutation.
        starts = [None] + [ot.emd(wa, wb, rng.random(shape)) for _ in range(int(self.n_restarts))]
        couplings, objectives = [], []
        for G0 in starts:
            T, log = ot.gromov.fused_gromov_wasserstein(
                M, C1, C2, wa, wb, loss_fun="square_loss", alpha=float(self.alpha), G0=G0, log=True
            )
            couplings.append(np.asarray(T, dtype=np.float64))
            objectives.append(float(log["fgw_dist"]))
        self.centres_src_, self.centres_dst_ = ca, cb
        self.cluster_coupling_ = couplings[int(np.argmin(objectives))]
        root = np.sqrt(wa)[:, None]  # Procrustes weighted by cluster weight
        return objectives, [_procrustes(ca * root, _barycentres(T, cb) * root) for T in couplings]
