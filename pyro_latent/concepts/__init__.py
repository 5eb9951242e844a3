"""Concepts on a model's latent space, and belief edits that set one concept and keep the rest.

* :mod:`~pyro_latent.concepts.registry`: named concepts (``blue_velocity``, ``red_location``,
  ``cell_k``, …) evaluated on either strip-world model's latents (:func:`get_concept`);
* :mod:`~pyro_latent.concepts.edits`: :func:`set_concept`, and the check that an edit means the
  same thing in both models (:func:`edit_agreement`);
* :mod:`~pyro_latent.concepts.shoes`: concept meters on FashionMNIST images, shoe height and
  brightness, hard and differentiable (:func:`shoe_height`, :func:`soft_shoe_height`, …).
"""

from pyro_latent.concepts.edits import (
    EditAgreement,
    edit_agreement,
    matching_latents,
    predicted_observations,
    set_concept,
)
from pyro_latent.concepts.registry import (
    Concept,
    concept_names,
    concepts,
    get_concept,
    latent_space,
    register_concept,
)
from pyro_latent.concepts.shoes import (
    EmptyShapeError,
    concept_purity,
    shoe_brightness,
    shoe_height,
    soft_shoe_brightness,
    soft_shoe_height,
    taller_shoe,
    whiten,
)

__all__ = [
    "Concept",
    "EditAgreement",
    "EmptyShapeError",
    "concept_names",
    "concept_purity",
    "concepts",
    "edit_agreement",
    "get_concept",
    "latent_space",
    "matching_latents",
    "predicted_observations",
    "register_concept",
    "set_concept",
    "shoe_brightness",
    "shoe_height",
    "soft_shoe_brightness",
    "soft_shoe_height",
    "taller_shoe",
    "whiten",
]
