"""Summaries and verdicts of :mod:`pyro_latent.study.toy_transfer`, on numbers (never on wording),
and the Rao–Blackwellised translation against the exact one."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pyro_latent.study import toy_transfer as summ
from pyro_latent.toy import LocalStateModel, ObjectCentricModel, StripWorld
from pyro_latent.toy.transfer.exact import (
    distance_from_identity,
    smallest_invertible_window,
    transfer_concept,
    translation_matrix,
)
from pyro_latent.toy.transfer.identifiers import LEARNERS
from pyro_latent.toy.transfer.sampled import rao_blackwell_translation


def models(n, eps=0.0):
    world = StripWorld(n)
    return ObjectCentricModel(world, eps), LocalStateModel(world, eps)


@pytest.fixture(scope="module")
def noisy4():
    m1, m2 = models(4, 0.1)
    return m1, m2, translation_matrix(m1, m2, 2)


# ----------------------------------------------------------------------------- exact windows
@pytest.mark.parametrize("n", [4, 6])
def test_single_frame_closed_form_is_the_exact_matrix(n):
    m1, m2 = models(n)
    world = m1.world
    out = summ.single_frame_summary(world, translation_matrix(m1, m2, 1))
    assert out["max_abs_diff_to_closed_form"] < 1e-12
    frames = [tuple(f) for f in world.render(world.valid_states()).tolist()]
    sizes = [frames.count(f) for f in frames]
    assert out["states_with_unique_frame"] == sizes.count(1)
    assert out["largest_frame_class"] == max(sizes)
    assert out["n_states"] == world.n_states


def test_ambiguity_census_at_three_frames():
    m1, m2 = models(10)
    out = summ.ambiguity_census(m1, translation_matrix(m1, m2, 3))
    assert (out["ambiguous"], out["moving_right"], out["bounced_at_right_wall"]) == (14, 12, 2)
    assert out["all_red_hidden"] and out["explained"]


def test_ambiguity_census_flags_an_unexplained_state():
    m1, _ = models(5)
    S = m1.world.n_states
    assert summ.ambiguity_census(m1, torch.eye(S, dtype=torch.float64))["ambiguous"] == 0
    states = m1.world.valid_states()
    visible = int(
        ((states[:, 1] != states[:, 0]) & (states[:, 1] != states[:, 0] + 1)).nonzero()[0]
    )
    matrix = torch.eye(S, dtype=torch.float64)
    matrix[visible, visible] = 0.5
    out = summ.ambiguity_census(m1, matrix)
    assert out["ambiguous"] == 1
    assert not out["all_red_hidden"] and not out["explained"]


def test_invertibility_summary_and_noisy_distances():
    m1, m2 = models(5)
    matrices, out = summ.invertibility_summary(m1, m2, sizes=[4, 5])
    assert out["smallest_invertible_window"] == 5 == out["smallest_invertible_window_2to1"]
    assert sorted(matrices) == list(range(1, 7))
    assert out["identity_at_T_star"] and out["by_n_equals_n"]
    assert [d["distance"] for d in out["distance"]][-2:] == [0.0, 0.0]
    grid = summ.exact_noisy_distances({0.1: {4: 2}})
    n1, n2 = models(4, 0.1)
    assert grid[(4, 0.1)][2] == pytest.approx(distance_from_identity(translation_matrix(n1, n2, 2)))


def test_noisy_distance_table_aligns_the_windows():
    table = summ.noisy_distance_table({(4, 0.1): {1: 0.5, 2: 0.2, 3: 0.1}, (5, 0.1): {1: 0.6}})
    assert table["windows"] == [1, 2, 3]
    assert table["rows"][1]["distance"] == [0.6, None, None]
    assert table["max_cells"] == 12
    assert table["max_window_by_n"] == [
        {"n_cells": 4, "max_window": 3},
        {"n_cells": 5, "max_window": 1},
    ]


# ----------------------------------------------------------------------------- sampled
class _FakeMonteCarlo:
    def tv_to(self, exact, n_samples):
        return 0.3 / math.sqrt(n_samples)


def test_monte_carlo_tv_curve():
    exact = torch.full((2, 2), 0.5, dtype=torch.float64)
    out = summ.monte_carlo_tv_curve(_FakeMonteCarlo(), exact, [10, 100, 1000])
    assert out["loglog_slope"] == pytest.approx(-0.5)
    ratio = 0.3 / (0.5 * 2 * math.sqrt(2 * 0.25 / math.pi))  # tv over ½ Σ sqrt(2p(1-p)/(πN))
    assert out["ratio_min"] == pytest.approx(ratio) == out["ratio_max"]
    assert out["draws"] == [10, 100, 1000]


def test_window_needed_branches():
    windows, values = [1, 2, 3, 4], [0.5, 0.02, 0.008, 0.001]
    out = summ.window_needed(windows, values, 0.01)
    assert (out["verdict"], out["window"], out["value"]) == ("reached", 3, 0.008)
    late = summ.window_needed(windows, values, 0.01, standard_errors=[0, 0, 0.002, 0.001])
    assert (late["verdict"], late["window"]) == ("reached", 4)
    never = summ.window_needed(windows, values, 0.0005)
    assert never["verdict"] == "not reached" and never["window"] is None
    assert never["value"] == 0.001 and never["threshold"] == 0.0005


class _FakeRB:
    n_samples, window = 100, 2

    def __init__(self, z, distance=(0.3, 0.01)):
        self.z, self.distance = torch.as_tensor(z, dtype=torch.float64), distance

    def z_scores(self, reference):
        return self.z

    def distance_from_identity(self):
        return self.distance


def test_rao_blackwell_check_branches():
    exact = torch.tensor([[0.8, 0.2], [0.1, 0.9]], dtype=torch.float64)  # distance 0.15
    bound = float(torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor(1 - 0.05 / 8)))
    ok = summ.rao_blackwell_check(_FakeRB([[0.5, -1.0], [2.0, 2.4]], (0.17, 0.01)), exact)
    assert ok["verdict"] == "agrees" and ok["value"] == pytest.approx(2.4)
    assert ok["threshold"] == pytest.approx(bound)  # 2.50 for 4 entries
    assert ok["beyond_3"] == 0 and ok["within_3"]
    assert ok["expected_beyond_3"] == pytest.approx(4 * 0.0026998, rel=1e-3)
    assert ok["exact_distance"] == pytest.approx(0.15) and ok["distance_z"] == pytest.approx(2.0)
    near = summ.rao_blackwell_check(_FakeRB([[0.5, -1.0], [2.0, 3.1]]), exact)
    assert near["verdict"] == "disagrees" and near["beyond_3"] == 1 and not near["within_3"]
    bad = summ.rao_blackwell_check(_FakeRB([[0.5, -9.0], [0.0, 0.0]]), exact)
    assert bad["verdict"] == "disagrees" and bad["value"] == 9.0


# ----------------------------------------------------------------------------- Rao–Blackwell
def test_rao_blackwell_agrees_with_the_exact_matrix(noisy4):
    m1, m2, exact = noisy4
    rb = rao_blackwell_translation(m1, m2, 2, 16_000, seed=0)
    check = summ.rao_blackwell_check(rb, exact)
    assert check["verdict"] == "agrees"  # max |z| within the Bonferroni bound for 256 entries
    z = rb.z_scores(exact).abs()
    assert float(z[exact > 0.01].max()) <= 3  # every entry that carries mass: within 3 s.e.
    assert abs(check["distance_z"]) <= 3


def test_rao_blackwell_standard_error_falls_like_inverse_sqrt_n(noisy4):
    m1, m2, _ = noisy4
    few = rao_blackwell_translation(m1, m2, 2, 1000, seed=0)
    many = rao_blackwell_translation(m1, m2, 2, 4000, seed=1)
    ratio = (
        few.distance_from_identity().standard_error / many.distance_from_identity().standard_error
    )
    assert ratio == pytest.approx(2, rel=0.15)
    big = few.matrix > 0.05
    entry_ratio = float((few.standard_error[big] / many.standard_error[big]).median())
    assert entry_ratio == pytest.approx(2, rel=0.15)


def test_rao_blackwell_curve_and_inference_data():
    m1, m2 = models(4, 0.1)
    estimates, curve = summ.rao_blackwell_curve(m1, m2, [1, 3], 20, seed=0, threshold=0.5)
    assert curve["windows"] == [1, 3] and curve["eps"] == 0.1
    assert curve["distance"][1] == estimates[3].distance_from_identity().value
    assert curve["needed"]["window"] == 3
    idata = summ.rao_blackwell_inference_data({0.1: estimates})
    assert idata.posterior["diagonal"].shape == (1, 20, 1, 2, m1.world.n_states)
    assert float(idata.constant_data["distance"][0, 1]) == curve["distance"][1]


# ----------------------------------------------------------------------------- formula, velocity
def test_formula_table_breaks_only_on_one_frame():
    m1, m2 = models(5)
    T_star = smallest_invertible_window(m1, m2)
    out = summ.formula_table(m1, m2, (1, T_star), ["blue_velocity", "blue_location"])
    assert out[T_star]["broken_total"] == 0
    one = {row["concept"]: row for row in out[1]["rows"]}
    assert one["blue_velocity"]["broken_states"] > 0 and one["blue_location"]["broken_states"] == 0
    assert out[1]["broken_total"] == one["blue_velocity"]["broken_states"]
    assert len(one["blue_velocity"]["examples"]) == 3


def test_velocity_facts():
    m1, m2 = models(6)
    world = m1.world
    T_star = smallest_invertible_window(m1, m2)
    inv, one = (transfer_concept("blue_velocity", m1, m2, T) for T in (T_star, 1))
    out = summ.velocity_facts(world, inv, one)
    assert out["rule_agreement"] == out["sure_states"] == world.n_states and out["all_sure"]
    assert out["half_iff_off_wall"] and out["wall_states_certain_at_T1"]
    b = world.valid_states()[:, 0]
    assert out["half_states"] == int(((b != 0) & (b != world.n_cells - 2)).sum())
    assert 0 in [c["cell"] for c in out["telling_cells"]]  # blank cell 0 excludes the left wall
    assert set(out["silent_cells"]).isdisjoint(c["cell"] for c in out["telling_cells"])


def test_velocity_facts_on_a_made_up_identifier():
    world = StripWorld(5)
    S = world.n_states
    flat = torch.full((S, 2), 0.5, dtype=torch.float64)
    out = summ.velocity_facts(world, flat, flat)
    assert out["rule_agreement"] == out["sure_states"] == 0 and not out["all_sure"]
    assert out["half_states"] == S and not out["half_iff_off_wall"]
    assert out["silent_cells"] == list(range(5)) and out["silent_contiguous"]


def test_rare_code_odds():
    m1, _ = models(10)
    out = summ.rare_code_odds(m1, 10, cell=3)
    assert (out["code"], out["states"], out["allowed_wrong"]) == (3, 2, 1)
    assert out["probability"] == pytest.approx(2 / 160)
    assert out["mean_wait"] == pytest.approx(80)
    assert out["seen_by_pairs"] == pytest.approx(1 - (1 - 2 / 160) ** 100)


def test_decision_tree_rules():
    m1, m2 = models(5)
    out = summ.decision_tree_rules(m1, m2, 5, "blue_velocity", 500, seed=0)
    assert out["depth"] >= 1
    assert set(out["codes_in_top_splits"]) <= set(range(6)) and out["codes_in_top_splits"]


# ----------------------------------------------------------------------------- learned identifiers
def _records():
    out = []
    for seed, accs in ((0, [0.5, 0.99, 1.0]), (1, [0.6, 0.95, 1.0])):
        for size, acc in zip([10, 100, 1000], accs, strict=True):
            out.append(
                {
                    "concept": "c",
                    "learner": "tree",
                    "size": size,
                    "seed": seed,
                    "accuracy": acc,
                    "log_loss_gap": 1 - acc,
                }
            )
    return out


def test_final_scores_and_accuracy_tables():
    scores = summ.final_scores(_records(), "accuracy", ["tree"])
    assert scores == [{"learner": "tree", "size": 1000, "mean": 1.0, "min": 1.0, "max": 1.0}]
    at_100 = summ.final_scores(_records(), "accuracy", ["tree"], size=100)[0]
    assert (at_100["min"], at_100["max"]) == (0.95, 0.99)
    tables = summ.accuracy_tables({"1→2": _records()})
    assert tables["mean"]["1→2"][("c", "tree")] == 1000  # mean at 100 is 0.97
    assert tables["every"]["1→2"][("c", "tree")] == 1000
    assert tables["by_seed"]["1→2"][("c", "tree")] == [100, 1000]


def test_samples_table_ranges():
    tables = {
        "mean": {"1→2": {("c", "tree"): 100, ("d", "tree"): None}},
        "every": {"1→2": {("c", "tree"): 1000, ("d", "tree"): None}},
        "by_seed": {"1→2": {("c", "tree"): [10, 1000], ("d", "tree"): [None, 100]}},
    }
    rows = summ.samples_table(tables, ["c", "d"], ["tree"])
    c, d = rows[0]["cells"][0], rows[1]["cells"][0]
    assert (c["mean"], c["every"], c["low"], c["high"]) == (100, 1000, 10, 1000)
    assert (d["mean"], d["every"], d["low"], d["high"]) == (None, None, 100, None)


def _tables(v12, v21, c12, c21):
    table = {
        "1→2": {("blue_velocity", lr): v12 for lr in LEARNERS}
        | {("cell_3", lr): c12 for lr in LEARNERS},
        "2→1": {("blue_velocity", lr): v21 for lr in LEARNERS}
        | {("cell_3", lr): c21 for lr in LEARNERS},
    }
    return {"mean": table, "every": table}


NAMES = ["blue_velocity", "cell_3"]
COARSE = [10, 100, 1000, 10000]  # step 10×
FINE = [int(round(x)) for x in np.logspace(1, 4, 10)]  # step 2.15×


@pytest.mark.parametrize(
    ("sizes_needed", "grid", "verdict", "side"),
    [
        ((10000, 10, 10, 10000), COARSE, "agrees", None),
        ((100, 100, 100, 100), COARSE, "disagrees", None),
        ((1000, 100, 100, 100), FINE, "one-sided", "object"),
        ((100, 100, 100, 1000), FINE, "one-sided", "cell"),
        ((215, 100, 100, 100), FINE, "mixed", None),
    ],
)
def test_abstraction_verdict_branches(sizes_needed, grid, verdict, side):
    out = summ.abstraction_verdict(_tables(*sizes_needed), NAMES, grid, LEARNERS, 10000)
    assert (out["verdict"], out["side"]) == (verdict, side)
    assert out["threshold"] == pytest.approx((grid[-1] / grid[0]) ** (1 / (len(grid) - 1)))


def test_abstraction_verdict_numbers():
    out = summ.abstraction_verdict(_tables(1000, 100, 100, 100), NAMES, FINE, LEARNERS, 10000)
    mean = out["rules"]["mean"]
    assert mean["object_holds_count"] == 3 and mean["cell_holds_count"] == 0
    assert mean["object_beyond_grid_count"] == 3
    assert mean["rows"][0]["object_ratio"] == pytest.approx(10)
    assert out["value"] == {"object": 6, "cell": 0}
    small = summ.abstraction_verdict(_tables(215, 100, 100, 100), NAMES, FINE, LEARNERS, 10000)
    assert small["rules"]["mean"]["object_holds_count"] == 3
    assert small["value"] == {"object": 0, "cell": 0}  # 2.15× is within one grid step
    never = summ.abstraction_verdict(_tables(None, 100, 100, 100), NAMES, FINE, LEARNERS, 10000)
    assert never["cap"] == 100000
    assert never["rules"]["mean"]["rows"][0]["object_1to2"] == 100000


def test_abstraction_verdict_cannot_be_tested():
    objects_only = summ.abstraction_verdict(
        _tables(1, 1, 1, 1), ["blue_velocity"], COARSE, LEARNERS
    )
    assert objects_only["verdict"] == "cannot be tested" and objects_only["value"] is None
    one_size = summ.abstraction_verdict(_tables(1, 1, 1, 1), NAMES, [100], LEARNERS)
    assert one_size["verdict"] == "cannot be tested"


# ----------------------------------------------------------------------------- edits
def _edit(**changes):
    record = {
        "steps": 3,
        "edits": 10,
        "unchanged": 5,
        "impossible": 2,
        "one_sided": 0,
        "disagreements": 0,
        "same_latent": 10,
        "unique_match": 10,
        "hidden_red_ambiguous": 0,
        "agree": True,
    }
    return record | changes


def test_edit_summary_follows_the_counts():
    clean = summ.edit_summary([_edit(), _edit(steps=9)])
    assert clean == {
        "one_sided": 0,
        "all_agree": True,
        "non_unique": 0,
        "hidden": 0,
        "steps_with_non_unique": [],
        "all_non_unique_hidden": True,
    }
    messy = summ.edit_summary(
        [
            _edit(one_sided=3, agree=False, unique_match=6, hidden_red_ambiguous=2),
            _edit(steps=9, unique_match=9, hidden_red_ambiguous=1),
        ]
    )
    assert messy["one_sided"] == 3 and not messy["all_agree"]
    assert (messy["non_unique"], messy["hidden"]) == (5, 3)
    assert messy["steps_with_non_unique"] == [3, 9] and not messy["all_non_unique_hidden"]


def test_noise_free_distances_and_edit_rows():
    m1, m2 = models(4)
    distances = summ.noise_free_distances(m1, m2, [1, 4])
    assert distances[4] == 0 and distances[1] > 0  # invertible from T = n on
    rows = summ.edit_rows(lambda eps: models(4, eps), ["blue_velocity", "red_location"], (2, 3))
    assert len(rows) == 2 * 2 * 2
    assert {(r["eps"], r["steps"]) for r in rows} == {(e, k) for e in (0.0, 0.1) for k in (2, 3)}
    assert all(r["agree"] for r in rows)


def test_reverse_check_with_equal_noise():
    m1, m2 = models(4, 0.1)
    forward = rao_blackwell_translation(m1, m2, 2, 50, seed=0)
    out = summ.reverse_check(m1, m2, forward, n_samples=50, seed=0)
    assert out["window"] == 2 and out["eps"] == 0.1
    assert out["max_abs_diff"] < 0.05 and out["identical"] == (out["max_abs_diff"] == 0)
