r"""The locally optimised Gaussian ``q*(z | x)``: the amortised guide refined image by image.

An amortised guide ``q(z | x) = N(μ_φ(x), diag σ_φ(x)²)`` is one network for every image, so its
ELBO ``L[q] = E_q[log p(x, z) - log q(z | x)]`` falls short of ``log p(x)`` for two reasons
(Cremer, Li & Duvenaud, "Inference Suboptimality in Variational Autoencoders", ICML 2018):

.. math::

    \log p(x) - L[q] = \underbrace{\log p(x) - L[q^*]}_{\text{approximation gap}}
                     + \underbrace{L[q^*] - L[q]}_{\text{amortisation gap}},

where ``q* = argmax L`` over the same family, diagonal Gaussians, for that one image.
:func:`optimise_gaussians` finds ``q*`` for a batch of images at once: one ``(loc, log scale)``
per image, started at the guide's output, and one Adam over all of them.  The images share no
parameter, so the summed objective gives each its own gradient.  With the reparameterisation
``z = loc + scale · ε``,

.. math::

    L[q] = E_ε[\log p(x, loc + scale · ε)] + \sum_d \log scale_d + \tfrac{D}{2}(1 + \log 2π),

the entropy in closed form, so the only noise is in the first term (``n_particles`` draws per
step, from a private generator: the result depends only on ``seed``).
:func:`local_gaussians` wraps it for any :class:`~pyro_latent.core.latent_model.LatentModel`
with a posterior and a likelihood, and :func:`gaussian_elbo` estimates ``L`` with its standard
error from fresh draws.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from pyro_latent.core.checks import check_nonnegative_int, check_positive_float, check_positive_int
from pyro_latent.core.latent_model import (
    check_latent_model,
    encode,
    log_prior,
    require_likelihood,
    require_posterior,
)

__all__ = ["LocalGaussians", "gaussian_elbo", "local_gaussians", "model_log_joint",
           "optimise_gaussians"]  # fmt: skip


@dataclass
class LocalGaussians:
    """``q*`` for ``N`` images: ``loc`` and ``scale`` ``[N, D]``, and the mean ELBO per image of
    each recorded step (``history``, noisy estimates from the training draws)."""

    loc: torch.Tensor
    scale: torch.Tensor
    history: list[float]


def _check_start(loc, scale) -> tuple[torch.Tensor, torch.Tensor]:
    for name, value in (("loc", loc), ("scale", scale)):
        if not isinstance(value, torch.Tensor) or value.ndim != 2 or value.numel() == 0:
            got = getattr(value, "shape", value)
            raise ValueError(f"{name} must be a tensor [N, D], got {got}")
        if not value.is_floating_point() or not bool(torch.isfinite(value).all()):
            raise ValueError(f"{name} must be finite floating values")
    if loc.shape != scale.shape:
        raise ValueError(f"loc and scale differ in shape: {tuple(loc.shape)}, {tuple(scale.shape)}")
    if not bool((scale > 0).all()):
        raise ValueError("scale must be positive everywhere")
    return loc.detach(), scale.detach()


def _joint(log_joint, z: torch.Tensor) -> torch.Tensor:
    value = log_joint(z)
    if not isinstance(value, torch.Tensor) or tuple(value.shape) != tuple(z.shape[:-1]):
        shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise ValueError(
            f"log_joint must map draws [S, N, D] to [S, N] = {tuple(z.shape[:-1])}, got {shape}"
        )
    return value


def gaussian_elbo(
    log_joint: Callable[[torch.Tensor], torch.Tensor],
    loc: torch.Tensor,
    scale: torch.Tensor,
    *,
    n_particles: int = 256,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(L [N], standard error [N])`` of ``q = N(loc, diag scale²)`` for each of ``N`` images, from
    ``n_particles`` fresh draws (module docstring; float64).  ``log_joint`` maps ``z [S, N, D]``
    to ``log p(x_n, z) [S, N]``."""
    loc, scale = _check_start(loc, scale)
    S = check_positive_int(n_particles, "n_particles")
    g = torch.Generator(device=loc.device).manual_seed(check_nonnegative_int(seed, "seed"))
    eps = torch.randn((S, *loc.shape), generator=g, device=loc.device, dtype=loc.dtype)
    with torch.no_grad():
        joint = _joint(log_joint, loc + scale * eps).double()
    entropy = scale.double().log().sum(-1) + 0.5 * loc.shape[-1] * (1 + math.log(2 * math.pi))
    se = joint.std(0) / math.sqrt(S) if S > 1 else torch.full_like(entropy, math.inf)
    return joint.mean(0) + entropy, se


def optimise_gaussians(
    log_joint: Callable[[torch.Tensor], torch.Tensor],
    loc: torch.Tensor,
    scale: torch.Tensor,
    *,
    steps: int = 500,
    lr: float = 0.02,
    final_lr: float = 0.001,
    n_particles: int = 8,
    seed: int = 0,
) -> LocalGaussians:
    """Each image's best diagonal Gaussian ``q*``, by ``steps`` Adam steps on the summed ELBO of
    ``N`` images from the starting ``loc, scale [N, D]`` (module docstring).  The step size
    decays geometrically from ``lr`` to ``final_lr``, so that the noisy gradient does not leave
    the parameters jittering around the optimum by about ``lr``.

    ``log_joint`` maps ``z [S, N, D]`` to ``log p(x_n, z) [S, N]``.  A ``ValueError`` names a
    bad start, a ``log_joint`` of the wrong shape, or an ELBO that became non-finite."""
    loc, scale = _check_start(loc, scale)
    steps = check_nonnegative_int(steps, "steps")
    lr = check_positive_float(lr, "lr")
    final_lr = check_positive_float(final_lr, "final_lr")
    S = check_positive_int(n_particles, "n_particles")
    g = torch.Generator(device=loc.device).manual_seed(check_nonnegative_int(seed, "seed"))
    mean = loc.clone().requires_grad_(True)
    log_scale = scale.log().clone().requires_grad_(True)
    optimizer = torch.optim.Adam([mean, log_scale], lr=lr)
    decay = (final_lr / lr) ** (1 / max(steps - 1, 1))
    schedule = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=decay)
    history = []
    for step in range(steps):
        eps = torch.randn((S, *loc.shape), generator=g, device=loc.device, dtype=loc.dtype)
        joint = _joint(log_joint, mean + log_scale.exp() * eps)
        elbo = joint.mean(0) + log_scale.sum(-1)  # per image, up to the entropy's constant
        if not bool(torch.isfinite(elbo).all()):
            bad = torch.nonzero(~torch.isfinite(elbo)).flatten().tolist()
            raise ValueError(f"the ELBO of image(s) {bad[:5]} became non-finite at step {step + 1}")
        optimizer.zero_grad(set_to_none=True)
        (-elbo.sum()).backward()
        optimizer.step()
        schedule.step()
        if step % 10 == 0 or step == steps - 1:
            constant = 0.5 * loc.shape[-1] * (1 + math.log(2 * math.pi))
            history.append(float(elbo.detach().mean()) + constant)
    return LocalGaussians(mean.detach(), log_scale.detach().exp(), history)


def model_log_joint(model, images: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """``z [S, N, D] -> log p(z) + log p(x_n | z) [S, N]`` for the images ``x [N, *obs]`` of a
    :class:`~pyro_latent.core.latent_model.LatentModel` with a likelihood."""
    check_latent_model(model)
    require_likelihood(model, purpose="the local Gaussians")

    def log_joint(z: torch.Tensor) -> torch.Tensor:
        return log_prior(model, z) + model.log_likelihood(images, z)

    return log_joint


def local_gaussians(
    model,
    images: torch.Tensor,
    *,
    steps: int = 500,
    lr: float = 0.02,
    final_lr: float = 0.001,
    n_particles: int = 8,
    seed: int = 0,
) -> LocalGaussians:
    """:func:`optimise_gaussians` for ``images [N, *obs]`` under ``model``, started at its
    amortised guide ``q(z | x)`` (a ``TypeError`` for a model without one)."""
    check_latent_model(model)
    with torch.no_grad():
        loc, scale = encode(model, images)
    scale = require_posterior(scale, purpose="the local Gaussians (started at the guide)")
    return optimise_gaussians(
        model_log_joint(model, images), loc, scale, steps=steps, lr=lr, final_lr=final_lr,
        n_particles=n_particles, seed=seed,
    )  # fmt: skip
