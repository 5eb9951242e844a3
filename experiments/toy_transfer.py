"""Concept transfer between the two toy world models (issue #3).

Exact posterior translation ``p(l₂ | l₁)``, the invertible-case formula, the Monte-Carlo estimate,
learned identifiers against the exact transfer, the samples-to-99% table and ``set_concept``.

Run alone with ``python experiments/toy_transfer.py [--quick] [--seed N]``.
"""

from __future__ import annotations

import math
import re
import time

import numpy as np
import torch
from sklearn.tree import export_text
from tqdm import tqdm

from pyro_latent.plotting.transfer import (
    save_identity_distance,
    save_learning_curves,
    save_monte_carlo,
    save_samples_to_accuracy,
    save_translation_matrix,
    save_velocity_identifier,
)
from pyro_latent import cli
from pyro_latent.study import Context, experiment
from pyro_latent.toy import LocalStateModel, ObjectCentricModel, StripWorld
from pyro_latent.concepts.registry import concept_names, get_concept
from pyro_latent.concepts.edits import edit_agreement
from pyro_latent.translate.identifiers import (
    fit_from_counts,
    latent_features,
    learning_curve,
    make_learner,
    samples_to_accuracy,
    samples_to_accuracy_by_seed,
    transfer_data,
)
from pyro_latent.translate.exact import (
    DEFAULT_MAX_WINDOWS,
    distance_from_identity,
    expected_tv,
    invertible_formula,
    latent_index,
    loglog_slope,
    monte_carlo_translation,
    smallest_invertible_window,
    state_space,
    transfer_concept,
    translation_matrix,
)

N_CELLS = 10
LEARNERS = ("tree", "mlp", "logistic")
NUM_STATES = StripWorld(N_CELLS).num_states
QUICK_CONCEPTS = ["blue_velocity", "red_location", "blue_location", "red_hidden", "cell_3"]
DIRECTIONS = {"1→2": (0, 1), "2→1": (1, 0)}
EDIT_HEAD = (
    "| ε | k | concept | edits | no-op | impossible | one model only | disagreements "
    "| same latent | unique match |\n" + "|---" * 10 + "|"
)


def profile(quick: bool) -> dict:
    if quick:
        return {
            "noisy": {0.1: {4: 3, 5: 2}},
            "mc_draws": 10_000,
            "sizes": [10, 100, 1000, 10_000],
            "single_sizes": [10, 100, 1000],
            "seeds": 2,
            "concepts": QUICK_CONCEPTS,
        }
    return {
        "noisy": {eps: {4: 4, 5: 3, 6: 2} for eps in (0.05, 0.1, 0.2)},
        "mc_draws": 100_000,
        "sizes": sorted({int(round(x)) for x in np.logspace(1, 4, 10)}),
        "single_sizes": [10, 100, 1000, 10_000],
        "seeds": 3,
        "concepts": None,  # every concept
    }


# ------------------------------------------------------------------------- sections
def exact_noise_free(ctx, world, m1, m2):
    T_star = smallest_invertible_window(m1, m2)
    T_back = smallest_invertible_window(m2, m1)
    distance = {}
    for T in range(1, T_star + 2):
        distance[T] = distance_from_identity(translation_matrix(m1, m2, T))
    single = translation_matrix(m1, m2, 1)
    frames = world.render(world.valid_states())
    same = (frames[:, None] == frames[None]).all(-1).double()
    closed = same / same.sum(-1, keepdim=True)
    block_sizes = same.sum(-1)
    for T in (1, 3):
        save_translation_matrix(
            ctx.figure(f"translation_matrix_T{T}.png"),
            translation_matrix(m1, m2, T),
            world,
            f"p(l₂ | l₁) through a window of T = {T} frames (n = {N_CELLS}, ε = 0)",
        )
    identity_T_star = torch.equal(
        translation_matrix(m1, m2, T_star), torch.eye(world.num_states, dtype=torch.float64)
    )
    t3 = translation_matrix(m1, m2, 3)
    ambiguous = t3.diagonal() < 1
    states = world.valid_states()
    hidden = get_concept("red_hidden")(m1, states) == 1
    by_n = {}
    for n in range(4, 13):
        small = StripWorld(n)
        by_n[n] = smallest_invertible_window(ObjectCentricModel(small), LocalStateModel(small))
    return {
        "smallest_invertible_window": T_star,
        "smallest_invertible_window_by_n": by_n,
        "smallest_invertible_window_2to1": T_back,
        "identity_at_T_star": identity_T_star,
        "distance_from_identity": distance,
        "T1_max_abs_diff_to_closed_form": float((single - closed).abs().max()),
        "T1_states_with_unique_frame": int((block_sizes == 1).sum()),
        "T1_largest_frame_class": int(block_sizes.max()),
        "states_ambiguous_at_T3": int(ambiguous.sum()),
        "T3_ambiguous_all_red_hidden": bool(hidden[ambiguous].all()),
        "T3_ambiguous_moving_right": int((states[ambiguous, 2] == 1).sum()),
        "T3_ambiguous_bounced_at_right_wall": int(
            ((states[ambiguous, 0] == world.n_cells - 2) & (states[ambiguous, 2] == 0)).sum()
        ),
    }


def exact_noisy(cfg):
    out, seconds = {}, {}
    for eps, windows in cfg["noisy"].items():
        for n, T_max in windows.items():
            world = StripWorld(n)
            m1, m2 = ObjectCentricModel(world, eps), LocalStateModel(world, eps)
            by_T = {}
            for T in range(1, T_max + 1):
                start = time.perf_counter()
                by_T[T] = distance_from_identity(translation_matrix(m1, m2, T, progress=True))
                seconds[f"n={n},eps={eps},T={T}"] = round(time.perf_counter() - start, 2)
            out[(n, eps)] = by_T
    return out, seconds


def monte_carlo(ctx, cfg, seed):
    world = StripWorld(4)
    eps, T = 0.1, 2
    m1, m2 = ObjectCentricModel(world, eps), LocalStateModel(world, eps)
    exact = translation_matrix(m1, m2, T)
    mc = monte_carlo_translation(m1, m2, T, cfg["mc_draws"], seed=seed, progress=True)
    sizes = [int(s) for s in np.logspace(1, math.log10(cfg["mc_draws"]), 9)]
    tv = [mc.tv_to(exact, s) for s in sizes]
    reference = [expected_tv(exact, s) for s in sizes]
    slope = loglog_slope(sizes, tv)
    save_monte_carlo(ctx.figure("toy_transfer_monte_carlo.png"), sizes, tv, reference, slope)
    labels = [str(tuple(s)) for s in world.valid_states().tolist()]
    idata = mc.to_inference_data(labels)
    path = ctx.results_dir / "toy_transfer_mc.nc"
    ctx.results_dir.mkdir(parents=True, exist_ok=True)
    idata.to_netcdf(str(path), engine="h5netcdf")
    ctx.written.append(path)
    return {
        "n_cells": 4,
        "obs_noise": eps,
        "window": T,
        "draws": sizes,
        "mean_tv": tv,
        "expected_tv_exact_sampler": reference,
        "loglog_slope": slope,
        "tv_over_reference": [t / r for t, r in zip(tv, reference, strict=True)],
        "inference_data": path.name,
    }


def formula_checks(world, m1, m2, T_star, names):
    out = {}
    for T in (1, T_star):
        rows = {}
        for name in tqdm(names, desc=f"formula T={T}", leave=False):
            check = invertible_formula(name, m1, m2, T)
            broken = check.broken
            rows[name] = {
                "broken_states": int(broken.sum()),
                "mean_gap": float(check.gap.mean()),
                "max_gap": float(check.gap.max()),
                "roundtrip_failures": int((~check.roundtrip).sum()),
                "examples": [
                    "".join(map(str, cells))
                    for cells in world.to_local(world.valid_states()[broken][:3]).tolist()
                ],
            }
        out[T] = rows
    return out


def identifiers(models, T_star, cfg, names, seed):
    seeds = [seed + k for k in range(cfg["seeds"])]
    curves, single = {}, {}
    for direction, (i, j) in DIRECTIONS.items():
        src, dst = models[i], models[j]
        curves[direction] = learning_curve(
            src, dst, T_star, names, cfg["sizes"], seeds, progress=True, label=f"{direction} T*"
        )
        single[direction] = learning_curve(
            src,
            dst,
            1,
            names,
            cfg["single_sizes"],
            seeds,
            decode="sample",
            progress=True,
            label=f"{direction} T=1",
        )
    table = {
        "mean": {d: samples_to_accuracy(r, rule="mean") for d, r in curves.items()},
        "every": {d: samples_to_accuracy(r, rule="every") for d, r in curves.items()},
        "by_seed": {d: samples_to_accuracy_by_seed(r) for d, r in curves.items()},
    }
    return curves, single, table


def velocity_facts(world, m2, exact_invertible, exact_single) -> dict:
    """Check the transferred velocity identifier against the post's rule on every state."""
    cells = world.to_local(world.valid_states())
    rule = ((cells == 4) | (cells == 5)).any(-1).long()
    sure = exact_invertible.max(-1).values == 1
    agree = (exact_invertible.argmax(-1) == rule) & sure
    half = exact_single[:, 1] == 0.5
    b = world.valid_states()[:, 0]
    off_wall = (b != 0) & (b != world.n_cells - 2)
    right = exact_invertible[:, 1]
    p_right = {
        i: {code: float(right[cells[:, i] == code].mean()) for code in (0, 1)}
        for i in range(world.n_cells)
    }
    return {
        "rule_agreement": int(agree.sum()),
        "sure_states": int(sure.sum()),
        "half_states": int(half.sum()),
        "half_iff_off_wall": bool(torch.equal(half, off_wall)),
        "wall_states_certain_at_T1": bool((exact_single[~off_wall].max(-1).values == 1).all()),
        "p_right_given_blank_or_red": p_right,
    }


def velocity_tree_rules(m1, m2, T_star, seed):
    """The post's decision tree for blue velocity on model 2's latent, fitted on 10⁴ pairs."""
    data = transfer_data(m1, m2, T_star, 10_000, ["blue_velocity"], seed=seed)
    space = state_space(m2)
    features = latent_features(m2, space.latents)
    index = latent_index(m2, data.dst_latents).numpy()
    counts = np.zeros((len(features), 2), int)
    np.add.at(counts, (index, data.labels["blue_velocity"]), 1)
    tree = fit_from_counts(make_learner("tree", seed), features, counts)
    names = [f"cell{i}=={c}" for i in range(m2.n_cells) for c in range(6)]
    text = export_text(tree, feature_names=names, class_names=["left", "right"], max_depth=4)
    codes = sorted({int(c) for c in re.findall(r"cell\d+==(\d)", text)})
    return {"text": text, "codes_in_top_splits": codes, "depth": int(tree.get_depth())}


def edits(world, T_star, names):
    out = {}
    for eps in (0.0, 0.1):
        m1, m2 = ObjectCentricModel(world, eps), LocalStateModel(world, eps)
        for steps in (3, T_star - 1):
            for name in names:
                result = edit_agreement(m1, m2, name, steps)
                out[f"eps={eps},steps={steps},{name}"] = vars(result) | {"agree": result.agree}
    return out


# ------------------------------------------------------------------------- the experiment
@experiment("toy_transfer", title="Concept transfer between the two toy world models", order=20)
def run(ctx: Context) -> str:
    torch.set_num_threads(1)  # tiny tensors: one thread is faster and leaves the other core free
    cfg = profile(ctx.quick)
    world = StripWorld(N_CELLS)
    m1, m2 = ObjectCentricModel(world), LocalStateModel(world)
    names = cfg["concepts"] or concept_names(world)
    timing = {}

    start = time.perf_counter()
    noise_free = exact_noise_free(ctx, world, m1, m2)
    T_star = noise_free["smallest_invertible_window"]
    noisy, noisy_seconds = exact_noisy(cfg)
    save_identity_distance(
        ctx.figure("toy_transfer_identity_distance.png"),
        noise_free["distance_from_identity"],
        noisy,
    )
    timing["exact"] = time.perf_counter() - start

    start = time.perf_counter()
    mc = monte_carlo(ctx, cfg, ctx.seed)
    timing["monte_carlo"] = time.perf_counter() - start

    start = time.perf_counter()
    formula = formula_checks(world, m1, m2, T_star, names)
    exact_inv = transfer_concept("blue_velocity", m1, m2, T_star)
    exact_one = transfer_concept("blue_velocity", m1, m2, 1)
    save_velocity_identifier(ctx.figure("toy_velocity_identifier.png"), world, exact_inv, exact_one)
    velocity = velocity_facts(world, m2, exact_inv, exact_one)
    velocity["tree"] = velocity_tree_rules(m1, m2, T_star, ctx.seed)
    timing["formula"] = time.perf_counter() - start

    start = time.perf_counter()
    curves, single, table = identifiers((m1, m2), T_star, cfg, names, ctx.seed)
    save_learning_curves(ctx.figure("toy_identifier_learning_curves.png"), curves)
    save_learning_curves(
        ctx.figure("toy_identifier_logloss_T1.png"), single, value="log_loss_gap", log_y=True
    )
    save_samples_to_accuracy(
        ctx.figure("toy_samples_to_99.png"),
        table["mean"],
        max(cfg["sizes"]),
        every=table["every"],
        by_seed=table["by_seed"],
    )
    timing["identifiers"] = time.perf_counter() - start

    start = time.perf_counter()
    edit_names = ["blue_velocity", "red_location", "blue_location"]
    edit_results = edits(world, T_star, edit_names)
    timing["edits"] = time.perf_counter() - start

    ctx.save_json(
        {
            "n_cells": N_CELLS,
            "noise_free": noise_free,
            "noisy_distance_from_identity": {f"n={n},eps={e}": v for (n, e), v in noisy.items()},
            "noisy_seconds": noisy_seconds,
            "monte_carlo": mc,
            "formula": formula,
            "samples_to_99": {
                rule: {d: {f"{c}|{lr}": v for (c, lr), v in t.items()} for d, t in by_d.items()}
                for rule, by_d in table.items()
            },
            "learning_curves": curves,
            "single_frame_log_loss": single,
            "velocity_identifier": velocity,
            "edits": edit_results,
            "profile": {k: v for k, v in cfg.items() if k != "noisy"},
            "seconds": timing,
        }
    )
    return report(
        ctx,
        cfg,
        names,
        noise_free,
        noisy,
        mc,
        formula,
        velocity,
        curves,
        single,
        table,
        edit_results,
    )


# ------------------------------------------------------------------------- the report
def _fmt_size(v, top):
    return f"> {top:,}" if v is None else f"{v:,}"


def _spread(values, top):
    """Per-seed sizes as ``lo–hi`` (``> top`` for a seed that never got there)."""
    if not values:
        return "–"
    reached = [v for v in values if v is not None]
    lo = _fmt_size(min(reached) if reached else None, top)
    hi = _fmt_size(None if None in values else max(reached), top)
    return lo if lo == hi else f"{lo}–{hi}"


def _table_md(table, names, top):
    mean, every, by_seed = table["mean"], table["every"], table["by_seed"]
    head = "| concept | " + " | ".join(f"{d} {lr}" for d in mean for lr in LEARNERS) + " |"
    sep = "|---" * (1 + len(mean) * len(LEARNERS)) + "|"
    rows = []
    for c in names:
        cells = []
        for d in mean:
            for lr in LEARNERS:
                m = _fmt_size(mean[d].get((c, lr)), top)
                e = _fmt_size(every[d].get((c, lr)), top)
                cells.append(f"{m} / {e} ({_spread(by_seed[d].get((c, lr), []), top)})")
        rows.append(f"| {c} | " + " | ".join(cells) + " |")
    return "\n".join([head, sep, *rows])


def _median_needed(table, concepts, learner, top):
    values = [table.get((c, learner)) for c in concepts]
    values = [top * 10 if v is None else v for v in values]
    return float(np.median(values)) if values else float("nan")


def _rule_verdict(table, objects, cells, top, step):
    """Median rows and the learners for which each half of the hypothesis holds; ratios of at
    most one step of the size grid (``step``) are marked as such."""
    lines, objects_native, cells_native = [], [], []
    for learner in LEARNERS:
        o12 = _median_needed(table["1→2"], objects, learner, top)
        o21 = _median_needed(table["2→1"], objects, learner, top)
        c12 = _median_needed(table["1→2"], cells, learner, top)
        c21 = _median_needed(table["2→1"], cells, learner, top)
        lines.append(f"{learner} | {o12:,.0f} | {o21:,.0f} | {c12:,.0f} | {c21:,.0f}")
        for ratio, bucket in ((o12 / o21, objects_native), (c21 / c12, cells_native)):
            if ratio > 1:
                note = ", ≤ one grid step" if ratio <= step * 1.01 else ""
                bucket.append((learner, f"{learner} ({ratio:.1f}×{note})", ratio > step * 1.01))
    return lines, objects_native, cells_native


def _big_learners(verdicts, half) -> str:
    """Learners whose advantage exceeds one grid step, under each rule."""
    parts = []
    for rule, label in (("mean", "mean rule"), ("every", "every-seed rule")):
        names = [learner for learner, _, big in verdicts[rule][half] if big]
        parts.append(f"{', '.join(names) or 'no learner'} ({label})")
    return " and ".join(parts)


def _abstraction_paragraph(table, names, top, sizes, T_star):
    objects = [c for c in names if not c.startswith("cell_")]
    cells = [c for c in names if c.startswith("cell_")]
    step = float(np.exp(np.mean(np.diff(np.log(sorted(sizes))))))
    rows, verdicts = [], {}
    for rule, label in (("mean", "mean of seeds"), ("every", "every seed")):
        lines, o_native, c_native = _rule_verdict(table[rule], objects, cells, top, step)
        rows += [f"| {label} | {line} |" for line in lines]
        verdicts[rule] = (o_native, c_native)
    texts = []
    for rule, label in (("mean", "mean-of-seeds"), ("every", "every-seed")):
        o_native, c_native = verdicts[rule]
        o_text = (
            "object-level concepts are cheaper on model 1's objects for "
            + ", ".join(t for _, t, _ in o_native)
            if o_native
            else "no learner finds object-level concepts cheaper on model 1's objects"
        )
        c_text = (
            "cell-level concepts are cheaper on model 2's cells for "
            + ", ".join(t for _, t, _ in c_native)
            if c_native
            else "no learner finds cell-level concepts cheaper on model 2's cells"
        )
        texts.append(f"under the {label} rule, {o_text}; {c_text}")
    full = len(LEARNERS)
    n_seeds = len(next(iter(table["by_seed"]["1→2"].values())))
    halves = {}
    for h, label in ((0, "object"), (1, "cell")):
        n = {rule: len(verdicts[rule][h]) for rule in verdicts}
        big = {rule: sum(b for _, _, b in verdicts[rule][h]) for rule in verdicts}
        halves[label] = (n, big)
    half_lines = " ".join(
        f"The {label} half holds for {n['mean']} of {full} learners under the mean rule and "
        f"{n['every']} under the every-seed rule ({big['mean']} and {big['every']} of them by "
        f"more than one grid step, {step:.2f}×)."
        for label, (n, big) in halves.items()
    )
    o_n, o_big = halves["object"]
    c_n, c_big = halves["cell"]
    if all(o_n[r] == full and c_n[r] == full for r in o_n) and all(
        o_big[r] and c_big[r] for r in o_n
    ):
        summary = (
            "Both halves hold for every learner under both rules: the cost follows how the "
            "concept sits in the destination's abstraction."
        )
    elif not any(o_n.values()) and not any(c_n.values()):
        summary = "Neither half holds under either rule: no measured effect."
    elif all(o_big.values()) and not any(c_big.values()):
        summary = (
            "So the measured effect is one-sided: object-level concepts are cheaper on the object "
            f"latent beyond the grid's resolution for {_big_learners(verdicts, 0)}, while any "
            f"cell-level advantage is within one grid step (weak evidence with {n_seeds} seeds)."
        )
    elif all(c_big.values()) and not any(o_big.values()):
        summary = (
            "So the measured effect is one-sided: cell-level concepts are cheaper on the cell "
            f"latent beyond the grid's resolution for {_big_learners(verdicts, 1)}, while any "
            f"object-level advantage is within one grid step (weak evidence with {n_seeds} seeds)."
        )
    else:
        summary = (
            "So the evidence is mixed: it depends on the learner and on how seeds are combined "
            f"({n_seeds} seeds), not the clean symmetric law the post hopes for."
        )
    summary = f"{half_lines} {summary}"
    world = StripWorld(N_CELLS)
    prior = state_space(ObjectCentricModel(world)).prior_last(T_star)
    codes = world.to_local(world.valid_states())[:, 3]
    mass = torch.zeros(6, dtype=torch.float64).index_add_(0, codes, prior)
    present = mass > 0
    rare_code = int(torch.where(present, mass, torch.inf).argmin())
    p = float(mass[rare_code])
    count = int((codes == rare_code).sum())
    seen_100 = 1 - (1 - p) ** 100
    context = (
        f"For scale: a 99% bar on {NUM_STATES} states allows {int(0.01 * NUM_STATES)} wrong "
        f"state(s); the rarest code of cell 3 ({rare_code}) holds in {count} of the "
        f"{NUM_STATES} states, probability {p:.4f} per training pair, so it is first drawn after "
        f"{1 / p:.0f} pairs on average and has been drawn at least once by 100 pairs with "
        f"probability {seen_100:.2f}. Whether this is what limits the cell concepts is not tested "
        "here."
    )
    v = {
        d: {lr: table["mean"][d].get(("blue_velocity", lr)) for lr in LEARNERS}
        for d in ("1→2", "2→1")
    }
    c3 = {d: {lr: table["mean"][d].get(("cell_3", lr)) for lr in LEARNERS} for d in ("1→2", "2→1")}
    examples = (
        f"Blue velocity (mean rule): tree {_fmt_size(v['1→2']['tree'], top)} (1→2) vs "
        f"{_fmt_size(v['2→1']['tree'], top)} (2→1), MLP {_fmt_size(v['1→2']['mlp'], top)} vs "
        f"{_fmt_size(v['2→1']['mlp'], top)}; cell 3: tree {_fmt_size(c3['1→2']['tree'], top)} "
        f"(1→2) vs {_fmt_size(c3['2→1']['tree'], top)} (2→1), MLP "
        f"{_fmt_size(c3['1→2']['mlp'], top)} vs {_fmt_size(c3['2→1']['mlp'], top)}."
        if "blue_velocity" in names and "cell_3" in names
        else ""
    )
    return (
        "| rule | learner | object concepts 1→2 | object concepts 2→1 | cell concepts 1→2 "
        "| cell concepts 2→1 |\n|---|---|---|---|---|---|\n"
        + "\n".join(rows)
        + "\n\n(Median over concepts of the samples needed for 99%; a concept that never got "
        f"there counts as {top * 10:,}. 1→2 learns on model 2's cells, 2→1 on model 1's "
        f"objects. Sizes are on a grid with step {step:.2f}×; a ratio of at most one step "
        f"is marked as such.) {examples}\n\n"
        f"**Measured answer:** {texts[0]}. And {texts[1]}. {summary}\n\n{context}"
    )


def _edit_paragraph(edit_results):
    one_sided = sum(v["one_sided"] for v in edit_results.values())
    rejected = (
        "both models reject exactly the same (state, value) pairs"
        if one_sided == 0
        else f"**the models disagree on which edits are possible in {one_sided} pairs**"
    )
    all_agree = all(v["agree"] for v in edit_results.values())
    short = {k: v for k, v in edit_results.items() if v["unique_match"] < v["edits"]}
    if not short:
        why = "Every edit's search is unique at every k in the table."
    else:
        non_unique = sum(v["edits"] - v["unique_match"] for v in short.values())
        hidden = sum(v["hidden_red_ambiguous"] for v in short.values())
        ks = sorted({int(k.split(",")[1][6:]) for k in short})
        why = (
            f"The search is not unique for {non_unique} edits (k = {', '.join(map(str, ks))}); "
            f"in {hidden} of them the edited state has red hidden under the pair"
            + (
                ", so a hidden red riding with the pair predicts the same frames from either "
                "blue cell for those k steps, as with the window above."
                if hidden == non_unique
                else "; the rest have another cause."
            )
        )
    return (
        rejected,
        ("All edits agree." if all_agree else "**Some edits disagree: see the table.**"),
        why,
    )


def report(
    ctx, cfg, names, noise_free, noisy, mc, formula, velocity, curves, single, table, edit_results
):
    T_star = noise_free["smallest_invertible_window"]
    by_n = noise_free["smallest_invertible_window_by_n"]
    by_n_text = ", ".join(f"{n}: {t}" for n, t in by_n.items())
    by_n_note = ", i.e. T* = n" if all(t == n for n, t in by_n.items()) else ""
    dist = noise_free["distance_from_identity"]
    dist_row = " | ".join(f"{dist[T]:.4f}" for T in sorted(dist))
    dist_head = " | ".join(f"T={T}" for T in sorted(dist))
    noisy_T = sorted({T for by_T in noisy.values() for T in by_T})
    noisy_head = " | ".join(f"T={T}" for T in noisy_T)
    noisy_sep = "---|" * len(noisy_T)
    noisy_rows = "\n".join(
        f"| {n} | {eps} | "
        + " | ".join(f"{by_T[T]:.4f}" if T in by_T else "–" for T in noisy_T)
        + " |"
        for (n, eps), by_T in sorted(noisy.items())
    )
    noisy_ns = sorted({n for n, _ in noisy})
    noisy_windows = {n: max(max(v) for (m, _), v in noisy.items() if m == n) for n in noisy_ns}
    cap_log3 = round(math.log(DEFAULT_MAX_WINDOWS, 3))
    noisy_n_text = ", ".join(map(str, noisy_ns))
    noisy_window_text = ", ".join(f"n = {n}: T ≤ {t}" for n, t in noisy_windows.items())
    top = max(cfg["sizes"])
    f1, fs = formula[1], formula[T_star]
    formula_rows = "\n".join(
        f"| {c} | {f1[c]['broken_states']} | {f1[c]['mean_gap']:.3f} | {f1[c]['max_gap']:.3f} "
        f"| {fs[c]['broken_states']} | {', '.join(f1[c]['examples'][:2]) or '–'} |"
        for c in names
    )
    broken_at_T_star = sum(fs[c]["broken_states"] for c in names)
    formula_claim = (
        f"At `T = T* = {T_star}` it equals the exact `E[c | l₂]` on every valid state for every "
        "concept (broken states: 0)."
        if broken_at_T_star == 0
        else f"At `T = T* = {T_star}` it still differs from the exact `E[c | l₂]` on "
        f"{broken_at_T_star} (state, concept) pairs."
    )
    single_final = {}
    for direction, records in single.items():
        last = max(r["size"] for r in records)
        for lr in LEARNERS:
            gaps = [r["log_loss_gap"] for r in records if r["size"] == last and r["learner"] == lr]
            single_final[(direction, lr)] = (float(np.mean(gaps)), float(np.max(gaps)), last)
    single_rows = "\n".join(
        f"| {d} | {lr} | {m:.4f} | {mx:.4f} |" for (d, lr), (m, mx, _) in single_final.items()
    )
    single_size = next(iter(single_final.values()))[2]
    edit_rows = "\n".join(
        f"| {k.split(',')[0][4:]} | {k.split(',')[1][6:]} | {k.split(',')[2]} | {v['edits']} "
        f"| {v['unchanged']} | {v['impossible']} | {v['one_sided']} | {v['disagreements']} "
        f"| {v['same_latent']} | {v['unique_match']} |"
        for k, v in edit_results.items()
    )
    rejected, agree_text, unique_text = _edit_paragraph(edit_results)
    quick_note = (
        "\n\n**Profile:** these numbers come from the `--quick` profile (fewer seeds, sizes, "
        "concepts and noisy windows); `make study` regenerates them at full fidelity."
        if ctx.quick
        else ""
    )
    final_acc = {}
    for direction, records in curves.items():
        for lr in LEARNERS:
            accs = [r["accuracy"] for r in records if r["size"] == top and r["learner"] == lr]
            final_acc[(direction, lr)] = min(accs)
    acc_line = ", ".join(f"{d} {lr} {a:.3f}" for (d, lr), a in final_acc.items())
    amb = noise_free["states_ambiguous_at_T3"]
    right = noise_free["T3_ambiguous_moving_right"]
    bounced = noise_free["T3_ambiguous_bounced_at_right_wall"]
    t3_reason = (
        f"all of them have red hidden under the pair, {right} with the pair moving right and "
        f"{bounced} with it just bounced off the right wall: red moves with the pair and stays "
        "hidden until the window reaches back past the pair's last bounce, so \"red under the "
        f'left or the right blue cell" is undecidable for up to T* − 1 = {T_star - 1} frames'
        if noise_free["T3_ambiguous_all_red_hidden"] and right + bounced == amb
        else f"{right} of them have the pair moving right"
        + (
            ", and all have red hidden under the pair"
            if noise_free["T3_ambiguous_all_red_hidden"]
            else ", and not all have red hidden under the pair"
        )
    )
    window_claim = (
        "not 3 as issue #3 expected (the `T ≥ 3` expectation comes from the issue, not from the "
        "post)"
        if T_star != 3
        else "as issue #3 expected"
    )
    p_right = velocity["p_right_given_blank_or_red"]
    n_cells = N_CELLS
    silent = [i for i in range(n_cells) if all(abs(p_right[i][c] - 0.5) < 1e-9 for c in (0, 1))]
    telling = [i for i in range(n_cells) if i not in silent]
    telling_text = "; ".join(
        f"cell {i}: code 0 → {p_right[i][0]:.3f}, code 1 → {p_right[i][1]:.3f}" for i in telling
    )
    silent_text = (
        f"say nothing in cells {silent[0]}..{silent[-1]} (P(right | cell_i = 0 or 1) = 0.50)"
        if silent and silent == list(range(silent[0], silent[-1] + 1))
        else f"say nothing in cells {silent}"
        if silent
        else "say something in every cell"
    )
    codes_text = f"codes 0 and 1 (no blue in the cell) {silent_text}" + (
        f", but not near the walls ({telling_text}): no blue there rules out the pair "
        "sitting against the nearby wall, where it can only move away from it (right panel)"
        if telling
        else " (right panel)"
    )
    tree = velocity["tree"]
    tree_text = (
        'tests cells for code 4 one by one, the "more complex" distributed identifier'
        if tree["codes_in_top_splits"] == [4]
        else f"splits on codes {tree['codes_in_top_splits']} of individual cells, a distributed "
        "identifier"
    )
    half_text = (
        "exactly those whose pair is away from the walls; against a wall the frame shows the "
        "velocity (probability 1 there)"
        if velocity["half_iff_off_wall"] and velocity["wall_states_certain_at_T1"]
        else "NOT exactly the states whose pair is away from the walls"
    )
    sure_text = (
        "each with probability 1"
        if velocity["sure_states"] == NUM_STATES
        else f"with probability 1 on {velocity['sure_states']} of them"
    )
    return f"""## These concepts at work in Bayes nets: transferring a concept between models

**The post:** the blue-velocity identifier of model 1 is "obvious by inspection" (its third
coordinate); on model 2 it is "more complex", and "would be easy to learn from example data using a
decision tree or neural net" by generating observations with model 1, decoding model 2's latent and
labelling it with model 1's concept. The complete-data limit: if the models are invertible,
`f₂ = c ∘ g₁ ∘ g₂⁻¹` transfers the concept exactly.

**What this project computes.** The exact translation `p(l₂ | l₁) = Σₒ p₂(l₂ | o) p₁(o | l₁)` over
observation windows of `T` frames ending at the step where the latents are read
(`pyro_latent.translate.exact.translation_matrix`), and the transferred identifier
`f₂(l₂) = E[c(l₁) | l₂]`. Both models' transitions are deterministic permutations of the valid
states (checked on their CPTs), so each last-step state fixes its window and `p(o | l)` is a product
of per-cell emissions; the sum over `o` runs over the ≤ S noise-free windows when ε = 0 and over all
`3^(nT)` windows when ε > 0. No sampling. Tests compare it with a brute force written from the
world's rules (including different noise in the two models, where the matrix is asymmetric), and
with Pyro's `log_evidence` and `marginals`.

**What is only partly covered.** Exact ε > 0 matrices exist only for n = {noisy_n_text}
and small windows ({noisy_window_text}): the
enumeration is capped at 3^{cap_log3} windows, so the n = {N_CELLS} world could be reached only
at T ≤ {cap_log3 // N_CELLS} and no noisy n = {N_CELLS} matrix is computed here. Everything
below at n = {N_CELLS} (T*, the formula, the learned identifiers) is noise-free, except the
`set_concept` check at ε = 0.1, which uses the prediction tables rather than the enumeration. The
Monte-Carlo check runs only at n = {mc["n_cells"]}, ε = {mc["obs_noise"]}, T = {mc["window"]}.

### How long a window invertibility needs

![p(l₂ | l₁), one frame](translation_matrix_T1.png)
![p(l₂ | l₁), three frames](translation_matrix_T3.png)

With one frame (`T = 1`) the matrix equals the closed form, uniform over the states that render to
the same frame (max abs difference {noise_free["T1_max_abs_diff_to_closed_form"]:.1e}): only
{noise_free["T1_states_with_unique_frame"]} of {NUM_STATES} states have a frame of
their own, the largest class has {noise_free["T1_largest_frame_class"]} states (velocity is
invisible, and red hides under blue).

**The smallest window at which the translation is the identity is T = {T_star}** (1→2 {T_star},
2→1 {noise_free["smallest_invertible_window_2to1"]}), {window_claim}. At `T = 3`,
{noise_free["states_ambiguous_at_T3"]} states are still ambiguous; {t3_reason}. Measured for
other strip lengths, the smallest invertible window (n: T*) is
{by_n_text}{by_n_note}. Distance from the identity, `1 − mean diag` (n = {N_CELLS}, ε = 0):

| {dist_head} |
|{"---|" * len(dist)}
| {dist_row} |

![distance from identity](toy_transfer_identity_distance.png)

**With noise** the matrices are soft. Exact by enumerating every window, which is feasible only
for small worlds: computed exactly here for
{", ".join(f"n = {n}, ε = {e}, T ≤ {max(v)}" for (n, e), v in sorted(noisy.items()))}
(3^(nT) up to 3^{max(n * max(v) for (n, _), v in noisy.items())} windows); larger `n·T` is refused
with an error rather than approximated.

One minus the mean diagonal, by window length `T`:

| n | ε | {noisy_head} |
|---|---|{noisy_sep}
{noisy_rows}

### The invertible-case formula

`f₂(l₂) = c(g₁(g₂⁻¹(l₂)))`, with `g₂⁻¹(l₂)` the noise-free window ending in `l₂` and `g₁`,
`g₂` the models' MAP decoders (`model.map`: Viterbi over the compiled tables with the default
`engine="hmm"`; `infer_discrete` at temperature 0 with `engine="enum"`). {formula_claim}
With one frame it breaks: `g₂⁻¹` is not a function's inverse (several states share a frame, so MAP
returns one representative, a round trip fails on {f1[names[0]]["roundtrip_failures"]} states), and
the formula answers with certainty where the exact answer is a mixture. "Gap" is the probability
that the formula's answer is wrong under the exact transfer:

| concept | T=1 broken states | mean gap | max gap | T=T* broken | examples (cell codes) |
|---|---|---|---|---|---|
{formula_rows}

### Sampled approximation

`monte_carlo_translation`: observations are drawn from model 1's Pyro program conditioned
(`poutine.condition`) on its first-step latents, which fixes the last-step state in this
deterministic world; model 2's latent is one posterior draw per window (`sample_posterior`:
forward-filtering backward-sampling over the compiled tables with `engine="hmm"`, the default used
here; `infer_discrete` at temperature 1 with `engine="enum"`).
n = {mc["n_cells"]}, ε = {mc["obs_noise"]}, T = {mc["window"]}, up to {mc["draws"][-1]:,} draws
per row, stored as ArviZ `InferenceData` (`results/{mc["inference_data"]}`). Mean TV to the exact
matrix falls from {mc["mean_tv"][0]:.3f} (n = {mc["draws"][0]}) to {mc["mean_tv"][-1]:.4f}
(n = {mc["draws"][-1]:,}); log-log slope **{mc["loglog_slope"]:.2f}** (1/√n is −0.5); at every n
it is within {min(mc["tv_over_reference"]):.2f}–{max(mc["tv_over_reference"]):.2f}× the expected
TV of an exact n-draw sampler (dashed line).

![Monte Carlo](toy_transfer_monte_carlo.png)

### Learned identifiers, the post's "decision tree or neural net"

Pairs `(o, l₁)` from model 1, model 2's MAP latent, label `c(l₁)` (and the mirror image 2→1), at the
invertible window `T = {T_star}`; learners: `DecisionTreeClassifier`, a one-hidden-layer torch MLP,
and logistic regression, on one-hot latents; {cfg["seeds"]} seeds; accuracy over **all**
{NUM_STATES} valid states against the exact transferred identifier. Lowest accuracy
over seeds at {top:,} pairs: {acc_line}.

![learning curves](toy_identifier_learning_curves.png)

**Samples needed to reach 99% accuracy.** Each cell is `mean rule / every-seed rule (per-seed
range)`: the mean rule takes the first size whose accuracy averaged over the {cfg["seeds"]} seeds
reaches 99% (a seed may still be below), the every-seed rule the first size at which every seed
does, and the range is each seed's own first size reaching 99%.

{_table_md(table, names, top)}

![samples to 99%](toy_samples_to_99.png)

**The post's question: does sample efficiency follow the similarity of the abstractions?**

{_abstraction_paragraph(table, names, top, cfg["sizes"], T_star)}

One caveat: logistic regression on model 1's one-hot `(b, r, v)` cannot represent conjunctions
such as `red_hidden` (r ∈ {{b, b+1}}) or some cell codes, so a "not reached" in the 2→1 logistic
column can be an expressivity limit rather than a sample-size one (the tree and MLP have no such
limit).

**Non-invertible case (T = 1).** Model 2's latent is a posterior draw (MAP would pick one
representative per frame), so the learners see the joint `p(l₁, l₂)` whose regression function is
`E[c | l₂]`. Log-loss gap to that exact soft identifier, `mean_l₂ KL(E[c|l₂] ‖ f̂(l₂))`, at
{single_size:,} pairs, mean and worst over concepts and seeds:

| direction | learner | mean gap (nats) | worst |
|---|---|---|---|
{single_rows}

![log-loss gap, one frame](toy_identifier_logloss_T1.png)

### The transferred velocity identifier on model 2's states

![velocity identifier](toy_velocity_identifier.png)

Through an invertible window the exact identifier agrees with the post's rule (right exactly when
some cell holds code 4 or 5, left when some cell holds 2 or 3) on {velocity["rule_agreement"]} of
{NUM_STATES} states, {sure_text}. Averaged over the valid states, {codes_text}. Through one frame
it is exactly ½ on {velocity["half_states"]} states, {half_text}. The decision tree fitted on 10⁴
pairs (depth {tree["depth"]}, depth ≤ 4 shown) {tree_text}:

```
{tree["text"].strip()}
```

### Manipulating beliefs: `set_concept`

`set_concept(model, latent, name, value)` edits one model's latent in its own coordinates (e.g. swap
codes 2↔4 and 3↔5 to flip velocity in model 2). `red_hidden` and `cell_k` are not invertible and
raise a `ValueError`: changing one cell's code and nothing else never gives a valid state (one red,
one adjacent blue pair), so the only such "edit" would be the no-op. Checked over every valid state
and value: model 2's predicted observations for the next k steps after its edit against model 1's
after the corresponding edit. "edits" counts only edits that change the latent; "no-op" the pairs
where the concept already has the value; "unique" counts edits where searching all of model 1's
states for matching predictions (the post's recipe) finds exactly model 1's edit. Edits with no
valid result (pointing a pair at the wall into it, pushing it off the strip) raise a `ValueError`;
{rejected}. {agree_text}

{EDIT_HEAD}
{edit_rows}

{unique_text}{quick_note}"""


if __name__ == "__main__":
    cli.run_script("toy_transfer")
