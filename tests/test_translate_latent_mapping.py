"""The posterior mapping z₁ → z₂ between two VAEs, against its deterministic limit (the formula),
a case with a known posterior, and its error messages."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import LinearRegression

from pyro_latent.translate.latent_mapping import (
    formula_map,
    mapping_program,
    posterior_mapping,
    transferred_expectation,
)
from pyro_latent.vae import VAE, VAEConfig


def _vae(latent_dim: int, seed: int) -> VAE:
    torch.manual_seed(seed)
    return VAE(VAEConfig(f"t{seed}", latent_dim=latent_dim, hidden=(16,))).eval()


@pytest.fixture(scope="module")
def pair():
    return _vae(3, 1), _vae(2, 2)


@pytest.fixture(scope="module")
def points():
    return torch.randn(5, 3, generator=torch.Generator().manual_seed(0))


def test_formula_is_decode_then_encoder_mean(pair, points):
    src, dst = pair
    with torch.no_grad():
        expected = dst.encoder(torch.sigmoid(src.decoder(points)))[0]
    assert torch.allclose(formula_map(src, dst, points), expected)


def test_deterministic_limit_is_the_formula_exactly(pair, points):
    src, dst = pair
    m = posterior_mapping(src, dst, points, 3, n_proposals=0, likelihood="mean", draw="mean")
    assert m.guide.shape == (3, 5, 2)
    torch.testing.assert_close(m.guide, m.formula.expand(3, 5, 2), atol=1e-6, rtol=0)
    assert float(m.offsets("guide")["distance"].max()) < 1e-5


def test_guide_draws_converge_to_the_formula_when_the_likelihood_is_deterministic(pair, points):
    src, dst = pair
    m = posterior_mapping(src, dst, points, 4000, n_proposals=0, likelihood="mean", seed=3)
    offsets = m.offsets("guide")
    # the mean of 4000 draws of q₂(z | E₁[x | z₁]) is within a few standard errors of μ₂
    assert float(offsets["z_score"].max()) < 4.0
    assert float(offsets["distance"].max()) < 0.05


def test_sampled_images_spread_the_mapping_beyond_the_guide_alone(pair, points):
    src, dst = pair
    fixed = posterior_mapping(src, dst, points, 500, n_proposals=0, likelihood="mean")
    sampled = posterior_mapping(src, dst, points, 500, n_proposals=0, likelihood="sample")
    assert float(sampled.offsets("guide")["spread"].mean()) > float(
        fixed.offsets("guide")["spread"].mean()
    )


def _flat_likelihood_vae() -> VAE:
    """A 2-D VAE whose decoder ignores z (so p(z | x) is the prior N(0, I)) and whose guide is
    N(0.5, 2²) whatever the image: a posterior known in closed form, far from the guide."""
    vae = _vae(2, 5)
    with torch.no_grad():
        for layer in (vae.decoder.net[-1], vae.encoder.net[-1]):
            layer.weight.zero_()
        vae.encoder.net[-1].bias.copy_(torch.tensor([0.5, 0.5, 1.85, 1.85]))
    return vae


def test_importance_resampling_recovers_a_known_posterior():
    src, dst = _vae(3, 1), _flat_likelihood_vae()
    z1 = torch.zeros(20, 3)
    m = posterior_mapping(src, dst, z1, 50, n_proposals=200, seed=1)
    guide = m.guide.reshape(-1, 2)
    posterior = m.posterior.reshape(-1, 2)
    assert abs(float(guide.mean()) - 0.5) < 0.1  # the guide's draws sit at its own mean
    assert float(posterior.mean(0).abs().max()) < 0.13  # 1000 draws: s.e. 0.032
    assert float((posterior.var(0) - 1).abs().max()) < 0.2  # s.e. of the variance 0.045
    # every weight ∝ N(z; 0, I) / N(z; 0.5, 2²): the ESS is a known fraction of K, well above 10%
    assert 0.3 * 200 < float(m.ess.median()) < 200


class _PeakedPosterior:
    """A 1-D LatentModel written here, a stand-in for VAE 2 whose posterior given image ``x``
    is concentrated at ``x[0]``: the likelihood is ``N(x₀; z, 0.03²)``, the guide a broad
    ``N(0, 3²)`` whatever the image."""

    latent_dim = 1

    def encode(self, x):
        return torch.zeros(x.shape[0], 1), torch.full((x.shape[0], 1), 3.0)

    def decode(self, z):
        return z

    def log_likelihood(self, x, z):
        return torch.distributions.Normal(z, 0.03).log_prob(x).sum(-1)


def test_importance_resampling_keeps_each_images_own_posterior():
    from pyro_latent.translate.latent_mapping import _importance_resample

    torch.manual_seed(0)
    targets = torch.tensor([-1.0, 0.5, 2.0])
    z, ess = _importance_resample(_PeakedPosterior(), targets[:, None], 4000)
    assert z.shape == (3, 1) and ess.shape == (3,)
    torch.testing.assert_close(z[:, 0], targets, atol=0.1, rtol=0)  # each image its own peak


def test_draws_are_seeded_and_leave_the_global_rng_alone(pair, points):
    src, dst = pair
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = posterior_mapping(src, dst, points, 8, n_proposals=5, seed=7)
    assert torch.equal(torch.get_rng_state(), before)
    b = posterior_mapping(src, dst, points, 8, n_proposals=5, seed=7, batch_points=2)
    c = posterior_mapping(src, dst, points, 8, n_proposals=5, seed=8)
    assert torch.equal(a.guide, posterior_mapping(src, dst, points, 8, n_proposals=5, seed=7).guide)
    assert a.guide.shape == b.guide.shape
    assert not torch.equal(a.guide, c.guide)


def test_mapping_program_is_a_pyro_program_with_plates(pair, points):
    from pyro import poutine

    src, dst = pair
    trace = poutine.trace(mapping_program).get_trace(src, dst, points, 4)
    trace.compute_log_prob()
    assert trace.nodes["x"]["value"].shape == (4, 5, 784)
    assert trace.nodes["z2"]["log_prob"].shape == (4, 5)
    assert {f.name for f in trace.nodes["z2"]["cond_indep_stack"]} == {"draws", "points"}


def test_inference_data_and_summary(pair, points):
    src, dst = pair
    m = posterior_mapping(src, dst, points, 6, n_proposals=4)
    idata = m.to_inference_data()
    assert idata.posterior["z2_guide"].shape == (1, 6, 5, 2)
    assert idata.posterior["z2_posterior"].shape == (1, 6, 5, 2)
    assert idata.sample_stats["ess"].shape == (1, 6, 5)
    summary = m.summary()
    assert summary["points"] == 5 and summary["draws"] == 6
    assert summary["means"]["spread"] > 0
    active = m.summary(dims=[True, False])
    assert active["dims"] == 1
    with pytest.raises(ValueError, match="boolean mask of length 2"):
        m.summary(dims=[True])


def test_transferred_expectation_averages_the_identifier_over_draws():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 2))
    regression = LinearRegression().fit(X, X @ np.array([1.0, -2.0]) + 3)
    draws = torch.as_tensor(rng.normal(size=(7, 4, 2)))
    expected = (draws.numpy() @ np.array([1.0, -2.0]) + 3).mean(0)
    np.testing.assert_allclose(transferred_expectation(regression, draws), expected)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"likelihood": "median"}, "likelihood must be one of"),
        ({"draw": "mode"}, "draw must be one of"),
        ({"n_proposals": 1}, "at least 2"),
        ({"n_draws": 0}, "n_draws must be a positive int"),
        ({"seed": -1}, "seed must be a non-negative int"),
    ],
)
def test_bad_arguments_are_named(pair, points, kwargs, match):
    src, dst = pair
    with pytest.raises(ValueError, match=match):
        posterior_mapping(src, dst, points, **{"n_draws": 2, **kwargs})


def test_bad_points_are_named(pair):
    src, dst = pair
    with pytest.raises(ValueError, match=r"shape \(N, 3\)"):
        posterior_mapping(src, dst, torch.zeros(4, 2), 2)
    with pytest.raises(ValueError, match="NaN"):
        formula_map(src, dst, torch.full((1, 3), float("nan")))
    with pytest.raises(ValueError, match="no points"):
        posterior_mapping(src, dst, torch.zeros(0, 3), 2)
    with pytest.raises(ValueError, match="no posterior draws"):
        posterior_mapping(src, dst, torch.zeros(1, 3), 2, n_proposals=0).draws("posterior")
    with pytest.raises(TypeError, match="must be a LatentModel"):
        formula_map(src, "large", torch.zeros(1, 3))
