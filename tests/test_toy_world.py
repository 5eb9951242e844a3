"""The strip world's rules: counts, bijection, period, walls, rendering, local codes, errors."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pyro_latent.toy import StripWorld
from pyro_latent.toy.local_rule import local_tables, neighbourhoods

sizes = st.integers(min_value=4, max_value=14)


def test_post_world_has_160_states_and_period_80():
    world = StripWorld()
    states = world.valid_states()
    assert states.shape == (160, 3) and states.dtype == torch.long
    assert world.period == 80
    x = states
    for k in range(1, 81):
        x = world.step(x)
        if k < 80:
            assert not torch.equal(x, states)
    assert torch.equal(x, states)


def test_post_example_encoding():
    # Red at cell 2, blue at cells 4-5 moving right (the post's example for model 2).
    world = StripWorld()
    state = torch.tensor([4, 2, 1])
    assert world.to_local(state).tolist() == [0, 0, 1, 0, 4, 4, 0, 0, 0, 0]
    assert world.render(state).tolist() == [0, 0, 2, 0, 1, 1, 0, 0, 0, 0]


@given(sizes)
def test_state_count_and_index(n):
    world = StripWorld(n)
    states = world.valid_states()
    assert len(states) == 2 * n * (n - 2)
    assert torch.equal(world.state_index(states), torch.arange(len(states)))


@given(sizes)
def test_step_is_a_bijection_on_valid_states(n):
    world = StripWorld(n)
    nxt = world.step(world.valid_states())  # raises if it ever leaves the valid set
    assert len(set(world.state_index(nxt).tolist())) == world.n_states


@given(sizes)
@settings(max_examples=15)
def test_period_is_lcm_of_red_and_blue_cycles(n):
    world = StripWorld(n)
    states = world.valid_states()
    x, k = world.step(states), 1
    while not torch.equal(x, states):
        x, k = world.step(x), k + 1
    assert k == world.period == math.lcm(n, 2 * (n - 2))


@given(sizes, st.data())
def test_the_wall_is_never_entered(n, data):
    world = StripWorld(n)
    index = data.draw(st.integers(0, world.n_states - 1))
    traj = world.rollout(world.valid_states()[index], 3 * n)
    b, _, v = traj.unbind(-1)
    assert (b >= 0).all() and (b + 1 <= n - 1).all()
    at_wall = (b == 0) | (b == n - 2)
    # against a wall the pair already points away from it
    assert ((b[at_wall] == 0) == (v[at_wall] == 1)).all()


@given(sizes)
def test_render_hides_red_under_blue(n):
    world = StripWorld(n)
    states = world.valid_states()
    frames = world.render(states)
    b, r, _ = states.unbind(-1)
    hidden = (r == b) | (r == b + 1)
    assert ((frames == 2).sum(-1) == (~hidden).long()).all()
    assert ((frames == 1).sum(-1) == 2).all()


@given(sizes)
def test_local_codes_round_trip(n):
    world = StripWorld(n)
    states = world.valid_states()
    cells = world.to_local(states)
    assert torch.equal(world.from_local(cells), states)
    # the observed symbol of a code agrees with render
    from pyro_latent.toy.world import CODE_TO_SYMBOL

    assert torch.equal(CODE_TO_SYMBOL[cells], world.render(states))


@given(sizes)
@settings(max_examples=10, deadline=None)
def test_local_rule_is_radius_one_and_reproduces_the_step(n):
    world = StripWorld(n)
    tables = local_tables(world)  # raises if radius 1 is not enough
    states = world.valid_states()
    now, nxt = world.to_local(states), world.to_local(world.step(states))
    for i, (parents, table) in enumerate(zip(neighbourhoods(n), tables, strict=True)):
        probs = table[tuple(now[:, p] for p in parents)]
        assert torch.equal(probs.argmax(-1), nxt[:, i])
        assert torch.all(probs.max(-1).values == 1)


def test_noise_free_observation_is_the_rendering():
    world = StripWorld()
    states = world.valid_states()
    assert torch.equal(world.observe(states, 0.0), world.render(states))


def test_noisy_observation_rates():
    world = StripWorld()
    g = torch.Generator().manual_seed(0)
    states = world.valid_states().repeat(50, 1)
    obs = world.observe(states, 0.3, g)
    truth = world.render(states)
    # Each true symbol is kept with 1-ε and turned into each other symbol with ε/2; the rarest
    # pair (red shown as something) still has thousands of cells, standard error < 0.01.
    for true in range(3):
        shown = obs[truth == true]
        for symbol in range(3):
            rate = (shown == symbol).double().mean().item()
            assert rate == pytest.approx(0.7 if symbol == true else 0.15, abs=0.03)


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize("n", [3, 0, -2, 4.0, True, "10"])
def test_bad_sizes(n):
    with pytest.raises(ValueError, match="n_cells"):
        StripWorld(n)


@pytest.mark.parametrize(
    "state, message",
    [
        ([9, 0, 1], "blue=9"),
        ([-1, 0, 1], "blue=-1"),
        ([3, 10, 1], "red=10"),
        ([3, 2, 2], "velocity_index=2"),
        ([0, 4, 0], "into the wall"),
        ([8, 4, 1], "into the wall"),
    ],
)
def test_invalid_states(state, message):
    world = StripWorld()
    for method in (world.step, world.render, world.to_local, world.state_index):
        with pytest.raises(ValueError, match=message):
            method(torch.tensor(state))


def test_malformed_states():
    world = StripWorld()
    with pytest.raises(ValueError, match=r"shape \[..., 3\]"):
        world.step(torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="integer dtype"):
        world.step(torch.tensor([1.0, 2.0, 1.0]))
    with pytest.raises(ValueError, match="T must"):
        world.rollout(torch.tensor([1, 2, 1]), 0)
    with pytest.raises(ValueError, match=r"shape \[..., 3\]"):
        world.is_valid_state(torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="integer dtype"):
        world.is_valid_state(torch.tensor([1.5, 2.0, 1.0]))
    with pytest.raises(ValueError, match="integer tensor"):
        world.step("abc")


@pytest.mark.parametrize(
    "cells, message",
    [
        ([0, 0, 1, 0, 4, 4, 0, 0, 0], "shape"),
        ([0, 0, 1, 0, 4, 4, 0, 0, 0, 6], "outside 0..5"),
        ([0, 0, 0, 0, 4, 4, 0, 0, 0, 0], "0 red"),
        ([1, 0, 1, 0, 4, 4, 0, 0, 0, 0], "2 red"),
        ([0, 0, 1, 0, 4, 0, 4, 0, 0, 0], "adjacent blue"),
        ([0, 0, 1, 0, 4, 4, 4, 0, 0, 0], "adjacent blue"),
        ([0, 0, 1, 0, 4, 2, 0, 0, 0, 0], "disagree"),
        ([2, 2, 1, 0, 0, 0, 0, 0, 0, 0], "into the wall"),
        ([0, 0, 1, 0, 0, 0, 0, 0, 4, 4], "into the wall"),
    ],
)
def test_malformed_configurations(cells, message):
    with pytest.raises(ValueError, match=message):
        StripWorld().from_local(torch.tensor(cells))


def test_bad_noise():
    world = StripWorld()
    for eps in (-0.1, 1.0, "x", None):
        with pytest.raises(ValueError, match="obs_noise"):
            world.observe(world.valid_states()[:2], eps)


@pytest.mark.parametrize(
    "obs, message",
    [
        (torch.zeros(4, 9, dtype=torch.long), "shape"),
        (torch.zeros(4, 10), "integer dtype"),
        (torch.full((4, 10), 7), "symbols"),
        (torch.zeros(0, 10, dtype=torch.long), "no time steps"),
        ("0000000000", "torch.Tensor"),
    ],
)
def test_bad_observations(obs, message):
    with pytest.raises(ValueError, match=message):
        StripWorld().check_obs(obs)
