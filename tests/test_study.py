"""The study runner and the command line: registry, results, report assembly, errors."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pyro_latent import cli, study

TINY = """
from pyro_latent.study import experiment, main

@experiment("tiny_{tag}", title="A tiny experiment", order=999)
def run(ctx):
    path = ctx.figure("tiny_{tag}.png")
    path.write_bytes(b"not really a png")
    ctx.save_json({{"value": 1.5, "missing": float("nan"), "seed": ctx.seed}})
    return "## Tiny {tag}\\n\\nvalue 1.5, quick={{}}".format(ctx.quick)

if __name__ == "__main__":
    main("tiny_{tag}")
"""


def write_experiment(directory: Path, tag: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"tiny_{tag}.py"
    path.write_text(TINY.format(tag=tag))
    return path


def test_run_writes_results_and_report(tmp_path):
    exp_dir = write_experiment(tmp_path / "experiments", "a").parent
    figures, results = tmp_path / "figures", tmp_path / "results"
    written = study.run_experiments(
        ["tiny_a"], quick=True, seed=3, figures_dir=figures, results_dir=results, directory=exp_dir
    )
    assert figures / "tiny_a.png" in written
    record = json.loads((results / "tiny_a.json").read_text())
    assert record["seed"] == 3 and record["profile"] == "quick"
    assert record["results"] == {"value": 1.5, "missing": "nan", "seed": 3}  # NaN stays valid JSON
    report = (figures / "REPORT.md").read_text()
    assert "## Tiny a" in report and "quick=True" in report
    assert "pyro-latent run tiny_a --quick --seed 3" in report


def test_report_keeps_sections_in_registered_order(tmp_path):
    exp_dir = write_experiment(tmp_path / "experiments", "b").parent
    figures, results = tmp_path / "figures", tmp_path / "results"
    results.mkdir()
    (results / "strip_world.md").write_text("## Strip section")
    study.discover()  # the real experiments, so that strip_world is registered
    study.run_experiments(["tiny_b"], figures_dir=figures, results_dir=results, directory=exp_dir)
    report = (figures / "REPORT.md").read_text()
    # strip_world (order 10) comes before tiny_b (order 999) even though it was not run now
    assert report.index("## Strip section") < report.index("## Tiny b")
    assert "Not yet run" in report


def test_unknown_experiment_lists_the_available_ones(tmp_path):
    exp_dir = write_experiment(tmp_path / "experiments", "c").parent
    with pytest.raises(study.UnknownExperimentError, match="available: .*tiny_c"):
        study.run_experiments(["nope"], directory=exp_dir, results_dir=tmp_path / "r")


def test_cli_reports_unknown_experiment(capsys):
    assert cli.main(["run", "no_such_experiment"]) == 2
    assert "unknown experiment" in capsys.readouterr().err


def test_cli_lists_the_toy_experiment(capsys):
    assert cli.main(["list"]) == 0
    assert "strip_world" in capsys.readouterr().out


def test_experiment_script_runs_standalone(tmp_path):
    script = write_experiment(tmp_path / "elsewhere", "d")
    out = subprocess.run(
        [sys.executable, str(script), "--quick", "--figures-dir", "f", "--results-dir", "r"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "r" / "tiny_d.json").exists()
    assert "report at f/REPORT.md" in out.stdout


def test_help_explains_the_commands():
    out = subprocess.run(
        [sys.executable, "-m", "pyro_latent.cli", "study", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0
    for flag in ("--quick", "--seed", "--only", "--data-dir", "--download"):
        assert flag in out.stdout
