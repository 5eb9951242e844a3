"""A rendered "shapes world": 28×28 grey images of one shape whose generating factors are known.

FashionMNIST has no ground truth for a concept direction: nobody knows by how much a boot is
"taller".  Here every image is drawn from six independent factors, so a concept has an exact
meaning: the post's "+2 pixels on top" is ``height + 2, y − 1`` (two more rows above, none
below), and the true direction of a factor in a latent space is the difference of the
encodings of the counterfactual pair ``render(f + δ e_k)``, ``render(f)``.  Disentanglement
metrics need the same known factors.  The images are 28×28 grey in ``[0, 1]``, like FashionMNIST
(:class:`~pyro_latent.vae.data.ImageData`), so every VAE preset applies unchanged.

**The factors**, in the order of :data:`FACTORS` (the columns of a factor tensor ``(N, 6)``):

* ``shape``: 0, 1 or 2 for :data:`SHAPES` = square, ellipse, triangle.  The "square" is the
  axis-aligned rectangle of the given width and height (dSprites' square with independent
  scales); the ellipse has semi-axes ``width/2`` and ``height/2``; the triangle is isosceles,
  apex up, its base the bottom edge of the ``width × height`` bounding box;
* ``width``, ``height``: of the bounding box, in pixels; levels 4, 6, …, 16;
* ``x``, ``y``: its centre, in pixels; levels 8, 10, …, 20, so that the largest shape at an
  extreme centre touches the frame without leaving it;
* ``brightness``: the shape's intensity on the black background, in ``(0, 1]``; levels
  0.4, 0.5, …, 1.0.

**Coordinates.**  ``x`` runs to the right and ``y`` down the rows; the image covers
``[0, 28]²`` and pixel ``(r, c)`` (flat index ``28 r + c``, row-major like FashionMNIST) covers
``[c, c + 1] × [r, r + 1]``, so its centre is ``(c + ½, r + ½)``.  With even sizes and integer
centres the bounding box lies on pixel boundaries: a rectangle of height ``h`` fills exactly
``h`` rows, and its intensity-weighted centroid, over pixel centres, is ``(x, y)``.

**Rendering** (:func:`render`) is a function of real-valued factors, not a look-up of the
levels: a caller may move one factor by any small ``δ`` and get a slightly different image (a
move that takes the bounding box out of the frame is refused, so counterfactuals that grow a
shape start from the interior levels).
Each pixel is the mean over ``supersample²`` sample points, the centres of a regular grid of
sub-cells of side ``1/supersample``, of each sub-cell's coverage by the shape, times the
brightness.  A sub-cell's coverage is not the 0/1 of a point test but its overlap with the
shape, so that the image is continuous (Lipschitz) in the factors rather than a step function:

* axis-aligned edges (the rectangle's four, the triangle's base) are intersected exactly, so a
  rectangle's pixel values are its exact area coverage whatever ``supersample`` is, and its mass
  is ``width · height · brightness``;
* slanted and curved edges (the triangle's sides, the ellipse) use the sub-cell's signed
  distance ``d`` to the edge (exact for the sides, to first order for the ellipse), with
  coverage ``clamp(½ − d · supersample, 0, 1)``; a triangle's sub-cell multiplies its three
  edges' coverages.  The error is confined to the sub-cells the edge crosses (the masses are
  ``π/4 · w h b`` and ``½ w h b`` to a few tenths of a percent at the levels).

Nothing is drawn off the bounding box (sub-cells that do not overlap it are 0), so each image
is rendered in the smallest square window of whole pixels around its box, and images of one
shape and window size together: vectorised in torch, in chunks of bounded memory (1 MB
buffers).  The 60 000 training images take one to two seconds on one CPU core.

**The data sets** (:func:`load_shapes`) are :data:`N_TRAIN` training and :data:`N_TEST` test
images whose factors are i.i.d., each uniform over its levels (:func:`sample_factors`; uniform
over the 3·7⁵ combinations, hence independent).  The streams are disjoint: the training split
of ``seed`` draws ``sample_factors(N_TRAIN, seed=2·seed)``, its test split
``sample_factors(N_TEST, seed=2·seed + 1)``, so no test split repeats a training stream of any
seed.  The labels are the shape index and the classes :data:`SHAPES`
(:class:`ShapesData` adds the factors to :class:`~pyro_latent.vae.data.ImageData`).

**The cache.**  Rendered splits are derived data, cached under ``root/shapes/`` (``root``
defaults to :data:`~pyro_latent.vae.data.DEFAULT_ROOT`), one file per split named by generator
version, seed and split, ``v1-seed0-train.pt`` (:func:`shapes_cache_path`): the images as uint8
``round(255 x)`` like FashionMNIST, the factors as float32, with the generator version, seed and
split recorded inside; written atomically, read with ``torch.load(weights_only=True)``.  A file
that cannot be read or does not match (version, split, seed, shapes, or factors other than the
stream's) is regenerated with a warning naming it.  :data:`GENERATOR_VERSION` is bumped whenever
rendering or sampling changes, which retires the old files by name.  The images returned are
always the uint8-quantised ones, whether read or just rendered.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from pyro_latent.core.checks import check_nonnegative_int, check_positive_int
from pyro_latent.core.files import write_atomically
from pyro_latent.vae.data import DEFAULT_ROOT, IMAGE_SHAPE, N_PIXELS, ImageData, check_limit

__all__ = [
    "FACTORS",
    "FACTOR_LEVELS",
    "GENERATOR_VERSION",
    "N_TEST",
    "N_TRAIN",
    "SHAPES",
    "ShapesCacheError",
    "ShapesData",
    "factor_index",
    "load_shapes",
    "render",
    "sample_factors",
    "shapes_cache_path",
]

FACTORS = ("shape", "width", "height", "x", "y", "brightness")
"""The generating factors, in the order of the columns of a factor tensor."""

SHAPES = ("square", "ellipse", "triangle")
"""The shapes, by index (the ``shape`` factor and the labels)."""

FACTOR_LEVELS: dict[str, tuple[float, ...]] = {
    "shape": (0.0, 1.0, 2.0),
    "width": tuple(float(v) for v in range(4, 17, 2)),
    "height": tuple(float(v) for v in range(4, 17, 2)),
    "x": tuple(float(v) for v in range(8, 21, 2)),
    "y": tuple(float(v) for v in range(8, 21, 2)),
    "brightness": tuple(round(0.4 + 0.1 * k, 1) for k in range(7)),
}
"""The levels :func:`sample_factors` draws from (:func:`render` takes any value in range)."""

GENERATOR_VERSION = 1
"""Version of the rendering and sampling; it names the cache files, so bump it on any change."""

N_TRAIN = 60_000
N_TEST = 10_000
"""Sizes of the training and test splits, as FashionMNIST's."""

SHAPES_SUBDIR = "shapes"
"""Folder of the cache under the data root."""

FRAME_TOLERANCE = 1e-5
"""How far (pixels) a bounding box may poke out of the frame: float rounding, not a margin."""

_CHUNK_ELEMENTS = 1 << 18  # sub-cells at once: 1 MB buffers stay in cache (faster than big ones)
_SIZE = float(IMAGE_SHAPE[1])  # the frame [0, 28]², square
_SHAPE, _WIDTH, _HEIGHT, _X, _Y, _BRIGHTNESS = range(len(FACTORS))


class ShapesCacheError(OSError):
    """The shapes cache cannot be written: the message names the folder."""


def factor_index(name: str) -> int:
    """The column of factor ``name`` in a factor tensor (see :data:`FACTORS`)."""
    if name not in FACTORS:
        raise ValueError(f"unknown factor {name!r}; the factors are {', '.join(FACTORS)}")
    return FACTORS.index(name)


# ------------------------------------------------------------------------------------------
# Rendering


def _check_factors(factors) -> None:
    if not isinstance(factors, torch.Tensor):
        raise ValueError(
            f"factors must be a torch.Tensor of shape (N, {len(FACTORS)}); "
            f"got {type(factors).__name__}"
        )
    if factors.ndim != 2 or factors.shape[1] != len(FACTORS):
        raise ValueError(
            f"factors must have shape (N, {len(FACTORS)}), columns {FACTORS}; "
            f"got {tuple(factors.shape)}"
        )
    if not factors.is_floating_point():
        raise ValueError(f"factors must be a floating-point tensor; got dtype {factors.dtype}")
    f = factors.detach()

    def fail(bad: torch.Tensor, column: int, rule: str) -> None:
        i = int(bad.nonzero()[0, 0])
        raise ValueError(
            f"factor {FACTORS[column]!r} {rule}; image {i} has {float(f[i, column])!r} "
            f"({int(bad.sum())} image(s) in all)"
        )

    finite = torch.isfinite(f)
    if not finite.all():
        rows, cols = (~finite).nonzero()[0].tolist()
        raise ValueError(
            f"factors must be finite; image {rows} has {float(f[rows, cols])!r} in factor "
            f"{FACTORS[cols]!r}"
        )
    shape = f[:, _SHAPE]
    bad = (shape != 0) & (shape != 1) & (shape != 2)
    if bad.any():
        fail(bad, _SHAPE, "must be 0, 1 or 2 (" + ", ".join(SHAPES) + ")")
    for column in (_WIDTH, _HEIGHT):
        bad = f[:, column] <= 0
        if bad.any():
            fail(bad, column, "must be > 0 (pixels)")
    b = f[:, _BRIGHTNESS]
    bad = (b <= 0) | (b > 1)
    if bad.any():
        fail(bad, _BRIGHTNESS, "must be in (0, 1]")
    for size, centre in ((_WIDTH, _X), (_HEIGHT, _Y)):
        lo = f[:, centre] - f[:, size] / 2
        hi = f[:, centre] + f[:, size] / 2
        bad = (lo < -FRAME_TOLERANCE) | (hi > _SIZE + FRAME_TOLERANCE)
        if bad.any():
            i = int(bad.nonzero()[0, 0])
            c, s = FACTORS[centre], FACTORS[size]
            raise ValueError(
                f"image {i} leaves the {IMAGE_SHAPE[0]}×{IMAGE_SHAPE[1]} frame: {c} = "
                f"{float(f[i, centre])!r} with {s} = {float(f[i, size])!r} spans "
                f"[{float(lo[i])!r}, {float(hi[i])!r}], outside [0, {_SIZE:g}]; need "
                f"{c} − {s}/2 ≥ 0 and {c} + {s}/2 ≤ {_SIZE:g} ({int(bad.sum())} image(s) in all)"
            )


@dataclass(frozen=True)
class _Window:
    """A square window of ``size`` pixels per image, its top-left pixel ``(row, col)``
    (``(n,)`` each), and along each axis the lower edges, upper edges and centres of its
    ``size · s`` sub-cells (``(n, size · s)``; pixel ``c``'s are ``c + i/s``, ``c + (i+1)/s``,
    ``c + (i+½)/s``)."""

    size: int
    supersample: int
    row: torch.Tensor
    col: torch.Tensor
    lo_y: torch.Tensor
    hi_y: torch.Tensor
    mid_y: torch.Tensor
    lo_x: torch.Tensor
    hi_x: torch.Tensor
    mid_x: torch.Tensor

    @classmethod
    def at(cls, row: torch.Tensor, col: torch.Tensor, size: int, supersample: int) -> _Window:
        k = torch.arange(size * supersample, dtype=torch.float64, device=row.device)
        steps = [(t / supersample).to(torch.float32) for t in (k, k + 1, k + 0.5)]
        y, x = row.to(torch.float32)[:, None], col.to(torch.float32)[:, None]
        return cls(size, supersample, row, col, *(y + t for t in steps), *(x + t for t in steps))


def _overlap(lo: torch.Tensor, hi: torch.Tensor, start: torch.Tensor, end: torch.Tensor):
    """Fraction ``(n, cells)`` of each sub-cell ``[lo, hi]`` inside ``[start, end]`` (``(n, 1)``):
    exact, and exactly 0 or 1 for a sub-cell that only touches or lies inside the interval."""
    inside = torch.minimum(hi, end) - torch.maximum(lo, start)
    return (inside / (hi - lo)).clamp(0.0, 1.0)


def _box(p: torch.Tensor, win: _Window) -> tuple[torch.Tensor, torch.Tensor]:
    """Each sub-row's and sub-column's overlap with the bounding box, ``(n, size · s)`` each."""
    half_w, half_h = p[:, _WIDTH, None] / 2, p[:, _HEIGHT, None] / 2
    rows = _overlap(win.lo_y, win.hi_y, p[:, _Y, None] - half_h, p[:, _Y, None] + half_h)
    cols = _overlap(win.lo_x, win.hi_x, p[:, _X, None] - half_w, p[:, _X, None] + half_w)
    return rows, cols


def _touching_box(p: torch.Tensor, win: _Window) -> tuple[torch.Tensor, torch.Tensor]:
    """1 for the sub-rows and sub-columns that overlap the bounding box, else 0 (``(n, size · s)``
    each): what clips a curved or slanted edge's ramp to the box without cutting it a second
    time where the box cuts a sub-cell (that would count the edge twice)."""
    half_w, half_h = p[:, _WIDTH, None] / 2, p[:, _HEIGHT, None] / 2
    x, y = p[:, _X, None], p[:, _Y, None]
    rows = (win.hi_y > y - half_h) & (win.lo_y < y + half_h)
    cols = (win.hi_x > x - half_w) & (win.lo_x < x + half_w)
    return rows.to(torch.float32), cols.to(torch.float32)


def _pool(cover: torch.Tensor, win: _Window) -> torch.Tensor:
    """Sub-cell coverage ``(n, size · s, size · s)`` → pixel coverage ``(n, size, size)``."""
    k, s = win.size, win.supersample
    return cover.reshape(-1, k, s, k, s).mean(dim=(2, 4))


def _rectangle(p: torch.Tensor, win: _Window) -> torch.Tensor:
    rows, cols = _box(p, win)
    # Separable: the mean over s × s sub-cells of a product is the product of the means.
    rows = rows.reshape(-1, win.size, win.supersample).mean(-1)
    cols = cols.reshape(-1, win.size, win.supersample).mean(-1)
    return rows[:, :, None] * cols[:, None, :]


def _ellipse(p: torch.Tensor, win: _Window) -> torch.Tensor:
    a, b = p[:, _WIDTH, None] / 2, p[:, _HEIGHT, None] / 2
    u = (win.mid_x - p[:, _X, None]) / a  # (n, sub-columns)
    v = (win.mid_y - p[:, _Y, None]) / b  # (n, sub-rows)
    # g = sqrt(u² + v²) is 1 on the ellipse; its signed distance is ≈ (g − 1) / |∇g|.
    g2 = (v * v)[:, :, None] + (u * u)[:, None, :]
    grad2 = (v * v / (b * b))[:, :, None] + (u * u / (a * a))[:, None, :]  # g² |∇g|²
    shortest = torch.minimum(a, b)[:, :, None] ** 2  # 1 / |∇g|² at the centre
    ratio = torch.where(grad2 > 0, g2 / grad2, shortest)
    distance = (g2.sqrt() - 1) * ratio.sqrt()
    rows, cols = _touching_box(p, win)  # nothing off the bounding box, where the ellipse lies
    cover = (0.5 - distance * win.supersample).clamp(0.0, 1.0) * rows[:, :, None]
    return _pool(cover * cols[:, None, :], win)


def _triangle(p: torch.Tensor, win: _Window) -> torch.Tensor:
    w, h = p[:, _WIDTH, None], p[:, _HEIGHT, None]
    top = p[:, _Y, None] - h / 2
    # The sides run from the apex (x, top) to (x ± w/2, top + h); signed distance to the right
    # one: ((X − x) h − (Y − top) w/2) / L, the left one mirrored, L = sqrt(h² + w²/4).
    length = torch.sqrt(h * h + w * w / 4)
    across = (win.mid_x - p[:, _X, None]) * (h / length * win.supersample)  # (n, sub-columns)
    down = (win.mid_y - top) * (w / (2 * length) * win.supersample) + 0.5  # (n, sub-rows)
    right = (down[:, :, None] - across[:, None, :]).clamp(0.0, 1.0)
    left = (down[:, :, None] + across[:, None, :]).clamp(0.0, 1.0)
    # The base is cut exactly; nothing off the bounding box (above the apex, say).
    base = _overlap(win.lo_y, win.hi_y, torch.full_like(top, -1.0), top + h)
    rows, cols = _touching_box(p, win)
    cover = right * left * (base * rows)[:, :, None]
    return _pool(cover * cols[:, None, :], win)


_RENDERERS = (_rectangle, _ellipse, _triangle)


def render(factors: torch.Tensor, *, supersample: int = 4) -> torch.Tensor:
    """Images ``(N, 784)``, float32 in ``[0, 1]``, of the factors ``(N, 6)`` (columns
    :data:`FACTORS`, units of the module docstring; any real values in range, not only the
    levels).

    Each image is 0 off its bounding box, and is drawn in the smallest square window of whole
    pixels that holds the box (images of one shape and window size together, in chunks of
    bounded memory).

    Args:
        factors: floating-point tensor; ``shape`` 0, 1 or 2, ``width`` and ``height`` > 0,
            ``brightness`` in ``(0, 1]``, and the bounding box inside the frame
            (``x ± width/2`` and ``y ± height/2`` in ``[0, 28]``).  The images are on its device.
        supersample: sub-cells per pixel along each axis (``supersample²`` per pixel, averaged).

    Raises:
        ValueError: naming the problem (and the first offending image and factor).
    """
    _check_factors(factors)
    supersample = check_positive_int(supersample, "supersample")
    params = factors.to(torch.float32)
    n_images, device = len(params), params.device
    out = torch.zeros(n_images, *IMAGE_SHAPE, dtype=torch.float32, device=device)
    fixed = params.detach()
    half = fixed[:, [_HEIGHT, _WIDTH]] / 2
    centre = fixed[:, [_Y, _X]]
    first = (centre - half).floor().clamp(0, _SIZE - 1).long()  # (row, col) of the box's pixels
    last = (centre + half).ceil().clamp(1, _SIZE).long()
    sizes = (last - first).amax(dim=1).clamp_min(1)
    first = torch.minimum(first, int(_SIZE) - sizes[:, None])  # the window stays in the frame
    pixels = torch.arange(int(_SIZE), device=device)
    for k, draw in enumerate(_RENDERERS):
        of_shape = fixed[:, _SHAPE] == k
        for size in sizes[of_shape].unique().tolist():
            index = (of_shape & (sizes == size)).nonzero().flatten()
            chunk = max(1, _CHUNK_ELEMENTS // (size * supersample) ** 2)
            for part in index.split(chunk):
                win = _Window.at(first[part, 0], first[part, 1], size, supersample)
                p = params[part]
                rows = (win.row[:, None] + pixels[:size])[:, :, None]
                cols = (win.col[:, None] + pixels[:size])[:, None, :]
                out[part[:, None, None], rows, cols] = draw(p, win) * p[:, _BRIGHTNESS, None, None]
    return out.reshape(n_images, N_PIXELS)


# ------------------------------------------------------------------------------------------
# Sampling


def sample_factors(n: int, *, seed: int) -> torch.Tensor:
    """``n`` factor rows ``(n, 6)`` (float32), i.i.d., each factor uniform over its levels and
    the factors independent: one draw per image, uniform over all level combinations, from a
    ``torch.Generator`` seeded with ``seed`` (the same on every run and machine)."""
    n = check_positive_int(n, "n (a number of factor rows)")
    seed = check_nonnegative_int(seed, "seed")
    generator = torch.Generator().manual_seed(seed)
    sizes = [len(FACTOR_LEVELS[name]) for name in FACTORS]
    combo = torch.randint(0, math.prod(sizes), (n,), generator=generator)
    columns = []
    for name, size in zip(reversed(FACTORS), reversed(sizes), strict=True):  # mixed radix
        levels = torch.tensor(FACTOR_LEVELS[name], dtype=torch.float32)
        columns.append(levels[combo % size])
        combo = combo // size
    return torch.stack(columns[::-1], dim=1)


def _stream_seed(seed: int, *, train: bool) -> int:
    """The :func:`sample_factors` seed of a split: ``2·seed`` (training), ``2·seed + 1`` (test)."""
    return 2 * seed + (0 if train else 1)


# ------------------------------------------------------------------------------------------
# Data


@dataclass(frozen=True)
class ShapesData(ImageData):
    """:class:`~pyro_latent.vae.data.ImageData` of the shapes world with the factors of each
    image, ``(N, len(factor_names))`` float; ``subset`` and ``select`` keep them aligned."""

    factors: torch.Tensor
    factor_names: tuple[str, ...] = FACTORS

    def __post_init__(self):
        super().__post_init__()
        names = tuple(self.factor_names)
        if not all(isinstance(name, str) for name in names) or len(set(names)) != len(names):
            raise ValueError(f"factor_names must be distinct strings; got {self.factor_names!r}")
        object.__setattr__(self, "factor_names", names)
        expected = (len(self), len(names))
        if not isinstance(self.factors, torch.Tensor) or tuple(self.factors.shape) != expected:
            got = tuple(self.factors.shape) if isinstance(self.factors, torch.Tensor) else None
            raise ValueError(
                f"factors must have shape {expected} (images × factor_names); got {got}"
            )
        if not self.factors.is_floating_point():
            raise ValueError(f"factors must be floating point; got dtype {self.factors.dtype}")
        if "shape" in names:
            column = self.factors[:, names.index("shape")]
            if not torch.equal(column.to(self.labels.dtype), self.labels):
                raise ValueError("labels must equal the 'shape' factor of each image")

    def factor(self, name: str) -> torch.Tensor:
        """The column ``(N,)`` of factor ``name``."""
        if name not in self.factor_names:
            raise ValueError(
                f"unknown factor {name!r}; these data have {', '.join(self.factor_names)}"
            )
        return self.factors[:, self.factor_names.index(name)]

    def _take(self, index) -> ShapesData:
        return ShapesData(
            self.images[index],
            self.labels[index],
            self.classes,
            self.factors[index],
            self.factor_names,
        )


def shapes_cache_path(
    root: str | os.PathLike | None = None, *, train: bool = True, seed: int = 0
) -> Path:
    """``root/shapes/v{GENERATOR_VERSION}-seed{seed}-{train|test}.pt``."""
    seed = check_nonnegative_int(seed, "seed")
    root = Path(DEFAULT_ROOT if root is None else root)
    split = "train" if train else "test"
    return root / SHAPES_SUBDIR / f"v{GENERATOR_VERSION}-seed{seed}-{split}.pt"


def _check_writable_folder(folder: Path) -> None:
    """``folder`` (or its nearest existing parent) must be a writable folder."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ShapesCacheError(
            f"cannot cache the shapes data under {folder}: {existing} is a file, not a folder; "
            "give a writable data root"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ShapesCacheError(
            f"cannot cache the shapes data under {folder}: {existing} is not writable; "
            "give a writable data root"
        )


def _read_cache(path: Path, split: str, seed: int, factors: torch.Tensor) -> torch.Tensor | None:
    """The cached uint8 images of the split, or None (missing; or unusable, with a warning)."""
    if not path.exists():
        return None
    try:
        payload = torch.load(path, weights_only=True)
    except Exception as err:  # truncated, not a torch file, not a file at all, ...
        reason = (str(err).strip().splitlines() or [""])[0][:160]
        warnings.warn(
            f"shapes cache {path} is unreadable ({type(err).__name__}: {reason}); regenerating it",
            stacklevel=3,
        )
        return None
    expected = {
        "generator_version": GENERATOR_VERSION,
        "split": split,
        "seed": seed,
        "factor_names": list(FACTORS),
    }
    problem = None
    if not isinstance(payload, dict):
        problem = f"it holds a {type(payload).__name__}, not a dict"
    else:
        for key, value in expected.items():
            if payload.get(key) != value:
                problem = f"{key} is {payload.get(key)!r}, not {value!r}"
                break
    if problem is None:
        images, cached = payload.get("images"), payload.get("factors")
        if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8:
            problem = "its images are not a uint8 tensor"
        elif tuple(images.shape) != (len(factors), N_PIXELS):
            problem = f"its images have shape {tuple(images.shape)}, not {(len(factors), N_PIXELS)}"
        elif not isinstance(cached, torch.Tensor) or not torch.equal(cached, factors):
            problem = f"its factors are not those of the {split} stream of seed {seed}"
    if problem is not None:
        warnings.warn(
            f"shapes cache {path} does not match ({problem}); regenerating it", stacklevel=3
        )
        return None
    return images


def load_shapes(
    root: str | os.PathLike | None = None,
    *,
    train: bool = True,
    seed: int = 0,
    limit: int | None = None,
) -> ShapesData:
    """The shapes world's training (``train=True``, :data:`N_TRAIN` images) or test split
    (:data:`N_TEST`), rendered once and cached (see the module docstring).

    Args:
        root: writable data root (default ``data/``); the cache goes in ``root/shapes/``.
        train: which split; the test split draws another stream than every training split.
        seed: which world: training factors ``sample_factors(N_TRAIN, seed=2·seed)``, test
            factors ``sample_factors(N_TEST, seed=2·seed + 1)``.
        limit: keep only the first ``limit`` images (tests, quick profiles).

    Raises:
        ShapesCacheError: the split is not cached and the cache folder cannot be written.
    """
    check_limit(limit)
    seed = check_nonnegative_int(seed, "seed")
    if not isinstance(train, bool):
        raise ValueError(f"train must be True or False; got {train!r}")
    split = "train" if train else "test"
    path = shapes_cache_path(root, train=train, seed=seed)
    factors = sample_factors(N_TRAIN if train else N_TEST, seed=_stream_seed(seed, train=train))
    images = _read_cache(path, split, seed, factors)
    if images is None:
        _check_writable_folder(path.parent)
        images = (render(factors) * 255).round().to(torch.uint8)
        payload = {
            "generator_version": GENERATOR_VERSION,
            "split": split,
            "seed": seed,
            "factor_names": list(FACTORS),
            "images": images,
            "factors": factors,
        }
        try:
            write_atomically(path, lambda f: torch.save(payload, f))
        except OSError as err:
            raise ShapesCacheError(
                f"cannot write the shapes cache {path} ({err}); give a writable data root"
            ) from None
    data = ShapesData(
        images.to(torch.float32) / 255.0,
        factors[:, _SHAPE].to(torch.int64),
        SHAPES,
        factors,
    )
    return data.subset(limit)
