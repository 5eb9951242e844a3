r"""Translators between two continuous latent spaces, fitted on paired encodings of the same images.

Two encoders applied to the same ``N`` images give paired codes ``Z_src [N, d_src]`` and
``Z_dst [N, d_dst]``.  A translator is a map ``T : ℝ^{d_src} → ℝ^{d_dst}`` fitted on the pairs
so that ``T(Z_src) ≈ Z_dst``; every one here is a scikit-learn estimator, ``fit(Z_src, Z_dst)``,
``transform(Z) -> [N, d_dst]`` (float64), ``score(Z_src, Z_dst)`` the coefficient of
determination ``R²`` averaged uniformly over the ``d_dst`` target dimensions.

* :class:`LinearTranslator`: ``T(z) = z W``, ``W = argmin ‖Z_src W − Z_dst‖²_F`` (least squares,
  no intercept).
* :class:`AffineTranslator`: ``T(z) = z W + b``, ``(W, b) = argmin ‖Z_src W + 1bᵀ − Z_dst‖²_F
  + α‖W‖²_F`` (the intercept is not penalised; ``α = 0`` is ordinary least squares).
* :class:`ProcrustesTranslator`: ``T(z) = σ_dst · unpad(pad((z − μ_src)/σ_src) R) + μ_dst`` with
  ``μ, σ`` each side's mean and root-mean-square norm (:class:`StandardScaling`), zero padding
  of both sides to ``max(d_src, d_dst)`` columns (:class:`ZeroPadding`) and ``R`` the orthogonal
  matrix minimising ``‖A R − B‖_F`` between the padded, scaled sides (orthogonal Procrustes,
  ``R = U Vᵀ`` from the SVD ``AᵀB = U Σ Vᵀ``).  It is exact whenever
  ``Z_dst = s Z_src Q + 1tᵀ`` with ``s > 0`` and ``Q`` having orthonormal rows or columns.
* :class:`RelativeTranslator`: relative representations (Moschella et al., ICLR 2023).  A code
  is replaced by its cosine similarities to ``K`` anchor codes ``a_1..a_K`` drawn from the
  fitted pairs, ``r(z)_k = cos(z − c, a_k − c)`` with ``c`` the anchors' mean (or 0); ``r`` is
  invariant to any rotation, reflection and isotropic rescaling of the source space (and, with
  ``c`` the anchors' mean, to translations), and a ridge decoder ``r ↦ r W + b`` is fitted from
  the relative space to ``Z_dst``.
* :class:`MLPTranslator`: a small ReLU network on standardised inputs and outputs, trained with
  Adam on the mean squared error.

:class:`Translator` composes one the way latentis does, from an aligner (any translator above, or
:class:`OrthogonalAligner`), per-side transforms (:class:`Centering`, :class:`StandardScaling`,
each with ``fit``, ``transform`` and ``inverse_transform``) and a dimension matcher
(:class:`ZeroPadding`); :func:`translator_preset` gives the named ones as compositions.

Every translator takes ``n_pairs``: ``None`` fits on all pairs, an int ``k`` on ``k`` pairs drawn
without replacement by ``numpy.random.default_rng(seed).choice`` (the sample-efficiency
curve); the rows used are ``pair_indices_`` and their count ``n_pairs_fit_``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import scipy.linalg
import torch
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.metrics import r2_score
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_array, check_is_fitted

from pyro_latent.core.checks import (
    check_int,
    check_nonnegative_int,
    check_positive_int,
    check_probability,
)

__all__ = [
    "TRANSLATORS",
    "AffineTranslator",
    "Centering",
    "LinearTranslator",
    "MLPTranslator",
    "OrthogonalAligner",
    "ProcrustesTranslator",
    "RelativeTranslator",
    "StandardScaling",
    "Translator",
    "UnpairedTranslator",
    "ZeroPadding",
    "check_paired_translator",
    "make_translator",
    "mse_epoch",
    "regression_mlp",
    "translator_name",
    "translator_preset",
]


# A scale or norm below this is treated as zero: the data carry no spread to divide by.
_TINY = 1e-12
_NOT_FITTED = "This %(name)s instance is not fitted yet: call fit before transform."


# =============================================================================== validation
def _check_latents(Z, name: str) -> np.ndarray:
    """``Z`` as a finite float64 array ``[N, d]`` with ``N, d ≥ 1``, or a ``ValueError`` naming
    ``name``.  Detached torch tensors are accepted."""
    if isinstance(Z, torch.Tensor):
        Z = Z.detach().cpu().numpy()
    ndim = np.ndim(Z)
    if ndim != 2:
        raise ValueError(f"{name} must be a 2-D array [N, d], got {ndim} dimension(s)")
    return check_array(Z, dtype=np.float64, ensure_all_finite=True, input_name=name)


def _check_pairs(Z_src, Z_dst) -> tuple[np.ndarray, np.ndarray]:
    """Both sides checked, with the same number of rows (one per image)."""
    Z_src, Z_dst = _check_latents(Z_src, "Z_src"), _check_latents(Z_dst, "Z_dst")
    if Z_src.shape[0] != Z_dst.shape[0]:
        raise ValueError(
            f"Z_src and Z_dst must pair the same images, got {Z_src.shape[0]} rows in Z_src "
            f"and {Z_dst.shape[0]} in Z_dst"
        )
    return Z_src, Z_dst


def _check_columns(Z: np.ndarray, expected: int, name: str, owner) -> np.ndarray:
    if Z.shape[1] != expected:
        raise ValueError(
            f"{name} has {Z.shape[1]} columns, but this {type(owner).__name__} was fitted on "
            f"{expected}"
        )
    return Z


def _check_nonnegative_float(value, name: str) -> float:
    return check_probability(value, name, low=0.0, high=math.inf, include_high=False)


def _check_positive_float(value, name: str) -> float:
    out = _check_nonnegative_float(value, name)
    if out == 0.0:
        raise ValueError(f"{name} must be positive, got {value!r}")
    return out


def _draw_pairs(n: int, n_pairs, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of the pairs a fit uses: all ``n``, or ``n_pairs`` drawn without
    replacement."""
    if n_pairs is None:
        return np.arange(n)
    k = check_positive_int(n_pairs, "n_pairs")
    if k > n:
        raise ValueError(f"n_pairs={k} exceeds the {n} pairs given to fit")
    return np.sort(rng.choice(n, size=k, replace=False))


# =============================================================================== linear algebra
def _ridge(X: np.ndarray, Y: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    r"""``(W, b)`` minimising ``‖X W + 1bᵀ − Y‖²_F + α‖W‖²_F``.

    Centring both sides removes the unpenalised intercept, ``b = ȳ − x̄ W``; then ``α = 0`` is
    the minimum-norm least-squares solution and ``α > 0`` solves the normal equations
    ``(X̃ᵀX̃ + αI) W = X̃ᵀỸ`` (positive definite, and ``d × d`` rather than ``N × d``).  The
    penalty is on the sum of squares, as in :class:`sklearn.linear_model.Ridge`.
    """
    x_mean, y_mean = X.mean(0), Y.mean(0)
    Xc, Yc = X - x_mean, Y - y_mean
    if alpha == 0.0:
        W = np.linalg.lstsq(Xc, Yc, rcond=None)[0]
    else:
        gram = Xc.T @ Xc + alpha * np.eye(X.shape[1])
        W = scipy.linalg.solve(gram, Xc.T @ Yc, assume_a="pos")
    return W, y_mean - x_mean @ W


def _unit_rows(Z: np.ndarray) -> np.ndarray:
    """Rows divided by their Euclidean norm; a zero row stays zero (no direction, no NaN)."""
    norms = np.linalg.norm(Z, axis=1, keepdims=True)
    return Z / np.where(norms > _TINY, norms, 1.0)


# =============================================================================== transforms
class _Transform(TransformerMixin, BaseEstimator):
    """Shared checks of the single-array transforms: ``fit(Z)`` records ``n_features_in_``."""

    def _fit_input(self, Z) -> np.ndarray:
        Z = _check_latents(Z, "Z")
        self.n_features_in_ = Z.shape[1]
        return Z

    def _input(self, Z, columns: int | None = None) -> np.ndarray:
        check_is_fitted(self, "n_features_in_", msg=_NOT_FITTED)
        expected = self.n_features_in_ if columns is None else columns
        return _check_columns(_check_latents(Z, "Z"), expected, "Z", self)


class Centering(_Transform):
    """``z ↦ z − μ`` with ``μ`` the mean of the fitted rows (``mean_``)."""

    def fit(self, Z, y=None):
        self.mean_ = self._fit_input(Z).mean(0)
        return self

    def transform(self, Z) -> np.ndarray:
        return self._input(Z) - self.mean_

    def inverse_transform(self, Z) -> np.ndarray:
        return self._input(Z) + self.mean_


class StandardScaling(_Transform):
    r"""``z ↦ (z − μ) / σ`` with one global scale ``σ = sqrt(mean_i ‖z_i − μ‖²)``.

    After scaling the fitted cloud is centred with unit mean squared row norm.  One scale for
    all dimensions, rather than a standard deviation per dimension, keeps angles and the
    relative lengths of directions, so that an orthogonal map between two scaled clouds is the
    orthogonal map between the originals (Procrustes relies on this); a per-dimension scale
    would stretch a rotation into a general linear map.  A cloud with no spread (all rows
    equal) gets ``σ = 1`` rather than a division by zero; a constant column simply contributes
    nothing to ``σ``.  ``mean_`` and ``scale_`` are the learned statistics.
    """

    def fit(self, Z, y=None):
        Z = self._fit_input(Z)
        self.mean_ = Z.mean(0)
        scale = math.sqrt(float(np.mean(np.sum((Z - self.mean_) ** 2, axis=1))))
        self.scale_ = scale if scale > _TINY else 1.0
        return self

    def transform(self, Z) -> np.ndarray:
        return (self._input(Z) - self.mean_) / self.scale_

    def inverse_transform(self, Z) -> np.ndarray:
        return self._input(Z) * self.scale_ + self.mean_


class ZeroPadding(_Transform):
    """Append zero columns up to ``width`` columns; ``inverse_transform`` drops them again.

    Args:
        width: the number of columns after padding, at least the fitted number (``None``: no
            padding).  ``width_`` is the width in use.
    """

    def __init__(self, width: int | None = None):
        self.width = width

    def fit(self, Z, y=None):
        d = self._fit_input(Z).shape[1]
        width = d if self.width is None else check_positive_int(self.width, "width")
        if width < d:
            raise ValueError(f"width={width} is smaller than the {d} columns of Z")
        self.width_ = width
        return self

    def transform(self, Z) -> np.ndarray:
        Z = self._input(Z)
        return np.hstack([Z, np.zeros((Z.shape[0], self.width_ - Z.shape[1]))])

    def inverse_transform(self, Z) -> np.ndarray:
        check_is_fitted(self, "width_", msg=_NOT_FITTED)  # before width_ is read
        return self._input(Z, columns=self.width_)[:, : self.n_features_in_].copy()


# =============================================================================== translators
class _Translator(TransformerMixin, BaseEstimator):
    """Shared ``fit``/``transform``/``score`` of the translators.

    Subclasses store their parameters (including ``n_pairs`` and ``seed``) and define
    ``min_pairs(d_src)``, ``_fit(X, Y, rng)`` and ``_transform(Z)``.  ``fit`` checks the
    pairs, draws the ``n_pairs`` subset and records ``n_features_in_`` (``d_src``),
    ``n_features_out_`` (``d_dst``), ``pair_indices_`` and ``n_pairs_fit_``.
    """

    def fit(self, Z_src, Z_dst):
        """Fit on paired codes ``Z_src [N, d_src]`` and ``Z_dst [N, d_dst]``; returns ``self``."""
        Z_src, Z_dst = _check_pairs(Z_src, Z_dst)
        self._check_params()
        rng = np.random.default_rng(check_nonnegative_int(self.seed, "seed"))
        index = _draw_pairs(Z_src.shape[0], self.n_pairs, rng)
        self._check_enough_pairs(len(index), Z_src.shape[1])
        self.n_features_in_, self.n_features_out_ = Z_src.shape[1], Z_dst.shape[1]
        self.pair_indices_ = index
        self._fit(Z_src[index], Z_dst[index], rng)
        # Set last: transform's fitted check looks for it, so a failed fit is not "fitted".
        self.n_pairs_fit_ = len(index)
        return self

    def transform(self, Z) -> np.ndarray:
        """Translate source codes ``Z [N, d_src]`` to ``[N, d_dst]`` (float64)."""
        return np.asarray(self._transform(self._source(Z)), dtype=np.float64)

    def _source(self, Z) -> np.ndarray:
        """Source codes checked against the fit (fitted, finite, ``d_src`` columns)."""
        check_is_fitted(self, "n_pairs_fit_", msg=_NOT_FITTED)
        return _check_columns(_check_latents(Z, "Z"), self.n_features_in_, "Z", self)

    def score(self, Z_src, Z_dst) -> float:
        """``R²`` of ``transform(Z_src)`` against ``Z_dst``, averaged uniformly over the
        ``d_dst`` dimensions (:func:`sklearn.metrics.r2_score`)."""
        predicted = self.transform(Z_src)
        Z_dst = _check_columns(_check_latents(Z_dst, "Z_dst"), self.n_features_out_, "Z_dst", self)
        if Z_dst.shape[0] != predicted.shape[0]:
            raise ValueError(
                f"Z_src and Z_dst must pair the same images, got {predicted.shape[0]} rows in "
                f"Z_src and {Z_dst.shape[0]} in Z_dst"
            )
        return float(r2_score(Z_dst, predicted, multioutput="uniform_average"))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True  # Z_dst
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = False  # Z_dst is always [N, d_dst]
        return tags

    def _check_params(self) -> None:
        """Validate the method's own parameters (``n_pairs`` and ``seed`` are shared)."""

    def min_pairs(self, d_src: int) -> int:
        """The fewest pairs this translator can be fitted on, for ``d_src`` source dimensions
        (two, unless the method needs more)."""
        return 2

    def _check_enough_pairs(self, n: int, d_src: int) -> None:
        needed = self.min_pairs(d_src)
        if n < needed:
            raise ValueError(
                f"{type(self).__name__} needs at least {needed} pairs for {d_src}-dimensional "
                f"Z_src, got {n}"
            )

    def _fit(self, X: np.ndarray, Y: np.ndarray, rng: np.random.Generator) -> None:
        raise NotImplementedError

    def _transform(self, Z: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class LinearTranslator(_Translator):
    """``T(z) = z W`` by least squares without intercept (``numpy.linalg.lstsq``).

    ``W`` (``coef_``, shape ``[d_src, d_dst]``, so the map is ``Z @ coef_``; note the transpose
    of scikit-learn's ``coef_`` convention) is identifiable only with at least ``d_src`` pairs,
    the number ``fit`` requires.

    Args:
        n_pairs: fit on this many pairs drawn with ``seed`` (``None``: all).
        seed: seed for the ``n_pairs`` draw.
    """

    def __init__(self, n_pairs: int | None = None, seed: int = 0):
        self.n_pairs = n_pairs
        self.seed = seed

    def min_pairs(self, d_src: int) -> int:
        return d_src

    def _fit(self, X, Y, rng):
        self.coef_ = np.linalg.lstsq(X, Y, rcond=None)[0]

    def _transform(self, Z):
        return Z @ self.coef_


class AffineTranslator(_Translator):
    """``T(z) = z W + b`` by (ridge) least squares with an unpenalised intercept.

    Minimises ``‖Z_src W + 1bᵀ − Z_dst‖²_F + α‖W‖²_F``, the objective of
    :class:`sklearn.linear_model.Ridge`.  With ``alpha = 0`` the fit needs ``d_src + 1`` pairs
    to be identifiable (``d_src`` slopes and one intercept per target), the number ``fit``
    requires; with ``alpha > 0`` the penalty makes it unique from 2 pairs.  ``coef_`` is ``W``
    ``[d_src, d_dst]`` and ``intercept_`` is ``b`` ``[d_dst]``.

    Args:
        alpha: ridge penalty ``α ≥ 0``.
        n_pairs: fit on this many pairs drawn with ``seed`` (``None``: all).
        seed: seed for the ``n_pairs`` draw.
    """

    def __init__(self, alpha: float = 0.0, n_pairs: int | None = None, seed: int = 0):
        self.alpha = alpha
        self.n_pairs = n_pairs
        self.seed = seed

    def _check_params(self):
        _check_nonnegative_float(self.alpha, "alpha")

    def min_pairs(self, d_src: int) -> int:
        return d_src + 1 if float(self.alpha) == 0.0 else 2

    def _fit(self, X, Y, rng):
        self.coef_, self.intercept_ = _ridge(X, Y, float(self.alpha))

    def _transform(self, Z):
        return Z @ self.coef_ + self.intercept_


class ProcrustesTranslator(_Translator):
    r"""Orthogonal Procrustes between the standard-scaled, zero-padded sides.

    ``fit``: scale each side with :class:`StandardScaling` (``x_scaling_``, ``y_scaling_``),
    pad both to ``width = max(d_src, d_dst)`` columns (``x_padding_``, ``y_padding_``), and
    find the orthogonal ``R`` (``rotation_``, ``[width, width]``) minimising ``‖A R − B‖_F``
    with :func:`scipy.linalg.orthogonal_procrustes`.  ``transform``: scale, pad, rotate, drop the
    padding columns of the target side, undo the target scaling.

    The fitted map is a similarity transform: it recovers ``Z_dst = s Z_src Q + 1tᵀ`` exactly
    when ``Q`` is orthogonal, when ``Q [d_src, d_dst]`` has orthonormal rows (the source
    embedded in a larger target space), and when the source data lie in a ``d_dst``-dimensional
    subspace mapped isometrically onto the target.  The scale ``s`` is estimated as the ratio
    of the two sides' root-mean-square norms, not the least-squares (Umeyama) scale, which
    shrinks towards zero as the fit worsens; the two agree when the fit is exact.  ``fit``
    requires 2 pairs, the fewest with a spread to scale.

    Args:
        n_pairs: fit on this many pairs drawn with ``seed`` (``None``: all).
        seed: seed for the ``n_pairs`` draw.
    """

    def __init__(self, n_pairs: int | None = None, seed: int = 0):
        self.n_pairs = n_pairs
        self.seed = seed

    def _fit(self, X, Y, rng):
        width = max(X.shape[1], Y.shape[1])
        self.x_scaling_, self.y_scaling_ = StandardScaling().fit(X), StandardScaling().fit(Y)
        X, Y = self.x_scaling_.transform(X), self.y_scaling_.transform(Y)
        self.x_padding_, self.y_padding_ = ZeroPadding(width).fit(X), ZeroPadding(width).fit(Y)
        A, B = self.x_padding_.transform(X), self.y_padding_.transform(Y)
        self.rotation_ = scipy.linalg.orthogonal_procrustes(A, B)[0]

    def _transform(self, Z):
        rotated = self.x_padding_.transform(self.x_scaling_.transform(Z)) @ self.rotation_
        return self.y_scaling_.inverse_transform(self.y_padding_.inverse_transform(rotated))


class RelativeTranslator(_Translator):
    r"""Relative representations (Moschella et al., ICLR 2023) with a ridge decoder.

    ``fit`` draws ``n_anchors`` anchors ``a_k`` among the pairs in use (``anchor_indices_``
    index the rows of the ``Z_src`` given to ``fit``; ``anchors_`` are their source codes),
    sets ``c`` (``center_``) to the anchors' mean (``center=True``) or 0, and encodes every
    code by its cosine similarities to the anchors,

    .. math::  r(z)_k = \frac{\langle z - c,\, a_k - c\rangle}{\|z - c\|\,\|a_k - c\|},

    which :meth:`relative_code` returns.  ``r`` does not change when the whole source space
    (codes and anchors alike) is rotated, reflected or rescaled isotropically, nor, with
    ``center=True``, translated: two encoders that differ by such a map give the same relative
    code, which is the point of the method.  A zero vector ``z − c`` gets the zero code.  A
    ridge regression with intercept (``alpha``; ``coef_ [K, d_dst]``, ``intercept_``) is then
    fitted from ``r(Z_src)`` to ``Z_dst`` on all the pairs in use.

    This is the post-hoc variant: the published method normalises the relative code (with a
    LayerNorm) and trains the decoder end to end with the encoder; here the encoders are frozen
    and the decoder is linear.  ``r`` forgets ``‖z − c‖``, so a target that depends on the
    source norm is only recovered as far as the norm is predictable from the direction.

    Args:
        n_anchors: number of anchors ``K`` (``None``: every pair in use); at most the number of
            pairs in use.
        center: centre codes and anchors at the anchors' mean before the cosine.
        alpha: the decoder's ridge penalty ``α ≥ 0`` (sum-of-squares scale, as in
            :class:`sklearn.linear_model.Ridge`).
        n_pairs: fit on this many pairs drawn with ``seed`` (``None``: all).
        seed: seed for the ``n_pairs`` draw and then the anchor draw.
    """

    def __init__(
        self,
        n_anchors: int | None = 300,
        center: bool = True,
        alpha: float = 1e-3,
        n_pairs: int | None = None,
        seed: int = 0,
    ):
        self.n_anchors = n_anchors
        self.center = center
        self.alpha = alpha
        self.n_pairs = n_pairs
        self.seed = seed

    def _check_params(self):
        if self.n_anchors is not None:
            check_positive_int(self.n_anchors, "n_anchors")
        if not isinstance(self.center, bool | np.bool_):
            raise ValueError(f"center must be True or False, got {self.center!r}")
        _check_nonnegative_float(self.alpha, "alpha")

    def _check_enough_pairs(self, n: int, d_src: int) -> None:
        if self.n_anchors is not None and int(self.n_anchors) > n:
            raise ValueError(
                f"n_anchors={self.n_anchors} exceeds the {n} pairs in use; lower n_anchors, "
                "or pass n_anchors=None to make every pair an anchor"
            )
        super()._check_enough_pairs(n, d_src)

    def _fit(self, X, Y, rng):
        k = X.shape[0] if self.n_anchors is None else int(self.n_anchors)
        chosen = np.sort(rng.choice(X.shape[0], size=k, replace=False))
        self.anchor_indices_ = self.pair_indices_[chosen]
        self.anchors_ = X[chosen]
        self.center_ = self.anchors_.mean(0) if self.center else np.zeros(X.shape[1])
        self.anchor_directions_ = _unit_rows(self.anchors_ - self.center_)
        self.coef_, self.intercept_ = _ridge(self._relative(X), Y, float(self.alpha))

    def _relative(self, Z: np.ndarray) -> np.ndarray:
        return _unit_rows(Z - self.center_) @ self.anchor_directions_.T

    def relative_code(self, Z) -> np.ndarray:
        """The cosine similarities ``r(Z) [N, n_anchors]`` of source codes to the anchors."""
        return self._relative(self._source(Z))

    def _transform(self, Z):
        return self._relative(Z) @ self.coef_ + self.intercept_


class MLPTranslator(_Translator):
    """A ReLU network from standardised source codes to standardised target codes.

    Inputs and outputs are standardised per dimension
    (:class:`~sklearn.preprocessing.StandardScaler`: ``x_scaler_``, ``y_scaler_``; a constant
    dimension gets scale 1), the
    network (``net_``) has ``hidden_layers`` hidden layers of ``hidden_units`` ReLU units and is
    trained with Adam on the mean squared error, full batch (``batch_size=None``) or in shuffled
    minibatches.  Training stops after ``max_epochs`` epochs, or earlier once the epoch loss
    improves by less than a fraction ``tol`` over 25 epochs.  ``n_iter_`` is the number of
    epochs run and ``loss_`` the last epoch's loss (in standardised units).

    The initial weights (uniform in ``±1/sqrt(fan_in)``, zero biases) and the minibatch order
    come from a ``torch.Generator`` seeded with ``seed``; the global torch RNG is
    neither used nor advanced, so a fit is deterministic given ``seed`` (and the
    number of torch threads).  ``fit`` requires 2 pairs.

    Args:
        hidden_units: width of each hidden layer.
        hidden_layers: 1 or 2.
        max_epochs: upper bound on passes over the pairs.
        learning_rate: Adam's step size.
        weight_decay: L2 penalty (Adam's ``weight_decay``).
        batch_size: pairs per Adam step (``None``: all of them).
        tol: relative loss improvement over 25 epochs below which training stops (0: never).
        n_pairs: fit on this many pairs drawn with ``seed`` (``None``: all).
        seed: seed for the ``n_pairs`` draw, the initial weights and the batch order.
    """

    def __init__(
        self,
        hidden_units: int = 128,
        hidden_layers: int = 1,
        max_epochs: int = 200,
        learning_rate: float = 1e-2,
        weight_decay: float = 0.0,
        batch_size: int | None = None,
        tol: float = 1e-4,
        n_pairs: int | None = None,
        seed: int = 0,
    ):
        self.hidden_units = hidden_units
        self.hidden_layers = hidden_layers
        self.max_epochs = max_epochs
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.tol = tol
        self.n_pairs = n_pairs
        self.seed = seed

    def _check_params(self):
        check_positive_int(self.hidden_units, "hidden_units")
        check_int(self.hidden_layers, "hidden_layers", minimum=1, maximum=2)
        check_positive_int(self.max_epochs, "max_epochs")
        _check_positive_float(self.learning_rate, "learning_rate")
        _check_nonnegative_float(self.weight_decay, "weight_decay")
        if self.batch_size is not None:
            check_positive_int(self.batch_size, "batch_size")
        _check_nonnegative_float(self.tol, "tol")

    def _fit(self, X, Y, rng):
        self.x_scaler_, self.y_scaler_ = StandardScaler().fit(X), StandardScaler().fit(Y)
        inputs = torch.as_tensor(self.x_scaler_.transform(X), dtype=torch.float32)
        targets = torch.as_tensor(self.y_scaler_.transform(Y), dtype=torch.float32)
        generator = torch.Generator().manual_seed(int(self.seed))
        widths = [X.shape[1]] + [int(self.hidden_units)] * int(self.hidden_layers) + [Y.shape[1]]
        self.net_ = regression_mlp(widths, generator)
        optimiser = torch.optim.Adam(
            self.net_.parameters(),
            lr=float(self.learning_rate),
            weight_decay=float(self.weight_decay),
        )
        batch = X.shape[0] if self.batch_size is None else int(self.batch_size)
        self.n_iter_, checkpoint = 0, math.inf
        for epoch in range(int(self.max_epochs)):
            loss = mse_epoch(self.net_, optimiser, inputs, targets, batch, generator)
            self.n_iter_ = epoch + 1
            if epoch % 25 == 24:
                if checkpoint - loss < float(self.tol) * checkpoint:
                    break
                checkpoint = loss
        self.loss_ = loss

    def _transform(self, Z):
        with torch.no_grad():
            out = self.net_(torch.as_tensor(self.x_scaler_.transform(Z), dtype=torch.float32))
        return self.y_scaler_.inverse_transform(out.double().numpy())


def regression_mlp(widths: Sequence[int], generator: torch.Generator) -> torch.nn.Sequential:
    """A ReLU MLP through the layer ``widths`` (inputs first, outputs last), initialised as
    ``nn.Linear`` is (weights uniform in ``±1/√fan_in``) but from ``generator`` (biases zero),
    so that fitting one leaves the global torch RNG untouched."""
    modules: list[torch.nn.Module] = []
    for fan_in, fan_out in zip(widths[:-1], widths[1:], strict=True):
        # skip_init builds the layer without its default initialisation, which would draw from
        # (and advance) the global torch RNG.
        linear = torch.nn.utils.skip_init(torch.nn.Linear, fan_in, fan_out)
        with torch.no_grad():
            bound = 1 / math.sqrt(fan_in)
            linear.weight.uniform_(-bound, bound, generator=generator)
            linear.bias.zero_()
        modules += [linear, torch.nn.ReLU()]
    return torch.nn.Sequential(*modules[:-1])


def mse_epoch(net, optimiser, inputs, targets, batch: int, generator) -> float:
    """One pass of optimiser steps on the mean squared error over minibatches of ``batch``
    rows in an order drawn from ``generator``; returns the row-weighted mean loss."""
    n = inputs.shape[0]
    order = torch.arange(n) if batch >= n else torch.randperm(n, generator=generator)
    total = 0.0
    for start in range(0, n, batch):
        rows = order[start : start + batch]
        optimiser.zero_grad()
        loss = torch.nn.functional.mse_loss(net(inputs[rows]), targets[rows])
        loss.backward()
        optimiser.step()
        total += loss.item() * len(rows)
    return total / n


# =============================================================================== unpaired base
class UnpairedTranslator(TransformerMixin, BaseEstimator):
    """Shared ``transform`` and ``score`` of the translators fitted on two *unpaired* clouds
    (:class:`~pyro_latent.translate.gromov.GromovWassersteinTranslator`,
    :class:`~pyro_latent.translate.level_set_trees.LevelSetTreeTranslator`).

    A subclass's ``fit(X_src, X_dst)`` ends by setting ``translator_``, a fitted paired
    translator, and the attribute named by ``_fitted_attribute`` (set last, so that a failed fit
    is not "fitted").  ``transform`` applies ``translator_``; ``score`` is its ``R²`` on *paired*
    held-out codes, the same score as the paired translators'.
    """

    _fitted_attribute = "translator_"

    def transform(self, Z) -> np.ndarray:
        """Translate source codes ``Z [N, d_src]`` to ``[N, d_dst]`` (float64)."""
        check_is_fitted(self, self._fitted_attribute, msg=_NOT_FITTED)
        return self.translator_.transform(Z)  # which checks Z and returns float64

    def score(self, Z_src, Z_dst) -> float:
        """``R²`` of ``transform(Z_src)`` against *paired* ``Z_dst`` (held-out pairs, if any),
        averaged uniformly over the target dimensions."""
        check_is_fitted(self, self._fitted_attribute, msg=_NOT_FITTED)
        return self.translator_.score(Z_src, Z_dst)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True  # X_dst
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = False
        return tags


# =============================================================================== composition
class OrthogonalAligner(_Translator):
    """``T(z) = z R`` with ``R`` the orthogonal matrix minimising ``‖Z_src R − Z_dst‖_F``
    (:func:`scipy.linalg.orthogonal_procrustes`; ``rotation_``).  Both sides must have the
    same width: compose it with a ``dim_matcher`` in :class:`Translator` otherwise.

    Args:
        n_pairs: fit on this many pairs drawn with ``seed`` (``None``: all).
        seed: seed for the ``n_pairs`` draw.
    """

    def __init__(self, n_pairs: int | None = None, seed: int = 0):
        self.n_pairs = n_pairs
        self.seed = seed

    def _fit(self, X, Y, rng):
        if X.shape[1] != Y.shape[1]:
            raise ValueError(
                f"an orthogonal map needs sides of one width, got {X.shape[1]} and {Y.shape[1]} "
                "columns: give Translator a dim_matcher (e.g. ZeroPadding())"
            )
        self.rotation_ = scipy.linalg.orthogonal_procrustes(X, Y)[0]

    def _transform(self, Z):
        return Z @ self.rotation_


def check_paired_translator(value, name: str):
    """``value`` if it is a paired translator (``fit``, ``transform``, ``min_pairs``), else a
    :class:`TypeError` naming ``name``: the meta-estimators take estimators, not names."""
    if not all(callable(getattr(value, m, None)) for m in ("fit", "transform", "min_pairs")):
        raise TypeError(
            f"{name} must be a paired translator (fit, transform, min_pairs), such as "
            f"AffineTranslator(); got {value!r}"
        )
    return value


def _is_transform(obj) -> bool:
    return all(callable(getattr(obj, m, None)) for m in ("fit", "transform", "inverse_transform"))


class Translator(_Translator):
    r"""A translator composed the way latentis composes one: per-side transforms, a dimension
    matcher and an aligner,

    .. math::

        T(z) = t_{dst}^{-1}\Bigl(m_{dst}^{-1}\bigl(a(m_{src}(t_{src}(z)))\bigr)\Bigr),

    each part fitted on the paired codes in that order: ``src_transform`` on ``Z_src``
    (``src_transform_``), ``dst_transform`` on ``Z_dst`` (``dst_transform_``), then the
    ``dim_matcher`` on both transformed sides, padded to the wider one's width when the matcher
    has a ``width`` parameter left at ``None`` (``src_matcher_``, ``dst_matcher_``), and last
    the ``aligner`` between them (``aligner_``).  Every part is a scikit-learn estimator passed
    as an object, not a name, and fitted on a :func:`sklearn.base.clone`, so
    ``get_params(deep=True)``, ``set_params(aligner__alpha=…)``, :func:`~sklearn.base.clone`
    and grid search reach the nested parameters.

    :func:`translator_preset` builds the compositions of the named translators; for instance
    ``"procrustes"`` is ``Translator(OrthogonalAligner(), StandardScaling(),
    StandardScaling(), ZeroPadding())``, the same map as :class:`ProcrustesTranslator`.

    Args:
        aligner: a paired translator fitted between the transformed sides (default
            :class:`AffineTranslator`); its own ``n_pairs`` is ignored (the pairs are drawn
            here).
        src_transform, dst_transform: transforms with ``fit``, ``transform`` and
            ``inverse_transform`` (:class:`StandardScaling`, :class:`Centering`, a
            scikit-learn scaler), or ``None``.
        dim_matcher: a transform applied to both sides to give them one width
            (:class:`ZeroPadding`), or ``None``.
        n_pairs: fit on this many pairs drawn with ``seed`` (``None``: all).
        seed: seed for the ``n_pairs`` draw.
    """

    def __init__(
        self,
        aligner=None,
        src_transform=None,
        dst_transform=None,
        dim_matcher=None,
        n_pairs: int | None = None,
        seed: int = 0,
    ):
        self.aligner = aligner
        self.src_transform = src_transform
        self.dst_transform = dst_transform
        self.dim_matcher = dim_matcher
        self.n_pairs = n_pairs
        self.seed = seed

    def _aligner(self):
        return AffineTranslator() if self.aligner is None else self.aligner

    def _check_params(self):
        check_paired_translator(self._aligner(), "aligner")
        for name in ("src_transform", "dst_transform", "dim_matcher"):
            part = getattr(self, name)
            if part is not None and not _is_transform(part):
                raise TypeError(
                    f"{name} must be a transform with fit, transform and inverse_transform "
                    f"(e.g. StandardScaling()), or None; got {part!r}"
                )

    def min_pairs(self, d_src: int) -> int:
        return self._aligner().min_pairs(d_src)

    @staticmethod
    def _fitted(part, Z):
        """``(fitted clone of part, its transform of Z)``, or ``(None, Z)`` without a part."""
        if part is None:
            return None, Z
        fitted = clone(part).fit(Z)
        return fitted, fitted.transform(Z)

    def _fit(self, X, Y, rng):
        self.src_transform_, X = self._fitted(self.src_transform, X)
        self.dst_transform_, Y = self._fitted(self.dst_transform, Y)
        self.src_matcher_ = self.dst_matcher_ = None
        if self.dim_matcher is not None:
            matcher = clone(self.dim_matcher)
            if "width" in matcher.get_params() and matcher.get_params()["width"] is None:
                matcher.set_params(width=max(X.shape[1], Y.shape[1]))
            self.src_matcher_, X = self._fitted(matcher, X)
            self.dst_matcher_, Y = self._fitted(matcher, Y)
        aligner = clone(self._aligner())
        if "n_pairs" in aligner.get_params():
            aligner.set_params(n_pairs=None)
        self.aligner_ = aligner.fit(X, Y)

    def _transform(self, Z):
        for part in (self.src_transform_, self.src_matcher_):
            Z = Z if part is None else part.transform(Z)
        Z = self.aligner_.transform(Z)
        for part in (self.dst_matcher_, self.dst_transform_):
            Z = Z if part is None else part.inverse_transform(Z)
        return Z


def translator_preset(name: str, **params) -> Translator:
    """The named translator (one of :data:`TRANSLATORS` but ``"mlp"``) as a composed
    :class:`Translator`, with ``params`` for the composition (``n_pairs``, ``seed``):

    * ``"linear"``: ``Translator(LinearTranslator())``;
    * ``"affine"``: ``Translator(AffineTranslator())``;
    * ``"procrustes"``: ``Translator(OrthogonalAligner(), StandardScaling(),
      StandardScaling(), ZeroPadding())``;
    * ``"relative"``: ``Translator(RelativeTranslator())``.
    """
    presets = {
        "linear": lambda: Translator(LinearTranslator(), **params),
        "affine": lambda: Translator(AffineTranslator(), **params),
        "procrustes": lambda: Translator(
            OrthogonalAligner(), StandardScaling(), StandardScaling(), ZeroPadding(), **params
        ),
        "relative": lambda: Translator(RelativeTranslator(), **params),
    }
    if name not in presets:
        raise ValueError(f"unknown preset {name!r}; available: {', '.join(presets)}")
    return presets[name]()


def translator_name(translator) -> str:
    """The registry name of a translator instance (``"affine"`` for an
    :class:`AffineTranslator`), or its class name when it has none."""
    for name, cls in _CLASSES.items():
        if type(translator) is cls:
            return name
    return type(translator).__name__


# =============================================================================== registry
_CLASSES = {
    "linear": LinearTranslator,
    "affine": AffineTranslator,
    "procrustes": ProcrustesTranslator,
    "relative": RelativeTranslator,
    "mlp": MLPTranslator,
}
TRANSLATORS = tuple(_CLASSES)


def make_translator(name: str, **params) -> _Translator:
    """A fresh, unfitted translator by name (one of :data:`TRANSLATORS`) with ``params``."""
    if name not in _CLASSES:
        raise ValueError(f"unknown translator {name!r}; available: {', '.join(TRANSLATORS)}")
    return _CLASSES[name](**params)
