"""The toy strip world and its two Bayes-net world models (exact enumeration in Pyro)."""

from pyro_latent.toy.models import (
    ImpossibleObservationError,
    LocalStateModel,
    ObjectCentricModel,
)
from pyro_latent.toy.world import LOCAL_CODES, SYMBOLS, StripWorld

__all__ = [
    "LOCAL_CODES",
    "SYMBOLS",
    "ImpossibleObservationError",
    "LocalStateModel",
    "ObjectCentricModel",
    "StripWorld",
]
