r"""Moving a concept from one model's latent space to another's by posterior inference.

* :mod:`~pyro_latent.translate.exact`: the exact translation ``p(l₂ | l₁)``
  (:func:`translation_matrix`), the transferred identifier ``E[c(l₁) | l₂]``
  (:func:`transfer_concept`, :class:`TransferredIdentifier`) and the invertible-case formula
  ``f₂ = c ∘ g₁ ∘ g₂⁻¹`` (:func:`invertible_formula`);
* :mod:`~pyro_latent.translate.sampled`: Monte-Carlo and Rao–Blackwellised estimates of the same
  matrix, with standard errors, for windows too long to enumerate;
* :mod:`~pyro_latent.translate.identifiers`: identifiers learned from sampled pairs, scored
  against the exact answer;
* :mod:`~pyro_latent.translate.latent_mapping`: the same construction between two VAEs, through
  the images: the formula ``μ₂(decode₁(z₁))`` and Monte-Carlo draws of ``p(z₂ | z₁)`` from the
  guide and, by importance resampling, from the true posterior;
* :mod:`~pyro_latent.translate.translators`: the literature's translators fitted on paired
  encodings (least squares, affine, Procrustes, relative representations, an MLP), in
  scikit-learn's ``fit``/``transform`` style;
* :mod:`~pyro_latent.translate.summaries`: the numbers a report quotes (closed forms, census,
  curves, verdicts with their thresholds), as plain data.
"""

from pyro_latent.translate.exact import (
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
from pyro_latent.translate.identifiers import (
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
from pyro_latent.translate.latent_mapping import (
    PosteriorMapping,
    formula_map,
    mapping_program,
    posterior_mapping,
    transferred_expectation,
)
from pyro_latent.translate.sampled import (
    Estimate,
    MonteCarloTranslation,
    RaoBlackwellTranslation,
    expected_tv,
    loglog_slope,
    monte_carlo_translation,
    rao_blackwell_translation,
    total_variation,
)
from pyro_latent.translate.summaries import (
    abstraction_verdict,
    edit_summary,
    rao_blackwell_check,
    window_needed,
)
from pyro_latent.translate.translators import (
    TRANSLATORS,
    AffineTranslator,
    Centering,
    LinearTranslator,
    MLPTranslator,
    ProcrustesTranslator,
    RelativeTranslator,
    StandardScaling,
    ZeroPadding,
    make_translator,
)

__all__ = [
    "TRANSLATORS",
    "AffineTranslator",
    "Centering",
    "LinearTranslator",
    "MLPTranslator",
    "PosteriorMapping",
    "ProcrustesTranslator",
    "RelativeTranslator",
    "StandardScaling",
    "ZeroPadding",
    "formula_map",
    "make_translator",
    "mapping_program",
    "posterior_mapping",
    "transferred_expectation",
    "Estimate",
    "FormulaCheck",
    "MonteCarloTranslation",
    "RaoBlackwellTranslation",
    "TorchMLPClassifier",
    "TransferData",
    "TransferredIdentifier",
    "abstraction_verdict",
    "concept_values",
    "distance_from_identity",
    "edit_summary",
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
    "rao_blackwell_check",
    "rao_blackwell_translation",
    "samples_to_accuracy",
    "samples_to_accuracy_by_seed",
    "smallest_invertible_window",
    "total_variation",
    "transfer_concept",
    "translation_matrix",
    "transfer_data",
    "window_log_likelihood",
    "window_needed",
    "window_states",
]
