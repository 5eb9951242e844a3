r"""Which of the study's measurements survive a change of latent coordinates.

Seed 003's constraint: an interpretability result should not depend on the coordinates a model
happens to use.  Re-parametrise a trained VAE's latent with an invertible map ``φ``,
``y = φ(z)``, and wrap its encoder and decoder (:class:`~pyro_latent.analysis.reparametrize.
ReparametrizedVAE`): ``encode' = φ ∘ encode``, ``decode' = decode ∘ φ⁻¹``.  The wrapped model is
the same function of the images, so any quantity that changes under the wrap is a fact about
the coordinates, not about the model.

:func:`coordinate_measurements` takes every analysis of the study on one (wrapped) VAE:

* **active units** ``#{d : Var_x μ_d(x) > 0.01}`` and the sorted per-axis variances: defined
  axis by axis, so a rotation that spreads one active direction over several axes changes them;
* **Jacobian rank**, the median over test codes of the number of singular values of
  ``∂decode'/∂y`` above ``10⁻²·σ_max``: ``∂decode'/∂y = (∂decode/∂z)(∂φ⁻¹/∂y)`` and the second
  factor is invertible, so the *exact* rank is a property of the model (the singular values are
  not).  The *numerical* rank at a tolerance survives only where the spectrum's gap is wider
  than the map's conditioning: a map of condition number ``κ`` can move each ratio
  ``σ_i / σ_max`` by a factor up to ``κ``;
* **CKA** with another VAE's codes: linear CKA is invariant to orthogonal maps and isotropic
  scaling only, so a general linear or nonlinear ``φ`` moves it;
* **translator quality**: an affine translator from the codes into another VAE's space, its
  variance-weighted ``R²`` and the stitched reconstruction MSE: an affine ``φ`` is absorbed by
  the affine fit, a nonlinear one is not;
* **concept-direction purity** of the height regression direction (a regression CAV, ridge
  ``α = 1`` so that the axes the codes barely use get no weight) traversed from real shoes, in
  steps of the codes' root-mean-square spread per axis;
* **the level-set tree** of the codes (node count, leaf purity): density level sets are
  preserved by any homeomorphism, but the density *estimate* (HDBSCAN's mutual-reachability
  distances) is Euclidean in the coordinates given;
* **the model-density tree** (:func:`~pyro_latent.analysis.density_trees.model_density_tree`):
  the level-set tree of the model's own aggregate posterior over reference images, on a graph
  of decoded images.  A volume-preserving map leaves every density value, and so the tree,
  unchanged; a constant ``|det J|`` rescales them all, which the tree's levels divide out;
* **persistence diagrams** (:mod:`~pyro_latent.analysis.persistence`), H0 and H1 of the codes,
  as their bottleneck distance to the identity's: Rips complexes use Euclidean distances, so
  only similarities keep them.

:func:`compare_with_reference` adds what needs two maps' results at once: how many points sit
in another node of each tree than under the identity (``density_tree_moved``, ``tree_moved``),
and the diagrams' distances to the identity's (``h0_distance``, ``h1_distance``).
:func:`invariance_rows` then compares each map's value with the identity's, relative to a
tolerance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from sklearn.metrics import r2_score

from pyro_latent.analysis.density_trees import model_density_tree
from pyro_latent.analysis.jacobians import decoder_spectra, effective_rank
from pyro_latent.analysis.level_sets import (
    LevelSetTree,
    level_set_tree,
    moved_points,
    purity_by_depth,
)
from pyro_latent.analysis.persistence import (
    diagram_distances,
    diagram_summary,
    persistence_diagrams,
)
from pyro_latent.analysis.reparametrize import (
    AdditiveCoupling,
    Identity,
    Linear,
    MonotoneRotation,
    ReparametrizedVAE,
    Rotation,
)
from pyro_latent.analysis.similarity import linear_cka
from pyro_latent.concepts.directions import RegressionCAV
from pyro_latent.concepts.traversal import traversal_record
from pyro_latent.core.latent_model import decode_in_batches
from pyro_latent.study.shoe_concepts import median_or_none
from pyro_latent.translate.translators import make_translator
from pyro_latent.vae.metrics import encode_dataset

__all__ = [
    "QUANTITIES",
    "compare_with_reference",
    "coordinate_measurements",
    "invariance_groups",
    "invariance_rows",
    "invariance_summary",
    "persistence_table",
    "reparametrizations",
    "spectrum_gap",
    "wrapped",
]

QUANTITIES = (
    "active_units",
    "axis_variance",
    "jacobian_rank",
    "top_singular_value",
    "cka",
    "translator_r2",
    "stitched_mse",
    "height_purity",
    "tree_nodes",
    "tree_leaf_purity",
    "tree_moved",
    "density_tree_nodes",
    "density_tree_leaf_purity",
    "density_tree_moved",
    "h0_distance",
    "h1_distance",
)
# steps along a direction, in root-mean-square spreads of the codes per axis (a rotation keeps it)
ALPHAS = (-3.0, -2.25, -1.5, -0.75, 0.0, 0.75, 1.5, 2.25, 3.0)


def reparametrizations(dim: int, seed: int = 0) -> dict:
    """The maps of the study: identity; a random rotation; a random volume-preserving linear
    map (condition number 10, ``|det| = 1``) and the same map scaled by 2 (``|det| = 2^D``);
    elementwise monotone maps followed by a rotation; four NICE coupling layers (nonlinear,
    ``det = 1``)."""
    return {
        "identity": Identity(dim),
        "rotation": Rotation(dim, seed),
        "linear": Linear(dim, seed, condition=10.0),
        "scaled-linear": Linear(dim, seed, condition=10.0, determinant=2.0**dim),
        "monotone-rotation": MonotoneRotation(dim, seed),
        "coupling": AdditiveCoupling(dim, seed),
    }


def wrapped(vae, phi) -> ReparametrizedVAE:
    """``vae`` re-parametrised by ``phi`` (the identity too, so every column runs the same
    code)."""
    return ReparametrizedVAE(vae, phi).eval()


def _check_inputs(images, labels, target_codes, shoes, heights, tree_points, jacobian_points):
    n = len(images)
    if len(labels) != n or len(target_codes) != n:
        raise ValueError(
            f"images, labels and target_codes must describe the same items; got {n}, "
            f"{len(labels)} and {len(target_codes)}"
        )
    if len(shoes) != len(heights) or len(shoes) < 2:
        raise ValueError(
            f"shoes and heights must pair at least 2 shoes; got {len(shoes)} and {len(heights)}"
        )
    if len(shoes) and (min(shoes) < 0 or max(shoes) >= n):
        raise ValueError(f"shoes must index the {n} images")
    if not 1 <= tree_points < n or not 1 <= jacobian_points <= n:
        raise ValueError(
            f"tree_points ({tree_points}) must be in 1..{n - 1}, leaving reference images for "
            f"the aggregate posterior, and jacobian_points ({jacobian_points}) in 1..{n}"
        )


def coordinate_measurements(
    vae,
    images: torch.Tensor,
    labels: np.ndarray,
    *,
    target_vae,
    target_codes: np.ndarray,
    shoes: np.ndarray,
    heights: np.ndarray,
    spreads: Mapping,
    jacobian_points: int = 100,
    tree_points: int = 1000,
    purity_shoes: int = 10,
    min_cluster_size: int = 25,
    persistence_points: int = 1000,
    seed: int = 0,
) -> dict:
    """The quantities of the module docstring for one VAE (wrapped or not) on test images.

    Args:
        vae: any :class:`~pyro_latent.core.latent_model.LatentModel` (the study's VAE, or a
            :class:`ReparametrizedVAE`).
        images, labels: test images ``[N, 784]`` and their classes.
        target_vae, target_codes: another VAE and its encoder means of the same images, for CKA
            and the affine translator (fitted on the first half, scored on the second).
        shoes, heights: indices of shoe images among ``images`` and their measured heights.
        spreads: the meters' spreads over real shoes (``concepts.traversal.meter_spreads``).
        tree_points: both trees are grown on the codes of the first ``tree_points`` images; the
            model-density tree's aggregate posterior is over the rest.
        persistence_points, seed: the persistence diagrams' seeded subsample.

    The keys starting with ``_`` hold the two trees and the diagrams, for
    :func:`compare_with_reference`, which removes them.
    """
    _check_inputs(images, labels, target_codes, shoes, heights, tree_points, jacobian_points)
    loc = encode_dataset(vae, images).loc  # in the model's own dtype, for its decoder
    y = loc.double()
    variance = y.var(0).numpy()
    s = decoder_spectra(vae, loc[:jacobian_points])
    half = len(y) // 2
    target = np.asarray(target_codes, dtype=float)
    affine = make_translator("affine").fit(y[:half].numpy(), target[:half])
    translated = affine.transform(y[half:].numpy())
    stitched = decode_in_batches(target_vae, translated).double()
    cav = RegressionCAV(alpha=1.0).fit(y[shoes].numpy(), heights)
    spread = float(y.var(0).mean().sqrt())
    alphas = [a * spread for a in ALPHAS]
    purities = [
        traversal_record(vae, loc[i], cav.filter_.to(loc.dtype), alphas, spreads)["purity"]
        for i in shoes[:purity_shoes]
    ]
    tree_labels = np.asarray(labels)[:tree_points]
    tree = level_set_tree(y[:tree_points].numpy(), min_cluster_size=min_cluster_size)
    density_tree = model_density_tree(
        vae, images[:tree_points], density="aggregate-posterior",
        reference=images[tree_points:], min_cluster_size=min_cluster_size,
    )  # fmt: skip
    diagrams = persistence_diagrams(y.numpy(), n_points=persistence_points, seed=seed)
    return {
        "active_units": int((variance > 0.01).sum()),
        "axis_variance": sorted(variance.tolist(), reverse=True),
        "jacobian_rank": float(np.median(effective_rank(s, 1e-2))),
        "top_singular_value": float(s[:, 0].median()),
        "cka": linear_cka(y.numpy(), target),
        "translator_r2": float(
            r2_score(target[half:], translated, multioutput="variance_weighted")
        ),
        "stitched_mse": float((stitched - images[half:].double()).square().mean()),
        # None when no traversal moved either meter (no purity to take a median of)
        "height_purity": median_or_none(purities),
        "tree_nodes": len(tree.nodes),
        "tree_leaf_purity": _leaf_purity(tree, tree_labels),
        "tree_purity_by_depth": purity_by_depth(tree, tree_labels),
        "density_tree_nodes": len(density_tree.nodes),
        "density_tree_leaf_purity": _leaf_purity(density_tree, tree_labels),
        "density_tree_purity_by_depth": purity_by_depth(density_tree, tree_labels),
        "diagram_summary": diagram_summary(diagrams),
        "_tree": tree,
        "_density_tree": density_tree,
        "_diagrams": diagrams,
    }


def _leaf_purity(tree: LevelSetTree, labels: np.ndarray) -> float:
    """The share of the leaves' points that belong to their leaf's majority class."""
    leaves = [tree.nodes[i] for i in tree.leaves]
    majority = sum(int(np.bincount(labels[n.members]).max()) for n in leaves)
    return majority / sum(len(n.members) for n in leaves)


def compare_with_reference(measurements: Mapping[str, dict], reference: str = "identity") -> dict:
    """Each map's measurements with the cross-map quantities added (module docstring) and the
    ``_`` keys removed: ``tree_moved`` and ``density_tree_moved`` (points whose node differs
    from the reference's, counting every point when the trees differ in size) and
    ``h0_distance``/``h1_distance`` (bottleneck distance of the diagrams to the reference's)."""
    if reference not in measurements:
        raise ValueError(f"the reference map {reference!r} is not among {sorted(measurements)}")
    base = measurements[reference]
    out = {}
    for name, values in measurements.items():
        row = {k: v for k, v in values.items() if not k.startswith("_")}
        for key in ("tree", "density_tree"):
            row[f"{key}_moved"] = moved_points(values[f"_{key}"], base[f"_{key}"])
        distances = (
            {d: {"bottleneck": 0.0, "wasserstein": 0.0} for d in ("h0", "h1")}
            if name == reference
            else diagram_distances(values["_diagrams"], base["_diagrams"])
        )
        row["h0_distance"] = distances["h0"]["bottleneck"]
        row["h1_distance"] = distances["h1"]["bottleneck"]
        row["diagram_distances"] = distances
        out[name] = row
    return out


def persistence_table(codes: Mapping[str, np.ndarray], n_points: int = 1000, seed: int = 0) -> dict:
    """The persistence diagrams of several models' codes of the *same* images (one seeded
    subsample of rows for all), summarised per model, with the bottleneck and 1-Wasserstein
    distances between every pair: ``{"summary": {name: …}, "pairs": [{"a", "b", "h0", "h1"}]}``."""
    names = list(codes)
    lengths = {len(np.asarray(codes[k])) for k in names}
    if len(lengths) != 1:
        raise ValueError(f"the models must encode the same images; got clouds of sizes {lengths}")
    diagrams = {k: persistence_diagrams(codes[k], n_points=n_points, seed=seed) for k in names}
    pairs = [
        {"a": a, "b": b, **diagram_distances(diagrams[a], diagrams[b])}
        for i, a in enumerate(names)
        for b in names[i + 1 :]
    ]
    return {"summary": {k: diagram_summary(d) for k, d in diagrams.items()}, "pairs": pairs,
            "n_points": int(len(diagrams[names[0]]["rows"]))}  # fmt: skip


def _relative_change(value, reference, quantity: str, name: str) -> float:
    """Largest ``|a − b| / max(|b|, 10⁻³)`` (an absolute floor, so a value near 0 does not blow
    up); ``None`` on both sides is no change, on one side an infinite one."""
    if value is None or reference is None:
        return 0.0 if value is None and reference is None else float("inf")
    a, b = np.atleast_1d(np.asarray(value, float)), np.atleast_1d(np.asarray(reference, float))
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError(f"{quantity} under {name!r} is not finite: {value!r}")
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-3)))


def invariance_groups(rows: Sequence[Mapping], rotation: str = "rotation") -> dict:
    """The rows of :func:`invariance_rows` grouped by what the maps did to them: ``"every"``
    (unchanged under every map), ``"rotation_only"`` (unchanged by the rotation, changed by
    another map) and ``"moved"`` (changed even by the rotation), each a list of quantities in
    the rows' order."""
    groups: dict[str, list[str]] = {"every": [], "rotation_only": [], "moved": []}
    for row in rows:
        if not row["changed_under"]:
            groups["every"].append(row["quantity"])
        elif rotation in row["invariant_under"]:
            groups["rotation_only"].append(row["quantity"])
        else:
            groups["moved"].append(row["quantity"])
    return groups


def invariance_summary(rows: Sequence[Mapping]) -> dict:
    """What the report's section on coordinate freedom quotes from the rows: the groups
    (:func:`invariance_groups`), each quantity's maps it survives (``invariant_under``), the
    relative tolerance of the continuous quantities, and the active-unit count under each map."""
    by = {row["quantity"]: row for row in rows}
    for needed in ("axis_variance", "active_units"):
        if needed not in by:
            raise ValueError(f"the invariance rows lack {needed!r}")
    return {
        "groups": invariance_groups(rows),
        "invariant_under": {q: row["invariant_under"] for q, row in by.items()},
        "tolerance": by["axis_variance"]["tolerance"],
        "active_units": by["active_units"]["values"],
    }


def spectrum_gap(median: Sequence[float], active_units: int, tol: float = 0.01) -> dict | None:
    """How far the median singular-value spectrum sits from ``tol`` on either side of the last
    active unit: ``above = σ_a/σ_1`` (``a`` the active-unit count) and ``below = σ_{a+1}/σ_1``,
    with ``times_above = above/tol`` and ``times_below = tol/below``.  ``None`` when every
    dimension is active (or none is): there is no gap to measure."""
    s = np.asarray(median, dtype=float)
    a = int(active_units)
    if not (0 < a < s.size):
        return None
    if not (s[0] > 0 and np.isfinite(s).all()):
        raise ValueError("the spectrum must be finite with a positive largest singular value")
    above, below = float(s[a - 1] / s[0]), float(s[a] / s[0])
    return {
        "tol": tol,
        "above": above,
        "below": below,
        "times_above": above / tol,
        "times_below": tol / below if below > 0 else None,
    }


def invariance_rows(
    measurements: Mapping[str, Mapping],
    tolerances: Mapping[str, float] | None = None,
    quantities: Sequence[str] = QUANTITIES,
    reference: str = "identity",
) -> list[dict]:
    """For each quantity, its value under every map, the largest relative change from the
    ``reference`` map's value, and the maps under which it stays within its tolerance (default
    0.1%, which only float noise stays within; integer counts must match exactly unless given a
    tolerance)."""
    if reference not in measurements:
        raise ValueError(f"the reference map {reference!r} is not among {sorted(measurements)}")
    tolerances = dict(tolerances or {})
    rows = []
    for quantity in quantities:
        tol = tolerances.get(quantity, 1e-3)
        missing = [m for m, v in measurements.items() if quantity not in v]
        if missing:
            raise ValueError(f"{quantity} was not measured under {missing}")
        base = measurements[reference][quantity]
        changes = {
            m: _relative_change(v[quantity], base, quantity, m) for m, v in measurements.items()
        }
        exact = isinstance(base, int) and quantity not in tolerances
        kept = [m for m, c in changes.items() if m != reference and (c == 0 if exact else c <= tol)]
        rows.append({
            "quantity": quantity,
            "values": {m: v[quantity] for m, v in measurements.items()},
            "relative_change": {m: c for m, c in changes.items() if m != reference},
            "tolerance": 0.0 if exact else tol,
            "invariant_under": kept,
            "changed_under": [m for m in changes if m not in kept and m != reference],
        })  # fmt: skip
    return rows
