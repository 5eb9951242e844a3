r"""Coordinate-free analyses of latent spaces: what two models' codes share, whatever the basis.

* :mod:`~pyro_latent.analysis.similarity`: similarity of two point clouds of the same items,
  ``X [N, p]`` and ``Y [N, q]``: HSIC (:func:`hsic` on Gram matrices, :func:`linear_hsic` from
  features), linear CKA with the unbiased estimator (:func:`linear_cka`), shared nearest
  neighbours (:func:`knn_jaccard`), the rank of each translated code's true partner
  (:func:`neighbour_mrr`) and pointwise error (:func:`latent_agreement`).

Jacobians of the maps between latent spaces and the topology of the clouds are to come.

>>> import numpy as np
>>> from pyro_latent.analysis import linear_cka
>>> X = np.random.default_rng(0).standard_normal((100, 5))
>>> round(linear_cka(X, 3.0 * X + 1.0), 12)
1.0
"""

from pyro_latent.analysis.similarity import (
    hsic,
    knn_jaccard,
    latent_agreement,
    linear_cka,
    linear_hsic,
    neighbour_mrr,
)

__all__ = [
    "hsic",
    "knn_jaccard",
    "latent_agreement",
    "linear_cka",
    "linear_hsic",
    "neighbour_mrr",
]
