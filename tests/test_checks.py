"""The shared validators: one rule per kind of argument, wherever it is passed."""

import numpy as np
import pytest
import torch

from pyro_latent.core.checks import (
    as_int,
    check_image_tensor,
    check_int,
    check_long_tensor,
    check_nonnegative_int,
    check_positive_int,
    check_positive_ints,
    check_probability,
)


@pytest.mark.parametrize("value", [3, np.int64(3), np.int8(3), torch.tensor(3)])
def test_integer_scalars_of_every_kind_are_ints(value):
    assert check_positive_int(value, "n") == 3 and type(check_positive_int(value, "n")) is int


@pytest.mark.parametrize(
    "value", [0, -1, True, np.bool_(True), 3.0, np.float64(3), "3", None, torch.tensor([3])]
)
def test_non_positive_or_non_integer_values_are_refused(value):
    with pytest.raises(ValueError, match=r"window must be a positive int, got"):
        check_positive_int(value, "window")


def test_nonnegative_and_bounded_ints():
    assert check_nonnegative_int(np.int32(0), "seed") == 0
    with pytest.raises(ValueError, match="seed must be a non-negative int, got -1"):
        check_nonnegative_int(-1, "seed")
    assert check_int(4, "n_cells", minimum=4) == 4
    with pytest.raises(ValueError, match="n_cells must be at least 4, got 3"):
        check_int(3, "n_cells", minimum=4)
    with pytest.raises(ValueError, match="k must be at most 9, got 10"):
        check_int(10, "k", maximum=9)
    assert as_int(False) is None and as_int(2.0) is None and as_int(np.uint8(7)) == 7


def test_lists_of_positive_ints_are_sorted_and_deduplicated():
    assert check_positive_ints([100, np.int64(10), 10], "sizes") == [10, 100]
    for bad in ([], "10", [10, 0], [10, 2.5], 7):
        with pytest.raises(ValueError, match="sizes"):
            check_positive_ints(bad, "sizes")


def test_probabilities():
    assert check_probability(np.float32(0.25), "eps") == 0.25
    assert check_probability(1, "p") == 1.0
    with pytest.raises(ValueError, match=r"obs_noise must be in \[0, 1\)"):
        check_probability(1.0, "obs_noise", include_high=False)
    for bad in (float("nan"), -0.1, 1.5, "0.1", None, True):
        with pytest.raises(ValueError, match="eps"):
            check_probability(bad, "eps")


def test_integer_tensors():
    out = check_long_tensor(np.array([[0, 2], [1, 1]], dtype=np.int16), "obs")
    assert out.dtype == torch.long and out.tolist() == [[0, 2], [1, 1]]
    for bad, message in (
        (torch.tensor([0.0, 1.0]), "integer dtype"),
        (torch.tensor([True]), "integer dtype"),
        (object(), "integer tensor"),
    ):
        with pytest.raises(ValueError, match=message):
            check_long_tensor(bad, "obs")


def test_image_tensors():
    images = torch.rand(2, 784)
    assert check_image_tensor(images) is images
    assert check_image_tensor(torch.empty(0, 784), allow_empty=True).numel() == 0
    for bad, message in (
        (torch.empty(0, 784), "empty"),
        (torch.full((2, 3), float("nan")), "NaN"),
        (torch.rand(2, 3) + 1, r"\[0, 1\]"),
        (torch.ones(2, 3, dtype=torch.uint8), "255"),
        (np.zeros((2, 3)), "torch.Tensor"),
    ):
        with pytest.raises(ValueError, match=message):
            check_image_tensor(bad)


def test_public_counts_agree_on_numpy_ints_and_bools():
    """The issue's example: one validator, so every count accepts numpy ints and refuses bools."""
    from pyro_latent.toy import LocalStateModel, ObjectCentricModel, StripWorld
    from pyro_latent.toy.transfer import monte_carlo_translation, translation_matrix

    world = StripWorld(4)
    m1, m2 = ObjectCentricModel(world), LocalStateModel(world)
    assert torch.equal(translation_matrix(m1, m2, np.int64(3)), translation_matrix(m1, m2, 3))
    draws = monte_carlo_translation(m1, m2, 2, n_samples=np.int64(3)).samples
    assert draws.shape == (3, world.n_states)
    for call in (
        lambda: translation_matrix(m1, m2, True),
        lambda: monte_carlo_translation(m1, m2, 2, n_samples=True),
        lambda: translation_matrix(m1, m2, 2.0),
    ):
        with pytest.raises(ValueError, match="must be a positive int"):
            call()


def test_one_atomic_writer_keeps_the_old_file_when_writing_fails(tmp_path):
    """The study's records and the checkpoints share one writer: fsynced, all or nothing."""
    from pyro_latent.core.files import atomic_write, write_atomically

    path = atomic_write(tmp_path / "sub" / "record.json", "{}\n")
    assert path.read_text() == "{}\n"

    def half_then_fail(f):
        f.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_atomically(path, half_then_fail)
    assert path.read_text() == "{}\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["record.json"]  # no temporary left
