"""The compiled HMM engine: the permutation fast path against the dense route and brute force.

* brute force: small random HMMs (``S = 5``, ``T ≤ 4``, two cells of three symbols) whose ``S^T``
  paths are enumerated with ``itertools.product``: evidence, marginals, the MAP path, the joint
  posterior over paths (for FFBS) and the first impossible step;
* fast against dense: the strip-world models' own tables, run once through the permutation fast
  path and once through the dense route forced with ``fast_path=False``.
"""

import itertools
import math

import pytest
import torch

from pyro_latent.toy import LocalStateModel, ObjectCentricModel, StripWorld
from pyro_latent.toy.hmm import CompiledHMM

S, N_CELLS = 5, 2
SEEDS = range(6)


# ----------------------------------------------------------------------------- random HMMs
def random_tables(seed: int, permutation: bool):
    """``(init, trans, emission)`` with some zeros in ``π`` and ``E``, so that some observation
    sequences are impossible; ``trans`` a random permutation matrix or a dense random matrix."""
    g = torch.Generator().manual_seed(seed)
    init = torch.rand(S, generator=g, dtype=torch.float64)
    init[torch.randperm(S, generator=g)[:1]] = 0.0
    init /= init.sum()
    if permutation:
        trans = torch.eye(S, dtype=torch.float64)[torch.randperm(S, generator=g)]
    else:
        trans = torch.rand(S, S, generator=g, dtype=torch.float64)
        trans[0, 1] = 0.0  # a zero is allowed; a dense route must still see a non-permutation
        trans /= trans.sum(-1, keepdim=True)
    emission = torch.rand(S, N_CELLS, 3, generator=g, dtype=torch.float64)
    emission[emission < 0.25] = 0.0
    emission[..., 0] += 0.1  # every (state, cell) shows at least one symbol
    emission /= emission.sum(-1, keepdim=True)
    return init, trans, emission


def random_obs(seed: int, T: int, batch: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(1000 + seed)
    return torch.randint(0, 3, (batch, T, N_CELLS), generator=g)


def path_probability(init, trans, emission, path, frame) -> float:
    p = init[path[0]].item()
    for t, s in enumerate(path):
        if t:
            p *= trans[path[t - 1], s].item()
        for k, symbol in enumerate(frame[t]):
            p *= emission[s, k, symbol].item()
    return p


def brute_force(init, trans, emission, obs):
    """One sequence ``obs [T, n]``: ``(evidence, marginals [T, S], {path: p(path, o)}, first)``."""
    frame = obs.tolist()
    T = len(frame)
    joint = {
        path: path_probability(init, trans, emission, path, frame)
        for path in itertools.product(range(S), repeat=T)
    }
    evidence = sum(joint.values())
    marginals = torch.zeros(T, S, dtype=torch.float64)
    if evidence > 0:
        for path, p in joint.items():
            for t, s in enumerate(path):
                marginals[t, s] += p / evidence
    first = -1
    for t in range(T):
        prefix = sum(
            path_probability(init, trans, emission, path, frame[: t + 1])
            for path in itertools.product(range(S), repeat=t + 1)
        )
        if prefix == 0:
            first = t
            break
    return evidence, marginals, joint, first


def count_tolerance(expected, num):
    """Five binomial standard deviations, plus a few counts for the skew of rare events."""
    p = expected / num
    return 5 * abs(expected * (1 - p)) ** 0.5 + 5  # abs: p may round to just above 1


def engines(init, trans, emission):
    return {
        "fast": CompiledHMM(init, trans, emission),
        "dense": CompiledHMM(init, trans, emission, fast_path=False),
    }


# ----------------------------------------------------------------------------- brute force
def test_routes_are_chosen_by_the_transition():
    perm = random_tables(0, permutation=True)
    dense = random_tables(0, permutation=False)
    assert CompiledHMM(*perm).is_permutation and CompiledHMM(*perm).fast_path
    assert CompiledHMM(*perm, fast_path=False).is_permutation
    assert not CompiledHMM(*perm, fast_path=False).fast_path
    assert not CompiledHMM(*dense).is_permutation and not CompiledHMM(*dense).fast_path
    # near-permutations (an ε mixed in) are not permutations
    init, trans, emission = perm
    mixed = 0.99 * trans + 0.01 / S
    assert not CompiledHMM(init, mixed, emission).fast_path


@pytest.mark.parametrize("seed", SEEDS)
def test_log_likelihood_is_the_log_emission_product(seed):
    init, trans, emission = random_tables(seed, permutation=True)
    obs = random_obs(seed, 4, 3)
    log_lik = CompiledHMM(init, trans, emission).log_likelihood(obs)
    assert log_lik.shape == (3, 4, S)
    for b, t, s in itertools.product(range(3), range(4), range(S)):
        p = math.prod(emission[s, k, obs[b, t, k]].item() for k in range(N_CELLS))
        expected = math.log(p) if p > 0 else -math.inf
        assert log_lik[b, t, s].item() == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("permutation", [True, False], ids=["permutation", "dense"])
@pytest.mark.parametrize("T", [1, 2, 3, 4])
@pytest.mark.parametrize("seed", SEEDS)
def test_exact_queries_match_brute_force(seed, T, permutation):
    tables = random_tables(seed, permutation)
    obs = random_obs(seed, T, 4)
    expected = [brute_force(*tables, o) for o in obs]
    for name, hmm in engines(*tables).items():
        assert hmm.fast_path == (permutation and name == "fast")
        log_lik = hmm.log_likelihood(obs)
        log_evidence, marginals, first = hmm.forward_backward(log_lik)
        paths = hmm.viterbi(log_lik)
        assert paths.shape == (4, T)
        for b, (evidence, expected_marginals, joint, expected_first) in enumerate(expected):
            assert first[b].item() == expected_first, name
            if evidence == 0:
                assert torch.isneginf(log_evidence[b]), name
                assert (marginals[b] == 0).all(), name
                continue
            assert log_evidence[b].item() == pytest.approx(math.log(evidence), abs=1e-10), name
            assert torch.allclose(marginals[b], expected_marginals, atol=1e-12), name
            best = max(joint.values())
            path = tuple(paths[b].tolist())
            assert joint[path] == pytest.approx(best, rel=1e-10), name
            runner_up = max((p for q, p in joint.items() if q != path), default=0.0)
            if runner_up < best * (1 - 1e-9):
                assert path == max(joint, key=joint.get), name


@pytest.mark.parametrize("permutation", [True, False], ids=["permutation", "dense"])
def test_posterior_paths_are_exact_draws(permutation):
    """FFBS draws whole paths from ``p(s_{0:T-1} | o)``: path counts against brute force."""
    T, num, checked = 3, 20000, 0
    for seed in SEEDS:
        tables = random_tables(seed, permutation)
        # FFBS is only asked about possible sequences (callers check the evidence first)
        expected = [(o, brute_force(*tables, o)) for o in random_obs(seed, T, 3)]
        expected = [(o, e) for o, e in expected if e[0] > 0]
        if not expected:
            continue
        obs = torch.stack([o for o, _ in expected])
        for name, hmm in engines(*tables).items():
            g = torch.Generator().manual_seed(seed)
            samples = hmm.sample_paths(hmm.log_likelihood(obs), num, generator=g)
            assert samples.shape == (num, len(obs), T), name
            for b, (_, (evidence, _, joint, _)) in enumerate(expected):
                counts = {}
                for path in map(tuple, samples[:, b].tolist()):
                    counts[path] = counts.get(path, 0) + 1
                assert all(joint[path] > 0 for path in counts), name  # only possible paths
                for path, p in joint.items():
                    expected_count = num * p / evidence
                    assert abs(counts.get(path, 0) - expected_count) <= count_tolerance(
                        expected_count, num
                    ), (name, path)
                checked += 1
    assert checked >= 6


# ----------------------------------------------------------------------------- the strip world
@pytest.fixture(scope="module", params=[0.0, 0.1], ids=["noise-free", "noisy"])
def strip_engines(request):
    """Both models' compiled tables at one noise level, each through both routes."""
    world = StripWorld(6)
    eps = request.param
    out = []
    for cls in (ObjectCentricModel, LocalStateModel):
        tables = cls(world, eps).compiled_tables()
        out.append(engines(*tables))
    return world, eps, out


def strip_obs(world, eps, T, batch, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.stack([world.sample_episode(T, eps, g)[1] for _ in range(batch)])


@pytest.mark.parametrize("T", [1, 2, 12, 40, 7])  # the orbit cache grows, then is sliced
def test_fast_path_matches_dense_route(strip_engines, T):
    world, eps, pairs = strip_engines
    obs = strip_obs(world, eps, T, 5, seed=T)
    for pair in pairs:
        fast, dense = pair["fast"], pair["dense"]
        assert fast.fast_path and not dense.fast_path
        log_lik = fast.log_likelihood(obs)
        assert torch.equal(log_lik, dense.log_likelihood(obs))
        z_fast, m_fast, first_fast = fast.forward_backward(log_lik)
        z_dense, m_dense, first_dense = dense.forward_backward(log_lik)
        assert (first_fast == -1).all() and (first_dense == -1).all()
        assert torch.allclose(z_fast, z_dense, rtol=1e-12, atol=0)
        assert torch.allclose(m_fast, m_dense, atol=1e-12)
        assert torch.allclose(m_fast.sum(-1), torch.ones(5, T, dtype=torch.float64))
        z_only, none, first_only = fast.forward_backward(log_lik, smooth=False)
        assert none is None and torch.equal(z_only, z_fast) and torch.equal(first_only, first_fast)
        # δ is bit for bit the same on both routes, so even the many exact ties of the
        # noise-free world go the same way.
        paths = fast.viterbi(log_lik)
        assert torch.equal(paths, dense.viterbi(log_lik))
        assert (paths[:, 1:] == fast.successor[paths[:, :-1]]).all()


def test_posterior_samples_match_marginals_on_both_routes(strip_engines):
    """Per-step frequencies of FFBS draws against the exact marginals, both routes."""
    world, eps, pairs = strip_engines
    T, num = 6, 4000
    obs = strip_obs(world, eps, T, 2, seed=7)
    for pair in pairs:
        log_lik = pair["fast"].log_likelihood(obs)
        _, marginals, _ = pair["dense"].forward_backward(log_lik)
        for name, hmm in pair.items():
            g = torch.Generator().manual_seed(3)
            samples = hmm.sample_paths(log_lik, num, generator=g)  # [N, B, T]
            assert (samples[..., 1:] == hmm.successor[samples[..., :-1]]).all(), name
            counts = torch.nn.functional.one_hot(samples, hmm.n_states).double().sum(0)
            expected_counts = num * marginals
            tolerance = count_tolerance(expected_counts, num)
            assert ((counts - expected_counts).abs() <= tolerance).all(), name


def test_impossible_observations_on_both_routes():
    world = StripWorld(6)
    obs = strip_obs(world, 0.0, 8, 3, seed=11)
    obs[1, 4:] = 0  # no blue pair from step 4 on: impossible without noise
    obs[2, 0] = 2  # all red at step 0
    for cls in (ObjectCentricModel, LocalStateModel):
        pair = engines(*cls(world, 0.0).compiled_tables())
        results = {}
        for name, hmm in pair.items():
            log_lik = hmm.log_likelihood(obs)
            log_evidence, marginals, first = hmm.forward_backward(log_lik)
            assert first.tolist() == [-1, 4, 0], name
            assert torch.isfinite(log_evidence[0]) and torch.isneginf(log_evidence[1:]).all()
            assert (marginals[1:] == 0).all(), name
            assert torch.allclose(marginals[0].sum(-1), torch.ones(8, dtype=torch.float64))
            paths = hmm.viterbi(log_lik)  # arbitrary for impossible sequences, but a path
            assert paths.shape == (3, 8) and ((paths >= 0) & (paths < hmm.n_states)).all()
            results[name] = (log_evidence, marginals, paths[0])
        for a, b in zip(results["fast"], results["dense"], strict=True):
            assert torch.allclose(a, b, atol=1e-12) if a.is_floating_point() else torch.equal(a, b)
