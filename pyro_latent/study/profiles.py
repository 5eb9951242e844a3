"""The study's VAE training profiles, shared by every experiment that trains or loads the VAEs.

An experiment that asks for a VAE through :func:`study_vaes` gets exactly the checkpoint that
``vae_latents`` trained (same configuration, epochs, data and seed), so a later experiment reuses
it instead of training again.

* ``full``: all 60 000 training images, 20 epochs, checkpoints under ``runs/``;
* ``quick``: the first 10 000 images, 3 epochs, checkpoints under ``runs/quick/``.

The rendered shapes world (:mod:`pyro_latent.vae.shapes`, ``world="shapes"``) has profiles of
its own (:data:`SHAPES_TRAINING_PROFILES`): a simpler world, trained for fewer epochs, with its
checkpoints under ``runs/shapes/`` and ``runs/quick/shapes/``.
"""

from __future__ import annotations

from pathlib import Path

from pyro_latent.vae.data import ImageData, load_fashion_mnist
from pyro_latent.vae.parallel import TrainingRun, train_many
from pyro_latent.vae.shapes import ShapesData, load_shapes

__all__ = [
    "SHAPES_TRAINING_PROFILES",
    "TRAINING_PROFILES",
    "shapes_training_set",
    "study_runs_dir",
    "study_vaes",
    "training_set",
    "world_training_set",
]

TRAINING_PROFILES = {
    "full": {"epochs": 20, "train_limit": None, "runs_subdir": None},
    "quick": {"epochs": 3, "train_limit": 10_000, "runs_subdir": "quick"},
}
SHAPES_TRAINING_PROFILES = {
    "full": {"epochs": 10, "train_limit": None, "runs_subdir": "shapes"},
    "quick": {"epochs": 2, "train_limit": 5_000, "runs_subdir": "quick/shapes"},
}
_WORLDS = {"fashion": TRAINING_PROFILES, "shapes": SHAPES_TRAINING_PROFILES}


def _profile(name: str, world: str = "fashion") -> dict:
    if world not in _WORLDS:
        raise ValueError(f"unknown world {world!r}; known: {', '.join(_WORLDS)}")
    if name not in _WORLDS[world]:
        raise ValueError(f"unknown training profile {name!r}; known: {', '.join(_WORLDS[world])}")
    return _WORLDS[world][name]


def training_set(profile: str, data_dir=None, download: bool = False) -> ImageData:
    """The FashionMNIST training images of ``profile``."""
    train = load_fashion_mnist(data_dir, train=True, download=download)
    return train.subset(_profile(profile)["train_limit"])


def shapes_training_set(profile: str, data_dir=None, seed: int = 0) -> ShapesData:
    """The rendered shapes world's training images of ``profile`` (cached under the data
    root)."""
    train = load_shapes(data_dir, train=True, seed=seed)
    return train.subset(_profile(profile, "shapes")["train_limit"])


def world_training_set(
    world: str, profile: str, data_dir=None, download: bool = False, seed: int = 0
) -> ImageData | ShapesData:
    """The training images of ``world`` (``"fashion"`` or ``"shapes"``) under ``profile``:
    :func:`training_set` or :func:`shapes_training_set` (whose rendering is seeded by
    ``seed``, the study's seed)."""
    _profile(profile, world)
    if world == "shapes":
        return shapes_training_set(profile, data_dir, seed=seed)
    return training_set(profile, data_dir, download=download)


def study_runs_dir(profile: str, runs_dir, world: str = "fashion") -> Path:
    """Where ``profile``'s checkpoints of ``world`` live below ``runs_dir``."""
    sub = _profile(profile, world)["runs_subdir"]
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
    world: str = "fashion",
) -> dict:
    """Every ``(config or preset name, seed)`` of ``runs`` as a trained VAE, keyed by
    ``"<name>-<seed>"``: missing ones are trained in parallel by
    :func:`~pyro_latent.vae.parallel.train_many` (``jobs`` local workers or the Dask scheduler
    ``cluster``), the seeds of one configuration as one batched ensemble unless ``ensembles``
    is False; finished checkpoints are loaded.  ``world`` (``"fashion"`` or ``"shapes"``) picks
    the profiles, and with them the epochs and the checkpoints' folder."""
    epochs = _profile(profile, world)["epochs"]
    requested = [TrainingRun(config, seed, epochs) for config, seed in runs]
    return train_many(
        requested,
        train,
        study_runs_dir(profile, runs_dir, world),
        n_jobs=jobs,
        cluster=cluster,
        device=device,
        ensembles=ensembles,
        progress=progress,
    )
