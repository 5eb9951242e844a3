r"""Level-set trees of a latent point cloud, and two clouds matched through their trees.

A density's superlevel sets ``{x : f(x) ≥ t}`` split into more and more components as ``t``
rises; their nesting is a tree, and that tree does not depend on the basis the points are
written in.  Two encoders of the same data should therefore grow trees of the same shape, and
a pairing of their nodes is a pairing of regions of the two latent spaces found "without using
any privileged basis".

**The tree.**  HDBSCAN (Campello, Moulavi and Sander 2013; McInnes, Healy and Astels 2017)
estimates it from ``X [N, d]``.  With ``core(x)`` the distance from ``x`` to its
``min_samples``-th nearest neighbour, the mutual-reachability distance is

.. math::

    d_{mr}(a, b) = \max\{\operatorname{core}(a), \operatorname{core}(b), \|a - b\|\},

and the components of the graph of pairs with ``d_mr ≤ ε`` are the clusters at level
``λ = 1/ε`` (high ``λ``: dense).  Raising ``λ`` removes points and splits clusters; in the
*condensed* tree a side of a split with fewer than ``m = min_cluster_size`` points does not
become a cluster but "falls out" of its parent as single points, so every cluster has either
no children or two, each of at least ``m`` points.  The nodes of :class:`LevelSetTree` are
these clusters, the root (the whole cloud) included.  For a node ``C``:

* ``birth`` ``λ_b(C)``: the level at which ``C`` splits off its parent (0 for the root);
* ``death`` ``λ_d(C)``: the highest level at which a point or child cluster leaves ``C`` (its
  split into two children, or for a leaf the level at which its last point falls out);
* ``members`` ``M(C)``: the points of ``C`` at its birth, i.e. those leaving ``C`` or any
  descendant, and ``size = |M(C)|``; ``centroid``: the mean of ``X[M(C)]``;
* ``persistence = λ_d(C) − λ_b(C)``: the lifetime of the node in ``λ``, chosen over HDBSCAN's
  stability because it does not grow with the number of points, so that clouds of different
  ``N`` give comparable values;
* ``stability = Σ_{p ∈ M(C)} (min(λ_p, λ_d(C)) − λ_b(C))``, with ``λ_p`` the level at which
  ``p`` leaves ``C`` (HDBSCAN's "excess of mass"), kept for reference.

Duplicate points have core distance 0, hence ``λ = ∞``; such levels are replaced by the
largest finite level of the tree, ``λ_max``.

**Invariance.**  A similarity ``x ↦ s x Q + t`` (``Q`` orthogonal, ``s > 0``) multiplies every
distance by ``s``, so it leaves the tree, the sizes and the member sets unchanged and divides
every ``λ`` by ``s``.  Levels are therefore only compared after dividing by the tree's own
``λ_max``; sizes after dividing by the root's size.  A general (anisotropic) affine map changes
distances unevenly and may change the tree, so the matching is exact for similarities and
approximate otherwise.  ``λ_max`` is set by the densest pocket of the cloud, an extreme and
noisy statistic, which is why the structural descriptors carry as much weight as the levels.

**Matching.**  :func:`match_trees` uses only these coordinate-free descriptors of a node ``v``,
each in ``[0, 1]``:

.. math::

    φ(v) = \Bigl(\tfrac{|v|}{|root|},\ \tfrac{|v|}{|parent(v)|},\ \tfrac{λ_b(v)}{λ_{max}},\
        \tfrac{λ_d(v) - λ_b(v)}{λ_{max}},\ \tfrac{\#subtree(v)}{\#nodes},\
        \tfrac{height(v)}{\max(1, height(root))}\Bigr),

and the cost of pairing ``v`` with ``w`` is the weighted mean ``Σ_k w_k |φ_k(v) − φ_k(w)| /
Σ_k w_k`` (in ``[0, 1]``).  The roots are paired; at each paired ``(v, w)`` the children of
``v`` are paired with those of ``w`` by the Hungarian algorithm
(:func:`scipy.optimize.linear_sum_assignment`) on that cost, and the search recurses into the
new pairs.  Neither coordinates nor labels are used.  Top-down matching cannot recover from a
split that the two trees make differently (``{a, bc}`` in one tree, ``{ab, c}`` in the other):
the pairs below such a split are then wrong or missing, and ``max_cost`` stops the descent at
pairs that fit badly.

**Translation.**  The centroids of paired nodes are paired points of the two spaces, so any
paired-data translator can be fitted on them, from two *unpaired* clouds: that is
:class:`~pyro_latent.translate.level_set_trees.LevelSetTreeTranslator`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import hdbscan
import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from pyro_latent.analysis.similarity import _as_matrix
from pyro_latent.core.checks import check_int, check_positive_int, check_probability

__all__ = [
    "TooFewAnchorsError",
    "DESCRIPTORS",
    "LevelSetNode",
    "LevelSetTree",
    "NodeMatch",
    "class_composition",
    "level_set_tree",
    "match_trees",
    "matched_anchors",
    "matched_class_agreement",
    "moved_points",
    "node_descriptors",
    "purity_by_depth",
]

# The coordinate-free descriptors of a node, in the order of :func:`node_descriptors`' columns.
DESCRIPTORS = ("root_share", "parent_share", "birth", "persistence", "subtree_nodes", "height")


# ================================================================================== the tree
class TooFewAnchorsError(ValueError):
    """The matched trees give fewer affinely independent anchors than the translator needs: a
    result about the clouds (their trees are too shallow), not a bad argument."""


@dataclass(frozen=True, eq=False)
class LevelSetNode:
    """One cluster of the condensed tree (see the module docstring for each quantity)."""

    id: int
    parent: int | None  # None for the root
    children: tuple[int, ...]
    depth: int
    birth: float
    death: float
    size: int
    members: np.ndarray = field(repr=False)  # sorted row indices of X
    persistence: float
    stability: float
    centroid: np.ndarray = field(repr=False)


@dataclass(frozen=True, eq=False)
class LevelSetTree:
    """The clusters of a cloud's condensed HDBSCAN tree, numbered ``0..K−1`` top-down.

    ``nodes[i].id == i``; the root is node 0, parents come before their children and the
    larger child first.  ``point_lambda [N]`` is the level at which each point leaves the tree,
    ``point_node [N]`` the node it leaves from (the deepest node holding it), and ``lambda_max``
    the largest finite level.
    """

    nodes: tuple[LevelSetNode, ...]
    n_points: int
    min_cluster_size: int
    min_samples: int
    lambda_max: float
    point_lambda: np.ndarray = field(repr=False)
    point_node: np.ndarray = field(repr=False)

    @property
    def root(self) -> LevelSetNode:
        return self.nodes[0]

    @property
    def leaves(self) -> tuple[int, ...]:
        return tuple(node.id for node in self.nodes if not node.children)

    @property
    def max_depth(self) -> int:
        return max(node.depth for node in self.nodes)

    def subtree(self, node: int) -> list[int]:
        """``node`` and all its descendants, top-down."""
        out, stack = [], [node]
        while stack:
            current = stack.pop()
            out.append(current)
            stack.extend(reversed(self.nodes[current].children))
        return out

    def height(self, node: int) -> int:
        """Edges on the longest path from ``node`` down to a leaf (0 for a leaf)."""
        depth = self.nodes[node].depth
        return max(self.nodes[v].depth for v in self.subtree(node)) - depth


def _check_cloud(X, name: str, min_cluster_size: int) -> np.ndarray:
    """A finite ``[N, d]`` float64 cloud with room for two clusters and some spread."""
    X = _as_matrix(X, name)
    n = X.shape[0]
    if n < 2 * min_cluster_size:
        raise ValueError(
            f"{name} has {n} points, too few for a level-set tree with "
            f"min_cluster_size={min_cluster_size}: a split needs two clusters of at least "
            f"min_cluster_size points, so at least {2 * min_cluster_size} points"
        )
    if not np.ptp(X, axis=0).any():
        raise ValueError(f"{name} has no spread: all {n} points are identical")
    return X


def _condensed_tree(X: np.ndarray, min_cluster_size: int, min_samples: int) -> np.ndarray:
    """HDBSCAN's condensed tree as a structured array (parent, child, lambda_val,
    child_size)."""
    # The exact minimum spanning tree: the approximate one depends on the order of the rows, so
    # a permuted copy of the cloud could grow a tree with different levels.

    clusterer = hdbscan.HDBSCAN(
        min_cluster_size=min_cluster_size,
        min_samples=min_samples,
        approx_min_span_tree=False,
        core_dist_n_jobs=1,
    ).fit(X)
    return clusterer.condensed_tree_.to_numpy()


def level_set_tree(X, min_cluster_size: int = 10, min_samples: int | None = None) -> LevelSetTree:
    """The level-set tree of the cloud ``X [N, d]`` (see the module docstring).

    Args:
        X: the points (array, tensor or nested list), finite, not all identical, with
            ``N ≥ 2 · min_cluster_size``.
        min_cluster_size: ``m ≥ 2``, the fewest points a node may hold.
        min_samples: the neighbour defining the core distance (``None``: ``min_cluster_size``,
            HDBSCAN's default); at most ``N − 1``.
    """
    m = check_int(min_cluster_size, "min_cluster_size", minimum=2)
    X = _check_cloud(X, "X", m)
    n = X.shape[0]
    k = m if min_samples is None else check_positive_int(min_samples, "min_samples")
    if k > n - 1:
        raise ValueError(f"min_samples must be at most N − 1 = {n - 1}, got {k}")
    rows = _condensed_tree(X, m, k)
    lam = np.asarray(rows["lambda_val"], dtype=np.float64)
    finite = lam[np.isfinite(lam)]
    if finite.size == 0 or finite.max() <= 0.0:
        raise ValueError(
            "X has no finite density scale: its points coincide in groups of at least "
            f"min_samples={k}; add noise or lower min_samples"
        )
    lambda_max = float(finite.max())
    lam = np.where(np.isfinite(lam), lam, lambda_max)
    return _build_tree(X, rows, lam, m, k, lambda_max)


def _build_tree(X, rows, lam, m: int, k: int, lambda_max: float) -> LevelSetTree:
    n = X.shape[0]
    parent, child, child_size = (np.asarray(rows[f]) for f in ("parent", "child", "child_size"))
    is_cluster = child >= n
    # hdbscan's cluster ids (root n, then n+1, ...) and the rows that create each cluster.
    birth_row = {int(c): i for i, c in enumerate(child) if c >= n}
    kids: dict[int, list[int]] = {}
    for i in np.flatnonzero(is_cluster):
        kids.setdefault(int(parent[i]), []).append(int(child[i]))
    order, queue = [], [n]
    while queue:  # breadth first, larger child first: ids top-down
        current = queue.pop(0)
        order.append(current)
        queue.extend(sorted(kids.get(current, []), key=lambda c: (-child_size[birth_row[c]], c)))
    new_id = {old: i for i, old in enumerate(order)}

    points = ~is_cluster
    point_lambda = np.empty(n)
    point_lambda[child[points]] = lam[points]
    point_node = np.empty(n, dtype=np.int64)
    point_node[child[points]] = [new_id[int(p)] for p in parent[points]]

    members: dict[int, np.ndarray] = {}
    for old in reversed(order):  # children before parents
        own = np.flatnonzero(point_node == new_id[old])
        parts = [own] + [members[c] for c in kids.get(old, [])]
        members[old] = np.sort(np.concatenate(parts))

    nodes, depth = [], {n: 0}
    for old in order:
        leaving = parent == old
        birth = 0.0 if old == n else float(lam[birth_row[old]])
        death = float(lam[leaving].max())
        stability = float(np.sum((lam[leaving] - birth) * child_size[leaving]))
        for c in kids.get(old, []):
            depth[c] = depth[old] + 1
        up = None if old == n else new_id[int(parent[birth_row[old]])]
        nodes.append(
            LevelSetNode(
                id=new_id[old],
                parent=up,
                children=tuple(new_id[c] for c in sorted(kids.get(old, []), key=new_id.get)),
                depth=depth[old],
                birth=birth,
                death=death,
                size=len(members[old]),
                members=members[old],
                persistence=death - birth,
                stability=stability,
                centroid=X[members[old]].mean(axis=0),
            )
        )
    return LevelSetTree(tuple(nodes), n, m, k, lambda_max, point_lambda, point_node)


def moved_points(tree: LevelSetTree, reference: LevelSetTree) -> int:
    """How many points sit in another node of ``tree`` than of ``reference`` (two trees of the
    same points, nodes numbered top-down as :class:`LevelSetTree` does): every point when the
    trees differ in node count, since their numberings then mean different nodes."""
    tree, reference = _check_tree(tree, "tree"), _check_tree(reference, "reference")
    if tree.n_points != reference.n_points:
        raise ValueError(
            f"the trees hold {tree.n_points} and {reference.n_points} points: not the same points"
        )
    if len(tree.nodes) != len(reference.nodes):
        return tree.n_points
    return int((tree.point_node != reference.point_node).sum())


def _check_tree(tree, name: str) -> LevelSetTree:
    if not isinstance(tree, LevelSetTree):
        raise ValueError(f"{name} must be a LevelSetTree, got {type(tree).__name__}")
    return tree


# ============================================================================= class labels
def _check_labels(labels, tree: LevelSetTree, name: str) -> np.ndarray:
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    labels = np.asarray(labels)
    if labels.shape != (tree.n_points,):
        raise ValueError(
            f"{name} must hold one label per point of the tree ({tree.n_points}), got shape "
            f"{labels.shape}"
        )
    return labels


def class_composition(tree: LevelSetTree, labels) -> dict[int, np.ndarray]:
    """Per node, how many of its members carry each class.

    ``counts[node][j]`` counts the members labelled ``np.unique(labels)[j]``, so every array
    has one entry per class present in ``labels`` and sums to the node's size.
    """
    tree = _check_tree(tree, "tree")
    labels = _check_labels(labels, tree, "labels")
    classes, codes = np.unique(labels, return_inverse=True)
    return {
        node.id: np.bincount(codes[node.members], minlength=len(classes)) for node in tree.nodes
    }


def purity_by_depth(tree: LevelSetTree, labels, groups: Mapping | None = None) -> list[dict]:
    """How pure the nodes at each depth are: per depth, the size-weighted mean of each node's
    majority fraction ``max_j counts_j / size``.

    With ``groups`` (a mapping class → group, e.g. sandal → footwear) the labels are first
    replaced by their groups, which measures the purity of the coarse grouping.  Returns one
    dict per depth ``0..max_depth`` with keys ``depth``, ``n_nodes``, ``n_points`` (the
    nodes' total size) and ``purity``.
    """
    tree = _check_tree(tree, "tree")
    labels = _check_labels(labels, tree, "labels")
    if groups is not None:
        missing = sorted({str(c) for c in np.unique(labels) if c not in groups})
        if missing:
            raise ValueError(f"groups has no group for the classes {', '.join(missing)}")
        labels = np.asarray([groups[c] for c in labels.tolist()])
    counts = class_composition(tree, labels)
    out = []
    for depth in range(tree.max_depth + 1):
        level = [node for node in tree.nodes if node.depth == depth]
        total = sum(node.size for node in level)
        majority = sum(int(counts[node.id].max()) for node in level)
        out.append(
            {"depth": depth, "n_nodes": len(level), "n_points": total, "purity": majority / total}
        )
    return out


# ================================================================================== matching
class NodeMatch(NamedTuple):
    """Node ``a`` of the first tree paired with node ``b`` of the second, at ``cost``."""

    a: int
    b: int
    cost: float


def node_descriptors(tree: LevelSetTree) -> np.ndarray:
    """The coordinate-free descriptors ``φ [K, 6]`` of every node (columns :data:`DESCRIPTORS`,
    each in ``[0, 1]``; see the module docstring)."""
    tree = _check_tree(tree, "tree")
    n_nodes, top = len(tree.nodes), max(1, tree.height(0))
    out = np.empty((n_nodes, len(DESCRIPTORS)))
    for node in tree.nodes:
        parent_size = tree.nodes[node.parent].size if node.parent is not None else node.size
        out[node.id] = (
            node.size / tree.n_points,
            node.size / parent_size,
            node.birth / tree.lambda_max,
            node.persistence / tree.lambda_max,
            len(tree.subtree(node.id)) / n_nodes,
            tree.height(node.id) / top,
        )
    return out


def _check_weights(weights) -> np.ndarray:
    if weights is None:
        return np.ones(len(DESCRIPTORS))
    if not isinstance(weights, Mapping):
        raise ValueError(f"weights must be a mapping descriptor → weight, got {weights!r}")
    unknown = sorted(set(weights) - set(DESCRIPTORS))
    if unknown:
        raise ValueError(f"unknown descriptors {unknown}; known: {', '.join(DESCRIPTORS)}")
    out = np.array(
        [
            check_probability(
                weights.get(key, 1.0), f"weights[{key!r}]", high=math.inf, include_high=False
            )
            for key in DESCRIPTORS
        ]
    )
    if out.sum() == 0.0:
        raise ValueError("weights must not all be zero")
    return out


def match_trees(
    tree_a: LevelSetTree,
    tree_b: LevelSetTree,
    *,
    weights: Mapping[str, float] | None = None,
    max_cost: float | None = None,
) -> list[NodeMatch]:
    """Pair the nodes of two level-set trees from their shapes alone (no coordinates, no
    labels): roots first, then the children of each pair by the Hungarian algorithm on the
    descriptor cost (module docstring).

    Args:
        tree_a, tree_b: the trees; their clouds may differ in size and dimension.
        weights: descriptor → weight ``≥ 0`` (default 1 each; keys from :data:`DESCRIPTORS`).
        max_cost: a child pair costing more than this (in ``[0, 1]``) is dropped, and nothing
            below it is matched (``None``: keep every assigned pair).

    Returns:
        :class:`NodeMatch` ``(a, b, cost)`` tuples, parents before children; each node appears
        at most once.
    """
    tree_a, tree_b = _check_tree(tree_a, "tree_a"), _check_tree(tree_b, "tree_b")
    w = _check_weights(weights)
    limit = math.inf if max_cost is None else check_probability(max_cost, "max_cost")
    phi_a, phi_b = node_descriptors(tree_a), node_descriptors(tree_b)

    def cost(a, b):
        # Pairwise weighted mean absolute difference, [len(a), len(b)].
        diff = np.abs(phi_a[list(a)][:, None, :] - phi_b[list(b)][None, :, :])
        return diff @ w / w.sum()

    matches = [NodeMatch(0, 0, float(cost([0], [0])[0, 0]))]
    queue = [(0, 0)]
    while queue:
        va, vb = queue.pop(0)
        kids_a, kids_b = tree_a.nodes[va].children, tree_b.nodes[vb].children
        if not kids_a or not kids_b:
            continue
        table = cost(kids_a, kids_b)
        for i, j in zip(*linear_sum_assignment(table), strict=True):
            if table[i, j] <= limit:
                matches.append(NodeMatch(kids_a[i], kids_b[j], float(table[i, j])))
                queue.append((kids_a[i], kids_b[j]))
    return matches


def _pairs(matches, tree_a: LevelSetTree, tree_b: LevelSetTree) -> list[tuple[int, int]]:
    """``(a, b)`` node ids from :class:`NodeMatch` or plain 2-tuples, checked against the
    trees."""
    if isinstance(matches, str | bytes) or not isinstance(matches, Iterable):
        raise ValueError(f"matches must be a list of (a, b) node pairs, got {matches!r}")
    out = []
    for match in matches:
        a, b = (
            check_int(match[0], "a matched node of tree_a", minimum=0),
            check_int(match[1], "a matched node of tree_b", minimum=0),
        )
        if a >= len(tree_a.nodes) or b >= len(tree_b.nodes):
            raise ValueError(
                f"matched pair ({a}, {b}) names a node outside the trees, which have "
                f"{len(tree_a.nodes)} and {len(tree_b.nodes)} nodes"
            )
        out.append((a, b))
    return out


def matched_class_agreement(
    tree_a: LevelSetTree,
    tree_b: LevelSetTree,
    matches,
    labels_a,
    labels_b,
    *,
    include_root: bool = False,
) -> float:
    """The fraction of matched pairs whose nodes have the same majority class.

    The two label arrays must use the same class names.  A tie goes to the class that sorts
    first.  The root pair is left out by default: the whole cloud's majority class says
    little about the matching (NaN when no other pair is left).
    """
    tree_a, tree_b = _check_tree(tree_a, "tree_a"), _check_tree(tree_b, "tree_b")
    pairs = [p for p in _pairs(matches, tree_a, tree_b) if include_root or p != (0, 0)]
    if not pairs:
        return math.nan
    labels_a = _check_labels(labels_a, tree_a, "labels_a")
    labels_b = _check_labels(labels_b, tree_b, "labels_b")
    classes_a, classes_b = np.unique(labels_a), np.unique(labels_b)
    counts_a, counts_b = class_composition(tree_a, labels_a), class_composition(tree_b, labels_b)
    agree = [classes_a[counts_a[a].argmax()] == classes_b[counts_b[b].argmax()] for a, b in pairs]
    return float(np.mean(agree))


def matched_anchors(
    X_a, X_b, tree_a: LevelSetTree, tree_b: LevelSetTree, matches, *, include_root: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """The centroids of matched nodes as paired points, ``A [M, d_a]`` and ``B [M, d_b]``.

    Row ``i`` of each is the mean of the rows of ``X_a`` (``X_b``) that are members of the
    ``i``-th matched node, so ``X_a`` and ``X_b`` may be any representation of the trees'
    points (one row per point, in the trees' order).  The root pair (both clouds' means) is
    kept by default: an affine map sends the mean to the mean, so it is a sound anchor when
    both clouds sample the same distribution.
    """
    tree_a, tree_b = _check_tree(tree_a, "tree_a"), _check_tree(tree_b, "tree_b")
    X_a, X_b = _as_matrix(X_a, "X_a"), _as_matrix(X_b, "X_b")
    for name, X, tree in (("X_a", X_a, tree_a), ("X_b", X_b, tree_b)):
        if X.shape[0] != tree.n_points:
            raise ValueError(
                f"{name} must hold the {tree.n_points} points of its tree, got {X.shape[0]} rows"
            )
    pairs = [p for p in _pairs(matches, tree_a, tree_b) if include_root or p != (0, 0)]
    A = np.array([X_a[tree_a.nodes[a].members].mean(axis=0) for a, _ in pairs])
    B = np.array([X_b[tree_b.nodes[b].members].mean(axis=0) for _, b in pairs])
    return A.reshape(len(pairs), X_a.shape[1]), B.reshape(len(pairs), X_b.shape[1])


def _independent_anchors(A: np.ndarray) -> int:
    """The number of affinely independent rows of ``A`` (the rank of the centred rows + 1)."""
    if A.shape[0] == 0:
        return 0
    return int(np.linalg.matrix_rank(A - A.mean(axis=0))) + 1
