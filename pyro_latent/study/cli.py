"""The ``pyro-latent`` command line: the one argparse module of the package.

``pyro-latent study``      run every registered experiment, then rebuild ``figures/REPORT.md``
``pyro-latent run NAME``   run one experiment (same as ``python experiments/NAME.py``)
``pyro-latent report``     rebuild ``figures/REPORT.md`` from ``results/*.json`` (no model loaded)
``pyro-latent list``       list the registered experiments
``pyro-latent train``      train one VAE preset with SVI and checkpoints

Exit status 0 on success and 2 on a usage, data or checkpoint problem, with a one-paragraph
message and no traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pyro_latent.study import report
from pyro_latent.study import runner as study

__all__ = ["build_parser", "main", "run_script"]


def _cluster(text: str) -> str:
    from pyro_latent.vae.parallel import parse_cluster

    try:
        parse_cluster(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def _add_machine_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device",
        choices=["cpu", "cuda"],
        default="cpu",
        help="where VAE training runs (default cpu); the toy models always run on the CPU",
    )
    parser.add_argument(
        "--runs-dir", type=Path, default=Path("runs"), help="checkpoints (default runs/)"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="FashionMNIST root already in torchvision's layout (default: data/, filled from "
        "Debian's dataset-fashion-mnist package)",
    )
    parser.add_argument(
        "--download", action="store_true", help="let torchvision download FashionMNIST"
    )


def _add_output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--figures-dir",
        type=Path,
        default=Path("figures"),
        help="figures and REPORT.md (default figures/)",
    )
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=Path("results"),
        help="one JSON record per experiment (default results/)",
    )


def _add_experiments_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--experiments-dir",
        type=Path,
        default=None,
        help="folder of experiment scripts, with their report templates in its templates/ "
        "(default: experiments/ of this checkout)",
    )


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--jobs",
        type=_positive,
        default=None,
        help="train independent VAEs in this many worker processes, one torch thread each, "
        "then run this many experiments at a time, longest first, each logging to "
        "RUNS_DIR/logs/NAME.log (default: the number of cores; 1 runs them here, in order); "
        "the checkpoints and the records are identical whatever the number",
    )
    parser.add_argument(
        "--cluster",
        metavar="dask://HOST:PORT",
        type=_cluster,
        default=None,
        help="send the VAE trainings to this Dask distributed scheduler instead (needs "
        "`pip install pyro-latent[cluster]`); the checkpoints come back to --runs-dir",
    )
    parser.add_argument(
        "--no-ensembles",
        dest="ensembles",
        action="store_false",
        help="train every VAE on its own (train_vae) instead of the seeds of one configuration "
        "as one batched program (train_ensemble, the default); the weights differ only in "
        "their last digits, and a checkpoint made either way is reused by the other",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small profile that finishes in a minute or so on a 2-core CPU (smoke runs, "
        "tests); the default profile has the fidelity the report quotes",
    )
    parser.add_argument("--seed", type=_nonnegative, default=0, help="base random seed (default 0)")
    _add_output_options(parser)
    _add_experiments_dir(parser)
    _add_machine_options(parser)


def _nonnegative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value


def _positive(text: str) -> int:
    value = _nonnegative(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _add_train_parser(sub) -> None:
    # Preset names are listed lazily by the train command itself: importing the VAE package
    # pulls torchvision, which `report` and `list` have no use for.
    p = sub.add_parser(
        "train",
        help="train a VAE preset with SVI, checkpointing every epoch",
        description="Train a FashionMNIST VAE preset with Pyro (TraceMeanField_ELBO, one Adam). A "
        "checkpoint is written atomically after every epoch to RUNS_DIR/<preset>-<seed>/"
        "checkpoint.pt; --resume continues an interrupted run from it, or reuses it when it is "
        "complete. Presets: small, large, vae2d-a, vae2d-b, and <preset>-z<D> for a latent size "
        "D (e.g. small-z40). Data: Debian's dataset-fashion-mnist package, or --data-dir, or "
        "--download.",
    )
    p.add_argument("--preset", required=True, help="the VAE configuration, e.g. small or large")
    p.add_argument(
        "--epochs", type=_positive, default=20, help="total epochs of the run (default 20)"
    )
    p.add_argument("--seed", type=_nonnegative, default=0, help="random seed (default 0)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue from (or reuse) an existing checkpoint of the same run; without it an "
        "existing checkpoint is left untouched and training refuses to start",
    )
    _add_machine_options(p)
    p.add_argument(
        "--limit", type=_positive, default=None, help="train on the first N images only (smoke)"
    )
    p.add_argument("--no-progress", action="store_true", help="no tqdm progress bars")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pyro-latent",
        description="Translating concepts between the latent spaces of world models (Pyro). "
        "Runs the study that regenerates every figure of 'Translating between Latent Spaces'.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p_study = sub.add_parser(
        "study",
        help="run the registered experiments, write figures/ and results/, rebuild the report",
    )
    _add_run_options(p_study)
    p_study.add_argument(
        "--only", nargs="+", metavar="NAME", help="run only these experiments (see `list`)"
    )

    p_run = sub.add_parser("run", help="run one experiment by name, then rebuild the report")
    p_run.add_argument("name", help="experiment name (see `pyro-latent list`)")
    _add_run_options(p_run)

    p_report = sub.add_parser(
        "report",
        help="rebuild figures/REPORT.md from results/*.json and experiments/templates/",
        description="Render every experiment's template against its JSON record and assemble "
        "figures/REPORT.md. Loads no model and runs no experiment: use it after editing a "
        "template.",
    )
    _add_output_options(p_report)
    _add_experiments_dir(p_report)

    p_list = sub.add_parser("list", help="list the registered experiments")
    _add_experiments_dir(p_list)
    _add_train_parser(sub)
    return parser


def _train(args) -> int:
    from pyro_latent.vae import (
        CheckpointError,
        DataNotFoundError,
        checkpoint_path,
        get_preset,
        load_fashion_mnist,
        train_vae,
    )
    from pyro_latent.vae.metrics import evaluate_elbo

    try:
        config = get_preset(args.preset)
        train = load_fashion_mnist(
            args.data_dir, train=True, download=args.download, limit=args.limit
        )
        test = load_fashion_mnist(args.data_dir, train=False, download=args.download)
        vae = train_vae(
            config,
            train,
            epochs=args.epochs,
            seed=args.seed,
            device=args.device,
            checkpoint_dir=args.runs_dir,
            resume=args.resume,
            progress=not args.no_progress,
        )
    except (DataNotFoundError, CheckpointError, ValueError, KeyError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"pyro-latent train: {message}", file=sys.stderr)
        return 2
    path = checkpoint_path(vae.config, args.seed, args.runs_dir)
    print(
        f"{args.preset} seed {args.seed}: {len(vae.history_)} epochs, train ELBO "
        f"{vae.history_[-1]:.2f}, test ELBO {evaluate_elbo(vae, test.images):.2f} nats/image; "
        f"checkpoint {path}"
    )
    return 0


def _report(figures_dir: Path, results_dir: Path, experiments_dir: Path | None) -> int:
    templates = experiments_dir / "templates" if experiments_dir is not None else None
    try:
        path = report.write_report(results_dir, figures_dir, templates)
    except report.ReportError as err:
        print(f"pyro-latent report: {err}", file=sys.stderr)
        return 2
    print(f"report at {path}")
    return 0


_RUN_OPTIONS = (
    "quick",
    "seed",
    "device",
    "figures_dir",
    "results_dir",
    "runs_dir",
    "data_dir",
    "download",
    "jobs",
    "cluster",
    "ensembles",
)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.command == "train":
        return _train(args)
    if args.command == "report":
        return _report(args.figures_dir, args.results_dir, args.experiments_dir)
    if args.command == "list":
        for exp in study.discover(args.experiments_dir).values():
            print(f"{exp.name:20s} {exp.title}")
        return 0

    names = args.only if args.command == "study" else [args.name]
    try:
        options = {name: getattr(args, name) for name in _RUN_OPTIONS}
        written, seconds = study.run_experiments(names, directory=args.experiments_dir, **options)
    except study.UnknownExperimentError as err:
        print(f"pyro-latent: {err}", file=sys.stderr)
        return 2
    except Exception as err:
        if not _is_user_problem(err):
            raise
        print(f"pyro-latent {args.command}: {err}", file=sys.stderr)
        return 2
    if len(seconds) > 1:
        print("cost of each experiment:")
        for name, s in seconds.items():
            print(f"    {name:20s} {s:8.1f} s")
        side_by_side = " (experiments ran side by side)" if args.jobs != 1 else ""
        print(f"    {'sum':20s} {sum(seconds.values()):8.1f} s{side_by_side}")
    figures = sorted({p for p in written if p.suffix == ".png"})
    print(
        f"wrote {len(figures)} figure(s) under {args.figures_dir}/, results under "
        f"{args.results_dir}/"
    )
    return _report(args.figures_dir, args.results_dir, args.experiments_dir)


def _is_user_problem(err: Exception) -> bool:
    """Missing data, a checkpoint that cannot be used, or failed training runs: said in one
    message, without a traceback (the library modules are imported only when this happens)."""
    from pyro_latent.vae.data import DataNotFoundError
    from pyro_latent.vae.parallel import TrainingFailedError
    from pyro_latent.vae.training import CheckpointError

    user_problems = DataNotFoundError | CheckpointError | TrainingFailedError
    # experiments that failed in workers: their tracebacks are in the logs the message names
    return isinstance(err, user_problems | study.ExperimentsFailedError)


def run_script(name: str, argv: list[str] | None = None) -> None:
    """Entry point of ``python experiments/NAME.py [--quick] [--seed N] …``: the experiments
    and templates are looked up beside the script."""
    script = getattr(sys.modules.get("__main__"), "__file__", None)
    where = ["--experiments-dir", str(Path(script).resolve().parent)] if script else []
    sys.exit(main(["run", name, *where, *(sys.argv[1:] if argv is None else argv)]))


if __name__ == "__main__":
    sys.exit(main())
