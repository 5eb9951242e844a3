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
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from pyro_latent.analysis.level_sets import (
    TooFewAnchorsError,
    _independent_anchors,
    level_set_tree,
    match_trees,
    matched_anchors,
)
from pyro_latent.analysis.similarity import _as_matrix
from pyro_latent.translate.translators import _NOT_FITTED, TRANSLATORS, make_translator

__all__ = ["LevelSetTreeTranslator", "TooFewAnchorsError"]


class LevelSetTreeTranslator(TransformerMixin, BaseEstimator):
    """A translator between two latent spaces fitted on two *unpaired* clouds.

    ``fit(X_src, X_dst)`` builds both level-set trees (:func:`level_set_tree`), pairs their
    nodes (:func:`match_trees`), takes the paired centroids as anchors
    (:func:`matched_anchors`) and fits the paired-data translator
    ``make_translator(kind, **translator_params)`` on them.  The clouds may have different
    numbers of points and of dimensions.

    An affine map needs ``d_src + 1`` affinely independent anchors, and nested clusters'
    centroids are not independent (module docstring).  When the anchors have fewer
    affinely independent rows than the translator's ``min_pairs(d_src)``, the fit falls back
    to ``fallback`` (default ``"procrustes"``, a similarity map, which needs 2 anchors) with
    its default parameters, and records it in ``kind_``; with ``fallback=None``, or when even
    the fallback lacks anchors, ``fit`` raises a ``ValueError``.  Either way an under-determined
    map is only as good as the anchors' span.

    Fitted attributes: ``tree_a_``, ``tree_b_`` (source and target trees), ``matches_``,
    ``anchors_src_``, ``anchors_dst_``, ``n_anchors_``, ``n_independent_anchors_``,
    ``kind_`` (the translator used), ``fell_back_``, ``translator_``, ``n_features_in_`` and
    ``n_features_out_``.

    Args:
        min_cluster_size, min_samples: passed to :func:`level_set_tree` for both clouds.
        kind: the translator fitted on the anchors (one of
            :data:`~pyro_latent.translate.translators.TRANSLATORS`).
        translator_params: keyword arguments for that translator (e.g. ``{"alpha": 1e-3}``).
        fallback: translator used when the anchors are too few for ``kind`` (``None``: raise).
        include_root: keep the root pair (the clouds' means) among the anchors.
        weights, max_cost: passed to :func:`match_trees`.
    """

    def __init__(
        self,
        min_cluster_size: int = 10,
        min_samples: int | None = None,
        kind: str = "affine",
        translator_params: dict | None = None,
        fallback: str | None = "procrustes",
        include_root: bool = True,
        weights: dict | None = None,
        max_cost: float | None = None,
    ):
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples
        self.kind = kind
        self.translator_params = translator_params
        self.fallback = fallback
        self.include_root = include_root
        self.weights = weights
        self.max_cost = max_cost

    def _check_params(self) -> None:
        for name in ("kind", "fallback"):
            value = getattr(self, name)
            if (value is not None or name == "kind") and value not in TRANSLATORS:
                raise ValueError(f"unknown {name} {value!r}; available: {', '.join(TRANSLATORS)}")
        if not isinstance(self.include_root, bool | np.bool_):
            raise ValueError(f"include_root must be True or False, got {self.include_root!r}")
        if self.translator_params is not None and not isinstance(self.translator_params, dict):
            raise ValueError(
                f"translator_params must be a dict or None, got {self.translator_params!r}"
            )

    def fit(self, X_src, X_dst):
        """Fit on the clouds ``X_src [N_src, d_src]`` and ``X_dst [N_dst, d_dst]`` (rows need
        not correspond); returns ``self``."""
        self._check_params()
        X_src, X_dst = _as_matrix(X_src, "X_src"), _as_matrix(X_dst, "X_dst")
        tree_a = level_set_tree(X_src, self.min_cluster_size, self.min_samples)
        tree_b = level_set_tree(X_dst, self.min_cluster_size, self.min_samples)
        matches = match_trees(tree_a, tree_b, weights=self.weights, max_cost=self.max_cost)
        A, B = matched_anchors(
            X_src, X_dst, tree_a, tree_b, matches, include_root=bool(self.include_root)
        )
        independent = _independent_anchors(A)
        d_src = X_src.shape[1]
        kind = self.kind
        translator = make_translator(kind, **(self.translator_params or {}))
        if independent < translator.min_pairs(d_src) and self.fallback is not None:
            kind = self.fallback
            translator = make_translator(kind)
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
        self.kind_, self.fell_back_ = kind, kind != self.kind
        self.n_features_in_, self.n_features_out_ = d_src, X_dst.shape[1]
        # Set last: transform's fitted check looks for it, so a failed fit is not "fitted".
        self.translator_ = translator.fit(A, B)
        return self

    def transform(self, Z) -> np.ndarray:
        """Translate source codes ``Z [N, d_src]`` to ``[N, d_dst]`` (float64)."""
        check_is_fitted(self, "translator_", msg=_NOT_FITTED)
        return self.translator_.transform(Z)

    def score(self, Z_src, Z_dst) -> float:
        """``R²`` of ``transform(Z_src)`` against *paired* ``Z_dst`` (held-out pairs, if any),
        averaged over the target dimensions."""
        check_is_fitted(self, "translator_", msg=_NOT_FITTED)
        return self.translator_.score(Z_src, Z_dst)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True  # X_dst
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = False
        return tags
