r"""Concept meters for FashionMNIST shoes: height and brightness, measured on pixels.

The post judged its shoe-height and brightness directions by eye.  These meters put a number on
each decoded image instead, so a traversal ``x(α) = decode(z + α d)`` becomes two curves.

For an image ``x ∈ [0, 1]^{28×28}`` and a threshold ``θ``, the **mask** is ``m_ij = [x_ij > θ]``
and row ``i`` is *occupied* when ``r_i = max_j m_ij = 1``.

* **Height** is the number of rows the shape spans, from its topmost to its bottommost occupied
  row: ``h(x) = i_max - i_min + 1``.  Written with the running "occupied at or above" and "at or
  below" indicators ``a_i = max_{k ≤ i} r_k`` and ``b_i = max_{k ≥ i} r_k``, it is
  ``h(x) = Σ_i a_i b_i``: a row counts when there is shape both above-or-at and below-or-at it.
* **Brightness** is the mean intensity over the mask: ``β(x) = Σ_ij x_ij m_ij / Σ_ij m_ij``.

**Differentiable versions** replace the indicator by a logistic soft mask
``m̃_ij = σ((x_ij - θ) / τ)`` and each ``max`` by a noisy-or, ``1 - Π (1 - ·)``:

.. math::

    \tilde r_i = 1 - \prod_j (1 - \tilde m_{ij}), \quad
    \tilde a_i = 1 - \prod_{k \le i} (1 - \tilde r_k), \quad
    \tilde b_i = 1 - \prod_{k \ge i} (1 - \tilde r_k), \quad
    \tilde h = \sum_i \tilde a_i \tilde b_i, \qquad
    \tilde β = \frac{\sum x \tilde m}{\sum \tilde m}.

On a binary image the soft and hard meters agree as ``τ → 0`` (the tests check this), and for
``τ > 0`` they have useful gradients with respect to the pixels, so gradient methods can use them.

A shape more than :data:`MAX_SHOE_ASPECT` times taller than wide is not a shoe (every
FashionMNIST shoe is under it) and the meters refuse it (:class:`NotAShoeError`), unless asked
with ``shoe_only=False``, as the traversals do for decoded frames that leave the shoes.

The post's two-image construction of the height direction uses :func:`whiten` (round every pixel
to 0 or 1) and :func:`taller_shoe` (extend the topmost pixel of each column upward by two pixels).

**Purity** of a direction (seed 004's "concept purity") compares how much height and brightness
change along it, each standardised by its spread over real shoes, over the stretch of the
traversal where height is monotone: ``|Δh/s_h| / (|Δh/s_h| + |Δβ/s_β|)``
(:func:`concept_purity`).  1 is pure height, 0 pure brightness.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from pyro_latent.core.checks import (
    check_image_tensor,
    check_nonnegative_int,
    check_positive_int,
    check_probability,
)

__all__ = [
    "IMAGE_SIDE",
    "MAX_SHOE_ASPECT",
    "EmptyShapeError",
    "NotAShoeError",
    "as_image_grid",
    "concept_purity",
    "measure_shoes",
    "monotone_stretch",
    "shoe_brightness",
    "shoe_height",
    "soft_shoe_brightness",
    "soft_shoe_height",
    "taller_shoe",
    "whiten",
]

IMAGE_SIDE = 28
HEIGHT_THRESHOLD = 0.5
BRIGHTNESS_THRESHOLD = 0.2


class EmptyShapeError(ValueError):
    """An image with no pixel above the meter's threshold: it has no shape to measure."""


class NotAShoeError(EmptyShapeError):
    """A shape far taller than wide (over :data:`MAX_SHOE_ASPECT` : 1): no shoe to measure."""


MAX_SHOE_ASPECT = 2.0
"""Every shoe of the FashionMNIST test set spans at most 1.9 times as many rows as columns (pixels
over 0.5); trousers have a median of 2.55 and dresses of 1.93."""


def _require_shoe_like(grid: torch.Tensor) -> None:
    """Refuse shapes taller than :data:`MAX_SHOE_ASPECT` times their width (pixels over 0.5)."""
    on = grid.detach() > HEIGHT_THRESHOLD
    index = torch.arange(IMAGE_SIDE)

    def span(occupied):
        first = torch.where(occupied, index, IMAGE_SIDE).amin(-1)
        last = torch.where(occupied, index, -1).amax(-1)
        return (last - first + 1).clamp(min=0)

    rows, columns = span(on.any(-1)), span(on.any(-2))
    tall = (columns > 0) & (rows > MAX_SHOE_ASPECT * columns)
    if bool(tall.any()):
        i = int(tall.nonzero()[0])
        raise NotAShoeError(
            f"image {i} is not a shoe: its shape is {int(rows[i])} rows tall and {int(columns[i])} "
            f"columns wide, more than {MAX_SHOE_ASPECT:g} times taller than wide (every "
            "FashionMNIST shoe is under that); pass shoe_only=False to measure it anyway"
        )


def as_image_grid(images, name: str = "images") -> torch.Tensor:
    """``images`` as a float tensor ``[N, 28, 28]``.

    Accepts one image ``[28, 28]`` or ``[784]`` and batches ``[N, 28, 28]`` or ``[N, 784]``, with
    values in ``[0, 1]``; anything else (another shape, NaN, values outside ``[0, 1]``, an empty
    batch, a non-tensor) is a ``ValueError`` that names the problem.
    """
    images = check_image_tensor(images, name)
    side, pixels = IMAGE_SIDE, IMAGE_SIDE * IMAGE_SIDE
    shape = tuple(images.shape)
    if shape in ((side, side), (pixels,)):
        return images.reshape(1, side, side).float()
    if images.dim() == 3 and shape[1:] == (side, side):
        return images.float()
    if images.dim() == 2 and shape[1] == pixels:
        return images.reshape(-1, side, side).float()
    raise ValueError(
        f"{name} must be one 28×28 image ([28, 28] or [784]) or a batch ([N, 28, 28] or "
        f"[N, 784]), got shape {shape}"
    )


def _check_threshold(threshold) -> float:
    return check_probability(threshold, "threshold", low=0.0, high=1.0, include_high=False)


def _require_shapes(mask: torch.Tensor, threshold: float) -> None:
    empty = ~mask.flatten(1).any(-1)
    if bool(empty.any()):
        index = int(empty.nonzero()[0])
        raise EmptyShapeError(
            f"image {index} has no pixel above threshold {threshold:g}: there is no shape to "
            "measure (an all-black or empty image)"
        )


def _single(values: torch.Tensor, images) -> torch.Tensor:
    """Drop the batch dimension again for a single image."""
    shape = tuple(torch.as_tensor(images).shape)
    return values[0] if shape in ((IMAGE_SIDE, IMAGE_SIDE), (IMAGE_SIDE * IMAGE_SIDE,)) else values


def shoe_height(
    images, threshold: float = HEIGHT_THRESHOLD, *, shoe_only: bool = True
) -> torch.Tensor:
    """Rows spanned by the pixels above ``threshold``, ``i_max - i_min + 1`` (long; ``[N]`` for a
    batch, a scalar for one image).  An image with no such pixel is an :class:`EmptyShapeError`."""
    grid = as_image_grid(images)
    threshold = _check_threshold(threshold)
    occupied = (grid > threshold).any(-1)  # [N, 28]
    _require_shapes(occupied, threshold)
    if shoe_only:
        _require_shoe_like(grid)
    rows = torch.arange(IMAGE_SIDE)
    top = torch.where(occupied, rows, IMAGE_SIDE).amin(-1)
    bottom = torch.where(occupied, rows, -1).amax(-1)
    return _single(bottom - top + 1, images)


def shoe_brightness(
    images, threshold: float = BRIGHTNESS_THRESHOLD, *, shoe_only: bool = True
) -> torch.Tensor:
    """Mean intensity over the mask ``x > threshold`` (``[N]`` or a scalar); an image with an
    empty mask is an :class:`EmptyShapeError`."""
    grid = as_image_grid(images)
    threshold = _check_threshold(threshold)
    mask = grid > threshold
    _require_shapes(mask, threshold)
    if shoe_only:
        _require_shoe_like(grid)
    values = (grid * mask).flatten(1).sum(-1) / mask.flatten(1).sum(-1)
    return _single(values, images)


def measure_shoes(images, *, empty: float = math.nan, shoe_only: bool = False) -> dict:
    """Height (:func:`shoe_height`) and brightness (:func:`shoe_brightness`) of every image,
    as ``{"height": [N], "brightness": [N]}`` (float64 numpy).

    An image with no pixel above :data:`HEIGHT_THRESHOLD` has nothing to measure: it gets
    ``empty`` for both (NaN by default; a traversal counts a vanished shoe as 0) instead of an
    :class:`EmptyShapeError`.  ``shoe_only`` is passed to both meters."""
    grid = as_image_grid(images)
    if not isinstance(empty, int | float):
        raise ValueError(f"empty must be a number (NaN allowed), got {empty!r}")
    height = np.full(grid.shape[0], float(empty))
    brightness = np.full(grid.shape[0], float(empty))
    ok = (grid > HEIGHT_THRESHOLD).flatten(1).any(-1)
    if bool(ok.any()):
        # one batched call per meter: each image's value is the same as measured alone
        height[ok.numpy()] = shoe_height(grid[ok], shoe_only=shoe_only).double().numpy()
        brightness[ok.numpy()] = shoe_brightness(grid[ok], shoe_only=shoe_only).double().numpy()
    return {"height": height, "brightness": brightness}


def _check_temperature(temperature) -> float:
    value = float(temperature) if isinstance(temperature, int | float) else math.nan
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")
    return value


def _soft_mask(images, threshold, temperature, shoe_only: bool):
    """The checked ``[N, 28, 28]`` grid and its logistic mask ``σ((x - θ) / τ)``; the hard mask
    must hold a shape (and a shoe-like one with ``shoe_only``), as for the hard meters."""
    grid = as_image_grid(images)
    threshold = _check_threshold(threshold)
    temperature = _check_temperature(temperature)
    _require_shapes(grid.detach() > threshold, threshold)
    if shoe_only:
        _require_shoe_like(grid)
    return grid, torch.sigmoid((grid - threshold) / temperature)


def soft_shoe_height(
    images,
    threshold: float = HEIGHT_THRESHOLD,
    temperature: float = 0.05,
    *,
    shoe_only: bool = True,
) -> torch.Tensor:
    """The differentiable height ``Σ_i ã_i b̃_i`` of the module docstring (float, ``[N]`` or a
    scalar).  Gradients flow to ``images``; it tends to :func:`shoe_height` as the
    ``temperature`` of the soft mask goes to 0."""
    _, mask = _soft_mask(images, threshold, temperature, shoe_only)
    empty_row = torch.prod(1 - mask, -1)  # [N, 28]: 1 - r̃_i
    above = 1 - torch.cumprod(empty_row, -1)  # ã_i
    below = 1 - torch.cumprod(empty_row.flip(-1), -1).flip(-1)  # b̃_i
    return _single((above * below).sum(-1), images)


def soft_shoe_brightness(
    images,
    threshold: float = BRIGHTNESS_THRESHOLD,
    temperature: float = 0.05,
    *,
    shoe_only: bool = True,
) -> torch.Tensor:
    """The differentiable brightness ``Σ x m̃ / Σ m̃`` (float, ``[N]`` or a scalar).  As for the
    hard meters, an image with no pixel above ``threshold`` is an :class:`EmptyShapeError`."""
    grid, mask = _soft_mask(images, threshold, temperature, shoe_only)
    weight = mask.flatten(1).sum(-1)
    return _single((grid * mask).flatten(1).sum(-1) / weight, images)


def whiten(images, threshold: float = HEIGHT_THRESHOLD) -> torch.Tensor:
    """Round every pixel to 0 or 1 (``x > threshold``), keeping the input's shape."""
    grid = as_image_grid(images)
    threshold = _check_threshold(threshold)
    return (grid > threshold).float().reshape(torch.as_tensor(images).shape)


def taller_shoe(images, pixels: int = 2, threshold: float = HEIGHT_THRESHOLD) -> torch.Tensor:
    """The post's taller shoe: in every column, the ``pixels`` pixels above the topmost pixel
    over ``threshold`` are set to 1 (clipped at the top edge).  Other pixels are unchanged, so a
    whitened shoe whose top row is below row ``pixels`` grows by exactly ``pixels`` rows."""
    grid = as_image_grid(images)
    threshold = _check_threshold(threshold)
    pixels = check_positive_int(pixels, "pixels")
    on = grid > threshold  # [N, 28, 28] (row, column)
    _require_shapes(on, threshold)
    rows = torch.arange(IMAGE_SIDE).view(1, -1, 1)
    top = torch.where(on, rows, IMAGE_SIDE).amin(1, keepdim=True)  # [N, 1, 28]; 28: empty column
    grow = (rows < top) & (rows >= top - pixels) & (top < IMAGE_SIDE)
    return grid.masked_fill(grow, 1.0).reshape(torch.as_tensor(images).shape)


def monotone_stretch(values, centre: int) -> tuple[int, int]:
    """The longest index range ``[lo, hi]`` around ``centre`` over which ``values`` is monotone
    (all steps ``≥ 0`` or all ``≤ 0``; flat steps are allowed either way).

    Both directions are tried and the longer range is returned (ties: non-decreasing).  ``values``
    is a 1-D sequence of finite numbers, ``centre`` an index into it.
    """
    values = torch.as_tensor(values, dtype=torch.float64)
    if values.dim() != 1 or values.numel() < 2:
        raise ValueError(f"values must be a 1-D sequence of ≥ 2 numbers, got {tuple(values.shape)}")
    if not bool(torch.isfinite(values).all()):
        raise ValueError("values must be finite")
    n = values.numel()
    centre = check_nonnegative_int(centre, "centre")
    if centre >= n:
        raise ValueError(f"centre must index values (0..{n - 1}), got {centre}")
    steps = values.diff()
    best = (centre, centre)
    for sign in (1, -1):
        ok = (sign * steps) >= 0
        lo = centre
        while lo > 0 and bool(ok[lo - 1]):
            lo -= 1
        hi = centre
        while hi < n - 1 and bool(ok[hi]):
            hi += 1
        if hi - lo > best[1] - best[0]:
            best = (lo, hi)
    return best


def concept_purity(
    heights, brightness, centre: int, height_spread: float, brightness_spread: float
) -> dict:
    """Purity of a traversal for height: ``|Δh/s_h| / (|Δh/s_h| + |Δβ/s_β|)`` over the stretch
    where height is monotone (:func:`monotone_stretch` around ``centre``, the index of ``α = 0``).

    ``height_spread`` and ``brightness_spread`` (``s_h``, ``s_β``) are the standard deviations
    of the meters over real test shoes.  Returns ``{"purity", "height_change",
    "brightness_change", "lo", "hi"}`` with the standardised changes; ``purity`` is ``None`` when
    neither meter changes over the stretch (nothing to apportion).
    """
    heights = torch.as_tensor(heights, dtype=torch.float64)
    brightness = torch.as_tensor(brightness, dtype=torch.float64)
    if heights.shape != brightness.shape:
        raise ValueError(
            f"heights and brightness must be measured at the same α values, got shapes "
            f"{tuple(heights.shape)} and {tuple(brightness.shape)}"
        )
    if not bool(torch.isfinite(brightness).all()):
        raise ValueError("brightness must be finite")
    for name, spread in (
        ("height_spread", height_spread),
        ("brightness_spread", brightness_spread),
    ):
        if not (isinstance(spread, int | float) and math.isfinite(spread) and spread > 0):
            raise ValueError(f"{name} must be a positive number, got {spread!r}")
    lo, hi = monotone_stretch(heights, centre)
    dh = abs(float(heights[hi] - heights[lo])) / height_spread
    db = abs(float(brightness[hi] - brightness[lo])) / brightness_spread
    purity = None if dh + db == 0 else dh / (dh + db)
    return {"purity": purity, "height_change": dh, "brightness_change": db, "lo": lo, "hi": hi}
