"""Training the study's runs in parallel: one job, two jobs, and ensembles, side by side.

The same ``--runs`` seeds of one preset, ``--epochs`` epochs on ``--limit`` images, trained
three ways in one process, each from nothing (a fresh runs folder), every worker on one torch
thread as the study's are:

* **jobs 1**: :func:`pyro_latent.vae.train_many` with ``n_jobs=1`` (one run after another in
  this process);
* **jobs 2**: ``train_many`` with ``n_jobs=2`` (two loky worker processes, one run per task);
* **ensembles, 2 jobs**: ``train_many(..., n_jobs=2, ensembles=True)``: the seeds split into
  two :func:`pyro_latent.vae.train_ensemble` programs, one per worker.

Times are whole calls, the transfer of the images included, median of ``--repeats``.  The two
worker processes are started (and have imported pyro-latent) before anything is timed, so both
parallel columns find them warm, as every call after the first in a study does.  The
parallel-training issue's target: two jobs ≤ 0.6 of one job at the study's own sizes
(``--limit 60000 --epochs 20`` is the full profile; the defaults take about a minute).
The last line is machine-readable::

    study_parallel preset=small runs=4 jobs2_over_jobs1=R ensembles2_over_jobs1=R
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vae_ensemble import _median_seconds  # noqa: E402
from vae_svi_overhead import _positive  # noqa: E402

from pyro_latent.vae import PRESETS, load_fashion_mnist  # noqa: E402
from pyro_latent.vae.parallel import TrainingRun, train_many  # noqa: E402


def _train_many(preset: str, images, epochs: int, seeds, n_jobs: int, ensembles=False) -> None:
    with tempfile.TemporaryDirectory(prefix="study-parallel-") as runs_dir:
        runs = [TrainingRun(preset, s, epochs) for s in seeds]
        with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):  # its run lines
            train_many(runs, images, runs_dir, n_jobs=n_jobs, progress=False, ensembles=ensembles)


def _import_in_worker() -> bool:
    import pyro_latent.vae.parallel  # noqa: F401

    return True


def _start_workers(n_jobs: int) -> None:
    """Start loky's reusable pool of ``n_jobs`` workers, so that no column pays for it."""
    from joblib import Parallel, delayed

    Parallel(n_jobs=n_jobs)(delayed(_import_in_worker)() for _ in range(n_jobs))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="small", choices=sorted(PRESETS))
    parser.add_argument("--runs", type=_positive, default=4, help="seeds 0..runs-1 (default 4)")
    parser.add_argument("--epochs", type=_positive, default=4, help="epochs per run (default 4)")
    parser.add_argument("--repeats", type=_positive, default=1, help="timings (median; default 1)")
    parser.add_argument(
        "--limit", type=_positive, default=30000, help="training images (default 30000)"
    )
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    if args.runs < 2:
        parser.error("--runs must be at least 2: two jobs need two runs")

    images = load_fashion_mnist(args.data_dir, train=True, limit=args.limit).images
    images = images.reshape(images.shape[0], -1)
    seeds = list(range(args.runs))
    print(
        f"{args.preset}: {args.runs} runs × {args.epochs} epochs on {images.shape[0]} images, "
        f"one thread per worker, median of {args.repeats}; seconds per whole call"
    )
    _start_workers(2)
    ways = {
        "jobs 1": lambda: _train_many(args.preset, images, args.epochs, seeds, 1),
        "jobs 2": lambda: _train_many(args.preset, images, args.epochs, seeds, 2),
        "ensembles, 2 jobs": lambda: _train_many(args.preset, images, args.epochs, seeds, 2, True),
    }
    seconds = {}
    for name, run in ways.items():
        seconds[name] = _median_seconds(run, args.repeats)
        print(f"  {name:<18} {seconds[name]:8.2f} s   {seconds[name] / seconds['jobs 1']:5.2f}×")
    print(
        f"study_parallel preset={args.preset} runs={args.runs} "
        f"jobs2_over_jobs1={seconds['jobs 2'] / seconds['jobs 1']:.3f} "
        f"ensembles2_over_jobs1={seconds['ensembles, 2 jobs'] / seconds['jobs 1']:.3f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
