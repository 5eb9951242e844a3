"""The mixture-prior VAE: its enumerated ELBO against the same bound written out by hand, its
prior against torch's MixtureSameFamily, one component against the Normal-prior VAE, and
training, checkpoints and the LatentModel tools on it."""

import dataclasses

import pyro
import pyro.poutine as poutine
import pytest
import torch
from pyro.infer import Trace_ELBO

from pyro_latent.analysis.density_trees import model_density_tree
from pyro_latent.core.latent_model import LatentModel
from pyro_latent.vae.mixture import MixturePriorVAE, build_vae
from pyro_latent.vae.model import VAE, VAEConfig
from pyro_latent.vae.parallel import _groups
from pyro_latent.vae.training import load_vae, train_vae

DIAGONAL = VAEConfig("mix", latent_dim=3, hidden=(16,), prior_components=4)
FULL = dataclasses.replace(DIAGONAL, name="mixfull", prior_covariance="full")


def _model(config, seed=0) -> MixturePriorVAE:
    torch.manual_seed(seed)
    vae = build_vae(config)
    with torch.no_grad():  # away from the initial values, so that every parameter matters
        vae.prior.logits.copy_(torch.randn(4))
        vae.prior.raw_scale.copy_(0.3 * torch.randn(vae.prior.raw_scale.shape))
    return vae


@pytest.fixture(scope="module")
def images():
    return torch.rand(12, 784, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("config", [DIAGONAL, FULL], ids=["diagonal", "full"])
def test_log_prior_is_torchs_mixture(config):
    vae = _model(config)
    prior = vae.prior
    mixture = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(logits=prior.logits),
        torch.distributions.MultivariateNormal(prior.means, scale_tril=prior.scale_tril()),
    )
    z = torch.randn(7, 2, 3)
    torch.testing.assert_close(vae.log_prior(z), mixture.log_prob(z))
    resp = vae.responsibilities(z)
    torch.testing.assert_close(resp.sum(-1), torch.ones(7, 2))


@pytest.mark.parametrize("config", [DIAGONAL, FULL], ids=["diagonal", "full"])
def test_enumerated_elbo_is_the_bound_written_out(config, images):
    vae = _model(config)
    pyro.set_rng_seed(3)
    loss = vae.training_loss()(vae.model_for_training, vae.guide_for_training, images)
    pyro.set_rng_seed(3)
    z = poutine.trace(vae.guide_for_training).get_trace(images).nodes["z"]["value"]
    loc, scale = vae.encoder(images)
    elbo = (
        vae.likelihood(vae.decoder(z)).log_prob(images)
        + vae.log_prior(z)
        - torch.distributions.Normal(loc, scale).log_prob(z).sum(-1)
    ).sum()
    torch.testing.assert_close(loss, -elbo)


def test_one_standard_component_is_the_normal_prior_vae(images):
    config = dataclasses.replace(DIAGONAL, prior_components=1)
    torch.manual_seed(0)
    mixture = build_vae(config)
    torch.manual_seed(0)
    plain = VAE(dataclasses.replace(config, prior_components=0))
    mixture.load_state_dict({**plain.state_dict(), **{f"prior.{k}": v for k, v in
                             mixture.prior.state_dict().items()}})  # fmt: skip
    with torch.no_grad():
        mixture.prior.means.zero_()  # N(0, I): logits and log-scales are already 0
    pyro.set_rng_seed(4)
    ours = mixture.training_loss()(mixture.model_for_training, mixture.guide_for_training, images)
    pyro.set_rng_seed(4)
    theirs = Trace_ELBO().differentiable_loss(
        plain.model_for_training, plain.guide_for_training, images
    )
    torch.testing.assert_close(ours, theirs)


def test_it_trains_checkpoints_and_serves_the_tools(tmp_path, images):
    data = torch.rand(200, 784, generator=torch.Generator().manual_seed(2))
    vae = train_vae(DIAGONAL, data, epochs=2, seed=5, checkpoint_dir=tmp_path, progress=False)
    assert isinstance(vae, MixturePriorVAE) and isinstance(vae, LatentModel)
    assert len(vae.history_) == 2 and all(torch.isfinite(torch.tensor(vae.history_)))
    loaded = load_vae(vae.checkpoint_path_)
    assert isinstance(loaded, MixturePriorVAE)
    for (k, a), (_, b) in zip(vae.state_dict().items(), loaded.state_dict().items(), strict=True):
        torch.testing.assert_close(a, b, msg=k)
    clusters = loaded.cluster(images)
    assert clusters.dtype == torch.long and 0 <= int(clusters.min()) and int(clusters.max()) < 4
    tree = model_density_tree(loaded, data[:100], density="prior", min_cluster_size=5)
    assert tree.n_points == 100


def test_configs_and_scheduling():
    assert "prior_components" not in VAEConfig("small").to_dict()  # old checkpoints unchanged
    record = FULL.to_dict()
    assert record["prior_components"] == 4 and VAEConfig.from_dict(record) == FULL
    with pytest.raises(ValueError, match="prior_components"):
        VAEConfig("bad", prior_components=-1)
    with pytest.raises(ValueError, match="prior_covariance"):
        VAEConfig("bad", prior_components=2, prior_covariance="spherical")
    with pytest.raises(ValueError, match="prior_components ≥ 1"):
        MixturePriorVAE(VAEConfig("plain"))

    @dataclasses.dataclass(frozen=True)
    class Run:
        config: VAEConfig
        epochs: int
        seed: int

    pending = [(Run(DIAGONAL, 2, s), None) for s in range(3)]
    pending += [(Run(VAEConfig("t", hidden=(8,)), 2, s), None) for s in range(3)]
    sizes = sorted(len(g) for g in _groups(pending, ensembles=True, n_workers=1))
    assert sizes == [1, 1, 1, 3]  # the mixture runs alone, the Normal-prior seeds as one ensemble


def test_cluster_accuracy_is_the_best_relabelling():
    import itertools

    import numpy as np

    from pyro_latent.vae.metrics import cluster_accuracy

    rng = np.random.default_rng(0)
    labels, clusters = rng.integers(0, 4, 60), rng.integers(0, 4, 60)
    brute = max(
        np.mean(np.asarray(p)[clusters] == labels) for p in itertools.permutations(range(4))
    )
    assert cluster_accuracy(labels, clusters) == pytest.approx(brute)
    assert cluster_accuracy(labels, (labels + 1) % 4) == 1.0  # any relabelling is perfect
    assert cluster_accuracy([0, 0, 1, 1], [0, 1, 2, 3]) == 0.5  # extra clusters go unmatched
    with pytest.raises(ValueError, match="one length"):
        cluster_accuracy([0, 1], [0])


def test_a_resumed_mixture_run_is_the_uninterrupted_one(tmp_path):
    data = torch.rand(160, 784, generator=torch.Generator().manual_seed(3))
    straight = train_vae(DIAGONAL, data, 2, seed=1, checkpoint_dir=tmp_path / "a", progress=False)
    train_vae(DIAGONAL, data, 1, seed=1, checkpoint_dir=tmp_path / "b", progress=False)
    resumed = train_vae(
        DIAGONAL, data, 2, seed=1, checkpoint_dir=tmp_path / "b", resume=True, progress=False
    )
    assert resumed.history_ == straight.history_
    for (k, a), (_, b) in zip(
        straight.state_dict().items(), resumed.state_dict().items(), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=k)


def test_an_ensemble_refuses_a_mixture_prior():
    from pyro_latent.vae.ensemble import VAEEnsemble, train_ensemble

    with pytest.raises(ValueError, match="mixture prior"):
        VAEEnsemble(DIAGONAL, 2)
    with pytest.raises(ValueError, match="mixture prior"):
        train_ensemble(DIAGONAL, torch.rand(10, 784), 1, [0, 1], checkpoint_dir=None)
    with pytest.raises(ValueError, match="applies to a mixture prior only"):
        VAEConfig("plain", prior_covariance="full")
