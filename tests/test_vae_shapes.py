"""The shapes world: each factor changes exactly what it says, measured on rendered images, and
the seeded splits, their cache and the data class hold together."""

from __future__ import annotations

import itertools
import math
import os
import re
import time

import numpy as np
import pytest
import torch
from scipy import stats

from pyro_latent.vae import ImageData, ShapesData, load_shapes, shapes
from pyro_latent.vae.shapes import (
    FACTOR_LEVELS,
    FACTORS,
    GENERATOR_VERSION,
    SHAPES,
    ShapesCacheError,
    factor_index,
    render,
    sample_factors,
    shapes_cache_path,
)

SQUARE, ELLIPSE, TRIANGLE = 0.0, 1.0, 2.0
LEVELS = FACTOR_LEVELS
CENTRES = torch.arange(28, dtype=torch.float64) + 0.5  # pixel centres, rows or columns


def factors(*rows) -> torch.Tensor:
    """Factor rows ``(shape, width, height, x, y, brightness)`` as a float64 tensor."""
    return torch.tensor(rows, dtype=torch.float64)


def draw(*rows, supersample: int = 4) -> torch.Tensor:
    """Images ``(N, 28, 28)`` (float64 for the measurements) of the factor rows."""
    return render(factors(*rows), supersample=supersample).reshape(-1, 28, 28).double()


def rows_with_mass(image: torch.Tensor, threshold: float = 0.0) -> list[int]:
    return (image > threshold).any(dim=1).nonzero().flatten().tolist()


def columns_with_mass(image: torch.Tensor, threshold: float = 0.0) -> list[int]:
    return (image > threshold).any(dim=0).nonzero().flatten().tolist()


def centroid(image: torch.Tensor) -> tuple[float, float]:
    """Intensity-weighted centroid ``(x, y)`` over pixel centres."""
    mass = image.sum()
    return (
        float((image.sum(dim=0) * CENTRES).sum() / mass),
        float((image.sum(dim=1) * CENTRES).sum() / mass),
    )


def as_float32(value: float) -> float:
    return float(torch.tensor(value, dtype=torch.float32))


# ------------------------------------------------------------------------------------------
# The factors and levels


def test_factors_levels_and_names():
    assert FACTORS == ("shape", "width", "height", "x", "y", "brightness")
    assert SHAPES == ("square", "ellipse", "triangle")
    assert set(LEVELS) == set(FACTORS)
    assert LEVELS["shape"] == (0, 1, 2)
    assert LEVELS["width"] == LEVELS["height"] == (4, 6, 8, 10, 12, 14, 16)
    assert LEVELS["x"] == LEVELS["y"] == (8, 10, 12, 14, 16, 18, 20)
    assert LEVELS["brightness"] == (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
    assert [factor_index(name) for name in FACTORS] == list(range(6))
    with pytest.raises(ValueError, match="unknown factor 'size'.*shape, width, height"):
        factor_index("size")


def test_every_level_combination_fits_and_the_extremes_touch_the_frame():
    grid = factors(*itertools.product(*(LEVELS[name] for name in FACTORS[:5]), [1.0]))
    # The largest rectangles at the extreme centres: the frame's first and last rows/columns.
    extremes = factors(*((SQUARE, 16, 16, x, y, 1.0) for x in (8, 20) for y in (8, 20)))
    images = render(extremes).reshape(-1, 28, 28)
    for image, (x, y) in zip(images, itertools.product((8, 20), (8, 20)), strict=True):
        expected = list(range(0, 16)) if y == 8 else list(range(12, 28))
        assert rows_with_mass(image) == expected
        assert columns_with_mass(image) == (list(range(0, 16)) if x == 8 else list(range(12, 28)))
    assert render(grid[::97]).shape == (len(grid[::97]), 784)  # a spread of the 21 609 combos


# ------------------------------------------------------------------------------------------
# Each factor changes exactly what it says


def test_rectangle_height_is_the_number_of_rows_exactly():
    rows = [(SQUARE, 6, h, 14, y, 0.8) for h in LEVELS["height"] for y in LEVELS["y"]]
    for (_, _, h, _, y, _), image in zip(rows, draw(*rows), strict=True):
        assert rows_with_mass(image) == list(range(int(y - h / 2), int(y + h / 2)))
        assert columns_with_mass(image) == list(range(11, 17))  # width 6 at x = 14, unchanged


def test_rectangle_width_is_the_number_of_columns_exactly():
    rows = [(SQUARE, w, 6, x, 14, 0.8) for w in LEVELS["width"] for x in LEVELS["x"]]
    for (_, w, _, x, _, _), image in zip(rows, draw(*rows), strict=True):
        assert columns_with_mass(image) == list(range(int(x - w / 2), int(x + w / 2)))
        assert rows_with_mass(image) == list(range(11, 17))


@pytest.mark.parametrize("shape", [ELLIPSE, TRIANGLE])
def test_ellipse_and_triangle_extent_is_the_size_up_to_one_row(shape):
    rows = [(shape, w, h, 14, 14, 0.7) for w in LEVELS["width"] for h in LEVELS["height"]]
    for (_, w, h, x, y, _), image in zip(rows, draw(*rows), strict=True):
        ys, xs = rows_with_mass(image, 1e-3), columns_with_mass(image, 1e-3)
        assert h - 1 <= len(ys) <= h and w - 1 <= len(xs) <= w
        # ... and nothing outside the bounding box.
        assert y - h / 2 <= ys[0] and ys[-1] < y + h / 2
        assert x - w / 2 <= xs[0] and xs[-1] < x + w / 2
        box = torch.zeros(28, 28, dtype=torch.bool)
        box[int(y - h / 2) : int(y + h / 2), int(x - w / 2) : int(x + w / 2)] = True
        assert image[~box].abs().max() == 0


def _fully_covered(shape: float, w: float, h: float, x: float, y: float) -> torch.Tensor:
    """Pixels whose four corners lie in the (convex) shape, from its definition."""
    rows, cols = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")

    def inside(px, py):
        if shape == SQUARE:
            return ((px - x).abs() <= w / 2) & ((py - y).abs() <= h / 2)
        if shape == ELLIPSE:
            return ((px - x) / (w / 2)) ** 2 + ((py - y) / (h / 2)) ** 2 <= 1
        depth = (py - (y - h / 2)) / h  # 0 at the apex, 1 on the base
        return (depth <= 1) & ((px - x).abs() <= w / 2 * depth)

    corners = [inside(cols + dc, rows + dr) for dc in (0, 1) for dr in (0, 1)]
    return corners[0] & corners[1] & corners[2] & corners[3]


@pytest.mark.parametrize("shape", [SQUARE, ELLIPSE, TRIANGLE])
def test_brightness_is_the_intensity_of_the_covered_pixels_and_scales_the_mass(shape):
    rows = [(shape, 12, 10, 13, 15, b) for b in LEVELS["brightness"]]
    images = draw(*rows)
    full = _fully_covered(shape, 12, 10, 13, 15)
    assert full.sum() >= 20
    for (*_, b), image in zip(rows, images, strict=True):
        assert image[full].sub(as_float32(b)).abs().max() <= 1e-6
    masses = images.sum(dim=(1, 2))
    per_unit = masses / torch.tensor(LEVELS["brightness"], dtype=torch.float64)
    assert per_unit.std() / per_unit.mean() < 1e-6  # linear, through zero
    support = images > 0
    assert (support == support[0]).all()  # brightness does not move any edge


@pytest.mark.parametrize("shape", [SQUARE, ELLIPSE])
def test_centroid_of_rectangle_and_ellipse_is_the_centre(shape):
    rows = [(shape, w, h, x, y, 0.9) for (w, h) in [(4, 16), (10, 6), (16, 16)]
            for x in LEVELS["x"] for y in LEVELS["y"]]  # fmt: skip
    for (_, _, _, x, y, _), image in zip(rows, draw(*rows), strict=True):
        cx, cy = centroid(image)
        assert cx == pytest.approx(x, abs=1e-5) and cy == pytest.approx(y, abs=1e-5)


@pytest.mark.parametrize("shape", [SQUARE, ELLIPSE])
@pytest.mark.parametrize("delta", [2.0, 1.0, 0.5, 0.3, -0.7])
def test_centroid_moves_by_delta_with_x_and_y(shape, delta):
    base = (shape, 8, 6, 13, 14, 1.0)
    moved_x = (shape, 8, 6, 13 + delta, 14, 1.0)
    moved_y = (shape, 8, 6, 13, 14 + delta, 1.0)
    image, image_x, image_y = draw(base, moved_x, moved_y)
    (cx, cy), (mx, my), (nx, ny) = centroid(image), centroid(image_x), centroid(image_y)
    # Whole and half pixels are exact (the sub-cell grid is symmetric about both); otherwise the
    # pixel-centre centroid of a curved edge's partial pixels is off by a few thousandths.
    tol = 1e-5 if shape == SQUARE or (2 * delta).is_integer() else 1e-2
    assert mx - cx == pytest.approx(delta, abs=tol) and my == pytest.approx(cy, abs=1e-5)
    assert ny - cy == pytest.approx(delta, abs=tol) and nx == pytest.approx(cx, abs=1e-5)
    if shape == SQUARE:  # and the mass does not change
        assert image_x.sum() == pytest.approx(float(image.sum()), rel=1e-6)


def test_triangle_centroid_is_a_third_up_from_the_base():
    rows = [(TRIANGLE, w, h, 14, y, 1.0) for w in (4, 10, 16) for h in LEVELS["height"]
            for y in (10, 14, 18)]  # fmt: skip
    for (_, _, h, x, y, _), image in zip(rows, draw(*rows), strict=True):
        cx, cy = centroid(image)
        assert cx == pytest.approx(x, abs=1e-5)
        # Pixel-centre quantisation of a density linear in the row biases cy by ≈ −1/(6h).
        assert cy == pytest.approx(y + h / 6, abs=0.05)


@pytest.mark.parametrize("shape", [SQUARE, ELLIPSE, TRIANGLE])
def test_changing_one_factor_leaves_the_others_measurements(shape):
    base = (shape, 8, 8, 14, 14, 0.6)
    taller = (shape, 8, 12, 14, 14, 0.6)
    wider = (shape, 12, 8, 14, 14, 0.6)
    right = (shape, 8, 8, 18, 14, 0.6)
    brighter = (shape, 8, 8, 14, 14, 1.0)
    b, t, w, r, br = draw(base, taller, wider, right, brighter)
    level = as_float32(0.6)
    assert (b[_fully_covered(shape, 8, 8, 14, 14)] == level).all()
    # Taller: same horizontal centroid, columns and brightness; more rows.
    assert centroid(t)[0] == pytest.approx(centroid(b)[0], abs=1e-6)
    assert columns_with_mass(t, 1e-3) == columns_with_mass(b, 1e-3)
    assert len(rows_with_mass(t, 1e-3)) == len(rows_with_mass(b, 1e-3)) + 4
    assert (t[_fully_covered(shape, 8, 12, 14, 14)] == level).all() and t.max() == level
    # Wider: same vertical centroid (up to the triangle's quantisation), rows and brightness.
    tol = 1e-6 if shape != TRIANGLE else 1e-2
    assert centroid(w)[1] == pytest.approx(centroid(b)[1], abs=tol)
    assert rows_with_mass(w, 1e-3) == rows_with_mass(b, 1e-3)
    assert len(columns_with_mass(w, 1e-3)) == len(columns_with_mass(b, 1e-3)) + 4
    assert (w[_fully_covered(shape, 12, 8, 14, 14)] == level).all() and w.max() == level
    # Moved right: the same image, shifted by four columns.
    assert torch.equal(r[:, 4:], b[:, :-4]) and r[:, :4].abs().max() == 0
    # Brighter: the same support and centroid, the intensities scaled.
    assert torch.equal(br > 0, b > 0)
    assert torch.allclose(br, b * (1.0 / 0.6), atol=1e-6)
    assert centroid(br) == pytest.approx(centroid(b), abs=1e-6)


def test_two_pixels_on_top_adds_two_rows_above_and_nothing_below():
    for h, y in [(8, 14), (4, 8), (12, 17), (14, 20)]:
        before, after = draw((SQUARE, 10, h, 13, y, 0.8), (SQUARE, 10, h + 2, 13, y - 1, 0.8))
        top = int(y - h / 2)
        diff = after - before
        added = rows_with_mass(diff.abs())
        assert added == [top - 2, top - 1]
        assert torch.equal(diff[top - 2 : top], torch.full((2, 28), 0.0, dtype=torch.float64)
                           .index_fill_(1, torch.arange(8, 18), as_float32(0.8)))  # fmt: skip
        assert rows_with_mass(after) == list(range(top - 2, int(y + h / 2)))


def test_the_three_shapes_differ_in_mass_as_their_areas():
    for w, h in [(4, 4), (6, 12), (16, 10), (16, 16)]:
        rectangle, ellipse, triangle = draw(*((s, w, h, 14, 14, 1.0) for s in (0, 1, 2)))
        masses = [float(im.sum()) for im in (triangle, ellipse, rectangle)]
        assert masses == sorted(masses) and len(set(masses)) == 3
        assert masses[2] == pytest.approx(w * h, rel=1e-6)  # exact area coverage
        assert masses[1] == pytest.approx(math.pi / 4 * w * h, rel=5e-3)
        assert masses[0] == pytest.approx(w * h / 2, rel=5e-3)
        # The rectangle is the bounding box of the other two, which differ pixel by pixel.
        assert (rectangle >= ellipse).all() and (rectangle >= triangle).all()
        assert (ellipse - triangle).abs().max() > 0.5


@pytest.mark.parametrize("shape", [SQUARE, ELLIPSE, TRIANGLE])
@pytest.mark.parametrize("name", ["width", "height", "x", "y", "brightness"])
def test_off_level_factors_change_the_image_continuously(shape, name):
    base = torch.tensor([shape, 9.3, 7.7, 13.6, 14.45, 0.73], dtype=torch.float64)
    deltas = torch.tensor([0.0, 0.01, 0.02, 0.05, 0.1, 0.2])
    rows = base.repeat(len(deltas), 1)
    rows[:, factor_index(name)] += deltas.double() * (0.5 if name == "brightness" else 1.0)
    images = render(rows).double()
    change = (images[1:] - images[0]).abs().amax(dim=1)
    assert (change > 0).all()  # every δ, however small, changes the image
    assert (change <= 10 * deltas[1:].double()).all()  # ... by little (Lipschitz)
    mass = images.sum(dim=1)
    if name in ("x", "y"):
        assert torch.allclose(mass, mass[0], rtol=2e-3)  # moving keeps the mass
        return
    slope, intercept, r, *_ = stats.linregress(deltas.numpy(), mass.numpy())
    assert r > 0.999 and slope > 0  # mass ≈ linear in a size or the brightness


def test_off_level_shapes_stay_in_their_box_with_the_mass_of_their_area():
    rows = sample_factors(900, seed=8).double()
    generator = torch.Generator().manual_seed(9)
    rows[:, 1:5] += torch.rand(900, 4, generator=generator, dtype=torch.float64) * 1.9 - 0.95
    rows[:, 1:3] = rows[:, 1:3].clamp(min=0.7)
    for centre, size in ((3, 1), (4, 2)):  # back inside the frame, some of them touching it
        rows[:, centre] = torch.minimum(rows[:, centre], 28 - rows[:, size] / 2)
        rows[:, centre] = torch.maximum(rows[:, centre], rows[:, size] / 2)
    images = render(rows).reshape(-1, 28, 28).double()
    pixels = torch.arange(28, dtype=torch.float64)

    def overlap(lo, hi):  # (n, 28): each pixel row's (or column's) overlap with [lo, hi]
        top = torch.minimum(pixels + 1, hi[:, None]) - torch.maximum(pixels, lo[:, None])
        return top.clamp(0, 1)

    w, h, x, y, b = rows[:, 1:].T
    box = overlap(y - h / 2, y + h / 2)[:, :, None] * overlap(x - w / 2, x + w / 2)[:, None, :]
    assert images[box == 0].abs().max() == 0
    relative = images.sum(dim=(1, 2)) / (w * h * b)
    area = torch.tensor([1.0, math.pi / 4, 0.5], dtype=torch.float64)[rows[:, 0].long()]
    assert (relative[rows[:, 0] == 0] - 1).abs().max() < 1e-5  # exact coverage
    assert (relative / area - 1).abs().max() < 0.02


def test_rendering_the_training_split_takes_seconds():
    many = sample_factors(60_000, seed=0)
    start = time.perf_counter()
    images = render(many)
    assert time.perf_counter() - start < 30  # about 1.5 s on one core
    assert images.shape == (60_000, 784) and 0 <= images.min() and images.max() <= 1


def test_supersampling_refines_curved_edges_and_leaves_rectangles_exact():
    rows = [(SQUARE, 7.3, 9.1, 13.2, 14.7, 0.9), (ELLIPSE, 11, 7, 14.2, 13.9, 1.0)]
    coarse, fine, finest = (draw(*rows, supersample=s) for s in (1, 4, 16))
    assert torch.allclose(coarse[0], finest[0], atol=1e-6)  # exact area whatever the grid
    exact = math.pi / 4 * 11 * 7
    assert abs(float(finest[1].sum()) - exact) < abs(float(coarse[1].sum()) - exact) + 1e-3
    assert (fine[1] - finest[1]).abs().max() < 0.05


# ------------------------------------------------------------------------------------------
# Sampling


def test_sampling_is_deterministic_and_seeded():
    a, b, c = sample_factors(500, seed=3), sample_factors(500, seed=3), sample_factors(500, seed=4)
    assert a.shape == (500, 6) and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(sample_factors(50, seed=3), a[:50])  # one draw per image, in order
    for j, name in enumerate(FACTORS):
        assert set(a[:, j].tolist()) <= {as_float32(v) for v in LEVELS[name]}
    assert torch.equal(render(a[:40]), render(b[:40]))


def test_factors_are_uniform_and_independent():
    sample = sample_factors(6000, seed=11)
    codes = []
    for j, name in enumerate(FACTORS):
        levels = torch.tensor(LEVELS[name], dtype=torch.float32)
        code = (sample[:, j, None] == levels).int().argmax(dim=1).numpy()
        counts = np.bincount(code, minlength=len(levels))
        assert stats.chisquare(counts).pvalue > 1e-3, name
        codes.append(code)
    for i, j in itertools.combinations(range(len(FACTORS)), 2):
        table = np.zeros((len(LEVELS[FACTORS[i]]), len(LEVELS[FACTORS[j]])))
        np.add.at(table, (codes[i], codes[j]), 1)
        assert stats.chi2_contingency(table).pvalue > 1e-3, (FACTORS[i], FACTORS[j])


# ------------------------------------------------------------------------------------------
# The splits and their cache


@pytest.fixture
def small_splits(monkeypatch):
    """Splits of 120 training and 40 test images, so that every test renders little."""
    monkeypatch.setattr(shapes, "N_TRAIN", 120)
    monkeypatch.setattr(shapes, "N_TEST", 40)


def test_splits_are_seeded_streams_and_differ(tmp_path, small_splits):
    train = load_shapes(tmp_path, train=True, seed=0)
    test = load_shapes(tmp_path, train=False, seed=0)
    other = load_shapes(tmp_path, train=True, seed=1)
    assert isinstance(train, ShapesData) and isinstance(train, ImageData)
    assert len(train) == 120 and len(test) == 40
    assert train.classes == SHAPES and train.factor_names == FACTORS
    assert torch.equal(train.labels, train.factors[:, 0].long())
    # Documented streams: training 2·seed, test 2·seed + 1.
    assert torch.equal(train.factors, sample_factors(120, seed=0))
    assert torch.equal(test.factors, sample_factors(40, seed=1))
    assert torch.equal(other.factors, sample_factors(120, seed=2))
    assert not torch.equal(test.factors, train.factors[:40])
    assert not torch.equal(other.factors, train.factors)
    # A fresh root gives the very same data.
    again = load_shapes(tmp_path / "elsewhere", train=True, seed=0)
    assert torch.equal(again.images, train.images) and torch.equal(again.factors, train.factors)


def test_cache_is_written_then_read_and_round_trips(tmp_path, small_splits, monkeypatch):
    path = shapes_cache_path(tmp_path, train=True, seed=5)
    assert path == tmp_path / "shapes" / f"v{GENERATOR_VERSION}-seed5-train.pt"
    assert shapes_cache_path(tmp_path, train=False, seed=5).name == "v1-seed5-test.pt"
    first = load_shapes(tmp_path, train=True, seed=5)
    assert path.is_file() and sorted(p.name for p in path.parent.iterdir()) == [path.name]
    payload = torch.load(path, weights_only=True)
    assert payload["images"].dtype == torch.uint8 and payload["generator_version"] == 1
    assert payload["split"] == "train" and payload["seed"] == 5
    assert torch.equal(payload["factors"], first.factors)
    rendered = render(first.factors)
    assert (first.images - rendered).abs().max() <= 0.5 / 255 + 1e-6
    assert torch.equal(first.images * 255, (rendered * 255).round())

    def no_render(*args, **kwargs):
        raise AssertionError("rendered although the cache holds the split")

    monkeypatch.setattr(shapes, "render", no_render)
    mtime = path.stat().st_mtime_ns
    second = load_shapes(tmp_path, train=True, seed=5)
    assert path.stat().st_mtime_ns == mtime
    assert torch.equal(second.images, first.images) and torch.equal(second.factors, first.factors)
    limited = load_shapes(tmp_path, train=True, seed=5, limit=30)
    assert len(limited) == 30 and torch.equal(limited.images, first.images[:30])


def _damage(path, how):
    if how == "garbage":
        path.write_bytes(b"not a torch file")
    elif how == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    else:
        payload = torch.load(path, weights_only=True)
        if how == "version":
            payload["generator_version"] = 0
        elif how == "shape":
            payload["images"] = payload["images"][:-1]
        elif how == "factors":
            payload["factors"] = payload["factors"].flip(0)
        elif how == "dtype":
            payload["images"] = payload["images"].float()
        torch.save(payload, path)


@pytest.mark.parametrize("how", ["garbage", "truncated", "version", "shape", "factors", "dtype"])
def test_a_bad_cache_file_is_regenerated_with_a_warning(tmp_path, small_splits, how):
    first = load_shapes(tmp_path, train=False, seed=2)
    path = shapes_cache_path(tmp_path, train=False, seed=2)
    _damage(path, how)
    with pytest.warns(UserWarning, match=re.escape(f"shapes cache {path} ") + ".*regenerating"):
        again = load_shapes(tmp_path, train=False, seed=2)
    assert torch.equal(again.images, first.images)
    payload = torch.load(path, weights_only=True)  # repaired
    assert torch.equal(payload["images"].float() / 255, first.images)


def test_a_cache_of_another_size_is_regenerated(tmp_path, small_splits, monkeypatch):
    load_shapes(tmp_path, train=True, seed=0)
    monkeypatch.setattr(shapes, "N_TRAIN", 90)
    with pytest.warns(UserWarning, match="does not match"):
        assert len(load_shapes(tmp_path, train=True, seed=0)) == 90


def test_an_unwritable_root_is_a_clear_error(tmp_path, small_splits):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(ShapesCacheError, match=f"{blocker} is a file, not a folder"):
        load_shapes(blocker / "data")
    assert issubclass(ShapesCacheError, OSError)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_root_is_a_clear_error(tmp_path, small_splits):
    root = tmp_path / "ro"
    root.mkdir()
    root.chmod(0o500)
    try:
        with pytest.raises(ShapesCacheError, match="not writable"):
            load_shapes(root)
    finally:
        root.chmod(0o700)


# ------------------------------------------------------------------------------------------
# The data class


def _data(n: int = 30) -> ShapesData:
    f = sample_factors(n, seed=0)
    return ShapesData(render(f), f[:, 0].long(), SHAPES, f)


def test_subset_and_select_keep_the_factors_aligned():
    data = _data()
    first = data.subset(10)
    assert isinstance(first, ShapesData) and torch.equal(first.factors, data.factors[:10])
    assert torch.equal(first.images, data.images[:10]) and data.subset(None) is data
    ellipses = data.select([1])
    assert isinstance(ellipses, ShapesData) and len(ellipses) == int((data.labels == 1).sum())
    assert (ellipses.factors[:, 0] == 1).all()
    assert torch.equal(ellipses.images, render(ellipses.factors))
    assert torch.equal(ellipses.factor("height"), ellipses.factors[:, 2])
    with pytest.raises(ValueError, match="unknown factor"):
        data.factor("colour")
    # A plain ImageData still subsets to an ImageData.
    plain = ImageData(data.images, data.labels, SHAPES).subset(5)
    assert type(plain) is ImageData and len(plain) == 5


def test_shapes_data_validation():
    data = _data(8)
    with pytest.raises(ValueError, match=r"factors must have shape \(8, 6\)"):
        ShapesData(data.images, data.labels, SHAPES, data.factors[:7])
    with pytest.raises(ValueError, match=r"factors must have shape \(8, 6\)"):
        ShapesData(data.images, data.labels, SHAPES, data.factors[:, :5])
    with pytest.raises(ValueError, match="floating point"):
        ShapesData(data.images, data.labels, SHAPES, data.factors.long())
    with pytest.raises(ValueError, match="labels must equal the 'shape' factor"):
        ShapesData(data.images, (data.labels + 1) % 3, SHAPES, data.factors)
    with pytest.raises(ValueError, match="distinct strings"):
        ShapesData(data.images, data.labels, SHAPES, data.factors, ("a",) * 6)
    with pytest.raises(ValueError, match=r"images must have shape \(N, 784\)"):
        ShapesData(data.images[:, :700], data.labels, SHAPES, data.factors)
    named = ShapesData(data.images, data.labels, SHAPES, data.factors[:, 1:3], ["w", "h"])
    assert named.factor_names == ("w", "h") and len(named.subset(3).factors) == 3


# ------------------------------------------------------------------------------------------
# Bad inputs


GOOD = (SQUARE, 8, 8, 14, 14, 1.0)


def _with(column: str, value: float) -> torch.Tensor:
    rows = factors(GOOD, GOOD, GOOD)
    rows[2, factor_index(column)] = value
    return rows


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ([GOOD], "must be a torch.Tensor"),
        (torch.zeros(3, 5), r"shape \(N, 6\)"),
        (torch.zeros(6), r"shape \(N, 6\)"),
        (factors(GOOD).long(), "floating-point"),
        (_with("height", float("nan")), "finite; image 2 has nan in factor 'height'"),
        (_with("x", float("inf")), "finite; image 2 has inf in factor 'x'"),
        (_with("shape", 3), "'shape' must be 0, 1 or 2.*image 2 has 3.0"),
        (_with("shape", 0.5), "'shape' must be 0, 1 or 2"),
        (_with("width", 0), "'width' must be > 0.*image 2"),
        (_with("height", -2), "'height' must be > 0.*image 2"),
        (_with("brightness", 0), r"'brightness' must be in \(0, 1\].*image 2"),
        (_with("brightness", 1.01), r"'brightness' must be in \(0, 1\]"),
        (_with("x", 3), "image 2 leaves the 28×28 frame: x = 3.0 with width = 8.0"),
        (_with("y", 24.5), "image 2 leaves the 28×28 frame: y = 24.5 with height = 8.0"),
        (_with("width", 28.5), "image 2 leaves the 28×28 frame: x = 14.0 with width = 28.5"),
    ],
)
def test_render_rejects_bad_factors(bad, message):
    with pytest.raises(ValueError, match=message):
        render(bad)


@pytest.mark.parametrize("supersample", [0, -1, 2.0, True])
def test_render_rejects_a_bad_supersample(supersample):
    with pytest.raises(ValueError, match="supersample"):
        render(factors(GOOD), supersample=supersample)


def test_a_box_exactly_on_the_frame_renders():
    image = draw((SQUARE, 28, 28, 14, 14, 1.0))[0]
    assert torch.equal(image, torch.ones(28, 28, dtype=torch.float64))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: sample_factors(0, seed=0), "n .*positive int"),
        (lambda: sample_factors(5, seed=-1), "seed"),
        (lambda: sample_factors(5.0, seed=0), "n .*positive int"),
        (lambda: load_shapes(limit=0), "limit"),
        (lambda: load_shapes(seed=-1), "seed"),
        (lambda: load_shapes(train="yes"), "train must be True or False"),
    ],
)
def test_sampling_and_loading_reject_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()
