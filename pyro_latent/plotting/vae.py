"""Figures of the VAE study: 2-D latent spaces, decoded manifolds, latent activity, reconstructions.

Image grids are assembled with :func:`torchvision.utils.make_grid`; everything is drawn with
matplotlib on the headless ``Agg`` backend (set by :mod:`pyro_latent.plotting`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.ticker import MaxNLocator
from torchvision.utils import make_grid

from pyro_latent.core.latent_model import decode_in_batches, encode_in_batches
from pyro_latent.plotting import save_figure


def image_grid(images: torch.Tensor, nrow: int, padding: int = 1) -> np.ndarray:
    """``(N, 784)`` pixel values in ``[0, 1]`` to one ``(H, W)`` array, ``nrow`` per row."""
    grid = make_grid(
        images.detach().cpu().reshape(-1, 1, 28, 28), nrow=nrow, padding=padding, pad_value=1.0
    )
    return grid[0].numpy()


def latent_grid(loc: torch.Tensor, n: int, quantile: float = 0.01) -> tuple[torch.Tensor, list]:
    """An ``n × n`` grid of 2-D latents spanning the ``[q, 1-q]`` quantiles of ``loc``, ordered
    row by row from the top (largest ``z_2``) so it reads like a scatter plot; and its extent
    ``[x_min, x_max, y_min, y_max]``."""
    lo = torch.quantile(loc, quantile, dim=0)
    hi = torch.quantile(loc, 1 - quantile, dim=0)
    xs = torch.linspace(lo[0].item(), hi[0].item(), n)
    ys = torch.linspace(hi[1].item(), lo[1].item(), n)
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    grid = torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1)
    return grid, [lo[0].item(), hi[0].item(), lo[1].item(), hi[1].item()]


def scatter_latents(ax, loc: torch.Tensor, labels: torch.Tensor, classes: Sequence[str], title=""):
    """Test encodings of a 2-D VAE coloured by class, with a legend."""
    cmap = plt.get_cmap("tab10")
    for c, name in enumerate(classes):
        mask = labels == c
        ax.scatter(
            loc[mask, 0], loc[mask, 1], s=2, alpha=0.5, color=cmap(c), label=name, rasterized=True
        )
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    ax.set_title(title)
    legend = ax.legend(markerscale=5, fontsize=7, loc="best", framealpha=0.8)
    for handle in legend.legend_handles:
        handle.set_alpha(1.0)


def plot_latents_2d(path: Path, panels: Sequence[dict], classes: Sequence[str]) -> Path:
    """``panels``: dicts with ``loc``, ``labels`` and ``title``; one scatter per panel."""
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 5.5))
    for ax, panel in zip(np.atleast_1d(axes), panels, strict=True):
        scatter_latents(ax, panel["loc"], panel["labels"], classes, panel["title"])
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)


@torch.no_grad()
def plot_manifolds(path: Path, panels: Sequence[dict], n: int = 20) -> Path:
    """``panels``: dicts with ``vae``, ``loc`` (its test encodings), ``title`` and optional
    ``marks`` {label: (z1, z2)}.  Each panel decodes an ``n × n`` grid over the encodings."""
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 6.5))
    for ax, panel in zip(np.atleast_1d(axes), panels, strict=True):
        grid, extent = latent_grid(panel["loc"], n)
        images = decode_in_batches(panel["vae"], grid)
        grid_image = image_grid(images, nrow=n, padding=0)
        ax.imshow(grid_image, cmap="gray_r", extent=extent, aspect="auto")
        for label, (x, y) in panel.get("marks", {}).items():
            ax.annotate(
                label,
                (x, y),
                color="tab:red",
                fontsize=9,
                ha="center",
                bbox=dict(boxstyle="round,pad=0.2", fc="white", alpha=0.7, lw=0),
            )
        ax.set_xlabel("$z_1$")
        ax.set_ylabel("$z_2$")
        ax.set_title(panel["title"])
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)


def plot_activity(
    path: Path, groups: Sequence[dict], sweep: Sequence[dict] = (), *, threshold: float
) -> Path:
    """Sorted ``Var_x(E_q[z_d|x])`` per dimension, one line per run, the activity ``threshold``
    dashed.

    ``groups`` (left panel) and ``sweep`` (right panel, optional): dicts with ``label``,
    ``color`` and ``activities`` (a list of per-run arrays)."""
    ncols = 2 if sweep else 1
    fig, axes = plt.subplots(1, ncols, figsize=(6 * ncols, 4.2), squeeze=False)
    for ax, items, title in zip(
        axes[0], (groups, sweep), ("small against large (20-D)", "small, latent size"), strict=False
    ):
        for item in items:
            for i, act in enumerate(item["activities"]):
                values = np.sort(np.asarray(act))[::-1]
                ax.plot(
                    np.arange(1, len(values) + 1),
                    values,
                    marker="o",
                    ms=3,
                    color=item["color"],
                    alpha=0.8,
                    label=item["label"] if i == 0 else None,
                )
        ax.axhline(threshold, color="k", ls="--", lw=1, label=f"{threshold:g} (active)")
        ax.set_yscale("log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("dimension, sorted by activity")
        ax.set_ylabel(r"$\mathrm{Var}_x(\mathbb{E}_q[z_d \mid x])$")
        ax.set_title(title)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)


@torch.no_grad()
def plot_reconstructions(path: Path, images: torch.Tensor, rows: Sequence[tuple]) -> Path:
    """Originals on top, then one row per ``(label, vae)``: ``decode(encode(x).loc)``."""
    n = images.shape[0]
    all_rows = [("test images", images)]
    all_rows += [
        (label, decode_in_batches(vae, encode_in_batches(vae, images)[0])) for label, vae in rows
    ]
    fig, axes = plt.subplots(len(all_rows), 1, figsize=(n * 0.6, 0.75 * len(all_rows) + 0.3))
    for ax, (label, imgs) in zip(np.atleast_1d(axes), all_rows, strict=True):
        ax.imshow(image_grid(imgs, nrow=n), cmap="gray_r", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)


@torch.no_grad()
def plot_interpolations(path: Path, rows: Sequence[dict]) -> Path:
    """One row per dict with ``label`` and ``images`` (decoded points along a latent path) and
    optional ``captions`` under each image."""
    n = max(row["images"].shape[0] for row in rows)
    fig, axes = plt.subplots(len(rows), 1, figsize=(n * 0.75, 1.2 * len(rows) + 0.2))
    for ax, row in zip(np.atleast_1d(axes), rows, strict=True):
        ax.imshow(image_grid(row["images"], nrow=n, padding=2), cmap="gray_r", vmin=0, vmax=1)
        ax.set_yticks([])
        captions = row.get("captions")
        if captions:
            ax.set_xticks(np.arange(len(captions)) * 30 + 16)
            ax.set_xticklabels(captions, fontsize=6, rotation=30)
        else:
            ax.set_xticks([])
        ax.set_ylabel(row["label"], rotation=0, ha="right", va="center", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)


def plot_correlations(path: Path, panels: Sequence[dict], *, threshold: float) -> Path:
    """|correlation| matrices, one row per dict with ``label``, ``mean_corr``, ``sample_corr`` and
    ``activity`` (``A_d`` per dimension): dimensions are sorted by activity, most active first,
    and a white line marks off the active ones (``A_d > threshold``)."""
    fig, axes = plt.subplots(len(panels), 2, figsize=(8, 3.8 * len(panels)), squeeze=False)
    for row, panel in zip(axes, panels, strict=True):
        activity = np.asarray(panel["activity"], dtype=float)
        order = np.argsort(-activity)
        n_active = int((activity > threshold).sum())
        for ax, key, title in zip(
            row, ("mean_corr", "sample_corr"), ("posterior means", "posterior samples"), strict=True
        ):
            matrix = np.abs(np.asarray(panel[key], dtype=float))[np.ix_(order, order)]
            np.fill_diagonal(matrix, np.nan)
            image = ax.imshow(matrix, vmin=0, vmax=1, cmap="viridis")
            edge = n_active - 0.5
            ax.axhline(edge, color="w", lw=1)
            ax.axvline(edge, color="w", lw=1)
            ax.set_title(f"{panel['label']}: {title}", fontsize=10)
            ax.set_xlabel("dimension (by activity)")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        fig.colorbar(image, ax=row, shrink=0.8, label="|correlation|")
    return save_figure(fig, path, dpi=110, bbox_inches="tight")


def plot_gaps(path: Path, table: dict) -> Path:
    """The approximation and amortisation gaps (mean ± s.e., nats) of each VAE, per class of the
    real test images and for each off-distribution group: one panel per gap, grouped bars per
    VAE (``table``: :func:`pyro_latent.study.posterior_gaps.gap_table`)."""
    vaes = list(table)
    first = table[vaes[0]]
    groups = [*first["by_class"], *first["off"]]
    fig, axes = plt.subplots(2, 1, figsize=(max(8, 0.75 * len(groups)), 6.5), sharex=True)
    width = 0.8 / max(len(vaes), 1)
    x = np.arange(len(groups))
    for ax, gap, title in zip(
        axes,
        ("approximation_gap", "amortisation_gap"),
        ("approximation gap  log p(x) − L[q*]", "amortisation gap  L[q*] − L[q]"),
        strict=True,
    ):
        for i, vae in enumerate(vaes):
            cells = {**table[vae]["by_class"], **table[vae]["off"]}
            means = [cells[g][gap]["mean"] if g in cells else None for g in groups]
            errors = [cells[g][gap]["se"] if g in cells else None for g in groups]
            ax.bar(
                x + (i - (len(vaes) - 1) / 2) * width,
                [np.nan if m is None else m for m in means],
                width,
                yerr=[0 if e is None else e for e in errors],
                capsize=2,
                label=vae,
            )
        ax.set_ylabel("nats")
        ax.set_title(title, fontsize=10)
        ax.axvline(len(first["by_class"]) - 0.5, color="grey", lw=0.8, ls="--")
    axes[0].legend(fontsize=8)
    axes[-1].set_xticks(x, groups, rotation=35, ha="right", fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)
