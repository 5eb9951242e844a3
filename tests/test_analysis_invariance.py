"""Which measurements survive a re-parametrisation of the latent: the invariant ones held to
tolerance on a tiny VAE, the coordinate-bound ones shown to move."""

import numpy as np
import pytest
import torch

from pyro_latent.analysis.jacobians import decoder_spectra, effective_rank
from pyro_latent.analysis.reparametrize import Linear, Rotation
from pyro_latent.study import coordinate_free as inv
from pyro_latent.vae import VAE, VAEConfig
from pyro_latent.vae.metrics import Encodings, active_units


def _vae(latent_dim: int, seed: int) -> VAE:
    torch.manual_seed(seed)
    return VAE(VAEConfig(f"t{seed}", latent_dim=latent_dim, hidden=(16,))).eval()


@pytest.fixture(scope="module")
def setting():
    g = torch.Generator().manual_seed(0)
    images = torch.rand(300, 784, generator=g)
    labels = np.arange(300) % 10
    target = _vae(2, 7)
    with torch.no_grad():
        target_codes = target.encode(images)[0].double().numpy()
    shoes = np.flatnonzero(np.isin(labels, (5, 7, 9)))
    common = {
        "target_vae": target, "target_codes": target_codes, "shoes": shoes,
        "heights": np.linspace(5, 25, len(shoes)), "spreads": {"height": 3.0, "brightness": 0.1},
        "jacobian_points": 20, "tree_points": 240, "purity_shoes": 3, "min_cluster_size": 10,
        "persistence_points": 150,
    }  # fmt: skip
    vae = _vae(3, 1)
    maps = inv.reparametrizations(3, seed=2)
    measured = inv.compare_with_reference({
        name: inv.coordinate_measurements(inv.wrapped(vae, phi), images, labels, **common)
        for name, phi in maps.items()
    })  # fmt: skip
    return measured, inv.invariance_rows(measured)


def test_model_density_tree_and_diagrams_under_the_maps(setting):
    measured, rows = setting
    by = {row["quantity"]: row for row in rows}
    assert not any(k.startswith("_") for m in measured.values() for k in m)
    for name in ("rotation", "linear", "scaled-linear", "coupling"):  # |det J| constant
        assert measured[name]["density_tree_moved"] == 0, name
        assert name in by["density_tree_nodes"]["invariant_under"]
    # Rips diagrams see distances: a rotation keeps them, a stretching map does not
    assert measured["rotation"]["h1_distance"] < 1e-6 and measured["rotation"]["h0_distance"] < 1e-6
    assert "rotation" in by["h0_distance"]["invariant_under"]
    assert {"linear", "coupling"} <= set(by["h0_distance"]["changed_under"])
    assert measured["identity"]["tree_moved"] == measured["identity"]["density_tree_moved"] == 0


def test_rank_translator_and_stitching_survive_every_linear_map(setting):
    measured, rows = setting
    by = {row["quantity"]: row for row in rows}
    for quantity in ("jacobian_rank", "translator_r2", "stitched_mse"):
        assert {"rotation", "linear"} <= set(by[quantity]["invariant_under"]), quantity
    assert measured["linear"]["translator_r2"] == pytest.approx(
        measured["identity"]["translator_r2"], rel=1e-6
    )


def test_rotation_keeps_cka_but_a_general_linear_map_does_not(setting):
    measured, rows = setting
    by = {row["quantity"]: row for row in rows}
    assert "rotation" in by["cka"]["invariant_under"]
    assert "linear" in by["cka"]["changed_under"]
    assert "linear" in by["top_singular_value"]["changed_under"]
    assert "rotation" in by["axis_variance"]["changed_under"]
    # the total variance is a trace: a rotation keeps it
    np.testing.assert_allclose(
        sum(measured["rotation"]["axis_variance"]), sum(measured["identity"]["axis_variance"])
    )


def test_active_units_are_not_coordinate_free():
    # two active axes and one nearly constant: a rotation spreads the activity over all three
    rng = np.random.default_rng(0)
    z = np.column_stack([rng.normal(size=500), rng.normal(size=500), 0.01 * rng.normal(size=500)])
    before = Encodings(torch.as_tensor(z), torch.ones(500, 3))
    y = Rotation(3, seed=0)(torch.as_tensor(z))
    after = Encodings(y, torch.ones(500, 3))
    assert active_units(before).sum() == 2
    assert active_units(after).sum() == 3


def test_the_decoder_rank_is_unchanged_by_a_linear_map_on_a_low_rank_decoder():
    vae = _vae(4, 3)
    with torch.no_grad():
        vae.decoder.net[0].weight[:, 2:] = 0.0  # the decoder ignores two of four latents
    z = torch.randn(30, 4, generator=torch.Generator().manual_seed(1))
    wrapped = inv.wrapped(vae, Linear(4, seed=5, condition=10.0))
    plain = effective_rank(decoder_spectra(vae.decode, z), 1e-3)
    moved = effective_rank(decoder_spectra(wrapped.decode, wrapped.phi(z)), 1e-3)
    assert (plain == 2).all() and (moved == 2).all()


def test_invariance_rows_compare_against_the_reference():
    measured = {"identity": {"a": 1.0, "n": 3}, "rotation": {"a": 1.0005, "n": 3},
                "linear": {"a": 1.2, "n": 4}}  # fmt: skip
    rows = inv.invariance_rows(measured, quantities=("a", "n"))
    assert rows[0]["invariant_under"] == ["rotation"] and rows[0]["changed_under"] == ["linear"]
    assert rows[1]["tolerance"] == 0.0 and rows[1]["changed_under"] == ["linear"]
    with pytest.raises(ValueError, match="reference map"):
        inv.invariance_rows({"rotation": {"a": 1.0}}, quantities=("a",))


def test_the_coordinate_bound_quantities_still_survive_a_rotation(setting):
    _, rows = setting
    by = {row["quantity"]: row for row in rows}
    for quantity in ("tree_nodes", "tree_leaf_purity", "height_purity", "top_singular_value"):
        assert "rotation" in by[quantity]["invariant_under"], quantity


def test_invariance_rows_refuse_non_finite_values_and_missing_quantities():
    measured = {"identity": {"a": 1.0}, "rotation": {"a": float("nan")}}
    with pytest.raises(ValueError, match="a under 'rotation' is not finite"):
        inv.invariance_rows(measured, quantities=("a",))
    with pytest.raises(ValueError, match="b was not measured"):
        inv.invariance_rows({"identity": {"a": 1.0}}, quantities=("b",))
    both_none = inv.invariance_rows(
        {"identity": {"a": None}, "rotation": {"a": None}}, quantities=("a",)
    )
    assert both_none[0]["invariant_under"] == ["rotation"]


def test_invariance_groups_and_summary_from_rows():
    rows = [
        {"quantity": "jacobian_rank", "invariant_under": ["rotation", "linear"],
         "changed_under": [], "tolerance": 0.001, "values": {"identity": 3.0}},
        {"quantity": "axis_variance", "invariant_under": [], "changed_under": ["rotation"],
         "tolerance": 0.001, "values": {"identity": [1.0]}},
        {"quantity": "cka", "invariant_under": ["rotation"], "changed_under": ["linear"],
         "tolerance": 0.001, "values": {"identity": 0.9}},
        {"quantity": "active_units", "invariant_under": [], "changed_under": ["rotation"],
         "tolerance": 0.0, "values": {"identity": 4, "rotation": 7}},
    ]  # fmt: skip
    assert inv.invariance_groups(rows) == {
        "every": ["jacobian_rank"], "rotation_only": ["cka"],
        "moved": ["axis_variance", "active_units"],
    }  # fmt: skip
    summary = inv.invariance_summary(rows)
    assert summary["tolerance"] == 0.001 and summary["active_units"]["rotation"] == 7
    assert "linear" in summary["invariant_under"]["jacobian_rank"]
    with pytest.raises(ValueError, match="active_units"):
        inv.invariance_summary(rows[:3])


def test_spectrum_gap_reads_the_ratios_around_the_last_active_unit():
    gap = inv.spectrum_gap([2.0, 1.0, 0.1, 0.001], active_units=3, tol=0.01)
    assert gap["above"] == pytest.approx(0.05) and gap["below"] == pytest.approx(0.0005)
    assert gap["times_above"] == pytest.approx(5.0) and gap["times_below"] == pytest.approx(20.0)
    assert inv.spectrum_gap([2.0, 1.0], active_units=2) is None  # every dimension active
    assert inv.spectrum_gap([2.0, 0.0], active_units=1)["times_below"] is None
    with pytest.raises(ValueError, match="finite"):
        inv.spectrum_gap([0.0, 1.0, 2.0], active_units=1)
