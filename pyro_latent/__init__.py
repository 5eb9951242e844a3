"""pyro-latent: translating concepts between the latent spaces of world models, with Pyro.

Packages by layer (dependencies point one way, ``tests/test_layering.py`` holds them to it):

* :mod:`pyro_latent.core`: the :class:`LatentModel` protocol, :func:`as_latent_model`, checks;
* :mod:`pyro_latent.analysis`: coordinate-free measures (similarity, Jacobians, level-set trees,
  re-parametrisations);
* :mod:`pyro_latent.translate`: translators between latent spaces, paired and unpaired, and the
  posterior mapping between two latent models;
* :mod:`pyro_latent.toy`: the strip world, its two Bayes-net world models, concept transfer;
* :mod:`pyro_latent.vae`: FashionMNIST VAEs as Pyro SVI models;
* :mod:`pyro_latent.concepts`: concept meters on images and concept directions in a latent space;
* :mod:`pyro_latent.plotting`: figures from plain data;
* :mod:`pyro_latent.study`: the study itself (runner, report, command line, verdicts), which no
  library module imports.
"""

from pyro_latent.core.latent_model import LatentModel, as_latent_model

__version__ = "0.1.0"

__all__ = ["LatentModel", "__version__", "as_latent_model"]
