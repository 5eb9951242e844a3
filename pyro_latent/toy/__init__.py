"""The toy strip world, its two Bayes-net world models, and concepts moved between them.

* :class:`StripWorld`: the rules (``shared/design/strip-world.md``);
* :class:`ObjectCentricModel`, :class:`LocalStateModel`: the two world models as Pyro programs
  with exact enumeration, compiled to one :class:`~pyro_latent.toy.hmm.CompiledHMM` each;
* :mod:`~pyro_latent.toy.concepts`: named concepts (``blue_velocity``, ``red_location``,
  ``cell_k``, …) on either model's latents (:func:`get_concept`);
* :mod:`~pyro_latent.toy.edits`: :func:`set_concept`, and the check that an edit means the same
  thing in both models (:func:`edit_agreement`);
* :mod:`~pyro_latent.toy.transfer`: a concept moved from one model to the other by posterior
  inference: exact, sampled and learned.
"""

from pyro_latent.toy.concepts import (
    Concept,
    concept_names,
    concepts,
    get_concept,
    latent_space,
    register_concept,
)
from pyro_latent.toy.edits import (
    EditAgreement,
    edit_agreement,
    matching_latents,
    predicted_observations,
    set_concept,
)
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
    "Concept",
    "EditAgreement",
    "ImpossibleObservationError",
    "LocalStateModel",
    "ObjectCentricModel",
    "StripWorld",
    "concept_names",
    "concepts",
    "edit_agreement",
    "get_concept",
    "latent_space",
    "matching_latents",
    "predicted_observations",
    "register_concept",
    "set_concept",
]
