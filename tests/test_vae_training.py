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

import pytest
import torch

from pyro_latent.vae import (
    CheckpointError,
    CheckpointMismatchError,
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


@pytest.fixture(autouse=True)
def one_thread():
    """Identical float results need identical thread counts; one also keeps CI light."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def train_images(tmp_path_factory):
    from pyro_latent.vae import load_fashion_mnist

    data = load_fashion_mnist(tmp_path_factory.mktemp("data"), limit=2000)
    return data.images


def _same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_one_epoch_improves_elbo(train_images):
    torch.manual_seed(0)
    untrained = train_vae(TINY, train_images, epochs=0, seed=0, checkpoint_dir=None)
    before = evaluate_elbo(untrained, train_images[:500])
    trained = train_vae(TINY, train_images, epochs=1, seed=0, checkpoint_dir=None, progress=False)
    after = evaluate_elbo(trained, train_images[:500])
    # An untrained decoder predicts p = 0.5 everywhere: about -784 log 2 = -543 nats.
    assert before < -500
    assert after > before + 100, (before, after)
    assert len(trained.history_) == 1


def test_same_seed_same_losses_other_seed_differs(train_images):
    runs = [
        train_vae(TINY, train_images, epochs=2, seed=s, checkpoint_dir=None, progress=False)
        for s in (3, 3, 4)
    ]
    assert runs[0].history_ == runs[1].history_
    assert _same_weights(runs[0], runs[1])
    assert runs[0].history_ != runs[2].history_


def test_checkpoint_round_trip(train_images, tmp_path):
    vae = train_vae(TINY, train_images, epochs=1, seed=0, checkpoint_dir=tmp_path, progress=False)
    path = checkpoint_path(TINY, 0, tmp_path)
    assert path == tmp_path / "tiny-0" / "checkpoint.pt"
    assert not [p for p in path.parent.iterdir() if p != path], "temporary files left behind"
    # weights_only=True reads it: only tensors and plain types inside.
    raw = torch.load(path, weights_only=True)
    assert raw["version"] == CHECKPOINT_VERSION and raw["epoch"] == 1
    ckpt = read_checkpoint(path)
    assert ckpt.config == TINY and ckpt.seed == 0 and ckpt.history == vae.history_
    assert ckpt.optim_state, "the optimiser state is part of the checkpoint"
    assert {"torch", "loader"} <= set(ckpt.rng_state)
    loaded = load_vae(path)
    assert _same_weights(loaded, vae) and loaded.history_ == vae.history_
    x = train_images[:7]
    torch.testing.assert_close(loaded.encode(x), vae.encode(x), rtol=0, atol=0)


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


def test_truncated_file_is_refused(checkpoint):
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
    _assert_refused(checkpoint, CheckpointError, "not a readable", lambda: load_vae(checkpoint))


def test_other_version_is_refused(checkpoint):
    ckpt = read_checkpoint(checkpoint)
    from pyro_latent.vae import training

    payload = torch.load(checkpoint, weights_only=True)
    payload["version"] = CHECKPOINT_VERSION + 1
    payload["sha256"] = training.payload_digest(payload)
    torch.save(payload, checkpoint)
    _assert_refused(checkpoint, CheckpointError, "version 2", lambda: load_vae(checkpoint))
    assert ckpt.epoch == 1


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(config=VAEConfig("tiny", latent_dim=4, hidden=(32,), lr=1e-2)), "lr"),
        (dict(seed_in_file=5), "seed"),
        (dict(images=slice(0, 1000)), "training data"),
        (dict(epochs=0), "epochs"),
    ],
)
def test_mismatched_checkpoint_is_refused(checkpoint, train_images, change, match):
    if "seed_in_file" in change:  # a checkpoint moved to the folder of another seed
        ckpt = read_checkpoint(checkpoint)
        ckpt.seed = change["seed_in_file"]
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


def test_existing_checkpoint_needs_resume(checkpoint, train_images):
    _assert_refused(
        checkpoint,
        CheckpointError,
        "resume",
        lambda: train_vae(TINY, train_images, 2, seed=0, checkpoint_dir=checkpoint.parents[1]),
    )


def test_load_vae_by_preset_name(tmp_path, train_images):
    with pytest.raises(FileNotFoundError, match="pyro-latent train --preset small"):
        load_vae("small", seed=0, runs_dir=tmp_path)
    with pytest.raises(KeyError, match="unknown VAE preset"):
        load_vae("medium", runs_dir=tmp_path)
    vae = train_vae("vae2d-a", train_images[:500], 1, seed=0, checkpoint_dir=tmp_path)
    loaded = load_vae("vae2d-a", seed=0, runs_dir=tmp_path)
    assert _same_weights(vae, loaded) and loaded.latent_dim == 2


def test_cuda_without_gpu_is_a_clear_error(train_images):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ValueError, match="cuda"):
        train_vae(TINY, train_images, 1, device="cuda", checkpoint_dir=None)


def test_cli_trains_and_resumes(tmp_path, capsys):
    from pyro_latent.cli import main

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
