"""The shape-concepts verdicts on numbers whose answer is known, the evaluation images and the
shapes world's training profiles (the experiment end to end: test_shape_concepts_experiment.py)."""

from __future__ import annotations

import pytest
import torch

from pyro_latent.study import shape_concepts as sc
from pyro_latent.vae import shapes as world


def row(vae, direction, purity, angle, preset=None):
    def q(v):
        return {"median": v, "q1": v, "q3": v, "n": 1}

    return {"vae": vae, "preset": preset or vae.split("-")[0], "direction": direction,
            "concept": sc._concept(direction), "purity": q(purity),
            "angle_to_truth": q(angle), "leakage": q(None)}  # fmt: skip


def test_the_direction_table_groups_and_sums_the_leakage():
    records = [
        {"vae": "a-0", "preset": "a", "direction": "two-image h", "purity": 0.5,
         "angle_to_truth": 10.0, "gain": 1.0, "leakage": {0: 0.5, 2: 0.5}},
        {"vae": "a-0", "preset": "a", "direction": "two-image h", "purity": 0.7,
         "angle_to_truth": 30.0, "gain": 2.0, "leakage": {0: 0.1, 2: None}},
        {"vae": "a-0", "preset": "a", "direction": "two-image b", "purity": 0.9,
         "angle_to_truth": 5.0, "gain": 0.5, "leakage": {0: 0.0, 2: 0.1}},
    ]  # fmt: skip
    table = sc.direction_table(records)
    assert [(r["direction"], r["concept"], r["n"]) for r in table] == [
        ("two-image h", "height", 2),
        ("two-image b", "brightness", 1),
    ]
    assert table[0]["purity"]["median"] == pytest.approx(0.6)
    assert table[0]["angle_to_truth"]["median"] == pytest.approx(20.0)
    assert table[0]["leakage"]["median"] == pytest.approx(1.0) and table[0]["leakage"]["n"] == 1


def test_ranking_and_separability():
    table = [row("a-0", "two-image h", 0.9, 5.0), row("b-0", "two-image h", 0.7, 15.0),
             row("a-0", "jacobian", 0.6, 40.0), row("a-0", "two-image b", 0.85, 3.0)]  # fmt: skip
    ranking = sc.method_ranking(table)
    assert [r["direction"] for r in ranking["height"]] == ["two-image h", "jacobian"]
    assert ranking["height"][0]["purity"] == pytest.approx(0.8)
    apart = [{"true_angle_hb_pullback": a} for a in (70.0, 80.0, 90.0)]
    truth = {"height": 0.82, "brightness": 0.95}
    verdict = sc.separability_verdict(apart, ranking, truth)
    assert verdict["verdict"] == "separable"
    assert verdict["found"] == {"height": True, "brightness": False}  # 0.85 < 0.95 - 0.05
    close = [{"true_angle_hb_pullback": a} for a in (10.0, 20.0, 30.0)]
    assert sc.separability_verdict(close, ranking, truth)["verdict"] == "not separable"
    assert sc.separability_verdict([], ranking, truth)["verdict"] == "cannot be tested"
    no_truth = sc.separability_verdict(apart, ranking, {"height": None, "brightness": None})
    assert no_truth["found"] == {"height": None, "brightness": None}


def test_gram_schmidt_helps_only_where_it_is_purer():
    table = []
    for vae, h, gs in (("a-0", 0.5, 0.8), ("b-0", 0.6, 0.7), ("c-0", 0.9, 0.4)):
        table += [row(vae, "two-image h", h, 20.0), row(vae, "gs pullback", gs, 25.0)]
    verdict = sc.gram_schmidt_verdict(table)
    assert verdict["verdict"] == "helps" and (verdict["purer_on"], verdict["of"]) == (2, 3)
    assert sc.gram_schmidt_verdict(table[4:])["verdict"] == "does not help"
    assert sc.gram_schmidt_verdict([row("a-0", "jacobian", 0.5, 1.0)])["verdict"] == (
        "cannot be tested"
    )


def test_seed_versus_model():
    seed_heavy = {"a": [0.1, 0.5, 0.9], "b": [0.2, 0.6, 0.8]}
    assert sc.seed_versus_model(seed_heavy)["verdict"] == "seed matters more"
    model_heavy = {"a": [0.10, 0.11, 0.12], "b": [0.80, 0.81, 0.82]}
    verdict = sc.seed_versus_model(model_heavy)
    assert verdict["verdict"] == "model matters more"
    assert verdict["between"] == pytest.approx(0.49497, rel=1e-4)
    assert verdict["within"] == pytest.approx(0.01)
    assert sc.seed_versus_model({"a": [0.1], "b": [0.2, 0.3]})["verdict"] == "cannot be tested"


def test_size_verdict_orders_by_weights_and_ignores_small_steps():
    sizes = {"small": 10, "large": 30, "conv": 20}
    better = sc.size_verdict({"small": 0.1, "conv": 0.2, "large": 0.3}, sizes)
    assert better["verdict"] == "bigger is better" and better["margin"] == sc.SIZE_MARGIN
    worse = sc.size_verdict({"small": 0.3, "conv": 0.2, "large": 0.1}, sizes)
    assert worse["verdict"] == "bigger is worse" and worse["order"] == ["small", "conv", "large"]
    assert sc.size_verdict({"small": 0.1, "conv": 0.3, "large": 0.2}, sizes)["verdict"] == (
        "no clear trend"
    )
    small_steps = {"small": 0.48, "conv": 0.51, "large": 0.52}  # rises, but by < 0.05 a step
    assert sc.size_verdict(small_steps, sizes)["verdict"] == "no clear trend"
    assert sc.size_verdict(small_steps, sizes, margin=0.0)["verdict"] == "bigger is better"
    assert sc.size_verdict({"small": 0.1, "conv": None}, sizes)["verdict"] == "cannot be tested"
    with pytest.raises(ValueError, match="no weight count for preset"):
        sc.size_verdict({"tiny": 0.1}, sizes)


def test_evaluation_images_keep_every_edit_inside_the_frame():
    f = sc.evaluation_factors(200, seed=0)
    assert f.shape == (200, len(world.FACTORS))
    h, y, b = (world.factor_index(n) for n in ("height", "y", "brightness"))
    edited = f.clone()
    edited[:, h] += 2.0
    edited[:, y] -= 1.0
    world.render(edited)  # the post's "+2 pixels on top": no ValueError
    for step in (-1.0, 1.0):
        moved = f.clone()
        moved[:, h] += step
        world.render(moved)
    assert float(f[:, b].max()) + 0.1 <= 1.0 and float(f[:, b].min()) - 0.05 > 0
    assert set(f[:, 0].tolist()) == {0.0, 1.0, 2.0}
    torch.testing.assert_close(f, sc.evaluation_factors(200, seed=0))
    with pytest.raises(ValueError, match="evaluation images"):
        sc.evaluation_factors(-1, seed=0)


def test_the_shapes_world_has_its_own_training_profiles_and_folders(tmp_path):
    from pyro_latent.study import profiles

    assert profiles.study_runs_dir("full", tmp_path, "shapes") == tmp_path / "shapes"
    assert profiles.study_runs_dir("quick", tmp_path, "shapes") == tmp_path / "quick" / "shapes"
    assert profiles.study_runs_dir("full", tmp_path) == tmp_path
    with pytest.raises(ValueError, match="unknown world 'mnist'; known: fashion, shapes"):
        profiles.study_runs_dir("full", tmp_path, "mnist")
    with pytest.raises(ValueError, match="unknown training profile 'slow'"):
        profiles.study_runs_dir("slow", tmp_path, "shapes")


def test_units_against_factors():
    out = sc.units_against_factors({"a": [7, 9], "b": [6, 6], "c": [4, 5]}, 6)
    assert out["n_factors"] == 6
    assert [out["presets"][p]["verdict"] for p in "abc"] == ["more", "as many", "fewer"]
    assert out["presets"]["a"]["mean"] == 8.0
    with pytest.raises(ValueError, match="no active-unit counts for preset 'd'"):
        sc.units_against_factors({"d": []}, 6)


def test_the_truth_is_a_reference_not_a_method():
    table = [row("a-0", "true height", 0.9, 0.0), row("a-0", "two-image h", 0.6, 20.0)]
    table += [row("b-0", "true height", 0.7, 0.0), row("a-0", "true brightness", 0.9, 0.0)]
    assert [r["direction"] for r in sc.method_ranking(table)["height"]] == ["two-image h"]
    assert sc.truth_reference(table) == {"height": pytest.approx(0.8), "brightness": 0.9}
    assert sc._concept("true brightness") == "brightness"


def test_measure_image_on_a_linear_world_finds_the_truth():
    """Six factors rendered linearly, ``x = B f + c``, and an autoencoder that inverts the world
    exactly up to a mixing ``M``: codes ``z = M⁻¹ f``.  Then the true direction of factor k is
    ``M⁻¹ e_k``, the two-image pairs are those directions exactly, and traversing them moves one
    read-out factor only: every column index of ``measure_image`` is checked."""
    import numpy as np
    from torch import nn

    from pyro_latent.concepts.factor_directions import FactorReadout
    from pyro_latent.core.latent_model import as_latent_model
    from pyro_latent.study.shoe_concepts import fit_cavs

    gen = torch.Generator().manual_seed(1)
    top = torch.tensor([2.0, 16.0, 16.0, 20.0, 20.0, 1.0], dtype=torch.float64)  # largest levels
    own = torch.arange(784)[:, None] // 130 == torch.arange(6)  # each factor its own pixels
    B = torch.rand(784, 6, generator=gen, dtype=torch.float64) * own * 0.8 / top  # x in [0, 1]
    c = torch.full((784,), 0.1, dtype=torch.float64)
    M = torch.eye(6, dtype=torch.float64) + 0.3 * torch.randn(
        6, 6, generator=gen, dtype=torch.float64
    )
    encoder, decoder = nn.Linear(784, 6), nn.Linear(6, 784)
    with torch.no_grad():  # z = M⁻¹ B⁺ (x - c), g(z) = B M z + c
        W = torch.linalg.solve(M, torch.linalg.pinv(B))
        encoder.weight.copy_(W), encoder.bias.copy_(-W @ c)
        decoder.weight.copy_(B @ M), decoder.bias.copy_(c)
    model = as_latent_model(encoder.double(), decoder.double(), latent_dim=6, likelihood="normal")

    def render(f):
        return f.double() @ B.T + c

    f = sc.evaluation_factors(3000, seed=0).double()
    readout = FactorReadout(hidden=(64,), epochs=30).fit(render(f).float(), f[:, 1:])
    assert min(readout.r2_per_factor(render(f[:500]).float(), f[:500, 1:])) > 0.98
    codes = model.encode(render(f))[0].detach().numpy()
    cavs, _ = fit_cavs(codes, {"height": f[:, 2].numpy(), "brightness": f[:, 5].numpy()})
    spreads = f[:, 1:].std(0).numpy()
    diagnostics, records = sc.measure_image(
        model, render, f[0], readout, cavs, columns={"height": 2, "y": 4, "brightness": 5},
        readout_columns={"height": 1, "brightness": 4}, alphas=[-0.5, 0.0, 0.5],
        spreads=spreads, delta={"height": 1.0, "brightness": 0.05}, brightness_step=0.1,
    )  # fmt: skip
    for name in ("two-image h", "true height", "two-image b", "true brightness"):
        assert records[name]["angle_to_truth"] < 1.0, name
        assert records[name]["purity"] > 0.9, (name, records[name]["purity"])
    assert records["two-image h"]["gain"] > 0 and records["two-image b"]["gain"] > 0
    # the post's edit moves y too: away from the height factor in the pull-back metric
    assert diagnostics["post_edit_angle_to_truth"] > 5.0
    assert np.isfinite(diagnostics["true_angle_hb_pullback"])
