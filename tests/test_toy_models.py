"""Exact inference in the two strip-world models, checked against independent computations.

* brute force: the world is deterministic given its initial state, so ``p(o)`` is a sum over the
  160 initial states; the rules are re-written here in plain Python, independent of the package;
* model 1 against model 2: ``p₁(o) = p₂(o)``;
* model 2's compiled program against its literal per-cell program.
"""

import math

import pytest
import torch

from pyro_latent.toy import (
    ImpossibleObservationError,
    LocalStateModel,
    ObjectCentricModel,
    StripWorld,
)

N = 10


# ----------------------------------------------------------------------------- brute force
def rule_step(b, r, v, n):
    b = b + (1 if v == 1 else -1)
    if b == 0 or b + 1 == n - 1:
        v = 1 - v
    return b, (r + 1) % n, v


def rule_render(b, r, n):
    return [1 if k in (b, b + 1) else 2 if k == r else 0 for k in range(n)]


def rule_states(n):
    return [
        (b, r, v)
        for b in range(n - 1)
        for r in range(n)
        for v in (0, 1)
        if not (b == 0 and v == 0) and not (b == n - 2 and v == 1)
    ]


def brute_force(obs, eps, n=N):
    """Posterior over initial states: (log p(o), {s0: posterior}, {s0: trajectory})."""
    obs = obs.tolist()
    states = rule_states(n)
    log_weights, trajectories = {}, {}
    for s0 in states:
        b, r, v = s0
        logw = -math.log(len(states))
        traj = []
        for t, frame in enumerate(obs):
            if t:
                b, r, v = rule_step(b, r, v, n)
            traj.append((b, r, v))
            for true, seen in zip(rule_render(b, r, n), frame, strict=True):
                p = (1 - eps) if true == seen else eps / 2
                logw += math.log(p) if p > 0 else -math.inf
        log_weights[s0] = logw
        trajectories[s0] = traj
    log_z = torch.logsumexp(torch.tensor(list(log_weights.values()), dtype=torch.float64), 0)
    post = {s: math.exp(w - log_z.item()) if w > -math.inf else 0.0 for s, w in log_weights.items()}
    return log_z.item(), post, trajectories, log_weights


def local_code(b, r, v, k):
    blue = k in (b, b + 1)
    return int(k == r) + (2 + 2 * v if blue else 0)


def observed_sequences(world, T, eps, count, seed):
    g = torch.Generator().manual_seed(seed)
    return [world.sample_episode(T, eps, g)[1] for _ in range(count)]


@pytest.fixture(scope="module")
def world():
    return StripWorld(N)


@pytest.fixture(
    scope="module",
    params=[(0.0, "hmm"), (0.1, "hmm"), (0.0, "enum"), (0.1, "enum")],
    ids=["noise-free-hmm", "noisy-hmm", "noise-free-enum", "noisy-enum"],
)
def models(request, world):
    """Both models, with either exact engine: compiled forward-backward or Pyro enumeration."""
    eps, engine = request.param
    return eps, ObjectCentricModel(world, eps, engine), LocalStateModel(world, eps, engine=engine)


T_VALUES = list(range(1, 13))


@pytest.mark.parametrize("T", T_VALUES)
def test_log_evidence_matches_brute_force(models, world, T):
    eps, m1, m2 = models
    for obs in observed_sequences(world, T, eps, 3, seed=T):
        expected, *_ = brute_force(obs, eps)
        assert m1.log_evidence(obs).item() == pytest.approx(expected, abs=1e-5)
        assert m2.log_evidence(obs).item() == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("T", T_VALUES)
def test_marginals_match_brute_force(models, world, T):
    eps, m1, m2 = models
    obs = observed_sequences(world, T, eps, 1, seed=100 + T)[0]
    _, post, trajs, _ = brute_force(obs, eps)
    blue = torch.zeros(T, N, dtype=torch.float64)
    red = torch.zeros(T, N, dtype=torch.float64)
    vel = torch.zeros(T, 2, dtype=torch.float64)
    cells = torch.zeros(T, N, 6, dtype=torch.float64)
    for s0, p in post.items():
        for t, (b, r, v) in enumerate(trajs[s0]):
            blue[t, b] += p
            red[t, r] += p
            vel[t, v] += p
            for k in range(N):
                cells[t, k, local_code(b, r, v, k)] += p
    got1 = m1.marginals(obs)
    torch.testing.assert_close(got1["blue"], blue, atol=1e-5, rtol=0)
    torch.testing.assert_close(got1["red"], red, atol=1e-5, rtol=0)
    torch.testing.assert_close(got1["velocity"], vel, atol=1e-5, rtol=0)
    torch.testing.assert_close(m2.marginals(obs)["cells"], cells, atol=1e-5, rtol=0)


@pytest.mark.parametrize("eps", [0.0, 0.2])
def test_state_marginals_match_brute_force(world, eps):
    obs = observed_sequences(world, 5, eps, 1, seed=300)[0]
    _, post, trajs, _ = brute_force(obs, eps)
    index = {s: i for i, s in enumerate(rule_states(N))}
    expected = torch.zeros(5, len(index), dtype=torch.float64)
    for s0, p in post.items():
        for t, state in enumerate(trajs[s0]):
            expected[t, index[state]] += p
    for model in (ObjectCentricModel(world, eps), LocalStateModel(world, eps)):
        torch.testing.assert_close(model.state_marginals(obs), expected, atol=1e-8, rtol=0)


@pytest.mark.parametrize("T", T_VALUES)
def test_map_is_a_most_probable_trajectory(models, world, T):
    # With ε = 0 and short windows the MAP is not unique, so compare joint probabilities.
    eps, m1, m2 = models
    obs = observed_sequences(world, T, eps, 1, seed=200 + T)[0]
    _, _, trajs, log_w = brute_force(obs, eps)
    best = max(log_w.values())
    by_trajectory = {tuple(traj): log_w[s0] for s0, traj in trajs.items()}

    map1 = [tuple(row) for row in m1.map(obs).tolist()]
    assert by_trajectory[tuple(map1)] == pytest.approx(best, abs=1e-5)

    map2 = m2.map(obs)
    by_cells = {
        tuple(tuple(local_code(b, r, v, k) for k in range(N)) for b, r, v in traj): log_w[s0]
        for s0, traj in trajs.items()
    }
    assert by_cells[tuple(tuple(row) for row in map2.tolist())] == pytest.approx(best, abs=1e-5)


def test_batched_queries_equal_one_at_a_time(models, world):
    eps, m1, m2 = models
    seqs = observed_sequences(world, 5, eps, 4, seed=7)
    batch = torch.stack(seqs)
    for model in (m1, m2):
        singles = torch.stack([model.log_evidence(o) for o in seqs])
        torch.testing.assert_close(model.log_evidence(batch), singles)
        key = "cells" if model is m2 else "blue"
        torch.testing.assert_close(
            model.marginals(batch)[key], torch.stack([model.marginals(o)[key] for o in seqs])
        )
        assert model.map(batch).shape[0] == 4


def test_log_evidence_is_the_traceenum_elbo(models, world):
    """The per-sequence contraction sums to minus TraceEnum_ELBO's loss on the whole batch."""
    from pyro.infer import TraceEnum_ELBO, config_enumerate

    eps, m1, m2 = models
    batch = torch.stack(observed_sequences(world, 4, eps, 3, seed=8))
    for model in (m1, m2):
        loss = TraceEnum_ELBO(max_plate_nesting=2).loss(
            config_enumerate(model.program), lambda *a: None, batch, 4, 3
        )
        assert -loss == pytest.approx(model.log_evidence(batch).sum().item(), abs=1e-6)


@pytest.mark.parametrize("eps", [1e-12, 1e-64, 1e-200])
def test_tiny_noise_matches_brute_force(world, eps):
    """A sequence whose best explanation changes late: weights far below the leader must not
    underflow (the forward pass stays in log space)."""
    states = world.valid_states()
    obs = torch.stack(
        [world.render(states[0]), world.render(states[77]), world.render(world.step(states[77]))]
    )
    expected, post, _, _ = brute_force(obs, eps)
    for model in (ObjectCentricModel(world, eps), LocalStateModel(world, eps)):
        assert model.log_evidence(obs).item() == pytest.approx(expected, rel=1e-12)
        marginals = model.marginals(obs)
        assert all(torch.isfinite(v).all() for v in marginals.values())
    best = max(post, key=post.get)
    assert tuple(ObjectCentricModel(world, eps).map(obs)[0].tolist()) == best


def test_enum_engine_refuses_to_underflow_silently(world):
    states = world.valid_states()
    obs = torch.stack([world.render(states[0]), world.render(states[77])])
    model = ObjectCentricModel(world, 1e-200, engine="enum")
    with pytest.raises(FloatingPointError, match="engine='hmm'"):
        model.log_evidence(obs)


def test_mixed_batch_gives_minus_infinity_only_where_impossible(world):
    g = torch.Generator().manual_seed(4)
    good = [world.sample_episode(5, 0.0, g)[1] for _ in range(2)]
    bad = good[0].clone()
    bad[2] = 0
    for model in (ObjectCentricModel(world), LocalStateModel(world)):
        out = model.log_evidence(torch.stack([good[0], bad, good[1]]))
        assert torch.isneginf(out).tolist() == [False, True, False]
        assert out[0].item() == pytest.approx(-math.log(160))


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3])
def test_model_one_and_model_two_give_the_same_evidence(world, eps):
    m1, m2 = ObjectCentricModel(world, eps), LocalStateModel(world, eps)
    g = torch.Generator().manual_seed(11)
    seqs = [world.sample_episode(T, eps, g)[1] for T in (1, 3, 7, 15, 30)]
    # Arbitrary symbol sequences too: noise-free models must agree on -inf as well.
    seqs += [torch.randint(0, 3, (T, N), generator=g) for T in (1, 2, 5)]
    for obs in seqs:
        a, b = m1.log_evidence(obs).item(), m2.log_evidence(obs).item()
        assert a == pytest.approx(b, abs=1e-6) or (a == b == -math.inf)


@pytest.mark.parametrize("engine", ["hmm", "enum"])
def test_posterior_samples_follow_the_marginals(world, engine):
    eps = 0.2
    m1, m2 = ObjectCentricModel(world, eps, engine), LocalStateModel(world, eps, engine=engine)
    obs = observed_sequences(world, 4, eps, 1, seed=3)[0]
    torch.manual_seed(0)
    n = 800
    samples1 = m1.sample_posterior(obs, n)
    assert samples1.shape == (n, 4, 3)
    freq = torch.nn.functional.one_hot(samples1[..., 2], 2).double().mean(0)
    # Binomial standard error is at most 0.5/sqrt(n) = 0.018; allow about 4 of them.
    torch.testing.assert_close(freq, m1.marginals(obs)["velocity"], atol=0.07, rtol=0)
    samples2 = m2.sample_posterior(obs, n)
    assert samples2.shape == (n, 4, N)
    freq2 = torch.nn.functional.one_hot(samples2, 6).double().mean(0)
    torch.testing.assert_close(freq2, m2.marginals(obs)["cells"], atol=0.07, rtol=0)
    # Each posterior sample is a valid trajectory of the world.
    for traj in samples1[:50]:
        torch.testing.assert_close(traj, world.rollout(traj[0], 4))
    world.from_local(samples2[:50])


def test_prior_samples_are_valid_episodes(world):
    for model in (ObjectCentricModel(world), LocalStateModel(world)):
        latents, obs = model.sample(T=6, n_samples=20)
        assert obs.shape == (20, 6, N)
        states = latents if latents.shape[-1] == 3 else world.from_local(latents)
        for traj, o in zip(states, obs, strict=True):
            torch.testing.assert_close(traj, world.rollout(traj[0], 6))
            torch.testing.assert_close(world.render(traj), o)  # noise-free
        assert torch.isfinite(model.log_evidence(obs)).all()


# ----------------------------------------------------------------------------- literal vs compiled
# (10, 3) costs about a minute: the contraction's width grows with n·T and jumps between n = 7
# and n = 8 at T = 3.  The full-size strip is checked at T = 2, where every per-cell table of
# n = 10 (both walls and the interior) is used; longer chains of transitions at n = 5 to 7.
@pytest.mark.parametrize("n,T", [(5, 1), (5, 2), (5, 3), (5, 4), (6, 5), (7, 3), (10, 1), (10, 2)])
@pytest.mark.parametrize("eps", [0.0, 0.15])
def test_literal_and_compiled_programs_agree(n, T, eps):
    world = StripWorld(n)
    literal = LocalStateModel(world, eps, form="literal")
    compiled = LocalStateModel(world, eps, form="compiled")
    g = torch.Generator().manual_seed(n * 100 + T)
    seqs = [world.sample_episode(T, eps, g)[1] for _ in range(2)]
    seqs.append(torch.randint(0, 3, (T, n), generator=g))
    for obs in seqs:
        a, b = literal.log_evidence(obs).item(), compiled.log_evidence(obs).item()
        assert a == pytest.approx(b, abs=1e-8) or a == b == -math.inf
    obs = seqs[0]
    torch.testing.assert_close(
        literal.marginals(obs)["cells"], compiled.marginals(obs)["cells"], atol=1e-8, rtol=0
    )


def test_literal_program_at_full_size():
    """The study's strip (n = 10): the literal net and the compiled tables agree on a batch of
    sequences (sampled, and arbitrary observations) with the study's noise, evidence and
    per-cell marginals."""
    world = StripWorld(N)
    g = torch.Generator().manual_seed(5)
    obs = torch.stack([world.sample_episode(2, 0.1, g)[1] for _ in range(2)])
    obs = torch.cat([obs, torch.randint(0, 3, (1, 2, N), generator=g)])
    literal = LocalStateModel(world, 0.1, form="literal")
    compiled = LocalStateModel(world, 0.1)
    torch.testing.assert_close(
        literal.log_evidence(obs), compiled.log_evidence(obs), atol=1e-9, rtol=0
    )
    torch.testing.assert_close(
        literal.marginals(obs)["cells"], compiled.marginals(obs)["cells"], atol=1e-8, rtol=0
    )


@pytest.mark.parametrize("eps", [0.0, 0.2])
def test_engines_agree_on_long_batched_sequences(world, eps):
    g = torch.Generator().manual_seed(21)
    obs = torch.stack([world.sample_episode(25, eps, g)[1] for _ in range(3)])
    for cls in (ObjectCentricModel, LocalStateModel):
        fast, enum = cls(world, eps, engine="hmm"), cls(world, eps, engine="enum")
        torch.testing.assert_close(fast.log_evidence(obs), enum.log_evidence(obs))
        for key, value in fast.marginals(obs).items():
            torch.testing.assert_close(value, enum.marginals(obs)[key], atol=1e-8, rtol=0)


def test_compiled_transition_is_the_world_step(world):
    model = LocalStateModel(world)
    nxt = world.state_index(world.step(world.valid_states()))
    expected = torch.nn.functional.one_hot(nxt, world.n_states).double()
    torch.testing.assert_close(model.transition, expected)


# ---------------------------------------------------------------- impossible observations
@pytest.mark.parametrize("engine", ["hmm", "enum"])
def test_impossible_observation(world, engine):
    m1, m2 = ObjectCentricModel(world, engine=engine), LocalStateModel(world, engine=engine)
    obs = world.sample_episode(6, 0.0, torch.Generator().manual_seed(1))[1]
    obs[4] = 0  # the blue pair vanishes at step 4
    for model in (m1, m2):
        assert model.log_evidence(obs).item() == -math.inf
        for query in (model.marginals, model.map, lambda o, m=model: m.sample_posterior(o, 3)):
            with pytest.raises(ImpossibleObservationError, match="step 4") as info:
                query(obs)
            assert info.value.step == 4
        good = world.sample_episode(6, 0.0, torch.Generator().manual_seed(2))[1]
        with pytest.raises(ImpossibleObservationError, match="sequence 1, step 4"):
            model.marginals(torch.stack([good, obs]))
        # noisy models find nothing impossible and never return NaN
    noisy = ObjectCentricModel(world, 0.05)
    marg = noisy.marginals(obs)
    assert all(torch.isfinite(v).all() for v in marg.values())


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "bad, message",
    [
        (torch.zeros(3, 9, dtype=torch.long), "shape"),
        (torch.zeros(10, dtype=torch.long), "shape"),
        (torch.zeros(2, 2, 3, 10, dtype=torch.long), "shape"),
        (torch.zeros(3, 10), "integer dtype"),
        (torch.zeros(3, 10, dtype=torch.bool), "integer dtype"),
        (torch.full((3, 10), 3), "symbols"),
        (torch.full((3, 10), -1), "symbols"),
        (torch.zeros(0, 10, dtype=torch.long), "no time steps"),
        ([[0] * 10], "torch.Tensor"),
    ],
)
def test_models_reject_bad_observations(world, bad, message):
    for model in (ObjectCentricModel(world), LocalStateModel(world)):
        for query in (
            model.log_evidence,
            model.marginals,
            model.map,
            lambda o, m=model: m.sample_posterior(o, 2),
        ):
            with pytest.raises(ValueError, match=message):
                query(bad)


def test_models_reject_bad_arguments(world):
    with pytest.raises(ValueError, match="obs_noise"):
        ObjectCentricModel(world, obs_noise=1.0)
    with pytest.raises(ValueError, match="obs_noise"):
        LocalStateModel(world, obs_noise=-0.1)
    with pytest.raises(ValueError, match="form"):
        LocalStateModel(world, form="fast")
    with pytest.raises(ValueError, match="engine"):
        ObjectCentricModel(world, engine="fast")
    with pytest.raises(ValueError, match="literal"):
        LocalStateModel(world, form="literal", engine="hmm")
    with pytest.raises(ValueError, match="StripWorld"):
        ObjectCentricModel(10)
    with pytest.raises(ValueError, match="n_samples"):
        ObjectCentricModel(world).sample(T=3, n_samples=0)
    with pytest.raises(ValueError, match="T must"):
        LocalStateModel(world).sample(T=0, n_samples=2)
    obs = world.sample_episode(3)[1]
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="n_samples"):
            ObjectCentricModel(world).sample_posterior(obs, bad)
