r"""Every candidate shoe-height direction at one shoe, with the diagnostics that compare them.

For a shoe image ``x`` and a VAE with encoder mean ``μ`` and decoder ``g``
(:func:`directions_at`):

* ``h``: the post's height vector, ``μ(taller(whiten(x))) - μ(whiten(x))``, normalised;
* ``b``: the brightness vector, ``μ(brighter(x)) - μ(x)``, normalised, with
  ``brighter(x) = min(1, 1.5 x)`` (:func:`brighter`);
* ``cav height``, ``cav brightness``: the filters of regression CAVs fitted on real shoes, and
  optionally ``cav height pattern``, ``cav brightness pattern``, their patterns
  (:class:`~pyro_latent.concepts.directions.RegressionCAV`; passed in: they do not depend on the
  shoe);
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
from pyro_latent.core.checks import check_finite_float, check_image_tensor, check_positive_float
from pyro_latent.core.latent_model import (
    check_latent_model,
    decoder_of,
    encoder_mean_of,
    is_latent_model,
)

__all__ = [
    "BRIGHTEN",
    "CAV_KEYS",
    "CAV_PATTERN_KEYS",
    "DIRECTIONS",
    "brighter",
    "directions_at",
    "SHOE_METERS",
    "jacobian_path",
    "jacobian_path_images",
    "measure_shoe",
    "pair_directions",
]

BRIGHTEN = 1.5
DIRECTIONS = (
    "two-image h",
    "two-image b",
    "cav height",
    "cav brightness",
    "cav height pattern",
    "cav brightness pattern",
    "gs euclidean",
    "gs pullback",
    "gs euclidean b⊥h",
    "gs pullback b⊥h",
    "commenter h-αb",
    "jacobian",
)
PIXELS = 784
CAV_KEYS = ("height", "brightness")
CAV_PATTERN_KEYS = ("height pattern", "brightness pattern")  # optional


def brighter(images: torch.Tensor, factor: float = BRIGHTEN) -> torch.Tensor:
    """A brightened copy, ``min(1, factor · x)``; ``factor`` must be a finite positive number
    (a ``ValueError`` otherwise)."""
    check_positive_float(factor, "factor")
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor, got {type(images).__name__}")
    return (images * factor).clamp(max=1.0)


def _check_image(image) -> torch.Tensor:
    """One shoe image of 784 pixel intensities in ``[0, 1]`` (``[784]``, ``[28, 28]`` or a batch
    of one)."""
    check_image_tensor(image, "image")
    if image.numel() != PIXELS:
        raise ValueError(
            f"image must be one shoe of {PIXELS} pixels ([784] or [28, 28]), got shape "
            f"{tuple(image.shape)}"
        )
    return image


def _check_cavs(cavs, latent_dim: int) -> None:
    """``cavs`` maps ``"height"`` and ``"brightness"`` (and optionally the two pattern keys) to
    finite vectors ``[latent_dim]``, and nothing else."""
    if not isinstance(cavs, Mapping):
        raise TypeError(
            f"cavs must be a mapping with keys {list(CAV_KEYS)}, got {type(cavs).__name__}"
        )
    missing = [key for key in CAV_KEYS if key not in cavs]
    if missing:
        raise ValueError(
            f"cavs is missing {', '.join(repr(k) for k in missing)}: it must map "
            f"{' and '.join(repr(k) for k in CAV_KEYS)} to CAV directions [{latent_dim}]"
        )
    unknown = [key for key in cavs if key not in CAV_KEYS + CAV_PATTERN_KEYS]
    if unknown:
        raise ValueError(
            f"cavs has unknown key(s) {', '.join(repr(k) for k in unknown)}; known: "
            f"{', '.join(repr(k) for k in CAV_KEYS + CAV_PATTERN_KEYS)}"
        )
    for key in CAV_KEYS + tuple(k for k in CAV_PATTERN_KEYS if k in cavs):
        try:
            v = torch.as_tensor(cavs[key])
        except (TypeError, ValueError, RuntimeError):
            raise ValueError(
                f"cavs[{key!r}] must be a vector [{latent_dim}], got {type(cavs[key]).__name__}"
            ) from None
        if v.dim() != 1 or v.numel() != latent_dim:
            raise ValueError(
                f"cavs[{key!r}] must be a vector [{latent_dim}] (the model's latent_dim), got "
                f"shape {tuple(v.shape)}"
            )
        if v.dtype == torch.bool or v.is_complex():
            raise ValueError(f"cavs[{key!r}] must be real, got dtype {v.dtype}")
        if not bool(torch.isfinite(v).all()):
            raise ValueError(f"cavs[{key!r}] must be finite, got NaN or infinite entries")
        if not bool((v != 0).any()):
            raise ValueError(f"cavs[{key!r}] is the zero vector: it has no direction")


def _check_bracket(bracket) -> None:
    try:
        lo, hi = bracket
    except (TypeError, ValueError):
        raise ValueError(f"bracket must be two numbers (lo, hi), got {bracket!r}") from None
    lo = check_finite_float(lo, "bracket[0]")
    hi = check_finite_float(hi, "bracket[1]")
    if not lo < hi:
        raise ValueError(f"bracket must be two finite numbers lo < hi, got {bracket!r}")


def _check_meters(meters) -> None:
    """``meters`` maps ``"height"`` and ``"brightness"`` to callables of one image."""
    if not isinstance(meters, Mapping) or not all(
        callable(meters.get(key)) for key in ("height", "brightness")
    ):
        raise ValueError(
            "meters must map 'height' and 'brightness' to callables of one decoded image; got "
            f"{meters!r}"
        )


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

    ``cavs`` maps ``"height"`` and ``"brightness"`` to regression-CAV directions ``[D]`` (the
    filters), and may map ``"height pattern"`` and ``"brightness pattern"`` to their patterns.  The
    commenter's direction is left out (and its diagnostics say why) when the brightness change
    has one sign over the whole ``α`` bracket.  A shoe whose whitened encoding decodes to an image
    with no pixel over the height threshold has nothing to measure: :class:`EmptyShapeError`.

    A ``ValueError`` for an ``image`` that is not 784 intensities in ``[0, 1]``, ``cavs`` without
    ``"height"`` or ``"brightness"`` or with vectors that are not ``[latent_dim]``, or a
    ``bracket`` that is not two finite numbers ``lo < hi``.
    """
    check_latent_model(model)
    _check_image(image)
    _check_cavs(cavs, int(model.latent_dim))
    _check_bracket(bracket)
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
    directions, diagnostics = pair_directions(decode, z0, h, b, cavs, SHOE_METERS, bracket=bracket)
    return z0, directions, diagnostics


SHOE_METERS = {"height": soft_shoe_height, "brightness": soft_shoe_brightness}
"""The differentiable meters the commenter's α and the Jacobian directions hold and raise."""


def pair_directions(
    decode: Callable,
    z0: torch.Tensor,
    h: torch.Tensor,
    b: torch.Tensor,
    cavs: Mapping[str, torch.Tensor],
    meters: Mapping[str, Callable],
    *,
    bracket: tuple[float, float] = (-4.0, 4.0),
    jacobian: torch.Tensor | None = None,
) -> tuple[dict[str, torch.Tensor], dict]:
    """Every direction of the module docstring but the two-image pair itself, built from it:
    ``h`` and ``b`` (the two-image height and brightness vectors at ``z₀``), the ``cavs``, and
    differentiable ``meters`` ``{"height", "brightness"}`` of one decoded image ``[784]`` (the
    shoe meters, or any other world's read-out of the same two concepts).  ``jacobian`` is the
    decoder's Jacobian at ``z₀`` (:func:`~pyro_latent.concepts.directions.decoder_jacobian`)
    when the caller has it already.  Returns ``(directions, diagnostics)`` as
    :func:`directions_at` does."""
    _check_start(z0, None)
    _check_meters(meters)
    _check_cavs(cavs, int(z0.numel()))
    _check_bracket(bracket)
    J = decoder_jacobian(decode, z0) if jacobian is None else jacobian
    G = J.T @ J
    h64, b64 = h.double(), b.double()
    directions = {
        "two-image h": h64,
        "two-image b": b64,
        "cav height": unit(cavs["height"]),
        "cav brightness": unit(cavs["brightness"]),
        **{f"cav {key}": unit(cavs[key]) for key in CAV_PATTERN_KEYS if key in cavs},
        "gs euclidean": gram_schmidt(h64, b64),
        "gs pullback": unit(gram_schmidt(h64, b64, G)),
        "gs euclidean b⊥h": gram_schmidt(b64, h64),
        "gs pullback b⊥h": unit(gram_schmidt(b64, h64, G)),
    }
    brightness = meters["brightness"]
    with torch.no_grad():
        base = float(brightness(decode(z0[None])[0]))

    def brightness_change(alpha: float) -> float:
        d = unit(h64 - alpha * b64).to(z0.dtype)
        with torch.no_grad():
            return float(brightness(decode((z0 + d)[None])[0])) - base

    try:
        found = bisect(brightness_change, *bracket, tol=1e-4)
        directions["commenter h-αb"] = unit(h64 - found["alpha"] * b64)
        commenter = {"found": True, **found}
    except ValueError as error:
        commenter = {"found": False, "reason": str(error), "alpha": None, "sensitivity": None}
    grads = meter_gradients(decode, z0, meters)
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
    return directions, diagnostics


def _jacobian_step(decode: Callable, z: torch.Tensor, meters: Mapping[str, Callable]):
    grads = meter_gradients(decode, z, meters)
    return constrained_direction(grads["height"], grads["brightness"]).to(z.dtype)


def _check_alphas(alphas) -> list[float]:
    """``alphas`` as a non-empty list of finite floats."""
    if isinstance(alphas, str | bytes):
        raise ValueError(f"alphas must be a non-empty list of finite numbers, got {alphas!r}")
    try:
        values = [float(a) for a in alphas]
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(
            f"alphas must be a non-empty list of finite numbers, got {alphas!r}"
        ) from None
    if not values or not all(math.isfinite(a) for a in values):
        raise ValueError(f"alphas must be a non-empty list of finite numbers, got {alphas!r}")
    return values


def _check_start(z0, latent_dim: int | None) -> None:
    """``z0`` is one finite floating latent ``[D]`` (``D = latent_dim`` when known)."""
    if not isinstance(z0, torch.Tensor):
        raise TypeError(f"z0 must be a torch.Tensor latent [D], got {type(z0).__name__}")
    if not z0.is_floating_point():
        raise ValueError(f"z0 must be floating point, got dtype {z0.dtype}")
    expected = "D" if latent_dim is None else str(latent_dim)
    if z0.dim() != 1 or z0.numel() == 0 or (latent_dim is not None and z0.numel() != latent_dim):
        raise ValueError(f"z0 must be one latent [{expected}], got shape {tuple(z0.shape)}")
    if not bool(torch.isfinite(z0.detach()).all()):
        raise ValueError("z0 must be finite, got NaN or infinite entries")


def jacobian_path(decode, z0: torch.Tensor, alphas, meters: Mapping | None = None) -> torch.Tensor:
    """The Jacobian direction re-solved at every step: latents ``[A, D]``, one per ``α``
    (``decode``: a :class:`~pyro_latent.core.latent_model.LatentModel` or its ``decode``).

    From ``z₀`` (``α = 0``) the path walks outward in both directions,
    ``z_{j±1} = z_j ± |α_{j±1} - α_j| d(z_j)``, where ``d(z)`` is the steepest height ascent that
    holds brightness fixed to first order *at* ``z`` (:func:`constrained_direction` of the meters'
    gradients through the decoder).  Unlike the straight traversal it follows the constraint, so
    it shows how much of the straight line's loss of purity is its locality.  ``meters``
    (default :data:`SHOE_METERS`) are the differentiable ``{"height", "brightness"}`` meters.

    A ``ValueError`` for ``alphas`` that are empty or not finite numbers, or a ``z0`` that is
    not one finite latent ``[D]`` (``D`` the model's ``latent_dim`` when ``decode`` is a model).
    """
    latent_dim = int(decode.latent_dim) if is_latent_model(decode) else None
    decode = decoder_of(decode)
    meters = SHOE_METERS if meters is None else meters
    _check_meters(meters)
    alphas = _check_alphas(alphas)
    _check_start(z0, latent_dim)
    centre = min(range(len(alphas)), key=lambda i: abs(alphas[i]))
    path = [None] * len(alphas)
    path[centre] = z0.detach()
    for j in range(centre + 1, len(alphas)):
        step = alphas[j] - alphas[j - 1]
        path[j] = path[j - 1] + step * _jacobian_step(decode, path[j - 1], meters)
    for j in range(centre - 1, -1, -1):
        step = alphas[j] - alphas[j + 1]
        path[j] = path[j + 1] + step * _jacobian_step(decode, path[j + 1], meters)
    return torch.stack(path)


def jacobian_path_images(
    decode, z0: torch.Tensor, alphas, meters: Mapping | None = None
) -> torch.Tensor | None:
    """Decoded images ``[A, 784]`` along :func:`jacobian_path`, or ``None`` when the path walks
    onto an image with no shape to measure (the constraint is then undefined)."""
    decode = decoder_of(decode)
    try:
        with torch.no_grad():
            return decode(jacobian_path(decode, z0, alphas, meters))
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
