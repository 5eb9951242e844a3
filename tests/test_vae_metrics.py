"""The latent-space measurements on encodings with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from pyro_latent.vae import VAE, VAEConfig
from pyro_latent.vae.metrics import (
    Encodings,
    active_units,
    activity,
    correlations,
    encode_dataset,
    evaluate_elbo,
    kl_per_dim,
    mean_abs_offdiag,
)


def _encodings(n=4000, seed=0) -> Encodings:
    """Dims 0-1 move with x (correlated with each other), dim 2 barely, dim 3 not at all."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n, generator=g)
    loc = torch.stack(
        [
            base,
            0.8 * base + 0.6 * torch.randn(n, generator=g),
            0.05 * torch.randn(n, generator=g),  # variance 0.0025 < 0.01
            torch.zeros(n),
        ],
        dim=1,
    )
    scale = torch.tensor([0.1, 0.1, 1.0, 1.0]).expand(n, 4)
    return Encodings(loc, scale)


def test_active_units_burda_criterion():
    enc = _encodings()
    assert active_units(enc).tolist() == [True, True, False, False]
    act = activity(enc)
    assert act[0] == pytest.approx(1.0, abs=0.1) and act[3] == 0.0


def test_kl_per_dim_matches_torch():
    enc = _encodings()
    expected = kl_divergence(Normal(enc.loc, enc.scale), Normal(0.0, 1.0)).mean(0)
    np.testing.assert_allclose(kl_per_dim(enc), expected.double().numpy(), rtol=1e-5)
    assert kl_per_dim(enc)[3] == pytest.approx(0.0, abs=1e-12)  # the prior itself


def test_means_correlated_samples_less():
    enc = _encodings()
    corr = correlations(enc, seed=0)
    assert corr["mean_corr"][0, 1] == pytest.approx(0.8, abs=0.03)
    # Cov(z) = Cov(mu) + diag E[sigma^2]: 0.8 / sqrt(1.01 * 1.01) on the active pair.
    assert corr["sample_corr"][0, 1] == pytest.approx(0.8 / 1.01, abs=0.03)
    assert np.isnan(corr["mean_corr"][3, 0])  # a constant mean has no correlation
    assert corr["mean_abs_offdiag_means_active"] == pytest.approx(0.8, abs=0.03)
    assert corr["mean_abs_offdiag_samples"] < corr["mean_abs_offdiag_means"]


def test_mean_abs_offdiag():
    c = np.array([[1.0, -0.5, np.nan], [-0.5, 1.0, 0.1], [np.nan, 0.1, 1.0]])
    assert mean_abs_offdiag(c) == pytest.approx((0.5 + 0.5 + 0.1 + 0.1) / 4)
    assert np.isnan(mean_abs_offdiag(np.eye(1)))


def test_evaluate_elbo_is_seeded_and_bounded():
    torch.manual_seed(0)
    vae = VAE(VAEConfig("t", latent_dim=2, hidden=(8,)))
    x = torch.rand(50, 784)
    a, b = evaluate_elbo(vae, x, seed=1), evaluate_elbo(vae, x, seed=1)
    assert a == b and np.isfinite(a) and a < 0
    state = torch.get_rng_state()
    evaluate_elbo(vae, x, seed=2)
    assert torch.equal(state, torch.get_rng_state()), "the global RNG must be left alone"
    enc = encode_dataset(vae, x, batch_size=7)
    assert enc.loc.shape == (50, 2)
