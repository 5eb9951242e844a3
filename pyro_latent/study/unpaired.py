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

And two that escape GW's isometry trap (:mod:`~pyro_latent.translate.alignment`):

* **GW + Wasserstein–Procrustes**: GW from the independent coupling and from every sign flip of
  the top principal axes, the lowest objectives refined by alternating Procrustes and exact
  transport on the full clouds (also with both clouds whitened, which turns an affine relation
  into an orthogonal one);
* **cluster matching**: k-means centres of each cloud matched by fused GW, then the same
  refinement.

These two are fitted on 80 % of each cloud.  Every setting (GW sample size, cluster count) is
then scored by the *unpaired* transport cost between the translation of the other 20 % of cloud
``A`` and the other 20 % of cloud ``B`` (:func:`~pyro_latent.translate.alignment.
transport_cost`), and the lowest cost is the setting reported as ``selected``.  The paired test
codes never enter the choice.

All are scored on held-out images that *both* models encoded, by the variance-weighted ``R²``
of the translated codes against model 2's own, beside Procrustes and affine translators fitted on
paired codes of the images of cloud ``A``; ``fraction_of_paired`` divides by the better of the
two paired scores (``None`` when that is not positive; a negative fraction means the unpaired
translator does worse than predicting model 2's mean code).
Class labels are used only to score: the fraction of matched nodes (or coupled points) whose
majority (or own) classes agree.  Every translator, paired or not, and the formula when given,
also gets vec2vec's retrieval metrics on the held-out codes (:func:`~pyro_latent.analysis.
similarity.retrieval_metrics`: cosine to the true partner, top-1 among up to 1 000
candidates, mean rank).
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
from pyro_latent.analysis.similarity import retrieval_metrics
from pyro_latent.core.checks import check_positive_int
from pyro_latent.translate.alignment import (
    ClusterMatchingTranslator,
    GromovProcrustesTranslator,
    transport_cost,
)
from pyro_latent.translate.gromov import GromovWassersteinTranslator
from pyro_latent.translate.level_set_trees import LevelSetTreeTranslator
from pyro_latent.translate.translators import AffineTranslator, make_translator

__all__ = ["aligned_candidates", "best_unpaired", "tree_drawing", "unpaired_comparison"]

# The share of each cloud the aligned translators are fitted on; the rest selects their setting.
FIT_SHARE = 0.8


def _fraction(value: float, reference: float) -> float | None:
    """``value / reference``, or ``None`` when the reference explains nothing (``R² ≤ 0``)."""
    return value / reference if reference > 0 else None


def _r2(translator, z1: np.ndarray, z2: np.ndarray) -> float:
    return float(r2_score(z2, translator.transform(z1), multioutput="variance_weighted"))


def best_unpaired(record: Mapping) -> dict:
    """The best unpaired setting of one comparison record: ``{"setting", "r2", "fraction"}``,
    over every Gromov–Wasserstein size, the level-set tree (when it gave a translator) and the
    aligned translators' settings, with
    ``fraction`` its ``R²`` over the better paired translator's (``None`` when that explains
    nothing).  Chosen on the held-out score itself, so it is an optimistic figure."""
    candidates = {f"gw {k}": v for k, v in record["gw"].items()}
    if record.get("tree") is not None:
        candidates["tree"] = record["tree"]
    for c in record.get("aligned", ()):
        candidates[f"{c['method']} {c['setting']}"] = c["r2"]
    if not candidates:
        raise ValueError(f"{record['pair']} has no unpaired score")
    setting = max(candidates, key=candidates.get)
    r2 = candidates[setting]
    return {"setting": setting, "r2": r2, "fraction": _fraction(r2, record["best_paired"])}


def _scores(translated: np.ndarray, z2: np.ndarray, seed: int) -> dict:
    """Held-out ``R²`` and the retrieval metrics of translated codes against the true ones."""
    r2 = float(r2_score(z2, translated, multioutput="variance_weighted"))
    return {"r2": r2, **retrieval_metrics(translated, z2, seed=seed)}


def aligned_candidates(
    a: np.ndarray,
    b: np.ndarray,
    *,
    gw_points: Sequence[int],
    cluster_counts: Sequence[int],
    clusters: tuple[np.ndarray, np.ndarray] | None = None,
    seed: int = 0,
) -> list[dict]:
    """Fit every setting of the two aligned translators (GW at each size, and whitened at the
    largest; k-means at each cluster count) on the first :data:`FIT_SHARE` of the unpaired
    clouds ``a`` and ``b``, each scored by the transport cost of the rest
    (``{"method", "setting", "translator", "validation_cost"}``).  Settings a cloud is too small
    for are skipped.  ``clusters``, one label per point of ``a`` and of ``b`` (a mixture-prior
    VAE's components), adds cluster matching on those clusters."""
    n_a, n_b = int(FIT_SHARE * len(a)), int(FIT_SHARE * len(b))
    fits = [
        ("gw-procrustes", f"{k} points", GromovProcrustesTranslator(n_points=k, seed=seed))
        for k in gw_points
    ]
    if gw_points:  # whitened, at the largest size only: it needs the most points (and time)
        k = max(gw_points)
        white = GromovProcrustesTranslator(n_points=k, whiten=True, seed=seed)
        fits.append(("gw-procrustes", f"{k} points, whitened", white))
    fits += [("cluster", f"{k} clusters", ClusterMatchingTranslator(n_clusters=k, seed=seed))
             for k in cluster_counts if 2 * k <= min(n_a, n_b)]  # fmt: skip
    given = {}
    # A model that put every image in one component has no clusters to match: no candidate.
    if clusters is not None and min(len(np.unique(np.asarray(c)[:k])) for c, k in
                                    zip(clusters, (n_a, n_b), strict=True)) >= 2:  # fmt: skip
        fits.append(("cluster", "model components", ClusterMatchingTranslator(seed=seed)))
        given = {"clusters_src": np.asarray(clusters[0])[:n_a],
                 "clusters_dst": np.asarray(clusters[1])[:n_b]}  # fmt: skip
    out = []
    for method, setting, translator in fits:
        extra = given if setting == "model components" else {}
        translator.fit(a[:n_a], b[:n_b], **extra)
        cost = transport_cost(translator.transform(a[n_a:]), b[n_b:])
        out.append({"method": method, "setting": setting, "translator": translator,
                    "validation_cost": cost})  # fmt: skip
    return out


def unpaired_comparison(
    z1: np.ndarray,
    z2: np.ndarray,
    labels: np.ndarray,
    *,
    names: tuple[str, str],
    cloud: int,
    min_cluster_size: int,
    gw_points: Sequence[int],
    cluster_counts: Sequence[int] = (),
    clusters: tuple[np.ndarray, np.ndarray] | None = None,
    formula: np.ndarray | None = None,
    groups: Mapping | None = None,
    seed: int = 0,
) -> tuple[dict, list]:
    """Score both unpaired translators on codes ``z1 [N, d₁]`` and ``z2 [N, d₂]`` of the same
    ``N`` images (rows paired, class ``labels [N]``).

    Cloud ``A`` is ``z1`` of images ``0..cloud-1``, cloud ``B`` is ``z2`` of images
    ``cloud..2·cloud-1`` (disjoint images, so unpaired); the rest are held out.  ``formula``,
    if given, is the formula's translation of the held-out ``z1`` (rows ``2·cloud..``), scored
    beside the translators.  ``clusters``, if given, labels every image for each model (a
    mixture-prior VAE's most likely components): cluster matching on them joins the
    candidates.  Returns the
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
    paired_fits = {k: make_translator(k).fit(z1[a], z2[a]) for k in ("procrustes", "affine")}
    paired = {k: _r2(t, z1[held], z2[held]) for k, t in paired_fits.items()}
    best_paired = max(paired.values())
    metrics = {f"paired {k}": _scores(t.transform(z1[held]), z2[held], seed)
               for k, t in paired_fits.items()}  # fmt: skip
    if formula is not None:
        metrics["formula"] = _scores(np.asarray(formula, float), z2[held], seed)
    aligned = []
    own = None if clusters is None else (np.asarray(clusters[0])[a], np.asarray(clusters[1])[b])
    for c in aligned_candidates(z1[a], z2[b], gw_points=gw_points, cluster_counts=cluster_counts,
                                clusters=own, seed=seed):  # fmt: skip
        t = c.pop("translator")
        aligned.append({**c, **_scores(t.transform(z1[held]), z2[held], seed),
                        "chosen_start": int(t.chosen_start_)})  # fmt: skip
    selected = None
    if aligned:
        pick = min(aligned, key=lambda c: c["validation_cost"])
        selected = {**pick, "fraction": _fraction(pick["r2"], best_paired)}
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
        "aligned": aligned,
        "selected": selected,
        "metrics": metrics,
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
