"""pyro-latent: translating concepts between the latent spaces of world models, with Pyro.

Sub-packages, one per idea:

* :mod:`pyro_latent.toy`: the strip world, its two Bayes-net world models, concept transfer;
* :mod:`pyro_latent.vae`: FashionMNIST VAEs as Pyro SVI models;
* :mod:`pyro_latent.concepts`, :mod:`pyro_latent.translate`, :mod:`pyro_latent.analysis`;
* :mod:`pyro_latent.plotting`: the study's figures.
"""

__version__ = "0.1.0"
