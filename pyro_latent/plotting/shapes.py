"""Figures of the shapes world: its images and counterfactuals, and every direction scored against
the truth (purity and angle to the true direction, per preset)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from pyro_latent.plotting import save_figure
from pyro_latent.plotting.vae import image_grid


def plot_shapes_world(path: Path, rows: Sequence[Mapping], title: str) -> Path:
    """One row of images per entry of ``rows`` (``{"label", "images" [n, 784]}``): samples of
    the world, then counterfactual rows in which one factor moves."""
    n = max(len(row["images"]) for row in rows)
    fig, axes = plt.subplots(len(rows), 1, figsize=(0.55 * n + 2.2, 0.62 * len(rows) + 0.8))
    axes = np.atleast_1d(axes)
    for ax, row in zip(axes, rows, strict=True):
        ax.imshow(image_grid(row["images"], nrow=n), cmap="gray", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(row["label"], rotation=0, ha="right", va="center", fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_direction_scores(path: Path, table: Sequence[Mapping]) -> Path:
    """Median purity (left) and median pull-back angle to the true direction (right) of each
    direction, one marker per VAE, coloured by preset (``table``: rows of
    :func:`pyro_latent.study.shape_concepts.direction_table`)."""
    directions = list(dict.fromkeys(row["direction"] for row in table))
    presets = list(dict.fromkeys(row["preset"] for row in table))
    colours = {p: plt.get_cmap("tab10")(i) for i, p in enumerate(presets)}
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.28 * len(directions) + 1.6), sharey=True)
    y = {d: i for i, d in enumerate(directions)}
    offsets = {p: (i - (len(presets) - 1) / 2) * 0.22 for i, p in enumerate(presets)}
    for ax, key, label in (
        (axes[0], "purity", "purity (median over images)"),
        (axes[1], "angle_to_truth", "angle to the true direction, pull-back metric (°)"),
    ):
        for preset in presets:
            rows = [r for r in table if r["preset"] == preset and r[key]["median"] is not None]
            ax.scatter(
                [r[key]["median"] for r in rows],
                [y[r["direction"]] + offsets[preset] for r in rows],
                color=colours[preset],
                s=14,
                label=preset,
            )
        ax.set_xlabel(label, fontsize=8)
        ax.grid(axis="x", lw=0.4, alpha=0.6)
    axes[0].set_xlim(0, 1.02)
    angles = [r["angle_to_truth"]["median"] for r in table if r["angle_to_truth"]["median"]]
    axes[1].set_xlim(0, 180 if max(angles, default=0) > 90 else 90)  # no point falls off
    axes[0].set_yticks(range(len(directions)))
    axes[0].set_yticklabels(directions, fontsize=7)
    axes[0].invert_yaxis()
    axes[0].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_disentanglement(path: Path, records: Mapping[str, Sequence[Mapping]]) -> Path:
    """MIG, DCI disentanglement, completeness and informativeness, and SAP of every run, one
    panel per metric, runs grouped by preset (``records``: ``{preset: [record per seed]}`` of
    :func:`pyro_latent.study.shape_concepts.disentanglement_record`)."""
    metrics = [
        ("MIG", lambda r: r["mig"]),
        ("DCI disentanglement", lambda r: r["dci"]["disentanglement"]),
        ("DCI completeness", lambda r: r["dci"]["completeness"]),
        ("DCI informativeness", lambda r: r["dci"]["informativeness"]),
        ("SAP", lambda r: r["sap"]),
    ]
    presets = list(records)
    fig, axes = plt.subplots(1, len(metrics), figsize=(2.3 * len(metrics), 2.6), sharey=False)
    for ax, (name, value) in zip(axes, metrics, strict=True):
        for i, preset in enumerate(presets):
            values = [value(r) for r in records[preset]]
            ax.scatter([i] * len(values), values, s=16, color=plt.get_cmap("tab10")(i))
        ax.set_xticks(range(len(presets)))
        ax.set_xticklabels(presets, fontsize=7)
        ax.set_title(name, fontsize=8)
        ax.set_ylim(0, 1)
        ax.grid(axis="y", lw=0.4, alpha=0.6)
    fig.tight_layout()
    return save_figure(fig, path)
