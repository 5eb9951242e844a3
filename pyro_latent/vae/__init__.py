"""VAEs as Pyro SVI models: data (FashionMNIST, and the rendered shapes world of
:mod:`pyro_latent.vae.shapes`), models, training with checkpoints, metrics.

>>> from pyro_latent.vae import load_fashion_mnist, train_vae, load_vae
>>> train = load_fashion_mnist(train=True)                       # doctest: +SKIP
>>> vae = train_vae("small", train, epochs=20, seed=0)             # doctest: +SKIP
>>> runs = train_ensemble("small", train, epochs=20, seeds=[0, 1, 2])  # doctest: +SKIP
>>> vae = load_vae("small", seed=0)                                # doctest: +SKIP
>>> loc, scale = vae.encode(train.images[:8]); probs = vae.decode(loc)  # doctest: +SKIP
"""

from pyro_latent.vae.data import (
    CLASS_GROUPS,
    DEBIAN_DIR,
    SHOE_CLASSES,
    DataNotFoundError,
    ImageData,
    load_fashion_mnist,
    prepare_fashion_mnist,
)
from pyro_latent.vae.ensemble import EnsembleFailedError, VAEEnsemble, train_ensemble
from pyro_latent.vae.mixture import MixturePriorVAE, build_vae
from pyro_latent.vae.model import PRESETS, VAE, VAEConfig, get_preset
from pyro_latent.vae.shapes import (
    FACTOR_LEVELS,
    FACTORS,
    SHAPES,
    ShapesCacheError,
    ShapesData,
    load_shapes,
)
from pyro_latent.vae.training import (
    Checkpoint,
    CheckpointError,
    CheckpointMismatchError,
    UnfinishedRunWarning,
    checkpoint_path,
    load_vae,
    read_checkpoint,
    train_vae,
    write_checkpoint,
)

__all__ = [
    "DEBIAN_DIR",
    "PRESETS",
    "CLASS_GROUPS",
    "FACTORS",
    "FACTOR_LEVELS",
    "SHAPES",
    "SHOE_CLASSES",
    "VAE",
    "Checkpoint",
    "CheckpointError",
    "CheckpointMismatchError",
    "DataNotFoundError",
    "EnsembleFailedError",
    "ImageData",
    "MixturePriorVAE",
    "ShapesCacheError",
    "ShapesData",
    "UnfinishedRunWarning",
    "VAEConfig",
    "VAEEnsemble",
    "checkpoint_path",
    "build_vae",
    "get_preset",
    "load_fashion_mnist",
    "load_shapes",
    "load_vae",
    "prepare_fashion_mnist",
    "read_checkpoint",
    "train_ensemble",
    "train_vae",
    "write_checkpoint",
]
