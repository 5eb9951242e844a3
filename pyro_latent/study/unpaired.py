r"""Translation without paired data, scored against the paired translators.

Two models encode *different* samples of the same data distribution: clouds ``A`` (model 1's
codes of some images) and ``B`` (model 2's codes of other images).  Nothing says which point of
``A`` goes with which of ``B``.  Two coordinate-free ways to build a translator anyway:

* **level-set trees** (seed 002, :class:`~pyro_latent.translate.level_set_trees.
  LevelSetTreeTranslator`): match the two density cluster trees by their shape, then fit an
  affine map (or Procrustes, when too few anchors span the space) on matched node centroids;
* **Gromov–Wasserstein** (:class:`~pyro_latent.translate.gromov.GromovWassersteinTranslator`):
  couple subsamples of the two clouds through their within-space distance matrices, then fit on
  each source point and its barycentric partner.

Both are scored on held-out images that *both* models encoded, by the variance-weighted ``R²``
of the translated codes against model 2's own, beside Procrustes and affine translators fitted on
paired codes of the images of cloud ``A``; ``fraction_of_paired`` divides by the better of the
two paired scores (``None`` when that is not positive; a negative fraction means the unpaired
translator does worse than predicting model 2's mean code).
Class labels are used only to score: the fraction of matched nodes (or coupled points) whose
majority (or own) classes agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from sklearn.metrics import r2_score

from pyro_latent.analysis.level_sets import (
    TooFewAnchorsError,
    matched_class_agreement,
    purity_by_depth,
)
from pyro_latent.core.checks import check_positive_int
from pyro_latent.translate.gromov import GromovWassersteinTranslator
from pyro_latent.translate.level_set_trees import LevelSetTreeTranslator
from pyro_latent.translate.translators import AffineTranslator, make_translator

__all__ = ["best_unpaired", "tree_drawing", "unpaired_comparison"]


def _fraction(value: float, reference: float) -> float | None:
    """``value / reference``, or ``None`` when the reference explains nothing (``R² ≤ 0``)."""
    return value / reference if reference > 0 else None


def _r2(translator, z1: np.ndarray, z2: np.ndarray) -> float:
    return float(r2_score(z2, translator.transform(z1), multioutput="variance_weighted"))


def best_unpaired(record: Mapping) -> dict:
    """The best unpaired setting of one comparison record: ``{"setting", "r2", "fraction"}``,
    over every Gromov–Wasserstein size and the level-set tree (when it gave a translator), with
    ``fraction`` its ``R²`` over the better paired translator's (``None`` when that explains
    nothing).  Chosen on the held-out score itself, so it is an optimistic figure."""
    candidates = {f"gw {k}": v for k, v in record["gw"].items()}
    if record.get("tree") is not None:
        candidates["tree"] = record["tree"]
    if not candidates:
        raise ValueError(f"{record['pair']} has no unpaired score")
    setting = max(candidates, key=candidates.get)
    r2 = candidates[setting]
    return {"setting": setting, "r2": r2, "fraction": _fraction(r2, record["best_paired"])}


def unpaired_comparison(
    z1: np.ndarray,
    z2: np.ndarray,
    labels: np.ndarray,
    *,
    names: tuple[str, str],
    cloud: int,
    min_cluster_size: int,
    gw_points: Sequence[int],
    groups: Mapping | None = None,
    seed: int = 0,
) -> tuple[dict, list]:
    """Score both unpaired translators on codes ``z1 [N, d₁]`` and ``z2 [N, d₂]`` of the same
    ``N`` images (rows paired, class ``labels [N]``).

    Cloud ``A`` is ``z1`` of images ``0..cloud-1``, cloud ``B`` is ``z2`` of images
    ``cloud..2·cloud-1`` (disjoint images, so unpaired); the rest are held out.  Returns the
    record and the drawing of the two trees with their matches (:func:`tree_drawing`), or
    ``None`` when the trees were too shallow to give the anchors a translator needs (the record
    then says why in ``tree_error``).
    """
    cloud = check_positive_int(cloud, "cloud")
    z1, z2, labels = np.asarray(z1, float), np.asarray(z2, float), np.asarray(labels)
    if not len(z1) == len(z2) == len(labels) or len(z1) < 2 * cloud + 10:
        raise ValueError(
            f"need z1, z2 and labels for the same N ≥ 2·cloud + 10 = {2 * cloud + 10} images; "
            f"got {len(z1)}, {len(z2)} and {len(labels)}"
        )
    a, b, held = slice(0, cloud), slice(cloud, 2 * cloud), slice(2 * cloud, None)
    tree = LevelSetTreeTranslator(min_cluster_size=min_cluster_size, estimator=AffineTranslator())
    try:
        tree.fit(z1[a], z2[b])
        tree_error = None
    except TooFewAnchorsError as err:  # trees too shallow to give enough anchors: a result
        tree_error = str(err)
    gw = {}
    for points in gw_points:
        g = GromovWassersteinTranslator(n_points=points, seed=seed).fit(z1[a], z2[b])
        partner = g.dst_indices_[g.coupling_.argmax(1)]
        same = labels[a][g.src_indices_] == labels[b][partner]
        gw[str(points)] = {
            "r2": _r2(g, z1[held], z2[held]),
            "class_agreement": float(same.mean()),
            "gw_distance": float(g.gw_distance_),
        }
    paired = {
        k: _r2(make_translator(k).fit(z1[a], z2[a]), z1[held], z2[held])
        for k in ("procrustes", "affine")
    }
    best_paired = max(paired.values())
    record = {
        "pair": f"{names[0]} → {names[1]}",
        "cloud": cloud,
        "held_out": len(z1) - 2 * cloud,
        "paired": paired,
        "gw": {k: v["r2"] for k, v in gw.items()},
        "gw_details": gw,
        "best_paired": best_paired,
        "fraction_of_paired": {f"gw {k}": _fraction(v["r2"], best_paired) for k, v in gw.items()},
        "tree_error": tree_error,
    }
    if tree_error is not None:
        record.update(tree=None, tree_kind=None, tree_anchors=0, tree_class_agreement=None)
        record["fraction_of_paired"]["tree"] = None
        record["best_unpaired"] = best_unpaired(record)
        return record, None
    tree_r2 = _r2(tree, z1[held], z2[held])
    record.update(
        tree=tree_r2,
        tree_kind=tree.kind_,
        tree_anchors=int(tree.n_anchors_),
        tree_nodes=[len(tree.tree_a_.nodes), len(tree.tree_b_.nodes)],
        tree_class_agreement=matched_class_agreement(
            tree.tree_a_, tree.tree_b_, tree.matches_, labels[a], labels[b]
        ),
        purity={
            name: {"classes": purity_by_depth(t, lab), "groups": purity_by_depth(t, lab, groups)}
            for name, t, lab in (
                (names[0], tree.tree_a_, labels[a]),
                (names[1], tree.tree_b_, labels[b]),
            )
        },
    )
    record["fraction_of_paired"]["tree"] = _fraction(tree_r2, best_paired)
    record["best_unpaired"] = best_unpaired(record)
    drawing = [
        tree_drawing(names[0], tree.tree_a_, labels[a]),
        tree_drawing(names[1], tree.tree_b_, labels[b]),
        [[m.a, m.b] for m in tree.matches_],
    ]
    return record, drawing


def tree_drawing(title: str, tree, labels: np.ndarray, n_classes: int = 10) -> dict:
    """A tree as plain data for :func:`~pyro_latent.plotting.coordinate_free.
    plot_level_set_trees`: each node's parent, depth, birth (over the tree's largest λ), size
    and class composition."""
    top = max(float(tree.lambda_max), 1e-12)
    return {
        "title": title,
        "nodes": [
            {
                "id": n.id,
                "parent": n.parent,
                "depth": n.depth,
                "birth": float(n.birth) / top,
                "size": int(n.size),
                "composition": np.bincount(labels[n.members], minlength=n_classes).tolist(),
            }
            for n in tree.nodes
        ],
    }
