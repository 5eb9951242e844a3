"""The ``coordinate_free`` figures draw from small synthetic inputs, including awkward ones
(``None`` values, string keys, a one-node tree, empty inputs)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pyro_latent.plotting.coordinate_free import (
    _tree_layout,
    plot_jacobian_spectra,
    plot_level_set_trees,
    plot_unpaired_vs_paired,
)

CLASSES = [f"class {i}" for i in range(10)]


def assert_png(path):
    assert path.is_file()
    assert path.stat().st_size > 1000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def make_spectrum(k: int, active: int | None, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    median = np.sort(rng.lognormal(0, 1, k))[::-1]
    median[active or k :] *= 1e-3
    spectrum = {
        "median": median.tolist(),
        "q25": (0.7 * median).tolist(),
        "q75": (1.3 * median).tolist(),
        "active_units": active,
        "latent_dim": k,
    }
    return spectrum


def make_layers(dims: list[int], seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for block, (d_in, d_out) in enumerate(zip(dims, dims[1:], strict=False)):
        rank = float(min(d_in, d_out) * rng.uniform(0.3, 1.0))
        out.append(
            {
                "block": block,
                "in": d_in,
                "out": d_out,
                "rank_median": rank,
                "rank_q25": rank * 0.9,
                "rank_q75": rank * 1.05,
            }
        )
    return out


def make_tree(n: int, seed: int, title: str) -> dict:
    """A random tree of ``n`` nodes, parents before children, sizes shrinking with depth."""
    rng = np.random.default_rng(seed)
    nodes = [
        {
            "id": 0,
            "parent": None,
            "depth": 0,
            "birth": 0.0,
            "size": 1000,
            "composition": rng.integers(50, 150, 10).tolist(),
        }
    ]
    for i in range(1, n):
        parent = nodes[int(rng.integers(0, i))]
        size = max(5, int(parent["size"] * rng.uniform(0.2, 0.6)))
        nodes.append(
            {
                "id": i,
                "parent": parent["id"],
                "depth": parent["depth"] + 1,
                "birth": float(rng.uniform(parent["birth"], 1.0)),
                "size": size,
                "composition": rng.multinomial(size, rng.dirichlet(np.ones(10) * 0.3)).tolist(),
            }
        )
    return {"title": title, "nodes": nodes}


def test_jacobian_spectra(tmp_path):
    spectra = {
        "small-0": make_spectrum(2, 2, 0),
        "large-0": make_spectrum(10, 6, 1),
        "odd": {"median": [1.0, None, 0.0, 1e-4], "q25": None, "q75": [1.0], "active_units": None},
    }
    layers = {
        "small-0": make_layers([784, 256, 64, 2], 2),
        "large-0": make_layers([784, 512, 128, 10], 3),
        "odd": [{"block": "0", "in": 784, "out": None, "rank_median": None}],
    }
    spectra, layers = json.loads(json.dumps(spectra)), json.loads(json.dumps(layers))
    assert_png(plot_jacobian_spectra(tmp_path / "a" / "spectra.png", spectra, layers))


def test_jacobian_spectra_empty(tmp_path):
    assert_png(plot_jacobian_spectra(tmp_path / "empty.png", {}, {}))
    assert_png(plot_jacobian_spectra(tmp_path / "no_layers.png", {"v": make_spectrum(3, 1, 0)}, {}))


@pytest.mark.parametrize(("n_left", "n_right"), [(1, 1), (1, 7), (12, 9), (60, 45)])
def test_level_set_trees(tmp_path, n_left, n_right):
    left, right = make_tree(n_left, 0, "small-0"), make_tree(n_right, 1, "large-0")
    matches = [[i, i] for i in range(min(n_left, n_right))] + [[0, 999], [None, 0]]
    left, right = json.loads(json.dumps(left)), json.loads(json.dumps(right))
    path = plot_level_set_trees(
        tmp_path / f"trees_{n_left}_{n_right}.png", left, right, matches, CLASSES
    )
    assert_png(path)


def test_level_set_trees_awkward(tmp_path):
    left = make_tree(5, 2, "left")
    left["nodes"][1]["composition"] = None
    left["nodes"][2]["size"] = None
    left["nodes"][3]["depth"] = None
    right = {"title": "empty", "nodes": []}
    assert_png(plot_level_set_trees(tmp_path / "awkward.png", left, right, [], CLASSES))


def test_tree_layout_places_parents_over_their_leaves():
    nodes = [
        {"id": 0, "parent": None, "depth": 0},
        {"id": 1, "parent": 0, "depth": 1},
        {"id": 2, "parent": 0, "depth": 1},
        {"id": 3, "parent": 1, "depth": 2},
        {"id": 4, "parent": 1, "depth": 2},
    ]
    layout = _tree_layout(nodes)
    assert [layout[i]["x"] for i in (3, 4, 2)] == [0.0, 1.0, 2.0]
    assert layout[1]["x"] == 0.5
    assert layout[0]["x"] == pytest.approx(1.0)  # the mean of its leaves, not children
    assert layout[4]["y"] == 2


def test_unpaired_vs_paired(tmp_path):
    rows = [
        {
            "pair": "small-0 → large-0",
            "paired": {"procrustes": 0.8, "affine": 0.9},
            "tree": 0.1,
            "gw": {"100": -0.3, "200": 0.2, "400": 0.4},
        },
        {
            "pair": "large-0 → small-0",
            "paired": {"procrustes": 0.5, "affine": None},
            "tree": -4.0,
            "gw": {"100": -12.0, "400": None},
        },
        {"pair": "odd", "paired": {}, "tree": None, "gw": {}},
    ]
    assert_png(plot_unpaired_vs_paired(tmp_path / "unpaired.png", rows))
    assert_png(plot_unpaired_vs_paired(tmp_path / "none.png", []))
