"""Figures of the ``coordinate_free`` experiment: what VAE latent spaces share without coordinates.

* :func:`plot_jacobian_spectra`: singular values of each decoder's Jacobian ``∂decode/∂z``, and
  the effective rank of each encoder layer-to-layer Jacobian;
* :func:`plot_level_set_trees`: two level-set (cluster) trees side by side, nodes coloured by
  class composition, matched nodes joined across the panels;
* :func:`plot_unpaired_vs_paired`: latent R² of translators fitted on paired codes against
  those fitted without pairs (level-set tree matching, Gromov–Wasserstein).

Inputs may come straight from JSON: dict keys may be strings (``"100"``) and any number may be
``None``, which is skipped (or drawn as a gap).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import ConnectionPatch, Patch, Rectangle
from matplotlib.ticker import MaxNLocator

from pyro_latent.plotting import save_figure

R2_FLOOR = -1.0
PAIRED_COLOURS = {"procrustes": "tab:green", "affine": "tab:orange"}
TREE_COLOUR = "tab:red"
ALIGNED_COLOUR = "tab:green"
GW_CMAP = "Purples"
EDGE_COLOUR = "0.6"
BAR_HEIGHT = 0.28  # of a node's composition bar, in depth units


def _number(value) -> float:
    """A value as a float, ``nan`` where it is missing, not a number or not finite."""
    if value is None:
        return math.nan
    try:
        value = float(value)
    except (TypeError, ValueError):
        return math.nan
    return value if math.isfinite(value) else math.nan


def _numbers(values) -> np.ndarray:
    return np.array([_number(v) for v in (values or [])], dtype=float)


def _int(value, default: int | None = None) -> int | None:
    value = _number(value)
    return default if math.isnan(value) else int(value)


def _vae_colours(names: Sequence[str]) -> dict[str, object]:
    cmap = plt.get_cmap("tab10")
    return {name: cmap(i % 10) for i, name in enumerate(names)}


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


# --- Jacobian spectra ------------------------------------------------------------------------


def _plot_spectra(ax, spectra: Mapping, colours: Mapping) -> None:
    drawn = False
    for name, spectrum in spectra.items():
        spectrum = spectrum or {}
        median = _numbers(spectrum.get("median"))
        if median.size == 0:
            continue
        colour = colours[name]
        index = np.arange(1, median.size + 1)
        positive = np.where(median > 0, median, np.nan)
        active = _int(spectrum.get("active_units"))
        dim = _int(spectrum.get("latent_dim"))
        label = name if dim is None else f"{name} (d={dim})"
        ax.plot(index, positive, "o-", ms=3, color=colour, label=label)
        q25, q75 = _numbers(spectrum.get("q25")), _numbers(spectrum.get("q75"))
        if q25.size == median.size and q75.size == median.size:
            low = np.where(q25 > 0, q25, np.nan)
            high = np.where(q75 > 0, q75, np.nan)
            ok = np.isfinite(low) & np.isfinite(high)
            ax.fill_between(index, low, high, where=ok, color=colour, alpha=0.2, lw=0)
        if active is not None:
            ax.axvline(active + 0.5, color=colour, ls=":", lw=1.3)
        drawn = drawn or bool(np.isfinite(positive).any())
    if not drawn:
        _empty(ax, "no singular values")
        return
    ax.set_yscale("log")
    ax.set_xlabel("singular value index (dotted: active units)")
    ax.set_ylabel("singular value of ∂decode/∂z (median, IQR)")
    ax.set_title("decoder Jacobian spectra", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)


def _plot_layer_ranks(ax, layers: Mapping, colours: Mapping) -> None:
    per_vae = {}
    for name, entries in layers.items():
        rows = [e for e in (entries or []) if isinstance(e, Mapping)]
        rows = [e for e in rows if _int(e.get("block")) is not None]
        per_vae[name] = sorted(rows, key=lambda e: _int(e.get("block")))
    blocks = sorted({_int(e["block"]) for rows in per_vae.values() for e in rows})
    if not blocks:
        _empty(ax, "no encoder layers")
        return
    position = {b: i for i, b in enumerate(blocks)}
    tick_labels: dict[int, list[str]] = {b: [] for b in blocks}
    shift = 0.25 / max(len(per_vae), 1)
    ceilings: dict[tuple[int, int], None] = {}
    values = []
    for j, (name, rows) in enumerate(per_vae.items()):
        if not rows:
            continue
        x = np.array([position[_int(e["block"])] for e in rows], dtype=float)
        x += (j - (len(per_vae) - 1) / 2) * shift
        median = np.array([_number(e.get("rank_median")) for e in rows])
        q25 = np.array([_number(e.get("rank_q25")) for e in rows])
        q75 = np.array([_number(e.get("rank_q75")) for e in rows])
        err = np.nan_to_num(np.vstack([median - q25, q75 - median]), nan=0.0).clip(min=0.0)
        ax.errorbar(x, median, yerr=err, fmt="o-", ms=4, capsize=3, color=colours[name], label=name)
        values += [v for v in median if not math.isnan(v)]
        for xi, e in zip(x, rows, strict=True):
            d_in, d_out = _int(e.get("in")), _int(e.get("out"))
            label = f"{'?' if d_in is None else d_in}→{'?' if d_out is None else d_out}"
            block = _int(e["block"])
            if label not in tick_labels[block]:
                tick_labels[block].append(label)
            if d_in is not None and d_out is not None:
                ceilings[(round(xi * 1000), min(d_in, d_out))] = None
    for key in ceilings:
        ax.plot(key[0] / 1000, key[1], "_", color="0.4", ms=10, mew=1.5)
        values.append(key[1])
    if ceilings:
        ax.plot([], [], "_", color="0.4", ms=10, mew=1.5, label="min(in, out)")
    positive = [v for v in values if v > 0]
    if positive and max(positive) / min(positive) > 50:
        ax.set_yscale("log")
    ax.set_xticks(range(len(blocks)))
    ax.set_xticklabels(["\n".join(tick_labels[b]) or str(b) for b in blocks], fontsize=8)
    ax.set_xlabel("encoder block (in→out)")
    ax.set_ylabel("effective rank of layer Jacobian (median, IQR)")
    ax.set_title("encoder layer-to-layer Jacobians (tol 1e-2)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def plot_jacobian_spectra(path: Path, spectra: Mapping, layers: Mapping) -> Path:
    """Left: per VAE the median singular values of the decoder Jacobian against their index
    (log scale) with the inter-quartile band, and a dotted line at its count of active units.
    Right: the effective rank of each encoder block's Jacobian per VAE, quartiles as error bars,
    grey ticks at the largest rank the block's shape allows."""
    spectra, layers = spectra or {}, layers or {}
    names = list(dict.fromkeys([*spectra, *layers]))
    colours = _vae_colours(names)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12.0, 4.6))
    _plot_spectra(left, spectra, colours)
    _plot_layer_ranks(right, layers, colours)
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)


# --- level-set trees -------------------------------------------------------------------------


def _tree_layout(nodes: Sequence[Mapping]) -> dict[int, dict]:
    """Node id → ``{"x", "y", "node", "p", "leaf", "leaves"}``: leaves spaced evenly in
    depth-first order, an inner node above the mean x of its leaves (``leaves``), ``y`` its depth
    (given, else counted)."""
    by_id: dict[int, Mapping] = {}
    for node in nodes:
        node_id = _int(node.get("id"))
        if node_id is not None and node_id not in by_id:
            by_id[node_id] = node
    children: dict[int, list[int]] = {i: [] for i in by_id}
    roots = []
    for node_id, node in by_id.items():
        parent = _int(node.get("parent"))
        if parent is None or parent not in by_id or parent == node_id:
            roots.append(node_id)
        else:
            children[parent].append(node_id)

    layout: dict[int, dict] = {}
    next_leaf = 0

    def visit(root: int) -> None:
        nonlocal next_leaf
        # iterative post-order, so deep trees do not hit the recursion limit
        stack = [(root, None, 0, False)]
        while stack:
            node_id, parent, depth, expanded = stack.pop()
            if node_id in layout:
                continue
            kids = [c for c in children[node_id] if c not in layout]
            if not expanded and kids:
                stack.append((node_id, parent, depth, True))
                stack.extend((c, node_id, depth + 1, False) for c in reversed(kids))
                continue
            placed = [
                x
                for c in children[node_id]
                if layout.get(c, {}).get("p") == node_id
                for x in layout[c]["leaves"]
            ]
            if not placed:
                placed, next_leaf = [float(next_leaf)], next_leaf + 1
                leaf = True
            else:
                leaf = False
            given = _number(by_id[node_id].get("depth"))
            y = depth if math.isnan(given) else given
            layout[node_id] = {
                "x": float(np.mean(placed)),
                "y": y,
                "node": by_id[node_id],
                "p": parent,
                "leaf": leaf,
                "leaves": placed,
            }

    for root in roots:
        visit(root)
    for node_id in by_id:  # nodes on a cycle, unreachable from any root
        if node_id not in layout:
            visit(node_id)
    return layout


def _node_size(node: Mapping) -> float:
    size = _number(node.get("size"))
    return 1.0 if math.isnan(size) or size < 0 else size


def _size_scale(layouts: Sequence[Mapping[int, dict]]) -> float:
    """Bar width per square root of size, one for both trees: the root spans at most ~60% of
    the leaves and no two neighbouring bars in one row overlap."""
    sizes = [_node_size(info["node"]) for layout in layouts for info in layout.values()]
    n_leaves = max([sum(info["leaf"] for info in lay.values()) for lay in layouts])
    widest = max(0.9, 0.6 * n_leaves)
    scale = widest / math.sqrt(max(max(sizes, default=1.0), 1e-12))
    for layout in layouts:
        rows: dict[float, list[tuple[float, float]]] = {}
        for info in layout.values():
            rows.setdefault(info["y"], []).append((info["x"], math.sqrt(_node_size(info["node"]))))
        for row in rows.values():
            row.sort()
            for (x1, r1), (x2, r2) in zip(row, row[1:], strict=False):
                if x2 - x1 > 1e-9 and r1 + r2 > 0:
                    scale = min(scale, 0.85 * 2 * (x2 - x1) / (r1 + r2))
    return scale


def _draw_tree(
    ax, layout: Mapping[int, dict], title: str, colours: Sequence, size_scale: float
) -> dict[int, tuple]:
    if not layout:
        ax.text(0.5, 0.5, "empty tree", ha="center", va="center", transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_title(title, fontsize=10)
        return {}
    for info in layout.values():
        if info["p"] is not None:
            parent = layout[info["p"]]
            elbow = info["y"] - (info["y"] - parent["y"]) / 2
            ax.plot(
                [parent["x"], parent["x"], info["x"], info["x"]],
                [parent["y"], elbow, elbow, info["y"]],
                color=EDGE_COLOUR,
                lw=1.0,
                zorder=1,
            )
    lows, highs = [], []
    for info in layout.values():
        width = max(size_scale * math.sqrt(_node_size(info["node"])), 0.05)
        counts = np.nan_to_num(_numbers(info["node"].get("composition")), nan=0.0).clip(min=0.0)
        left = info["x"] - width / 2
        lows.append(left)
        highs.append(left + width)
        bottom = info["y"] - BAR_HEIGHT / 2
        if counts.sum() <= 0:
            ax.add_patch(Rectangle((left, bottom), width, BAR_HEIGHT, color="0.75", zorder=2))
        else:
            for k, share in enumerate(counts / counts.sum() * width):
                if share > 0:
                    colour = colours[k % len(colours)]
                    ax.add_patch(
                        Rectangle((left, bottom), share, BAR_HEIGHT, color=colour, zorder=2)
                    )
                left += share
        ax.add_patch(
            Rectangle(
                (info["x"] - width / 2, bottom),
                width,
                BAR_HEIGHT,
                fill=False,
                ec="0.2",
                lw=0.5,
                zorder=3,
            )
        )
    ax.set_xlim(min(lows) - 0.5, max(highs) + 0.5)
    ax.set_xticks([])
    ax.set_title(f"{title} ({len(layout)} nodes)", fontsize=10)
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    return {node_id: (info["x"], info["y"]) for node_id, info in layout.items()}


def plot_level_set_trees(
    path: Path,
    left: Mapping,
    right: Mapping,
    matches: Sequence,
    classes: Sequence[str],
) -> Path:
    """Two level-set trees side by side, root at the top and one row per depth; each node a bar
    whose width grows with the square root of its size, split by its class composition; grey
    edges from parent to child, and dashed lines joining the nodes matched across the trees."""
    trees = (left or {}, right or {})
    colours = [plt.get_cmap("tab10")(k % 10) for k in range(max(len(classes), 10))]
    layouts = [_tree_layout(tree.get("nodes") or []) for tree in trees]
    size_scale = _size_scale(layouts)
    leaves = [sum(info["leaf"] for info in lay.values()) for lay in layouts]
    ys = [info["y"] for layout in layouts for info in layout.values()]
    top, bottom = min(ys, default=0.0), max(ys, default=1.0)

    width = min(max(8.0, 0.28 * sum(leaves) + 3.0), 26.0)
    height = min(max(3.6, 0.7 * (bottom - top) + 2.2), 14.0)
    fig, axes = plt.subplots(1, 2, figsize=(width, height), sharey=True)
    positions = [
        _draw_tree(ax, layout, str(tree.get("title") or ""), colours, size_scale)
        for ax, layout, tree in zip(axes, layouts, trees, strict=True)
    ]
    spans = [ax.get_xlim()[1] - ax.get_xlim()[0] for ax in axes]
    span = max((s for s, pos in zip(spans, positions, strict=True) if pos), default=1.0)
    for ax, pos in zip(axes, positions, strict=True):  # one x unit in both panels
        if pos:
            centre = sum(ax.get_xlim()) / 2
            ax.set_xlim(centre - span / 2, centre + span / 2)
    axes[0].set_ylim(bottom + 0.6, top - 0.6)  # the root at the top
    axes[0].set_ylabel("depth")
    levels = sorted(set(ys))
    if len(levels) <= 20:
        axes[0].set_yticks(levels)
    else:
        axes[0].yaxis.set_major_locator(MaxNLocator(integer=True))
    axes[1].set_ylabel("")
    handles = [Patch(color=colours[k], label=str(name)) for k, name in enumerate(classes)]
    legend_rows = math.ceil(len(handles) / 5) if handles else 0
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=5, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, (0.22 * legend_rows + 0.1) / height, 1, 1 - 0.3 / height))

    drawn = 0
    for pair in matches or []:
        try:
            a, b = (_int(v) for v in pair)
        except (TypeError, ValueError):
            continue
        if a not in positions[0] or b not in positions[1]:
            continue
        fig.add_artist(
            ConnectionPatch(
                xyA=positions[0][a],
                coordsA=axes[0].transData,
                xyB=positions[1][b],
                coordsB=axes[1].transData,
                color="tab:blue",
                ls="--",
                lw=0.7,
                alpha=0.6,
                zorder=4,
            )
        )
        drawn += 1
    fig.suptitle(f"level-set trees; dashed: {drawn} matched node pairs", fontsize=10, y=0.995)
    return save_figure(fig, path, dpi=110)


# --- unpaired versus paired ------------------------------------------------------------------


def plot_unpaired_vs_paired(path: Path, rows: Sequence[Mapping]) -> Path:
    """Latent R² (variance-weighted, held-out test codes) per pair of VAEs: translators fitted
    on paired codes (Procrustes, affine) against unpaired ones (level-set tree matching and
    Gromov–Wasserstein at each sample size, in shades of purple, and the aligned translator whose
    setting the unpaired transport cost chose); the axis stops at -1 and ``▼`` marks the bars
    cut off there."""
    rows = list(rows or [])
    sizes = sorted(
        {str(k) for r in rows for k in (r.get("gw") or {})},
        key=lambda k: (_number(k) if not math.isnan(_number(k)) else math.inf, k),
    )
    paired = list(
        dict.fromkeys(["procrustes", "affine", *(k for r in rows for k in r.get("paired") or {})])
    )
    shades = plt.get_cmap(GW_CMAP)(np.linspace(0.45, 0.9, max(len(sizes), 1)))
    series = [
        (
            f"paired: {name}",
            PAIRED_COLOURS.get(name, "tab:gray"),
            lambda r, n=name: (r.get("paired") or {}).get(n),
        )
        for name in paired
    ]
    series.append(("unpaired: level-set tree", TREE_COLOUR, lambda r: r.get("tree")))
    for size, shade in zip(sizes, shades, strict=False):
        series.append(
            (
                f"unpaired: Gromov–Wasserstein, n={size}",
                shade,
                lambda r, s=size: {str(k): v for k, v in (r.get("gw") or {}).items()}.get(s),
            )
        )
    series.append(
        (
            "unpaired: aligned, setting chosen without pairs",
            ALIGNED_COLOUR,
            lambda r: (r.get("selected") or {}).get("r2"),
        )
    )

    fig, ax = plt.subplots(
        figsize=(min(max(7.0, 0.22 * len(rows) * max(len(series), 1) + 4.0), 24.0), 4.8)
    )
    if not rows:
        _empty(ax, "no pairs")
        return save_figure(fig, path, dpi=110)
    x = np.arange(len(rows))
    width = 0.8 / len(series)
    lows = []
    for i, (label, colour, get) in enumerate(series):
        values = np.array([_number(get(r)) for r in rows])
        if np.isnan(values).all():
            continue
        offset = x - 0.4 + width * (i + 0.5)
        ax.bar(offset, values, width, color=colour, label=label)
        clipped = values < R2_FLOOR
        ax.plot(
            offset[clipped],
            np.full(clipped.sum(), R2_FLOOR + 0.04),
            "v",
            color=colour,
            ms=6,
            mec="black",
            mew=0.5,
        )
        lows += [v for v in values if not math.isnan(v)]
    ax.set_ylim(max(R2_FLOOR, min(lows, default=0.0) - 0.05), 1.02)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(x)
    ax.set_xticklabels(
        [str(r.get("pair", i)) for i, r in enumerate(rows)], rotation=25, ha="right", fontsize=8
    )
    ax.set_ylabel(f"latent R², variance-weighted (clipped at {R2_FLOOR:g})", fontsize=9)
    ax.set_title("paired versus unpaired translators (held-out test codes)", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)
