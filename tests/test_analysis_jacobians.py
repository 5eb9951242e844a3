"""Jacobian spectra (:mod:`pyro_latent.analysis.jacobians`): exact ranks and singular values of
linear maps, agreement with finite differences, what a change of coordinates keeps and what it
moves, ReLU blocks as counts of active units, and the refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from pyro_latent.analysis.jacobians import (
    _summed_jacobians,
    _vmapped_jacobians,
    decoder_spectra,
    effective_rank,
    entropy_rank,
    layer_spectra,
    spectra_summary,
)


def low_rank(p, d, r, seed=0):
    """A ``p × d`` float64 matrix of rank exactly ``r``, singular values well apart from 0."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((p, r)) @ rng.standard_normal((r, d))


def mlp(d=3, hidden=5, p=4, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d, hidden), nn.Tanh(), nn.Linear(hidden, p)).double()


def finite_difference_jacobian(f, z, eps=1e-6):
    """Central differences ``[P, D]`` at one point ``z [D]``."""
    columns = []
    with torch.no_grad():
        for j in range(len(z)):
            step = torch.zeros_like(z)
            step[j] = eps
            columns.append((f((z + step)[None])[0] - f((z - step)[None])[0]) / (2 * eps))
    return torch.stack(columns, -1)


def checking_decode(net, d):
    """A decoder that validates its input's shape and values, like ``VAE.decode``."""

    def decode(z):
        if z.dim() != 2 or z.shape[1] != d:
            raise ValueError(f"bad shape {tuple(z.shape)}")
        if not torch.isfinite(z).all():  # a value-dependent branch, which vmap refuses
            raise ValueError("non-finite z")
        return torch.sigmoid(net(z))

    return decode


# --------------------------------------------------------------------------- decoder_spectra
def test_linear_decoder_has_the_rank_and_singular_values_of_its_matrix():
    W = low_rank(12, 6, 3)
    weight = torch.from_numpy(W)
    z = torch.randn(40, 6, dtype=torch.float64)
    s = decoder_spectra(lambda v: v @ weight.T, z, batch_size=7)
    assert s.shape == (40, 6) and s.dtype == torch.float64
    expected = np.linalg.svd(W, compute_uv=False)
    np.testing.assert_allclose(s.numpy(), np.broadcast_to(expected, (40, 6)), atol=1e-10)
    for tol in (1e-1, 1e-3, 1e-6):
        assert (effective_rank(s, tol) == 3).all()


def test_vmapped_jacobian_matches_finite_differences():
    net = mlp()
    decode = checking_decode(net, 3)
    z = torch.randn(9, 3, dtype=torch.float64)
    plain = lambda v: torch.sigmoid(net(v))  # noqa: E731
    with torch.no_grad():
        J_vmap, J_summed = _vmapped_jacobians(plain, z), _summed_jacobians(decode, z)
    s = decoder_spectra(plain, z, batch_size=4)
    for n in range(len(z)):
        J = finite_difference_jacobian(decode, z[n])
        torch.testing.assert_close(J_vmap[n], J, atol=1e-8, rtol=1e-6)
        torch.testing.assert_close(J_summed[n], J, atol=1e-8, rtol=1e-6)
        np.testing.assert_allclose(s[n].numpy(), torch.linalg.svdvals(J).numpy(), atol=1e-8)
    # A decoder that checks its input's values takes the batched route, to the same spectra.
    torch.testing.assert_close(decoder_spectra(decode, z, batch_size=4), s)
    assert (s[:, :-1] >= s[:, 1:]).all()


def test_vae_decode_is_accepted():
    from pyro_latent.vae.model import PRESETS, VAE

    vae = VAE(PRESETS["vae2d-a"])
    s = decoder_spectra(vae.decode, torch.randn(5, 2))
    assert s.shape == (5, 2) and bool(torch.isfinite(s).all()) and (s > 0).all()


def test_change_of_latent_coordinates_keeps_rank_but_moves_singular_values():
    W = torch.from_numpy(low_rank(10, 4, 2, seed=1))
    A = torch.tensor(
        [[3.0, 1.0, 0.0, 0.0], [0.0, 0.5, 0.0, 2.0], [1.0, 0.0, 2.0, 0.0], [0.0, 0.0, 1.0, 1.0]],
        dtype=torch.float64,
    )
    assert abs(float(torch.linalg.det(A))) > 0.1
    z = torch.randn(20, 4, dtype=torch.float64)
    s = decoder_spectra(lambda v: v @ W.T, z)
    s_moved = decoder_spectra(lambda v: (v @ A.T) @ W.T, z)  # decode ∘ A
    for tol in (1e-2, 1e-6):
        assert (effective_rank(s, tol) == 2).all()
        assert (effective_rank(s_moved, tol) == 2).all()
    assert not np.allclose(s.numpy(), s_moved.numpy(), rtol=1e-2)
    np.testing.assert_allclose(
        s_moved[0].numpy(), np.linalg.svd((W @ A).numpy(), compute_uv=False), atol=1e-10
    )


def test_rows_of_a_nonlinear_decoder_differ_and_batches_do_not_matter():
    net = mlp(seed=2)
    z = torch.randn(11, 3, dtype=torch.float64)
    decode = lambda v: torch.tanh(net(v))  # noqa: E731
    s = decoder_spectra(decode, z, batch_size=1)
    torch.testing.assert_close(decoder_spectra(decode, z, batch_size=256), s)
    assert not torch.allclose(s[0], s[1])


# ------------------------------------------------------------------------------------- ranks
def test_effective_rank_counts_relative_to_the_largest_value():
    s = np.array([[10.0, 1.0, 0.01, 0.0], [2.0, 2.0, 2.0, 2.0], [0.0, 0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(effective_rank(s, 0.05), [2, 4, 0])
    np.testing.assert_array_equal(effective_rank(s, 1e-4), [3, 4, 0])
    np.testing.assert_array_equal(effective_rank(1e6 * s, 0.05), [2, 4, 0])  # scale-free
    assert effective_rank(s, 0.05).dtype == np.int64


def test_entropy_rank_between_one_and_k():
    s = torch.tensor([[5.0, 0.0, 0.0], [1.0, 1.0, 1.0], [2.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    e = entropy_rank(s)
    p = np.array([2.0, 1.0]) / 3.0
    np.testing.assert_allclose(e, [1.0, 3.0, np.exp(-(p * np.log(p)).sum()), 0.0])


# ------------------------------------------------------------------------------------ layers
def test_layer_spectra_blocks_and_relu_rank_counts_active_units():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 3)).double()
    x = torch.randn(30, 6, dtype=torch.float64)
    blocks = layer_spectra(net, x, batch_size=8)
    assert [(b["block"], b["in"], b["out"]) for b in blocks] == [(0, 6, 4), (1, 4, 3)]
    assert blocks[0]["modules"] == ["Linear", "ReLU"] and blocks[1]["modules"] == ["Linear"]
    assert blocks[0]["singular_values"].shape == (30, 4)
    assert blocks[1]["singular_values"].shape == (30, 3)
    # A 4 × 6 Gaussian weight has full row rank, so any set of its rows is independent.
    assert int(torch.linalg.matrix_rank(net[0].weight)) == 4
    active = (net[0](x) > 0).sum(1).numpy()
    assert len(set(active.tolist())) > 1  # the test sees several activity patterns
    np.testing.assert_array_equal(effective_rank(blocks[0]["singular_values"], 1e-8), active)
    # The last block is linear: its spectrum is its weight's, wherever it is taken.
    expected = torch.linalg.svdvals(net[2].weight.detach())
    torch.testing.assert_close(blocks[1]["singular_values"], expected.expand(30, 3))


def test_layer_spectra_takes_each_block_at_its_own_input():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(2, 5), nn.Tanh(), nn.Linear(5, 5), nn.Tanh(), nn.Linear(5, 2))
    x = torch.randn(7, 2)
    blocks = layer_spectra(net, x)
    assert [(b["in"], b["out"]) for b in blocks] == [(2, 5), (5, 5), (5, 2)]
    h = torch.tanh(net[0](x)).detach()
    middle = decoder_spectra(lambda v: torch.tanh(net[2](v)), h)
    torch.testing.assert_close(blocks[1]["singular_values"], middle)


# ----------------------------------------------------------------------------------- summary
def test_summary_is_json_and_per_label():
    s = np.array([[4.0, 2.0, 0.001], [4.0, 0.1, 0.0], [4.0, 4.0, 4.0], [1.0, 0.0, 0.0]])
    summary = spectra_summary(s, tols=(0.1, 0.01), labels=np.array([0, 0, 1, 1]))
    json.dumps(summary)
    assert summary["n_points"] == 4 and summary["n_values"] == 3
    assert set(summary["effective_rank"]) == {"0.1", "0.01"}
    at = summary["effective_rank"]["0.1"]  # ranks 2, 1, 3, 1
    assert (at["min"], at["max"], at["median"]) == (1, 3, 1.5)
    assert isinstance(at["min"], int) and isinstance(at["median"], float)
    assert at["by_label"] == {"0": 1.5, "1": 2.0}
    assert summary["entropy_rank"]["max"] == pytest.approx(3.0)
    assert "by_label" not in spectra_summary(s)["entropy_rank"]


# -------------------------------------------------------------------------------- refusals
@pytest.mark.parametrize(
    ("z", "message"),
    [
        (torch.zeros(3), "z must be 2-D"),
        (torch.zeros(0, 2), "z is empty"),
        (torch.tensor([[0.0, float("nan")]]), "z contains NaN or infinite"),
        (torch.tensor([[True, False]]), "z must be a real matrix"),
    ],
)
def test_decoder_spectra_refuses_bad_z(z, message):
    with pytest.raises(ValueError, match=message):
        decoder_spectra(lambda v: v, z)


def test_decoder_spectra_refuses_a_non_finite_jacobian_and_bad_outputs():
    z = torch.tensor([[1.0, 2.0], [0.0, 1.0], [3.0, 1.0]])
    with pytest.raises(ValueError, match="Jacobian of decode is not finite at row 1"):
        decoder_spectra(lambda v: torch.sqrt(v.abs()), z)
    with pytest.raises(ValueError, match=r"decode must map \[B, D\] to \[B, P\]"):
        decoder_spectra(lambda v: v.sum(), z)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        decoder_spectra(lambda v: v, z, batch_size=0)


def test_rank_functions_refuse_bad_arguments():
    s = np.ones((2, 3))
    for tol in (0, 1, 1.5, -0.1, float("nan"), "0.1", True):
        with pytest.raises(ValueError, match=r"tol must be a number in \(0, 1\)"):
            effective_rank(s, tol)
    with pytest.raises(ValueError, match="singular_values must be 2-D"):
        entropy_rank(np.ones(3))
    with pytest.raises(ValueError, match="singular_values must be finite and non-negative"):
        effective_rank(-s, 0.1)
    with pytest.raises(ValueError, match="singular_values must be finite and non-negative"):
        spectra_summary(np.array([[1.0, np.inf]]))
    with pytest.raises(ValueError, match="tols must be a non-empty sequence"):
        spectra_summary(s, tols=())
    with pytest.raises(ValueError, match="labels must be 1-D with one label per point"):
        spectra_summary(s, labels=[0, 1, 2])


def test_layer_spectra_refuses_bad_nets_and_inputs():
    net = nn.Sequential(nn.Linear(3, 2), nn.ReLU())
    with pytest.raises(ValueError, match="net must be a torch.nn.Sequential"):
        layer_spectra(nn.Linear(3, 2), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="net is an empty Sequential"):
        layer_spectra(nn.Sequential(), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="block 0 refuses its input of shape"):
        layer_spectra(net, torch.zeros(2, 4))
    with pytest.raises(ValueError, match="x contains NaN or infinite"):
        layer_spectra(net, torch.full((2, 3), float("inf")))
