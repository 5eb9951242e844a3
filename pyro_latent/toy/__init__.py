"""The toy strip world and its two Bayes-net world models.

* :class:`StripWorld`: the rules (``shared/design/strip-world.md``);
* :class:`ObjectCentricModel`, :class:`LocalStateModel`: the two world models as Pyro programs
  with exact enumeration, compiled to one :class:`~pyro_latent.toy.hmm.CompiledHMM` each.

Concepts on their latents live in :mod:`pyro_latent.concepts`; moving a concept from one model to
the other lives in :mod:`pyro_latent.translate`.
"""

from pyro_latent.toy.hmm import CompiledHMM
from pyro_latent.toy.models import (
    ImpossibleObservationError,
    LocalStateModel,
    ObjectCentricModel,
)
from pyro_latent.toy.world import LOCAL_CODES, SYMBOLS, StripWorld

__all__ = [
    "LOCAL_CODES",
    "SYMBOLS",
    "CompiledHMM",
    "ImpossibleObservationError",
    "LocalStateModel",
    "ObjectCentricModel",
    "StripWorld",
]
