"""The study runner and the command line: registry, JSON records, report assembly, errors."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pyro_latent.study import cli, report
from pyro_latent.study import runner as study

TINY = """
from pyro_latent.study import cli
from pyro_latent.study import experiment


def save_tiny(path, text):
    path.write_bytes(text.encode())


@experiment("tiny_{tag}", title="A tiny experiment", order={order})
def run(ctx):
    ctx.draw(save_tiny, "tiny_{tag}.png", "not really a png")
    return {{"value": 1.5, "missing": float("nan"), "seed": ctx.seed, "pair": (1, 2)}}


if __name__ == "__main__":
    cli.run_script("tiny_{tag}")
"""

TEMPLATE = """## Tiny {tag}

value {{{{ r.value | fmt(".2f") }}}}, missing {{{{ r.missing | fmt(".1f") }}}},
quick={{{{ quick }}}}

![tiny](tiny_{tag}.png)
"""


def write_experiment(directory: Path, tag: str, order: int = 999) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "templates").mkdir(exist_ok=True)
    (directory / "templates" / f"tiny_{tag}.md").write_text(TEMPLATE.format(tag=tag))
    path = directory / f"tiny_{tag}.py"
    path.write_text(TINY.format(tag=tag, order=order))
    return path


def test_run_writes_a_json_record_with_provenance(tmp_path):
    exp_dir = write_experiment(tmp_path / "experiments", "a").parent
    figures, results = tmp_path / "figures", tmp_path / "results"
    written, seconds = study.run_experiments(
        ["tiny_a"], quick=True, seed=3, figures_dir=figures, results_dir=results, directory=exp_dir
    )
    assert figures / "tiny_a.png" in written and set(seconds) == {"tiny_a"}
    record = json.loads((results / "tiny_a.json").read_text())
    assert record["seed"] == 3 and record["profile"] == "quick" and record["order"] == 999
    assert record["command"] == "pyro-latent run tiny_a --quick --seed 3"
    # NaN stays valid JSON; tuples become lists
    assert record["results"] == {"value": 1.5, "missing": "nan", "seed": 3, "pair": [1, 2]}
    assert record["figures"] == {"tiny_a.png": "pyro_latent_experiments.tiny_a.save_tiny"}


def test_report_renders_from_records_alone(tmp_path):
    exp_dir = write_experiment(tmp_path / "experiments", "b").parent
    figures, results = tmp_path / "figures", tmp_path / "results"
    study.run_experiments(["tiny_b"], figures_dir=figures, results_dir=results, directory=exp_dir)
    path = report.write_report(results, figures, exp_dir / "templates")
    text = path.read_text()
    assert "## Tiny b" in text and "value 1.50, missing nan,\nquick=False" in text
    # the provenance line names the experiment and the plotting function, below the figure
    figure_at = text.index("![tiny](tiny_b.png)")
    caption = (
        "Experiment `tiny_b`; `tiny_b.png`: drawn by `pyro_latent_experiments.tiny_b.save_tiny`"
    )
    assert text.index(caption) > figure_at
    assert "pyro-latent run tiny_b --seed 0" in text


def test_report_orders_sections_by_the_recorded_order(tmp_path):
    exp_dir = write_experiment(tmp_path / "experiments", "late", order=50).parent
    write_experiment(exp_dir, "early", order=5)
    figures, results = tmp_path / "figures", tmp_path / "results"
    study.run_experiments(
        ["tiny_late", "tiny_early"], figures_dir=figures, results_dir=results, directory=exp_dir
    )
    text = report.write_report(results, figures, exp_dir / "templates").read_text()
    assert text.index("## Tiny early") < text.index("## Tiny late")


def test_report_lists_templates_without_results(tmp_path):
    exp_dir = write_experiment(tmp_path / "experiments", "c").parent
    write_experiment(exp_dir, "never")
    figures, results = tmp_path / "figures", tmp_path / "results"
    study.run_experiments(["tiny_c"], figures_dir=figures, results_dir=results, directory=exp_dir)
    text = report.write_report(results, figures, exp_dir / "templates").read_text()
    assert "## Not yet run" in text and "`tiny_never`" in text


def test_a_missing_key_fails_the_render(tmp_path):
    exp_dir = write_experiment(tmp_path / "experiments", "d").parent
    figures, results = tmp_path / "figures", tmp_path / "results"
    study.run_experiments(["tiny_d"], figures_dir=figures, results_dir=results, directory=exp_dir)
    template = exp_dir / "templates" / "tiny_d.md"
    template.write_text(template.read_text() + "\n{{ r.no_such_number }}\n")
    with pytest.raises(report.ReportError, match="no_such_number"):
        report.write_report(results, figures, exp_dir / "templates")


def test_a_figure_the_run_did_not_draw_fails_the_render(tmp_path):
    exp_dir = write_experiment(tmp_path / "experiments", "e").parent
    figures, results = tmp_path / "figures", tmp_path / "results"
    study.run_experiments(["tiny_e"], figures_dir=figures, results_dir=results, directory=exp_dir)
    template = exp_dir / "templates" / "tiny_e.md"
    template.write_text(template.read_text() + "\n![other](other.png)\n")
    with pytest.raises(report.ReportError, match="other.png"):
        report.write_report(results, figures, exp_dir / "templates")
    template.write_text(TEMPLATE.format(tag="e"))
    (figures / "tiny_e.png").unlink()
    with pytest.raises(report.ReportError, match="absent"):
        report.write_report(results, figures, exp_dir / "templates")


def test_an_experiment_must_return_a_payload(tmp_path):
    exp_dir = tmp_path / "experiments"
    exp_dir.mkdir()
    (exp_dir / "tiny_text.py").write_text(
        "from pyro_latent.study import experiment\n"
        "@experiment('tiny_text', title='t', order=1)\n"
        "def run(ctx):\n    return '## prose'\n"
    )
    with pytest.raises(TypeError, match="tiny_text.*dict"):
        study.run_experiments(["tiny_text"], results_dir=tmp_path / "r", directory=exp_dir)


def test_unknown_experiment_lists_the_available_ones(tmp_path):
    exp_dir = write_experiment(tmp_path / "experiments", "f").parent
    with pytest.raises(study.UnknownExperimentError, match="available: .*tiny_f"):
        study.run_experiments(["nope"], directory=exp_dir, results_dir=tmp_path / "r")


def test_cli_reports_unknown_experiment(capsys):
    assert cli.main(["run", "no_such_experiment"]) == 2
    assert "unknown experiment" in capsys.readouterr().err


def test_cli_lists_the_experiments(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("strip_world", "toy_transfer", "vae_latents"):
        assert name in out


def test_cli_report_names_a_broken_record(tmp_path, capsys):
    results = tmp_path / "results"
    results.mkdir()
    (results / "strip_world.json").write_text("{not json")
    assert cli.main(["report", "--results-dir", str(results), "--figures-dir", str(tmp_path)]) == 2
    assert "strip_world.json is not valid JSON" in capsys.readouterr().err


def test_experiment_script_runs_standalone(tmp_path):
    script = write_experiment(tmp_path / "elsewhere", "g")
    out = subprocess.run(
        [sys.executable, str(script), "--quick", "--figures-dir", "f", "--results-dir", "r"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "r" / "tiny_g.json").exists()
    assert "wrote 1 figure(s) under f/" in out.stdout


@pytest.mark.parametrize(
    "command, flags",
    [
        ("study", ("--quick", "--seed", "--only", "--data-dir", "--download")),
        ("report", ("--results-dir", "--figures-dir")),
        ("train", ("--preset", "--epochs", "--resume", "--limit")),
    ],
)
def test_help_explains_the_commands(command, flags):
    out = subprocess.run(
        [sys.executable, "-m", "pyro_latent.study.cli", command, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0
    for flag in flags:
        assert flag in out.stdout


class _Stop(Exception):
    pass


@pytest.mark.parametrize("flags, ensembles", [((), True), (("--no-ensembles",), False)])
def test_the_training_options_reach_study_vaes(flags, ensembles, monkeypatch, tmp_path):
    """``--no-ensembles`` (and ``--jobs``) go from the command line through the experiment's
    context into ``study_vaes``, and from there into ``train_many``."""
    import torch

    from pyro_latent.study import profiles

    contexts = []

    def fake_run_experiments(names, directory=None, **options):
        contexts.append(study.Context(name=names[0], **options))
        raise _Stop

    monkeypatch.setattr(cli.study, "run_experiments", fake_run_experiments)
    with pytest.raises(_Stop):
        cli.main(["run", "vae_latents", "--jobs", "3", *flags])
    options = contexts[0].training_options()
    assert options == {"device": "cpu", "jobs": 3, "cluster": None, "ensembles": ensembles}

    seen = {}
    monkeypatch.setattr(profiles, "train_many", lambda *a, **kw: seen.update(kw) or {})
    profiles.study_vaes([("small", 0)], torch.zeros(4, 784), "quick", tmp_path, **options)
    assert seen["ensembles"] is ensembles and seen["n_jobs"] == 3


def test_cli_refuses_a_malformed_cluster_address(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["run", "strip_world", "--cluster", "localhost:8786"])
    assert info.value.code == 2
    assert "dask://HOST:PORT" in capsys.readouterr().err


def test_cli_says_what_is_wrong_with_a_checkpoint_without_a_traceback(tmp_path, capsys):
    exp_dir = tmp_path / "experiments"
    exp_dir.mkdir()
    (exp_dir / "broken_ckpt.py").write_text(
        "from pyro_latent.study import experiment\n"
        "from pyro_latent.vae.training import CheckpointError\n"
        "@experiment('broken_ckpt', title='t', order=1)\n"
        "def run(ctx):\n"
        "    raise CheckpointError('runs/small-0/checkpoint.pt has checkpoint format version 1')\n"
    )
    code = cli.main(
        ["run", "broken_ckpt", "--experiments-dir", str(exp_dir), "--results-dir",
         str(tmp_path / "r"), "--figures-dir", str(tmp_path / "f")]
    )  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "format version 1" in err and "Traceback" not in err


def test_context_laps_record_what_each_part_cost():
    import time

    ctx = study.Context(name="x")
    time.sleep(0.25)
    first = ctx.lap("first")
    second = ctx.lap("second")
    assert first >= 0.2 and second < first  # the clock restarts at every lap
    assert list(ctx.sections) == ["first", "second"]
    assert ctx.sections["first"] == first


SEEDED = """
import torch

from pyro_latent.study import experiment


def save_numbers(path, values):
    path.write_text(" ".join(f"{{v:.9f}}" for v in values))


@experiment("seeded_{tag}", title="A seeded experiment", order={order})
def run(ctx):
    if {fail}:
        raise RuntimeError("seeded_{tag} broke on purpose")
    torch.manual_seed(ctx.seed)
    values = torch.rand(4).tolist()
    ctx.draw(save_numbers, "seeded_{tag}.png", values)
    return {{"values": values, "quick": ctx.quick}}
"""


def write_seeded(directory: Path, tag: str, order: int, fail: bool = False) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"seeded_{tag}.py").write_text(SEEDED.format(tag=tag, order=order, fail=fail))


def test_experiments_in_workers_write_the_records_of_one_process(tmp_path):
    exp_dir = tmp_path / "experiments"
    for order, tag in enumerate("abc"):
        write_seeded(exp_dir, tag, order)
    records = {}
    for jobs in (1, 2):
        out = tmp_path / f"jobs{jobs}"
        written, seconds = study.run_experiments(
            ["seeded_a", "seeded_b", "seeded_c"],
            seed=4,
            jobs=jobs,
            figures_dir=out / "f",
            results_dir=out / "r",
            runs_dir=out / "runs",
            directory=exp_dir,
        )
        assert list(seconds) == ["seeded_a", "seeded_b", "seeded_c"]  # the registry's order
        assert {p.name for p in written} >= {f"seeded_{t}.json" for t in "abc"}
        records[jobs] = {
            t: json.loads((out / "r" / f"seeded_{t}.json").read_text())["results"] for t in "abc"
        }
    assert records[1] == records[2]
    assert (tmp_path / "jobs2" / "runs" / "logs" / "seeded_a.log").is_file()
    assert not (tmp_path / "jobs1" / "runs" / "logs").exists()  # in order, in this process


def test_a_failing_experiment_in_a_worker_keeps_the_others_and_names_its_log(tmp_path, capsys):
    exp_dir = tmp_path / "experiments"
    write_seeded(exp_dir, "ok", 1)
    write_seeded(exp_dir, "bad", 2, fail=True)
    results, runs = tmp_path / "r", tmp_path / "runs"
    with pytest.raises(study.ExperimentsFailedError, match=r"seeded_bad: RuntimeError") as err:
        study.run_experiments(
            ["seeded_ok", "seeded_bad"],
            jobs=2,
            results_dir=results,
            figures_dir=tmp_path / "f",
            runs_dir=runs,
            directory=exp_dir,
        )
    assert set(err.value.failures) == {"seeded_bad"}
    assert (results / "seeded_ok.json").is_file() and not (results / "seeded_bad.json").exists()
    log = (runs / "logs" / "seeded_bad.log").read_text()
    assert "Traceback" in log and "broke on purpose" in log


def test_declared_vaes_are_trained_once_before_any_experiment(tmp_path, monkeypatch):
    exp_dir = tmp_path / "experiments"
    exp_dir.mkdir()
    for tag, order, runs in (("x", 1, "[('small', 0), ('large', 0)]"), ("y", 2, "[('small', 0)]")):
        (exp_dir / f"declares_{tag}.py").write_text(
            "from pyro_latent.study import experiment\n"
            f"def vaes(ctx):\n    return {{'fashion': {runs}, 'shapes': [('conv', ctx.seed)]}}\n"
            f"@experiment('declares_{tag}', title='t', order={order}, vaes=vaes)\n"
            "def run(ctx):\n    return {'ran': True}\n"
        )
    calls = []

    def fake_train(declared, options):
        assert not list((tmp_path / "r").glob("*.json"))  # before any experiment ran
        calls.append((declared, options["seed"], options["quick"]))

    monkeypatch.setattr(study, "train_declared", fake_train)
    _, seconds = study.run_experiments(
        ["declares_x", "declares_y"],
        seed=2,
        quick=True,
        jobs=1,
        results_dir=tmp_path / "r",
        directory=exp_dir,
    )
    assert calls == [({"fashion": [("small", 0), ("large", 0)], "shapes": [("conv", 2)]}, 2, True)]
    assert list(seconds) == ["(training VAEs)", "declares_x", "declares_y"]


def test_vaes_must_be_a_function_returning_worlds():
    with pytest.raises(TypeError, match="function of the context"):
        study.experiment("broken_vaes", title="t", order=1, vaes=[("small", 0)])
    broken = study.Experiment("e", "t", 1, lambda ctx: {}, vaes=lambda ctx: [("small", 0)])
    with pytest.raises(TypeError, match=r"vaes of experiment 'e' returned list"):
        study.declared_vaes([broken], {"quick": True})


def test_the_cli_names_failed_experiments_without_a_traceback(tmp_path, capsys):
    exp_dir = tmp_path / "experiments"
    write_seeded(exp_dir, "ok", 1)
    write_seeded(exp_dir, "bad", 2, fail=True)
    code = cli.main(
        [
            "study",
            "--only",
            "seeded_ok",
            "seeded_bad",
            "--jobs",
            "2",
            "--experiments-dir",
            str(exp_dir),
            "--results-dir",
            str(tmp_path / "r"),
            "--figures-dir",
            str(tmp_path / "f"),
            "--runs-dir",
            str(tmp_path / "runs"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "seeded_bad: RuntimeError: seeded_bad broke on purpose" in err
    assert "Traceback" not in err


def _square(x):
    return x * x


def test_an_experiments_joblib_workers_are_stopped_when_it_ends():
    """A worker process waits for its children at exit, and loky's idle for 300 s: they must be
    stopped, or the study sits idle after its last experiment."""
    from joblib import Parallel, delayed
    from joblib.externals.loky import reusable_executor

    assert Parallel(n_jobs=2)(delayed(_square)(i) for i in range(4)) == [0, 1, 4, 9]
    processes = list(reusable_executor._executor._processes.values())
    assert processes and any(p.is_alive() for p in processes)
    study._release_joblib_workers()
    assert not any(p.is_alive() for p in processes)
