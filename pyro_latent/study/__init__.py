"""The study: the runner, the report, the command line, and one module per experiment.

Nothing in the library (``core``, ``analysis``, ``translate``, ``toy``, ``vae``, ``concepts``,
``plotting``) imports this package.  Here live the things that only make sense for this study:

* :mod:`~pyro_latent.study.runner`: the registry of experiments, :class:`Context`, one JSON record
  per run; :mod:`~pyro_latent.study.report` renders ``figures/REPORT.md`` from the records;
  :mod:`~pyro_latent.study.cli`: ``pyro-latent``;
* :mod:`~pyro_latent.study.profiles`: the study's VAE training profiles;
* one module per experiment with its drivers, verdicts and tables:
  :mod:`~pyro_latent.study.toy_transfer`, :mod:`~pyro_latent.study.vae_latents` (with
  :mod:`~pyro_latent.study.latent_geometry`), :mod:`~pyro_latent.study.shoe_concepts`,
  :mod:`~pyro_latent.study.vae_translation`, :mod:`~pyro_latent.study.coordinate_free`.
"""

from pyro_latent.study.runner import (
    Context,
    Experiment,
    ExperimentsFailedError,
    UnknownExperimentError,
    atomic_write,
    discover,
    experiment,
    experiments_dir,
    run_experiment,
    run_experiments,
)

__all__ = [
    "Context",
    "Experiment",
    "ExperimentsFailedError",
    "UnknownExperimentError",
    "atomic_write",
    "discover",
    "experiment",
    "experiments_dir",
    "run_experiment",
    "run_experiments",
]
