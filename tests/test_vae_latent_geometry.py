"""Shoe region, class paths and the 2-D verdicts on synthetic encodings with known answers."""

from __future__ import annotations

import pytest
import torch

from pyro_latent.study import latent_geometry as geo
from pyro_latent.vae import VAE, VAEConfig

CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress") + tuple(f"c{i}" for i in range(4, 10))


# --- compass and the shoe region -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "where"),
    [
        ((3.0, 0.5), "right side"),
        ((-3.0, 0.5), "left side"),
        ((0.2, 2.0), "top"),
        ((0.2, -2.0), "bottom"),
        ((1.0, 1.0), "upper right"),
        ((-1.0, -1.0), "lower left"),
        ((-1.0, 1.0), "upper left"),
        ((0.0, 0.0), "lower left"),  # neither coordinate exceeds the other
    ],
)
def test_compass_names_sides_and_corners(offset, where):
    assert geo.compass(offset) == where


def test_compass_ratio_and_bad_input():
    assert geo.compass((2.0, 1.0), ratio=1.5) == "right side"
    assert geo.compass((2.0, 1.0), ratio=2.5) == "upper right"
    with pytest.raises(ValueError, match="finite"):
        geo.compass((float("nan"), 0.0))


def _shoe_cloud(n=500, shift=(0.0, 8.0), seed=0):
    """Classes 0..9 cycling; the shoe classes (5, 7, 9) moved by ``shift``."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 10
    loc = torch.randn(n, 2, generator=g)
    shoes = torch.isin(labels, torch.tensor([5, 7, 9]))
    loc[shoes] += torch.tensor(shift)
    return loc, labels


def test_shoe_region_finds_a_separable_region_on_top():
    loc, labels = _shoe_cloud()
    region = geo.shoe_region(loc, labels)
    assert region["where"] == "top"
    assert region["linear_separability"] > 0.99
    assert region["offset_sd"][1] > 1 and abs(region["offset_sd"][0]) < 0.5
    shoes = torch.isin(labels, torch.tensor([5, 7, 9]))
    assert region["centroid"] == pytest.approx(loc[shoes].mean(0).tolist(), abs=1e-5)


def test_shoe_region_mixed_shoes_are_not_separable():
    loc, labels = _shoe_cloud(shift=(0.0, 0.0))
    assert geo.shoe_region(loc, labels)["linear_separability"] < 0.8  # ~0.7: "never a shoe"


def test_shoe_region_refuses_bad_input():
    loc, labels = _shoe_cloud()
    with pytest.raises(ValueError, match="2 columns"):
        geo.shoe_region(torch.zeros(10, 3), labels[:10])
    with pytest.raises(ValueError, match="labels"):
        geo.shoe_region(loc, labels[:-1])
    with pytest.raises(ValueError, match="5 shoes"):
        geo.shoe_region(loc[:20], torch.zeros(20, dtype=torch.long))
    with pytest.raises(ValueError, match="NaN"):
        geo.shoe_region(torch.full((20, 2), float("nan")), labels[:20])


def _space(preset, seed, accuracy):
    return {"preset": preset, "seed": seed, "accuracy": accuracy}


def test_shoe_region_verdict_every_branch():
    agree = geo.shoe_region_verdict([_space("a", 0, 0.99), _space("b", 0, 0.96)])
    assert agree["verdict"] == "agrees" and not agree["partly"]
    assert agree["value"] == 0.96 and agree["separated"] == 2 and agree["below"] == []
    partly = geo.shoe_region_verdict([_space("a", 0, 0.99), _space("b", 2, 0.87)])
    assert partly["verdict"] == "disagrees" and partly["partly"]
    assert partly["below"] == [_space("b", 2, 0.87)] and partly["separated"] == 1
    none = geo.shoe_region_verdict([_space("a", 0, 0.5)], threshold=0.6)
    assert none["verdict"] == "disagrees" and not none["partly"] and none["threshold"] == 0.6
    empty = geo.shoe_region_verdict([])
    assert empty["verdict"] == "cannot be tested" and empty["value"] is None
    with pytest.raises(ValueError):
        geo.shoe_region_verdict([], threshold=1.5)


def test_shoe_placement_moves_and_stays():
    moved = geo.shoe_placement({"a": [(0, "top"), (1, "bottom")], "b": [(0, "top"), (1, "top")]})
    assert moved["several_seeds"] and moved["moves_with_seed"] and moved["same_across_presets"]
    assert [p["moved"] for p in moved["presets"]] == [True, False]
    assert moved["presets"][0] == {
        "preset": "a",
        "seeds": [0, 1],
        "wheres": ["top", "bottom"],
        "several_seeds": True,
        "moved": True,
    }
    single = geo.shoe_placement({"a": [(0, "top")], "b": [(0, "left side")]})
    assert not single["several_seeds"] and not single["moves_with_seed"]
    assert not single["same_across_presets"]
    with pytest.raises(ValueError, match="no \\(seed, where\\)"):
        geo.shoe_placement({"a": []})


# --- centroids, segments, nearest class means ----------------------------------------------------


def test_class_centroids_and_mean_images():
    loc = torch.tensor([[0.0, 0.0], [2.0, 2.0], [1.0, 0.0], [3.0, 0.0]])
    labels = torch.tensor([0, 0, 1, 1])
    assert geo.class_centroids(loc, labels, 2).tolist() == [[1.0, 1.0], [2.0, 0.0]]
    with pytest.raises(ValueError, match=r"classes \[2\]"):
        geo.class_centroids(loc, labels, 3)
    with pytest.raises(ValueError, match="integer class"):
        geo.class_centroids(loc, labels.float(), 2)
    images = torch.tensor([[0.0, 1.0], [1.0, 1.0], [0.5, 0.0], [0.5, 0.0]])
    assert geo.class_mean_images(images, labels, 2).tolist() == [[0.5, 1.0], [0.5, 0.0]]
    with pytest.raises(ValueError, match="flattened"):
        geo.class_mean_images(images.reshape(4, 2, 1), labels, 2)


def test_segment_endpoints_and_spacing():
    points = geo.segment(torch.tensor([0.0, 0.0]), torch.tensor([2.0, 4.0]), 5)
    assert points.tolist() == [[0, 0], [0.5, 1], [1, 2], [1.5, 3], [2, 4]]
    with pytest.raises(ValueError, match="at least 2"):
        geo.segment(torch.zeros(2), torch.ones(2), 1)
    with pytest.raises(ValueError, match="one length"):
        geo.segment(torch.zeros(2), torch.ones(3), 3)


def test_nearest_class_means_ratio():
    means = torch.tensor([[0.0, 0.0], [4.0, 0.0], [0.0, 10.0]])
    images = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 9.0]])
    near = geo.nearest_class_means(images, means)
    assert near["nearest"] == [0, 0, 2] and near["second"] == [1, 1, 0]
    assert near["ratio"] == pytest.approx([1 / 3, 1.0, 1 / 9])
    with pytest.raises(ValueError, match="share P"):
        geo.nearest_class_means(images, torch.zeros(3, 5))
    with pytest.raises(ValueError, match="two class means"):
        geo.nearest_class_means(images, means[:1])


def test_find_blends_needs_the_pair_and_the_ratio():
    nearest, second, ratio = [0, 1, 0, 3, 1], [1, 0, 3, 1, 0], [0.95, 0.92, 0.99, 0.99, 0.5]
    assert geo.find_blends(nearest, second, ratio, (0, 1)) == [0, 1]
    assert geo.find_blends(nearest, second, ratio, (1, 0), min_ratio=0.4) == [0, 1, 4]
    with pytest.raises(ValueError, match="one length"):
        geo.find_blends([0], [1, 0], [0.9], (0, 1))


def test_summarize_path_via_another_class():
    # T-shirt, T-shirt, Dress, Dress, Trouser; only images 0 and 4 have the pair as nearest two.
    path = geo.summarize_path(
        [0, 0, 3, 3, 1], [1, 3, 0, 1, 0], [0.6, 0.5, 0.8, 0.95, 0.7], 0, 1, CLASSES
    )
    assert path["route"] == ["T-shirt/top", "Dress", "Trouser"]
    assert path["blends"] == [] and path["n_blends"] == 0
    assert path["closest_ratio"] == 0.7
    assert path["detours"] == [{"class": "Dress", "count": 2}]
    assert path["endpoints_match"] and path["n"] == 5
    assert (path["start_class"], path["stop_class"]) == ("T-shirt/top", "Trouser")


def test_summarize_path_blends_and_wrong_endpoints():
    path = geo.summarize_path([2, 0, 1, 3], [0, 1, 0, 1], [0.3, 0.95, 0.91, 0.2], 0, 1, CLASSES)
    assert path["blends"] == [1, 2] and path["n_blends"] == 2
    assert path["closest_ratio"] == 0.95
    assert not path["endpoints_match"]
    assert (path["first_class"], path["last_class"]) == ("Pullover", "Dress")
    never = geo.summarize_path([0, 3, 1], [3, 0, 3], [0.1, 0.2, 0.3], 0, 1, CLASSES)
    assert never["closest_ratio"] is None
    with pytest.raises(ValueError, match="no images"):
        geo.summarize_path([], [], [], 0, 1, CLASSES)
    with pytest.raises(ValueError, match="at most 9"):
        geo.summarize_path([0], [1], [0.5], 0, 10, CLASSES)


class _Lerp:
    """A 'decoder' drawing the image ``z_1 · e_1 + (1 - z_1) · e_0`` in 2 pixels."""

    def decode(self, z):
        return torch.stack([1 - z[:, 0], z[:, 0]], dim=1)


def test_class_path_decodes_between_the_centroids():
    loc = torch.tensor([[0.0, 0.0], [0.0, 0.2], [1.0, 0.0], [1.0, 0.2]])
    labels = torch.tensor([0, 0, 1, 1])
    images = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    decoded, path = geo.class_path(_Lerp(), loc, labels, images, ("a", "b"), 0, 1, n=3)
    assert decoded.tolist() == [[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]]
    assert path["route"] == ["a", "b"] and path["endpoints_match"]
    assert path["blends"] == [1] and path["ratio"][1] == pytest.approx(1.0)


def test_blend_verdict_every_branch():
    def p(preset, n):
        return {"preset": preset, "n_blends": n}

    agree = geo.blend_verdict([p("a", 2), p("b", 1)])
    assert agree["verdict"] == "agrees" and not agree["partly"] and agree["value"] == 2
    partly = geo.blend_verdict([p("a", 2), p("b", 0)])
    assert partly["verdict"] == "disagrees" and partly["partly"]
    assert partly["with_blends"] == ["a"] and partly["expected"] == 2
    none = geo.blend_verdict([p("a", 0), p("b", 0)])
    assert none["verdict"] == "disagrees" and not none["partly"] and none["value"] == 0
    assert geo.blend_verdict([])["verdict"] == "cannot be tested"
    with pytest.raises(ValueError, match="n_blends"):
        geo.blend_verdict([p("a", -1)])


# --- one VAE's numbers, and the 2-D summary ------------------------------------------------------


def test_measure_adds_the_shoe_region_to_a_2d_space_only():
    torch.manual_seed(0)
    loc_images = torch.rand(60, 784)
    labels = torch.arange(60) % 10
    flat = geo.measure(VAE(VAEConfig("t", latent_dim=2, hidden=(8,))), loc_images, labels)
    assert set(flat["shoes"]) == {"centroid", "offset_sd", "where", "linear_separability"}
    assert len(flat["activity"]) == 2 and "kl_split" in flat
    wide = geo.measure(VAE(VAEConfig("t", latent_dim=3, hidden=(8,))), loc_images, labels)
    assert "shoes" not in wide and len(wide["activity"]) == 3


def _run(seed, where, accuracy):
    return {"seed": seed, "shoes": {"where": where, "linear_separability": accuracy}}


def test_two_d_summary_gathers_the_verdicts():
    runs = {
        "a": [_run(0, "top", 0.99), _run(1, "bottom", 0.98)],
        "b": [_run(0, "left side", 0.8), _run(1, "left side", 0.97)],
    }
    paths = [{"preset": "a", "seed": 0, "n_blends": 1}, {"preset": "b", "seed": 0, "n_blends": 0}]
    out = geo.two_d_summary(runs, paths)
    assert out["presets"] == ["a", "b"] and out["seeds"] == [0, 1]
    assert out["shoe_region"]["below"] == [_space("b", 0, 0.8)]
    assert out["shoe_region"]["partly"]
    assert out["placement"]["moves_with_seed"]
    assert [p["moved"] for p in out["placement"]["presets"]] == [True, False]
    assert out["paths"] == paths and out["blends"]["partly"]
    assert geo.two_d_summary(runs)["blends"]["verdict"] == "cannot be tested"
    with pytest.raises(ValueError, match="at least one run"):
        geo.two_d_summary({"a": []})
