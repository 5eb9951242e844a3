r"""Concept directions in a latent space, and the linear algebra that compares them.

The post finds a "shoe height" direction in a VAE's latent space as the difference of two
encodings, ``h = μ(x_tall) - μ(x)``, and a brightness direction ``b`` the same way, then tries to
make them independent.  This module has the pieces, written for any encoder mean ``μ`` and decoder
``g`` (callables on batches), so that each can be tested on a decoder whose answer is known:

* :func:`two_image_direction`: the post's ``(μ(x_b) - μ(x_a)) / ‖·‖``;
* :class:`RegressionCAV`: the regression form of a concept activation vector (TCAV with a
  continuous concept): ridge regression ``c ≈ w·z + w₀`` of a measured concept on latent means,
  with two directions, the filter ``w / ‖w‖`` that reads the concept off a code and the pattern
  ``Cov(z) w`` along which codes move with the concept (Haufe et al. 2014);
* :func:`gram_schmidt` in a metric ``G``: ``u - (⟨u, v⟩_G / ⟨v, v⟩_G) v``, normalised, with
  ``⟨u, v⟩_G = uᵀ G v``.  The Euclidean latent metric is ``G = I``; the decoder's **pull-back
  metric** is ``G(z) = J(z)ᵀ J(z)`` with ``J = ∂g/∂z`` (:func:`pullback_metric`), under which
  orthogonal latent steps give orthogonal pixel changes to first order;
* :func:`angle_degrees` and :func:`condition_number` of ``[h b]``: how collinear two directions
  are (the condition number ``σ_max / σ_min`` blows up as the angle goes to 0);
* :func:`bisect`: the commenter's ``h - αb`` with α chosen so that the brightness change along
  it vanishes, and how sensitive that α is to the measurement;
* :func:`constrained_direction`: the direction that raises one meter fastest while holding
  another fixed to first order, ``∇m₁ - (∇m₁·∇m₂ / ‖∇m₂‖²) ∇m₂`` with gradients taken through
  the decoder (:func:`meter_gradients`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import Ridge
from sklearn.utils.validation import check_is_fitted, validate_data

from pyro_latent.core.checks import check_finite_float, check_positive_float, check_positive_int

__all__ = [
    "RegressionCAV",
    "angle_degrees",
    "bisect",
    "condition_number",
    "constrained_direction",
    "decoder_jacobian",
    "gram_schmidt",
    "meter_gradients",
    "pullback_metric",
    "two_image_direction",
    "unit",
]


def _vector(v, name: str) -> torch.Tensor:
    try:
        v = torch.as_tensor(v, dtype=torch.float64).detach()
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"{name} must be a vector of numbers, got {type(v).__name__}") from None
    if v.dim() != 1 or v.numel() == 0:
        raise ValueError(f"{name} must be a non-empty 1-D vector, got shape {tuple(v.shape)}")
    if not bool(torch.isfinite(v).all()):
        raise ValueError(f"{name} must be finite, got NaN or infinite entries")
    return v


def _latent(z) -> torch.Tensor:
    """One latent ``[d]`` in its own floating dtype (the decoder's), checked like a vector."""
    _vector(z, "z")
    z = torch.as_tensor(z)
    return z if z.dtype.is_floating_point else z.to(torch.get_default_dtype())


def _metric(metric, d: int) -> torch.Tensor:
    if metric is None:
        return torch.eye(d, dtype=torch.float64)
    G = torch.as_tensor(metric, dtype=torch.float64).detach()
    if tuple(G.shape) != (d, d):
        raise ValueError(f"metric must be a [{d}, {d}] matrix, got shape {tuple(G.shape)}")
    if not bool(torch.isfinite(G).all()) or not torch.allclose(
        G, G.T, atol=1e-8 * float(G.abs().max())
    ):
        raise ValueError("metric must be a finite symmetric matrix")
    return G


def _norm(v: torch.Tensor, G: torch.Tensor) -> float:
    return math.sqrt(max(float(v @ G @ v), 0.0))


def _same_length(u: torch.Tensor, v: torch.Tensor, names: str = "u and v") -> None:
    if u.shape != v.shape:
        raise ValueError(f"{names} must have one length, got {u.numel()} and {v.numel()}")


def _callable(f, name: str) -> None:
    if not callable(f):
        raise TypeError(f"{name} must be callable, got {type(f).__name__}")


def unit(v, metric=None) -> torch.Tensor:
    """``v / ‖v‖_G`` (float64); a zero vector, or one of zero length in ``G``, is a
    ``ValueError``, and so is a non-finite ``v`` or a ``metric`` that is not ``[d, d]``."""
    v = _vector(v, "v")
    G = _metric(metric, v.numel())
    length = _norm(v, G)
    if length == 0:
        raise ValueError("v has zero length (in this metric): cannot normalise it")
    return v / length


def two_image_direction(encode_mean: Callable, before, after) -> torch.Tensor:
    """The post's direction: ``(μ(after) - μ(before)) / ‖·‖`` for one pair of images, or the
    unit difference of each pair ``[N, d]`` for batches.  ``encode_mean`` maps images to encoder
    means ``[N, d]``.

    A ``ValueError`` when the encodings of ``before`` and ``after`` differ in shape, are not
    ``[d]`` or ``[N, d]``, are not finite, or coincide (the direction is undefined).
    """
    _callable(encode_mean, "encode_mean")
    with torch.no_grad():
        a, b = encode_mean(before), encode_mean(after)
    a, b = torch.atleast_2d(torch.as_tensor(a)), torch.atleast_2d(torch.as_tensor(b))
    if a.shape != b.shape:
        raise ValueError(
            f"the two encodings (of before and after) differ in shape: {tuple(a.shape)} and "
            f"{tuple(b.shape)}"
        )
    if a.dim() != 2 or a.numel() == 0:
        raise ValueError(
            f"encode_mean must map before and after to means [d] or [N, d], got shape "
            f"{tuple(a.shape)}"
        )
    if not (bool(torch.isfinite(a).all()) and bool(torch.isfinite(b).all())):
        raise ValueError("the encodings of before and after must be finite, got NaN or inf")
    diff = (b - a).double()
    length = diff.norm(dim=-1, keepdim=True)
    if bool((length == 0).any()):
        raise ValueError("the two images encode to the same mean: the direction is undefined")
    out = diff / length
    return out[0] if out.shape[0] == 1 else out


class RegressionCAV(RegressorMixin, BaseEstimator):
    r"""Concept activation vector for a continuous concept: ridge regression of the concept on
    latent means, ``c ≈ Z w + w₀``, minimising ``‖c - Z w - w₀‖² + alpha ‖w‖²``, optionally on
    the latent dimensions ``dims`` only (``w`` is zero on the others), such as the active units.

    A decoding regression has two directions (Haufe et al., NeuroImage 2014, "On the
    interpretation of weight vectors of linear models in multivariate neuroimaging"):

    * the **filter** ``w / ‖w‖``: how to *read* the concept off a code.  It weighs each
      dimension by what it adds to the prediction, so a dimension that barely varies but happens
      to correlate with the concept's measurement noise gets a large weight: one of variance
      ``σ²`` must be multiplied by ``~1/σ`` to explain a fixed amount of the concept.  In a VAE
      those are the inactive units, which the decoder ignores, so stepping along the filter
      changes nothing in the image;
    * the **pattern** ``Σ_Z w / ‖Σ_Z w‖`` with ``Σ_Z`` the codes' covariance: the covariance of
      the code with the predicted concept, ``Cov(z, ŵᵀz) = Σ_Z w``, which is the direction along
      which the codes move when the concept does (the forward model ``z ≈ a ĉ + noise`` has
      ``a ∝ Σ_Z w``).  A near-constant dimension contributes ``σ² w_i ~ σ``: almost nothing.

    With isotropic codes (``Σ_Z ∝ I``) the two coincide.  The pattern spans every dimension,
    also when ``w`` is fitted on ``dims`` only.

    Learned state: ``coef_`` (``w``, zero outside ``dims``), ``intercept_``, ``filter_`` and
    ``pattern_`` (unit float64 tensors ``[d]``), ``gain_ = ‖w‖`` (concept units per latent unit
    along ``filter_``), ``pattern_gain_ = w · pattern_`` (the same along ``pattern_``),
    ``dims_`` (the dimensions regressed on) and ``r2_`` (training R²).
    """

    def __init__(self, alpha: float = 1e-3, dims=None):
        self.alpha = alpha
        self.dims = dims

    def fit(self, Z, y):
        Z, y = validate_data(self, np.asarray(Z, dtype=np.float64), np.asarray(y), y_numeric=True)
        if not (isinstance(self.alpha, int | float) and self.alpha >= 0):
            raise ValueError(f"alpha must be a non-negative number, got {self.alpha!r}")
        if Z.shape[0] < 2:
            raise ValueError(f"a regression needs at least 2 samples, got {Z.shape[0]}")
        if np.ptp(y) == 0:
            raise ValueError("the concept takes one value on every sample: nothing to regress")
        self.dims_ = _dimensions(self.dims, Z.shape[1])
        ridge = Ridge(alpha=self.alpha).fit(Z[:, self.dims_], y)
        self.coef_ = np.zeros(Z.shape[1])
        self.coef_[self.dims_] = ridge.coef_
        self.intercept_ = float(ridge.intercept_)
        self.gain_ = float(np.linalg.norm(self.coef_))
        if self.gain_ == 0:
            raise ValueError("the regression found no direction (all coefficients are zero)")
        self.filter_ = torch.as_tensor(self.coef_ / self.gain_, dtype=torch.float64)
        pattern = np.cov(Z, rowvar=False).reshape(Z.shape[1], Z.shape[1]) @ self.coef_
        length = float(np.linalg.norm(pattern))
        if not length > 0:
            raise ValueError("the codes do not vary along the regression's weights: no pattern")
        self.pattern_ = torch.as_tensor(pattern / length, dtype=torch.float64)
        self.pattern_gain_ = float(self.coef_ @ self.pattern_.numpy())
        self.r2_ = float(ridge.score(Z[:, self.dims_], y))
        return self

    def predict(self, Z) -> np.ndarray:
        check_is_fitted(self, "coef_")
        Z = validate_data(self, np.asarray(Z, dtype=np.float64), reset=False)
        return Z @ self.coef_ + self.intercept_


def _dimensions(dims, d: int) -> np.ndarray:
    """``dims`` as sorted unique indices into ``d`` latent dimensions (all of them for None)."""
    if dims is None:
        return np.arange(d)
    try:
        array = np.asarray(dims)
    except (TypeError, ValueError):
        raise ValueError(f"dims must be latent indices, got {dims!r}") from None
    if array.dtype == bool and array.shape == (d,):
        array = np.flatnonzero(array)
    if array.ndim != 1 or array.size == 0 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(
            f"dims must be a non-empty list of latent indices (or a mask of {d} booleans), "
            f"got {dims!r}"
        )
    if array.min() < 0 or array.max() >= d or len(np.unique(array)) != array.size:
        raise ValueError(f"dims must be distinct indices in 0..{d - 1}, got {array.tolist()}")
    return np.sort(array)


def angle_degrees(u, v, metric=None) -> float:
    """The angle between ``u`` and ``v`` in the metric ``G`` (identity by default), in degrees.

    A ``ValueError`` for vectors of different lengths, non-finite entries, or a vector of zero
    length in ``G`` (its angle is undefined).
    """
    u, v = _vector(u, "u"), _vector(v, "v")
    _same_length(u, v)
    G = _metric(metric, u.numel())
    norm_u, norm_v = _norm(u, G), _norm(v, G)
    for name, norm in (("u", norm_u), ("v", norm_v)):
        if norm == 0:
            raise ValueError(f"{name} has zero length (in this metric): its angle is undefined")
    cosine = float(u @ G @ v) / (norm_u * norm_v)
    return math.degrees(math.acos(max(-1.0, min(1.0, cosine))))


def gram_schmidt(u, v, metric=None) -> torch.Tensor:
    """``u`` made orthogonal to ``v`` in ``G`` and normalised:
    ``w = (u - (⟨u,v⟩_G / ⟨v,v⟩_G) v) / ‖·‖_G``.

    A ``ValueError`` when ``u`` is parallel to ``v`` (nothing is left), ``u`` or ``v`` has zero
    length, or they differ in length.
    """
    u, v = _vector(u, "u"), _vector(v, "v")
    _same_length(u, v)
    G = _metric(metric, u.numel())
    vv = float(v @ G @ v)
    if vv <= 0:
        raise ValueError("v has zero length in this metric")
    if _norm(u, G) == 0:
        raise ValueError("u has zero length in this metric: nothing to orthogonalise")
    residual = u - (float(u @ G @ v) / vv) * v
    if _norm(residual, G) <= 1e-12 * _norm(u, G):
        raise ValueError("u is parallel to v: nothing is left after removing v")
    return unit(residual, G)


def pullback_metric(decode: Callable, z) -> torch.Tensor:
    """``J(z)ᵀ J(z)`` ``[d, d]`` (float64) with ``J = ∂decode/∂z`` at one latent ``z [d]``: the
    metric under which a latent step's length is the length of the pixel change it causes, to
    first order.  ``z`` keeps its floating dtype, which must be the decoder's."""
    J = decoder_jacobian(decode, z)
    return J.T @ J


def decoder_jacobian(decode: Callable, z) -> torch.Tensor:
    """``J = ∂decode/∂z`` ``[P, d]`` (float64, detached) at one latent ``z [d]``, which keeps its
    floating dtype (the decoder's)."""
    z = _latent(z)
    J = torch.func.jacrev(lambda w: decode(w[None])[0])(z).double().detach()
    if not bool(torch.isfinite(J).all()):
        raise ValueError("the decoder's Jacobian is not finite at z")
    return J


def condition_number(*vectors) -> float:
    """``σ_max / σ_min`` of the matrix whose columns are ``vectors`` (``inf`` when they are
    linearly dependent): 1 for orthonormal columns, large when they are nearly collinear.

    A ``ValueError`` for fewer than two vectors, vectors of different lengths or non-finite
    entries.
    """
    if len(vectors) < 2:
        raise ValueError(
            f"condition_number needs at least two vectors, got {len(vectors)} (pass them as "
            "separate arguments)"
        )
    checked = [_vector(v, f"vector {i}") for i, v in enumerate(vectors)]
    lengths = [v.numel() for v in checked]
    if len(set(lengths)) > 1:
        raise ValueError(f"the vectors must have one length, got lengths {lengths}")
    columns = torch.stack(checked, -1)
    s = torch.linalg.svdvals(columns)
    return math.inf if float(s[-1]) <= 1e-12 * float(s[0]) else float(s[0] / s[-1])


def bisect(
    f: Callable[[float], float], lo: float, hi: float, *, tol: float = 1e-6, max_iter: int = 200
) -> dict:
    """A root of ``f`` in ``[lo, hi]`` by bisection, with ``f(lo)`` and ``f(hi)`` of opposite sign.

    Returns ``{"alpha", "residual", "slope", "sensitivity", "iterations"}``: ``slope`` is the
    secant ``f'`` across the final bracket and ``sensitivity = 1 / |slope|``, the shift of the root
    per unit error in ``f`` (large when ``f`` is flat at its root: an ill-determined α).
    A bracket without a sign change, or a non-finite ``f``, is a ``ValueError``, and so are a
    bracket that is not two finite numbers ``lo < hi``, a ``tol`` that is not a finite positive
    number and a ``max_iter`` that is not a positive int.
    """
    _callable(f, "f")
    max_iter = check_positive_int(max_iter, "max_iter")
    tol = check_positive_float(tol, "tol")
    lo, hi = check_finite_float(lo, "lo"), check_finite_float(hi, "hi")
    if not lo < hi:
        raise ValueError(f"the bracket must be finite numbers lo < hi, got [{lo}, {hi}]")
    f_lo, f_hi = float(f(lo)), float(f(hi))
    if not (math.isfinite(f_lo) and math.isfinite(f_hi)):
        raise ValueError(f"f is not finite at the bracket: f({lo}) = {f_lo}, f({hi}) = {f_hi}")
    if f_lo == 0 or f_hi == 0:
        alpha = lo if f_lo == 0 else hi
        return {
            "alpha": alpha,
            "residual": 0.0,
            "slope": None,
            "sensitivity": None,
            "iterations": 0,
        }
    if (f_lo > 0) == (f_hi > 0):
        raise ValueError(
            f"f has the same sign at both ends of [{lo}, {hi}] ({f_lo:.3g}, {f_hi:.3g}): no root "
            "is bracketed"
        )
    iterations = 0
    while hi - lo > tol and iterations < max_iter:
        mid = 0.5 * (lo + hi)
        f_mid = float(f(mid))
        if not math.isfinite(f_mid):
            raise ValueError(f"f is not finite at {mid}")
        if (f_mid > 0) == (f_lo > 0):
            lo, f_lo = mid, f_mid
        else:
            hi, f_hi = mid, f_mid
        iterations += 1
    slope = (f_hi - f_lo) / (hi - lo)
    alpha = lo - f_lo / slope if slope != 0 else 0.5 * (lo + hi)  # the secant inside the bracket
    return {
        "alpha": alpha,
        "residual": min(abs(f_lo), abs(f_hi)),
        "slope": slope,
        "sensitivity": math.inf if slope == 0 else 1 / abs(slope),
        "iterations": iterations,
    }


def meter_gradients(decode: Callable, z, meters: dict[str, Callable]) -> dict[str, torch.Tensor]:
    """``∇_z m(decode(z))`` ``[d]`` (float64) for each differentiable meter ``m`` at one latent
    ``z [d]``."""
    z = _latent(z)
    out = {}
    for name, meter in meters.items():
        with torch.enable_grad():  # also inside a caller's no_grad block
            w = z.detach().clone().requires_grad_(True)
            value = meter(decode(w[None])[0])
            (grad,) = torch.autograd.grad(value, w)
        if not bool(torch.isfinite(grad).all()):
            raise ValueError(f"the gradient of {name} is not finite at z")
        out[name] = grad.double()
    return out


def constrained_direction(raise_gradient, hold_gradient) -> torch.Tensor:
    """The unit direction of steepest ascent of one meter that keeps another fixed to first
    order: ``g₁ - (g₁·g₂ / ‖g₂‖²) g₂``, normalised (``g₂ = 0`` leaves ``g₁``)."""
    g1, g2 = _vector(raise_gradient, "raise_gradient"), _vector(hold_gradient, "hold_gradient")
    if float(g2 @ g2) == 0:
        return unit(g1)
    return gram_schmidt(g1, g2)
