r"""Every candidate shoe-height direction at one shoe, with the diagnostics that compare them.

For a shoe image ``x`` and a VAE with encoder mean ``μ`` and decoder ``g``
(:func:`directions_at`):

* ``h``: the post's height vector, ``μ(taller(whiten(x))) - μ(whiten(x))``, normalised;
* ``b``: the brightness vector, ``μ(brighter(x)) - μ(x)``, normalised, with
  ``brighter(x) = min(1, 1.5 x)`` (:func:`brighter`);
* ``cav_height``, ``cav_brightness``: regression CAVs fitted on real shoes (passed in: they do not
  depend on the shoe);
* ``gs_euclidean``: ``h`` made orthogonal to ``b`` in the latent's Euclidean metric (the post's
  Gram–Schmidt);
* ``gs_pullback``: the same in the decoder's pull-back metric ``G = JᵀJ`` at ``z₀``, so that the
  pixel changes ``J h'`` and ``J b`` are orthogonal;
* ``commenter``: ``h - α b`` normalised, with ``α`` found by bisection so that the soft
  brightness of ``g(z₀ + (h - αb)/‖·‖)`` equals that of ``g(z₀)``;
* ``jacobian``: the steepest-ascent direction of the soft height that holds the soft brightness
  fixed to first order, from their gradients through the decoder at ``z₀``.

The traversal starts at ``z₀ = μ(whiten(x))``, the encoding of the whitened shoe, as in the post.
The diagnostics are the angle and the condition number of ``[h b]``, the same angle in ``G``,
the pixel-space cosine between ``J h_⊥`` and ``J b`` for each Gram–Schmidt, and the bisection's
``α`` and sensitivity.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch

from pyro_latent.concepts.directions import (
    angle_degrees,
    bisect,
    condition_number,
    constrained_direction,
    decoder_jacobian,
    gram_schmidt,
    meter_gradients,
    two_image_direction,
    unit,
)
from pyro_latent.concepts.shoes import (
    EmptyShapeError,
    shoe_height,
    soft_shoe_brightness,
    soft_shoe_height,
    taller_shoe,
    whiten,
)
from pyro_latent.core.latent_model import check_latent_model, decoder_of, encoder_mean_of

__all__ = [
    "BRIGHTEN",
    "DIRECTIONS",
    "brighter",
    "directions_at",
    "jacobian_path",
    "jacobian_path_images",
]

BRIGHTEN = 1.5
DIRECTIONS = (
    "two-image h",
    "two-image b",
    "cav height",
    "cav brightness",
    "gs euclidean",
    "gs pullback",
    "gs euclidean b⊥h",
    "gs pullback b⊥h",
    "commenter h-αb",
    "jacobian",
)


def brighter(images: torch.Tensor, factor: float = BRIGHTEN) -> torch.Tensor:
    """A brightened copy, ``min(1, factor · x)``."""
    return (images * factor).clamp(max=1.0)


def _pixel_cosine(J: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> float:
    a, b = J @ u, J @ v
    return float(a @ b / (a.norm() * b.norm()))


def directions_at(
    model,
    image: torch.Tensor,
    cavs: Mapping[str, torch.Tensor],
    *,
    bracket: tuple[float, float] = (-4.0, 4.0),
) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict]:
    """``(z₀, directions, diagnostics)`` for one shoe ``image [784]`` (see the module docstring)
    under any :class:`~pyro_latent.core.latent_model.LatentModel` (``μ`` is its encoder's
    ``loc``, ``g`` its ``decode``).

    ``cavs`` maps ``"height"`` and ``"brightness"`` to regression-CAV directions ``[D]``.  The
    commenter's direction is left out (and its diagnostics say why) when the brightness change
    has one sign over the whole ``α`` bracket.  A shoe whose whitened encoding decodes to an image
    with no pixel over the height threshold has nothing to measure: :class:`EmptyShapeError`.
    """
    check_latent_model(model)
    encode_mean, decode = encoder_mean_of(model), decoder_of(model)
    image = image.reshape(1, -1)
    white = whiten(image)
    with torch.no_grad():
        z0 = encode_mean(white)[0]
        start = decode(z0[None])[0]
    try:
        shoe_height(start)
    except EmptyShapeError as error:
        raise EmptyShapeError(
            f"the decoded whitened shoe has no shape to measure: {error}"
        ) from None
    h = two_image_direction(encode_mean, white, taller_shoe(white)).to(z0.dtype)
    b = two_image_direction(encode_mean, image, brighter(image)).to(z0.dtype)
    J = decoder_jacobian(decode, z0)
    G = J.T @ J
    h64, b64 = h.double(), b.double()
    directions = {
        "two-image h": h64,
        "two-image b": b64,
        "cav height": unit(cavs["height"]),
        "cav brightness": unit(cavs["brightness"]),
        "gs euclidean": gram_schmidt(h64, b64),
        "gs pullback": unit(gram_schmidt(h64, b64, G)),
        "gs euclidean b⊥h": gram_schmidt(b64, h64),
        "gs pullback b⊥h": unit(gram_schmidt(b64, h64, G)),
    }
    with torch.no_grad():
        base = float(soft_shoe_brightness(decode(z0[None])[0]))

    def brightness_change(alpha: float) -> float:
        d = unit(h64 - alpha * b64).to(z0.dtype)
        with torch.no_grad():
            return float(soft_shoe_brightness(decode((z0 + d)[None])[0])) - base

    try:
        found = bisect(brightness_change, *bracket, tol=1e-4)
        directions["commenter h-αb"] = unit(h64 - found["alpha"] * b64)
        commenter = {"found": True, **found}
    except ValueError as error:
        commenter = {"found": False, "reason": str(error), "alpha": None, "sensitivity": None}
    grads = meter_gradients(
        decode, z0, {"height": soft_shoe_height, "brightness": soft_shoe_brightness}
    )
    directions["jacobian"] = constrained_direction(grads["height"], grads["brightness"])
    diagnostics = {
        "angle_hb": angle_degrees(h64, b64),
        "angle_hb_pullback": angle_degrees(h64, b64, G),
        "condition_hb": condition_number(h64, b64),
        "pixel_cosine_gs_euclidean": _pixel_cosine(J, directions["gs euclidean"], b64),
        "pixel_cosine_gs_pullback": _pixel_cosine(J, directions["gs pullback"], b64),
        "commenter": commenter,
    }
    if not math.isfinite(diagnostics["condition_hb"]):
        diagnostics["condition_hb"] = None
    return z0, directions, diagnostics


def _jacobian_step(decode: Callable, z: torch.Tensor) -> torch.Tensor:
    grads = meter_gradients(
        decode, z, {"height": soft_shoe_height, "brightness": soft_shoe_brightness}
    )
    return constrained_direction(grads["height"], grads["brightness"]).to(z.dtype)


def jacobian_path(decode, z0: torch.Tensor, alphas) -> torch.Tensor:
    """The Jacobian direction re-solved at every step: latents ``[A, D]``, one per ``α``
    (``decode``: a :class:`~pyro_latent.core.latent_model.LatentModel` or its ``decode``).

    From ``z₀`` (``α = 0``) the path walks outward in both directions,
    ``z_{j±1} = z_j ± |α_{j±1} - α_j| d(z_j)``, where ``d(z)`` is the steepest height ascent that
    holds brightness fixed to first order *at* ``z`` (:func:`constrained_direction` of the meters'
    gradients through the decoder).  Unlike the straight traversal it follows the constraint, so
    it shows how much of the straight line's loss of purity is its locality.
    """
    decode = decoder_of(decode)
    alphas = [float(a) for a in alphas]
    centre = min(range(len(alphas)), key=lambda i: abs(alphas[i]))
    path = [None] * len(alphas)
    path[centre] = z0.detach()
    for j in range(centre + 1, len(alphas)):
        step = alphas[j] - alphas[j - 1]
        path[j] = path[j - 1] + step * _jacobian_step(decode, path[j - 1])
    for j in range(centre - 1, -1, -1):
        step = alphas[j] - alphas[j + 1]
        path[j] = path[j + 1] + step * _jacobian_step(decode, path[j + 1])
    return torch.stack(path)


def jacobian_path_images(decode, z0: torch.Tensor, alphas) -> torch.Tensor | None:
    """Decoded images ``[A, 784]`` along :func:`jacobian_path`, or ``None`` when the path walks
    onto an image with no shape to measure (the constraint is then undefined)."""
    decode = decoder_of(decode)
    try:
        with torch.no_grad():
            return decode(jacobian_path(decode, z0, alphas))
    except EmptyShapeError:
        return None


def measure_shoe(model, image, cavs, alphas, spreads):
    """Every direction at one shoe under ``model`` (:func:`directions_at`), plus the re-solved
    Jacobian path, traversed over ``alphas`` and summarised
    (:func:`~pyro_latent.concepts.traversal.record_from_images`).

    Returns ``(diagnostics, {direction: record})``; a shoe with nothing to measure is an
    :class:`EmptyShapeError`, and a path that walks off every shoe is left out.
    """
    from pyro_latent.concepts.traversal import record_from_images, traverse

    z0, directions, diagnostics = directions_at(model, image, cavs)
    decode = decoder_of(model)
    frames = {d: traverse(decode, z0, v.to(z0.dtype), alphas) for d, v in directions.items()}
    frames["jacobian path"] = jacobian_path_images(decode, z0, alphas)
    records = {
        d: record_from_images(images, alphas, spreads)
        for d, images in frames.items()
        if images is not None
    }
    return diagnostics, records
