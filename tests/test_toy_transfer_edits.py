"""``set_concept``: the invertible identifier, checked against the other model's predictions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pyro_latent.toy import LocalStateModel, ObjectCentricModel, StripWorld
from pyro_latent.toy.concepts import get_concept
from pyro_latent.toy.edits import (
    edit_agreement,
    matching_latents,
    predicted_observations,
    set_concept,
)
from pyro_latent.toy.transfer.exact import smallest_invertible_window

EDITABLE = ("blue_velocity", "red_location", "blue_location")


def expected_changing_edits(world, name):
    """Independent count of the (state, value) pairs whose edit is valid and not a no-op."""
    n, count = world.n_cells, 0
    for b, _r, v in world.valid_states().tolist():
        if name == "blue_velocity":
            count += b not in (0, n - 2)  # the flip is valid away from the walls
        elif name == "red_location":
            count += n - 1
        else:  # blue_location: every other left cell the pair may sit at with its velocity
            count += sum(
                1
                for b2 in range(n - 1)
                if b2 != b and not (b2 == 0 and v == 0) and not (b2 == n - 2 and v == 1)
            )
    return count


@pytest.fixture(scope="module")
def six():
    world = StripWorld(6)
    return world, ObjectCentricModel(world), LocalStateModel(world)


@pytest.mark.parametrize("name", EDITABLE)
def test_edits_agree_across_models_on_every_state(six, name):
    world, m1, m2 = six
    steps = smallest_invertible_window(m1, m2) - 1
    result = edit_agreement(m1, m2, name, steps)
    # edits counts only edits that change the latent; each state has one no-op value
    assert result.edits == expected_changing_edits(world, name)
    assert result.unchanged == world.n_states
    assert result.disagreements == 0 and result.one_sided == 0
    assert result.same_latent == result.edits
    # With as many future frames as the invertible window, model 1's search over its own
    # states finds exactly the edited state and nothing else.
    assert result.unique_match == result.edits
    assert result.hidden_red_ambiguous == 0
    total = world.n_states * get_concept(name, world).n_values(world)
    assert result.edits + result.unchanged + result.impossible + result.one_sided == total


def test_short_predictions_are_ambiguous_only_where_red_hides(six):
    world, m1, m2 = six
    result = edit_agreement(m1, m2, "red_location", 1)
    assert result.unique_match < result.edits
    assert result.hidden_red_ambiguous == result.edits - result.unique_match


def test_no_single_cell_change_is_a_valid_state(six):
    # Why cell_k is not invertible: every change of one cell's code leaves the support.
    world, m1, m2 = six
    cells = world.to_local(world.valid_states())
    for k in range(world.n_cells):
        for code in range(6):
            edited = cells.clone()
            edited[:, k] = code
            changed = edited[:, k] != cells[:, k]
            for row in edited[changed]:
                with pytest.raises(ValueError):
                    world.from_local(row)
    for name in ("cell_0", "cell_3"):
        with pytest.raises(ValueError, match=f"{name} is not an invertible identifier"):
            set_concept(m2, cells[0], name, int(cells[0, int(name[-1])]))
        with pytest.raises(ValueError, match=f"{name} is not an invertible identifier"):
            edit_agreement(m1, m2, name, 2)


def test_value_types(six):
    world, m1, m2 = six
    state = torch.tensor([3, 1, 1])
    expected = torch.tensor([3, 1, 0])
    for value in (0, np.int64(0), np.int32(0), torch.tensor(0)):
        assert torch.equal(set_concept(m1, state, "blue_velocity", value), expected)
    for value in (True, np.bool_(False), 0.0, torch.tensor(0.0), torch.tensor([0]), "0"):
        with pytest.raises(ValueError, match="blue_velocity takes values 0..1"):
            set_concept(m1, state, "blue_velocity", value)


def test_float_latents_are_rejected(six):
    world, m1, m2 = six
    cells = world.to_local(torch.tensor([2, 2, 1]))
    with pytest.raises(ValueError, match="integer dtype"):
        set_concept(m2, cells.double() + 0.5, "blue_velocity", 1)
    with pytest.raises(ValueError, match="integer dtype"):
        set_concept(m2, cells.double(), "blue_velocity", 1)
    with pytest.raises(ValueError, match="integer dtype"):
        set_concept(m1, torch.tensor([2.0, 2.0, 1.0]), "blue_velocity", 1)


def test_edits_agree_under_noise():
    world = StripWorld(5)
    m1, m2 = ObjectCentricModel(world, 0.2), LocalStateModel(world, 0.2)
    result = edit_agreement(m1, m2, "blue_velocity", 3)
    assert result.disagreements == 0 and result.edits > 0


def test_flipping_blue_velocity_in_model2_changes_nothing_else(six):
    world, m1, m2 = six
    cells = world.to_local(torch.tensor([2, 2, 1]))  # red under the left blue cell, moving right
    assert cells.tolist() == [0, 0, 5, 4, 0, 0]
    flipped = set_concept(m2, cells, "blue_velocity", 0)
    assert flipped.tolist() == [0, 0, 3, 2, 0, 0]
    for name in ("red_location", "blue_location", "red_hidden"):
        concept = get_concept(name)
        assert concept(m2, flipped) == concept(m2, cells)
    assert torch.equal(
        world.to_local(set_concept(m1, torch.tensor([2, 2, 1]), "blue_velocity", 0)), flipped
    )


def test_a_single_frame_does_not_determine_the_edit(six):
    world, m1, m2 = six
    cells = world.to_local(torch.tensor([2, 2, 1]))
    # Predicting only the current frame, red under the pair could be either blue cell.
    assert len(matching_latents(m2, cells, m1, 0)) > 1
    p = predicted_observations(m2, cells, 2)
    assert p.shape == (3, 6, 3)


def test_impossible_edits_raise_clear_errors(six):
    world, m1, m2 = six
    at_left_wall = torch.tensor([0, 3, 1])
    with pytest.raises(ValueError, match="cannot set blue_velocity=0 \\(left\\).*into the wall"):
        set_concept(m1, at_left_wall, "blue_velocity", 0)
    with pytest.raises(ValueError, match="cannot set blue_velocity=0 \\(left\\).*into the wall"):
        set_concept(m2, world.to_local(at_left_wall), "blue_velocity", 0)
    with pytest.raises(ValueError, match="cannot set blue_location=4"):
        set_concept(m1, torch.tensor([2, 0, 1]), "blue_location", 4)  # at b = n-2, pointing right
    with pytest.raises(ValueError, match="cannot set blue_location=0.*into the wall"):
        set_concept(m2, world.to_local(torch.tensor([2, 4, 0])), "blue_location", 0)
    with pytest.raises(ValueError, match="red_hidden is not an invertible identifier"):
        set_concept(m2, world.to_local(at_left_wall), "red_hidden", 1)
    with pytest.raises(ValueError, match="takes values 0..5"):
        set_concept(m1, at_left_wall, "red_location", 6)
    with pytest.raises(ValueError, match="available: blue_velocity"):
        set_concept(m1, at_left_wall, "speed", 1)
    with pytest.raises(ValueError, match="points into the wall"):
        set_concept(m1, torch.tensor([0, 3, 0]), "red_location", 1)  # invalid input latent


def test_batched_edit(six):
    world, m1, m2 = six
    states = world.valid_states()
    moved = set_concept(m1, states, "red_location", 4)
    assert bool((moved[:, 1] == 4).all())
    assert torch.equal(moved[:, [0, 2]], states[:, [0, 2]])
