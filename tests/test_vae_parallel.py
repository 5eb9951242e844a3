"""Parallel training gives the same checkpoints in one process, two, or on a Dask cluster."""

from __future__ import annotations

import pytest
import torch

from pyro_latent.vae.model import VAEConfig
from pyro_latent.vae.parallel import TrainingFailedError, TrainingRun, parse_cluster, train_many
from pyro_latent.vae.training import checkpoint_path, read_checkpoint

TINY = VAEConfig("tiny", latent_dim=2, hidden=(16,), batch_size=64)
WIDER = VAEConfig("tiny-wide", latent_dim=3, hidden=(24,), batch_size=64)
RUNS = [TrainingRun(TINY, 0, 2), TrainingRun(TINY, 1, 2), TrainingRun(WIDER, 0, 2)]


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(0)
    return (torch.rand(320, 784, generator=g) > 0.7).float()


def states(runs_dir) -> dict:
    out = {}
    for run in RUNS:
        ckpt = read_checkpoint(checkpoint_path(run.config, run.seed, runs_dir))
        out[run.name] = (ckpt.model_state, ckpt.history, ckpt.epoch)
    return out


def assert_same(a: dict, b: dict):
    assert a.keys() == b.keys()
    for name in a:
        for key, tensor in a[name][0].items():
            assert torch.equal(tensor, b[name][0][key]), f"{name}.{key} differs"
        assert a[name][1:] == b[name][1:]


@pytest.fixture(scope="module")
def sequential(images, tmp_path_factory):
    runs_dir = tmp_path_factory.mktemp("jobs1")
    vaes = train_many(RUNS + RUNS[:1], images, runs_dir, n_jobs=1, progress=False)
    assert sorted(vaes) == sorted(run.name for run in RUNS)  # the repeat was trained once
    return states(runs_dir)


@pytest.mark.slow
def test_two_workers_write_bit_identical_checkpoints(images, sequential, tmp_path):
    train_many(RUNS, images, tmp_path, n_jobs=2, progress=False)
    assert_same(states(tmp_path), sequential)


def test_finished_runs_are_reused_and_unfinished_ones_resumed(images, sequential, tmp_path):
    short = [TrainingRun(TINY, 0, 1)]
    train_many(short, images, tmp_path, n_jobs=1, progress=False)
    path = checkpoint_path(TINY, 0, tmp_path)
    assert read_checkpoint(path).epoch == 1
    train_many(RUNS[:1], images, tmp_path, n_jobs=1, progress=False)  # resumes to 2 epochs
    resumed = read_checkpoint(path)
    for key, tensor in sequential["tiny-0"][0].items():
        assert torch.equal(tensor, resumed.model_state[key])
    before = path.stat().st_mtime_ns
    train_many(RUNS[:1], images, tmp_path, n_jobs=1, progress=False)  # finished: not retrained
    assert path.stat().st_mtime_ns == before


def test_conflicts_and_failures_are_named(images, tmp_path):
    clash = [TrainingRun(TINY, 0, 2), TrainingRun(TINY, 0, 3)]
    with pytest.raises(ValueError, match="share the folder tiny-0"):
        train_many(clash, images, tmp_path, n_jobs=1, progress=False)
    broken = VAEConfig("broken", latent_dim=2, hidden=(16,), batch_size=64, lr=1e-3)
    bad_data = torch.full((64, 784), 0.5)
    bad_data[0, 0] = float("nan")
    with pytest.raises(TrainingFailedError, match="broken-0") as info:
        train_many([TrainingRun(broken, 0, 1)], bad_data, tmp_path, n_jobs=1, progress=False)
    assert "broken-0" in info.value.failures
    assert not checkpoint_path(broken, 0, tmp_path).exists()


def test_cluster_addresses():
    assert parse_cluster("dask://10.0.0.5:8786") == "tcp://10.0.0.5:8786"
    assert parse_cluster(None) is None
    for bad in ("10.0.0.5:8786", "http://host:1", "dask://host"):
        with pytest.raises(ValueError, match="dask://HOST:PORT"):
            parse_cluster(bad)


@pytest.mark.slow
def test_a_real_dask_cluster_writes_the_same_checkpoints(images, sequential, tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:  # fmt: skip
        address = cluster.scheduler_address.replace("tcp://", "dask://")
        train_many(RUNS, images, tmp_path, cluster=address, progress=False)
    assert_same(states(tmp_path), sequential)


@pytest.mark.slow
@pytest.mark.needs_fashion_mnist
def test_the_quick_profile_trains_the_same_on_a_dask_cluster(tmp_path):
    """The issue's check: the quick profile's trainings through ``--cluster`` against local."""
    distributed = pytest.importorskip("dask.distributed")
    from pyro_latent.study.profiles import study_runs_dir, study_vaes, training_set
    from pyro_latent.vae import get_preset

    train = training_set("quick")
    small = get_preset("small")
    requests = [(name, seed) for name in ("small", "large") for seed in (0, 1, 2)]
    requests += [("vae2d-a", 0), ("vae2d-b", 0)]
    requests += [(small.with_latent_dim(k), 0) for k in (10, 40)]
    local = study_vaes(requests, train, "quick", tmp_path / "local", jobs=1, progress=False)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:  # fmt: skip
        address = cluster.scheduler_address.replace("tcp://", "dask://")
        remote = study_vaes(
            requests, train, "quick", tmp_path / "cluster", cluster=address, progress=False
        )
    assert sorted(local) == sorted(remote) and len(local) == 10
    for name in local:
        here = read_checkpoint(study_runs_dir("quick", tmp_path / "local") / name)
        there = read_checkpoint(study_runs_dir("quick", tmp_path / "cluster") / name)
        assert here.history == there.history, name
        for key, tensor in here.model_state.items():
            assert torch.equal(tensor, there.model_state[key]), f"{name}.{key}"


def test_a_finished_checkpoint_of_other_images_is_refused(images, tmp_path):
    """Loading it would silently give another model than training on these images would."""
    from pyro_latent.vae import CheckpointMismatchError

    one = [TrainingRun(TINY, 0, 1)]
    train_many(one, images[:200], tmp_path, n_jobs=1, progress=False)
    before = checkpoint_path(TINY, 0, tmp_path).read_bytes()
    with pytest.raises(CheckpointMismatchError, match="200 other images than the 320"):
        train_many(one, images, tmp_path, n_jobs=1, progress=False)
    assert checkpoint_path(TINY, 0, tmp_path).read_bytes() == before  # nothing overwritten
    # the same images, as 28×28 or flat, load it
    again = train_many(one, images[:200].reshape(200, 28, 28), tmp_path, n_jobs=1, progress=False)
    assert set(again) == {"tiny-0"}
