"""Figures of the study, drawn with matplotlib (headless ``Agg`` backend), one module per subject.

* :mod:`pyro_latent.plotting.world`: strip-world episodes and the models' Bayes-net drawings;
* :mod:`pyro_latent.plotting.transfer`: concept transfer between the toy models;
* :mod:`pyro_latent.plotting.vae`: VAE latent spaces, reconstructions, activity.

Every function takes the output path first, so :meth:`pyro_latent.study.Context.draw` can record
which function drew which file; all of them save through :func:`save_figure`.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["save_figure"]


def save_figure(fig, path: Path, *, dpi: int = 130, **savefig_kwargs) -> Path:
    """Save ``fig`` as a PNG at ``path`` (folders created) and close it, so that a long study
    does not accumulate open figures."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, **savefig_kwargs)
    plt.close(fig)
    return path
