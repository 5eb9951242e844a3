"""The toy strip world, its two Bayes-net world models, and concept transfer between them.

* :class:`StripWorld`: the rules (``shared/design/strip-world.md``);
* :class:`ObjectCentricModel`, :class:`LocalStateModel`: the two world models as Pyro programs
  with exact enumeration;
* concepts (:func:`get_concept`), the exact translation ``p(l₂ | l₁)``
  (:func:`translation_matrix`), the transferred identifier ``E[c(l₁) | l₂]``
  (:class:`TransferredIdentifier`), sampled and learned approximations, and belief edits
  (:func:`set_concept`).
"""

from pyro_latent.toy.concepts import Concept, concept_names, get_concept
from pyro_latent.toy.edits import set_concept
from pyro_latent.toy.identifiers import TorchMLPClassifier, learning_curve
from pyro_latent.toy.models import (
    ImpossibleObservationError,
    LocalStateModel,
    ObjectCentricModel,
)
from pyro_latent.toy.transfer import (
    TransferredIdentifier,
    invertible_formula,
    monte_carlo_translation,
    smallest_invertible_window,
    transfer_concept,
    translation_matrix,
)
from pyro_latent.toy.world import LOCAL_CODES, SYMBOLS, StripWorld

__all__ = [
    "LOCAL_CODES",
    "SYMBOLS",
    "Concept",
    "ImpossibleObservationError",
    "LocalStateModel",
    "ObjectCentricModel",
    "StripWorld",
    "TorchMLPClassifier",
    "TransferredIdentifier",
    "concept_names",
    "get_concept",
    "invertible_formula",
    "learning_curve",
    "monte_carlo_translation",
    "set_concept",
    "smallest_invertible_window",
    "transfer_concept",
    "translation_matrix",
]
