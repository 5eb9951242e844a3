"""The study runner: a registry of experiments and the report they write together.

An *experiment* is a thin script in ``experiments/NAME.py`` that registers one function with
:func:`experiment`.  The function receives a :class:`Context` (profile, seed, device and where to
write) and returns the Markdown section it contributes to ``figures/REPORT.md``.  The runner

* writes the section to ``results/NAME.md`` and any numbers to ``results/NAME.json``;
* rebuilds ``figures/REPORT.md`` from every section present, in the registered order (the post's
  order), so that ``--only NAME`` refreshes one section without dropping the others.

Registration order is explicit (``order=``) rather than import order, because the report must read
like the post whatever subset was run.
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

REPORT_TITLE = "# pyro-latent: Translating between Latent Spaces, regenerated"


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    order: int
    run: Callable[[Context], str]
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
    written: list[Path] = field(default_factory=list)

    def figure(self, filename: str) -> Path:
        """Path for a figure; the caller saves to it, the runner lists it."""
        self.figures_dir.mkdir(parents=True, exist_ok=True)
        path = self.figures_dir / filename
        self.written.append(path)
        return path

    def save_json(self, payload: dict, suffix: str = "") -> Path:
        """Write ``results/NAME[_suffix].json`` (NaN/inf become strings, not invalid JSON)."""
        self.results_dir.mkdir(parents=True, exist_ok=True)
        path = self.results_dir / f"{self.name}{'_' + suffix if suffix else ''}.json"
        record = {
            "experiment": self.name,
            "profile": "quick" if self.quick else "full",
            "seed": self.seed,
            "device": self.device,
            "results": payload,
        }
        _atomic_write(path, json.dumps(_jsonable(record), indent=2, sort_keys=True) + "\n")
        self.written.append(path)
        return path


_REGISTRY: dict[str, Experiment] = {}


class UnknownExperimentError(LookupError):
    """An experiment name that no script in ``experiments/`` registers."""


def experiment(name: str, *, title: str, order: int):
    """Decorator registering ``fn(ctx) -> markdown`` as the experiment ``name``."""

    def decorate(fn: Callable[[Context], str]) -> Callable[[Context], str]:
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
    here = Path(__file__).resolve().parents[1] / "experiments"
    return here if here.is_dir() else Path.cwd() / "experiments"


def discover(directory: Path | None = None) -> dict[str, Experiment]:
    """Import every ``experiments/*.py`` so that each registers itself; return the registry."""
    directory = Path(directory) if directory is not None else experiments_dir()
    if not directory.is_dir():
        raise FileNotFoundError(
            f"no experiments folder at {directory}: run from a checkout of pyro-latent "
            "(the study's experiments are scripts beside the package, not inside it)"
        )
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    running = Path(main_file).resolve() if main_file else None
    for path in sorted(directory.glob("*.py")):
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
    directory: Path | None = None,
) -> list[Path]:
    """Run the named experiments (all when ``names`` is None) and rebuild the report."""
    registry = discover(directory)
    if names:
        unknown = [n for n in names if n not in registry]
        if unknown:
            raise UnknownExperimentError(
                f"unknown experiment(s) {', '.join(unknown)}; available: {', '.join(registry)}"
            )
        selected = [registry[n] for n in registry if n in names]
    else:
        selected = list(registry.values())

    written: list[Path] = []
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
        )
        start = time.perf_counter()
        section = exp.run(ctx)
        elapsed = time.perf_counter() - start
        results = Path(results_dir)
        results.mkdir(parents=True, exist_ok=True)
        footer = (
            f"\n\n<sub>Generated by `pyro-latent run {exp.name}"
            f"{' --quick' if quick else ''} --seed {seed}` in {elapsed:.0f} s "
            f"(Python {platform.python_version()}, {device}).</sub>\n"
        )
        section_path = results / f"{exp.name}.md"
        _atomic_write(section_path, section.strip() + footer)
        written += ctx.written + [section_path]
        print(f"    done in {elapsed:.1f} s", flush=True)

    report = write_report(registry, Path(figures_dir), Path(results_dir))
    written.append(report)
    return written


def write_report(registry: dict[str, Experiment], figures_dir: Path, results_dir: Path) -> Path:
    """Assemble ``figures/REPORT.md`` from the sections in ``results/``, in the post's order."""
    parts = [
        REPORT_TITLE,
        "",
        "Every number below was measured by this repository's code; regenerate it with "
        "`make study`. Sections follow the post (`Translating between Latent Spaces`) in order. "
        "Each gives the post's claim, the figure, and what this project measured.",
        "",
    ]
    missing = []
    for exp in registry.values():
        section = results_dir / f"{exp.name}.md"
        if section.exists():
            text = section.read_text()
            # Sections are written with figure paths relative to figures/, where REPORT.md lives.
            parts += [text.strip(), ""]
        else:
            missing.append(exp.name)
    if missing:
        parts += [
            "## Not yet run",
            "",
            "These registered experiments have no results yet: "
            + ", ".join(f"`{m}`" for m in missing)
            + ".",
            "",
        ]
    figures_dir.mkdir(parents=True, exist_ok=True)
    path = figures_dir / "REPORT.md"
    _atomic_write(path, "\n".join(parts))
    return path


def main(name: str, argv: list[str] | None = None) -> None:
    """Entry point for ``python experiments/NAME.py [--quick] [--seed N]``."""
    from pyro_latent.cli import main as cli_main

    sys.exit(cli_main(["run", name, *(sys.argv[1:] if argv is None else argv)]))


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "tolist"):
        return _jsonable(obj.tolist())
    if isinstance(obj, float | np.floating):
        f = float(obj)
        return f if math.isfinite(f) else str(f)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj
