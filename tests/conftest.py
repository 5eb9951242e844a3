"""Shared test set-up: one torch thread, and the markers ``slow`` and ``needs_fashion_mnist``."""

from pathlib import Path

import pytest
import torch

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
_FASHION_FILES = ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: longer checks; `make test` runs them, `-m 'not slow'` leaves them out"
    )
    config.addinivalue_line(
        "markers",
        "needs_fashion_mnist: needs Debian's dataset-fashion-mnist package; skipped where it is "
        "missing (make test installs it, so CI runs these)",
    )


def pytest_collection_modifyitems(config, items):
    if all((FASHION_MNIST / name).is_file() for name in _FASHION_FILES):
        return
    skip = pytest.mark.skip(
        reason=f"Debian's dataset-fashion-mnist package is not installed ({FASHION_MNIST} is "
        "missing); `make test` installs it"
    )
    for item in items:
        if "needs_fashion_mnist" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """One torch thread for the whole suite.

    Identical float results (determinism and resume tests) need identical thread counts. On the
    2-core CI machine, torch's intra-op threads also slow small operations down far more than
    they speed large ones up.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def run_tiny(tmp_path, monkeypatch):
    """Run one experiment end to end on a tiny ``--quick`` profile, under ``tmp_path``.

    ``run_tiny(name, profile)`` replaces the experiment's quick profile by ``profile``, trains
    its VAEs for one epoch on 600 images (checkpoints under ``tmp_path/runs``) and returns the
    record the runner wrote."""
    import json
    import sys

    from pyro_latent.study import profiles
    from pyro_latent.study import runner as study

    def run(name: str, profile: dict) -> dict:
        exp = study.discover(names=[name])[name]
        monkeypatch.setitem(sys.modules[exp.source].PROFILES, "quick", profile)
        tiny_training = {"epochs": 1, "train_limit": 600, "runs_subdir": "q"}
        monkeypatch.setitem(profiles.TRAINING_PROFILES, "quick", tiny_training)
        tiny_shapes = {**tiny_training, "runs_subdir": "q/shapes"}
        monkeypatch.setitem(profiles.SHAPES_TRAINING_PROFILES, "quick", tiny_shapes)
        ctx = study.Context(
            name=name,
            quick=True,
            figures_dir=tmp_path / "figures",
            results_dir=tmp_path / "results",
            runs_dir=tmp_path / "runs",
            jobs=1,
        )
        return json.loads(study.run_experiment(exp, ctx).read_text())

    return run
