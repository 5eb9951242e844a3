"""Figures of concept transfer between the strip world's two models."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import ListedColormap
from matplotlib.ticker import MaxNLocator

from pyro_latent.plotting import save_figure

# one colour per local code: empty, red, blue←, red+blue←, blue→, red+blue→
CODE_COLOURS = ["#f2f2f2", "#d62728", "#9ecae1", "#8c6bb1", "#1f5fbf", "#54278f"]
MAIN_CONCEPTS = ("blue_velocity", "red_location", "blue_location", "red_hidden")
LEARNER_STYLE = {"tree": "-", "mlp": "--", "logistic": ":"}


def plot_translation_matrix(path: Path, matrix: torch.Tensor, world, title: str) -> Path:
    """Heatmap of ``p(l₂ | l₁)`` over the valid states, ticks at each new blue position."""
    fig, ax = plt.subplots(figsize=(6.2, 5.4))
    image = ax.imshow(matrix.numpy(), cmap="magma", vmin=0, vmax=1, interpolation="nearest")
    states = world.valid_states()
    starts = [i for i in range(len(states)) if i == 0 or states[i, 0] != states[i - 1, 0]]
    ax.set_xticks(starts, [f"b={int(states[i, 0])}" for i in starts], rotation=90, fontsize=7)
    ax.set_yticks(starts, [f"b={int(states[i, 0])}" for i in starts], fontsize=7)
    ax.set_xlabel("model 2 latent l₂ (valid states, lexicographic (blue, red, velocity))")
    ax.set_ylabel("model 1 latent l₁")
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.046, label="p(l₂ | l₁)")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_identity_distance(path: Path, noise_free: dict, noisy: dict) -> Path:
    """Distance from the identity against the window length, without and with noise."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    Ts = sorted(int(t) for t in noise_free)
    axes[0].plot(Ts, [noise_free[t] for t in Ts], "o-", color="k")
    axes[0].set_xlabel("window T")
    axes[0].set_ylabel("mean TV(p(l₂ | l₁), δ) = 1 − mean diag")
    axes[0].set_title("ε = 0, n = 10", fontsize=10)
    for (n, eps), by_T in sorted(noisy.items()):
        Ts = sorted(int(t) for t in by_T)
        marker = {4: "o", 5: "s"}.get(n, "^")
        axes[1].plot(Ts, [by_T[t] for t in Ts], marker + "-", label=f"n = {n}, ε = {eps}")
    axes[1].set_xlabel("window T")
    axes[1].set_title("ε > 0 (exact enumeration of all 3^(nT) windows)", fontsize=10)
    axes[1].legend(fontsize=8)
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    return save_figure(fig, path)


def plot_monte_carlo(path: Path, sizes, tv, reference, slope: float) -> Path:
    """Total-variation distance of the Monte-Carlo rows to the exact ones, log-log."""
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.loglog(sizes, tv, "o-", label=f"Monte Carlo (slope {slope:.2f})")
    ax.loglog(sizes, reference, "k--", lw=1, label="E[TV] of an exact n-draw row (∝ 1/√n)")
    ax.set_xlabel("draws per source state n")
    ax.set_ylabel("mean TV to the exact p(l₂ | l₁)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return save_figure(fig, path)


def _mean_by(records, key_fields, value="accuracy"):
    table: dict[tuple, list[float]] = {}
    for r in records:
        table.setdefault(tuple(r[f] for f in key_fields), []).append(r[value])
    return {k: (float(np.mean(v)), float(np.min(v)), float(np.max(v))) for k, v in table.items()}


def plot_learning_curves(path: Path, curves: dict, value: str = "accuracy", log_y=False) -> Path:
    """One panel per (direction, learner); a line per concept: mean over seeds, band min–max."""
    directions = list(curves)
    learners = sorted({r["learner"] for rs in curves.values() for r in rs}, key=_learner_order)
    fig, axes = plt.subplots(
        len(directions),
        len(learners),
        figsize=(4 * len(learners), 3.3 * len(directions)),
        sharex=True,
        sharey=True,
        squeeze=False,
    )
    for i, direction in enumerate(directions):
        stats = _mean_by(curves[direction], ("concept", "learner", "size"), value)
        concepts = list(dict.fromkeys(r["concept"] for r in curves[direction]))
        for j, learner in enumerate(learners):
            ax = axes[i, j]
            for concept in concepts:
                sizes = sorted(s for (c, lr, s) in stats if c == concept and lr == learner)
                mean, low, high = (
                    np.array([stats[(concept, learner, s)][k] for s in sizes]) for k in range(3)
                )
                main = concept in MAIN_CONCEPTS
                line = ax.plot(
                    sizes,
                    mean,
                    lw=1.6 if main else 0.7,
                    alpha=1 if main else 0.45,
                    label=concept if main or concept == "cell_3" else None,
                    color=None if main else "0.5",
                )[0]
                if main:
                    ax.fill_between(sizes, low, high, color=line.get_color(), alpha=0.15)
            ax.set_xscale("log")
            if log_y:
                ax.set_yscale("log")
            ax.set_title(f"{direction}, {learner}", fontsize=10)
            ax.grid(alpha=0.3)
            if i == len(directions) - 1:
                ax.set_xlabel("training pairs")
            if j == 0:
                ax.set_ylabel(
                    value.replace("_", " ") + (" (all valid states)" if not log_y else "")
                )
    axes[0, 0].legend(fontsize=7, title="grey: cell_k; band: min–max over seeds", title_fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)


def _learner_order(name):
    return list(LEARNER_STYLE).index(name) if name in LEARNER_STYLE else 99


def plot_samples_to_accuracy(
    path: Path, table: dict, max_size: int, every: dict | None = None, by_seed: dict | None = None
) -> Path:
    """Grouped bars: samples needed for 99% accuracy, concept × direction, one panel per learner.

    ``table[direction][(concept, learner)]`` is a size or ``None`` (drawn hatched at the top):
    the bars use the mean-over-seeds rule.  ``every`` (same layout) adds a black dot at the size
    where every seed reaches 99%, and ``by_seed[direction][(concept, learner)]`` (a list of
    per-seed sizes) a vertical line over the seeds' range.
    """
    directions = list(table)
    concepts = list(dict.fromkeys(c for d in directions for (c, _) in table[d]))
    learners = sorted({lr for d in directions for (_, lr) in table[d]}, key=_learner_order)
    fig, axes = plt.subplots(len(learners), 1, figsize=(11, 2.6 * len(learners)), sharex=True)
    axes = np.atleast_1d(axes)
    x = np.arange(len(concepts))
    width = 0.8 / len(directions)
    top = max_size * 2

    def height(v):
        return top if v is None else v

    for ax, learner in zip(axes, learners, strict=True):
        for k, direction in enumerate(directions):
            values = [table[direction].get((c, learner)) for c in concepts]
            centres = x + (k - (len(directions) - 1) / 2) * width
            bars = ax.bar(centres, [height(v) for v in values], width, label=direction)
            for bar, v in zip(bars, values, strict=True):
                if v is None:
                    bar.set_hatch("//")
                    bar.set_alpha(0.4)
            if by_seed is not None:
                for centre, c in zip(centres, concepts, strict=True):
                    sizes = [height(v) for v in by_seed[direction].get((c, learner), [])]
                    if sizes:
                        ax.vlines(centre, min(sizes), max(sizes), color="0.2", lw=1.2)
            if every is not None:
                dots = [height(every[direction].get((c, learner))) for c in concepts]
                label = "every seed ≥ 99%" if k == 0 else None
                ax.scatter(centres, dots, s=10, color="k", zorder=3, label=label)
        ax.set_yscale("log")
        ax.set_ylabel("samples to 99%")
        ax.set_title(learner, fontsize=10)
        ax.axhline(max_size, color="k", lw=0.6, ls=":")
        ax.grid(alpha=0.3, axis="y")
    title = f"bars: mean over seeds ≥ 99%; line: per-seed range; hatched: not reached by {max_size}"
    axes[0].legend(fontsize=8, title=title, title_fontsize=7)
    axes[-1].set_xticks(x, concepts, rotation=45, ha="right", fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_velocity_identifier(path: Path, world, exact_invertible, exact_single) -> Path:
    """The transferred blue-velocity identifier on model 2's states.

    Left: every valid configuration (rows, coloured by cell code) sorted by the identifier, with
    ``P(right | l₂)`` through an invertible window and through a single frame.  Right:
    ``P(right | cell_i = code)`` over the valid states, i.e. which local patterns vote which way.
    """
    cells = world.to_local(world.valid_states())
    right_inv = exact_invertible[:, 1].numpy()
    right_one = exact_single[:, 1].numpy()
    order = np.lexsort((cells[:, :].numpy().argmax(-1), right_one, right_inv))
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 7), gridspec_kw={"width_ratios": [1.3, 1]})
    grid = np.concatenate([cells.numpy()[order], np.full((len(order), 1), -1)], axis=1).astype(
        float
    )
    grid[grid < 0] = np.nan
    ax.imshow(
        grid,
        cmap=ListedColormap(CODE_COLOURS),
        vmin=-0.5,
        vmax=5.5,
        aspect="auto",
        interpolation="nearest",
    )
    n = world.n_cells
    side = np.stack([right_inv[order], right_one[order]], 1)
    ax.imshow(
        side,
        cmap="coolwarm",
        vmin=0,
        vmax=1,
        aspect="auto",
        interpolation="nearest",
        extent=(n + 0.5, n + 2.5, len(order) - 0.5, -0.5),
    )
    ax.set_xlim(-0.5, n + 2.5)
    ax.set_xticks([*range(n), n + 1, n + 2], [*map(str, range(n)), "T*", "T=1"], fontsize=8)
    ax.set_xlabel("cell  |  P(right | l₂) through an invertible window (T*) and one frame (T=1)")
    ax.set_ylabel(f"the {len(order)} valid configurations of model 2")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in CODE_COLOURS]
    ax.legend(
        handles,
        [f"{i}: {s}" for i, s in enumerate(world.local_codes)],
        fontsize=7,
        loc="lower left",
        bbox_to_anchor=(0, 1.01),
        ncol=2,
    )
    votes = np.full((n, 6), np.nan)
    for i in range(n):
        for code in range(6):
            mask = (cells[:, i] == code).numpy()
            if mask.any():
                votes[i, code] = right_inv[mask].mean()
    image = ax2.imshow(votes, cmap="coolwarm", vmin=0, vmax=1, aspect="auto")
    for i in range(n):
        for code in range(6):
            if not np.isnan(votes[i, code]):
                ax2.text(code, i, f"{votes[i, code]:.2f}", ha="center", va="center", fontsize=7)
    ax2.set_xticks(range(6), [str(c) for c in range(6)])
    ax2.set_yticks(range(n))
    ax2.set_xlabel("code of cell i")
    ax2.set_ylabel("cell i")
    ax2.set_title("P(velocity = right | cell_i = code), invertible window", fontsize=9)
    fig.colorbar(image, ax=ax2, fraction=0.05, label="P(right)")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_noisy_distance(
    path: Path,
    curves: list[dict],
    threshold: float,
    noise_free: dict | None = None,
    n_cells: int = 10,
) -> Path:
    """Rao–Blackwellised distance from the identity against the window length, one line per ε,
    with ±1 standard-error bars; linear (left) and logarithmic (right) distance axes.

    ``curves``: ``[{"eps", "windows", "distance", "standard_error"}]``; ``noise_free``: the exact
    ``{T: distance}`` at ε = 0, drawn in black; ``threshold``: a dotted horizontal line."""
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 3.9))
    for ax, log in zip(axes, (False, True), strict=True):
        if noise_free:
            Ts = sorted(int(t) for t in noise_free)
            values = np.array([noise_free[t] for t in Ts], float)
            keep = values > 0 if log else np.ones_like(values, bool)
            ax.plot(np.array(Ts)[keep], values[keep], "k.-", lw=1, label="ε = 0 (exact)")
        for curve in curves:
            Ts = np.asarray(curve["windows"])
            d = np.asarray(curve["distance"], float)
            se = np.asarray(curve["standard_error"], float)
            keep = d > 0 if log else np.ones_like(d, bool)
            ax.errorbar(
                Ts[keep],
                d[keep],
                yerr=se[keep],
                fmt="o-",
                ms=3,
                capsize=2,
                label=f"ε = {curve['eps']}",
            )
        ax.axhline(threshold, color="0.4", ls=":", lw=1, label=f"distance {threshold:g}")
        ax.set_xlabel("window T")
        ax.grid(alpha=0.3, which="both")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if log:
            ax.set_yscale("log")
            ax.set_title("log scale (points at 0 omitted)", fontsize=10)
        else:
            ax.set_ylabel("1 − mean diag p(l₂ | l₁)  (± 1 s.e.)")
            ax.set_title(f"n = {n_cells}, Rao–Blackwellised, model 1 → model 2", fontsize=10)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)
