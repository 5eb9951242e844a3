r"""Where things lie in a VAE's latent space: the shoe region, and the path between two classes.

For test encodings ``μ_1..μ_N`` (posterior means, one row per image) with labels ``y_n``:

* **Class centroid** of class ``c``: ``m_c = mean{μ_n : y_n = c}``.
* **Shoe region** of a 2-D space (the post's "shoe region"): the shoes are the classes
  :data:`~pyro_latent.vae.data.SHOE_CLASSES` (sandal, sneaker, ankle boot).  Their centroid is
  placed relative to the whole cloud in units of its spread,

  .. math::

      o = (m_{\text{shoe}} - \operatorname{median}_n μ_n) \,/\, \operatorname{sd}_n μ_n
      \quad\text{(per coordinate)},

  and named by :func:`compass`; how cleanly they form one region is the 5-fold cross-validated
  accuracy of a logistic regression of "shoe or not" on ``μ_n`` (1: a straight line separates
  them from everything else).
* **Class-to-class path**: ``n`` points ``z(t) = (1 - t) m_a + t m_b``, ``t = 0, 1/(n-1), …, 1``,
  decoded to images ``x̂(t)``.  Each decoded image is compared (Euclidean distance over pixels)
  with the ten class-mean test images ``x̄_c``; with ``d_(1) ≤ d_(2)`` its two smallest distances,
  the image is a **blend** of ``a`` and ``b`` when its two nearest class means are ``x̄_a`` and
  ``x̄_b`` and ``d_(1) / d_(2) ≥`` :data:`BLEND_RATIO` (about as near to one as to the other:
  the post's "half T-shirt, half trouser" images).

:func:`measure` gathers one VAE's numbers (:func:`pyro_latent.vae.metrics.summarize`, and
:func:`shoe_region` for a 2-D space); :func:`two_d_summary` gathers the 2-D spaces' verdicts.

The verdict functions return ``{"verdict": "agrees" | "disagrees" | "cannot be tested", ...}``
with the number and the threshold behind it; ``"agrees"`` means every space measured agrees, and
``"partly"`` flags a disagreement in which some spaces do agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

from pyro_latent.core.checks import (
    check_image_tensor,
    check_int,
    check_positive_int,
    check_probability,
)
from pyro_latent.vae import metrics
from pyro_latent.vae.data import SHOE_CLASSES

__all__ = [
    "BLEND_RATIO",
    "SHOE_SEPARABLE",
    "blend_verdict",
    "class_centroids",
    "class_mean_images",
    "class_path",
    "compass",
    "find_blends",
    "measure",
    "nearest_class_means",
    "segment",
    "shoe_placement",
    "shoe_region",
    "shoe_region_verdict",
    "summarize_path",
    "two_d_summary",
]

BLEND_RATIO = 0.9
"""A decoded image is a blend of classes ``a`` and ``b`` when its two nearest class-mean images
are those of ``a`` and ``b`` and the nearer is at least this fraction of the farther distance."""
SHOE_SEPARABLE = 0.95
"""The shoes form one region when a linear classifier separates them from the rest for at least
this fraction of the images (5-fold cross-validated)."""
COMPASS_RATIO = 2.5
"""An offset is a pure side (``"left side"``, ``"top"``…) when one coordinate exceeds the other
by this factor in absolute value; otherwise it is a corner (``"upper left"``…)."""


def _labels(labels, n: int) -> torch.Tensor:
    labels = torch.as_tensor(labels)
    if labels.shape != (n,) or labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(f"labels must be {n} integer class indices, got {tuple(labels.shape)}")
    return labels


def _points(loc, name: str = "loc", dim: int | None = None) -> torch.Tensor:
    loc = torch.as_tensor(loc)
    if loc.ndim != 2 or not loc.dtype.is_floating_point or loc.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty float array (N, D), got {tuple(loc.shape)}")
    if dim is not None and loc.shape[1] != dim:
        raise ValueError(f"{name} must have {dim} columns, got {tuple(loc.shape)}")
    if not bool(torch.isfinite(loc).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    return loc


def compass(offset: Sequence[float], ratio: float = COMPASS_RATIO) -> str:
    """Name a 2-D offset ``(x, y)`` from the centre of a scatter plot.

    ``|x| > ratio·|y|``: ``"left side"`` or ``"right side"``; ``|y| > ratio·|x|``: ``"top"`` or
    ``"bottom"``; otherwise the corner ``"upper|lower left|right"`` (``y > 0`` is upper, ``x > 0``
    is right, so a zero offset reads ``"lower left"``).
    """
    x, y = (float(v) for v in offset)
    if not (np.isfinite(x) and np.isfinite(y)):
        raise ValueError(f"offset must be two finite numbers, got {offset!r}")
    vertical = "upper" if y > 0 else "lower"
    horizontal = "right" if x > 0 else "left"
    if abs(x) > ratio * abs(y):
        return f"{horizontal} side"
    if abs(y) > ratio * abs(x):
        return "top" if y > 0 else "bottom"
    return f"{vertical} {horizontal}"


def shoe_region(
    loc: torch.Tensor, labels: torch.Tensor, shoe_classes: Sequence[int] = SHOE_CLASSES
) -> dict:
    """Where the shoes lie in a 2-D latent space, and how separable they are from the rest.

    Returns ``centroid`` (``m_shoe``), ``offset_sd`` (``o`` of the module docstring), ``where``
    (:func:`compass` of ``o``) and ``linear_separability``, the mean 5-fold cross-validated
    accuracy of a logistic regression of "shoe or not" on the encodings.
    """
    loc = _points(loc, dim=2)
    labels = _labels(labels, loc.shape[0])
    z = loc.numpy()
    is_shoe = np.isin(labels.numpy(), list(shoe_classes))
    if is_shoe.sum() < 5 or (~is_shoe).sum() < 5:
        raise ValueError("shoe_region needs at least 5 shoes and 5 other images (5-fold CV)")
    centre = np.median(z, axis=0)
    spread = z.std(axis=0)
    offset = (z[is_shoe].mean(0) - centre) / spread
    accuracy = cross_val_score(LogisticRegression(), z, is_shoe, cv=5).mean()
    return {
        "centroid": z[is_shoe].mean(0).tolist(),
        "offset_sd": offset.tolist(),
        "where": compass(offset),
        "linear_separability": float(accuracy),
    }


def shoe_region_verdict(spaces: Sequence[Mapping], threshold: float = SHOE_SEPARABLE) -> dict:
    """Do the shoes form one linearly separable region in every 2-D space?

    ``spaces``: dicts with ``preset``, ``seed`` and ``accuracy`` (the linear separability of
    :func:`shoe_region`).  ``value`` is the worst accuracy; ``below`` lists the spaces under
    ``threshold``; ``separated`` counts those at or above it.
    """
    threshold = check_probability(threshold, "threshold")
    if not spaces:
        return {"verdict": "cannot be tested", "value": None, "threshold": threshold}
    accuracies = [float(s["accuracy"]) for s in spaces]
    below = [
        {"preset": s["preset"], "seed": s["seed"], "accuracy": float(s["accuracy"])}
        for s in spaces
        if float(s["accuracy"]) < threshold
    ]
    separated = len(spaces) - len(below)
    return {
        "verdict": "agrees" if not below else "disagrees",
        "partly": bool(below) and separated > 0,
        "value": min(accuracies),
        "threshold": threshold,
        "spaces": len(spaces),
        "separated": separated,
        "below": below,
    }


def shoe_placement(wheres: Mapping[str, Sequence[tuple[int, str]]]) -> dict:
    """Whether the shoe region's place (:func:`compass`) changes with the seed.

    ``wheres``: for each preset, its ``(seed, where)`` pairs.  Per preset: the ``seeds``, the
    ``wheres``, ``several_seeds`` (more than one seed measured) and ``moved`` (more than one
    place among them).  Overall: ``several_seeds`` (some preset has several seeds: the seed's
    effect is measured), ``moves_with_seed`` (some such preset's region moved) and
    ``same_across_presets`` (every preset's first seed puts it at the same place).
    """
    presets = []
    for name, pairs in wheres.items():
        if not pairs:
            raise ValueError(f"preset {name!r} has no (seed, where) pairs")
        seeds = [int(seed) for seed, _ in pairs]
        places = [str(where) for _, where in pairs]
        presets.append(
            {
                "preset": name,
                "seeds": seeds,
                "wheres": places,
                "several_seeds": len(seeds) > 1,
                "moved": len(set(places)) > 1,
            }
        )
    return {
        "presets": presets,
        "several_seeds": any(p["several_seeds"] for p in presets),
        "moves_with_seed": any(p["moved"] for p in presets),
        "same_across_presets": len({p["wheres"][0] for p in presets}) <= 1,
    }


def class_centroids(loc: torch.Tensor, labels: torch.Tensor, n_classes: int = 10) -> torch.Tensor:
    """``m_c``, the mean encoding of each class ``c = 0..n_classes-1``, shape ``(C, D)``."""
    loc = _points(loc)
    labels = _labels(labels, loc.shape[0])
    n_classes = check_positive_int(n_classes, "n_classes")
    missing = [c for c in range(n_classes) if not bool((labels == c).any())]
    if missing:
        raise ValueError(f"classes {missing} have no encodings, so no centroid")
    return torch.stack([loc[labels == c].mean(0) for c in range(n_classes)])


def class_mean_images(images: torch.Tensor, labels: torch.Tensor, n_classes: int = 10):
    """``x̄_c``, the mean image of each class, shape ``(C, P)`` for images ``(N, P)``."""
    images = check_image_tensor(images, "images")
    if images.ndim != 2:
        raise ValueError(f"images must be flattened to (N, P), got {tuple(images.shape)}")
    return class_centroids(images, labels, n_classes)


def segment(a: torch.Tensor, b: torch.Tensor, n: int) -> torch.Tensor:
    """``n ≥ 2`` evenly spaced points ``(1 - t) a + t b`` from ``a`` to ``b``, shape ``(n, D)``."""
    n = check_int(n, "n", minimum=2)
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"a and b must be vectors of one length, got {a.shape} and {b.shape}")
    t = torch.linspace(0, 1, n).unsqueeze(1)
    return (1 - t) * a + t * b


def nearest_class_means(images: torch.Tensor, means: torch.Tensor) -> dict:
    """For each image, its ``nearest`` and ``second`` nearest class mean (L2) and the ``ratio``
    ``d_(1) / d_(2)`` of the two distances (1: equally near to both)."""
    if images.ndim != 2 or means.ndim != 2 or images.shape[1] != means.shape[1]:
        raise ValueError(
            f"images (N, P) and means (C, P) must share P, got {tuple(images.shape)} and "
            f"{tuple(means.shape)}"
        )
    if means.shape[0] < 2:
        raise ValueError("need at least two class means to name a second nearest")
    dist, order = torch.cdist(images, means).sort(1)
    ratio = dist[:, 0] / dist[:, 1]
    return {
        "nearest": order[:, 0].tolist(),
        "second": order[:, 1].tolist(),
        "ratio": ratio.tolist(),
    }


def find_blends(
    nearest: Sequence[int],
    second: Sequence[int],
    ratio: Sequence[float],
    pair: tuple[int, int],
    min_ratio: float = BLEND_RATIO,
) -> list[int]:
    """Indices of the images whose two nearest class means are the ``pair`` (either order) with
    distance ratio ``≥ min_ratio``."""
    min_ratio = check_probability(min_ratio, "min_ratio")
    if not len(nearest) == len(second) == len(ratio):
        raise ValueError("nearest, second and ratio must have one length")
    return [
        i
        for i, (a, b, r) in enumerate(zip(nearest, second, ratio, strict=True))
        if {a, b} == set(pair) and r >= min_ratio
    ]


def summarize_path(
    nearest: Sequence[int],
    second: Sequence[int],
    ratio: Sequence[float],
    start: int,
    stop: int,
    classes: Sequence[str],
    min_ratio: float = BLEND_RATIO,
) -> dict:
    """What a decoded path from class ``start`` to class ``stop`` passes through.

    Returns the class names of each image's nearest and second nearest mean, the ``route``
    (nearest classes with repeats collapsed), the ``blends`` (:func:`find_blends`) and their
    number, ``closest_ratio`` (the largest ratio among images whose two nearest means are
    ``start`` and ``stop``; None when there is none), the ``detours`` (other nearest classes and
    how many images each), and ``endpoints_match`` (the first image is nearest to ``start`` and
    the last to ``stop``).
    """
    start = check_int(start, "start", minimum=0, maximum=len(classes) - 1)
    stop = check_int(stop, "stop", minimum=0, maximum=len(classes) - 1)
    nearest, second = [int(c) for c in nearest], [int(c) for c in second]
    ratio = [float(r) for r in ratio]
    if not nearest:
        raise ValueError("the path has no images")
    blends = find_blends(nearest, second, ratio, (start, stop), min_ratio)
    pair = [r for a, b, r in zip(nearest, second, ratio, strict=True) if {a, b} == {start, stop}]
    names = [classes[c] for c in nearest]
    route = [names[0]] + [c for prev, c in zip(names, names[1:], strict=False) if c != prev]
    others = sorted({c for c in nearest if c not in (start, stop)})
    return {
        "n": len(nearest),
        "start_class": classes[start],
        "stop_class": classes[stop],
        "nearest_class": names,
        "second_class": [classes[c] for c in second],
        "ratio": ratio,
        "route": route,
        "blends": blends,
        "n_blends": len(blends),
        "min_ratio": min_ratio,
        "closest_ratio": max(pair) if pair else None,
        "detours": [{"class": classes[c], "count": nearest.count(c)} for c in others],
        "endpoints_match": (nearest[0], nearest[-1]) == (start, stop),
        "first_class": names[0],
        "last_class": names[-1],
    }


@torch.no_grad()
def class_path(
    vae,
    loc: torch.Tensor,
    labels: torch.Tensor,
    images: torch.Tensor,
    classes: Sequence[str],
    start: int,
    stop: int,
    n: int = 11,
    min_ratio: float = BLEND_RATIO,
) -> tuple[torch.Tensor, dict]:
    """Decode ``n`` points on the segment from the centroid of class ``start`` to that of
    ``stop`` and compare each decoded image with the class-mean ``images``.

    Returns the decoded images ``(n, P)`` (CPU) and :func:`summarize_path` of them.
    """
    centroids = class_centroids(loc, labels, len(classes))
    decoded = vae.decode(segment(centroids[start], centroids[stop], n)).cpu()
    near = nearest_class_means(decoded, class_mean_images(images, labels, len(classes)))
    return decoded, summarize_path(
        **near, start=start, stop=stop, classes=classes, min_ratio=min_ratio
    )


def blend_verdict(paths: Sequence[Mapping]) -> dict:
    """Does every decoded path have the post's "half one, half the other" images?

    ``paths``: dicts with ``preset`` and ``n_blends``.  ``value``: how many paths have a blend;
    ``expected``: how many paths there are; ``with_blends``: their presets.
    """
    if not paths:
        return {"verdict": "cannot be tested", "value": 0, "expected": 0, "with_blends": []}
    with_blends = [p["preset"] for p in paths if check_int(p["n_blends"], "n_blends", minimum=0)]
    everywhere = len(with_blends) == len(paths)
    return {
        "verdict": "agrees" if everywhere else "disagrees",
        "partly": bool(with_blends) and not everywhere,
        "value": len(with_blends),
        "expected": len(paths),
        "with_blends": with_blends,
    }


def measure(vae, images: torch.Tensor, labels: torch.Tensor, *, seed: int = 0) -> dict:
    """Every number of one trained VAE on the test ``images``:
    :func:`pyro_latent.vae.metrics.summarize`, plus ``shoes`` (:func:`shoe_region` of the
    posterior means) when the latent space is 2-D."""
    out = metrics.summarize(vae, images, seed=seed)
    if len(out["activity"]) == 2:
        out["shoes"] = shoe_region(metrics.encode_dataset(vae, images).loc, labels)
    return out


def two_d_summary(runs: Mapping[str, Sequence[Mapping]], paths: Sequence[Mapping] = ()) -> dict:
    """The 2-D spaces' verdicts: shoe region, its place, blends on class-to-class paths.

    ``runs``: for each 2-D preset, the :func:`measure` dicts of its seeds (each with ``seed`` and
    ``shoes``); ``paths``: :func:`summarize_path` dicts, each with ``preset`` (and ``seed``).
    Returns ``presets`` and ``seeds`` (those of the first preset), ``shoe_region``
    (:func:`shoe_region_verdict` over every space), ``placement`` (:func:`shoe_placement`),
    ``paths`` as given and ``blends`` (:func:`blend_verdict` of them).
    """
    if not runs or any(not rs for rs in runs.values()):
        raise ValueError("two_d_summary needs at least one run for every 2-D preset")
    spaces = [
        {"preset": name, "seed": r["seed"], "accuracy": r["shoes"]["linear_separability"]}
        for name, rs in runs.items()
        for r in rs
    ]
    wheres = {name: [(r["seed"], r["shoes"]["where"]) for r in rs] for name, rs in runs.items()}
    paths = list(paths)
    return {
        "presets": list(runs),
        "seeds": [int(r["seed"]) for r in next(iter(runs.values()))],
        "shoe_region": shoe_region_verdict(spaces),
        "placement": shoe_placement(wheres),
        "paths": paths,
        "blends": blend_verdict(paths),
    }
