r"""Persistent homology of latent codes: the H0 and H1 diagrams of a cloud, and their distances.

The Vietoris–Rips filtration of a point cloud adds an edge between two points once the scale
``r`` reaches their distance, and a triangle once all three of its edges are in.  The homology
of the resulting complexes changes as ``r`` grows.  A connected component (H0) or a loop (H1)
is *born* at some scale and *dies* at a larger one, and the diagram is the multiset of those
``(birth, death)`` pairs.  Bars far from the diagonal are features of the cloud's shape.  Bars
near it are noise.  Every H0 bar is born at 0 and dies at an edge of the Euclidean minimum
spanning tree, which the tests check.  ``ripser`` computes the diagrams (Bauer 2021;
``ripser.py``, Tralie, Saul and Bar-On 2018).

**Conventions**, the same everywhere in the package:

* a cloud is reduced to a fixed seeded subsample of ``n_points`` rows
  (``numpy.random.default_rng(seed)``, sorted), so two models' diagrams of the same images use
  the same rows;
* it is divided by its median pairwise distance, so that a diagram is unchanged by an isotropic
  rescaling (and, since Rips uses distances only, by any rotation, reflection or translation);
* **the infinite H0 bar is dropped.**  Every non-empty cloud has exactly one, the component
  that never dies, so it tells two clouds nothing apart, and both distances below would
  otherwise be infinite or (as ``persim`` does, with a warning) silently drop it.

**Distances** between two diagrams ``D``, ``E`` of one dimension, each point allowed to match
the diagonal (GUDHI; the tests check both against ``persim``):

* bottleneck, ``inf_γ sup_p ‖p − γ(p)‖_∞`` (``gudhi.bottleneck_distance``, exact);
* 1-Wasserstein, ``inf_γ Σ_p ‖p − γ(p)‖₂`` (``gudhi.wasserstein.wasserstein_distance`` with
  ``order=1, internal_p=2``, an optimal-transport problem solved by POT).

The bottleneck distance is stable: it is at most the Hausdorff distance between the two clouds
(Cohen-Steiner, Edelsbrunner and Harer 2007).  So it is a distance between shapes, not a
comparison of coordinates.  A non-similarity map of the latent space does change distances,
and with them the diagram.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy.spatial.distance import pdist

from pyro_latent.analysis.similarity import _as_matrix
from pyro_latent.core.checks import check_int, check_nonnegative_int, check_positive_int

__all__ = [
    "DIAGRAM_DIMENSIONS",
    "diagram_distances",
    "diagram_summary",
    "persistence_diagrams",
]

DIAGRAM_DIMENSIONS = ("h0", "h1")


def _subsample(n: int, k: int, seed: int) -> np.ndarray:
    if n <= k:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))


def persistence_diagrams(X, *, n_points: int = 1000, seed: int = 0, maxdim: int = 1) -> dict:
    """The Rips persistence diagrams of ``X [N, d]`` (module docstring for the conventions).

    Returns ``{"h0": [k₀, 2], "h1": [k₁, 2], …, "rows": the subsample's row indices,
    "scale": the median pairwise distance the cloud was divided by}``: one ``(birth, death)``
    array per dimension up to ``maxdim`` (finite bars only), in units of that median.
    """
    import ripser  # imported here: the rest of the package does not need it

    X = _as_matrix(X, "X")
    n_points = check_int(n_points, "n_points", minimum=3)
    maxdim = check_int(maxdim, "maxdim", minimum=0, maximum=2)
    rows = _subsample(X.shape[0], n_points, check_nonnegative_int(seed, "seed"))
    if len(rows) < 3:
        raise ValueError(f"persistent homology needs at least 3 points, X has {X.shape[0]}")
    cloud = X[rows]
    scale = float(np.median(pdist(cloud)))
    if not scale > 0:
        raise ValueError(
            "X has no spread: at least half of its pairwise distances are 0, so there is no "
            "median distance to scale by"
        )
    dgms = ripser.ripser(cloud / scale, maxdim=maxdim)["dgms"]
    out: dict = {"rows": rows, "scale": scale}
    for dim, dgm in enumerate(dgms):
        dgm = np.asarray(dgm, dtype=np.float64).reshape(-1, 2)
        infinite = ~np.isfinite(dgm[:, 1])
        expected = 1 if dim == 0 else 0
        if int(infinite.sum()) != expected:
            raise RuntimeError(
                f"ripser returned {int(infinite.sum())} infinite H{dim} bars for a finite Rips "
                f"filtration, expected {expected}"
            )
        out[f"h{dim}"] = dgm[~infinite]
    return out


def _diagram(value, name: str) -> np.ndarray:
    dgm = np.asarray(value, dtype=np.float64)
    if dgm.size == 0:
        return np.zeros((0, 2))
    if dgm.ndim != 2 or dgm.shape[1] != 2:
        raise ValueError(f"{name} must be a (birth, death) array [k, 2], got shape {dgm.shape}")
    if not np.isfinite(dgm).all():
        raise ValueError(
            f"{name} has infinite or NaN bars: drop the infinite H0 bar first (as "
            "persistence_diagrams does)"
        )
    if (dgm[:, 1] < dgm[:, 0]).any():
        raise ValueError(f"{name} has a bar that dies before it is born")
    return dgm


def diagram_distances(a: Mapping, b: Mapping, dims=DIAGRAM_DIMENSIONS) -> dict:
    """Bottleneck and 1-Wasserstein distances between two results of
    :func:`persistence_diagrams`, per dimension: ``{"h0": {"bottleneck", "wasserstein"}, …}``."""
    import gudhi
    from gudhi.wasserstein import wasserstein_distance

    dims = (dims,) if isinstance(dims, str) else tuple(dims)
    out = {}
    for dim in dims:
        if dim not in a or dim not in b:
            raise ValueError(f"both diagrams need {dim!r}; got {sorted(a)} and {sorted(b)}")
        da, db = _diagram(a[dim], f"a[{dim!r}]"), _diagram(b[dim], f"b[{dim!r}]")
        out[dim] = {
            "bottleneck": float(gudhi.bottleneck_distance(da, db)),
            "wasserstein": float(wasserstein_distance(da, db, order=1, internal_p=2)),
        }
    return out


def diagram_summary(diagrams: Mapping, threshold: float = 0.1, top: int = 3) -> dict:
    """Per dimension: the number of bars, the number with persistence ``death − birth`` above
    ``threshold`` (in median-distance units), the ``top`` largest persistences and the total."""
    top = check_positive_int(top, "top")
    out = {}
    for dim in DIAGRAM_DIMENSIONS:
        if dim not in diagrams:
            continue
        dgm = _diagram(diagrams[dim], dim)
        life = np.sort(dgm[:, 1] - dgm[:, 0])[::-1]
        out[dim] = {
            "bars": int(len(life)),
            "above_threshold": int((life > threshold).sum()),
            "threshold": float(threshold),
            "largest": life[:top].tolist(),
            "total": float(life.sum()),
        }
    return out
