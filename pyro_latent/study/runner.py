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
"""

from __future__ import annotations

import importlib.util
import json
import math
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pyro_latent.core.files import atomic_write

__all__ = [
    "Context",
    "Experiment",
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


def experiment(name: str, *, title: str, order: int):
    """Decorator registering ``fn(ctx) -> payload`` as the experiment ``name``."""

    def decorate(fn: Callable[[Context], dict]) -> Callable[[Context], dict]:
        existing = _REGISTRY.get(name)
        source = getattr(fn, "__module__", "")
        if existing is not None and existing.source != source:
            raise ValueError(f"experiment {name!r} is registered by {existing.source} and {source}")
        _REGISTRY[name] = Experiment(name, title, order, fn, source)
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
    """Run the named experiments (all when ``names`` is None).

    Returns the files written and the seconds each experiment took.  The caller rebuilds the
    report (:func:`pyro_latent.study.report.write_report`).
    """
    selected = select(discover(directory, names), names)
    written: list[Path] = []
    seconds: dict[str, float] = {}
    for i, exp in enumerate(selected, 1):
        print(f"[{i}/{len(selected)}] {exp.name}: {exp.title}", flush=True)
        ctx = Context(
            name=exp.name,
            quick=quick,
            seed=seed,
            device=device,
            figures_dir=Path(figures_dir),
            results_dir=Path(results_dir),
            runs_dir=Path(runs_dir),
            data_dir=Path(data_dir) if data_dir is not None else None,
            download=download,
            jobs=jobs,
            cluster=cluster,
            ensembles=ensembles,
        )
        start = time.perf_counter()
        run_experiment(exp, ctx)
        seconds[exp.name] = time.perf_counter() - start
        written += ctx.written
        print(f"    done in {seconds[exp.name]:.1f} s", flush=True)
    return written, seconds


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
