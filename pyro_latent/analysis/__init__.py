r"""Coordinate-free analyses of latent spaces: what two models' codes share, whatever the basis.

* :mod:`~pyro_latent.analysis.similarity`: similarity of two point clouds of the same items,
  ``X [N, p]`` and ``Y [N, q]``: HSIC (:func:`hsic` on Gram matrices, :func:`linear_hsic` from
  features), linear CKA with the unbiased estimator (:func:`linear_cka`), shared nearest
  neighbours (:func:`knn_jaccard`), the rank of each translated code's true partner
  (:func:`neighbour_mrr`) and pointwise error (:func:`latent_agreement`);
* :mod:`~pyro_latent.analysis.jacobians`: singular values of a decoder's Jacobian and of each
  layer-to-layer map, and effective ranks (seed 003's low-rank factorisation);
* :mod:`~pyro_latent.analysis.reparametrize`: invertible maps of a latent space (rotation,
  linear, monotone-then-rotation, NICE coupling layers) and a VAE wrapped so that it is the
  same function in new coordinates; :mod:`~pyro_latent.study.coordinate_free`: the study's
  measurements under them;
* :mod:`~pyro_latent.analysis.level_sets`: HDBSCAN's level-set tree of a cloud, its class
  composition, and matching two trees by shape alone (seed 002);
  :mod:`~pyro_latent.analysis.density_trees`: the level-set tree of a model's own density
  (prior or aggregate posterior), unchanged by every volume-preserving map;
* :mod:`~pyro_latent.analysis.persistence`: Rips persistence diagrams (H0, H1) of a cloud and
  their bottleneck and Wasserstein distances;
  :mod:`~pyro_latent.translate.gromov`: Gromov–Wasserstein matching of two clouds;
  :mod:`~pyro_latent.study.unpaired`: both as translators without paired data, scored
  against paired ones;
* :mod:`~pyro_latent.analysis.disentanglement`: how well single code dimensions line up with
  known factors, the metrics of the literature: the mutual information gap
  (:func:`mutual_information_gap`), DCI disentanglement, completeness and informativeness
  (:func:`dci`) and SAP (:func:`sap_score`); unlike the rest, they do depend on the basis.

>>> import numpy as np
>>> from pyro_latent.analysis import linear_cka
>>> X = np.random.default_rng(0).standard_normal((100, 5))
>>> round(linear_cka(X, 3.0 * X + 1.0), 12)
1.0
"""

from pyro_latent.analysis.disentanglement import dci, mutual_information_gap, sap_score
from pyro_latent.analysis.similarity import (
    hsic,
    knn_jaccard,
    latent_agreement,
    linear_cka,
    linear_hsic,
    neighbour_mrr,
)

__all__ = [
    "dci",
    "hsic",
    "knn_jaccard",
    "latent_agreement",
    "linear_cka",
    "linear_hsic",
    "mutual_information_gap",
    "neighbour_mrr",
    "sap_score",
]
