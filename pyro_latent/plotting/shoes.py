"""Figures of the shoe-concept study: traversal grids like the post's, and purity per direction."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from pyro_latent.plotting import save_figure
from pyro_latent.plotting.vae import image_grid


def plot_traversals(path: Path, rows: Sequence[dict], alphas: Sequence[float], title: str) -> Path:
    """One row of decoded images per entry of ``rows`` (``{"label", "images" [A, 784]}``), one
    column per ``α``; the row labels on the left, the ``α`` values on top."""
    fig, axes = plt.subplots(
        len(rows), 1, figsize=(0.55 * len(alphas) + 2.2, 0.62 * len(rows) + 0.8)
    )
    axes = np.atleast_1d(axes)
    for i, (ax, row) in enumerate(zip(axes, rows, strict=True)):
        ax.imshow(image_grid(row["images"], nrow=len(alphas)), cmap="gray", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(row["label"], rotation=0, ha="right", va="center", fontsize=7)
        if i == 0:
            ticks = 1 + 29 * np.arange(len(alphas)) + 14
            ax.set_xticks(ticks)
            ax.set_xticklabels([f"{a:+g}" for a in alphas], fontsize=6)
            ax.xaxis.tick_top()
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_purity(path: Path, table: Sequence[dict]) -> Path:
    """Median purity with its interquartile range, one bar per direction, one panel per VAE
    (``table``: rows of :func:`pyro_latent.study.shoe_concepts.direction_table`)."""
    vaes = list(dict.fromkeys(row["vae"] for row in table))
    fig, axes = plt.subplots(1, len(vaes), figsize=(5.2 * len(vaes), 3.4), sharey=True)
    axes = np.atleast_1d(axes)
    for ax, vae in zip(axes, vaes, strict=True):
        rows = [r for r in table if r["vae"] == vae and r["purity"]["median"] is not None]
        x = np.arange(len(rows))
        median = np.array([r["purity"]["median"] for r in rows])
        low = median - np.array([r["purity"]["q1"] for r in rows])
        high = np.array([r["purity"]["q3"] for r in rows]) - median
        ax.bar(x, median, color="tab:blue", alpha=0.7)
        ax.errorbar(x, median, yerr=[low, high], fmt="none", color="black", capsize=3)
        ax.set_xticks(x)
        ax.set_xticklabels([r["direction"] for r in rows], rotation=35, ha="right", fontsize=7)
        ax.set_ylim(0, 1.02)
        ax.axhline(0.5, color="gray", lw=0.8, ls=":")
        ax.set_title(vae)
    axes[0].set_ylabel("height purity (median, IQR)")
    fig.tight_layout()
    return save_figure(fig, path)
