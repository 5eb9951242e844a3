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
def test_the_quick_profile_trains_the_same_on_a_dask_cluster(tmp_path, monkeypatch):
    """The quick profile's ten trainings (every configuration the study trains, as ensembles)
    through ``--cluster`` against local ones.  One epoch on 2 000 images instead of the
    profile's three on 10 000: the transport and the grouping are what is checked, and the
    numbers are bitwise equal or not after any number of steps."""
    distributed = pytest.importorskip("dask.distributed")
    from pyro_latent.study import profiles
    from pyro_latent.study.profiles import study_runs_dir, study_vaes, training_set
    from pyro_latent.vae import get_preset

    tiny_training = {"epochs": 1, "train_limit": 2_000, "runs_subdir": "quick"}
    monkeypatch.setitem(profiles.TRAINING_PROFILES, "quick", tiny_training)
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


# --- ensembles=True: one train_ensemble per configuration ---------------------------------------

ENSEMBLE_RUNS = [*RUNS, TrainingRun(TINY, 2, 2)]


def ensemble_states(runs_dir, runs=ENSEMBLE_RUNS) -> dict:
    out = {}
    for run in runs:
        ckpt = read_checkpoint(checkpoint_path(run.config, run.seed, runs_dir))
        out[run.name] = (ckpt.model_state, ckpt.history, ckpt.epoch)
    return out


@pytest.fixture(scope="module")
def grouped(images, tmp_path_factory):
    runs_dir = tmp_path_factory.mktemp("ensembles")
    vaes = train_many(ENSEMBLE_RUNS, images, runs_dir, n_jobs=1, progress=False, ensembles=True)
    assert sorted(vaes) == sorted(run.name for run in ENSEMBLE_RUNS)
    return runs_dir, ensemble_states(runs_dir)


def test_ensembles_train_what_train_ensemble_trains(images, grouped, tmp_path):
    from pyro_latent.vae import train_ensemble

    runs_dir, states_ = grouped
    assert read_checkpoint(checkpoint_path(TINY, 1, runs_dir)).extra["ensemble"] == [
        "tiny-0",
        "tiny-1",
        "tiny-2",
    ]
    direct = train_ensemble(TINY, images, 2, [0, 1, 2], checkpoint_dir=tmp_path, progress=False)
    direct += train_ensemble(WIDER, images, 2, [0], checkpoint_dir=tmp_path, progress=False)
    assert_same(ensemble_states(tmp_path), states_)
    assert [v.history_ for v in direct[:3]] == [states_[f"tiny-{s}"][1] for s in range(3)]


def test_ensemble_runs_do_not_depend_on_their_companions(images, grouped, tmp_path):
    """tiny-1 alone (an ensemble of one) has bitwise the weights it has among three seeds."""
    _, states_ = grouped
    alone = [TrainingRun(TINY, 1, 2)]
    train_many(alone, images, tmp_path, n_jobs=1, progress=False, ensembles=True)
    mine = ensemble_states(tmp_path, alone)
    assert_same(mine, {"tiny-1": states_["tiny-1"]})


@pytest.mark.slow
def test_ensembles_on_two_workers_write_bit_identical_checkpoints(images, grouped, tmp_path):
    train_many(ENSEMBLE_RUNS, images, tmp_path, n_jobs=2, progress=False, ensembles=True)
    assert_same(ensemble_states(tmp_path), grouped[1])


def test_ensembles_group_by_the_epoch_they_resume_from(images, grouped, tmp_path, monkeypatch):
    """tiny-0 has a one-epoch checkpoint: it resumes on its own; tiny-1 and tiny-2 start together.
    Both end where the three-seed ensemble ends."""
    from pyro_latent.vae import parallel

    train_many([TrainingRun(TINY, 0, 1)], images, tmp_path, n_jobs=1, progress=False,
               ensembles=True)  # fmt: skip
    calls = []
    real = parallel.train_ensemble

    def spy(config, data, epochs, seeds, *args, **kwargs):
        calls.append((config.name, list(seeds)))
        return real(config, data, epochs, seeds, *args, **kwargs)

    monkeypatch.setattr(parallel, "train_ensemble", spy)
    tiny = [run for run in ENSEMBLE_RUNS if run.config == TINY]
    train_many(tiny, images, tmp_path, n_jobs=1, progress=False, ensembles=True)
    assert sorted(calls) == [("tiny", [0]), ("tiny", [1, 2])]
    assert_same(ensemble_states(tmp_path, tiny), {r.name: grouped[1][r.name] for r in tiny})


def test_a_failed_ensemble_names_all_its_runs_and_keeps_the_others(images, tmp_path, monkeypatch):
    from pyro_latent.vae import EnsembleFailedError, parallel

    real = parallel.train_ensemble

    def failing(config, data, epochs, seeds, *args, **kwargs):
        if config == TINY:
            raise EnsembleFailedError([f"tiny-{s}" for s in seeds[:1]], step=3, epoch=1)
        return real(config, data, epochs, seeds, *args, **kwargs)

    monkeypatch.setattr(parallel, "train_ensemble", failing)
    with pytest.raises(TrainingFailedError) as info:
        train_many(ENSEMBLE_RUNS, images, tmp_path, n_jobs=1, progress=False, ensembles=True)
    assert sorted(info.value.failures) == ["tiny-0", "tiny-1", "tiny-2"]
    assert "tiny-0 gave a non-finite loss" in info.value.failures["tiny-1"]
    assert checkpoint_path(WIDER, 0, tmp_path).exists()
    assert not checkpoint_path(TINY, 1, tmp_path).exists()
    with pytest.raises(ValueError, match="ensembles must be True or False"):
        train_many(RUNS, images, tmp_path, n_jobs=1, progress=False, ensembles="yes")


def test_ensembles_are_halved_until_every_worker_has_one():
    from pyro_latent.vae.parallel import _groups

    pending = [(TrainingRun(TINY, s, 2), None) for s in (3, 1, 0, 2)]
    pending.append((TrainingRun(WIDER, 0, 2), None))

    def seeds(n_workers):
        return sorted(
            (g[0][0].config.name, [run.seed for run, _ in g])
            for g in _groups(pending, True, n_workers)
        )

    assert seeds(1) == seeds(2) == [("tiny", [0, 1, 2, 3]), ("tiny-wide", [0])]
    assert seeds(3) == [("tiny", [0, 1]), ("tiny", [2, 3]), ("tiny-wide", [0])]
    assert len(seeds(16)) == 5  # never below one run per task
    assert [len(g) for g in _groups(pending, False, 2)] == [1] * 5


def test_training_time_is_printed_per_configuration(images, tmp_path, capsys):
    runs = [TrainingRun(TINY, 0, 1), TrainingRun(TINY, 1, 1), TrainingRun(WIDER, 0, 1)]
    train_many(runs, images, tmp_path, n_jobs=1, progress=False, ensembles=True)
    lines = [line for line in capsys.readouterr().out.splitlines() if "training time" in line]
    assert len(lines) == 2
    assert "training time, tiny: 2 run(s)" in lines[0] + lines[1]
    assert "training time, tiny-wide: 1 run(s)" in lines[0] + lines[1]
    train_many(runs, images, tmp_path, n_jobs=1, progress=False)  # all reused: nothing trained
    assert "training time" not in capsys.readouterr().out


def test_forward_flops_of_an_mlp_are_its_matrix_products():
    from pyro_latent.vae.parallel import forward_flops

    # encoder 784→16→2·2, decoder 2→16→784: 2 · (multiply-adds) per image
    expected = 2 * (784 * 16 + 16 * 4 + 2 * 16 + 16 * 784)
    assert forward_flops(TINY) == expected
    state = torch.get_rng_state()
    forward_flops(WIDER)
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is left as it was


def test_the_longest_tasks_go_first():
    from pyro_latent.vae.parallel import _groups, longest_first

    big = VAEConfig("tiny-big", latent_dim=3, hidden=(1024, 512), batch_size=64)
    pending = [(TrainingRun(TINY, 0, 2), None), (TrainingRun(big, 0, 2), None)]
    pending += [(TrainingRun(TINY, s, 2), None) for s in (1, 2, 3)]
    pending.append((TrainingRun(big, 1, 4), (b"", 3)))  # resumed: one epoch left
    order = [(g[0][0].config.name, len(g)) for g in longest_first(_groups(pending, True, 2), 1000)]
    # big × 1 run × 2 epochs > tiny × 4 runs × 2 epochs > big × 1 run × 1 epoch left
    assert order == [("tiny-big", 1), ("tiny", 4), ("tiny-big", 1)]
    first = longest_first(_groups(pending, True, 2), 1000)[0]
    assert first[0][1] is None  # the fresh run, not the resumed one
