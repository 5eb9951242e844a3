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

# Concept transfer between the two models (issue #3).
from pyro_latent.toy.concepts import Concept, concept_names, get_concept  # noqa: E402
from pyro_latent.toy.edits import set_concept  # noqa: E402
from pyro_latent.toy.identifiers import TorchMLPClassifier, learning_curve  # noqa: E402
from pyro_latent.toy.transfer import (  # noqa: E402
    TransferredIdentifier,
    invertible_formula,
    monte_carlo_translation,
    smallest_invertible_window,
    transfer_concept,
    translation_matrix,
)

__all__ += [
    "Concept",
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
