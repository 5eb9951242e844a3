r"""Concept directions in a world whose factors are known: the truth, and every method scored on it.

The shoes have no ground truth: a real shoe has no true height vector.  A rendered world does
(:mod:`pyro_latent.vae.shapes`): its images are ``x = r(f)`` for a factor table ``f``, so a single
factor can be moved while the rest stay put.  Everything here takes the renderer ``r`` as a
callable ``[N, K] → [N, 784]`` and a :class:`~pyro_latent.core.latent_model.LatentModel` with
encoder mean ``μ`` and decoder ``g``.

**The true local direction** of factor ``k`` at an image (:func:`true_directions`) is the change of
the code when only that factor moves, by central differences over counterfactual pairs:

    d_k(f) = (μ(r(f + δ e_k)) - μ(r(f - δ e_k))) / 2δ.

**A read-out** (:class:`FactorReadout`) reads the continuous factors off an image: a small MLP
fitted on rendered images with their exact factors.  It is what purity is measured with here,
in place of the shoe meters, and its outputs are differentiable, so the commenter's ``h - αb``
and the Jacobian direction hold and raise the read-out's brightness and height
(:func:`~pyro_latent.concepts.shoe_directions.pair_directions`).

**A traversal** ``g(z₀ + α d)`` is scored by the read-out (:func:`factor_traversal_record`): the
slope ``s_j`` of each read-out factor against ``α`` (least squares over the grid), in units of
that factor's spread ``σ_j`` over the world, gives

    purity = max(s_k, 0)/σ_k / Σ_j |s_j|/σ_j,     leakage_j = (|s_j|/σ_j) / (s_k/σ_k)  (j ≠ k),

so purity 1 moves only the target factor, and in the direction the concept names (a direction
is oriented to raise its concept: one that lowers it scores 0), and ``leakage_j`` is how much of
factor ``j`` moves per unit of the target (both in spreads).  The discrete factor (the shape)
is not read out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.metrics import r2_score
from sklearn.utils.validation import check_is_fitted

from pyro_latent.concepts.traversal import traverse
from pyro_latent.core.checks import (
    check_finite_float,
    check_image_tensor,
    check_positive_float,
    check_positive_int,
)
from pyro_latent.core.latent_model import check_latent_model, encode_in_batches
from pyro_latent.translate.translators import mse_epoch, regression_mlp

__all__ = [
    "FactorReadout",
    "counterfactual",
    "factor_record",
    "factor_traversal_record",
    "true_directions",
]

PIXELS = 784


def _factor_table(factors, name: str = "factors") -> torch.Tensor:
    if not isinstance(factors, torch.Tensor):
        factors = torch.as_tensor(np.asarray(factors, dtype=np.float64))
    if factors.ndim != 2 or factors.shape[0] == 0:
        raise ValueError(f"{name} must be a table [N, K] with N ≥ 1; got {tuple(factors.shape)}")
    if not factors.is_floating_point() or not bool(torch.isfinite(factors).all()):
        raise ValueError(f"{name} must hold finite floating-point values")
    return factors


def _column(index, n_columns: int, name: str = "factor") -> int:
    if isinstance(index, bool) or not isinstance(index, int | np.integer):
        raise ValueError(f"{name} must be a column index (an int); got {index!r}")
    if not 0 <= index < n_columns:
        raise ValueError(f"{name} must be a column index in 0..{n_columns - 1}; got {index}")
    return int(index)


def counterfactual(factors, moves: Mapping[int, float]) -> torch.Tensor:
    """A copy of the factor table with column ``k`` moved by ``moves[k]`` for each ``k``, the
    rest unchanged: ``counterfactual(f, {height: 2, y: -1})`` is the post's "+2 pixels on
    top"."""
    factors = _factor_table(factors)
    if not isinstance(moves, Mapping):
        raise ValueError(f"moves must map columns to steps, e.g. {{2: 1.0}}; got {moves!r}")
    moved = factors.clone()
    for column, step in moves.items():
        moved[:, _column(column, factors.shape[1])] += check_finite_float(step, "step")
    return moved


def true_directions(model, render: Callable, factors, factor: int, delta: float) -> torch.Tensor:
    """``d_k(f) = (μ(r(f + δ e_k)) - μ(r(f - δ e_k))) / 2δ`` for each row of ``factors``:
    ``[N, D]`` (float64), the code's change per unit of factor ``k`` with the others held.

    ``render`` must accept the moved tables (keep the rows ``δ`` inside the world's range)."""
    check_latent_model(model)
    if not callable(render):
        raise ValueError(f"render must be a callable factors [N, K] -> images; got {render!r}")
    factors = _factor_table(factors)
    factor = _column(factor, factors.shape[1])
    delta = check_positive_float(delta, "delta")
    with torch.no_grad():
        up = encode_in_batches(model, render(counterfactual(factors, {factor: delta})))[0]
        down = encode_in_batches(model, render(counterfactual(factors, {factor: -delta})))[0]
    return (up.double() - down.double()) / (2 * delta)


class FactorReadout(RegressorMixin, BaseEstimator):
    """An MLP ``images [N, 784] → factors [N, K]``, fitted by Adam on the mean squared error of
    the standardised factors; differentiable in torch through :meth:`meter`.

    Parameters: ``hidden`` (layer widths), ``epochs``, ``batch_size``, ``lr`` and ``seed`` (the
    initial weights and the minibatch order).  Learned state: ``net_`` (the torch network),
    ``mean_`` and ``scale_`` (the factors' standardisation), ``n_factors_``, ``losses_`` (the
    mean loss per epoch).
    """

    def __init__(
        self,
        hidden: Sequence[int] = (256, 128),
        epochs: int = 10,
        batch_size: int = 128,
        lr: float = 1e-3,
        seed: int = 0,
    ):
        self.hidden = hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.seed = seed

    def _images(self, images) -> torch.Tensor:
        check_image_tensor(images, "images")
        if images.ndim != 2 or images.shape[1] != PIXELS:
            images = images.reshape(images.shape[0], -1) if images.ndim > 1 else images
        if images.ndim != 2 or images.shape[1] != PIXELS:
            raise ValueError(f"images must be [N, {PIXELS}] or [N, 28, 28]; got {images.shape}")
        return images.to(torch.float32)

    def fit(self, images, factors):
        images = self._images(images)
        factors = _factor_table(factors).to(torch.float32)
        if factors.shape[0] != images.shape[0]:
            raise ValueError(f"{images.shape[0]} images but {factors.shape[0]} factor rows")
        if isinstance(self.hidden, str | bytes) or not isinstance(self.hidden, Sequence):
            raise ValueError(f"hidden must be a sequence of layer widths; got {self.hidden!r}")
        hidden = [check_positive_int(h, "hidden width") for h in self.hidden]
        epochs = check_positive_int(self.epochs, "epochs")
        batch = check_positive_int(self.batch_size, "batch_size")
        lr = check_positive_float(self.lr, "lr")
        scale = factors.std(0)
        if images.shape[0] < 2 or not bool((scale > 0).all()):
            raise ValueError("every factor must vary over at least 2 images to be read out")
        self.mean_, self.scale_, self.n_factors_ = factors.mean(0), scale, factors.shape[1]
        generator = torch.Generator().manual_seed(int(self.seed))
        self.net_ = regression_mlp([PIXELS, *hidden, self.n_factors_], generator)
        targets = (factors - self.mean_) / self.scale_
        optimiser = torch.optim.Adam(self.net_.parameters(), lr=lr)
        self.losses_ = [
            mse_epoch(self.net_, optimiser, images, targets, batch, generator)
            for _ in range(epochs)
        ]
        self.net_.eval().requires_grad_(False)
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The read-out factors ``[N, K]`` in their own units, differentiable in ``images``."""
        check_is_fitted(self, "net_")
        if not isinstance(images, torch.Tensor) or images.ndim != 2 or images.shape[1] != PIXELS:
            raise ValueError(
                f"images must be a tensor [N, {PIXELS}]; got {getattr(images, 'shape', images)!r}"
            )
        return self.net_(images.to(torch.float32)) * self.scale_ + self.mean_

    def predict(self, images) -> np.ndarray:
        with torch.no_grad():
            return self.forward(self._images(images)).double().numpy()

    def r2_per_factor(self, images, factors) -> list[float]:
        """The held-out R² of each factor."""
        truth = _factor_table(factors).double().numpy()
        return [float(v) for v in r2_score(truth, self.predict(images), multioutput="raw_values")]

    def score(self, images, factors, sample_weight=None) -> float:
        return float(np.mean(self.r2_per_factor(images, factors)))

    def meter(self, column: int) -> Callable[[torch.Tensor], torch.Tensor]:
        """The read-out of factor ``column`` as a differentiable meter of one image ``[784]``
        (a scalar tensor), for :func:`~pyro_latent.concepts.directions.meter_gradients`."""
        check_is_fitted(self, "net_")
        column = _column(column, self.n_factors_)

        def read(image: torch.Tensor) -> torch.Tensor:
            if not isinstance(image, torch.Tensor) or image.numel() != PIXELS:
                raise ValueError(f"the meter reads one image of {PIXELS} pixels; got {image!r}")
            return self.forward(image.reshape(1, PIXELS))[0, column]

        return read


def factor_traversal_record(
    decode, readout: FactorReadout, z0, direction, alphas, target: int, spreads
) -> dict:
    """Traverse ``g(z₀ + α d)`` and score it with the read-out (:func:`factor_record`)."""
    return factor_record(traverse(decode, z0, direction, alphas), readout, alphas, target, spreads)


def factor_record(images: torch.Tensor, readout: FactorReadout, alphas, target: int, spreads):
    """Score decoded images ``[A, 784]``, one per ``α`` (a straight traversal or any path),
    with the read-out (module docstring).

    ``spreads`` are the read-out factors' standard deviations over the world ``[K]`` (the units
    of purity), ``target`` the column the direction should move.  Returns the read-out
    ``values`` ``[A][K]``, each factor's ``slopes`` per latent unit, the target's ``gain`` (its
    slope), ``purity`` (``None`` when nothing moves; 0 when the target moves the wrong way,
    ``s_k ≤ 0``) and ``leakage`` ``{column: ratio}`` (``None`` unless the target rises)."""
    with torch.no_grad():
        values = readout.forward(images).double().numpy()
    alphas = np.asarray([float(a) for a in alphas])
    if alphas.shape != (len(values),) or not np.isfinite(alphas).all() or np.ptp(alphas) == 0:
        raise ValueError(f"{len(values)} images need as many distinct α; got {alphas.tolist()}")
    spreads = np.asarray(spreads, dtype=np.float64)
    if spreads.shape != (values.shape[1],) or not (spreads > 0).all():
        raise ValueError(f"spreads must be {values.shape[1]} positive numbers; got {spreads}")
    target = _column(target, values.shape[1], "target")
    centred = alphas - alphas.mean()
    slopes = centred @ (values - values.mean(0)) / (centred @ centred)
    moved = np.abs(slopes) / spreads
    total = float(moved.sum())
    own = max(float(slopes[target]), 0.0) / float(spreads[target])  # the wrong way earns nothing
    return {
        "values": values.tolist(),
        "slopes": slopes.tolist(),
        "gain": float(slopes[target]),
        "purity": own / total if total > 0 else None,
        "leakage": {
            j: (float(moved[j]) / own if own > 0 else None)
            for j in range(values.shape[1])
            if j != target
        },
    }
