"""Figures of the strip world: episodes drawn like the post's, and the Bayes nets."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pyro
import torch
from matplotlib.patches import Circle

from pyro_latent.plotting import save_figure

# By symbol name: the caller says which code is which (the strip world's ``SYMBOLS``).
COLOURS = {"blue": "#1f5fbf", "red": "#d62728"}


def draw_episode(ax, frames: torch.Tensor, symbols, title: str = "") -> None:
    """Rows are time steps (top to bottom), cells are circles in the colour they show;
    ``symbols[code]`` names each code of ``frames`` (e.g. ``("blank", "blue", "red")``)."""
    T, n = frames.shape
    for t in range(T):
        for k in range(n):
            symbol = symbols[int(frames[t, k])]
            y = T - 1 - t
            ax.add_patch(Circle((k, y), 0.42, fill=False, lw=0.6, ec="0.75"))
            if symbol in COLOURS:
                ax.add_patch(Circle((k, y), 0.38, color=COLOURS[symbol]))
    ax.set_xlim(-0.6, n - 0.4)
    ax.set_ylim(-0.6, T - 0.4)
    ax.set_aspect("equal")
    ax.set_xticks(range(n))
    ax.set_yticks(range(T))
    ax.set_yticklabels([str(T - 1 - y) for y in range(T)])
    ax.set_xlabel("cell")
    ax.set_ylabel("time step")
    ax.set_title(title, fontsize=10)
    for side in ("top", "right", "left", "bottom"):
        ax.spines[side].set_visible(False)


def plot_episodes(path: Path, panels: list[tuple[torch.Tensor, str]], symbols) -> Path:
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 5.2), squeeze=False)
    for ax, (frames, title) in zip(axes[0], panels, strict=True):
        draw_episode(ax, frames, symbols, title)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_bayes_net(path: Path, program, model_args: tuple) -> Path:
    """Draw a Pyro program's graph with :func:`pyro.render_model` (needs Graphviz's ``dot``)."""
    graph = pyro.render_model(program, model_args=model_args, render_distributions=False)
    graph.attr(rankdir="LR", dpi="110")
    path = Path(path)
    graph.render(path.with_suffix(""), format="png", cleanup=True)
    return path
