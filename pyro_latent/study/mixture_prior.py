r"""What the ``mixture_prior`` experiment measures on one VAE, and the tables it quotes.

:func:`model_record` takes, for any :class:`~pyro_latent.core.latent_model.LatentModel` on test
images:

* the test ELBO (:func:`~pyro_latent.vae.metrics.evaluate_elbo`, the model's own prior);
* ``log p(x)`` by importance sampling from the guide (:func:`~pyro_latent.vae.gaps.
  batched_importance`), averaged over the images whose Pareto ``k̂ ≤ 0.7`` (the others are
  counted, not averaged);
* the active units;
* for a mixture prior, the cluster accuracy of ``argmax_c p(c | μ(x))`` against the classes
  (Hungarian matching, :func:`~pyro_latent.vae.metrics.cluster_accuracy`), and the weights;
* the model-density trees (:func:`~pyro_latent.analysis.density_trees.model_density_tree`) of
  the prior (a mixture's only: ``N(0, I)`` has one mode) and of the aggregate posterior, with
  their purity by depth for the classes and for the natural groups.

:func:`prior_tree_invariance` grows the prior's tree of one mixture VAE under every map of the
invariance table, the check seed 002 asks of a model with a known density.

:func:`comparison_table` puts each mixture preset beside its Normal-prior twin, as mean ± s.d.
over seeds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from pyro_latent.analysis.density_trees import model_density_tree
from pyro_latent.analysis.level_sets import moved_points, purity_by_depth
from pyro_latent.core.latent_model import encode_in_batches
from pyro_latent.vae.gaps import batched_importance
from pyro_latent.vae.local_gaussian import model_log_joint
from pyro_latent.vae.metrics import (
    active_units,
    cluster_accuracy,
    encode_dataset,
    evaluate_elbo,
    mean_sd,
)
from pyro_latent.vae.mixture import MixturePriorVAE

__all__ = [
    "comparison_table",
    "log_evidence",
    "model_record",
    "prior_tree_invariance",
    "tree_record",
]


def log_evidence(model, images: torch.Tensor, n_samples: int, seed: int = 0) -> dict:
    """Guide-proposal importance sampling of ``log p(x)`` for each image: the mean over the
    reliable ones (``k̂ ≤ 0.7``), its standard error across images, and how many were not."""
    loc, scale = encode_in_batches(model, images)
    proposal = torch.distributions.Independent(torch.distributions.Normal(loc, scale), 1)
    with torch.no_grad():
        out = batched_importance(model_log_joint(model, images), proposal, n_samples, seed=seed)
    good = out["log_evidence"][out["reliable"]]
    return {
        "mean": float(good.mean()) if good.size else None,
        "se": float(good.std(ddof=1) / np.sqrt(good.size)) if good.size > 1 else None,
        "unreliable": int((~out["reliable"]).sum()),
        "images": int(len(out["reliable"])),
    }


def tree_record(tree, labels: np.ndarray, groups: Mapping) -> dict:
    """A density tree as the report quotes it: node and leaf counts, purity by depth."""
    return {
        "nodes": len(tree.nodes),
        "leaves": len(tree.leaves),
        "depth": int(tree.max_depth),
        "classes": purity_by_depth(tree, labels),
        "groups": purity_by_depth(tree, labels, groups),
    }


def model_record(
    model,
    images: torch.Tensor,
    labels: np.ndarray,
    *,
    groups: Mapping,
    evidence_images: int,
    n_samples: int,
    tree_points: int,
    min_cluster_size: int,
    seed: int = 0,
) -> dict:
    """The module docstring's measurements of ``model`` on ``images [N, 784]`` (classes
    ``labels``): trees on the first ``tree_points`` codes, the aggregate posterior over the
    rest, ``log p(x)`` on the first ``evidence_images``."""
    labels = np.asarray(labels)
    if not 0 < tree_points < len(images) or len(labels) != len(images):
        raise ValueError(
            f"need labels for every image and 0 < tree_points < {len(images)}; got "
            f"{len(labels)} labels and tree_points={tree_points}"
        )
    enc = encode_dataset(model, images)
    record = {
        "elbo": evaluate_elbo(model, images, seed=seed),
        "log_px": log_evidence(model, images[:evidence_images], n_samples, seed=seed),
        "active_units": int(active_units(enc).sum()),
    }
    trees = {"aggregate-posterior": {"reference": images[tree_points:]}}
    if isinstance(model, MixturePriorVAE):
        clusters = model.cluster(images).numpy()
        record["cluster_accuracy"] = cluster_accuracy(labels, clusters)
        record["components_used"] = int(len(np.unique(clusters)))
        record["weights"] = sorted(torch.softmax(model.prior.logits, -1).tolist(), reverse=True)
        trees = {"prior": {}, **trees}
    record["trees"] = {
        density: tree_record(
            model_density_tree(
                model,
                images[:tree_points],
                density=density,
                min_cluster_size=min_cluster_size,
                **kwargs,
            ),
            labels[:tree_points],
            groups,
        )  # fmt: skip
        for density, kwargs in trees.items()
    }
    return record


def prior_tree_invariance(
    model, images: torch.Tensor, maps: Mapping, min_cluster_size: int
) -> dict:
    """The prior's model-density tree of ``model`` re-parametrised by each map of ``maps``
    (:func:`~pyro_latent.study.coordinate_free.reparametrizations`), against the first map's:
    ``{map: {"nodes", "sizes", "moved"}}``, ``moved`` counting the points in another node (all
    of them when the trees differ in size)."""
    from pyro_latent.analysis.reparametrize import ReparametrizedVAE

    out, base = {}, None
    for name, phi in maps.items():
        tree = model_density_tree(ReparametrizedVAE(model, phi).eval(), images, density="prior",
                                  min_cluster_size=min_cluster_size)  # fmt: skip
        base = base or tree
        out[name] = {"nodes": len(tree.nodes), "sizes": [n.size for n in tree.nodes],
                     "moved": moved_points(tree, base)}  # fmt: skip
    return out


def comparison_table(records: Mapping[str, Sequence[Mapping]], pairs: Sequence[tuple]) -> list:
    """One row per ``(mixture preset, Normal-prior preset)`` pair: the mean ± s.d. over seeds
    of the ELBO, ``log p(x)``, active units and (the mixture's) cluster accuracy."""
    rows = []
    for mix, base in pairs:
        row = {"mixture": mix, "normal": base}
        for key in ("elbo", "active_units"):
            row[key] = {name: mean_sd([r[key] for r in records[name]]) for name in (mix, base)}
        row["log_px"] = {}
        for name in (mix, base):  # None when no seed has a reliable estimate
            values = [r["log_px"]["mean"] for r in records[name] if r["log_px"]["mean"] is not None]
            row["log_px"][name] = mean_sd(values) if values else None
        row["cluster_accuracy"] = mean_sd([r["cluster_accuracy"] for r in records[mix]])
        rows.append(row)
    return rows
