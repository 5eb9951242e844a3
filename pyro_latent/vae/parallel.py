r"""Train many VAEs at once: in worker processes on this machine, or on a Dask cluster.

The study's VAEs are independent runs, one per ``(configuration, seed)``.  :func:`train_many`
hands them to **joblib**, which runs them in ``n_jobs`` local worker processes (the ``loky``
backend) or, given ``cluster="dask://HOST:PORT"``, on a **Dask distributed** scheduler through
joblib's Dask backend.  No scheduler, queue or protocol of our own.

* **One unit of work** is :func:`train_vae` of one run, or with ``ensembles=True`` one
  :func:`~pyro_latent.vae.ensemble.train_ensemble` of the runs that share a configuration (and
  epochs, and the epoch they resume from), with one torch thread, in a private temporary
  folder.  The worker returns the finished checkpoints' bytes, and the driver writes them under
  ``runs/`` atomically (:func:`~pyro_latent.vae.training.write_checkpoint`'s
  temporary-file-and-rename), so workers need no shared filesystem and no checkpoint is ever
  written by two processes.
* **Deduplication.** Two requests for the same run are trained once; two requests for one run
  folder with different configurations or epochs are an error before anything starts.
* **Reuse and resume.** A run whose checkpoint already has its epochs is not dispatched; a run
  with an unfinished checkpoint sends it along and resumes from it.
* **Determinism.** Training depends only on the configuration, the seed, the data and the
  thread count, and every worker uses one thread, so the checkpoints are bit-identical whatever
  ``n_jobs`` or the cluster (tested with ``n_jobs=1`` against ``n_jobs=2`` and a local Dask
  cluster).  With ``ensembles`` they also do not depend on which seeds train together: an
  ensemble run's weights are bitwise those it gets alone (tested); they differ from
  :func:`train_vae`'s in the last digits (a batched matrix product, a fused log-density).
* **Cost.** After training, one line per configuration gives its runs' training time in the
  workers (an ensemble's time shared equally among its runs): the study's cost per preset.
* **Failures** do not lose finished runs: each is written as it arrives, and the error that ends
  the call names every run that failed (all of an ensemble's: it stops as one program).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from joblib import Parallel, delayed, parallel_config
from tqdm.auto import tqdm

from pyro_latent.core.checks import check_nonnegative_int, check_positive_int
from pyro_latent.core.files import write_atomically
from pyro_latent.vae.data import N_PIXELS, ImageData, image_fingerprint
from pyro_latent.vae.ensemble import train_ensemble
from pyro_latent.vae.model import VAEConfig, get_preset
from pyro_latent.vae.training import (
    CHECKPOINT_NAME,
    CheckpointMismatchError,
    checkpoint_path,
    load_vae,
    read_checkpoint,
    train_vae,
)

__all__ = ["TrainingFailedError", "TrainingRun", "parse_cluster", "train_many"]


class TrainingFailedError(RuntimeError):
    """Some runs failed; the others were written. ``failures`` maps each run to its error."""

    def __init__(self, failures: dict[str, str]):
        self.failures = failures
        lines = "\n".join(f"  {name}: {error}" for name, error in failures.items())
        super().__init__(
            f"{len(failures)} training run(s) failed (the others were saved):\n{lines}"
        )


@dataclass(frozen=True)
class TrainingRun:
    """One VAE to train: a configuration (or preset name), a seed and the total epochs."""

    config: VAEConfig | str
    seed: int
    epochs: int

    def resolved(self) -> TrainingRun:
        config = get_preset(self.config) if isinstance(self.config, str) else self.config
        if not isinstance(config, VAEConfig):
            raise ValueError(f"config must be a VAEConfig or a preset name, got {self.config!r}")
        seed = check_nonnegative_int(self.seed, "seed")
        return TrainingRun(config, seed, check_positive_int(self.epochs, "epochs"))

    @property
    def name(self) -> str:
        return f"{self.config.name}-{self.seed}"


def parse_cluster(cluster: str | None) -> str | None:
    """``dask://HOST:PORT`` (or ``tcp://HOST:PORT``) as the scheduler address Dask expects."""
    if cluster is None:
        return None
    if not isinstance(cluster, str) or "://" not in cluster:
        raise ValueError(f"cluster must look like dask://HOST:PORT, got {cluster!r}")
    scheme, rest = cluster.split("://", 1)
    if scheme not in ("dask", "tcp") or ":" not in rest:
        raise ValueError(f"cluster must look like dask://HOST:PORT, got {cluster!r}")
    return f"tcp://{rest}"


def _deduplicate(runs: Iterable[TrainingRun]) -> list[TrainingRun]:
    unique: dict[str, TrainingRun] = {}
    for run in runs:
        run = run.resolved()
        seen = unique.setdefault(run.name, run)
        if seen != run:
            raise ValueError(
                f"two different runs share the folder {run.name}: {seen.config} for "
                f"{seen.epochs} epochs and {run.config} for {run.epochs}"
            )
    return list(unique.values())


def _needs_training(run: TrainingRun, runs_dir: Path, images: torch.Tensor):
    """``False`` when a finished matching checkpoint exists; otherwise ``(bytes, epoch)`` of an
    unfinished one to resume from, or ``None``.  A finished checkpoint trained on other images
    is an error: loading it would silently give another model than training would."""
    path = checkpoint_path(run.config, run.seed, runs_dir)
    if not path.is_file():
        return None
    ckpt = read_checkpoint(path)  # a damaged or foreign checkpoint is an error, never overwritten
    if ckpt.config != run.config:
        raise ValueError(f"{path} holds {ckpt.config}, not {run.config}; nothing was overwritten")
    if ckpt.epoch >= run.epochs:
        flat = images.reshape(images.shape[0], -1)  # the training loop's (N, 784) view
        if ckpt.data.get("fingerprint") != image_fingerprint(flat):
            raise CheckpointMismatchError(
                f"{path} was trained on {ckpt.data.get('n')} other images than the "
                f"{flat.shape[0]} asked for; nothing was overwritten: move it away, or use "
                "another --runs-dir"
            )
        return False
    return path.read_bytes(), ckpt.epoch


def _train_group(group, images: np.ndarray, resume_from, device: str, ensemble: bool):
    """Worker: train ``group`` (runs of one configuration and epoch count, all starting at one
    epoch) in a private folder, by :func:`train_vae` (one run) or as one
    :func:`train_ensemble` (even of one run, so that a run's weights never depend on its
    companions); ``[(name, checkpoint bytes or None, error, seconds)]`` for each run, where
    ``seconds`` is the run's share of the group's wall time in this worker."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    start = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="pyro-latent-") as tmp:
            for run, content in zip(group, resume_from, strict=True):
                if content is not None:
                    path = checkpoint_path(run.config, run.seed, tmp)
                    path.parent.mkdir(parents=True)
                    path.write_bytes(content)
            data = torch.from_numpy(np.array(images, copy=True))
            first = group[0]
            options = {"resume": True, "progress": False}
            if not ensemble or not first.config.stackable:  # e.g. a mixture prior: alone
                vaes = [
                    train_vae(first.config, data, first.epochs, first.seed, device, tmp, **options)
                ]
            else:
                seeds = [run.seed for run in group]
                vaes = train_ensemble(
                    first.config, data, first.epochs, seeds, device, tmp, **options
                )
            share = (time.perf_counter() - start) / len(group)
            return [
                (run.name, Path(vae.checkpoint_path_).read_bytes(), None, share)
                for run, vae in zip(group, vaes, strict=True)
            ]
    except Exception as error:  # reported by the driver with the runs' names
        share = (time.perf_counter() - start) / len(group)
        return [(run.name, None, f"{type(error).__name__}: {error}", share) for run in group]
    finally:
        torch.set_num_threads(threads)


def _groups(pending, ensembles: bool, n_workers: int):
    """The tasks: one run each, or with ``ensembles`` the runs that share a configuration, an
    epoch count and the epoch they start from (0, or their unfinished checkpoint's), in seed
    order, the largest groups halved until every one of ``n_workers`` has a task.  Grouping
    never changes a run's weights: an ensemble run's are bitwise those it gets alone or beside
    any other seeds (tested), so the checkpoints do not depend on it."""
    if not ensembles:
        return [[item] for item in pending]
    grouped: dict[tuple, list] = {}
    for run, resume in pending:
        start = 0 if resume is None else resume[1]
        if not run.config.stackable:  # no stacked program for it (a mixture prior): one each
            grouped[(run.config, run.epochs, start, run.seed)] = [(run, resume)]
            continue
        grouped.setdefault((run.config, run.epochs, start), []).append((run, resume))
    groups = [sorted(items, key=lambda item: item[0].seed) for items in grouped.values()]
    while len(groups) < n_workers and max(len(g) for g in groups) > 1:
        largest = max(groups, key=len)
        groups.remove(largest)
        half = (len(largest) + 1) // 2
        groups += [largest[:half], largest[half:]]
    return groups


# The fixed cost of one image's training step (Pyro's tracing, autograd, Adam), in floating-point
# operations of the forward pass: about 1 MFLOP on the 2-core CPU (a `small` step of 128 images
# costs about 5 ms above its arithmetic).  Only the order of the tasks depends on it.
_STEP_OVERHEAD_FLOPS = 1.0e6


def forward_flops(config: VAEConfig) -> int:
    """Floating-point operations of one image through the encoder and the decoder of
    ``config`` (torch's ``FlopCounterMode``: matrix products and convolutions)."""
    from torch.utils.flop_counter import FlopCounterMode

    from pyro_latent.vae.mixture import build_vae

    with torch.random.fork_rng(), torch.no_grad():
        vae = build_vae(config)
        with FlopCounterMode(display=False) as counter:
            loc, _ = vae.encode(torch.rand(1, N_PIXELS))
            vae.decode(loc)
    return int(counter.get_total_flops())


def longest_first(groups, n_images: int) -> list:
    """``groups`` ordered by their estimated training time, longest first, so that the longest
    tasks never start last (the longest-processing-time rule: with ``m`` workers the makespan
    is within 4/3 of the best).  A group of ``R`` runs of ``E`` epochs left on ``N`` images is
    estimated at ``R · E · N · (forward FLOPs + a fixed cost per image)``."""
    flops: dict[VAEConfig, int] = {}

    def cost(group) -> float:
        run, resume = group[0]
        left = run.epochs - (0 if resume is None else resume[1])
        if run.config not in flops:
            flops[run.config] = forward_flops(run.config)
        return len(group) * left * n_images * (flops[run.config] + _STEP_OVERHEAD_FLOPS)

    return sorted(groups, key=cost, reverse=True)


def train_many(
    runs: Sequence[TrainingRun],
    data: ImageData | torch.Tensor,
    runs_dir: str | os.PathLike = "runs",
    *,
    n_jobs: int | None = None,
    cluster: str | None = None,
    device: str = "cpu",
    progress: bool = True,
    ensembles: bool = False,
) -> dict[str, torch.nn.Module]:
    """Train every run that has no finished checkpoint under ``runs_dir``, in parallel, and
    return all of them loaded, keyed by ``"<name>-<seed>"``.

    ``n_jobs`` local worker processes (default: the number of cores; ``1`` trains in this
    process), or the Dask scheduler at ``cluster`` (``dask://HOST:PORT``).  With ``ensembles``
    the runs that share a configuration, epoch count and starting epoch train as one
    :func:`~pyro_latent.vae.ensemble.train_ensemble` program, one task each; their weights
    agree with ``train_vae``'s to float rounding, not bitwise, so a runs folder should hold
    checkpoints of one kind (the study's are ``train_vae``'s).  See the module docstring for
    what is guaranteed.
    """
    runs = _deduplicate(runs)
    address = parse_cluster(cluster)
    n_jobs = (os.cpu_count() or 1) if n_jobs is None else check_positive_int(n_jobs, "n_jobs")
    if not isinstance(ensembles, bool):
        raise ValueError(f"ensembles must be True or False, got {ensembles!r}")
    runs_dir = Path(runs_dir)
    images = data.images if isinstance(data, ImageData) else data
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"data must be ImageData or a tensor, got {type(data).__name__}")
    pending = []
    for run in runs:
        state = _needs_training(run, runs_dir, images)
        if state is not False:
            pending.append((run, state))
    if pending:
        array = images.detach().cpu().numpy()
        groups = _groups(pending, ensembles, 1 if address is not None else n_jobs)
        groups = longest_first(groups, images.shape[0])
        tasks = (
            delayed(_train_group)(
                [run for run, _ in group],
                array,
                [None if resume is None else resume[0] for _, resume in group],
                device,
                ensembles,
            )
            for group in groups
        )
        failures: dict[str, str] = {}
        by_name = {run.name: run for run, _ in pending}
        bar = tqdm(total=len(pending), desc="training VAEs", unit="run", disable=not progress)
        seconds: dict[str, list[float]] = {}  # per configuration, each run's training time
        for results in _dispatch(tasks, n_jobs, address, len(groups)):
            for name, content, error, run_seconds in results:
                seconds.setdefault(by_name[name].config.name, []).append(run_seconds)
                if error is not None:
                    failures[name] = error
                    tqdm.write(f"  {name}: FAILED ({error})")
                else:
                    run = by_name[name]
                    write_atomically(
                        checkpoint_path(run.config, run.seed, runs_dir),
                        lambda f, content=content: f.write(content),
                    )
                    tqdm.write(f"  {name}: trained, {run.epochs} epochs -> {runs_dir / name}")
                bar.update()
        bar.close()
        for config_name, times in seconds.items():
            tqdm.write(
                f"  training time, {config_name}: {len(times)} run(s), {sum(times):.0f} s in "
                f"workers ({sum(times) / len(times):.0f} s per run)"
            )
        if failures:
            raise TrainingFailedError(failures)
    return {run.name: load_vae(runs_dir / run.name / CHECKPOINT_NAME) for run in runs}


def _dispatch(tasks, n_jobs: int, address: str | None, count: int):
    """Run ``tasks`` and yield their results as they finish (order may vary)."""
    if address is not None:
        try:
            from dask.distributed import Client
        except ImportError:
            raise ImportError(
                "training on a cluster needs Dask distributed: pip install 'pyro-latent[cluster]'"
            ) from None
        with Client(address), parallel_config(backend="dask"):
            yield from Parallel(return_as="generator_unordered")(tasks)
        return
    # joblib runs n_jobs=1 in this process, so --jobs 1 starts no worker
    yield from Parallel(n_jobs=min(n_jobs, count), return_as="generator_unordered")(tasks)
