"""``figures/REPORT.md``, rendered from the experiments' JSON records and Markdown templates.

Each experiment leaves ``results/NAME.json`` (:mod:`pyro_latent.study`) and owns a Jinja2
template ``experiments/templates/NAME.md``.  Rendering needs nothing else: no model is loaded and
no experiment code is imported, so rewording a sentence is an edit to a template followed by
``pyro-latent report``, which takes seconds.

A template sees

* ``r``: the experiment's payload (``record["results"]``);
* ``run``: the rest of the record (``profile``, ``seed``, ``device``, ``seconds``, ``command``…);
* ``quick``: whether the record comes from the ``--quick`` profile;

and one filter, ``fmt``, Python's :func:`format` for numbers (``{{ x | fmt(".3f") }}``) that also
reads the strings ``"nan"``, ``"inf"`` and ``"-inf"`` which JSON records stand in for those
floats.  Undefined names are errors (:class:`jinja2.StrictUndefined`): a key missing from a record
fails the render instead of printing an empty string.

Below every figure (a line ``![…](file.png)``) the renderer adds one line naming the experiment and
the plotting function that drew it, from the record's ``figures`` map, and it refuses a figure that
the record does not list or that does not exist under ``figures/``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import jinja2

from pyro_latent.study.runner import atomic_write, experiments_dir

__all__ = [
    "ReportError",
    "load_records",
    "render_report",
    "render_section",
    "templates_dir",
    "write_report",
]

REPORT_TITLE = "# pyro-latent: Translating between Latent Spaces, regenerated"
INTRO = (
    "Every number below was measured by this repository's code; regenerate it with "
    "`make study`. Sections follow the post (`Translating between Latent Spaces`) in order. "
    "Each gives the post's claim, the figure, and what this project measured. Below each figure, "
    "one line names the experiment (`experiments/NAME.py`) and the plotting function that drew it."
)
_IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")


class ReportError(ValueError):
    """A record and its template do not fit together (a missing key, figure or template)."""


def templates_dir() -> Path:
    """``experiments/templates/`` of the checkout this package runs from."""
    return experiments_dir() / "templates"


def _fmt(value, spec: str = "") -> str:
    if isinstance(value, str) and value in ("nan", "inf", "-inf"):
        value = float(value)
    if value is None:
        raise ReportError("fmt got None: the record has no number here")
    return format(value, spec)


def _environment(directory: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(directory)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # Markdown, not HTML
    )
    env.filters["fmt"] = _fmt
    return env


def load_records(results_dir: Path) -> dict[str, dict]:
    """Every ``results/*.json`` experiment record, in the study's order."""
    records = {}
    for path in sorted(Path(results_dir).glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ReportError(f"{path} is not valid JSON: {err}") from None
        if not isinstance(record, dict) or "experiment" not in record or "results" not in record:
            continue  # some other JSON file, not an experiment record
        records[record["experiment"]] = record
    return dict(sorted(records.items(), key=lambda kv: (kv[1].get("order", 0), kv[0])))


def _captioned(text: str, record: dict, figures_dir: Path) -> str:
    """Add the provenance line below each figure, checking that the figure is real."""
    name = record["experiment"]
    drawn_by = record.get("figures", {})
    out = []
    for line in text.splitlines():
        out.append(line)
        links = _IMAGE.findall(line)
        if not links:
            continue
        captions = []
        for link in links:
            if link not in drawn_by:
                raise ReportError(
                    f"template {name}.md shows {link}, which results/{name}.json does not list "
                    "among the figures its run drew"
                )
            if not (figures_dir / link).is_file():
                raise ReportError(f"template {name}.md shows {link}, absent from {figures_dir}/")
            captions.append(f"`{link}`: drawn by `{drawn_by[link]}`")
        out += ["", f"<sub>Experiment `{name}`; " + "; ".join(captions) + ".</sub>"]
    return "\n".join(out)


def render_section(
    record: dict, figures_dir: Path = Path("figures"), directory: Path | None = None
) -> str:
    """One experiment's report section from its record and template."""
    name = record["experiment"]
    directory = Path(directory) if directory is not None else templates_dir()
    env = _environment(directory)
    try:
        template = env.get_template(f"{name}.md")
    except jinja2.TemplateNotFound:
        missing = directory / f"{name}.md"
        raise ReportError(f"no template {missing} for the results of {name}") from None
    meta = {k: v for k, v in record.items() if k != "results"}
    try:
        text = template.render(r=record["results"], run=meta, quick=record["profile"] == "quick")
    except jinja2.UndefinedError as err:
        raise ReportError(f"template {name}.md: {err.message} in results/{name}.json") from None
    text = _captioned(text.strip(), record, Path(figures_dir))
    footer = (
        f"<sub>Generated by `{record['command']}` in {record['seconds']:.0f} s "
        f"(Python {record['python']}, {record['device']}).</sub>"
    )
    return f"{text}\n\n{footer}\n"


def render_report(
    results_dir: Path = Path("results"),
    figures_dir: Path = Path("figures"),
    directory: Path | None = None,
) -> str:
    """The text of ``REPORT.md``: every record in ``results_dir`` rendered in the study's order."""
    directory = Path(directory) if directory is not None else templates_dir()
    records = load_records(results_dir)
    parts = [REPORT_TITLE, "", INTRO, ""]
    for record in records.values():
        parts += [render_section(record, figures_dir, directory).strip(), ""]
    missing = sorted(p.stem for p in directory.glob("*.md") if p.stem not in records)
    if missing:
        names = ", ".join(f"`{m}`" for m in missing)
        parts += ["## Not yet run", "", f"These experiments have no results yet: {names}.", ""]
    return "\n".join(parts)


def write_report(
    results_dir: Path = Path("results"),
    figures_dir: Path = Path("figures"),
    directory: Path | None = None,
) -> Path:
    """Write ``figures/REPORT.md`` (:func:`render_report`), atomically."""
    path = Path(figures_dir) / "REPORT.md"
    atomic_write(path, render_report(results_dir, figures_dir, directory))
    return path
