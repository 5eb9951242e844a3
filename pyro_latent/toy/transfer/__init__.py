r"""Moving a concept from one strip-world model's latents to the other's by posterior inference.

* :mod:`~pyro_latent.toy.transfer.exact`: the exact translation ``p(l₂ | l₁)``
  (:func:`translation_matrix`), the transferred identifier ``E[c(l₁) | l₂]``
  (:func:`transfer_concept`, :class:`TransferredIdentifier`) and the invertible-case formula
  ``f₂ = c ∘ g₁ ∘ g₂⁻¹`` (:func:`invertible_formula`);
* :mod:`~pyro_latent.toy.transfer.sampled`: Monte-Carlo and Rao–Blackwellised estimates of the same
  matrix, with standard errors, for windows too long to enumerate;
* :mod:`~pyro_latent.toy.transfer.identifiers`: identifiers learned from sampled pairs, scored
  against the exact answer.
"""

from pyro_latent.toy.transfer.exact import (
    FormulaCheck,
    TransferredIdentifier,
    concept_values,
    distance_from_identity,
    invertible_formula,
    last_step_prior,
    noise_free_windows,
    smallest_invertible_window,
    transfer_concept,
    translation_matrix,
    window_log_likelihood,
    window_states,
)
from pyro_latent.toy.transfer.identifiers import (
    TorchMLPClassifier,
    TransferData,
    evaluate_identifier,
    latent_features,
    learning_curve,
    make_learner,
    samples_to_accuracy,
    samples_to_accuracy_by_seed,
    transfer_data,
)
from pyro_latent.toy.transfer.sampled import (
    Estimate,
    MonteCarloTranslation,
    RaoBlackwellTranslation,
    expected_tv,
    loglog_slope,
    monte_carlo_translation,
    rao_blackwell_translation,
    total_variation,
)

__all__ = [
    "Estimate",
    "FormulaCheck",
    "MonteCarloTranslation",
    "RaoBlackwellTranslation",
    "TorchMLPClassifier",
    "TransferData",
    "TransferredIdentifier",
    "concept_values",
    "distance_from_identity",
    "evaluate_identifier",
    "expected_tv",
    "invertible_formula",
    "last_step_prior",
    "latent_features",
    "learning_curve",
    "loglog_slope",
    "make_learner",
    "monte_carlo_translation",
    "noise_free_windows",
    "rao_blackwell_translation",
    "samples_to_accuracy",
    "samples_to_accuracy_by_seed",
    "smallest_invertible_window",
    "total_variation",
    "transfer_concept",
    "transfer_data",
    "translation_matrix",
    "window_log_likelihood",
    "window_states",
]
