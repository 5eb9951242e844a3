r"""A translator fitted on two *unpaired* clouds through their level-set trees (seed 002).

Both clouds' trees are built and matched by shape alone
(:mod:`pyro_latent.analysis.level_sets`); the centroids of matched nodes are then paired points
of the two spaces, and a paired-data translator of :mod:`pyro_latent.translate.translators` is
fitted on them.  A parent's centroid is the size-weighted mean of its children's and of the
points that fall out of it, so the anchors span little more than the affine hull of the leaves'
centroids: a ``d``-dimensional affine map is determined only when the tree has about ``d + 1``
leaves in general position.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import clone

from pyro_latent.analysis.level_sets import (
    TooFewAnchorsError,
    _independent_anchors,
    level_set_tree,
    match_trees,
    matched_anchors,
)
from pyro_latent.analysis.similarity import _as_matrix
from pyro_latent.translate.translators import (
    AffineTranslator,
    ProcrustesTranslator,
    UnpairedTranslator,
    check_paired_translator,
    translator_name,
)

__all__ = ["LevelSetTreeTranslator", "TooFewAnchorsError"]

# Only ever cloned, never fitted, so one shared default instance is safe.
_DEFAULT_FALLBACK = ProcrustesTranslator()


class LevelSetTreeTranslator(UnpairedTranslator):
    """A translator between two latent spaces fitted on two *unpaired* clouds.

    ``fit(X_src, X_dst)`` builds both level-set trees (:func:`level_set_tree`), pairs their
    nodes (:func:`match_trees`), takes the paired centroids as anchors
    (:func:`matched_anchors`) and fits a clone of the paired-data translator ``estimator`` on
    them.  The clouds may have different
    numbers of points and of dimensions.

    An affine map needs ``d_src + 1`` affinely independent anchors, and nested clusters'
    centroids are not independent (module docstring).  When the anchors have fewer
    affinely independent rows than the translator's ``min_pairs(d_src)``, the fit falls back
    to a clone of ``fallback`` (default :class:`~pyro_latent.translate.translators.
    ProcrustesTranslator`, a similarity map, which needs 2 anchors) and records it in
    ``kind_``; with ``fallback=None``, or when even
    the fallback lacks anchors, ``fit`` raises a ``ValueError``.  Either way an under-determined
    map is only as good as the anchors' span.

    Fitted attributes: ``tree_a_``, ``tree_b_`` (source and target trees), ``matches_``,
    ``anchors_src_``, ``anchors_dst_``, ``n_anchors_``, ``n_independent_anchors_``,
    ``kind_`` (the name of the translator used, e.g. ``"affine"``), ``fell_back_``,
    ``translator_``, ``n_features_in_`` and ``n_features_out_``.

    Args:
        min_cluster_size, min_samples: passed to :func:`level_set_tree` for both clouds.
        estimator: the paired translator fitted on the anchors (default
            :class:`~pyro_latent.translate.translators.AffineTranslator`); its parameters are
            reachable as ``estimator__alpha`` and so on.
        fallback: the translator used when the anchors are too few for ``estimator``
            (``None``: raise).
        include_root: keep the root pair (the clouds' means) among the anchors.
        weights, max_cost: passed to :func:`match_trees`.
    """

    def __init__(
        self,
        min_cluster_size: int = 10,
        min_samples: int | None = None,
        estimator=None,
        fallback=_DEFAULT_FALLBACK,
        include_root: bool = True,
        weights: dict | None = None,
        max_cost: float | None = None,
    ):
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples
        self.estimator = estimator
        self.fallback = fallback
        self.include_root = include_root
        self.weights = weights
        self.max_cost = max_cost

    def _translators(self):
        """Clones of ``(estimator, fallback or None)``, checked."""
        estimator = AffineTranslator() if self.estimator is None else self.estimator
        fallback = self.fallback
        check_paired_translator(estimator, "estimator")
        if fallback is not None:
            check_paired_translator(fallback, "fallback")
        if not isinstance(self.include_root, bool | np.bool_):
            raise ValueError(f"include_root must be True or False, got {self.include_root!r}")
        return clone(estimator), None if fallback is None else clone(fallback)

    def fit(self, X_src, X_dst):
        """Fit on the clouds ``X_src [N_src, d_src]`` and ``X_dst [N_dst, d_dst]`` (rows need
        not correspond); returns ``self``."""
        translator, fallback = self._translators()
        X_src, X_dst = _as_matrix(X_src, "X_src"), _as_matrix(X_dst, "X_dst")
        tree_a = level_set_tree(X_src, self.min_cluster_size, self.min_samples)
        tree_b = level_set_tree(X_dst, self.min_cluster_size, self.min_samples)
        matches = match_trees(tree_a, tree_b, weights=self.weights, max_cost=self.max_cost)
        A, B = matched_anchors(
            X_src, X_dst, tree_a, tree_b, matches, include_root=bool(self.include_root)
        )
        independent = _independent_anchors(A)
        d_src = X_src.shape[1]
        fell_back = independent < translator.min_pairs(d_src) and fallback is not None
        if fell_back:
            translator = fallback
        kind = translator_name(translator)
        needed = translator.min_pairs(d_src)
        if independent < needed:
            raise TooFewAnchorsError(
                f"the trees gave {len(A)} matched anchors, {independent} of them affinely "
                f"independent, but the {kind!r} translator needs {needed} for "
                f"{d_src}-dimensional X_src; lower min_cluster_size for a deeper tree, or "
                "choose a translator that needs fewer pairs"
            )
        self.tree_a_, self.tree_b_, self.matches_ = tree_a, tree_b, matches
        self.anchors_src_, self.anchors_dst_ = A, B
        self.n_anchors_, self.n_independent_anchors_ = len(A), independent
        self.kind_, self.fell_back_ = kind, bool(fell_back)
        self.n_features_in_, self.n_features_out_ = d_src, X_dst.shape[1]
        # Set last: transform's fitted check looks for it, so a failed fit is not "fitted".
        self.translator_ = translator.fit(A, B)
        return self
