"""Training, checkpoints, resume and determinism of the Pyro SVI VAEs, on a few thousand real
FashionMNIST images (the Debian package is installed in CI)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pyro
import pytest
import torch

from pyro_latent.vae import (
    VAE,
    CheckpointError,
    CheckpointMismatchError,
    ImageData,
    UnfinishedRunWarning,
    VAEConfig,
    load_vae,
    read_checkpoint,
    train_vae,
    write_checkpoint,
)
from pyro_latent.vae.metrics import evaluate_elbo
from pyro_latent.vae.training import CHECKPOINT_VERSION, checkpoint_path

# Small enough that one epoch takes well under a second on one core.
TINY = VAEConfig("tiny", latent_dim=4, hidden=(32,), batch_size=100, lr=3e-3)


@pytest.fixture(scope="module")
def train_images(tmp_path_factory):
    from pyro_latent.vae import load_fashion_mnist

    data = load_fashion_mnist(tmp_path_factory.mktemp("data"), limit=2000)
    return data.images


def _same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.needs_fashion_mnist
def test_one_epoch_improves_elbo(train_images):
    pyro.set_rng_seed(0)  # the initial weights train_vae starts from
    untrained = VAE(TINY).eval()
    before = evaluate_elbo(untrained, train_images[:500])
    trained = train_vae(TINY, train_images, epochs=1, seed=0, checkpoint_dir=None, progress=False)
    after = evaluate_elbo(trained, train_images[:500])
    # An untrained decoder predicts p = 0.5 everywhere: about -784 log 2 = -543 nats.
    assert before < -500
    assert after > before + 100, (before, after)
    assert len(trained.history_) == 1


@pytest.mark.needs_fashion_mnist
def test_same_seed_same_losses_other_seed_differs(train_images):
    runs = [
        train_vae(TINY, train_images, epochs=2, seed=s, checkpoint_dir=None, progress=False)
        for s in (3, 3, 4)
    ]
    assert runs[0].history_ == runs[1].history_
    assert _same_weights(runs[0], runs[1])
    assert runs[0].history_ != runs[2].history_


@pytest.mark.needs_fashion_mnist
def test_checkpoint_round_trip(train_images, tmp_path):
    vae = train_vae(TINY, train_images, epochs=1, seed=0, checkpoint_dir=tmp_path, progress=False)
    path = checkpoint_path(TINY, 0, tmp_path)
    assert path == tmp_path / "tiny-0" / "checkpoint.pt"
    assert not [p for p in path.parent.iterdir() if p != path], "temporary files left behind"
    # weights_only=True reads it: only tensors and plain types inside.
    raw = torch.load(path, weights_only=True)
    assert raw["version"] == CHECKPOINT_VERSION and raw["epoch"] == 1
    assert raw["target_epochs"] == 1
    ckpt = read_checkpoint(path)
    assert ckpt.config == TINY and ckpt.seed == 0 and ckpt.history == vae.history_
    assert ckpt.optim_state, "the optimiser state is part of the checkpoint"
    assert {"torch", "loader"} <= set(ckpt.rng_state)
    loaded = load_vae(path)
    assert _same_weights(loaded, vae) and loaded.history_ == vae.history_
    x = train_images[:7]
    torch.testing.assert_close(loaded.encode(x), vae.encode(x), rtol=0, atol=0)


@pytest.mark.needs_fashion_mnist
def test_resume_equals_uninterrupted(train_images, tmp_path):
    straight = train_vae(TINY, train_images, epochs=3, seed=1, checkpoint_dir=tmp_path / "a")
    train_vae(TINY, train_images, epochs=1, seed=1, checkpoint_dir=tmp_path / "b", progress=False)
    resumed = train_vae(
        TINY, train_images, epochs=3, seed=1, checkpoint_dir=tmp_path / "b", resume=True
    )
    assert resumed.history_ == straight.history_
    assert _same_weights(resumed, straight)
    # A complete checkpoint is reused as is, without training.
    mtime = checkpoint_path(TINY, 1, tmp_path / "b").stat().st_mtime_ns
    again = train_vae(
        TINY, train_images, epochs=3, seed=1, checkpoint_dir=tmp_path / "b", resume=True
    )
    assert again.history_ == straight.history_
    assert checkpoint_path(TINY, 1, tmp_path / "b").stat().st_mtime_ns == mtime


_KILLED_RUN = """
import sys, torch
torch.set_num_threads(1)
from pyro_latent.vae import VAEConfig, load_fashion_mnist, train_vae
cfg = VAEConfig("tiny", latent_dim=4, hidden=(32,), batch_size=100, lr=3e-3)
images = load_fashion_mnist(sys.argv[1], limit=2000).images
train_vae(cfg, images, epochs=1000, seed=2, checkpoint_dir=sys.argv[2], resume=True,
          progress=False)
"""


@pytest.mark.needs_fashion_mnist
@pytest.mark.slow
def test_resume_after_sigkill(train_images, tmp_path):
    """A real process killed with SIGKILL during training resumes to the same losses."""
    data_root = tmp_path / "data"
    from pyro_latent.vae import load_fashion_mnist

    load_fashion_mnist(data_root, limit=10)
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(_KILLED_RUN))
    proc = subprocess.Popen([sys.executable, str(script), str(data_root), str(tmp_path / "runs")])
    path = checkpoint_path(TINY, 2, tmp_path / "runs")
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if path.exists() and read_checkpoint(path).epoch >= 2:
                break
            assert proc.poll() is None, "training process died on its own"
            time.sleep(0.05)
        else:
            pytest.fail("no checkpoint with 2 epochs within 120 s")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    done = read_checkpoint(path).epoch
    assert done >= 2
    target = done + 1
    resumed = train_vae(
        TINY, train_images, epochs=target, seed=2, checkpoint_dir=tmp_path / "runs", resume=True
    )
    straight = train_vae(TINY, train_images, epochs=target, seed=2, checkpoint_dir=None)
    assert resumed.history_ == pytest.approx(straight.history_, rel=1e-6)


@pytest.fixture
def checkpoint(train_images, tmp_path) -> Path:
    train_vae(TINY, train_images, epochs=1, seed=0, checkpoint_dir=tmp_path, progress=False)
    return checkpoint_path(TINY, 0, tmp_path)


def _assert_refused(path: Path, error, match: str, call):
    before = path.read_bytes()
    with pytest.raises(error, match=match):
        call()
    assert path.read_bytes() == before, "a refused checkpoint must not be overwritten"


@pytest.mark.needs_fashion_mnist
def test_tampered_weights_are_refused(checkpoint, train_images):
    payload = torch.load(checkpoint, weights_only=True)
    key = next(iter(payload["model_state"]))
    payload["model_state"][key] = payload["model_state"][key] + 1e-3
    torch.save(payload, checkpoint)
    _assert_refused(checkpoint, CheckpointError, "SHA-256", lambda: read_checkpoint(checkpoint))
    _assert_refused(
        checkpoint,
        CheckpointError,
        "SHA-256",
        lambda: train_vae(
            TINY, train_images, 2, seed=0, checkpoint_dir=checkpoint.parents[1], resume=True
        ),
    )


@pytest.mark.needs_fashion_mnist
def test_truncated_file_is_refused(checkpoint):
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
    _assert_refused(checkpoint, CheckpointError, "not a readable", lambda: load_vae(checkpoint))


@pytest.mark.needs_fashion_mnist
def test_other_version_is_refused(checkpoint):
    ckpt = read_checkpoint(checkpoint)
    from pyro_latent.vae import training

    payload = torch.load(checkpoint, weights_only=True)
    payload["version"] = CHECKPOINT_VERSION + 1
    payload["sha256"] = training.payload_digest(payload)
    torch.save(payload, checkpoint)
    _assert_refused(
        checkpoint,
        CheckpointError,
        f"format version {CHECKPOINT_VERSION + 1}",
        lambda: load_vae(checkpoint),
    )
    assert ckpt.epoch == 1


@pytest.mark.needs_fashion_mnist
@pytest.mark.parametrize(
    "change, match",
    [
        (dict(config=VAEConfig("tiny", latent_dim=4, hidden=(32,), lr=1e-2)), "lr"),
        (dict(seed_in_file=5), "seed"),
        (dict(images=slice(0, 1000)), "training data"),
        (dict(config=VAEConfig("tiny", latent_dim=4, hidden=(16, 8))), "hidden"),
        (dict(config=VAEConfig("tiny", latent_dim=3, hidden=(32,))), "latent_dim"),
        (dict(epoch_in_file=3), "epochs"),
    ],
)
def test_mismatched_checkpoint_is_refused(checkpoint, train_images, change, match):
    if "seed_in_file" in change:  # a checkpoint moved to the folder of another seed
        ckpt = read_checkpoint(checkpoint)
        ckpt.seed = change["seed_in_file"]
        write_checkpoint(checkpoint, ckpt)
    if "epoch_in_file" in change:  # a longer run than the one asked for
        ckpt = read_checkpoint(checkpoint)
        ckpt.epoch = change["epoch_in_file"]
        ckpt.history = ckpt.history * 3
        write_checkpoint(checkpoint, ckpt)
    config = change.get("config", TINY)
    images = train_images[change.get("images", slice(None))]
    _assert_refused(
        checkpoint,
        CheckpointMismatchError,
        match,
        lambda: train_vae(
            config,
            images,
            epochs=change.get("epochs", 2),
            seed=0,
            checkpoint_dir=checkpoint.parents[1],
            resume=True,
        ),
    )


@pytest.mark.needs_fashion_mnist
def test_existing_checkpoint_needs_resume(checkpoint, train_images):
    _assert_refused(
        checkpoint,
        CheckpointError,
        "resume",
        lambda: train_vae(TINY, train_images, 2, seed=0, checkpoint_dir=checkpoint.parents[1]),
    )


@pytest.mark.needs_fashion_mnist
def test_load_vae_by_preset_name(tmp_path, train_images):
    with pytest.raises(FileNotFoundError, match="pyro-latent train --preset small"):
        load_vae("small", seed=0, runs_dir=tmp_path)
    with pytest.raises(KeyError, match="unknown VAE preset"):
        load_vae("medium", runs_dir=tmp_path)
    vae = train_vae("vae2d-a", train_images[:500], 1, seed=0, checkpoint_dir=tmp_path)
    loaded = load_vae("vae2d-a", seed=0, runs_dir=tmp_path)
    assert _same_weights(vae, loaded) and loaded.latent_dim == 2


@pytest.mark.needs_fashion_mnist
def test_cuda_without_gpu_is_a_clear_error(train_images):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ValueError, match="cuda"):
        train_vae(TINY, train_images, 1, device="cuda", checkpoint_dir=None)


@pytest.mark.needs_fashion_mnist
def test_cli_trains_and_resumes(tmp_path, capsys):
    from pyro_latent.study.cli import main

    data = tmp_path / "data"
    common = ["--preset", "vae2d-a", "--epochs", "1", "--limit", "500", "--no-progress"]
    common += ["--runs-dir", str(tmp_path / "runs"), "--data-dir", str(data)]
    assert main(["train", *common]) == 0
    assert "test ELBO" in capsys.readouterr().out
    assert main(["train", *common]) == 2  # refuses to overwrite
    assert "resume" in capsys.readouterr().err
    assert main(["train", *common, "--resume"]) == 0
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "--resume" in capsys.readouterr().out


@pytest.mark.needs_fashion_mnist
def test_preset_mismatch_in_architecture_is_refused_by_load_vae(tmp_path, train_images):
    other = VAEConfig("vae2d-a", latent_dim=2, hidden=(16, 8))  # same name, other layers
    train_vae(other, train_images[:300], 1, seed=0, checkpoint_dir=tmp_path, progress=False)
    with pytest.raises(CheckpointMismatchError, match="hidden=\\(16, 8\\)"):
        load_vae("vae2d-a", seed=0, runs_dir=tmp_path)


@pytest.mark.needs_fashion_mnist
def test_unfinished_run_warns_and_old_checkpoints_load_as_finished(checkpoint):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_vae(checkpoint)  # a finished run: no warning
    ckpt = read_checkpoint(checkpoint)
    assert ckpt.target_epochs == 1 and ckpt.finished
    ckpt.target_epochs = 5  # as if killed after 1 of 5 epochs
    write_checkpoint(checkpoint, ckpt)
    with pytest.warns(UnfinishedRunWarning, match="1 of its 5 epochs"):
        vae = load_vae(checkpoint)
    assert len(vae.history_) == 1
    # A checkpoint written before target_epochs existed has no such field: loads silently.
    ckpt.target_epochs = None
    write_checkpoint(checkpoint, ckpt)
    assert "target_epochs" not in torch.load(checkpoint, weights_only=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_checkpoint(checkpoint).finished
        load_vae(checkpoint)


@pytest.mark.needs_fashion_mnist
@pytest.mark.parametrize("part", ["optim_shape", "optim_layout", "rng"])
def test_unrestorable_state_is_a_checkpoint_error(checkpoint, train_images, part):
    ckpt = read_checkpoint(checkpoint)
    if part == "optim_shape":  # the torch Adam state of the first parameter, wrong shape
        ckpt.optim_state["state"][0]["exp_avg"] = torch.zeros(3, 3)
    elif part == "optim_layout":  # not a torch.optim.Adam state_dict
        ckpt.optim_state = {"encoder$$$nonexistent": {"state": {}, "param_groups": []}}
    else:
        ckpt.rng_state["torch"] = torch.zeros(5, dtype=torch.uint8)
    write_checkpoint(checkpoint, ckpt)  # a valid digest: only the contents are wrong
    _assert_refused(
        checkpoint,
        CheckpointError,
        "cannot be resumed",
        lambda: train_vae(
            TINY, train_images, 2, seed=0, checkpoint_dir=checkpoint.parents[1], resume=True
        ),
    )


@pytest.mark.needs_fashion_mnist
def test_stale_temporaries_are_removed(checkpoint, train_images):
    stale = checkpoint.parent / ".checkpoint.pt.abc123.tmp"
    stale.write_bytes(b"half a checkpoint")
    other = checkpoint.parent / "notes.txt"
    other.write_text("kept")
    train_vae(TINY, train_images, 1, seed=0, checkpoint_dir=checkpoint.parents[1], resume=True)
    assert not stale.exists() and other.exists()


@pytest.mark.needs_fashion_mnist
@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(seed=-1), "seed"),
        (dict(seed=1.5), "seed"),
        (dict(seed=True), "seed"),
        (dict(epochs=0), "epochs"),
        (dict(epochs=-2), "epochs"),
        (dict(epochs=1.5), "epochs"),
    ],
)
def test_bad_seed_and_epochs(train_images, kwargs, match):
    args = {"epochs": 1, "seed": 0, **kwargs}
    with pytest.raises(ValueError, match=match):
        train_vae(TINY, train_images[:100], checkpoint_dir=None, progress=False, **args)


def test_load_vae_rejects_bad_seed(tmp_path):
    with pytest.raises(ValueError, match="seed"):
        load_vae("small", seed=-1, runs_dir=tmp_path)


@pytest.mark.parametrize("bad", [2.0, -0.5, float("nan")])
def test_image_data_is_range_checked(bad):
    images = torch.rand(100, 784)
    images[3, 5] = bad
    data = ImageData(images, torch.zeros(100, dtype=torch.int64), ("a",))
    with pytest.raises(ValueError, match="NaN|\\[0, 1\\]"):
        train_vae(TINY, data, 1, checkpoint_dir=None, progress=False)


@pytest.mark.needs_fashion_mnist
def test_load_vae_by_sweep_name(tmp_path, train_images):
    with pytest.raises(FileNotFoundError, match="small-z10"):
        load_vae("small-z10", seed=0, runs_dir=tmp_path)
    vae = train_vae("small-z10", train_images[:300], 1, seed=0, checkpoint_dir=tmp_path)
    assert checkpoint_path(vae.config, 0, tmp_path) == tmp_path / "small-z10-0" / "checkpoint.pt"
    loaded = load_vae("small-z10", seed=0, runs_dir=tmp_path)
    assert loaded.latent_dim == 10 and _same_weights(vae, loaded)
    with pytest.raises(KeyError, match="<preset>-z<D>"):
        load_vae("medium-z10", runs_dir=tmp_path)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--limit", "-5"], "--limit"),
        (["--limit", "0"], "--limit"),
        (["--seed", "-1"], "--seed"),
        (["--epochs", "0"], "--epochs"),
        (["--seed", "1.5"], "--seed"),
    ],
)
def test_cli_rejects_bad_numbers(tmp_path, capsys, args, message):
    from pyro_latent.study.cli import main

    common = ["--preset", "vae2d-a", "--epochs", "1", "--runs-dir", str(tmp_path / "runs")]
    with pytest.raises(SystemExit) as info:  # argparse's usage error, exit status 2
        main(["train", *common, *args])
    assert info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_cli_names_an_unknown_preset(tmp_path, capsys):
    from pyro_latent.study.cli import main

    assert main(["train", "--preset", "medium", "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "unknown VAE preset 'medium'" in err and "small" in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("args", [["--preset", "medium"], ["--repeats", "0"], ["--limit", "-1"]])
def test_benchmark_rejects_bad_arguments(args, capsys):
    import importlib.util

    from pyro_latent.study import experiments_dir

    path = experiments_dir().parent / "benchmarks" / "vae_svi_overhead.py"
    spec = importlib.util.spec_from_file_location("vae_svi_overhead_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(SystemExit) as info:
        module.main(args)
    assert info.value.code == 2
    assert "error" in capsys.readouterr().err


@pytest.mark.parametrize("n, batch_size", [(1000, 100), (1037, 100), (5, 8)])
def test_shuffled_batches_replay_the_dataloader_the_study_trained_with(n, batch_size):
    """Checkpoints written with the earlier DataLoader resume step for step: the same batches in
    the same order, and the loader's generator in the same state after every epoch."""
    from torch.utils.data import BatchSampler, DataLoader, RandomSampler, TensorDataset

    from pyro_latent.vae.training import ShuffledBatches

    images = torch.rand(n, 3)
    reference_rng = torch.Generator().manual_seed(7)
    dataset = TensorDataset(images)
    reference = DataLoader(
        dataset,
        batch_size=None,
        sampler=BatchSampler(RandomSampler(dataset, generator=reference_rng), batch_size, False),
        generator=reference_rng,
    )
    ours = ShuffledBatches(images, batch_size, torch.Generator().manual_seed(7))
    assert len(ours) == len(reference)
    for _epoch in range(3):
        expected = [x for (x,) in reference]
        got = [x for (x,) in ours]
        assert len(got) == len(expected)
        assert all(torch.equal(a, b) for a, b in zip(got, expected, strict=True))
        assert torch.equal(ours.generator.get_state(), reference_rng.get_state())
    with pytest.raises(ValueError, match="batch_size"):
        ShuffledBatches(images, 0, torch.Generator())
