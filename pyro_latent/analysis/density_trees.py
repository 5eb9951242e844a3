r"""Level-set trees of a model's *own* density, which no change of coordinates can fool.

:func:`~pyro_latent.analysis.level_sets.level_set_tree` estimates a cloud's density with
HDBSCAN, from Euclidean distances in whatever coordinates the codes are written in, so a
linear map of the latent space can change its tree.  A model with a known latent density, its
prior ``p(z)`` or its aggregate posterior ``q(z) = (1/N) Σ_n q(z | x_n)``, needs no estimate.
Its superlevel sets ``{z : p(z) ≥ t}`` and their nesting are then facts about the model, and a
re-parametrisation ``y = φ(z)`` changes them only through the density's Jacobian factor,

.. math::

    p_Y(φ(z)) = p_Z(z) \, / \, |\det J_φ(z)|.

Under a volume-preserving ``φ`` (``|det J| = 1``) every point keeps its density, and under a
linear one every density is divided by the same constant.  The tree, the node sizes and the
points in every node are then the same.  A map with a varying ``|det J|`` reshapes the density,
and with it the tree.

**The tree on points.**  With the density known at points ``z_1..z_N``, the superlevel set
``{p ≥ t}`` is read off a neighbourhood graph ``G`` on the points.  At level ``t`` keep the
points with ``p(z_i) ≥ t``, and the edges of ``G`` between them; the components of that
subgraph are the clusters at ``t``.  This is the vertex filtration of ToMATo (Chazal, Guibas,
Oudot and Skraba 2013).  The level is ``λ_i = p(z_i) / max_j p(z_j) ∈ (0, 1]``, so that a
constant factor in the density cancels.  Raising ``λ`` removes points and splits clusters, as in
HDBSCAN, and the same condensation with ``min_cluster_size`` turns the merge tree into a
:class:`~pyro_latent.analysis.level_sets.LevelSetTree`.  Matching, purity by depth and the tree
translator then work on it unchanged.

**Which graph.**  Euclidean neighbours among the codes would bring the coordinates back in.
:func:`model_density_tree` connects each code to the ``k`` codes whose *decoded images* are
nearest: ``decode(φ⁻¹(φ(z))) = decode(z)``, so this graph is the same in every coordinate system
of the model.  Any other coordinate-free graph (neighbours among the input images, say) can be
given to :func:`density_level_set_tree`.  A kNN graph that is too sparse leaves a component
broken, and one that is too dense bridges two. ``k`` is the one choice of the method.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.neighbors import NearestNeighbors

from pyro_latent.analysis.level_sets import LevelSetTree, _build_tree, _check_cloud
from pyro_latent.analysis.similarity import _as_matrix
from pyro_latent.core.checks import check_int, check_positive_int
from pyro_latent.core.latent_model import (
    check_latent_model,
    decode_in_batches,
    diagonal_log_density,
    encode_in_batches,
    log_posterior,
    log_prior,
    require_posterior,
)

__all__ = [
    "DENSITIES",
    "aggregate_posterior_log_density",
    "condense_merge_tree",
    "density_level_set_tree",
    "knn_graph",
    "merge_tree",
    "model_density_tree",
]

DENSITIES = ("prior", "aggregate-posterior")

# A level below the smallest positive normal float would underflow to 0 and sit at the root.
_TINY_LEVEL = np.finfo(np.float64).tiny
# The dtype of the condensed tree's rows, as hdbscan's condensed_tree_.to_numpy() gives them.
_ROW = np.dtype(
    [("parent", np.intp), ("child", np.intp), ("lambda_val", np.float64), ("child_size", np.intp)]
)


# ============================================================================ graph and tree
def knn_graph(points, n_neighbors: int) -> list[np.ndarray]:
    """The symmetrised ``k``-nearest-neighbour graph of the rows of ``points [N, p]``
    (Euclidean; ``i ~ j`` if either is among the other's ``k`` nearest): one sorted array of
    neighbours per row."""
    points = _as_matrix(points, "points")
    n = points.shape[0]
    k = check_positive_int(n_neighbors, "n_neighbors")
    if k > n - 1:
        raise ValueError(f"n_neighbors must be at most N − 1 = {n - 1}, got {k}")
    _, index = NearestNeighbors(n_neighbors=k + 1).fit(points).kneighbors(points)
    sets = [set() for _ in range(n)]
    for i, row in enumerate(index):
        for j in row:
            if j != i:
                sets[i].add(int(j))
                sets[int(j)].add(i)
    return [np.array(sorted(s), dtype=np.intp) for s in sets]


def merge_tree(levels, graph, order=None) -> np.ndarray:
    """The merge tree of the vertex filtration ``{i : levels_i ≥ t}`` on ``graph`` (one array
    of neighbour indices per point, symmetric, no self-loops), in scipy's linkage layout: row
    ``r`` merges nodes ``left`` and ``right`` (points ``0..N−1``, row ``r`` creates node
    ``N + r``) at ``level``, into ``size`` points.  Rows come in decreasing level.  Points are
    added in decreasing level (ties in index order), or in ``order`` when given (the log-density
    ranks, which do not underflow).  The components a point has edges to merge at its level,
    and the point then joins them; components still apart at the end are joined at level 0."""
    levels = np.asarray(levels, dtype=np.float64)
    n = levels.shape[0]
    order = np.argsort(-levels, kind="stable") if order is None else np.asarray(order)
    parent = np.arange(2 * n)  # union-find over dendrogram node ids
    size = np.ones(2 * n, dtype=np.intp)
    active = np.zeros(n, dtype=bool)
    rows: list[tuple[int, int, float, int]] = []

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def join(a: int, b: int, level: float) -> int:
        node = n + len(rows)
        rows.append((a, b, level, int(size[a] + size[b])))
        parent[a] = parent[b] = node
        size[node] = size[a] + size[b]
        return node

    for i in order:
        active[i] = True
        roots = sorted({find(int(j)) for j in graph[i] if active[j]})
        if not roots:
            continue  # a new component: a local maximum
        # The components merge first and the point joins last, so that a point at a saddle
        # falls out of the merged cluster instead of joining one side of the split.
        current = roots[0]
        for root in roots[1:]:
            current = join(current, root, float(levels[i]))
        join(current, int(i), float(levels[i]))
    remaining = sorted({find(i) for i in range(n)})
    current = remaining[0]
    for root in remaining[1:]:
        current = join(current, root, 0.0)
    return np.array(rows, dtype=np.float64).reshape(-1, 4)


def condense_merge_tree(linkage, min_cluster_size: int) -> np.ndarray:
    """Condense a merge tree (:func:`merge_tree`'s layout, levels decreasing) the way HDBSCAN
    does (Campello, Moulavi and Sander 2013).  Walking down from the root, a merge with at
    least two sides of ``≥ m`` points is a split into that many new clusters.  The points of
    every smaller side fall out of the current cluster at that level, and with one large side
    the cluster goes on as it.  Merges at one level are one event (opened up into all their
    sides), so a point that joins three components makes three siblings, not a nested pair
    with a cluster that lives for no time; a node may therefore have more than two children.
    Returns rows ``(parent, child, lambda_val, child_size)`` as hdbscan's
    ``condensed_tree_.to_numpy()`` does: the root is cluster ``N``, new clusters ``N+1, …``,
    and a child below ``N`` is a point leaving ``parent`` at ``lambda_val``."""
    linkage = np.asarray(linkage, dtype=np.float64)
    m = check_int(min_cluster_size, "min_cluster_size", minimum=2)
    n = linkage.shape[0] + 1
    left, right = linkage[:, 0].astype(np.intp), linkage[:, 1].astype(np.intp)
    level, size = linkage[:, 2], linkage[:, 3].astype(np.intp)

    def count(node: int) -> int:
        return 1 if node < n else int(size[node - n])

    def points_under(node: int) -> list[int]:
        out, stack = [], [node]
        while stack:
            v = stack.pop()
            if v < n:
                out.append(v)
            else:
                stack.extend((int(right[v - n]), int(left[v - n])))
        return out

    def sides_at(node: int, lam: float) -> list[int]:
        """The parts a merge at ``lam`` joins: merges at the same level are one event (a point
        joining three components is two binary merges), so they are opened up."""
        out, stack = [], [node]
        while stack:
            v = stack.pop()
            if v >= n and level[v - n] == lam:
                stack.extend((int(right[v - n]), int(left[v - n])))
            else:
                out.append(v)
        return out

    rows: list[tuple[int, int, float, int]] = []
    next_label = n + 1
    stack = [(2 * n - 2, n)]  # (merge-tree node, cluster label)
    while stack:
        node, label = stack.pop()
        if node < n:  # a cluster run down to one point: it leaves at its own level
            continue
        lam = float(level[node - n])
        sides = sides_at(node, lam)
        big = [s for s in sides if count(s) >= m]
        for s in sides:
            if count(s) < m:
                rows.extend((label, p, lam, 1) for p in points_under(s))
        if len(big) >= 2:
            for s in big:
                rows.append((label, next_label, lam, count(s)))
                stack.append((s, next_label))
                next_label += 1
        elif big:
            stack.append((big[0], label))
    return np.array(rows, dtype=_ROW)


def _check_graph(graph, n: int) -> list[np.ndarray]:
    """``graph`` as symmetric neighbour arrays without self-loops, or a :class:`ValueError`
    naming a bad entry."""
    if len(graph) != n:
        raise ValueError(
            f"graph must list the neighbours of each of the {n} points, got {len(graph)}"
        )
    sets = [set() for _ in range(n)]
    for i, row in enumerate(graph):
        row = np.asarray(row)
        if row.size and (row.dtype.kind not in "iu" or row.min() < 0 or row.max() >= n):
            raise ValueError(
                f"graph[{i}] must hold point indices in 0..{n - 1}, got {row.tolist()}"
            )
        for j in row.tolist():
            if j != i:
                sets[i].add(j)
                sets[j].add(i)
    return [np.array(sorted(s), dtype=np.intp) for s in sets]


def density_level_set_tree(
    X,
    log_density,
    *,
    neighbours=None,
    graph=None,
    n_neighbors: int = 15,
    min_cluster_size: int = 10,
) -> LevelSetTree:
    """The level-set tree of a known density at the points ``X [N, d]`` (module docstring).

    Args:
        X: the points, for the nodes' centroids (their coordinates enter nothing else).
        log_density: ``log p(X_i)`` ``[N]``, known up to an additive constant.
        neighbours: rows ``[N, p]`` whose Euclidean ``n_neighbors``-nearest-neighbour graph
            (:func:`knn_graph`) connects the points; ``None``: ``X`` itself, which depends on
            the coordinates.
        graph: the graph itself instead, one array of neighbour indices per point (made
            symmetric, self-loops dropped).
        n_neighbors: ``k`` of the kNN graph.
        min_cluster_size: ``m ≥ 2``, the fewest points a node may hold.
    """
    m = check_int(min_cluster_size, "min_cluster_size", minimum=2)
    X = _check_cloud(X, "X", m)
    n = X.shape[0]
    logp = np.asarray(
        log_density.detach().cpu().numpy()
        if isinstance(log_density, torch.Tensor)
        else log_density,
        dtype=np.float64,
    )
    if logp.shape != (n,):
        raise ValueError(f"log_density must hold one value per point ({n}), got shape {logp.shape}")
    if not np.isfinite(logp).all():
        raise ValueError(
            f"log_density has {int((~np.isfinite(logp)).sum())} NaN or infinite value(s): the "
            "density must be known and positive at every point"
        )
    if graph is not None and neighbours is not None:
        raise ValueError("give neighbours or graph, not both")
    if graph is None:
        neighbours = X if neighbours is None else _as_matrix(neighbours, "neighbours")
        if neighbours.shape[0] != n:
            raise ValueError(
                f"neighbours must have one row per point ({n}), got {neighbours.shape[0]}"
            )
        graph = knn_graph(neighbours, n_neighbors)
    else:
        graph = _check_graph(graph, n)
    levels = np.maximum(np.exp(logp - logp.max()), _TINY_LEVEL)
    order = np.argsort(-logp, kind="stable")
    rows = condense_merge_tree(merge_tree(levels, graph, order), m)
    if not len(rows):
        raise ValueError(f"min_cluster_size={m} leaves no cluster of {n} points")
    lam = np.asarray(rows["lambda_val"], dtype=np.float64)
    return _build_tree(X, rows, lam, m, int(n_neighbors), 1.0)


# ================================================================================ the model
def aggregate_posterior_log_density(
    model, x: torch.Tensor, z, batch_size: int = 256
) -> torch.Tensor:
    r"""``log q(z_m)``, ``q(z) = (1/N) Σ_n q(z | x_n)``, for codes ``z [M, D]``: the model's
    aggregate posterior over observations ``x [N, *obs]`` (its own ``log_posterior`` when it has
    one, so that a re-parametrised model's is the exact push-forward).  Evaluating at the codes
    of the same ``x`` puts each code's own, usually narrow, posterior in the sum: give the codes
    of *other* observations."""
    check_latent_model(model)
    z = torch.as_tensor(z)
    if z.ndim != 2 or z.shape[1] != model.latent_dim:
        raise ValueError(f"z must be [M, {model.latent_dim}], got {tuple(z.shape)}")
    if x.shape[0] < 1:
        raise ValueError("the aggregate posterior needs at least one observation")
    batch_size = check_positive_int(batch_size, "batch_size")
    own = callable(getattr(model, "log_posterior", None))
    if not own:  # the diagonal Gaussians, encoded once in batches, scored block by block
        loc, scale = encode_in_batches(model, x)
        scale = require_posterior(scale, type(model).__name__, purpose="an aggregate posterior")
    out = []
    with torch.no_grad():
        for start in range(0, z.shape[0], batch_size):
            rows = z[start : start + batch_size]
            block = log_posterior(model, x, rows) if own else diagonal_log_density(loc, scale, rows)
            out.append(torch.logsumexp(block.double().cpu(), dim=1) - np.log(x.shape[0]))
    return torch.cat(out) if out else torch.empty(0, dtype=torch.float64)


def model_density_tree(
    model,
    x: torch.Tensor,
    *,
    density: str = "prior",
    reference: torch.Tensor | None = None,
    n_neighbors: int = 15,
    min_cluster_size: int = 10,
) -> LevelSetTree:
    """The level-set tree of ``model``'s own latent density at the codes of ``x``.

    The points are the encoder means ``z_i`` of ``x [N, *obs]``, connected by the kNN graph of
    their decoded images (module docstring), and the density is ``density``:
    ``"prior"`` (``log_prior``, the model's or ``N(0, I)``), or ``"aggregate-posterior"``, the
    aggregate posterior over the observations ``reference`` (required, and best disjoint from
    ``x``: see :func:`aggregate_posterior_log_density`).
    """
    check_latent_model(model)
    if density not in DENSITIES:
        raise ValueError(f"density must be one of {DENSITIES}, got {density!r}")
    if density == "aggregate-posterior" and reference is None:
        raise ValueError("the aggregate posterior needs reference observations (reference=...)")
    z = encode_in_batches(model, x)[0]
    images = decode_in_batches(model, z).reshape(z.shape[0], -1).double().numpy()
    with torch.no_grad():
        if density == "prior":
            logp = log_prior(model, z).double()
        else:
            logp = aggregate_posterior_log_density(model, reference, z)
    return density_level_set_tree(
        z.double().numpy(),
        logp,
        neighbours=images,
        n_neighbors=n_neighbors,
        min_cluster_size=min_cluster_size,
    )
