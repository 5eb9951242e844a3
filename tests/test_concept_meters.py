"""Shoe meters on synthetic shapes whose height and brightness are known by construction."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pyro_latent.concepts.shoes import (
    EmptyShapeError,
    NotAShoeError,
    concept_purity,
    monotone_stretch,
    shoe_brightness,
    shoe_height,
    soft_shoe_brightness,
    soft_shoe_height,
    taller_shoe,
    whiten,
)


def box(top: int, bottom: int, left: int, right: int, value: float = 1.0) -> torch.Tensor:
    """A 28×28 image with a filled rectangle, rows ``top..bottom`` inclusive."""
    image = torch.zeros(28, 28)
    image[top : bottom + 1, left : right + 1] = value
    return image


def test_height_counts_the_rows_spanned():
    assert int(shoe_height(box(10, 19, 3, 20))) == 10
    assert int(shoe_height(box(0, 27, 0, 0), shoe_only=False)) == 28  # a column, not a shoe
    gap = box(5, 6, 0, 27) + box(20, 20, 4, 5)  # an empty band inside still counts
    assert int(shoe_height(gap)) == 16
    batch = torch.stack([box(10, 19, 3, 20), box(2, 3, 3, 20)]).reshape(2, 784)
    assert shoe_height(batch).tolist() == [10, 2]


def test_brightness_is_the_mean_over_the_mask():
    half = box(10, 19, 3, 20, value=0.5)
    assert float(shoe_brightness(half)) == pytest.approx(0.5)
    two_tone = box(10, 14, 3, 20, value=0.4) + box(15, 19, 3, 20, value=0.8)
    assert float(shoe_brightness(two_tone)) == pytest.approx(0.6)
    faint = box(10, 19, 3, 20, value=0.1)  # below the mask threshold: no shape at all
    with pytest.raises(EmptyShapeError, match="no pixel above threshold"):
        shoe_brightness(faint)


@pytest.mark.parametrize("image", [box(10, 19, 3, 20), box(0, 3, 0, 27), box(7, 7, 9, 9)])
def test_soft_meters_tend_to_the_hard_ones(image):
    soft = soft_shoe_height(image, temperature=1e-3)
    assert float(soft) == pytest.approx(float(shoe_height(image)), abs=1e-3)
    dim = image * 0.7
    soft_b = soft_shoe_brightness(dim, temperature=1e-3)
    assert float(soft_b) == pytest.approx(float(shoe_brightness(dim)), abs=1e-3)


def test_soft_height_has_a_gradient_that_grows_the_shape_upward():
    image = box(10, 19, 3, 20, value=1.0) * 0.95
    image[9, 3:21] = 0.4  # a faint row just above the top: brightening it raises the height
    image.requires_grad_(True)
    soft_shoe_height(image, temperature=0.1).backward()
    assert float(image.grad[9, 3:21].sum()) > 0
    assert torch.isfinite(image.grad).all()


def test_whiten_and_the_taller_shoe():
    shoe = box(10, 19, 3, 20, value=0.8)
    shoe[15:20, 21:25] = 0.9  # a heel: its columns start lower
    white = whiten(shoe)
    assert set(white.unique().tolist()) == {0.0, 1.0}
    tall = taller_shoe(white)
    assert int(shoe_height(tall)) == int(shoe_height(white)) + 2
    # each column's top moved up by two pixels and nothing below it changed
    assert torch.equal(tall[8:10, 3:21], torch.ones(2, 18))
    assert torch.equal(tall[13:15, 21:25], torch.ones(2, 4))
    assert torch.equal(tall[10:], white[10:].maximum(tall[10:])) and tall[:8].sum() == 0
    edge = taller_shoe(box(0, 5, 0, 3))  # clipped at the top edge
    assert torch.equal(edge, box(0, 5, 0, 3))


@pytest.mark.parametrize(
    "bad, message",
    [
        (torch.zeros(28, 28), "no pixel above threshold"),
        (torch.full((28, 28), float("nan")), "NaN"),
        (torch.rand(28, 28) * 2, r"\[0, 1\]"),
        (torch.rand(27, 28), "shape"),
        (torch.rand(3, 700), "shape"),
        ((torch.rand(28, 28) * 255).to(torch.uint8), "divide uint8"),
        ([[0.5] * 28] * 28, "torch.Tensor"),
        (torch.empty(0, 784), "empty"),
    ],
)
def test_bad_images_get_clear_errors(bad, message):
    for meter in (shoe_height, shoe_brightness, soft_shoe_height, taller_shoe):
        with pytest.raises(ValueError, match=message):
            meter(bad)


def test_bad_parameters_get_clear_errors():
    image = box(10, 19, 3, 20)
    with pytest.raises(ValueError, match="threshold"):
        shoe_height(image, threshold=1.0)
    with pytest.raises(ValueError, match="temperature"):
        soft_shoe_height(image, temperature=0)
    with pytest.raises(ValueError, match="pixels"):
        taller_shoe(image, pixels=0)


def test_monotone_stretch():
    assert monotone_stretch([3, 2, 2, 4, 5, 6, 5], centre=3) == (1, 5)
    assert monotone_stretch([5, 4, 3, 2, 1], centre=2) == (0, 4)
    assert monotone_stretch([1, 0, 1, 0], centre=1) == (1, 2)  # a tie: non-decreasing
    with pytest.raises(ValueError, match="centre"):
        monotone_stretch([1, 2], centre=2)
    with pytest.raises(ValueError, match="finite"):
        monotone_stretch([1, float("nan")], centre=0)


def test_concept_purity():
    heights = [10, 11, 12, 13, 12]  # monotone over indices 0..3
    brightness = [0.5, 0.5, 0.6, 0.7, 0.9]
    out = concept_purity(heights, brightness, centre=1, height_spread=1.5, brightness_spread=0.1)
    assert (out["lo"], out["hi"]) == (0, 3)
    assert out["height_change"] == pytest.approx(2.0)
    assert out["brightness_change"] == pytest.approx(2.0)
    assert out["purity"] == pytest.approx(0.5)
    pure = concept_purity([1, 2, 3], [0.5] * 3, centre=0, height_spread=1, brightness_spread=1)
    assert pure["purity"] == 1.0
    flat = concept_purity([3, 3, 3], [0.5] * 3, centre=1, height_spread=1, brightness_spread=1)
    assert flat["purity"] is None
    with pytest.raises(ValueError, match="same α"):
        concept_purity([1, 2], [0.5], centre=0, height_spread=1, brightness_spread=1)
    with pytest.raises(ValueError, match="brightness_spread"):
        concept_purity([1, 2], [0.5, 0.6], centre=0, height_spread=1, brightness_spread=0)


def test_a_shape_far_taller_than_wide_is_not_a_shoe():
    bar = box(2, 25, 12, 14)  # 24 rows, 3 columns: a trouser leg, not a shoe
    for meter in (shoe_height, shoe_brightness, soft_shoe_height, soft_shoe_brightness):
        with pytest.raises(NotAShoeError, match="not a shoe: its shape is 24 rows tall and 3"):
            meter(bar)
    assert int(shoe_height(bar, shoe_only=False)) == 24
    assert float(shoe_brightness(bar, shoe_only=False)) == pytest.approx(1.0)
    boot = box(8, 27, 4, 13)  # 20 rows by 10 columns: as tall as an ankle boot gets
    assert int(shoe_height(boot)) == 20


def test_measure_shoes_is_each_meter_image_by_image_and_marks_empty_ones():
    """The one measuring helper against the batch meters on the measurable images."""
    from pyro_latent.concepts.shoes import measure_shoes

    g = torch.Generator().manual_seed(0)
    images = torch.rand(60, 784, generator=g) ** 3
    images[::7] *= 0.4  # nothing above the height threshold: nothing to measure
    ok = (images > 0.5).any(-1)
    assert 0 < int((~ok).sum()) < 60
    measured = measure_shoes(images)
    height = shoe_height(images[ok], shoe_only=False).double().numpy()
    brightness = shoe_brightness(images[ok], shoe_only=False).double().numpy()
    np.testing.assert_array_equal(measured["height"][ok.numpy()], height)
    np.testing.assert_array_equal(measured["brightness"][ok.numpy()], brightness)
    assert np.isnan(measured["height"][~ok.numpy()]).all()
    zero = measure_shoes(images.reshape(60, 28, 28), empty=0.0)
    assert (zero["brightness"][~ok.numpy()] == 0).all()
    with pytest.raises(ValueError, match="empty must be a number"):
        measure_shoes(images, empty="nan")
