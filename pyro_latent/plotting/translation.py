"""Figures of the ``vae_translation`` experiment: translating codes between VAE latent spaces.

Six translators are compared, in a fixed order and colour: five fitted on paired codes
(``linear``, ``affine``, ``procrustes``, ``relative``, ``mlp``) and the design card's
decode-then-encode map ``formula``, which needs no paired data and is drawn in black (dashed
lines, hatched bars).  ``records`` below are the experiment's per-pair results, one dict per
ordered pair of VAEs (``pair``, ``src``, ``dst``, ``scores``, ``baseline``, ``cka``,
``sample_efficiency``, ``transfer``); dict keys that went through JSON (``k``, ``n``) may be
strings, and are read as integers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from pyro_latent.plotting import save_figure
from pyro_latent.plotting.vae import image_grid, scatter_latents

TRANSLATOR_COLOURS = {
    "linear": "tab:blue",
    "affine": "tab:orange",
    "procrustes": "tab:green",
    "relative": "tab:red",
    "mlp": "tab:purple",
    "formula": "black",
}
R2_FLOOR = -1.0
# (score key, axis label, baseline key or None, y-limits or None)
METRICS = (
    ("stitched_mse", "stitched MSE (lower is better)", "own_mse", None),
    ("r2_weighted", f"latent R², variance-weighted (axis clipped at {R2_FLOOR:g})", None, None),
    ("probe_accuracy", "probe accuracy on translated codes", "probe_accuracy", (0.0, 1.02)),
    ("mrr", "mean reciprocal rank", None, (0.0, 1.02)),
    ("jaccard", "neighbourhood Jaccard", None, (0.0, 1.02)),
)
CONCEPT_LABELS = {"height": "R² of shoe height", "class": "class accuracy"}
# Known translators come in this order, then any others as they come; the formula needs no fit.
TRANSLATORS = tuple(TRANSLATOR_COLOURS)
_EXTRA_COLOURS = ("tab:brown", "tab:pink", "tab:olive", "tab:cyan", "tab:gray")


def _ordered(names) -> list[str]:
    """The known translators first, in their fixed order, then any others as they come."""
    names = list(dict.fromkeys(names))
    return [n for n in TRANSLATORS if n in names] + [n for n in names if n not in TRANSLATORS]


def _colour(name: str) -> str:
    if name in TRANSLATOR_COLOURS:
        return TRANSLATOR_COLOURS[name]
    return _EXTRA_COLOURS[sum(map(ord, name)) % len(_EXTRA_COLOURS)]


def _number(value) -> float:
    """A score as a float, ``nan`` where it is missing or not finite."""
    if value is None:
        return math.nan
    value = float(value)
    return value if math.isfinite(value) else math.nan


def _int_keyed(mapping: Mapping) -> list[tuple[int, object]]:
    return sorted((int(k), v) for k, v in mapping.items())


def _grid(n: int, ncols: int, width: float, height: float):
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False)
    flat = axes.ravel()
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def plot_stitched(
    path: Path, originals: torch.Tensor, rows: Mapping[str, torch.Tensor], title: str
) -> Path:
    """Stitching: the test images on top, then one row per translator of the images VAE 2
    decodes from VAE 1's codes translated into its latent space."""
    n = originals.shape[0]
    all_rows = [("originals", originals)] + [(name, rows[name]) for name in _ordered(rows)]
    fig, axes = plt.subplots(len(all_rows), 1, figsize=(n * 0.6 + 1.0, 0.75 * len(all_rows) + 0.6))
    for ax, (label, images) in zip(np.atleast_1d(axes), all_rows, strict=True):
        ax.imshow(image_grid(torch.as_tensor(images), nrow=n), cmap="gray_r", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)


def plot_translator_metrics(path: Path, records: Sequence[dict]) -> Path:
    """Translators × metrics: one panel per metric, bars grouped by pair, one colour per
    translator; black ticks mark VAE 2's own reconstruction MSE and own-code probe accuracy,
    and ``▼`` marks R² bars cut off at the axis floor."""
    pairs = [r["pair"] for r in records]
    names = _ordered(name for r in records for name in r["scores"])
    x = np.arange(len(pairs))
    width = 0.8 / max(len(names), 1)
    fig, axes = plt.subplots(2, 3, figsize=(max(12.0, 1.3 * len(pairs) * 3), 8.5))
    flat = axes.ravel()
    for ax, (key, label, baseline, ylim) in zip(flat, METRICS, strict=False):
        for i, name in enumerate(names):
            values = np.array([_number(r["scores"].get(name, {}).get(key)) for r in records])
            offset = x - 0.4 + width * (i + 0.5)
            ax.bar(
                offset,
                values,
                width,
                color=_colour(name),
                edgecolor="white" if name == "formula" else None,
                hatch="//" if name == "formula" else None,
                label=name,
            )
            if key == "r2_weighted":
                clipped = values < R2_FLOOR
                ax.plot(
                    offset[clipped],
                    np.full(clipped.sum(), R2_FLOOR + 0.04),
                    "v",
                    color=_colour(name),
                    ms=5,
                    mec="white",
                )
        if baseline is not None:
            own = np.array([_number(r.get("baseline", {}).get(baseline)) for r in records])
            ax.hlines(own, x - 0.42, x + 0.42, colors="black", lw=2, label="VAE 2 on its own codes")
        if key == "r2_weighted":
            ax.set_ylim(max(R2_FLOOR, ax.get_ylim()[0]), 1.02)
            ax.axhline(0, color="gray", lw=0.8)
        elif ylim is not None:
            ax.set_ylim(*ylim)
        ax.set_xticks(x)
        ax.set_xticklabels(pairs, rotation=35, ha="right", fontsize=7)
        ax.set_ylabel(label, fontsize=9)
        ax.set_title(key, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    legend_ax = flat[len(METRICS)]
    handles, labels = flat[0].get_legend_handles_labels()
    legend_ax.axis("off")
    legend_ax.legend(handles, labels, loc="center", fontsize=10, title="translator")
    for ax in flat[len(METRICS) + 1 :]:
        ax.set_visible(False)
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)


def plot_sample_efficiency(path: Path, records: Sequence[dict]) -> Path:
    """Latent R² of each fitted translator against the number ``k`` of anchor pairs it was fitted
    on (log scale), one panel per pair; the dashed black line is the formula, which needs none."""
    fig, axes = _grid(len(records), 4, 4.2, 3.4)
    for ax, record in zip(axes, records, strict=True):
        lows = []
        curves = record.get("sample_efficiency", {})
        for name in _ordered(curves):
            points = [(k, _number(v)) for k, v in _int_keyed(curves[name])]
            ks = [k for k, _ in points]
            r2 = [v for _, v in points]
            lows += r2
            ax.plot(ks, r2, "o-", ms=3, color=_colour(name), label=name)
        formula = _number(record["scores"].get("formula", {}).get("r2_weighted"))
        if not math.isnan(formula):
            lows.append(formula)
            ax.axhline(
                formula,
                color="black",
                ls="--",
                lw=1.2,
                label=f"formula (no pairs): {formula:.2f}",
            )
        finite = [v for v in lows if not math.isnan(v)]
        low = min(finite, default=0.0)
        ax.set_ylim(max(R2_FLOOR, low - 0.05), 1.02)
        ax.set_xscale("log")
        ax.set_xlabel("anchor pairs k")
        ax.set_ylabel(f"weighted latent R² (clipped at {R2_FLOOR:g})", fontsize=8)
        ax.set_title(record["pair"], fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)


def plot_translated_2d(path: Path, scatter: Mapping, classes: Sequence[str]) -> Path:
    """Between two 2-D VAEs: VAE 2's own test codes coloured by class, then one panel per
    translator with VAE 1's codes translated into VAE 2's plane, coloured by class, over VAE 2's
    codes in light grey; the same axis limits throughout."""
    src, dst = scatter["pair"]
    target = np.asarray(scatter["target"], dtype=float)
    labels = np.asarray(scatter["labels"])
    translated = {
        n: np.asarray(scatter["translated"][n], dtype=float)
        for n in _ordered(scatter["translated"])
    }
    stacked = np.concatenate([target, *translated.values()])
    stacked = stacked[np.isfinite(stacked).all(axis=1)]
    lo = np.quantile(stacked, 0.005, axis=0)
    hi = np.quantile(stacked, 0.995, axis=0)
    pad = 0.05 * np.maximum(hi - lo, 1e-6)
    lo, hi = lo - pad, hi + pad

    fig, axes = _grid(1 + len(translated), 4, 4.6, 4.3)
    label_tensor = torch.as_tensor(labels)
    scatter_latents(
        axes[0], torch.as_tensor(target), label_tensor, classes, f"{dst}: its own codes"
    )
    for ax, (name, codes) in zip(axes[1:], translated.items(), strict=True):
        ax.scatter(target[:, 0], target[:, 1], s=2, color="0.85", rasterized=True)
        scatter_latents(ax, torch.as_tensor(codes), label_tensor, classes, f"{name}: {src} → {dst}")
        ax.get_legend().remove()
    for ax in axes:
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)


def _method_style(name: str) -> dict:
    if name == "formula":
        return {"color": "black", "ls": "--"}
    if name.startswith("translator (") and name.endswith(")"):
        return {"color": _colour(name[len("translator (") : -1]), "ls": "-"}
    if name == "posterior mapping (image means)":
        return {"color": "tab:green", "ls": "-."}
    if name.startswith("posterior mapping"):
        colour = "tab:brown" if "guide" in name else "tab:pink"
        return {"color": colour, "ls": ":" if "guide" in name else "-."}
    return {"color": _colour(name), "ls": (0, (3, 1, 1, 1))}


def plot_concept_transfer(path: Path, records: Sequence[dict]) -> Path:
    """Concept transfer from VAE 2 to VAE 1: rows are concepts (shoe height, class), columns are
    pairs; in each panel the score of learning the concept directly in VAE 1 against the number
    of labelled samples (mean ± sd, log scale) and one horizontal line per transfer method."""
    known = [c for c in CONCEPT_LABELS if any(c in r.get("transfer", {}) for r in records)]
    concepts = list(dict.fromkeys([*known, *(c for r in records for c in r.get("transfer", {}))]))
    height = 3.2 * len(concepts) + 0.9  # 0.9 in for the legend
    fig, axes = plt.subplots(
        len(concepts),
        len(records),
        figsize=(3.6 * len(records), height),
        squeeze=False,
    )
    legend: dict[str, object] = {}
    for row, concept in zip(axes, concepts, strict=True):
        for ax, record in zip(row, records, strict=True):
            result = record.get("transfer", {}).get(concept)
            if result is None:
                ax.set_visible(False)
                continue
            sds = {int(k): _number(v) for k, v in result.get("direct_sd", {}).items()}
            points = [(n, _number(m)) for n, m in _int_keyed(result.get("direct", {}))]
            points = [(n, m) for n, m in points if not math.isnan(m)]
            values = [m for _, m in points]
            if points:
                ns = np.array([n for n, _ in points])
                means = np.array(values)
                sd = np.array([sds.get(n, math.nan) for n in ns])
                sd = np.where(np.isnan(sd), 0.0, sd)
                (line,) = ax.plot(ns, means, "o-", ms=3, color="0.3")
                band = ax.fill_between(ns, means - sd, means + sd, color="0.3", alpha=0.2, lw=0)
                legend.setdefault("learned directly in VAE 1 (mean ± sd)", (line, band))
                ax.set_xscale("log")
            for method, score in result.get("transfer", {}).items():
                score = _number(score)
                if math.isnan(score):
                    continue
                values.append(score)
                line = ax.axhline(score, lw=1.5, **_method_style(method))
                legend.setdefault(method, line)
            if concept == "class":
                ax.set_ylim(0, 1.02)
            else:
                low = min(values, default=0.0)
                ax.set_ylim(max(R2_FLOOR, low - 0.05), 1.02)
            bottom = ax.get_ylim()[0]
            for method, score in result.get("transfer", {}).items():
                if _number(score) < bottom:  # off the axis: a marker at the floor, its value
                    style = _method_style(method)
                    ax.annotate(
                        f"{_number(score):.1f}",
                        (0.97, bottom),
                        xycoords=("axes fraction", "data"),
                        xytext=(0, 4 + 9 * len(ax.texts)),
                        textcoords="offset points",
                        ha="right",
                        fontsize=6,
                        color=style.get("color", "k"),
                    )
            ax.set_xlabel("labelled samples in VAE 1")
            ax.set_ylabel(CONCEPT_LABELS.get(concept, concept), fontsize=9)
            n_test = result.get("n_test")
            suffix = f" (n_test={n_test})" if n_test else ""
            ax.set_title(f"{record['pair']}{suffix}", fontsize=9)
            ax.grid(alpha=0.3)
    legend_rows = math.ceil(len(legend) / 4)
    if legend:
        fig.legend(
            list(legend.values()),
            list(legend),
            loc="lower center",
            ncol=min(len(legend), 4),
            fontsize=8,
            frameon=False,
        )
    fig.tight_layout(rect=(0, (0.25 * legend_rows + 0.1) / height, 1, 1))
    return save_figure(fig, path, dpi=110)
