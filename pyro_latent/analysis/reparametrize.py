r"""Invertible changes of coordinates of a latent space, and a VAE seen through one.

A trained VAE with encoder mean ``μ(x)`` and decoder ``f(z)`` is one function of the images,
``x ↦ f(μ(x))``, written in one of many possible coordinate systems.  For any invertible map
``φ : ℝ^D → ℝ^D`` the pair

.. math::

    \tilde\mu = \varphi \circ \mu, \qquad \tilde f = f \circ \varphi^{-1}

is another VAE with the same reconstructions, ``f̃(μ̃(x)) = f(μ(x))``, whose latent space is the
image of the first under ``φ``.  A measure of "how similar are two latent spaces" should not be
fooled by such a relabelling: a coordinate-free one scores ``(μ, f)`` and ``(μ̃, f̃)`` as the
same space, a basis-dependent one does not.  :class:`ReparametrizedVAE` builds ``(μ̃, f̃)``.

The maps, each with ``forward(z) -> y``, ``inverse(y) -> z`` and ``jacobian(z)`` on batches
``[N, D]`` of torch tensors (row ``n`` is one code; all differentiable), column-vector
convention ``y = A z`` (so a batch is ``z Aᵀ``):

* :class:`Identity`: ``y = z``.
* :class:`Rotation`: ``y = Q z`` with ``Q`` Haar-distributed on the orthogonal group ``O(D)``
  (QR of a seeded Gaussian matrix, with the signs of ``R``'s diagonal moved into ``Q`` so that
  the factorisation, and so the distribution, is unique).  ``det Q = ±1``: a reflection is as
  likely as a proper rotation, and either preserves every distance.
* :class:`Linear`: ``y = A z`` with ``A = U diag(s) Vᵀ``, ``U``, ``V`` Haar-orthogonal and the
  singular values ``s`` evenly spaced in ``log`` from ``√κ`` down to ``1/√κ``, so that
  ``A`` has condition number ``κ`` and ``|det A| = 1``: it stretches some directions and
  squashes others without changing volumes.  ``determinant=c`` multiplies every ``s_k`` by
  ``c^{1/D}``: the same shape of map, now with ``|det A| = c``.
* :class:`MonotoneRotation`: ``y = Q g(z)`` with ``g(z) = z + s tanh(z)`` elementwise,
  ``s ≥ 0``; a nonlinear map whose Jacobian ``Q diag(1 + s sech² z)`` varies from point to
  point.  ``g`` is inverted by Newton's method (see :meth:`MonotoneRotation.inverse`).
* :class:`AdditiveCoupling`: ``L`` additive coupling layers as in NICE (Dinh, Krueger and
  Bengio 2015).  Layer ``l`` splits the axes into ``a`` and ``b`` (a random half each layer)
  and sets ``y_a = z_a``, ``y_b = z_b + m_l(z_a)`` with a fixed random
  network ``m_l(u) = W₂ tanh(W₁ u + c)``.  Each layer's Jacobian is unit lower triangular in
  the ``(a, b)`` order, so ``det = 1`` at every point, while the Jacobian itself varies: a
  nonlinear *volume-preserving* map.  The inverse peels the layers off in reverse,
  ``z_b = y_b − m_l(y_a)``.

The Jacobian of each map is ``∂y/∂z`` at ``z``, ``[N, D, D]``; ``jacobian_is_constant`` says
whether it is the same everywhere (:class:`Identity`, :class:`Rotation`, :class:`Linear`), and
``volume_preserving`` whether ``|det J| = 1`` everywhere (all but a :class:`Linear` with
``determinant ≠ 1`` and :class:`MonotoneRotation` with ``strength > 0``).  A density in the new
coordinates is ``p_Y(φ(z)) = p_Z(z) / |det J(z)|``: a volume-preserving map only moves it, a
map with constant ``|det J|`` also rescales it by one factor, and any other map reshapes it.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from pyro_latent.core.checks import (
    check_nonnegative_int,
    check_positive_float,
    check_positive_int,
    check_probability,
)
from pyro_latent.core.latent_model import (
    check_codes,
    check_latent_model,
    log_posterior,
    log_prior,
    observation_model,
    require_likelihood,
)

__all__ = [
    "AdditiveCoupling",
    "Identity",
    "LatentMap",
    "Linear",
    "MonotoneRotation",
    "ReparametrizedVAE",
    "Rotation",
    "haar_orthogonal",
]

# Newton's iteration for g(z) = u stops once no step moves z by more than this many ulps.
_NEWTON_ULPS = 4.0
# The concavity argument in MonotoneRotation.inverse bounds the iterations needed far below this.
_NEWTON_MAX_STEPS = 100


# ------------------------------------------------------------------------------- helpers
def haar_orthogonal(dim: int, rng: np.random.Generator) -> np.ndarray:
    """A ``dim × dim`` orthogonal matrix drawn from the Haar measure on ``O(dim)``.

    ``G = QR`` for a standard Gaussian ``G``; multiplying column ``j`` of ``Q`` by the sign of
    ``R_jj`` makes the factorisation unique, and then ``Q`` is Haar-distributed (without the
    fix its distribution depends on the QR routine's sign convention).
    """
    Q, R = np.linalg.qr(rng.standard_normal((dim, dim)))
    signs = np.sign(np.diag(R))
    signs[signs == 0] = 1.0  # a zero pivot has probability zero, but must not zero a column
    return Q * signs


def _check_batch(z, dim: int, name: str) -> torch.Tensor:
    """A finite floating-point torch tensor ``[N, dim]``, or a ``ValueError`` naming ``name``."""
    if not isinstance(z, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(z).__name__}")
    if not z.is_floating_point():
        raise ValueError(f"{name} must be floating point, got dtype {z.dtype}")
    if z.ndim != 2 or z.shape[1] != dim:
        raise ValueError(f"{name} must have shape (N, {dim}), got {tuple(z.shape)}")
    if not bool(torch.isfinite(z.detach()).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    return z


def _like(matrix: np.ndarray, z: torch.Tensor) -> torch.Tensor:
    """A float64 numpy matrix as a tensor of ``z``'s dtype and device."""
    return torch.as_tensor(matrix).to(device=z.device, dtype=z.dtype)


# ------------------------------------------------------------------------------- the maps
class LatentMap:
    """An invertible map ``φ : ℝ^D → ℝ^D`` of latent codes, applied to batches ``[N, D]``.

    Subclasses set ``dim``, ``name`` (a short word, used to name reparametrised VAEs) and
    ``jacobian_is_constant``, and define ``_forward``, ``_inverse`` and ``_jacobian`` on checked
    inputs.  Calling the map is ``forward``.  Every method computes in its input's dtype and
    device, and is differentiable with respect to its input.
    """

    name = "map"
    jacobian_is_constant = True
    volume_preserving = True

    def __init__(self, dim: int):
        self.dim = check_positive_int(dim, "dim")

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """``y = φ(z)``, ``[N, D]``."""
        return self._forward(_check_batch(z, self.dim, "z"))

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        """``z = φ⁻¹(y)``, ``[N, D]``."""
        return self._inverse(_check_batch(y, self.dim, "y"))

    def jacobian(self, z: torch.Tensor) -> torch.Tensor:
        """``∂φ/∂z`` at each row of ``z``: ``[N, D, D]``, entry ``[n, i, k] = ∂y_i/∂z_k``."""
        return self._jacobian(_check_batch(z, self.dim, "z"))

    __call__ = forward

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dim={self.dim})"

    def _forward(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _jacobian(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class Identity(LatentMap):
    """``φ(z) = z``: the control, a reparametrisation that changes nothing."""

    name = "identity"

    def _forward(self, z):
        return z

    def _inverse(self, y):
        return y

    def _jacobian(self, z):
        eye = torch.eye(self.dim, device=z.device, dtype=z.dtype)
        return eye.expand(z.shape[0], self.dim, self.dim)


class _MatrixMap(LatentMap):
    """``φ(z) = A z`` for a fixed invertible ``A`` (``matrix``) with a known inverse
    (``inverse_matrix``), both float64 numpy arrays."""

    matrix: np.ndarray
    inverse_matrix: np.ndarray

    def _forward(self, z):
        return z @ _like(self.matrix, z).T

    def _inverse(self, y):
        return y @ _like(self.inverse_matrix, y).T

    def _jacobian(self, z):
        return _like(self.matrix, z).expand(z.shape[0], self.dim, self.dim)


class Rotation(_MatrixMap):
    """``φ(z) = Q z`` with ``Q`` (``matrix``) Haar-orthogonal, drawn with
    ``numpy.random.default_rng(seed)`` (:func:`haar_orthogonal`); ``φ⁻¹(y) = Qᵀ y``.

    Args:
        dim: the latent dimension ``D``.
        seed: seed of the draw.
    """

    name = "rotation"

    def __init__(self, dim: int, seed: int = 0):
        super().__init__(dim)
        self.seed = check_nonnegative_int(seed, "seed")
        self.matrix = haar_orthogonal(self.dim, np.random.default_rng(self.seed))
        # The transpose is the exact inverse; a numerical inverse would only add rounding.
        self.inverse_matrix = self.matrix.T.copy()

    def __repr__(self) -> str:
        return f"Rotation(dim={self.dim}, seed={self.seed})"


class Linear(_MatrixMap):
    """``φ(z) = A z``, ``A = U diag(s) Vᵀ`` with condition number ``κ`` and ``|det A| = 1``.

    ``U`` and ``V`` are Haar-orthogonal (drawn in that order with
    ``numpy.random.default_rng(seed)``) and ``s_k = κ^{1/2 − (k−1)/(D−1)}``, ``k = 1..D``: evenly
    spaced in ``log s`` from ``½ log κ`` to ``−½ log κ``.  The inverse ``V diag(1/s) Uᵀ`` is
    assembled from the same factors rather than by inverting ``A`` numerically.

    Args:
        dim: the latent dimension ``D``.
        seed: seed of the draw.
        condition: ``κ = s_max / s_min ≥ 1``; a 1-D map has only one singular value, so
            ``dim = 1`` needs ``condition = 1``.
        determinant: ``|det A| > 0``; every singular value is multiplied by
            ``determinant^{1/D}`` (``1``: volume-preserving).
    """

    name = "linear"

    def __init__(self, dim: int, seed: int = 0, condition: float = 10.0, determinant: float = 1.0):
        super().__init__(dim)
        self.determinant = check_positive_float(determinant, "determinant")
        self.volume_preserving = self.determinant == 1.0
        self.seed = check_nonnegative_int(seed, "seed")
        self.condition = check_probability(
            condition, "condition", low=1.0, high=math.inf, include_high=False
        )
        if self.dim == 1 and self.condition != 1.0:
            raise ValueError(
                f"a 1-D linear map has condition number 1, got condition={condition!r}"
            )
        rng = np.random.default_rng(self.seed)
        U, V = haar_orthogonal(self.dim, rng), haar_orthogonal(self.dim, rng)
        half = 0.5 * math.log(self.condition)
        log_scale = math.log(self.determinant) / self.dim
        self.singular_values = np.exp(np.linspace(half, -half, self.dim) + log_scale)
        self.matrix = (U * self.singular_values) @ V.T
        self.inverse_matrix = (V / self.singular_values) @ U.T

    def __repr__(self) -> str:
        det = "" if self.determinant == 1.0 else f", determinant={self.determinant:g}"
        return f"Linear(dim={self.dim}, seed={self.seed}, condition={self.condition:g}{det})"


class MonotoneRotation(LatentMap):
    r"""``φ(z) = Q g(z)``, ``g(z) = z + s tanh(z)`` elementwise, ``Q`` as in :class:`Rotation`.

    ``g' = 1 + s sech²(z) ∈ [1, 1 + s]``, so ``g`` is a strictly increasing bijection of ``ℝ``
    and ``φ`` is invertible, with Jacobian ``Q diag(1 + s sech² z)`` and ``|det| ∈ [1,
    (1+s)^D]``: it stretches the region near the origin, up to ``1 + s`` times, and leaves the
    tails nearly rigid.

    Args:
        dim: the latent dimension ``D``.
        seed: seed of ``Q``.
        strength: ``s ≥ 0`` (``0`` is :class:`Rotation` with the same seed).
    """

    name = "monotone-rotation"
    jacobian_is_constant = False

    def __init__(self, dim: int, seed: int = 0, strength: float = 0.5):
        super().__init__(dim)
        self.seed = check_nonnegative_int(seed, "seed")
        self.strength = check_probability(
            strength, "strength", low=0.0, high=math.inf, include_high=False
        )
        self.volume_preserving = self.strength == 0.0
        self.matrix = haar_orthogonal(self.dim, np.random.default_rng(self.seed))

    def __repr__(self) -> str:
        return f"MonotoneRotation(dim={self.dim}, seed={self.seed}, strength={self.strength:g})"

    def _g(self, z: torch.Tensor) -> torch.Tensor:
        return z + self.strength * torch.tanh(z)

    def _g_prime(self, z: torch.Tensor) -> torch.Tensor:
        return 1.0 + self.strength * (1.0 - torch.tanh(z) ** 2)

    def _forward(self, z):
        return self._g(z) @ _like(self.matrix, z).T

    def _jacobian(self, z):
        # Q diag(d): column k of Q scaled by d_k, for every row of the batch.
        return _like(self.matrix, z) * self._g_prime(z)[:, None, :]

    def _inverse(self, y):
        r"""``Qᵀ y = u``, then ``g(z) = u`` elementwise by Newton's method.

        ``g`` is odd, concave on ``z ≥ 0`` and convex on ``z ≤ 0``.  For ``u > 0`` the
        iteration starts from ``z₀ = u / (1 + s)`` (the Newton step from 0, and ``≤ z*``
        since ``g' ≤ 1 + s``); on a concave increasing function each tangent lies above the
        graph, so every iterate stays in ``[0, z*]`` and they increase monotonically to the
        root, quadratically at the end.  ``u < 0`` mirrors this.  The iteration runs without
        autograd; one last Newton step with autograd on then carries the implicit derivative
        ``∂z/∂u = 1 / g'(z)``, exact at the root.
        """
        u = y @ _like(self.matrix, y)  # Qᵀ y for every row
        scale = 1.0 + self.strength
        eps = torch.finfo(y.dtype).eps
        with torch.no_grad():
            z = u.detach() / scale
            for _ in range(_NEWTON_MAX_STEPS):
                step = (self._g(z) - u.detach()) / self._g_prime(z)
                z = z - step
                if bool((step.abs() <= _NEWTON_ULPS * eps * z.abs().clamp_min(1.0)).all()):
                    break
        return z - (self._g(z) - u) / self._g_prime(z)


class AdditiveCoupling(LatentMap):
    r"""``φ = c_L ∘ … ∘ c_1``, NICE's additive coupling layers (Dinh, Krueger and Bengio 2015).

    Layer ``l`` conditions on a random half ``a_l`` of the axes (``⌊D/2⌋`` of them, drawn per
    layer) and shifts the others, ``b_l``:

    .. math::

        y_{a} = z_{a}, \qquad y_{b} = z_{b} + m_l(z_{a}), \qquad
        m_l(u) = W_{2} \tanh(W_{1} u + c),

    with fixed Gaussian weights (``W₁ ~ N(0, 1/|a|)``, ``c ~ N(0, ¼)``, ``W₂ ~ N(0, s²/h)`` for
    ``h`` hidden units and strength ``s``).  In the order ``(a, b)`` the layer's Jacobian is
    ``[[I, 0], [∂m/∂u, I]]``, unit lower triangular, so ``det J = 1`` at every point although
    ``J`` varies: the map moves volume around without creating or destroying any.  The inverse
    is exact, ``z_b = y_b − m_l(y_a)``, layer by layer in reverse; the Jacobian is the product
    of the layers' Jacobians at the intermediate points, with ``∂m/∂u = W₂ diag(sech²(W₁u +
    c)) W₁``.

    Args:
        dim: the latent dimension ``D ≥ 2`` (a coupling needs two halves).
        seed: seed of the splits and weights (``numpy.random.default_rng``).
        layers: ``L ≥ 1``.
        hidden: ``h``, hidden units of each ``m_l``.
        strength: ``s ≥ 0``, the scale of the shifts (``0``: the identity).
    """

    name = "coupling"
    jacobian_is_constant = False

    def __init__(
        self, dim: int, seed: int = 0, layers: int = 4, hidden: int = 16, strength: float = 1.0
    ):
        super().__init__(dim)
        if self.dim < 2:
            raise ValueError(
                f"a coupling layer splits the axes in two, so dim must be ≥ 2; got {dim}"
            )
        self.seed = check_nonnegative_int(seed, "seed")
        self.layers = check_positive_int(layers, "layers")
        self.hidden = check_positive_int(hidden, "hidden")
        self.strength = check_probability(
            strength, "strength", low=0.0, high=math.inf, include_high=False
        )
        rng = np.random.default_rng(self.seed)
        half = self.dim // 2
        self._layers = []
        for _ in range(self.layers):
            order = rng.permutation(self.dim)
            a, b = np.sort(order[:half]), np.sort(order[half:])
            w1 = rng.standard_normal((self.hidden, len(a))) / math.sqrt(len(a))
            c = 0.5 * rng.standard_normal(self.hidden)
            w2 = self.strength * rng.standard_normal((len(b), self.hidden)) / math.sqrt(self.hidden)
            self._layers.append((a, b, w1, c, w2))

    def __repr__(self) -> str:
        return (
            f"AdditiveCoupling(dim={self.dim}, seed={self.seed}, layers={self.layers}, "
            f"hidden={self.hidden}, strength={self.strength:g})"
        )

    @staticmethod
    def _pre_activation(u, w1, c):
        return u @ _like(w1, u).T + _like(c, u)

    def _shift(self, u, w1, c, w2):
        return torch.tanh(self._pre_activation(u, w1, c)) @ _like(w2, u).T

    def _forward(self, z):
        y = z
        for a, b, w1, c, w2 in self._layers:
            y = y.clone()  # out of place, so autograd sees every layer
            y[:, b] = y[:, b] + self._shift(y[:, a], w1, c, w2)
        return y

    def _inverse(self, y):
        z = y
        for a, b, w1, c, w2 in reversed(self._layers):
            z = z.clone()
            z[:, b] = z[:, b] - self._shift(z[:, a], w1, c, w2)
        return z

    def _jacobian(self, z):
        n = z.shape[0]
        jac = torch.eye(self.dim, device=z.device, dtype=z.dtype).expand(n, -1, -1).clone()
        y = z
        for a, b, w1, c, w2 in self._layers:
            sech2 = 1.0 - torch.tanh(self._pre_activation(y[:, a], w1, c)) ** 2
            # ∂m/∂u = W₂ diag(sech²) W₁, one [|b|, |a|] block per row of the batch
            dm = torch.einsum("bh,nh,ha->nba", _like(w2, z), sech2, _like(w1, z))
            jac = jac.clone()
            jac[:, b, :] = jac[:, b, :] + dm @ jac[:, a, :]
            y = y.clone()
            y[:, b] = y[:, b] + self._shift(y[:, a], w1, c, w2)
        return jac


# ------------------------------------------------------------------------------- the VAE
class ReparametrizedVAE(nn.Module):
    r"""A trained VAE in the coordinates ``y = φ(z)``: the same function of the images.

    ``encode(x) = (φ(μ), σ̃)`` and ``decode(y) = vae.decode(φ⁻¹(y))``, so ``reconstruct(x) =
    vae.decode(φ⁻¹(φ(μ(x))))`` equals ``vae.reconstruct(x)`` up to rounding.  ``σ̃`` is the
    per-axis standard deviation of the linearised push-forward of the posterior
    ``N(μ, diag σ²)``: with ``J = ∂φ/∂z`` at ``μ``,

    .. math::

        \tilde\sigma_i = \sqrt{\bigl(J \operatorname{diag}(\sigma^2) J^\top\bigr)_{ii}}
            = \sqrt{\textstyle\sum_k J_{ik}^2 \sigma_k^2},

    the marginal scales of ``N(φ(μ), J diag(σ²) Jᵀ)``; the off-diagonal covariances of that
    Gaussian are dropped, so a mean-field posterior stays mean-field in name only.  For a
    linear ``φ`` the push-forward is exactly that Gaussian and ``φ(μ)`` its mean.  For a
    nonlinear ``φ`` it is not Gaussian: ``φ(μ)`` is the image of the posterior mean, not the
    mean of the image ``E[φ(z)]``, and ``σ̃`` is only the first-order (delta-method) scale.

    It is a :class:`~pyro_latent.core.latent_model.LatentModel` in its own right, with
    ``latent_dim``, ``name`` (the model's, as ``<name>+<φ.name>``, e.g. ``small+rotation``),
    ``encode``, ``decode``, ``reconstruct``, ``log_likelihood(x, y) = log p(x | φ⁻¹(y))``,
    ``observation_model`` (when the wrapped model has one) and the prior pushed forward by
    ``φ``, by the change of variables

    .. math::

        \log p_Y(y) = \log p_Z(φ^{-1}(y)) - \log\bigl|\det J_φ(φ^{-1}(y))\bigr|.

    The wrapped model is a submodule (``vae``), so ``.to``, ``.eval`` and ``.parameters`` reach
    it.

    Args:
        vae: any :class:`~pyro_latent.core.latent_model.LatentModel` (the study's
            :class:`~pyro_latent.vae.model.VAE`, or one of your own).
        phi: a :class:`LatentMap` of dimension ``vae.latent_dim``.
    """

    def __init__(self, vae: nn.Module, phi: LatentMap):
        super().__init__()
        check_latent_model(vae, "vae")
        if not isinstance(phi, LatentMap):
            raise ValueError(f"phi must be a LatentMap, got {type(phi).__name__}")
        base = getattr(vae, "name", type(vae).__name__)
        if phi.dim != vae.latent_dim:
            raise ValueError(
                f"phi maps {phi.dim}-D codes, but the model ({base}) has a "
                f"{vae.latent_dim}-D latent space"
            )
        self.vae = vae
        self.phi = phi
        self.name = f"{base}+{phi.name}"

    @property
    def latent_dim(self) -> int:
        return self.vae.latent_dim

    def _to_original(self, y: torch.Tensor) -> torch.Tensor:
        """``φ⁻¹(y)`` for codes ``y [..., D]``."""
        if not isinstance(y, torch.Tensor) or y.ndim < 1 or y.shape[-1] != self.latent_dim:
            raise ValueError(
                f"y must be a tensor [..., {self.latent_dim}]; got "
                f"{getattr(y, 'shape', type(y).__name__)}"
            )
        return self.phi.inverse(y.reshape(-1, self.latent_dim)).reshape(y.shape)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(φ(μ(x)), σ̃(x))``, each ``(N, D)``: see the class docstring for ``σ̃`` (``None``
        when the wrapped encoder is deterministic)."""
        loc, scale = self.vae.encode(x)
        if scale is None:
            return self.phi.forward(loc), None
        jacobian = self.phi.jacobian(loc)
        variance = torch.einsum("nik,nk->ni", jacobian**2, scale**2)
        return self.phi.forward(loc), variance.sqrt()

    def decode(self, y: torch.Tensor) -> torch.Tensor:
        """``vae.decode(φ⁻¹(y))``: the mean of ``p(x | ·)`` for codes ``y`` ``(N, D)``."""
        return self.vae.decode(self.phi.inverse(check_codes(y, self, "y")))

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """``decode(encode(x).loc)``, equal to ``vae.decode(vae.encode(x).loc)`` up to
        rounding."""
        return self.vae.decode(self.phi.inverse(self.phi.forward(self.vae.encode(x)[0])))

    def log_likelihood(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``log p(x | φ⁻¹(y))``, shape ``y.shape[:-1]``: observations are not
        reparametrised."""
        require_likelihood(self.vae, "vae")
        return self.vae.log_likelihood(x, self._to_original(y))

    def observation_model(self, y: torch.Tensor):
        """The wrapped model's ``p(x | φ⁻¹(y))`` as a distribution."""
        return observation_model(self.vae, self._to_original(y))

    def log_prior(self, y: torch.Tensor) -> torch.Tensor:
        """``log p_Y(y)`` (class docstring), shape ``y.shape[:-1]``."""
        z = self._to_original(y)
        return log_prior(self.vae, z) - self._log_det(z)

    def log_posterior(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``log q_Y(y_m | x_n) = log q(φ⁻¹(y_m) | x_n) − log|det J_φ(φ⁻¹(y_m))|``, ``[M,
        N]``: the exact push-forward of the wrapped model's posterior, unlike the diagonal
        ``σ̃`` of :meth:`encode` (codes ``y [M, D]``, observations ``x [N, *obs]``)."""
        z = self._to_original(check_codes(y, self, "y"))
        return log_posterior(self.vae, x, z) - self._log_det(z)[:, None]

    def _log_det(self, z: torch.Tensor) -> torch.Tensor:
        """``log|det J_φ(z)|`` for ``z [..., D]``, shape ``z.shape[:-1]``."""
        flat = z.reshape(-1, self.latent_dim)
        log_det = torch.linalg.slogdet(self.phi.jacobian(flat)).logabsdet
        return log_det.reshape(z.shape[:-1])

    def extra_repr(self) -> str:
        return f"name={self.name!r}, phi={self.phi!r}"
