"""The convolutional preset: its networks against a functional re-computation, its Pyro program,
training, checkpoints, and the schedulers that must not stack it into an MLP ensemble."""

from __future__ import annotations

import pyro
import pytest
import torch
from torch.nn import functional as F

from pyro_latent.core.latent_model import check_latent_model
from pyro_latent.vae import VAE, VAEConfig, get_preset, load_vae, train_vae
from pyro_latent.vae.ensemble import VAEEnsemble, train_ensemble
from pyro_latent.vae.mixture import MixturePriorVAE, build_vae
from pyro_latent.vae.parallel import TrainingRun, _groups

TINY_CONV = VAEConfig("tiny-conv", latent_dim=3, hidden=(4, 6, 16), architecture="conv")


@pytest.fixture
def vae():
    torch.manual_seed(0)
    return VAE(TINY_CONV)


def n_weights(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_the_preset_is_convolutional_and_about_as_large_as_large():
    conv, large = get_preset("conv"), get_preset("large")
    assert conv.architecture == "conv" and conv.latent_dim == large.latent_dim == 20
    assert not conv.stackable and large.stackable and not get_preset("small-mix").stackable
    modules = [m for m in VAE(conv).modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(modules) == 2
    ratio = n_weights(VAE(conv)) / n_weights(VAE(large))
    assert 0.6 < ratio < 1.0, ratio  # the preset's comment: 0.84 M against 1.08 M


def test_the_encoder_and_decoder_are_the_convolutions_they_say(vae):
    """The modules against the same weights applied with torch's functional API, written out
    from the module docstring's diagram."""
    x = torch.rand(5, 784)
    enc = [m for m in vae.encoder.net if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
    h = x.view(5, 1, 28, 28)
    h = F.relu(F.conv2d(h, enc[0].weight, enc[0].bias, stride=2, padding=1))
    assert h.shape == (5, 4, 14, 14)
    h = F.relu(F.conv2d(h, enc[1].weight, enc[1].bias, stride=2, padding=1))
    assert h.shape == (5, 6, 7, 7)
    h = F.relu(F.linear(h.flatten(1), enc[2].weight, enc[2].bias))
    out = F.linear(h, enc[3].weight, enc[3].bias)
    loc, scale = vae.encode(x)
    torch.testing.assert_close(loc, out[:, :3])
    torch.testing.assert_close(scale, F.softplus(out[:, 3:]) + 1e-4)

    dec = [m for m in vae.decoder.net if isinstance(m, torch.nn.ConvTranspose2d | torch.nn.Linear)]
    z = torch.randn(5, 3)
    h = F.relu(F.linear(z, dec[0].weight, dec[0].bias))
    h = F.relu(F.linear(h, dec[1].weight, dec[1].bias)).view(5, 6, 7, 7)
    h = F.relu(F.conv_transpose2d(h, dec[2].weight, dec[2].bias, stride=2, padding=1))
    logits = F.conv_transpose2d(h, dec[3].weight, dec[3].bias, stride=2, padding=1)
    assert logits.shape == (5, 1, 28, 28)
    torch.testing.assert_close(vae.decode(z), torch.sigmoid(logits.flatten(1)))


@pytest.mark.parametrize("shape", [(5, 784), (5, 28, 28), (5, 1, 28, 28), (0, 784)])
def test_images_of_every_accepted_shape(vae, shape):
    loc, scale = vae.encode(torch.rand(shape))
    assert loc.shape == scale.shape == (shape[0], 3)
    assert vae.decode(loc).shape == (shape[0], 784)


def test_codes_with_a_batch_shape_and_the_protocol(vae):
    check_latent_model(vae)
    z = torch.randn(2, 4, 3)
    assert vae.observation_model(z).batch_shape == (2, 4)
    x = torch.rand(4, 784)
    ll = vae.log_likelihood(x, z)
    assert ll.shape == (2, 4)
    torch.testing.assert_close(ll[1], vae.log_likelihood(x, z[1]))


def test_the_elbo_is_finite_and_the_mixture_prior_takes_conv_networks(vae):
    x = torch.rand(6, 784)
    with pyro.get_param_store().scope():
        assert torch.isfinite(torch.tensor(pyro.infer.Trace_ELBO().loss(vae.model, vae.guide, x)))
    mixed = build_vae(VAEConfig("mix-conv", 3, (4, 6, 16), prior_components=2, architecture="conv"))
    assert isinstance(mixed, MixturePriorVAE) and isinstance(mixed.decoder, type(vae.decoder))
    loss = mixed.training_loss()(mixed.model_for_training, mixed.guide_for_training, x)
    assert torch.isfinite(loss)


def test_training_a_checkpoint_and_loading_it_back(tmp_path):
    data = torch.rand(64, 784)
    trained = train_vae(TINY_CONV, data, 2, seed=3, checkpoint_dir=tmp_path, progress=False)
    assert len(trained.history_) == 2 and all(torch.isfinite(torch.tensor(trained.history_)))
    loaded = load_vae(trained.checkpoint_path_)
    assert loaded.config == TINY_CONV and loaded.config.to_dict()["architecture"] == "conv"
    for (key, a), b in zip(trained.state_dict().items(), loaded.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=key)


def test_the_mlp_record_is_what_it_was_before_the_field():
    """Checkpoints of the earlier VAEs keep their digests: no ``architecture`` key for an MLP."""
    assert "architecture" not in get_preset("small").to_dict()
    assert VAEConfig.from_dict(TINY_CONV.to_dict()) == TINY_CONV


def test_ensembles_refuse_conv_and_the_scheduler_trains_it_alone():
    with pytest.raises(ValueError, match="conv networks"):
        VAEEnsemble(TINY_CONV, 2)
    with pytest.raises(ValueError, match="conv networks"):
        train_ensemble(TINY_CONV, torch.rand(10, 784), 1, [0, 1], checkpoint_dir=None)
    pending = [(TrainingRun(TINY_CONV, seed, 1), None) for seed in range(3)]
    assert all(len(group) == 1 for group in _groups(pending, ensembles=True, n_workers=1))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(architecture="resnet"), "architecture"),
        (dict(architecture="conv", hidden=(8, 16)), "conv architecture takes hidden"),
    ],
)
def test_bad_architectures(kwargs, match):
    with pytest.raises(ValueError, match=match):
        VAEConfig(**{"name": "x", **kwargs})
