r"""One interface for any latent-variable model: :class:`LatentModel`.

Every VAE-side tool of the package (encoding and decoding in batches, the ELBO and active units,
the formula and the posterior mapping between two models, NUTS and importance-sampled evidence,
concept directions, Jacobian spectra, re-parametrisation) takes a ``LatentModel`` and uses
nothing else of it:

* ``latent_dim``: the size ``D`` of the code ``z``;
* ``encode(x) -> (loc, scale)``: the encoder's (or amortised guide's) ``q(z | x) =
  N(loc, diag scale²)`` for observations ``x [N, *obs]``, each ``[N, D]``; ``scale`` is ``None``
  for a deterministic encoder (a plain autoencoder);
* ``decode(z) -> E[x | z]``: the mean of ``p(x | z)`` for codes ``z [N, D]`` (pixel
  probabilities for a Bernoulli likelihood), ``[N, *obs]``;
* ``log_likelihood(x, z) -> log p(x | z)``, summed over the observation's dimensions, for codes
  ``z [..., D]`` and observations ``x`` that broadcast against them (``[..., *obs]``, or one
  observation ``[*obs]``): shape ``[...]``.

Optional members, used when present:

* ``observation_model(z)``: ``p(x | z)`` as a Pyro distribution with the observation as its
  event, for the tools that *sample* observations (the posterior mapping draws images from it);
* ``log_prior(z) -> log p(z) [...]``: the prior; without it the prior is ``N(0, I_D)``;
* ``log_posterior(x, z) -> log q(z_m | x_n) [M, N]`` for codes ``z [M, D]`` and observations
  ``x [N, *obs]``: the encoder's density, for a model whose ``q(z | x)`` is not the diagonal
  Gaussian ``encode`` reports (a re-parametrised model's is its push-forward); without it,
  ``N(loc, diag scale²)``.

Anything with these members is a ``LatentModel`` (a runtime-checkable :class:`typing.Protocol`):
the study's :class:`~pyro_latent.vae.model.VAE`, a
:class:`~pyro_latent.analysis.reparametrize.ReparametrizedVAE`, a Pyro VAE of your own with these
four members, or any encoder and decoder wrapped by :func:`as_latent_model`.

From the protocol alone, :func:`elbo_programs` writes the Pyro ``model``/``guide`` pair

.. math::

    z \sim p(z), \quad x \sim p(x \mid z) \qquad\text{and}\qquad z \sim N(\mathrm{loc}(x),
    \operatorname{diag} \mathrm{scale}(x)^2),

so Pyro's ELBOs, NUTS and importance sampling run on any model that has a posterior.  A tool that
needs a posterior or a likelihood, handed a model without one, raises a :class:`TypeError` that
says what is missing (:func:`require_posterior`, :func:`require_likelihood`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from torch import nn

from pyro_latent.core.checks import check_positive_int

__all__ = [
    "LIKELIHOODS",
    "LatentModel",
    "as_latent_model",
    "check_codes",
    "check_latent_model",
    "decode_in_batches",
    "diagonal_log_density",
    "decoder_of",
    "elbo_programs",
    "encode",
    "encode_in_batches",
    "encoder_mean_of",
    "is_latent_model",
    "log_posterior",
    "log_prior",
    "observation_model",
    "require_likelihood",
    "require_posterior",
]

LIKELIHOODS = ("bernoulli", "normal")


@runtime_checkable
class LatentModel(Protocol):
    """A latent-variable model as the package's tools see it (module docstring)."""

    latent_dim: int

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]: ...

    def decode(self, z: torch.Tensor) -> torch.Tensor: ...

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor: ...


_MEMBERS = ("latent_dim", "encode", "decode")


def check_latent_model(model, name: str = "model") -> LatentModel:
    """``model`` if it has ``latent_dim``, ``encode`` and ``decode`` (``log_likelihood`` is
    checked by the tools that need it); otherwise a :class:`TypeError` naming what is missing
    and pointing at :func:`as_latent_model`."""
    missing = [m for m in _MEMBERS if not hasattr(model, m)]
    if missing:
        raise TypeError(
            f"{name} must be a LatentModel (latent_dim, encode, decode, log_likelihood); "
            f"{type(model).__name__} has no {', '.join(missing)}: wrap an encoder and a decoder "
            "with pyro_latent.as_latent_model"
        )
    dim = model.latent_dim
    if isinstance(dim, bool) or not isinstance(dim, int | np.integer) or dim < 1:
        raise TypeError(f"{name}.latent_dim must be a positive int; got {dim!r}")
    return model


def require_likelihood(model, name: str = "model", *, purpose: str = "this") -> None:
    """A :class:`TypeError` unless ``model`` has ``log_likelihood``."""
    check_latent_model(model, name)
    if not callable(getattr(model, "log_likelihood", None)):
        raise TypeError(
            f"{purpose} needs log p(x | z), but {name} ({type(model).__name__}) has no "
            "log_likelihood: give as_latent_model a likelihood"
        )


def require_posterior(scale, name: str = "model", *, purpose: str = "this") -> torch.Tensor:
    """``scale`` if the encoder returned one; a :class:`TypeError` for a deterministic one."""
    if scale is None:
        raise TypeError(
            f"{purpose} needs a posterior q(z | x), but {name}'s encoder is deterministic "
            "(encode returned scale None)"
        )
    return scale


def check_codes(z, model, name: str = "z") -> torch.Tensor:
    """``z`` as a finite floating ``[N, D]`` tensor for ``model``, or a :class:`ValueError`."""
    if isinstance(z, np.ndarray):
        z = torch.from_numpy(z)
    if not isinstance(z, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor or numpy array; got {type(z).__name__}")
    if not z.is_floating_point():
        raise ValueError(f"{name} must be floating point; got dtype {z.dtype}")
    if z.ndim != 2 or z.shape[1] != model.latent_dim:
        raise ValueError(
            f"{name} must have shape (N, {model.latent_dim}) for this {model.latent_dim}-D "
            f"model; got {tuple(z.shape)}"
        )
    if not bool(torch.isfinite(z).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    return z


def encode(model, x) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``model.encode(x)`` as ``(loc, scale)``: a deterministic encoder's bare tensor becomes
    ``(codes, None)``; anything else is a :class:`TypeError`."""
    out = model.encode(x)
    if isinstance(out, torch.Tensor):
        return out, None
    if not (isinstance(out, tuple | list) and len(out) == 2):
        raise TypeError(
            f"{type(model).__name__}.encode must return a tensor or a (loc, scale) pair; got "
            f"{type(out).__name__}"
        )
    return out[0], out[1]


def is_latent_model(obj) -> bool:
    """Whether ``obj`` has the protocol's required members (``latent_dim``, ``encode``,
    ``decode``)."""
    return all(hasattr(obj, m) for m in _MEMBERS)


def decoder_of(model_or_decode) -> Callable[[torch.Tensor], torch.Tensor]:
    """``model.decode`` of a :class:`LatentModel`, or the callable ``z -> E[x | z]`` itself: the
    tools that only decode take either."""
    if is_latent_model(model_or_decode):
        return model_or_decode.decode
    if callable(model_or_decode) and not isinstance(model_or_decode, nn.Module):
        return model_or_decode
    raise TypeError(
        "expected a LatentModel or a decoding function z -> E[x | z]; got "
        f"{type(model_or_decode).__name__} (a module without encode/decode/latent_dim: wrap it "
        "with pyro_latent.as_latent_model)"
    )


def encoder_mean_of(model_or_encode) -> Callable[[torch.Tensor], torch.Tensor]:
    """``x -> loc`` of ``q(z | x)`` (a deterministic encoder's codes) for a
    :class:`LatentModel`, or the callable itself."""
    if is_latent_model(model_or_encode):
        return lambda x: encode(model_or_encode, x)[0]
    if callable(model_or_encode) and not isinstance(model_or_encode, nn.Module):
        return model_or_encode
    raise TypeError(
        "expected a LatentModel or an encoding function x -> loc; got "
        f"{type(model_or_encode).__name__}"
    )


@torch.no_grad()
def encode_in_batches(model, x: torch.Tensor, batch_size: int = 1000):
    """``(loc, scale)`` of every observation, on the CPU (``scale`` ``None`` for a
    deterministic encoder)."""
    check_latent_model(model)
    batch_size = check_positive_int(batch_size, "batch_size")
    if not isinstance(x, torch.Tensor) or x.ndim < 1:
        raise ValueError(f"x must be a tensor of observations [N, ...]; got {type(x).__name__}")
    locs, scales = [], []
    for start in range(0, x.shape[0], batch_size):
        loc, scale = encode(model, x[start : start + batch_size])
        locs.append(loc.cpu())
        scales.append(None if scale is None else scale.cpu())
    if not locs:
        empty = torch.empty(0, model.latent_dim)
        return empty, empty.clone()
    scale = None if any(s is None for s in scales) else torch.cat(scales)
    return torch.cat(locs), scale


@torch.no_grad()
def decode_in_batches(model, z, batch_size: int = 1000) -> torch.Tensor:
    """``decode(z)`` on the CPU for codes ``z [N, D]``, in batches: a tensor keeps its dtype, a
    numpy array becomes torch's default floating dtype (the decoder converts further if it
    wants to)."""
    check_latent_model(model)
    batch_size = check_positive_int(batch_size, "batch_size")
    if not isinstance(z, torch.Tensor):
        z = torch.as_tensor(np.asarray(z), dtype=torch.get_default_dtype())
    z = check_codes(z, model)
    parts = [model.decode(z[i : i + batch_size]).cpu() for i in range(0, z.shape[0], batch_size)]
    if parts:
        return torch.cat(parts)
    # The shape of one observation is the decoder's to say: decode one code, keep none.
    return model.decode(z.new_zeros(1, model.latent_dim)).cpu()[:0]


def log_prior(model, z: torch.Tensor) -> torch.Tensor:
    """``log p(z)`` for ``z [..., D]``: the model's ``log_prior`` if it has one, else
    ``N(0, I_D)``."""
    own = getattr(model, "log_prior", None)
    if callable(own):
        return own(z)
    return torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)


def log_posterior(model, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """``log q(z_m | x_n)`` for codes ``z [M, D]`` and observations ``x [N, *obs]``: ``[M,
    N]``.  The model's ``log_posterior`` if it has one, else the diagonal Gaussian of
    ``encode``; a :class:`TypeError` for a deterministic encoder."""
    own = getattr(model, "log_posterior", None)
    if callable(own):
        return own(x, z)
    loc, scale = encode(model, x)
    scale = require_posterior(scale, type(model).__name__, purpose="an encoder density")
    return diagonal_log_density(loc, scale, z)


def diagonal_log_density(loc: torch.Tensor, scale: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """``log N(z_m; loc_n, diag scale_n²)`` for codes ``z [M, D]``: ``[M, N]``, on ``loc``'s
    device and in its dtype."""
    z = z.to(device=loc.device, dtype=loc.dtype)
    return torch.distributions.Normal(loc, scale).log_prob(z[:, None, :]).sum(-1)


def observation_model(model, z: torch.Tensor):
    """``p(x | z)`` as a distribution (for sampling observations), or a :class:`TypeError`."""
    own = getattr(model, "observation_model", None)
    if not callable(own):
        raise TypeError(
            f"drawing observations needs p(x | z) as a distribution, but "
            f"{type(model).__name__} has no observation_model(z); use the observation mean "
            "instead (likelihood='mean')"
        )
    return own(z)


class _LogDensity(dist.TorchDistribution):
    """An unnormalised density over ``[D]`` given by a function: the prior of a model with its
    own ``log_prior``, as a Pyro model site (never sampled: the guide provides the value)."""

    arg_constraints: dict = {}
    support = dist.constraints.real_vector

    def __init__(self, log_density: Callable, batch_shape, dim: int):
        self._log_density = log_density
        super().__init__(torch.Size(batch_shape), torch.Size([dim]), validate_args=False)

    def log_prob(self, value):
        return self._log_density(value)

    def expand(self, batch_shape, _instance=None):
        return _LogDensity(self._log_density, batch_shape, self.event_shape[0])


def elbo_programs(model) -> tuple[Callable, Callable]:
    """The Pyro ``(model, guide)`` of a :class:`LatentModel` (module docstring), both taking a
    batch of observations ``x [N, *obs]``: sites ``z`` (``[N, D]``, one event) and ``x``."""
    require_likelihood(model, purpose="the ELBO")
    own_prior = getattr(model, "log_prior", None)

    def model_fn(x: torch.Tensor) -> None:
        with pyro.plate("data", x.shape[0]):
            if callable(own_prior):
                prior = _LogDensity(own_prior, (x.shape[0],), model.latent_dim)
            else:
                zeros = x.new_zeros(model.latent_dim)
                prior = dist.Normal(zeros, torch.ones_like(zeros)).to_event(1)
            z = pyro.sample("z", prior)
            pyro.factor("x", model.log_likelihood(x, z))

    def guide_fn(x: torch.Tensor) -> None:
        loc, scale = encode(model, x)
        scale = require_posterior(scale, purpose="the ELBO")
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.Normal(loc, scale).to_event(1))

    return model_fn, guide_fn


# ----------------------------------------------------------------------------- the adapter
class CallableLatentModel(nn.Module):
    """Any encoder and decoder as a :class:`LatentModel`; made by :func:`as_latent_model`."""

    def __init__(self, encoder, decoder, latent_dim: int, likelihood, likelihood_scale: float):
        super().__init__()
        # Modules are registered so that .to, .eval and .parameters reach them.
        self.encoder = encoder
        self.decoder = decoder
        self.latent_dim = latent_dim
        self.likelihood = likelihood
        self.likelihood_scale = likelihood_scale
        if likelihood is None:
            # Without a likelihood there is no log p(x | z) to offer: the tools that need one
            # see no log_likelihood and say so (require_likelihood).
            self.log_likelihood = None
            self.observation_model = None

    @staticmethod
    def _to_weights_of(part, t: torch.Tensor) -> torch.Tensor:
        """``t`` in the dtype and on the device of ``part``'s weights, when it is a module with
        any (a float64 code or image meets float32 weights otherwise)."""
        if isinstance(part, nn.Module):
            weight = next(iter(part.parameters()), None)
            if weight is not None and t.is_floating_point():
                return t.to(device=weight.device, dtype=weight.dtype)
        return t

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(loc, scale)`` of ``x [N, *obs]`` (``scale`` ``None`` for a deterministic encoder)."""
        if not isinstance(x, torch.Tensor) or x.ndim < 2:
            raise ValueError(
                f"x must be a batch of observations [N, ...]; got {getattr(x, 'shape', x)!r}"
            )
        loc, scale = self._split(self.encoder(self._to_weights_of(self.encoder, x)))
        if loc.ndim != 2 or loc.shape != (x.shape[0], self.latent_dim):
            raise ValueError(
                f"the encoder returned codes of shape {tuple(loc.shape)}; expected "
                f"({x.shape[0]}, {self.latent_dim}) (latent_dim={self.latent_dim})"
            )
        if scale is not None and scale.shape != loc.shape:
            raise ValueError(f"the encoder's scale {tuple(scale.shape)} differs from its loc")
        return loc, scale

    @staticmethod
    def _split(out):
        if isinstance(out, torch.Tensor):
            return out, None
        if isinstance(out, tuple | list) and len(out) == 2:
            return out[0], out[1]
        raise TypeError(
            f"the encoder must return a tensor or a (loc, scale) pair; got {type(out).__name__}"
        )

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder's output, the mean of ``p(x | z)``, for ``z [N, D]``."""
        return self.decoder(self._to_weights_of(self.decoder, check_codes(z, self)))

    def _mean(self, z: torch.Tensor) -> torch.Tensor:
        # Decoders are written for [N, D]; fold any batch shape [..., D] into N and back.
        batch = z.shape[:-1]
        mean = self.decoder(self._to_weights_of(self.decoder, z.reshape(-1, self.latent_dim)))
        return mean.reshape(*batch, *mean.shape[1:])

    def observation_model(self, z: torch.Tensor):
        """``p(x | z)`` with the observation as one event, for ``z [..., D]``."""
        if z.shape[-1] != self.latent_dim:
            raise ValueError(f"z must end in {self.latent_dim} dimensions; got {tuple(z.shape)}")
        mean = self._mean(z)
        event = mean.ndim - z.ndim + 1
        if callable(self.likelihood):
            return self.likelihood(mean)
        if self.likelihood == "bernoulli":
            probs = mean.clamp(1e-6, 1 - 1e-6)
            return dist.Bernoulli(probs=probs, validate_args=False).to_event(event)
        return dist.Normal(mean, self.likelihood_scale).to_event(event)

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``log p(x | z)`` summed over the observation, shape ``z.shape[:-1]``."""
        return self.observation_model(z).log_prob(self._to_weights_of(self.decoder, x))

    def extra_repr(self) -> str:
        return f"latent_dim={self.latent_dim}, likelihood={self.likelihood!r}"


def as_latent_model(
    encoder,
    decoder,
    *,
    latent_dim: int,
    likelihood="bernoulli",
    likelihood_scale: float = 1.0,
) -> CallableLatentModel:
    """Wrap any two callables or modules as a :class:`LatentModel`.

    Args:
        encoder: ``x [N, *obs] ->`` codes ``[N, D]`` (a deterministic encoder) or a
            ``(loc, scale)`` pair (a Gaussian posterior).
        decoder: ``z [N, D] ->`` the mean of ``p(x | z)``, ``[N, *obs]``, for observations of
            any shape.
        latent_dim: ``D``.
        likelihood: ``"bernoulli"`` (the decoder returns probabilities), ``"normal"``
            (``N(mean, likelihood_scale²)`` per dimension), a callable ``mean ->`` a Pyro
            distribution over one observation, or ``None`` for no likelihood (then the tools
            that need ``log p(x | z)`` refuse with a :class:`TypeError`).
        likelihood_scale: the standard deviation of the ``"normal"`` likelihood.

    >>> import torch
    >>> from torch import nn
    >>> from pyro_latent import LatentModel, as_latent_model
    >>> ae = as_latent_model(nn.Linear(6, 2), nn.Sequential(nn.Linear(2, 6), nn.Sigmoid()),
    ...                      latent_dim=2)
    >>> isinstance(ae, LatentModel), ae.encode(torch.rand(4, 6))[1] is None
    (True, True)
    """
    for name, part in (("encoder", encoder), ("decoder", decoder)):
        if not callable(part):
            raise TypeError(f"{name} must be callable (a function or a module); got {part!r}")
    if isinstance(latent_dim, bool) or not isinstance(latent_dim, int | np.integer):
        raise TypeError(f"latent_dim must be a positive int; got {latent_dim!r}")
    if latent_dim < 1:
        raise ValueError(f"latent_dim must be positive; got {latent_dim}")
    if not (likelihood is None or callable(likelihood) or likelihood in LIKELIHOODS):
        raise ValueError(
            f"likelihood must be one of {LIKELIHOODS}, a callable or None; got {likelihood!r}"
        )
    if not (
        isinstance(likelihood_scale, int | float)
        and np.isfinite(likelihood_scale)
        and likelihood_scale > 0
    ):
        raise ValueError(f"likelihood_scale must be a positive number; got {likelihood_scale!r}")
    return CallableLatentModel(encoder, decoder, int(latent_dim), likelihood, likelihood_scale)
