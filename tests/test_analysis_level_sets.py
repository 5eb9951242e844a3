"""Level-set trees (:mod:`pyro_latent.analysis.level_sets`): the tree of a cloud with a known
two-level hierarchy, its invariance to similarities, the structure-only matching checked
through a known permutation, the anchor translator on unpaired clouds, and the refusals."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import ortho_group
from sklearn.base import clone

pytest.importorskip("hdbscan")

from pyro_latent.analysis.level_sets import (  # noqa: E402
    DESCRIPTORS,
    LevelSetTree,
    class_composition,
    level_set_tree,
    match_trees,
    matched_anchors,
    matched_class_agreement,
    node_descriptors,
    purity_by_depth,
)
from pyro_latent.translate.level_set_trees import LevelSetTreeTranslator  # noqa: E402
from pyro_latent.translate.translators import AffineTranslator  # noqa: E402

# Two super-clusters, {0, 1, 2} and {3, 4}; within the first, 0 and 1 are closer to each other
# than to 2, so the hierarchy is unambiguous: {{{0, 1}, 2}, {3, 4}}.
CENTRES = [(-3.0, 0.0), (3.0, 0.0), (0.0, 9.0), (22.0, 0.0), (28.0, 0.0)]
SIZES = [120, 80, 60, 100, 50]
SUPER = {0: "left", 1: "left", 2: "left", 3: "right", 4: "right"}
M = 20  # min_cluster_size


def cloud(seed: int, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """``scale × SIZES`` Gaussian points around each centre, and their sub-cluster labels."""
    rng = np.random.default_rng(seed)
    counts = [int(n * scale) for n in SIZES]
    X = np.vstack([rng.normal(c, 0.6, (n, 2)) for c, n in zip(CENTRES, counts, strict=True)])
    return X, np.repeat(np.arange(len(SIZES)), counts)


@pytest.fixture(scope="module")
def data():
    X, y = cloud(0)
    Q = ortho_group.rvs(2, random_state=1)
    perm = np.random.default_rng(5).permutation(len(X))
    Y = (2.5 * X @ Q + np.array([3.0, -7.0]))[perm]  # row j of Y is point perm[j] of X
    return X, y, Y, y[perm], perm


@pytest.fixture(scope="module")
def trees(data):
    X, _, Y, _, _ = data
    return level_set_tree(X, M), level_set_tree(Y, M)


def jaccard(a, b) -> float:
    a, b = set(a.tolist()), set(b.tolist())
    return len(a & b) / len(a | b)


# ------------------------------------------------------------------------------------- tree
def test_the_tree_is_the_known_hierarchy(data, trees):
    X, y, *_ = data
    tree = trees[0]
    assert isinstance(tree, LevelSetTree)
    assert tree.n_points == len(X) and len(tree.nodes) == 9
    assert tree.root.size == len(X) and tree.root.parent is None and tree.root.birth == 0.0
    assert sorted(tree.root.members.tolist()) == list(range(len(X)))
    leaf_sets = sorted(sorted(set(y[tree.nodes[v].members].tolist())) for v in tree.leaves)
    assert leaf_sets == [[0], [1], [2], [3], [4]]
    assert tree.max_depth == 3 and tree.height(0) == 3


def test_node_quantities_are_consistent(data, trees):
    X = data[0]
    tree = trees[0]
    for node in tree.nodes:
        assert tree.nodes[node.id] is node
        assert node.size == len(node.members) == len(set(node.members.tolist()))
        assert node.birth <= node.death and node.persistence == node.death - node.birth
        assert node.stability >= 0.0
        np.testing.assert_allclose(node.centroid, X[node.members].mean(axis=0))
        assert len(node.children) in (0, 2)  # condensed trees split in two
        for child in node.children:
            kid = tree.nodes[child]
            assert kid.parent == node.id and kid.depth == node.depth + 1 and kid.id > node.id
            assert kid.birth == pytest.approx(node.death)  # born where the parent splits
            assert set(kid.members.tolist()) <= set(node.members.tolist())
    # Every point leaves from exactly one node, the deepest that holds it.
    for i in range(tree.n_points):
        holders = [v.id for v in tree.nodes if i in set(v.members.tolist())]
        assert tree.point_node[i] == max(holders, key=lambda v: tree.nodes[v].depth)
    assert np.isfinite(tree.point_lambda).all()


def test_a_similarity_only_rescales_the_levels(trees):
    a, b = trees
    assert [n.size for n in a.nodes] == [n.size for n in b.nodes]
    assert b.lambda_max == pytest.approx(a.lambda_max / 2.5)
    np.testing.assert_allclose(node_descriptors(a), node_descriptors(b), atol=1e-9)
    phi = node_descriptors(a)
    assert phi.shape == (9, len(DESCRIPTORS)) and phi.min() >= 0.0 and phi.max() <= 1.0


def test_duplicate_points_get_a_finite_level():
    X, _ = cloud(0)
    tree = level_set_tree(np.vstack([X, X[:30]]), M)
    assert math.isfinite(tree.lambda_max) and np.isfinite(tree.point_lambda).all()
    assert all(math.isfinite(n.persistence) for n in tree.nodes)


# ----------------------------------------------------------------------------------- labels
def test_class_composition_counts_the_members(data, trees):
    y, tree = data[1], trees[0]
    counts = class_composition(tree, y)
    assert set(counts) == set(range(len(tree.nodes)))
    for node in tree.nodes:
        assert counts[node.id].shape == (5,) and counts[node.id].sum() == node.size
    np.testing.assert_array_equal(counts[0], SIZES)


def test_purity_rises_with_depth_and_the_leaves_are_pure(data, trees):
    y, tree = data[1], trees[0]
    rows = purity_by_depth(tree, y)
    assert [r["depth"] for r in rows] == [0, 1, 2, 3]
    assert rows[0]["purity"] == pytest.approx(120 / 410) and rows[0]["n_points"] == 410
    assert rows[-1]["purity"] == 1.0 and rows[-1]["n_nodes"] == 2
    purities = [r["purity"] for r in rows]
    assert purities == sorted(purities)
    counts = class_composition(tree, y)
    assert all(np.count_nonzero(counts[v]) == 1 for v in tree.leaves)
    coarse = purity_by_depth(tree, y, groups=SUPER)
    assert coarse[1]["purity"] == 1.0 and coarse[0]["purity"] == pytest.approx(260 / 410)


# --------------------------------------------------------------------------------- matching
def test_matching_pairs_corresponding_member_sets(data, trees):
    _, y, _, y_b, perm = data
    a, b = trees
    matches = match_trees(a, b)
    assert len(matches) == 9 and matches[0][:2] == (0, 0)
    assert len({m.a for m in matches}) == len({m.b for m in matches}) == 9
    for m in matches:
        assert jaccard(a.nodes[m.a].members, perm[b.nodes[m.b].members]) > 0.95
        assert 0.0 <= m.cost < 1e-6
    assert matched_class_agreement(a, b, matches, y, y_b) == 1.0
    assert math.isnan(matched_class_agreement(a, b, [(0, 0)], y, y_b))  # only the root
    assert matched_class_agreement(a, b, [(0, 0)], y, y_b, include_root=True) == 1.0


def test_matching_ignores_coordinates_and_survives_resampling():
    X, y = cloud(0)
    Z, z = cloud(1, scale=1.3)
    Z = Z @ np.array([[0.0, -1.0], [1.0, 0.0]]) * 0.1  # a new sample, rotated and shrunk
    matches = match_trees(level_set_tree(X, M), level_set_tree(Z, M))
    assert len(matches) == 9
    assert matched_class_agreement(level_set_tree(X, M), level_set_tree(Z, M), matches, y, z) == 1


def test_max_cost_stops_the_descent(trees):
    a, b = trees
    assert match_trees(a, b, max_cost=1e-9) == match_trees(a, b)  # copies cost ~0
    X, _ = cloud(0)
    c = level_set_tree(X[:260], M)  # the left super-cluster alone: a different shape
    full = match_trees(a, c)
    assert len(match_trees(a, c, max_cost=0.01)) < len(full)
    heavy = match_trees(a, c, weights={"root_share": 5.0, "height": 0.0})
    assert heavy[0][:2] == (0, 0)


def test_matched_anchors_are_paired_centroids(data, trees):
    X, _, Y, _, _ = data
    a, b = trees
    matches = match_trees(a, b)
    A, B = matched_anchors(X, Y, a, b, matches)
    assert A.shape == (9, 2) and B.shape == (9, 2)
    Q = ortho_group.rvs(2, random_state=1)
    np.testing.assert_allclose(2.5 * A @ Q + np.array([3.0, -7.0]), B, atol=1e-9)
    A0, _ = matched_anchors(X, Y, a, b, [(m.a, m.b) for m in matches], include_root=False)
    np.testing.assert_allclose(A0, A[1:])


# ------------------------------------------------------------------------------- translator
def test_translator_recovers_an_affine_map_from_unpaired_clouds():
    W, shift = np.array([[1.5, 0.4], [-0.3, 1.1]]), np.array([2.0, -1.0])
    X, _ = cloud(0)
    Y = cloud(1, scale=1.3)[0] @ W + shift  # a different sample, of a different size
    translator = LevelSetTreeTranslator(min_cluster_size=M).fit(X, Y)
    assert translator.kind_ == "affine" and not translator.fell_back_
    assert translator.n_anchors_ == 9 and len(translator.matches_) == 9
    assert translator.tree_a_.n_points == len(X) and translator.tree_b_.n_points == len(Y)
    held_out = cloud(2)[0]
    assert translator.score(held_out, held_out @ W + shift) > 0.9
    assert translator.transform(held_out).shape == (len(held_out), 2)

    def plain(t):  # the nested parameters, without the estimator objects themselves
        return {k: v for k, v in t.get_params(deep=True).items() if not hasattr(v, "fit")}

    assert plain(clone(translator)) == plain(translator)
    ridge = LevelSetTreeTranslator(min_cluster_size=M, estimator=AffineTranslator(alpha=0.1))
    assert ridge.get_params()["estimator__alpha"] == 0.1 and "fallback__n_pairs" in plain(ridge)
    assert ridge.fit(X, Y).translator_.alpha == 0.1 and ridge.estimator.__dict__.keys() == {
        "alpha",
        "n_pairs",
        "seed",
    }  # a clone was fitted, not the estimator passed in


def test_translator_falls_back_when_the_anchors_span_too_little():
    X, _ = cloud(0)
    noise = np.random.default_rng(0).normal(0.0, 0.1, (len(X), 3))
    X5 = np.hstack([X, noise])  # 5-D, but the 5 leaves span only a plane
    translator = LevelSetTreeTranslator(min_cluster_size=M).fit(X5, X)
    assert translator.kind_ == "procrustes" and translator.fell_back_
    assert translator.n_independent_anchors_ < 6
    with pytest.raises(ValueError, match="affinely independent"):
        LevelSetTreeTranslator(min_cluster_size=M, fallback=None).fit(X5, X)


def test_translator_refusals():
    X, _ = cloud(0)
    with pytest.raises(ValueError, match="not fitted"):
        LevelSetTreeTranslator().transform(X)
    with pytest.raises(TypeError, match="estimator must be a paired translator"):
        LevelSetTreeTranslator(estimator="affine").fit(X, X)
    with pytest.raises(TypeError, match="fallback must be a paired translator"):
        LevelSetTreeTranslator(fallback="procrustes").fit(X, X)


# --------------------------------------------------------------------------------- refusals
def test_bad_clouds_are_refused_with_clear_messages():
    X, _ = cloud(0)
    with pytest.raises(ValueError, match="too few for a level-set tree"):
        level_set_tree(X[:30], min_cluster_size=20)
    with pytest.raises(ValueError, match="all 100 points are identical"):
        level_set_tree(np.ones((100, 3)), min_cluster_size=10)
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        level_set_tree(bad, M)
    with pytest.raises(ValueError, match="2-D"):
        level_set_tree(X[:, 0], M)
    with pytest.raises(ValueError, match="min_cluster_size must be at least 2"):
        level_set_tree(X, 1)
    with pytest.raises(ValueError, match="min_samples must be at most"):
        level_set_tree(X[:50], 10, min_samples=60)


def test_bad_arguments_are_refused(data, trees):
    X, y, Y, _, _ = data
    a, b = trees
    with pytest.raises(ValueError, match="one label per point"):
        class_composition(a, y[:-1])
    with pytest.raises(ValueError, match="no group for the classes 4"):
        purity_by_depth(a, y, groups={0: "l", 1: "l", 2: "l", 3: "r"})
    with pytest.raises(ValueError, match="unknown descriptors"):
        match_trees(a, b, weights={"colour": 1.0})
    with pytest.raises(ValueError, match="must not all be zero"):
        match_trees(a, b, weights=dict.fromkeys(DESCRIPTORS, 0.0))
    with pytest.raises(ValueError, match="max_cost"):
        match_trees(a, b, max_cost=-1.0)
    with pytest.raises(ValueError, match="LevelSetTree"):
        match_trees(X, b)
    with pytest.raises(ValueError, match="outside the trees"):
        matched_anchors(X, Y, a, b, [(0, 99)])
    with pytest.raises(ValueError, match="must hold the 410 points"):
        matched_anchors(X[:-1], Y, a, b, [(0, 0)])
