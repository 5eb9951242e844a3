"""Batched ensembles against single-run training: every run must still be its seed."""

from __future__ import annotations

import pyro
import pytest
import torch
from pyro.infer import TraceMeanField_ELBO

from pyro_latent.vae import (
    VAE,
    CheckpointError,
    EnsembleFailedError,
    VAEConfig,
    VAEEnsemble,
    load_vae,
    read_checkpoint,
    train_ensemble,
    train_vae,
)

TINY = VAEConfig("tiny", latent_dim=4, hidden=(16,), batch_size=16)
SEEDS = [0, 1, 2]


@pytest.fixture(scope="module")
def images():
    generator = torch.Generator().manual_seed(7)
    return torch.rand(50 * TINY.batch_size, 784, generator=generator)  # 50 steps an epoch


@pytest.fixture(scope="module")
def singles(images):
    return [train_vae(TINY, images, 2, s, checkpoint_dir=None, progress=False) for s in SEEDS]


def _relative_gap(a: VAE, b: VAE) -> float:
    return max(
        float((v - w).abs().max() / v.abs().max())
        for v, w in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


def _assert_same_run(a: VAE, b: VAE, rtol: float = 1e-5) -> None:
    assert list(a.state_dict()) == list(b.state_dict())
    assert _relative_gap(a, b) < rtol
    assert a.history_ == pytest.approx(b.history_, rel=1e-6)


def test_each_run_follows_its_single_run(images, singles):
    runs = train_ensemble(TINY, images, 2, SEEDS, checkpoint_dir=None, progress=False)
    assert [r.seed_ for r in runs] == SEEDS
    for single, run in zip(singles, runs, strict=True):
        _assert_same_run(single, run)
    # the runs did not collapse onto one another: the test can tell seeds apart
    assert _relative_gap(runs[0], runs[1]) > 1e-2


def test_initial_weights_are_the_single_runs(images):
    stacked = VAEEnsemble.initial(TINY, SEEDS)
    for r, seed in enumerate(SEEDS):
        pyro.set_rng_seed(seed)
        fresh = VAE(TINY)
        for key, value in fresh.state_dict().items():
            assert torch.equal(stacked.member_state(r)[key], value)


def test_losses_are_pyro_elbos_of_the_members(images):
    """Each run's loss is Pyro's TraceMeanField_ELBO of its own VAE given the same noise ε, and
    the summed loss gives each run exactly its own gradient."""
    stacked = VAEEnsemble.initial(TINY, SEEDS)
    x = images[: 3 * 8].reshape(3, 8, 784)
    for r in range(3):
        member = stacked.member(r)
        state = torch.get_rng_state()
        pyro_loss = TraceMeanField_ELBO().differentiable_loss(
            member.model_for_training, member.guide_for_training, x[r]
        )
        torch.set_rng_state(state)
        eps = torch.empty(8, TINY.latent_dim).normal_()  # the ε Pyro's guide just drew
        own = VAEEnsemble.from_vaes([member]).losses(x[r : r + 1], eps[None])
        assert float(own.detach()) == pytest.approx(float(pyro_loss.detach()), rel=1e-6)

    noise = torch.randn(3, 8, TINY.latent_dim, generator=torch.Generator().manual_seed(1))
    stacked.losses(x, noise).sum().backward()
    for r in range(3):
        alone = VAEEnsemble.initial(TINY, SEEDS)
        alone.losses(x, noise)[r].backward()
        others = [i for i in range(3) if i != r]
        for (name, p_sum), (_, p_alone) in zip(
            stacked.named_parameters(), alone.named_parameters(), strict=True
        ):
            torch.testing.assert_close(p_sum.grad[r], p_alone.grad[r], msg=name)
            assert torch.count_nonzero(p_alone.grad[others]) == 0


def test_member_round_trip_is_exact(singles):
    stacked = VAEEnsemble.from_vaes(singles)
    for r, vae in enumerate(singles):
        for key, value in vae.state_dict().items():
            assert torch.equal(stacked.member(r).state_dict()[key], value)


def test_checkpoints_are_single_run_checkpoints(images, singles, tmp_path):
    runs = train_ensemble(TINY, images, 2, SEEDS, checkpoint_dir=tmp_path, progress=False)
    for run, single in zip(runs, singles, strict=True):
        loaded = load_vae(tmp_path / f"tiny-{run.seed_}" / "checkpoint.pt")
        for key, value in run.state_dict().items():
            assert torch.equal(loaded.state_dict()[key], value)
        assert loaded.history_ == run.history_
        ckpt = read_checkpoint(run.checkpoint_path_)
        assert ckpt.epoch == ckpt.target_epochs == 2
        assert ckpt.extra["ensemble"] == [f"tiny-{s}" for s in SEEDS]
        _assert_same_run(single, loaded)


def test_a_single_run_resumes_from_an_ensemble_checkpoint(images, singles, tmp_path):
    train_ensemble(TINY, images, 1, SEEDS, checkpoint_dir=tmp_path, progress=False)
    resumed = train_vae(TINY, images, 2, 1, checkpoint_dir=tmp_path, resume=True, progress=False)
    _assert_same_run(singles[1], resumed)


def test_an_ensemble_resumes_from_single_run_checkpoints(images, singles, tmp_path):
    for seed in SEEDS:
        train_vae(TINY, images, 1, seed, checkpoint_dir=tmp_path, progress=False)
    runs = train_ensemble(
        TINY, images, 2, SEEDS, checkpoint_dir=tmp_path, resume=True, progress=False
    )
    for single, run in zip(singles, runs, strict=True):
        _assert_same_run(single, run)


def test_a_killed_ensemble_resumes_to_the_same_weights(images, tmp_path, monkeypatch):
    whole = train_ensemble(TINY, images, 2, SEEDS, checkpoint_dir=None, progress=False)
    calls = {"n": 0}
    real = VAEEnsemble.losses

    def dies_in_epoch_two(self, x, noise):
        calls["n"] += 1
        if calls["n"] == 1 + 50 + 20:  # validation, epoch 1, then 20 steps into epoch 2
            raise KeyboardInterrupt
        return real(self, x, noise)

    monkeypatch.setattr(VAEEnsemble, "losses", dies_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        train_ensemble(TINY, images, 2, SEEDS, checkpoint_dir=tmp_path, progress=False)
    monkeypatch.setattr(VAEEnsemble, "losses", real)
    assert {read_checkpoint(tmp_path / f"tiny-{s}").epoch for s in SEEDS} == {1}
    resumed = train_ensemble(
        TINY, images, 2, SEEDS, checkpoint_dir=tmp_path, resume=True, progress=False
    )
    for a, b in zip(whole, resumed, strict=True):
        for key, value in a.state_dict().items():
            assert torch.equal(b.state_dict()[key], value)
        assert a.history_ == b.history_


def test_a_nan_names_its_run_and_keeps_the_saved_epoch(images, tmp_path, monkeypatch):
    train_ensemble(TINY, images, 1, SEEDS, checkpoint_dir=tmp_path, progress=False)
    saved = {s: (tmp_path / f"tiny-{s}" / "checkpoint.pt").read_bytes() for s in SEEDS}
    real = VAEEnsemble.losses
    calls = {"n": 0}

    def poisoned(self, x, noise):
        calls["n"] += 1
        losses = real(self, x, noise)
        if calls["n"] == 4:
            losses = losses * torch.tensor([1.0, float("nan"), 1.0])
        return losses

    monkeypatch.setattr(VAEEnsemble, "losses", poisoned)
    with pytest.raises(EnsembleFailedError, match=r"tiny-1 gave a non-finite loss") as failure:
        train_ensemble(TINY, images, 2, SEEDS, checkpoint_dir=tmp_path, resume=True, progress=False)
    assert failure.value.runs == ["tiny-1"]
    for s in SEEDS:
        assert (tmp_path / f"tiny-{s}" / "checkpoint.pt").read_bytes() == saved[s]


@pytest.mark.parametrize(
    ("seeds", "message"),
    [
        ([], "non-empty sequence"),
        ("012", "non-empty sequence"),
        ([0, 0], "distinct"),
        ([0, -1], "seed"),
        ([0, 1.5], "seed"),
    ],
)
def test_bad_seeds_are_named(images, seeds, message):
    with pytest.raises(ValueError, match=message):
        train_ensemble(TINY, images, 1, seeds, checkpoint_dir=None, progress=False)


def test_bad_arguments_are_named(images, tmp_path):
    with pytest.raises(ValueError, match="epochs"):
        train_ensemble(TINY, images, 0, SEEDS, checkpoint_dir=None, progress=False)
    with pytest.raises(TypeError, match="config"):
        train_ensemble(3, images, 1, SEEDS, checkpoint_dir=None, progress=False)
    with pytest.raises(ValueError, match="images"):
        train_ensemble(TINY, images[:, :10], 1, SEEDS, checkpoint_dir=None, progress=False)
    with pytest.raises(ValueError, match="n_runs"):
        VAEEnsemble(TINY, 0)
    with pytest.raises(ValueError, match="one configuration"):
        VAEEnsemble.from_vaes([VAE(TINY), VAE(VAEConfig("other", latent_dim=4, hidden=(8,)))])
    with pytest.raises(TypeError, match="non-empty sequence of VAE"):
        VAEEnsemble.from_vaes([])
    with pytest.raises(IndexError, match="0..2"):
        VAEEnsemble.initial(TINY, SEEDS).member(3)
    with pytest.raises(ValueError, match="noise"):
        stacked = VAEEnsemble.initial(TINY, SEEDS)
        stacked.losses(images[:24].reshape(3, 8, 784), torch.zeros(3, 8, 5))


def test_resume_rules(images, tmp_path):
    train_vae(TINY, images, 1, 0, checkpoint_dir=tmp_path, progress=False)
    with pytest.raises(CheckpointError, match="already exists"):
        train_ensemble(TINY, images, 2, [0, 1], checkpoint_dir=tmp_path, progress=False)
    with pytest.raises(CheckpointError, match="all its runs or none.*tiny-1"):
        train_ensemble(
            TINY, images, 2, [0, 1], checkpoint_dir=tmp_path, resume=True, progress=False
        )
    train_vae(TINY, images, 2, 1, checkpoint_dir=tmp_path, progress=False)
    before = (tmp_path / "tiny-0" / "checkpoint.pt").read_bytes()
    with pytest.raises(CheckpointError, match="one epoch.*tiny-0: 1, tiny-1: 2"):
        train_ensemble(
            TINY, images, 2, [0, 1], checkpoint_dir=tmp_path, resume=True, progress=False
        )
    assert (tmp_path / "tiny-0" / "checkpoint.pt").read_bytes() == before
