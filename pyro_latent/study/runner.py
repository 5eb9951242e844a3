"""The study runner: a registry of experiments, each run once, each leaving one JSON record.

An *experiment* is a thin script ``experiments/NAME.py`` that registers one function with
:func:`experiment`.  The function receives a :class:`Context` (profile, seed, device and where to
write), trains or loads, measures, draws its figures through :meth:`Context.draw`, and returns
one JSON-serialisable payload holding every number its report section quotes.  The runner

* writes ``results/NAME.json``: the payload under ``"results"``, next to what the run was
  (profile, seed, device, Python, seconds) and which plotting function drew each figure;
* leaves the prose to ``experiments/templates/NAME.md``, which :mod:`pyro_latent.study.report`
  renders from that record, so rewording the report never means rerunning an experiment.

Registration order is explicit (``order=``) rather than import order, because the report must read
like the post whatever subset was run; the order is stored in each record, so the report needs no
experiment code to assemble itself.

**Two phases.**  An experiment that trains or loads the study's VAEs declares them (``vaes=``: a
function of the :class:`Context` giving ``{world: [(config or preset name, seed), ...]}``, the
same list it hands :func:`~pyro_latent.study.profiles.study_vaes`).  :func:`run_experiments`
first trains every declared VAE of every selected experiment that has no checkpoint yet, in one
:func:`~pyro_latent.vae.parallel.train_many` call per world, so the workers stay busy across
experiments instead of idling at the end of each; the experiments then find their checkpoints
and only measure.  They run ``jobs`` at a time (default: one per core) in worker processes, the
longest first (by the seconds of their previous record of the same profile), each in one process
(``jobs=1`` inside it), each writing its output to ``<runs_dir>/logs/NAME.log``.  Every
experiment runs with one torch thread and seeds what it draws, so its record is the same in a
worker as in this process (tested); a failure waits for the others, keeps their records, and
names the failed experiments and their logs.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import math
import multiprocessing
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pyro_latent.core.files import atomic_write

__all__ = [
    "Context",
    "Experiment",
    "ExperimentsFailedError",
    "UnknownExperimentError",
    "atomic_write",
    "discover",
    "experiment",
    "experiments_dir",
    "run_experiments",
]


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    order: int
    run: Callable[[Context], dict]
    source: str = ""
    vaes: Callable[[Context], dict] | None = None


@dataclass
class Context:
    """Everything an experiment may depend on besides the library itself."""

    name: str
    quick: bool = False
    seed: int = 0
    device: str = "cpu"
    figures_dir: Path = Path("figures")
    results_dir: Path = Path("results")
    runs_dir: Path = Path("runs")
    data_dir: Path | None = None
    download: bool = False
    jobs: int | None = None
    cluster: str | None = None
    ensembles: bool = True
    written: list[Path] = field(default_factory=list)
    figures: dict[str, str] = field(default_factory=dict)
    sections: dict[str, float] = field(default_factory=dict)
    _clock: float = field(default_factory=time.perf_counter, repr=False)

    def training_options(self) -> dict:
        """The keyword arguments of :func:`~pyro_latent.study.profiles.study_vaes` that come
        from the command line: where and how the missing VAEs are trained."""
        return {
            "device": self.device,
            "jobs": self.jobs,
            "cluster": self.cluster,
            "ensembles": self.ensembles,
        }

    def lap(self, section: str) -> float:
        """Seconds since the previous lap (or since the context was made), recorded under
        ``section`` in :attr:`sections`, so that an experiment can say what each part cost."""
        now = time.perf_counter()
        self.sections[section] = round(now - self._clock, 1)
        self._clock = now
        return self.sections[section]

    def draw(self, plot: Callable[..., object], filename: str, *args, **kwargs) -> Path:
        """Draw one figure: ``plot(figures_dir / filename, *args, **kwargs)``.

        The plotting function's qualified name is recorded against the file, so that the report
        can say below each figure which experiment and which function drew it.
        """
        self.figures_dir.mkdir(parents=True, exist_ok=True)
        path = self.figures_dir / filename
        plot(path, *args, **kwargs)
        self.figures[filename] = f"{plot.__module__}.{plot.__qualname__}"
        self.written.append(path)
        return path

    def artifact(self, filename: str) -> Path:
        """Path under ``results/`` for a data file the experiment writes itself (e.g. ArviZ
        NetCDF); the runner lists it with the rest of the run's output."""
        self.results_dir.mkdir(parents=True, exist_ok=True)
        path = self.results_dir / filename
        self.written.append(path)
        return path

    @property
    def command(self) -> str:
        """The command line that reproduces this run."""
        return f"pyro-latent run {self.name}{' --quick' if self.quick else ''} --seed {self.seed}"


_REGISTRY: dict[str, Experiment] = {}


class UnknownExperimentError(LookupError):
    """An experiment name that no script in ``experiments/`` registers."""


class ExperimentsFailedError(RuntimeError):
    """Experiments that failed in worker processes: ``failures`` maps each name to its error
    and the log holding its traceback.  The other experiments' records were written."""

    def __init__(self, failures: dict[str, tuple[str, Path]]):
        self.failures = failures
        lines = [f"{name}: {error} (log: {log})" for name, (error, log) in failures.items()]
        super().__init__(
            f"{len(failures)} experiment(s) failed; the others' records were written:\n  "
            + "\n  ".join(lines)
        )


def experiment(name: str, *, title: str, order: int, vaes: Callable[[Context], dict] | None = None):
    """Decorator registering ``fn(ctx) -> payload`` as the experiment ``name``.

    ``vaes(ctx)`` gives the study VAEs the experiment trains or loads, ``{world: [(config or
    preset name, seed), ...]}`` (``world`` ``"fashion"`` or ``"shapes"``), so that the runner
    trains them all before any experiment runs (see the module docstring)."""
    if vaes is not None and not callable(vaes):
        raise TypeError(f"vaes of experiment {name!r} must be a function of the context")

    def decorate(fn: Callable[[Context], dict]) -> Callable[[Context], dict]:
        existing = _REGISTRY.get(name)
        source = getattr(fn, "__module__", "")
        if existing is not None and existing.source != source:
            raise ValueError(f"experiment {name!r} is registered by {existing.source} and {source}")
        _REGISTRY[name] = Experiment(name, title, order, fn, source, vaes)
        return fn

    return decorate


def experiments_dir() -> Path:
    """The ``experiments/`` folder of the checkout this package was installed from (editable
    install), falling back to ``./experiments``."""
    here = Path(__file__).resolve().parents[2] / "experiments"
    return here if here.is_dir() else Path.cwd() / "experiments"


def discover(
    directory: Path | None = None, names: list[str] | None = None
) -> dict[str, Experiment]:
    """Import ``experiments/*.py`` so that each registers itself; return the registry.

    With ``names``, only the scripts ``NAME.py`` of those names are imported when they all exist,
    so that running one experiment does not depend on every other script importing cleanly.
    """
    directory = Path(directory) if directory is not None else experiments_dir()
    if not directory.is_dir():
        raise FileNotFoundError(
            f"no experiments folder at {directory}: run from a checkout of pyro-latent "
            "(the study's experiments are scripts beside the package, not inside it)"
        )
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    running = Path(main_file).resolve() if main_file else None
    scripts = [directory / f"{name}.py" for name in names or []]
    if not scripts or not all(path.is_file() for path in scripts):
        scripts = sorted(directory.glob("*.py"))
    for path in scripts:
        if path.name.startswith("_") or path.resolve() == running:
            continue  # a script run as __main__ has registered itself already
        module_name = f"pyro_latent_experiments.{path.stem}"
        if module_name in sys.modules:
            continue
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return dict(sorted(_REGISTRY.items(), key=lambda kv: (kv[1].order, kv[0])))


def select(registry: dict[str, Experiment], names: list[str] | None) -> list[Experiment]:
    """The named experiments in the registry's order (all when ``names`` is empty)."""
    if not names:
        return list(registry.values())
    unknown = [n for n in names if n not in registry]
    if unknown:
        raise UnknownExperimentError(
            f"unknown experiment(s) {', '.join(unknown)}; available: {', '.join(registry)}"
        )
    return [registry[n] for n in registry if n in names]


def run_experiment(exp: Experiment, ctx: Context) -> Path:
    """Run one experiment and write its record ``results/NAME.json``; return the record's path."""
    start = time.perf_counter()
    payload = exp.run(ctx)
    elapsed = time.perf_counter() - start
    if not isinstance(payload, dict):
        raise TypeError(
            f"experiment {exp.name!r} returned {type(payload).__name__}; an experiment returns "
            "its JSON payload as a dict"
        )
    record = {
        "experiment": exp.name,
        "title": exp.title,
        "order": exp.order,
        "profile": "quick" if ctx.quick else "full",
        "seed": ctx.seed,
        "device": ctx.device,
        "python": platform.python_version(),
        "command": ctx.command,
        "seconds": round(elapsed, 1),
        "figures": dict(sorted(ctx.figures.items())),
        "results": payload,
    }
    path = Path(ctx.results_dir) / f"{exp.name}.json"
    atomic_write(path, json.dumps(jsonable(record), indent=2, sort_keys=True) + "\n")
    ctx.written.append(path)
    return path


def run_experiments(
    names: list[str] | None = None,
    *,
    quick: bool = False,
    seed: int = 0,
    device: str = "cpu",
    figures_dir: Path = Path("figures"),
    results_dir: Path = Path("results"),
    runs_dir: Path = Path("runs"),
    data_dir: Path | None = None,
    download: bool = False,
    jobs: int | None = None,
    cluster: str | None = None,
    ensembles: bool = True,
    directory: Path | None = None,
) -> tuple[list[Path], dict[str, float]]:
    """Run the named experiments (all when ``names`` is None): first train the VAEs they declare,
    then run them ``jobs`` at a time (default: one per core; ``1`` runs them in this process).

    Returns the files written and the seconds each experiment took, with the training phase's
    under ``"(training VAEs)"`` when an experiment declared VAEs.  The caller rebuilds the
    report (:func:`pyro_latent.study.report.write_report`).
    """
    selected = select(discover(directory, names), names)
    options = {
        "quick": quick,
        "seed": seed,
        "device": device,
        "figures_dir": Path(figures_dir),
        "results_dir": Path(results_dir),
        "runs_dir": Path(runs_dir),
        "data_dir": Path(data_dir) if data_dir is not None else None,
        "download": download,
        "jobs": jobs,
        "cluster": cluster,
        "ensembles": ensembles,
    }
    study_start = time.perf_counter()
    seconds: dict[str, float] = {}
    declared = declared_vaes(selected, options)
    if declared:
        n_runs = sum(len(runs) for runs in declared.values())
        print(f"training (or loading) the experiments' {n_runs} VAEs", flush=True)
        start = time.perf_counter()
        train_declared(declared, options)
        seconds["(training VAEs)"] = time.perf_counter() - start
        print(f"    done in {seconds['(training VAEs)']:.1f} s", flush=True)
    workers = min((os.cpu_count() or 1) if jobs is None else jobs, len(selected))
    if workers <= 1:
        written: list[Path] = []
        for i, exp in enumerate(selected, 1):
            print(f"[{i}/{len(selected)}] {exp.name}: {exp.title}", flush=True)
            ctx = Context(name=exp.name, **options)
            start = time.perf_counter()
            run_experiment(exp, ctx)
            seconds[exp.name] = time.perf_counter() - start
            written += ctx.written
            print(f"    done in {seconds[exp.name]:.1f} s", flush=True)
    else:
        written = _run_in_workers(selected, options, directory, workers, seconds)
    print(f"study wall time {time.perf_counter() - study_start:.1f} s", flush=True)
    return written, seconds


def declared_vaes(selected: list[Experiment], options: dict) -> dict[str, list]:
    """``{world: [(config or name, seed), ...]}``: every VAE the selected experiments declare,
    each once, in the order first declared."""
    wanted: dict[str, dict] = {}
    for exp in selected:
        if exp.vaes is None:
            continue
        declared = exp.vaes(Context(name=exp.name, **options))
        if not isinstance(declared, dict):
            raise TypeError(
                f"vaes of experiment {exp.name!r} returned {type(declared).__name__}; it returns "
                "{world: [(config or preset name, seed), ...]}"
            )
        for world, runs in declared.items():
            for run in runs:
                config, seed = run  # a preset name or a (hashable, frozen) VAEConfig
                wanted.setdefault(world, {})[(config, int(seed))] = (config, seed)
    return {world: list(runs.values()) for world, runs in wanted.items() if runs}


def train_declared(declared: dict[str, list], options: dict) -> None:
    """Train (or find) every declared VAE, one :func:`~pyro_latent.vae.parallel.train_many`
    per world, with the study's profiles and the command line's training options."""
    from pyro_latent.study.profiles import study_vaes, world_training_set

    profile = "quick" if options["quick"] else "full"
    ctx = Context(name="(training VAEs)", **options)
    for world, runs in declared.items():
        train = world_training_set(
            world, profile, options["data_dir"], options["download"], options["seed"]
        )
        study_vaes(runs, train, profile, options["runs_dir"], world=world, **ctx.training_options())


def _expected_seconds(exp: Experiment, options: dict) -> float:
    """The seconds of the experiment's previous record of this profile (0 without one): the
    order in which the workers take the experiments, longest first."""
    path = Path(options["results_dir"]) / f"{exp.name}.json"
    try:
        record = json.loads(path.read_text())
        same_profile = record.get("profile") == ("quick" if options["quick"] else "full")
        return float(record.get("seconds", 0.0)) if same_profile else 0.0
    except (OSError, ValueError, TypeError, AttributeError):
        return 0.0


def _run_in_workers(selected, options, directory, workers: int, seconds: dict) -> list[Path]:
    queue = sorted(selected, key=lambda exp: -_expected_seconds(exp, options))
    logs = Path(options["runs_dir"]) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    failures: dict[str, tuple[str, Path]] = {}
    print(f"running {len(queue)} experiments, {workers} at a time (logs under {logs}/)")
    # Each experiment in one process: its own worker pools (NUTS chains, inference gaps) would
    # start cold in every worker and oversubscribe the cores the experiments already share; the
    # records do not depend on ``jobs`` (tested).
    options = {**options, "jobs": 1}
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked torch state
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {
            pool.submit(
                _worker, exp.name, _script_of(exp, directory), options, logs / f"{exp.name}.log"
            ): exp
            for exp in queue
        }
        for done, future in enumerate(as_completed(futures), 1):
            exp = futures[future]
            log = logs / f"{exp.name}.log"
            try:
                paths, elapsed = future.result()
            except Exception as error:  # the traceback is in the log
                failures[exp.name] = (f"{type(error).__name__}: {error}", log)
                print(f"[{done}/{len(queue)}] {exp.name}: FAILED ({error}; see {log})", flush=True)
                continue
            seconds[exp.name] = elapsed
            written += [Path(p) for p in paths]
            print(f"[{done}/{len(queue)}] {exp.name}: done in {elapsed:.1f} s", flush=True)
    if failures:
        raise ExperimentsFailedError(failures)
    order = {exp.name: i for i, exp in enumerate(selected)}
    ordered = sorted((k for k in seconds if k in order), key=order.get)
    for name in ordered:  # the registry's order, as when run in sequence
        seconds[name] = seconds.pop(name)
    return written


def _script_of(exp: Experiment, directory) -> Path | None:
    """The script that registered ``exp`` (the worker imports that one file)."""
    code = getattr(exp.run, "__code__", None)
    script = Path(code.co_filename) if code is not None else None
    if script is not None and script.is_file():
        return script
    return None if directory is None else Path(directory) / f"{exp.name}.py"


def _worker(name: str, script: Path | None, options: dict, log: Path) -> tuple[list[str], float]:
    """One experiment in a worker process, its output (and any traceback) in ``log``."""
    with open(log, "w", buffering=1) as out, contextlib.redirect_stdout(out):
        with contextlib.redirect_stderr(out):
            try:
                where = (script.parent, [script.stem]) if script is not None else (None, [name])
                exp = discover(*where)[name]
                ctx = Context(name=name, **options)
                start = time.perf_counter()
                run_experiment(exp, ctx)
                return [str(p) for p in ctx.written], time.perf_counter() - start
            except BaseException:
                traceback.print_exc()
                raise
            finally:
                _release_joblib_workers()


def _release_joblib_workers() -> None:
    """Stop the joblib (loky) workers an experiment started (NUTS chains, inference gaps): they
    idle for 300 s before exiting, and a worker process waits for its children when it ends, so
    without this the study sat idle for five minutes after its last experiment."""
    try:
        from joblib.externals.loky import reusable_executor
    except ImportError:
        return
    executor = getattr(reusable_executor, "_executor", None)
    if executor is not None:
        executor.shutdown(wait=True)


def jsonable(obj):
    """Plain JSON types: tensors and arrays to lists, tuple keys to ``"a|b"``, NaN and inf to
    the strings ``"nan"``, ``"inf"``, ``"-inf"`` (JSON has no such numbers)."""
    if isinstance(obj, dict):
        return {_key(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if hasattr(obj, "tolist"):
        return jsonable(obj.tolist())
    if isinstance(obj, bool | np.bool_):
        return bool(obj)
    if isinstance(obj, float | np.floating):
        f = float(obj)
        return f if math.isfinite(f) else str(f)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _key(key) -> str:
    if isinstance(key, tuple):
        return "|".join(str(k) for k in key)
    return str(key)
