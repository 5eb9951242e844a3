"""Level-set trees of a known density: the merge tree against brute-force components, the
condensation against hdbscan's, a two-bump density whose tree is known, and the tree of a model
the library did not define, unchanged under every volume-preserving map of its latent space."""

import hdbscan
import numpy as np
import pytest
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from torch import nn

from pyro_latent.analysis.density_trees import (
    aggregate_posterior_log_density,
    condense_merge_tree,
    density_level_set_tree,
    knn_graph,
    merge_tree,
    model_density_tree,
)
from pyro_latent.analysis.level_sets import level_set_tree
from pyro_latent.analysis.reparametrize import (
    AdditiveCoupling,
    Identity,
    Linear,
    MonotoneRotation,
    ReparametrizedVAE,
    Rotation,
)
from pyro_latent.core.latent_model import log_posterior


# ------------------------------------------------------------------------------- brute force
def components_at(levels, graph, threshold):
    """The component of every point of ``{i : levels_i ≥ threshold}`` (-1 below it)."""
    keep = np.flatnonzero(levels >= threshold)
    index = {int(i): k for k, i in enumerate(keep)}
    edges = [(index[int(i)], index[int(j)]) for i in keep for j in graph[i] if int(j) in index]
    rows = np.array([e[0] for e in edges], dtype=np.intp)
    cols = np.array([e[1] for e in edges], dtype=np.intp)
    adjacency = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(keep), len(keep)))
    out = np.full(len(levels), -1)
    out[keep] = connected_components(adjacency, directed=False)[1]
    return out


def components_from_merge_tree(linkage, levels, threshold):
    """The same partition read off the merge tree: the merges at or above the threshold."""
    n = len(levels)
    parent = list(range(2 * n))

    def find(i):
        while parent[i] != i:
            i = parent[i]
        return i

    for r, (a, b, level, _) in enumerate(linkage):
        if level >= threshold:
            parent[int(a)] = parent[int(b)] = n + r
    out = np.full(n, -1)
    keep = np.flatnonzero(levels >= threshold)
    out[keep] = [find(int(i)) for i in keep]
    return out


def same_partition(a, b):
    if not np.array_equal(a < 0, b < 0):
        return False
    pairs = {(x, y) for x, y in zip(a, b, strict=True) if x >= 0}
    return len(pairs) == len({x for x, _ in pairs}) == len({y for _, y in pairs})


def canonical(rows, n):
    """Each cluster by its point set and birth; each point by its level and the point set of the
    cluster it leaves: independent of how the clusters are numbered."""
    children = {}
    for p, c, _, _ in rows:
        children.setdefault(int(p), []).append(int(c))

    def points(label):
        return frozenset(x for c in children.get(label, []) for x in ([c] if c < n else points(c)))

    births = {int(c): float(lam) for _, c, lam, _ in rows if c >= n}
    clusters = {points(c): round(births[c], 12) for c in births}
    leaving = {int(c): (round(float(lam), 12), points(int(p))) for p, c, lam, _ in rows if c < n}
    return clusters, leaving


# ------------------------------------------------------------------------------------- tree
def test_merge_tree_components_match_brute_force():
    rng = np.random.default_rng(0)
    n = 80
    levels = rng.random(n)
    graph = knn_graph(rng.standard_normal((n, 2)), 3)
    linkage = merge_tree(levels, graph)
    assert linkage.shape == (n - 1, 4) and np.all(np.diff(linkage[:, 2]) <= 0)
    for t in np.quantile(levels, [0.05, 0.2, 0.4, 0.6, 0.8, 0.95]):
        assert same_partition(
            components_at(levels, graph, t), components_from_merge_tree(linkage, levels, t)
        ), t


def test_condensation_is_hdbscans():
    rng = np.random.default_rng(1)
    X = np.concatenate([rng.normal(c, 0.4, (60, 2)) for c in ((0, 0), (3, 0), (0, 3))])
    clusterer = hdbscan.HDBSCAN(min_cluster_size=8, approx_min_span_tree=False).fit(X)
    single = clusterer.single_linkage_tree_.to_numpy()
    linkage = single.copy()
    linkage[:, 2] = 1.0 / single[:, 2]  # hdbscan's λ = 1 / distance
    ours = condense_merge_tree(linkage, 8)
    theirs = clusterer.condensed_tree_.to_numpy()
    assert canonical(ours, len(X)) == canonical(theirs, len(X))


def test_two_bumps_give_the_known_tree():
    grid = np.linspace(-4.0, 4.0, 161)
    density = (
        0.5 * np.exp(-0.5 * ((grid + 1.5) / 0.5) ** 2) / 0.5
        + 0.5 * np.exp(-0.5 * ((grid - 1.6) / 0.7) ** 2) / 0.7
    )
    chain = [np.array([j for j in (i - 1, i + 1) if 0 <= j < len(grid)]) for i in range(len(grid))]
    tree = density_level_set_tree(grid[:, None], np.log(density), graph=chain, min_cluster_size=5)
    assert len(tree.nodes) == 3 and tree.root.children == (1, 2)
    between = np.flatnonzero((grid > -1.5) & (grid < 1.6))
    saddle = between[np.argmin(density[between])]
    expected = {
        frozenset(np.flatnonzero((grid < grid[saddle]) & (density > density[saddle]))),
        frozenset(np.flatnonzero((grid > grid[saddle]) & (density > density[saddle]))),
    }
    assert {frozenset(tree.nodes[i].members.tolist()) for i in (1, 2)} == expected
    assert tree.nodes[1].birth == pytest.approx(density[saddle] / density.max())


def test_density_tree_errors_name_the_problem():
    X = np.random.default_rng(2).standard_normal((40, 2))
    with pytest.raises(ValueError, match="one value per point"):
        density_level_set_tree(X, np.zeros(39))
    with pytest.raises(ValueError, match="NaN or infinite"):
        density_level_set_tree(X, np.r_[np.zeros(39), np.nan])
    with pytest.raises(ValueError, match="not both"):
        density_level_set_tree(X, np.zeros(40), neighbours=X, graph=knn_graph(X, 3))
    with pytest.raises(ValueError, match="n_neighbors must be at most"):
        knn_graph(X, 40)


# -------------------------------------------------------------------- a model of our own
class MixturePriorModel(nn.Module):
    """A latent model written here, not in the library: a 3-component Gaussian-mixture prior
    in 3-D, an invertible decoder ``tanh(W z)`` into 12-D, and an encoder that inverts it."""

    latent_dim = 3

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.W = torch.randn(12, 3, generator=g, dtype=torch.float64) / 3.0
        self.means = torch.tensor([[-2.0, 0, 0], [2.0, 0.5, 0], [0, 2.5, 1]], dtype=torch.float64)
        self.scale = 0.6

    def log_prior(self, z):
        comp = torch.distributions.Normal(self.means, self.scale)
        return torch.logsumexp(comp.log_prob(z[..., None, :]).sum(-1), -1) - np.log(3)

    def sample(self, n, seed):
        g = torch.Generator().manual_seed(seed)
        k = torch.randint(3, (n,), generator=g)
        return self.means[k] + self.scale * torch.randn(n, 3, generator=g, dtype=torch.float64)

    def decode(self, z):
        return torch.tanh(z.double() @ self.W.T)

    def encode(self, x):
        loc = torch.atanh(x.clamp(-1 + 1e-12, 1 - 1e-12)) @ torch.linalg.pinv(self.W).T
        return loc, torch.full_like(loc, 0.3)

    def log_likelihood(self, x, z):
        return torch.distributions.Normal(self.decode(z), 0.1).log_prob(x).sum(-1)


VOLUME_PRESERVING = {
    "rotation": Rotation(3, seed=1),
    "linear": Linear(3, seed=1, condition=10.0),
    "scaled-linear": Linear(3, seed=1, condition=10.0, determinant=4.0),
    "coupling": AdditiveCoupling(3, seed=1),
}


@pytest.fixture(scope="module")
def mixture_model_and_images():
    model = MixturePriorModel()
    return model, model.decode(model.sample(300, seed=1)), model.decode(model.sample(400, seed=2))


def _same_tree(a, b):
    assert len(a.nodes) == len(b.nodes)
    for u, v in zip(a.nodes, b.nodes, strict=True):
        assert (u.parent, u.size) == (v.parent, v.size)
        assert np.array_equal(u.members, v.members)
        assert u.birth == pytest.approx(v.birth, rel=1e-6, abs=1e-12)
    assert np.array_equal(a.point_node, b.point_node)


@pytest.mark.parametrize("density", ["prior", "aggregate-posterior"])
def test_model_density_tree_survives_every_volume_preserving_map(mixture_model_and_images, density):
    model, x, reference = mixture_model_and_images
    kwargs = {"density": density, "reference": reference, "min_cluster_size": 15}
    base = model_density_tree(model, x, **kwargs)
    assert len(base.leaves) >= 3  # the prior's three components, at least
    for name, phi in VOLUME_PRESERVING.items():
        if name == "scaled-linear":
            assert not phi.volume_preserving  # constant |det| = 4: a constant density factor
        _same_tree(base, model_density_tree(ReparametrizedVAE(model, phi), x, **kwargs))


def test_hdbscan_tree_and_a_varying_jacobian_are_reported_not_assumed(mixture_model_and_images):
    """The premise of the comparison: HDBSCAN sees the codes, which every map moves, and the
    monotone map's |det J| varies, so its density is reshaped rather than rescaled."""
    model, x, _ = mixture_model_and_images
    z = model.encode(x)[0]
    monotone = MonotoneRotation(3, seed=1, strength=2.0)
    log_det = torch.linalg.slogdet(monotone.jacobian(z)).logabsdet
    assert float(log_det.std()) > 0.1
    linear = VOLUME_PRESERVING["linear"]
    codes = level_set_tree(z.numpy(), min_cluster_size=15)
    moved = level_set_tree(linear(z).numpy(), min_cluster_size=15)
    assert codes.n_points == moved.n_points == len(x)  # whatever their shapes


def test_reparametrized_posterior_is_the_exact_push_forward(mixture_model_and_images):
    model, x, _ = mixture_model_and_images
    phi = Linear(3, seed=4, condition=5.0, determinant=2.0)
    wrapped = ReparametrizedVAE(model, phi)
    loc, scale = model.encode(x[:5])
    y = torch.randn(7, 3, dtype=torch.float64)
    A = torch.as_tensor(phi.matrix)
    expected = torch.stack([
        torch.distributions.MultivariateNormal(A @ m, A @ torch.diag(s**2) @ A.T).log_prob(y)
        for m, s in zip(loc, scale, strict=True)
    ], dim=1)  # fmt: skip
    assert torch.allclose(log_posterior(wrapped, x[:5], y), expected, atol=1e-9)
    assert torch.allclose(
        log_posterior(ReparametrizedVAE(model, Identity(3)), x[:5], y),
        log_posterior(model, x[:5], y),
    )


def test_aggregate_posterior_is_the_mean_of_the_encoder_densities(mixture_model_and_images):
    model, x, _ = mixture_model_and_images
    z = torch.randn(9, 3, dtype=torch.float64)
    loc, scale = model.encode(x)
    direct = torch.stack([
        torch.distributions.Normal(loc, scale).log_prob(zi).sum(-1).exp().mean().log() for zi in z
    ])  # fmt: skip
    got = aggregate_posterior_log_density(model, x, z, batch_size=4)
    assert torch.allclose(got, direct, atol=1e-10)
    with pytest.raises(ValueError, match="reference observations"):
        model_density_tree(model, x, density="aggregate-posterior")
    with pytest.raises(ValueError, match="density must be one of"):
        model_density_tree(model, x, density="kde")


def test_a_deterministic_encoder_has_no_aggregate_posterior():
    from pyro_latent.core.latent_model import as_latent_model

    ae = as_latent_model(
        nn.Linear(6, 2), nn.Sequential(nn.Linear(2, 6), nn.Sigmoid()), latent_dim=2
    )
    x = torch.rand(40, 6)
    with pytest.raises(TypeError, match="deterministic"):
        aggregate_posterior_log_density(ae, x, torch.zeros(3, 2))
    tree = model_density_tree(ae, x, density="prior", min_cluster_size=5)  # the N(0, I) prior
    assert tree.n_points == 40


def test_a_point_joining_three_components_makes_three_siblings():
    """Three arms of a star, each a chain whose density rises away from the centre, meet at the
    centre point, the lowest: one event with three children of the root, none of them a cluster
    that lives for no time (as a nested binary split would make)."""
    arms, length = 3, 12
    levels = [0.1]
    graph = [[]]
    for k in range(arms):
        first = 1 + k * length
        for j in range(length):
            levels.append((0.2 + 0.8 * j / (length - 1)) * (1.0 - 0.01 * k))
            graph.append([first + j - 1 if j else 0] + ([first + j + 1] if j < length - 1 else []))
        graph[0].append(first)
    tree = density_level_set_tree(
        np.arange(len(levels), dtype=float)[:, None], np.log(levels),
        graph=[np.array(r) for r in graph], min_cluster_size=5,
    )  # fmt: skip
    assert len(tree.nodes) == 4 and len(tree.root.children) == 3
    assert all(tree.nodes[c].persistence > 0 for c in tree.root.children)
    assert sorted(tree.nodes[c].size for c in tree.root.children) == [12, 12, 12]


def test_a_bad_graph_is_refused_and_an_asymmetric_one_symmetrised():
    X = np.arange(20.0)[:, None]
    logp = -((X[:, 0] - 10) ** 2)
    with pytest.raises(ValueError, match=r"graph\[3\]"):
        density_level_set_tree(X, logp, graph=[[1]] * 3 + [[25]] + [[0]] * 16, min_cluster_size=5)
    one_way = [np.array([i + 1]) for i in range(19)] + [np.array([], dtype=int)]
    both_ways = [np.array([j for j in (i - 1, i + 1) if 0 <= j < 20]) for i in range(20)]
    a = density_level_set_tree(X, logp, graph=one_way, min_cluster_size=5)
    b = density_level_set_tree(X, logp, graph=both_ways, min_cluster_size=5)
    assert np.array_equal(a.point_node, b.point_node) and len(a.nodes) == len(b.nodes)
