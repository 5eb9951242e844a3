"""Concepts on images: meters that measure them, directions in a latent space that move them.

* :mod:`~pyro_latent.concepts.shoes`: concept meters on FashionMNIST images, shoe height and
  brightness, hard and differentiable (:func:`shoe_height`, :func:`soft_shoe_height`, …);
* :mod:`~pyro_latent.concepts.directions`: direction maths in a latent space (angles, purity,
  Gram–Schmidt in a metric);
* :mod:`~pyro_latent.concepts.shoe_directions`, :mod:`~pyro_latent.concepts.traversal`: concept
  directions and traversals of any :class:`~pyro_latent.core.latent_model.LatentModel`.

Concepts on the strip-world models' latents live with them, in :mod:`pyro_latent.toy`.
"""

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
    "EmptyShapeError",
    "concept_purity",
    "shoe_brightness",
    "shoe_height",
    "soft_shoe_brightness",
    "soft_shoe_height",
    "taller_shoe",
    "whiten",
]
