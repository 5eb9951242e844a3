r"""Translators between two models' latent spaces, paired and unpaired, and the posterior mapping.

* :mod:`~pyro_latent.translate.translators`: the literature's translators fitted on paired
  encodings (least squares, affine, Procrustes, relative representations, an MLP), in
  scikit-learn's ``fit``/``transform`` style, and :class:`Translator`, which composes one from
  an aligner, per-side transforms and a dimension matcher;
* :mod:`~pyro_latent.translate.gromov`: Gromov–Wasserstein matching of two *unpaired* clouds, and
  a translator fitted on the coupling;
* :mod:`~pyro_latent.translate.alignment`: unpaired translators that escape GW's isometry trap,
  multi-start GW (sign flips of the principal axes) or k-means clusters matched by fused GW,
  each refined by Wasserstein–Procrustes, and the unpaired transport cost that selects them;
* :mod:`~pyro_latent.translate.level_set_trees`: a translator fitted on two unpaired clouds
  through their matched level-set trees (seed 002);
* :mod:`~pyro_latent.translate.latent_mapping`: the post's construction between two
  :class:`~pyro_latent.core.latent_model.LatentModel`\ s, through the observations: the formula
  ``μ₂(decode₁(z₁))`` and Monte-Carlo draws of ``p(z₂ | z₁)`` from model 2's encoder and, by
  importance resampling, from its true posterior.

The strip world's exact translation ``p(l₂ | l₁)`` lives with the toy models, in
:mod:`pyro_latent.toy.transfer`.
"""

from pyro_latent.translate.alignment import (
    ClusterMatchingTranslator,
    GromovProcrustesTranslator,
    transport_cost,
)
from pyro_latent.translate.gromov import GromovWassersteinTranslator
from pyro_latent.translate.latent_mapping import (
    PosteriorMapping,
    formula_map,
    mapping_program,
    posterior_mapping,
    transferred_expectation,
)
from pyro_latent.translate.level_set_trees import LevelSetTreeTranslator
from pyro_latent.translate.translators import (
    TRANSLATORS,
    AffineTranslator,
    Centering,
    LinearTranslator,
    MLPTranslator,
    OrthogonalAligner,
    ProcrustesTranslator,
    RelativeTranslator,
    StandardScaling,
    Translator,
    ZeroPadding,
    check_paired_translator,
    make_translator,
    translator_name,
    translator_preset,
)

__all__ = [
    "TRANSLATORS",
    "AffineTranslator",
    "Centering",
    "ClusterMatchingTranslator",
    "GromovProcrustesTranslator",
    "GromovWassersteinTranslator",
    "LevelSetTreeTranslator",
    "LinearTranslator",
    "MLPTranslator",
    "OrthogonalAligner",
    "PosteriorMapping",
    "ProcrustesTranslator",
    "RelativeTranslator",
    "StandardScaling",
    "Translator",
    "ZeroPadding",
    "check_paired_translator",
    "formula_map",
    "make_translator",
    "mapping_program",
    "posterior_mapping",
    "transferred_expectation",
    "transport_cost",
    "translator_name",
    "translator_preset",
]
