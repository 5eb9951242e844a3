"""The layer everything else stands on: the :class:`LatentModel` protocol and its adapter,
batching, input checks, atomic writes.  It imports nothing else of the package."""

from pyro_latent.core.latent_model import (
    LatentModel,
    as_latent_model,
    check_codes,
    check_latent_model,
    decode_in_batches,
    decoder_of,
    elbo_programs,
    encode,
    encode_in_batches,
    encoder_mean_of,
    is_latent_model,
    log_prior,
    observation_model,
    require_likelihood,
    require_posterior,
)

__all__ = [
    "LatentModel",
    "as_latent_model",
    "check_codes",
    "check_latent_model",
    "decode_in_batches",
    "decoder_of",
    "elbo_programs",
    "encode",
    "encode_in_batches",
    "encoder_mean_of",
    "is_latent_model",
    "log_prior",
    "observation_model",
    "require_likelihood",
    "require_posterior",
]
