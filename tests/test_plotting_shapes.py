"""The ``shape_concepts`` figures draw from small synthetic records, missing values and angles
beyond 90° included."""

from __future__ import annotations

import matplotlib.image
import torch

from pyro_latent.plotting.shapes import (
    plot_direction_scores,
    plot_disentanglement,
    plot_shapes_world,
)


def q(value):
    return {"median": value, "q1": value, "q3": value, "n": 0 if value is None else 1}


def test_direction_scores_with_gaps_and_obtuse_angles(tmp_path):
    table = [
        {"vae": "small-0", "preset": "small", "direction": "two-image h", "purity": q(0.5),
         "angle_to_truth": q(40.0)},
        {"vae": "conv-0", "preset": "conv", "direction": "cav brightness", "purity": q(None),
         "angle_to_truth": q(120.0)},
    ]  # fmt: skip
    path = plot_direction_scores(tmp_path / "scores.png", table)
    assert matplotlib.image.imread(path).shape[0] > 100


def test_disentanglement_and_the_world(tmp_path):
    record = {"mig": 0.1, "dci": {"disentanglement": 0.2, "completeness": 0.3,
              "informativeness": 0.9}, "sap": 0.05}  # fmt: skip
    assert plot_disentanglement(tmp_path / "d.png", {"small": [record, record], "conv": [record]})
    rows = [{"label": "samples", "images": torch.rand(9, 784)},
            {"label": "height moved", "images": torch.rand(5, 784)}]  # fmt: skip
    assert plot_shapes_world(tmp_path / "w.png", rows, "title").is_file()
