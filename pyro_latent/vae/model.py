"""The VAE as a Pyro ``model``/``guide`` pair, and the named presets of the study.

Generative model (``model``), for each image ``x_n ∈ [0, 1]^784`` in a ``pyro.plate``::

    z_n ~ Normal(0, I_D)
    x_n ~ Bernoulli(logits = f_θ(z_n))            (or ContinuousBernoulli(logits = f_θ(z_n)))

with an MLP decoder ``f_θ``.  The Bernoulli log-likelihood of grey values is minus the binary
cross-entropy ``Σ_i x_i log p_i + (1 - x_i) log(1 - p_i)`` the post trains with; it is not a
normalised density on ``[0, 1]``, which is what the ``ContinuousBernoulli`` option (Loaiza-Ganem
& Cunningham 2019) corrects.

Amortised guide (``guide``): ``q_φ(z_n | x_n) = Normal(μ_φ(x_n), diag σ_φ(x_n)²)`` from an MLP
encoder, ``σ = softplus(·) + 1e-4``.  SVI maximises the evidence lower bound

    ELBO(x) = E_q[log p_θ(x | z)] - KL(q_φ(z | x) ‖ N(0, I)) ≤ log p_θ(x).

Presets (:data:`PRESETS`), all with the Bernoulli likelihood:

* ``small``: 20-D latent, one narrow hidden layer of 64 units in encoder and decoder;
* ``large``: 20-D latent, two wider hidden layers (512, 256);
* ``vae2d-a``: 2-D latent, one hidden layer of 256 units;
* ``vae2d-b``: 2-D latent, two hidden layers (512, 256): it differs from ``vae2d-a`` in size.
  The study trains both with the same seeds, so at one seed the two latent spaces differ by
  architecture alone, and across seeds of one preset by the seed alone;
* ``conv``: 20-D latent, a convolutional encoder and a transposed-convolutional decoder (the
  post's "larger autoencoders" of another family): ``hidden = (c₁, c₂, h)`` reads

      encoder  1×28×28 →conv 4×4/2→ c₁×14×14 →conv 4×4/2→ c₂×7×7 →linear→ h →linear→ 2D
      decoder  D →linear→ h →linear→ c₂×7×7 →convT 4×4/2→ c₁×14×14 →convT 4×4/2→ 1×28×28

  with ReLUs between, so the likelihood, guide and every LatentModel member are the MLP's.

``get_preset("small-z10")`` (any ``<preset>-z<D>``) is the preset with a ``D``-dimensional
latent, as trained by the latent-size sweep.
"""

from __future__ import annotations

import dataclasses
import numbers
import re
from collections.abc import Sequence
from dataclasses import dataclass

import pyro
import pyro.distributions as dist
import torch
from pyro.infer import TraceMeanField_ELBO
from torch import nn
from torch.nn import functional as F

from pyro_latent.core.checks import as_int, check_image_tensor
from pyro_latent.core.latent_model import check_codes
from pyro_latent.vae.data import IMAGE_SHAPE, N_PIXELS

LIKELIHOODS = ("bernoulli", "continuous_bernoulli")


class _BernoulliLogDensity(torch.autograd.Function):
    r"""``log p(x | l) = x l - softplus(l)`` elementwise, with the gradient written out.

    ``softplus(l) = relu(l) - log σ(|l|)`` and ``σ(|l|) ∈ [½, 1]``, so the log is of a number
    near 1 and the form is exact up to rounding (at most a few 1e-7 per pixel in float32).  The
    gradients are ``∂/∂l = x - σ(l)`` and ``∂/∂x = l``.  PyTorch's
    ``binary_cross_entropy_with_logits`` computes the same value through ``log_sigmoid``, which
    is not vectorised on many CPUs: this form is about four times faster, forward and backward,
    and the log-density is most of the cost of a small VAE's training step.  ``backward`` is
    made of differentiable torch operations, so second derivatives work too."""

    @staticmethod
    def forward(ctx, logits, value):
        ctx.save_for_backward(logits, value)
        return value * logits - logits.clamp(min=0) + torch.sigmoid(logits.abs()).log()

    @staticmethod
    def backward(ctx, grad):
        logits, value = ctx.saved_tensors
        grad_logits = grad * (value - torch.sigmoid(logits)) if ctx.needs_input_grad[0] else None
        grad_value = grad * logits if ctx.needs_input_grad[1] else None
        return grad_logits, grad_value


class GreyBernoulli(dist.Bernoulli):
    r"""``Bernoulli(logits)`` whose ``log_prob`` also takes grey values ``x ∈ [0, 1]``:

        log p(x | l) = x log σ(l) + (1 - x) log(1 - σ(l)) = x l - softplus(l),

    minus the binary cross-entropy the post trains with, computed in a faster exact form
    (:class:`_BernoulliLogDensity`).  Sampling and every other method are ``Bernoulli``'s.
    ``log_prob`` does not check the support: grey values are not in ``{0, 1}``, which is the
    point."""

    def log_prob(self, value):
        logits, value = torch.broadcast_tensors(self.logits, value)
        return _BernoulliLogDensity.apply(logits, value)


def _is_int(value) -> bool:
    return as_int(value) is not None


# The covariance families of a mixture prior (pyro_latent.vae.mixture).
PRIOR_COVARIANCES = ("diagonal", "full")
# The networks: fully connected (``hidden`` = the widths) or convolutional (``hidden`` = the
# two convolutions' channels and the fully connected width, see the module docstring).
ARCHITECTURES = ("mlp", "conv")


@dataclass(frozen=True)
class VAEConfig:
    """A VAE architecture and its optimiser settings.  Two runs with equal configs (and seeds and
    data) are the same run; the checkpoint of one serves the other."""

    name: str
    latent_dim: int = 20
    hidden: tuple[int, ...] = (64,)
    likelihood: str = "bernoulli"
    batch_size: int = 128
    lr: float = 1e-3
    # 0: the N(0, I) prior (VAE); K ≥ 1: a K-component Gaussian mixture (MixturePriorVAE).
    prior_components: int = 0
    prior_covariance: str = "diagonal"
    architecture: str = "mlp"

    def __post_init__(self):
        if not isinstance(self.name, str):
            raise ValueError(f"config name must be a string; got {type(self.name).__name__}")
        if not _is_int(self.latent_dim):
            raise ValueError(f"latent_dim must be an int; got {self.latent_dim!r}")
        if isinstance(self.hidden, str | bytes) or not isinstance(self.hidden, Sequence):
            raise ValueError(f"hidden must be a sequence of ints; got {self.hidden!r}")
        if not all(_is_int(h) for h in self.hidden):
            raise ValueError(f"hidden must be a sequence of ints; got {self.hidden!r}")
        if not _is_int(self.batch_size):
            raise ValueError(f"batch_size must be an int; got {self.batch_size!r}")
        if isinstance(self.lr, bool) or not isinstance(self.lr, numbers.Real):
            raise ValueError(f"lr must be a number; got {self.lr!r}")
        object.__setattr__(self, "latent_dim", int(self.latent_dim))
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        object.__setattr__(self, "batch_size", int(self.batch_size))
        object.__setattr__(self, "lr", float(self.lr))
        if not self.name or "/" in self.name or self.name.startswith("."):
            raise ValueError(f"config name must be a plain non-empty word; got {self.name!r}")
        if self.latent_dim < 1:
            raise ValueError(f"latent_dim must be positive; got {self.latent_dim}")
        if not self.hidden or min(self.hidden) < 1:
            raise ValueError(f"hidden must list positive layer widths; got {self.hidden}")
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}; got {self.likelihood!r}")
        if self.batch_size < 1 or not self.lr > 0:
            raise ValueError("batch_size and lr must be positive")
        if not _is_int(self.prior_components) or self.prior_components < 0:
            raise ValueError(f"prior_components must be an int ≥ 0; got {self.prior_components!r}")
        object.__setattr__(self, "prior_components", int(self.prior_components))
        if self.prior_covariance not in PRIOR_COVARIANCES:
            raise ValueError(
                f"prior_covariance must be one of {PRIOR_COVARIANCES}; got "
                f"{self.prior_covariance!r}"
            )
        if self.prior_components == 0 and self.prior_covariance != "diagonal":
            raise ValueError(
                "prior_covariance applies to a mixture prior only (prior_components ≥ 1); the "
                "N(0, I) prior has none"
            )
        if self.architecture not in ARCHITECTURES:
            raise ValueError(
                f"architecture must be one of {ARCHITECTURES}; got {self.architecture!r}"
            )
        if self.architecture == "conv" and len(self.hidden) != 3:
            raise ValueError(
                "a conv architecture takes hidden = (channels of the first convolution, of the "
                f"second, fully connected width); got {self.hidden}"
            )

    @property
    def stackable(self) -> bool:
        """Whether :class:`~pyro_latent.vae.ensemble.VAEEnsemble` can stack runs of this
        configuration: the N(0, I) prior with fully connected networks."""
        return self.prior_components == 0 and self.architecture == "mlp"

    def to_dict(self) -> dict:
        """Plain types only (lists, not tuples), as stored in checkpoints and JSON results.  The
        prior's fields are left out for the ``N(0, I)`` prior, and the architecture for the MLP,
        so that the records (and the checkpoints' digests) of the earlier VAEs are what they were
        before those fields existed."""
        record = dataclasses.asdict(self)
        record["hidden"] = list(self.hidden)
        if self.prior_components == 0:
            del record["prior_components"], record["prior_covariance"]
        if self.architecture == "mlp":
            del record["architecture"]
        return record

    @classmethod
    def from_dict(cls, record: dict) -> VAEConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(record) - known
        if unknown:
            raise ValueError(f"unknown VAEConfig field(s): {', '.join(sorted(unknown))}")
        return cls(**record)

    def with_latent_dim(self, latent_dim: int) -> VAEConfig:
        """The same architecture with another latent size, named e.g. ``small-z40``."""
        if latent_dim == self.latent_dim:
            return self
        return dataclasses.replace(self, name=f"{self.name}-z{latent_dim}", latent_dim=latent_dim)


PRESETS: dict[str, VAEConfig] = {
    "small": VAEConfig("small", latent_dim=20, hidden=(64,)),
    "large": VAEConfig("large", latent_dim=20, hidden=(512, 256)),
    "vae2d-a": VAEConfig("vae2d-a", latent_dim=2, hidden=(256,)),
    "vae2d-b": VAEConfig("vae2d-b", latent_dim=2, hidden=(512, 256)),
    # seed 002's model: the same networks with a 10-component Gaussian-mixture prior
    "small-mix": VAEConfig("small-mix", latent_dim=20, hidden=(64,), prior_components=10),
    "large-mix": VAEConfig("large-mix", latent_dim=20, hidden=(512, 256), prior_components=10),
    # about as many weights as large (0.84 M against 1.08 M), in convolutions
    "conv": VAEConfig("conv", latent_dim=20, hidden=(16, 32, 256), architecture="conv"),
}


_SWEEP_NAME = re.compile(r"^(?P<base>.+)-z(?P<latent>[1-9][0-9]*)$")


def get_preset(name: str) -> VAEConfig:
    """The preset called ``name`` (see :data:`PRESETS`), or ``<preset>-z<D>``: that preset with
    a ``D``-dimensional latent (:meth:`VAEConfig.with_latent_dim`, the latent-size sweep's
    ``small-z10`` and ``small-z40``)."""
    if name in PRESETS:
        return PRESETS[name]
    match = _SWEEP_NAME.match(str(name))
    if match and match["base"] in PRESETS:
        return PRESETS[match["base"]].with_latent_dim(int(match["latent"]))
    raise KeyError(
        f"unknown VAE preset {name!r}; available: {', '.join(PRESETS)}, or <preset>-z<D> for "
        "a preset with a D-dimensional latent (e.g. small-z10); or load a checkpoint by path"
    )


def _mlp(sizes: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class Encoder(nn.Module):
    """``x ↦ (μ, σ)``: an MLP to ``2D`` outputs, ``σ = softplus(·) + 1e-4``."""

    def __init__(self, latent_dim: int, hidden: Sequence[int]):
        super().__init__()
        self.net = _mlp([N_PIXELS, *hidden, 2 * latent_dim])
        self.latent_dim = latent_dim

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        loc, raw_scale = self.net(x).split(self.latent_dim, dim=-1)
        return loc, F.softplus(raw_scale) + 1e-4


class Decoder(nn.Module):
    """``z ↦ logits`` of the 784 pixels: an MLP with the encoder's hidden widths reversed."""

    def __init__(self, latent_dim: int, hidden: Sequence[int]):
        super().__init__()
        self.net = _mlp([latent_dim, *reversed(hidden), N_PIXELS])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


_CONV_GRID = 7  # 28 → 14 → 7 after two stride-2 convolutions


class ConvEncoder(nn.Module):
    """``x ↦ (μ, σ)`` through two stride-2 convolutions and two linear layers (module docstring),
    ``σ = softplus(·) + 1e-4``.  Takes and returns what :class:`Encoder` does."""

    def __init__(self, latent_dim: int, hidden: Sequence[int]):
        super().__init__()
        first, second, width = hidden
        self.net = nn.Sequential(
            nn.Unflatten(1, (1, *IMAGE_SHAPE)),
            nn.Conv2d(1, first, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(first, second, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(second * _CONV_GRID**2, width),
            nn.ReLU(),
            nn.Linear(width, 2 * latent_dim),
        )
        self.latent_dim = latent_dim

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        flat = x.reshape(-1, N_PIXELS)
        loc, raw_scale = self.net(flat).split(self.latent_dim, dim=-1)
        shape = (*x.shape[:-1], self.latent_dim)
        return loc.reshape(shape), (F.softplus(raw_scale) + 1e-4).reshape(shape)


class ConvDecoder(nn.Module):
    """``z ↦ logits`` of the 784 pixels through two linear layers and two stride-2 transposed
    convolutions (module docstring).  Codes may carry any batch shape ``[..., D]``, as
    :class:`Decoder`'s do."""

    def __init__(self, latent_dim: int, hidden: Sequence[int]):
        super().__init__()
        first, second, width = hidden
        self.net = nn.Sequential(
            nn.Linear(latent_dim, width),
            nn.ReLU(),
            nn.Linear(width, second * _CONV_GRID**2),
            nn.ReLU(),
            nn.Unflatten(1, (second, _CONV_GRID, _CONV_GRID)),
            nn.ConvTranspose2d(second, first, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(first, 1, 4, stride=2, padding=1),
            nn.Flatten(),
        )
        self.latent_dim = latent_dim

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        batch = z.shape[:-1]
        return self.net(z.reshape(-1, self.latent_dim)).reshape(*batch, N_PIXELS)


_NETWORKS = {"mlp": (Encoder, Decoder), "conv": (ConvEncoder, ConvDecoder)}


class VAE(nn.Module):
    """A variational autoencoder on 28×28 images, written as a Pyro model/guide pair.

    ``model`` and ``guide`` register the networks with ``pyro.module("decoder")`` and
    ``pyro.module("encoder")``.  Pyro's parameter store is global, so when several VAEs live in
    one process, run inference for each inside ``pyro.get_param_store().scope()`` (as
    :func:`~pyro_latent.vae.training.train_vae` does) or after ``pyro.clear_param_store()``.

    ``encode`` and ``decode`` are differentiable (no ``torch.no_grad``), so Jacobians can be taken
    through them; they validate their inputs and raise :class:`ValueError` on bad ones.
    """

    def __init__(self, config: VAEConfig):
        super().__init__()
        self.config = config
        encoder, decoder = _NETWORKS[config.architecture]
        self.encoder = encoder(config.latent_dim, config.hidden)
        self.decoder = decoder(config.latent_dim, config.hidden)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def name(self) -> str:
        """The preset's name, e.g. ``small``."""
        return self.config.name

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """The weights' dtype; ``encode``/``decode`` convert their inputs to it."""
        return next(self.parameters()).dtype

    # --- the Pyro program ---------------------------------------------------------------------

    def likelihood(self, logits: torch.Tensor) -> dist.TorchDistribution:
        """``p(x | z)`` over the 784 pixels (one event) given decoder logits."""
        if self.config.likelihood == "continuous_bernoulli":
            return dist.ContinuousBernoulli(logits=logits).to_event(1)
        # Grey values are not in the Bernoulli support {0, 1}: GreyBernoulli skips that check, and
        # its log-density is exactly minus the binary cross-entropy, in a faster form.
        return GreyBernoulli(logits=logits, validate_args=False).to_event(1)

    def model(self, x: torch.Tensor) -> None:
        """``z ~ N(0, I)``, ``x ~ p_θ(x | z)``, one ``pyro.plate`` over the batch."""
        pyro.module("decoder", self.decoder)
        self.model_for_training(x)

    def guide(self, x: torch.Tensor) -> None:
        """``z ~ N(μ_φ(x), diag σ_φ(x)²)``, the amortised mean-field guide."""
        pyro.module("encoder", self.encoder)
        self.guide_for_training(x)

    # ``train_vae`` steps the module's parameters with its own torch optimiser, so the programs
    # it differentiates need not register them in Pyro's param store on every step.
    @staticmethod
    def training_loss():
        """The differentiable loss :func:`~pyro_latent.vae.training.train_vae` steps on:
        ``TraceMeanField_ELBO``'s, with the analytic KL to ``N(0, I)``."""
        return TraceMeanField_ELBO().differentiable_loss

    def model_for_training(self, x: torch.Tensor) -> None:
        """:meth:`model` without ``pyro.module``."""
        x = x.reshape(-1, N_PIXELS)
        with pyro.plate("data", x.shape[0]):
            prior = dist.Normal(x.new_zeros(self.latent_dim), x.new_ones(self.latent_dim))
            z = pyro.sample("z", prior.to_event(1))
            pyro.sample("x", self.likelihood(self.decoder(z)), obs=x)

    def guide_for_training(self, x: torch.Tensor) -> None:
        """:meth:`guide` without ``pyro.module``."""
        x = x.reshape(-1, N_PIXELS)
        with pyro.plate("data", x.shape[0]):
            loc, scale = self.encoder(x)
            pyro.sample("z", dist.Normal(loc, scale).to_event(1))

    # --- the LatentModel protocol -------------------------------------------------------------

    def observation_model(self, z: torch.Tensor) -> dist.TorchDistribution:
        """``p(x | z)`` over the 784 pixels (one event) for codes ``z [..., D]`` (batch shape
        ``z.shape[:-1]``)."""
        if not isinstance(z, torch.Tensor) or z.ndim < 1 or z.shape[-1] != self.latent_dim:
            raise ValueError(
                f"z must be a tensor [..., {self.latent_dim}] for this {self.latent_dim}-D VAE "
                f"({self.config.name}); got {getattr(z, 'shape', type(z).__name__)}"
            )
        return self.likelihood(self.decoder(z.to(device=self.device, dtype=self.dtype)))

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``log p(x | z)`` summed over the pixels, for codes ``z [..., D]`` and images ``x``
        that broadcast against them (``[..., 784]``, or 28×28 images): shape ``[...]``.

        Codes are not checked for finiteness: a sampler may propose an infinite one, whose
        likelihood is then ``-inf`` or NaN for it to reject."""
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"x must be a torch.Tensor; got {type(x).__name__}")
        if x.shape[-2:] == (28, 28):
            x = x.reshape(*x.shape[: -3 if x.shape[-3:] == (1, 28, 28) else -2], N_PIXELS)
        if x.ndim < 1 or x.shape[-1] != N_PIXELS:
            raise ValueError(f"x must end in {N_PIXELS} pixels or 28×28; got {tuple(x.shape)}")
        return self.observation_model(z).log_prob(x.to(device=self.device, dtype=self.dtype))

    # --- the checked API ----------------------------------------------------------------------

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior ``(loc, scale)``, each ``(N, D)``, of images ``(N, 784)``, ``(N, 28, 28)``
        or ``(N, 1, 28, 28)`` with float values in ``[0, 1]`` (any float dtype: converted to the
        weights' dtype and device)."""
        return self.encoder(self.check_images(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Pixel probabilities ``E[x | z]``, shape ``(N, 784)``, of latents ``z`` ``(N, D)``.

        For the Bernoulli likelihood this is ``sigmoid(logits)``; for the continuous Bernoulli
        it is that distribution's mean.  Reshape with ``.view(-1, 28, 28)`` for images.
        """
        logits = self.decoder(self.check_latents(z))
        if self.config.likelihood == "continuous_bernoulli":
            return dist.ContinuousBernoulli(logits=logits).mean
        return torch.sigmoid(logits)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """``decode(encode(x).loc)``: the reconstruction at the posterior mean."""
        return self.decode(self.encode(x)[0])

    def check_images(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` flattened to ``(N, 784)`` on this VAE's device, or a :class:`ValueError`."""
        check_image_tensor(x, "images", allow_empty=True)
        shape = tuple(x.shape)
        if not (
            (x.ndim == 2 and shape[1] == N_PIXELS)
            or (x.ndim == 3 and shape[1:] == (28, 28))
            or (x.ndim == 4 and shape[1:] == (1, 28, 28))
        ):
            raise ValueError(
                f"images must have shape (N, {N_PIXELS}), (N, 28, 28) or (N, 1, 28, 28); "
                f"got {shape}"
            )
        return x.reshape(-1, N_PIXELS).to(device=self.device, dtype=self.dtype)

    def check_latents(self, z: torch.Tensor) -> torch.Tensor:
        """``z`` as ``(N, D)`` on this VAE's device and dtype, or a :class:`ValueError`
        (:func:`~pyro_latent.core.latent_model.check_codes`)."""
        return check_codes(z, self, "latents").to(device=self.device, dtype=self.dtype)

    def extra_repr(self) -> str:
        c = self.config
        return (
            f"name={c.name!r}, latent_dim={c.latent_dim}, hidden={c.hidden}, {c.likelihood}, "
            f"{c.architecture}"
        )
