"""Two latent models the library did not define, through every VAE-side tool.

* ``PyroExampleVAE``: a VAE written the way Pyro's ``examples/vae/vae.py`` writes one (its own
  ``Encoder``/``Decoder`` modules, its own ``model`` and ``guide``, sites ``latent`` and
  ``obs``), trained here with ``pyro.infer.SVI`` for a few steps, plus the four members of the
  :class:`~pyro_latent.LatentModel` protocol;
* ``PlainAutoencoder``: a plain ``nn.Module`` with ``encode(x) -> z`` and ``decode(z) -> x``,
  wrapped by :func:`~pyro_latent.as_latent_model` (deterministic: no posterior).

Every tool runs on the VAE; on the autoencoder it runs where it needs only codes and images, and
refuses with a ``TypeError`` that names what is missing where it needs a posterior ``q(z | x)``
or a likelihood.  Where a number has an independent check, it is checked: the ELBO from the
protocol against the example's own ``model``/``guide`` under Pyro's ``Trace_ELBO``, the
importance-sampled evidence above the ELBO, the formula against decoding and encoding by hand.
"""

from __future__ import annotations

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import SVI, Trace_ELBO, TraceMeanField_ELBO
from pyro.optim import Adam
from torch import nn
from torch.nn import functional as F

from pyro_latent import LatentModel, as_latent_model
from pyro_latent.analysis.jacobians import decoder_spectra
from pyro_latent.analysis.reparametrize import ReparametrizedVAE, Rotation
from pyro_latent.concepts import traversal
from pyro_latent.concepts.shoe_directions import directions_at, jacobian_path, measure_shoe
from pyro_latent.core import decode_in_batches, encode_in_batches
from pyro_latent.study import coordinate_free, latent_geometry
from pyro_latent.study import vae_translation as ev
from pyro_latent.translate import formula_map, posterior_mapping
from pyro_latent.vae import VAE, get_preset
from pyro_latent.vae import metrics as m
from pyro_latent.vae.posterior import (
    nuts_chains,
    posterior_check,
    vae_log_evidence,
    vae_log_joint,
)

D_VAE, D_AE, PIXELS = 3, 2, 784
NUTS = {"n_samples": 8, "warmup_steps": 8, "n_chains": 2}


# ----------------------------------------------------------------- the two outside models
class Encoder(nn.Module):
    def __init__(self, z_dim: int, hidden_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(PIXELS, hidden_dim)
        self.fc21 = nn.Linear(hidden_dim, z_dim)
        self.fc22 = nn.Linear(hidden_dim, z_dim)

    def forward(self, x):
        hidden = F.softplus(self.fc1(x.reshape(-1, PIXELS)))
        return self.fc21(hidden), torch.exp(self.fc22(hidden))


class Decoder(nn.Module):
    def __init__(self, z_dim: int, hidden_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(z_dim, hidden_dim)
        self.fc21 = nn.Linear(hidden_dim, PIXELS)

    def logits(self, z):
        return self.fc21(F.softplus(self.fc1(z)))

    def forward(self, z):
        return torch.sigmoid(self.logits(z))


class PyroExampleVAE(nn.Module):
    """Pyro's example VAE, with ``latent_dim``, ``encode``, ``decode`` and ``log_likelihood``."""

    def __init__(self, z_dim: int = D_VAE, hidden_dim: int = 32):
        super().__init__()
        self.encoder = Encoder(z_dim, hidden_dim)
        self.decoder = Decoder(z_dim, hidden_dim)
        self.z_dim = z_dim

    def model(self, x):
        pyro.module("decoder", self.decoder)
        with pyro.plate("data", x.shape[0]):
            z_loc = x.new_zeros(torch.Size((x.shape[0], self.z_dim)))
            z_scale = x.new_ones(torch.Size((x.shape[0], self.z_dim)))
            z = pyro.sample("latent", dist.Normal(z_loc, z_scale).to_event(1))
            logits = self.decoder.logits(z)
            pyro.sample(
                "obs",
                dist.Bernoulli(logits=logits, validate_args=False).to_event(1),
                obs=x.reshape(-1, PIXELS),
            )

    def guide(self, x):
        pyro.module("encoder", self.encoder)
        with pyro.plate("data", x.shape[0]):
            z_loc, z_scale = self.encoder(x)
            pyro.sample("latent", dist.Normal(z_loc, z_scale).to_event(1))

    # --- the LatentModel protocol
    @property
    def latent_dim(self) -> int:
        return self.z_dim

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z):
        return self.decoder(z)

    def log_likelihood(self, x, z):
        bernoulli = dist.Bernoulli(logits=self.decoder.logits(z), validate_args=False)
        return bernoulli.to_event(1).log_prob(x.reshape(*x.shape[:-1], PIXELS))


class PlainAutoencoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.down = nn.Sequential(nn.Linear(PIXELS, 32), nn.ReLU(), nn.Linear(32, D_AE))
        self.up = nn.Sequential(nn.Linear(D_AE, 32), nn.ReLU(), nn.Linear(32, PIXELS), nn.Sigmoid())

    def encode(self, x):
        return self.down(x.reshape(-1, PIXELS))

    def decode(self, z):
        return self.up(z)


def shoe_images(n: int, seed: int = 0) -> torch.Tensor:
    """Boxes standing on the bottom of the frame, of varied height and brightness: enough of a
    shoe for the meters, and learnt in a few steps."""
    g = torch.Generator().manual_seed(seed)
    images = torch.zeros(n, 28, 28)
    tops = torch.randint(12, 20, (n,), generator=g)
    shade = 0.7 + 0.3 * torch.rand(n, generator=g)
    for i in range(n):
        images[i, int(tops[i]) : 26, 3:25] = shade[i]
    return images.reshape(n, PIXELS)


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return shoe_images(96)


@pytest.fixture(scope="module")
def pyro_vae(images) -> PyroExampleVAE:
    torch.manual_seed(0)
    vae = PyroExampleVAE()
    with pyro.get_param_store().scope():
        svi = SVI(vae.model, vae.guide, Adam({"lr": 1e-2}), loss=Trace_ELBO())
        losses = [svi.step(images) for _ in range(60)]
    assert losses[-1] < losses[0]  # it did train
    return vae.eval()


@pytest.fixture(scope="module")
def autoencoder(images) -> LatentModel:
    torch.manual_seed(1)
    ae = PlainAutoencoder()
    optimiser = torch.optim.Adam(ae.parameters(), lr=1e-2)
    for _ in range(60):
        optimiser.zero_grad()
        F.binary_cross_entropy(ae.decode(ae.encode(images)), images).backward()
        optimiser.step()
    return as_latent_model(ae.down, ae.up, latent_dim=D_AE).eval()


@pytest.fixture(scope="module")
def study_vae() -> VAE:
    torch.manual_seed(2)
    return VAE(get_preset("small")).eval()


def test_both_are_latent_models(pyro_vae, autoencoder, study_vae):
    for model in (pyro_vae, autoencoder, study_vae):
        assert isinstance(model, LatentModel)
    assert not isinstance(PlainAutoencoder(), LatentModel)  # no latent_dim, no log_likelihood


# ----------------------------------------------------------------- encoding and decoding
def test_encoding_and_decoding_in_batches(pyro_vae, autoencoder, images):
    loc, scale = encode_in_batches(pyro_vae, images, batch_size=7)
    torch.testing.assert_close(loc, pyro_vae.encode(images)[0].detach())
    assert scale.shape == (96, D_VAE) and bool((scale > 0).all())
    codes, none = encode_in_batches(autoencoder, images, batch_size=7)
    assert codes.shape == (96, D_AE) and none is None
    assert decode_in_batches(autoencoder, codes, batch_size=5).shape == (96, PIXELS)
    assert decode_in_batches(pyro_vae, np.zeros((4, D_VAE))).shape == (4, PIXELS)
    assert decode_in_batches(pyro_vae, np.zeros((0, D_VAE))).shape == (0, PIXELS)
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        decode_in_batches(autoencoder, np.zeros((4, 3)))


def test_the_protocol_elbo_is_the_examples_own_elbo(pyro_vae, images):
    # The ELBO built from the protocol alone against the example's own model and guide: the
    # same estimator (TraceMeanField_ELBO, closed-form KL) on the same seed.
    ours = m.evaluate_elbo(pyro_vae, images, n_particles=4, seed=3)
    with pyro.get_param_store().scope(), torch.no_grad(), torch.random.fork_rng():
        torch.manual_seed(3)
        elbo = TraceMeanField_ELBO(num_particles=4, vectorize_particles=False)
        theirs = -elbo.loss(pyro_vae.model, pyro_vae.guide, images) / len(images)
    assert ours == pytest.approx(theirs, rel=1e-5)


def test_metrics_on_the_vae_and_refusals_on_the_autoencoder(pyro_vae, autoencoder, images):
    summary = m.summarize(pyro_vae, images)
    assert np.isfinite(summary["test_elbo"]) and len(summary["kl_per_dim"]) == D_VAE
    assert 0 <= summary["active_units"] <= D_VAE
    measured = latent_geometry.measure(pyro_vae, images, torch.arange(96) % 10)
    assert measured["active_units"] == summary["active_units"]
    enc = m.encode_dataset(autoencoder, images)
    assert m.active_units(enc).shape == (D_AE,)  # activity needs only the codes
    with pytest.raises(TypeError, match="deterministic"):
        m.kl_per_dim(enc)
    with pytest.raises(TypeError, match="deterministic"):
        m.evaluate_elbo(autoencoder, images)
    with pytest.raises(TypeError, match="deterministic"):
        m.summarize(autoencoder, images)


# ----------------------------------------------------------------- translation
def test_the_formula_maps_between_any_two(pyro_vae, autoencoder, study_vae, images):
    z1 = pyro_vae.encode(images[:5])[0].detach()
    with torch.no_grad():
        by_hand = study_vae.encode(pyro_vae.decode(z1))[0]
    torch.testing.assert_close(formula_map(pyro_vae, study_vae, z1), by_hand)
    codes = encode_in_batches(autoencoder, images[:5])[0]
    assert formula_map(autoencoder, pyro_vae, codes).shape == (5, D_VAE)
    assert formula_map(study_vae, autoencoder, torch.zeros(5, 20)).shape == (5, D_AE)
    # float64 codes meet float32 weights: the adapter converts
    assert formula_map(autoencoder, pyro_vae, codes.double()).shape == (5, D_VAE)


def test_the_posterior_mapping_needs_what_each_side_needs(pyro_vae, autoencoder, study_vae):
    z1 = torch.zeros(3, 20)
    mapped = posterior_mapping(study_vae, pyro_vae, z1, 4, n_proposals=16)
    assert mapped.posterior.shape == (4, 3, D_VAE) and bool((mapped.ess >= 1).all())
    # the example VAE has no observation_model: its mean image stands in, or it refuses
    back = posterior_mapping(pyro_vae, study_vae, torch.zeros(2, D_VAE), 3, likelihood="mean")
    assert back.guide.shape == (3, 2, 20)
    with pytest.raises(TypeError, match="observation_model"):
        posterior_mapping(pyro_vae, study_vae, torch.zeros(2, D_VAE), 3)
    # the wrapped autoencoder has p(x | z) (Bernoulli) to draw from, but no posterior to map to
    drawn = posterior_mapping(autoencoder, pyro_vae, torch.zeros(2, D_AE), 3, n_proposals=4)
    assert drawn.guide.shape == (3, 2, D_VAE)
    with pytest.raises(TypeError, match="deterministic"):
        posterior_mapping(study_vae, autoencoder, z1, 2)


def test_the_translators_evaluation_runs_between_outside_models(pyro_vae, autoencoder, images):
    labels = np.arange(96) % 3
    fit, test = images[:64], images[64:]
    c1, c2 = ev.pair_codes(pyro_vae, fit, test), ev.pair_codes(autoencoder, fit, test)
    out = ev.evaluate_translators(
        pyro_vae, autoencoder, c1, c2, labels[:64], labels[64:], test, names=("affine",)
    )
    assert set(out["scores"]) == {"affine", "formula"}
    assert np.isfinite(out["scores"]["affine"]["stitched_mse"])


# ----------------------------------------------------------------- concepts and geometry
@pytest.mark.parametrize("which", ["pyro_vae", "autoencoder"])
def test_shoe_directions_and_traversals(which, request, images):
    model = request.getfixturevalue(which)
    dim = model.latent_dim
    cavs = {"height": torch.randn(dim), "brightness": torch.randn(dim)}
    z0, directions, _ = directions_at(model, images[0], cavs)
    assert z0.shape == (dim,) and float(directions["two-image h"].norm()) == pytest.approx(1.0)
    spreads = {"height": 3.0, "brightness": 0.1}
    _, records = measure_shoe(model, images[0], cavs, [-1.0, 0.0, 1.0], spreads)
    assert "two-image h" in records
    frames = traversal.traverse(model, z0, directions["two-image h"].to(z0.dtype), [0.0, 1.0])
    assert frames.shape == (2, PIXELS)
    assert jacobian_path(model, z0, [0.0, 0.5]).shape == (2, dim)


@pytest.mark.parametrize("which", ["pyro_vae", "autoencoder"])
def test_decoder_spectra_and_reparametrisation(which, request, images):
    model = request.getfixturevalue(which)
    dim = model.latent_dim
    z = encode_in_batches(model, images[:6])[0]
    s = decoder_spectra(model, z)
    assert s.shape == (6, dim) and bool((s[:, :-1] >= s[:, 1:]).all())
    moved = ReparametrizedVAE(model, Rotation(dim, seed=0))
    assert isinstance(moved, LatentModel)
    # a rotation leaves the decoder's singular values where they were
    torch.testing.assert_close(decoder_spectra(moved, moved.phi(z)), s, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(
        decode_in_batches(moved, moved.phi(z)), decode_in_batches(model, z), rtol=1e-4, atol=1e-5
    )
    torch.testing.assert_close(
        moved.log_likelihood(images[:6], moved.phi(z)),
        model.log_likelihood(images[:6], z),
        rtol=1e-4,
        atol=1e-3,
    )


def test_coordinate_measurements_on_the_outside_vae(pyro_vae, autoencoder, images):
    labels = np.arange(96) % 10
    shoes = np.arange(12)
    target_codes = encode_in_batches(autoencoder, images)[0].double().numpy()
    out = coordinate_free.coordinate_measurements(
        pyro_vae, images, labels, target_vae=autoencoder, target_codes=target_codes,
        shoes=shoes, heights=np.linspace(5, 15, 12), spreads={"height": 3.0, "brightness": 0.1},
        jacobian_points=8, tree_points=60, purity_shoes=2, min_cluster_size=10,
        persistence_points=50,
    )  # fmt: skip
    assert 0 <= out["active_units"] <= D_VAE and np.isfinite(out["translator_r2"])
    # the model-density tree reads the outside model's own encoder density and decoder
    assert out["density_tree_nodes"] >= 1 and out["_density_tree"].n_points == 60
    assert out["diagram_summary"]["h0"]["bars"] == 49


# ----------------------------------------------------------------- the true posterior
def test_evidence_and_nuts_on_the_vae(pyro_vae, images):
    x = images[0]
    estimate = vae_log_evidence(pyro_vae, x, n_samples=200)
    # IS with K draws is a stochastic lower bound above the ELBO from the same draws
    assert estimate["log_evidence"] >= estimate["elbo"]
    elbo = m.evaluate_elbo(pyro_vae, x[None], n_particles=200)
    assert estimate["log_evidence"] >= elbo - 1.0
    summary, data = posterior_check(pyro_vae, x, nuts=NUTS, is_samples=50)
    assert data.posterior["z"].shape == (2, 8, D_VAE)
    assert np.isfinite(summary["importance"]["log_evidence"])


def test_nuts_runs_on_the_autoencoders_likelihood_but_not_its_guide(autoencoder, images):
    # A deterministic encoder has no q(z | x), but with a likelihood the posterior
    # p(z | x) ∝ N(z; 0, I) p(x | z) is still defined, and NUTS samples it.
    x = images[0]
    log_joint = vae_log_joint(autoencoder, x)
    start = encode_in_batches(autoencoder, x[None])[0][0]
    data = nuts_chains(log_joint, start, **NUTS)
    assert data.posterior["z"].shape == (2, 8, D_AE)
    with pytest.raises(TypeError, match="deterministic"):
        vae_log_evidence(autoencoder, x)
    with pytest.raises(TypeError, match="deterministic"):
        posterior_check(autoencoder, x, nuts=NUTS)


def test_without_a_likelihood_the_tools_that_need_one_say_so(images):
    ae = PlainAutoencoder()
    bare = as_latent_model(ae.down, ae.up, latent_dim=D_AE, likelihood=None)
    assert isinstance(bare, LatentModel) or bare.log_likelihood is None
    with pytest.raises(TypeError, match="log_likelihood"):
        vae_log_joint(bare, images[0])
    with pytest.raises(TypeError, match="log_likelihood"):
        m.evaluate_elbo(bare, images)
    assert formula_map(bare, bare, torch.zeros(2, D_AE)).shape == (2, D_AE)  # needs neither


def test_a_module_that_is_not_a_latent_model_is_named(images):
    with pytest.raises(TypeError, match="as_latent_model"):
        m.encode_dataset(PlainAutoencoder(), images)
    with pytest.raises(TypeError, match="as_latent_model"):
        formula_map(PlainAutoencoder(), PlainAutoencoder(), torch.zeros(1, 2))
    with pytest.raises(TypeError, match="as_latent_model"):
        decoder_spectra(nn.Linear(2, 4), torch.zeros(3, 2))
