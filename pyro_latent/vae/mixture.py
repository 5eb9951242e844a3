r"""A VAE whose latent density is known by construction: a Gaussian-mixture prior (seed 002).

Seed 002 asks for a model whose latent density is known, so that its level sets are facts
about the model rather than estimates from points.  It names a flow, or a Gaussian mixture,
"which can approximate most topologies".  This is the mixture.  The generative program is

.. math::

    c \sim \operatorname{Categorical}(\pi), \qquad
    z \mid c \sim N(\mu_c, \Sigma_c), \qquad
    x \mid z \sim p_\theta(x \mid z),

with learned weights ``π = softmax(logits)``, means ``μ_c`` and covariances ``Σ_c``: diagonal,
or full through a Cholesky factor with a positive diagonal.  The guide is the study's amortised
``q(z | x) = N(μ_φ(x), diag σ_φ(x)²)``.  It has no site for ``c``, which the model enumerates
exactly: ``TraceEnum_ELBO`` sums it out, so the objective is

.. math::

    \operatorname{ELBO}(x) = E_{q(z|x)}\Bigl[\log p_\theta(x \mid z)
        + \log \textstyle\sum_c \pi_c N(z; \mu_c, \Sigma_c) - \log q(z \mid x)\Bigr],

the same bound as a Normal-prior VAE's with the mixture's density in place of ``N(0, I)``::

      logits ──► c ──► z ──► x          (one plate over the images; c enumerated, not guided)
                       ▲
           q(z | x) ───┘

It is a :class:`~pyro_latent.core.latent_model.LatentModel` with its own ``log_prior`` (the
mixture's density), so every tool of the package runs on it.  :meth:`MixturePriorVAE.
responsibilities` gives ``p(c | z)``, and :meth:`MixturePriorVAE.cluster` the most likely
component of an image's code.
"""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
from pyro.infer import TraceEnum_ELBO
from torch import nn

from pyro_latent.vae.model import N_PIXELS, PRIOR_COVARIANCES, VAE, VAEConfig

__all__ = ["COVARIANCES", "MixturePrior", "MixturePriorVAE", "build_vae"]

COVARIANCES = PRIOR_COVARIANCES


class MixturePrior(nn.Module):
    """``p(z) = Σ_c π_c N(z; μ_c, Σ_c)`` with learned parameters.

    The means start as standard Gaussian draws (torch's global generator, so a seeded run is
    reproducible), the weights equal and the covariances ``I``.

    Args:
        n_components: ``K ≥ 1``.
        latent_dim: ``D``.
        covariance: ``"diagonal"`` (``Σ_c = diag exp(2 s_c)``) or ``"full"`` (``Σ_c = L_c L_cᵀ``
            with ``L_c`` lower triangular and ``exp`` on its diagonal).
    """

    def __init__(self, n_components: int, latent_dim: int, covariance: str = "diagonal"):
        super().__init__()
        if covariance not in COVARIANCES:
            raise ValueError(f"covariance must be one of {COVARIANCES}; got {covariance!r}")
        self.covariance = covariance
        self.logits = nn.Parameter(torch.zeros(n_components))
        self.means = nn.Parameter(torch.randn(n_components, latent_dim))
        shape = (n_components, latent_dim) + ((latent_dim,) if covariance == "full" else ())
        self.raw_scale = nn.Parameter(torch.zeros(shape))

    @property
    def n_components(self) -> int:
        return self.logits.shape[0]

    def scale_tril(self) -> torch.Tensor:
        """``L_c`` for every component, ``[K, D, D]``."""
        if self.covariance == "diagonal":
            return torch.diag_embed(self.raw_scale.exp())
        diagonal = torch.diag_embed(torch.diagonal(self.raw_scale, dim1=-2, dim2=-1).exp())
        return torch.tril(self.raw_scale, diagonal=-1) + diagonal

    def components(self, index: torch.Tensor | None = None) -> dist.TorchDistribution:
        """The components ``N(μ_c, Σ_c)`` (batch ``[K]``), or those picked by ``index``."""
        means = self.means if index is None else self.means[index]
        if self.covariance == "diagonal":
            scales = self.raw_scale.exp()
            return dist.Normal(means, scales if index is None else scales[index]).to_event(1)
        tril = self.scale_tril()
        return dist.MultivariateNormal(means, scale_tril=tril if index is None else tril[index])

    def log_weights(self) -> torch.Tensor:
        return torch.log_softmax(self.logits, -1)

    def joint_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """``log π_c + log N(z; μ_c, Σ_c)`` for codes ``z [..., D]``: ``[..., K]``."""
        return self.log_weights() + self.components().log_prob(z.unsqueeze(-2))

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """``log p(z)`` for codes ``z [..., D]``: ``[...]``."""
        return torch.logsumexp(self.joint_log_prob(z), -1)


class MixturePriorVAE(VAE):
    """The study's VAE with a Gaussian-mixture prior whose component is enumerated (module
    docstring).  ``config.prior_components`` is ``K`` and ``config.prior_covariance`` the
    covariance family; everything else, the networks, the likelihood and the LatentModel
    members, is :class:`~pyro_latent.vae.model.VAE`'s."""

    def __init__(self, config: VAEConfig):
        if config.prior_components < 1:
            raise ValueError(
                f"a mixture prior needs prior_components ≥ 1; config {config.name!r} has "
                f"{config.prior_components} (use VAE for the N(0, I) prior)"
            )
        super().__init__(config)
        self.prior = MixturePrior(
            config.prior_components, config.latent_dim, config.prior_covariance
        )

    # --- the Pyro program ---------------------------------------------------------------------
    def model(self, x: torch.Tensor) -> None:
        """``c ~ Cat(π)``, ``z ~ N(μ_c, Σ_c)``, ``x ~ p_θ(x | z)``; ``c`` enumerated."""
        pyro.module("decoder", self.decoder)
        pyro.module("prior", self.prior)
        self.model_for_training(x)

    def model_for_training(self, x: torch.Tensor) -> None:
        """:meth:`model` without ``pyro.module``."""
        x = x.reshape(-1, N_PIXELS)
        with pyro.plate("data", x.shape[0]):
            c = pyro.sample(
                "c", dist.Categorical(logits=self.prior.logits), infer={"enumerate": "parallel"}
            )
            z = pyro.sample("z", self.prior.components(c))
            pyro.sample("x", self.likelihood(self.decoder(z)), obs=x)

    @staticmethod
    def training_loss():
        """``TraceEnum_ELBO``'s differentiable loss: ``c`` is summed out exactly."""
        return TraceEnum_ELBO(max_plate_nesting=1).differentiable_loss

    # --- the LatentModel protocol and the clusters ---------------------------------------------
    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        """``log p(z) = log Σ_c π_c N(z; μ_c, Σ_c)`` for codes ``z [..., D]``."""
        return self.prior.log_prob(z.to(device=self.device, dtype=self.dtype))

    def responsibilities(self, z: torch.Tensor) -> torch.Tensor:
        """``p(c | z)`` for codes ``z [..., D]``: ``[..., K]``."""
        return torch.softmax(
            self.prior.joint_log_prob(z.to(device=self.device, dtype=self.dtype)), -1
        )

    @torch.no_grad()
    def cluster(self, x: torch.Tensor) -> torch.Tensor:
        """The most likely component of each image's posterior mean, ``argmax_c p(c | μ_φ(x))``."""
        return self.responsibilities(self.encode(x)[0]).argmax(-1)

    def extra_repr(self) -> str:
        return f"components={self.prior.n_components}, covariance={self.prior.covariance!r}"


def build_vae(config: VAEConfig) -> VAE:
    """The model a configuration describes: :class:`MixturePriorVAE` when it has
    ``prior_components``, the Normal-prior :class:`~pyro_latent.vae.model.VAE` otherwise."""
    return MixturePriorVAE(config) if config.prior_components else VAE(config)
