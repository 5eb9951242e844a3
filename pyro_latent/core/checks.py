"""Argument validators shared by the whole package: one rule per kind of argument.

Every public function validates its arguments here, so that the same bad value gets the same
``ValueError`` wherever it is passed, and never a NaN or a traceback from deep inside torch.

* **Integers.**  Python ints, numpy integer scalars and 0-d integer torch tensors are accepted
  (:func:`operator.index` decides); ``bool`` is refused, since ``True`` is almost always a slip,
  and so is every float, even ``3.0``.
* **Probabilities.**  Real numbers in a stated interval; NaN is refused.
* **Reals.**  Finite real numbers (:func:`check_finite_float`), optionally positive
  (:func:`check_positive_float`: tolerances, factors, scales) or non-negative
  (:func:`check_nonnegative_float`: thresholds); NaN and ``±inf`` are refused, and so is ``bool``.
* **Symbol tensors.**  Integer dtype (not bool, not float), values in ``0..K-1``.
* **Image tensors.**  Floating point, finite, in ``[0, 1]``.
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Iterable

import numpy as np
import torch

__all__ = [
    "as_int",
    "check_finite_float",
    "check_image_tensor",
    "check_int",
    "check_long_tensor",
    "check_nonnegative_float",
    "check_nonnegative_int",
    "check_positive_float",
    "check_positive_int",
    "check_positive_ints",
    "check_probability",
]


def as_int(value) -> int | None:
    """``value`` as an ``int`` when it is an integer scalar (not a bool), else ``None``."""
    if isinstance(value, bool | np.bool_):
        return None
    if isinstance(value, torch.Tensor) and (value.dtype == torch.bool or value.dim() != 0):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def check_int(value, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """An integer scalar within ``[minimum, maximum]`` (each bound optional), or a ``ValueError``
    naming ``name``, the bound and the value."""
    out = as_int(value)
    if out is None:
        raise ValueError(f"{name} must be an int, got {value!r}")
    if minimum is not None and out < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value!r}")
    if maximum is not None and out > maximum:
        raise ValueError(f"{name} must be at most {maximum}, got {value!r}")
    return out


def check_positive_int(value, name: str) -> int:
    """An integer scalar ``≥ 1``."""
    out = as_int(value)
    if out is None or out < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return out


def check_nonnegative_int(value, name: str) -> int:
    """An integer scalar ``≥ 0`` (seeds, indices)."""
    out = as_int(value)
    if out is None or out < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    return out


def check_positive_ints(values: Iterable, name: str) -> list[int]:
    """A non-empty collection of positive ints, returned sorted and without repeats."""
    if isinstance(values, str | bytes):
        raise ValueError(f"{name} must be a non-empty list of positive ints, got {values!r}")
    try:
        items = list(values)
    except TypeError:
        raise ValueError(
            f"{name} must be a non-empty list of positive ints, got {values!r}"
        ) from None
    if not items:
        raise ValueError(f"{name} must be a non-empty list of positive ints, got {values!r}")
    return sorted({check_positive_int(v, f"every entry of {name}") for v in items})


def check_probability(
    value, name: str, *, low: float = 0.0, high: float = 1.0, include_high: bool = True
) -> float:
    """A real number in ``[low, high]`` (``[low, high)`` with ``include_high=False``)."""
    if isinstance(value, bool | np.bool_) or not isinstance(
        value, numbers.Real | np.floating | np.integer | torch.Tensor
    ):
        raise ValueError(f"{name} must be a number, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    upper_ok = out <= high if include_high else out < high
    if math.isnan(out) or out < low or not upper_ok:
        bracket = "]" if include_high else ")"
        raise ValueError(f"{name} must be in [{low:g}, {high:g}{bracket}, got {value!r}")
    return out


def _real(value, name: str, what: str) -> float:
    """``value`` as a ``float`` when it is a real scalar (not a bool), else a ``ValueError``."""
    if isinstance(value, bool | np.bool_) or not isinstance(
        value, numbers.Real | np.floating | np.integer | torch.Tensor
    ):
        raise ValueError(f"{name} must be {what}, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"{name} must be {what}, got {value!r}") from None


def check_finite_float(value, name: str) -> float:
    """A finite real number (NaN and ``±inf`` refused), as a ``float``."""
    out = _real(value, name, "a finite number")
    if not math.isfinite(out):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return out


def check_positive_float(value, name: str) -> float:
    """A finite real number ``> 0`` (a tolerance, a factor, a scale), as a ``float``."""
    out = _real(value, name, "a finite positive number")
    if not (math.isfinite(out) and out > 0):
        raise ValueError(f"{name} must be a finite positive number, got {value!r}")
    return out


def check_nonnegative_float(value, name: str) -> float:
    """A finite real number ``≥ 0`` (a threshold), as a ``float``."""
    out = _real(value, name, "a finite non-negative number")
    if not (math.isfinite(out) and out >= 0):
        raise ValueError(f"{name} must be a finite non-negative number, got {value!r}")
    return out


def check_long_tensor(values, name: str) -> torch.Tensor:
    """``values`` (tensor, array or nested list of integers) as a long tensor; a float, complex
    or bool dtype is refused rather than truncated."""
    try:
        tensor = torch.as_tensor(values)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"{name} must be an integer tensor, got {type(values).__name__}") from None
    if tensor.dtype.is_floating_point or tensor.dtype.is_complex or tensor.dtype == torch.bool:
        raise ValueError(f"{name} must have an integer dtype, got {tensor.dtype}")
    return tensor.long()


def check_image_tensor(images, name: str = "images", *, allow_empty: bool = False) -> torch.Tensor:
    """A floating-point tensor of finite pixel intensities in ``[0, 1]`` (any shape)."""
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(images).__name__}")
    if not images.dtype.is_floating_point:
        raise ValueError(
            f"{name} must be floating point in [0, 1], got dtype {images.dtype} "
            "(divide uint8 pixels by 255)"
        )
    if images.numel() == 0:
        if allow_empty:
            return images
        raise ValueError(f"{name} is empty (shape {tuple(images.shape)})")
    values = images.detach()  # the check must not warn about, or record, autograd history
    if not bool(torch.isfinite(values).all()):
        raise ValueError(f"{name} contain NaN or infinite values")
    low, high = float(values.min()), float(values.max())
    if low < 0.0 or high > 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got values in [{low:.3g}, {high:.3g}]")
    return images
