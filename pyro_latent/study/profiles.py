"""The study's VAE training profiles, shared by every experiment that trains or loads the VAEs.

An experiment that asks for a VAE through :func:`study_vaes` gets exactly the checkpoint that
``vae_latents`` trained (same configuration, epochs, data and seed), so a later experiment reuses
it instead of training again.

* ``full``: all 60 000 training images, 20 epochs, checkpoints under ``runs/``;
* ``quick``: the first 10 000 images, 3 epochs, checkpoints under ``runs/quick/``.
"""

from __future__ import annotations

from pathlib import Path

from pyro_latent.vae.data import ImageData, load_fashion_mnist
from pyro_latent.vae.parallel import TrainingRun, train_many

__all__ = ["TRAINING_PROFILES", "study_runs_dir", "study_vaes", "training_set"]

TRAINING_PROFILES = {
    "full": {"epochs": 20, "train_limit": None, "runs_subdir": None},
    "quick": {"epochs": 3, "train_limit": 10_000, "runs_subdir": "quick"},
}


def _profile(name: str) -> dict:
    if name not in TRAINING_PROFILES:
        raise ValueError(
            f"unknown training profile {name!r}; known: {', '.join(TRAINING_PROFILES)}"
        )
    return TRAINING_PROFILES[name]


def training_set(profile: str, data_dir=None, download: bool = False) -> ImageData:
    """The FashionMNIST training images of ``profile``."""
    train = load_fashion_mnist(data_dir, train=True, download=download)
    return train.subset(_profile(profile)["train_limit"])


def study_runs_dir(profile: str, runs_dir) -> Path:
    """Where ``profile``'s checkpoints live below ``runs_dir``."""
    sub = _profile(profile)["runs_subdir"]
    return Path(runs_dir) / sub if sub else Path(runs_dir)


def study_vaes(
    runs,
    train: ImageData,
    profile: str,
    runs_dir,
    device: str = "cpu",
    *,
    jobs: int | None = None,
    cluster: str | None = None,
    ensembles: bool = True,
    progress: bool = True,
) -> dict:
    """Every ``(config or preset name, seed)`` of ``runs`` as a trained VAE, keyed by
    ``"<name>-<seed>"``: missing ones are trained in parallel by
    :func:`~pyro_latent.vae.parallel.train_many` (``jobs`` local workers or the Dask scheduler
    ``cluster``), the seeds of one configuration as one batched ensemble unless ``ensembles``
    is False; finished checkpoints are loaded."""
    epochs = _profile(profile)["epochs"]
    requested = [TrainingRun(config, seed, epochs) for config, seed in runs]
    return train_many(
        requested,
        train,
        study_runs_dir(profile, runs_dir),
        n_jobs=jobs,
        cluster=cluster,
        device=device,
        ensembles=ensembles,
        progress=progress,
    )
