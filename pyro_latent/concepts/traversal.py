r"""Traversals along concept directions, measured with the shoe meters.

A traversal decodes ``x(α) = g(z₀ + α d)`` for a grid of ``α`` around 0 and records the meters
``h(α) = height(x(α))`` and ``β(α) = brightness(x(α))`` (:func:`traverse`).  From the two curves:

* the **monotone stretch** ``[α_lo, α_hi]`` around ``α = 0`` over which height is monotone;
* the **height gain per unit** ``(h(α_hi) - h(α_lo)) / (α_hi - α_lo)`` (rows per latent unit) and
  the **brightness leakage per unit**, the same slope of ``β``;
* the **purity** ``|Δh/s_h| / (|Δh/s_h| + |Δβ/s_β|)`` over that stretch, with ``s_h``, ``s_β`` the
  spreads of the meters over real test shoes (:func:`~pyro_latent.concepts.shoes.concept_purity`).

The study's tables and verdicts over many traversals live in
:mod:`pyro_latent.study.shoe_concepts`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from pyro_latent.concepts.shoes import concept_purity, measure_shoes
from pyro_latent.core.checks import check_image_tensor
from pyro_latent.core.latent_model import decoder_of

__all__ = [
    "meter_spreads",
    "purity_by_distance",
    "record_from_images",
    "traversal_record",
    "traverse",
]


def traverse(decode, z0, direction, alphas) -> torch.Tensor:
    """Decoded images ``[A, 784]`` (on the CPU) at ``z₀ + α d`` for each ``α`` in ``alphas`` (no
    gradients); ``decode`` is a :class:`~pyro_latent.core.latent_model.LatentModel` or its
    ``decode``."""
    decode = decoder_of(decode)
    z0 = torch.as_tensor(z0)
    direction = torch.as_tensor(direction, dtype=z0.dtype)
    alphas = torch.as_tensor(alphas, dtype=z0.dtype)
    if z0.dim() != 1 or direction.shape != z0.shape:
        raise ValueError(
            f"z0 and direction must be latents [D] of one size, got {tuple(z0.shape)} and "
            f"{tuple(direction.shape)}"
        )
    if alphas.dim() != 1 or alphas.numel() < 2 or not bool(torch.isfinite(alphas).all()):
        raise ValueError("alphas must be ≥ 2 finite numbers")
    with torch.no_grad():
        return decode(z0 + alphas[:, None] * direction).cpu()  # the meters run on the CPU


def _measure(images: torch.Tensor) -> tuple[list[float], list[float]]:
    """Height and brightness of each decoded image; an empty decode counts as height 0 and
    brightness 0 (the shoe has vanished), so one blank frame does not stop a traversal.  A
    traversal may leave the shoes: its frames are measured as shapes all the same."""
    measured = measure_shoes(images, empty=0.0)
    return measured["height"].tolist(), measured["brightness"].tolist()


def meter_spreads(images: torch.Tensor) -> dict:
    """Standard deviations of height and brightness over real images ``[N, 784]``: the units in
    which purity compares the two (``{"height", "brightness", "n"}``).

    ``images`` must be a batch of at least 2 shoes (``[N, 784]`` or ``[N, 28, 28]``) of pixel
    intensities in ``[0, 1]``: a ``ValueError`` otherwise (one image has no spread).
    """
    check_image_tensor(images, "images")
    if not (
        (images.dim() == 2 and images.shape[1] == 784)
        or (images.dim() == 3 and tuple(images.shape[1:]) == (28, 28))
    ):
        raise ValueError(
            f"images must be a batch [N, 784] or [N, 28, 28], got shape {tuple(images.shape)}"
        )
    if images.shape[0] < 2:
        raise ValueError(
            f"meter_spreads needs at least 2 images for a standard deviation, got {images.shape[0]}"
        )
    heights, brightness = _measure(images)
    return {
        "height": float(np.std(heights, ddof=1)),
        "brightness": float(np.std(brightness, ddof=1)),
        "n": len(heights),
    }


def traversal_record(decode, z0, direction, alphas, spreads: Mapping) -> dict:
    """Traverse, measure and summarise one direction from one start (:func:`record_from_images`
    on the decoded ``z₀ + α d``)."""
    return record_from_images(traverse(decode, z0, direction, alphas), alphas, spreads)


def record_from_images(images: torch.Tensor, alphas, spreads: Mapping) -> dict:
    """Measure and summarise decoded images ``[A, 784]``, one per ``α`` (a straight traversal or
    any path through the latent space).

    Returns the curves (``heights``, ``brightness``), the monotone stretch (``alpha_lo``,
    ``alpha_hi``), ``height_gain`` and ``brightness_leakage`` per latent unit over it, ``purity``
    (``None`` when neither meter moves) and ``purity_by_distance`` (:func:`purity_by_distance`).
    """
    alphas = [float(a) for a in alphas]
    if len(images) != len(alphas):
        raise ValueError(f"{len(images)} images for {len(alphas)} values of α")
    heights, brightness = _measure(images)
    centre = int(np.argmin(np.abs(alphas)))
    out = concept_purity(heights, brightness, centre, spreads["height"], spreads["brightness"])
    lo, hi = out["lo"], out["hi"]
    width = alphas[hi] - alphas[lo]
    gain = (heights[hi] - heights[lo]) / width if width else 0.0
    leakage = (brightness[hi] - brightness[lo]) / width if width else 0.0
    return {
        "heights": heights,
        "brightness": brightness,
        "alpha_lo": alphas[lo],
        "alpha_hi": alphas[hi],
        "height_gain": gain,
        "brightness_leakage": leakage,
        "purity": out["purity"],
        "purity_by_distance": purity_by_distance(heights, brightness, alphas, spreads),
    }


def purity_by_distance(heights, brightness, alphas, spreads: Mapping) -> list:
    """Purity of the stretch from ``α = 0`` to each positive ``α``: how a local direction's purity
    decays with the distance walked.  ``[[α, purity or None], …]``."""
    centre = int(np.argmin(np.abs(alphas)))
    out = []
    for j in range(centre + 1, len(alphas)):
        dh = abs(heights[j] - heights[centre]) / spreads["height"]
        db = abs(brightness[j] - brightness[centre]) / spreads["brightness"]
        out.append([float(alphas[j]), None if dh + db == 0 else dh / (dh + db)])
    return out
