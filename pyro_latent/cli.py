"""The ``pyro-latent`` command line.

``pyro-latent study``      run every registered experiment and rebuild ``figures/REPORT.md``
``pyro-latent run NAME``   run one experiment (same as ``python experiments/NAME.py``)
``pyro-latent list``       list the registered experiments
``pyro-latent train ...``  train a VAE preset (see ``pyro-latent train --help``)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pyro_latent import study


def add_machine_options(parser: argparse.ArgumentParser) -> None:
    """``--device``, ``--runs-dir``, ``--data-dir`` and ``--download``, shared with
    ``pyro-latent train``."""
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


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small profile that finishes in a few minutes on a 2-core CPU (smoke runs, tests); "
        "the default profile has the fidelity the report quotes",
    )
    parser.add_argument("--seed", type=int, default=0, help="base random seed (default 0)")
    parser.add_argument(
        "--figures-dir", type=Path, default=Path("figures"), help="default figures/"
    )
    parser.add_argument(
        "--results-dir", type=Path, default=Path("results"), help="default results/"
    )
    add_machine_options(parser)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pyro-latent",
        description="Translating concepts between the latent spaces of world models (Pyro). "
        "Runs the study that regenerates every figure of 'Translating between Latent Spaces'.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p_study = sub.add_parser(
        "study",
        help="run the registered experiments and write figures/, results/ and figures/REPORT.md",
    )
    _add_run_options(p_study)
    p_study.add_argument(
        "--only", nargs="+", metavar="NAME", help="run only these experiments (see `list`)"
    )

    p_run = sub.add_parser("run", help="run one experiment by name")
    p_run.add_argument("name", help="experiment name (see `pyro-latent list`)")
    _add_run_options(p_run)

    sub.add_parser("list", help="list the registered experiments")
    sub.add_parser(
        "train",
        help="train a VAE preset with SVI and checkpoints (`pyro-latent train --help`)",
        add_help=False,
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "train":
        # The VAE trainer owns its own options; import it only when asked (it pulls torchvision).
        from pyro_latent.vae.cli import main as train_main

        return train_main(argv[1:])

    args = build_parser().parse_args(argv)
    if args.command == "list":
        for exp in study.discover().values():
            print(f"{exp.name:20s} {exp.title}")
        return 0

    names = args.only if args.command == "study" else [args.name]
    try:
        written = study.run_experiments(
            names,
            quick=args.quick,
            seed=args.seed,
            device=args.device,
            figures_dir=args.figures_dir,
            results_dir=args.results_dir,
            runs_dir=args.runs_dir,
            data_dir=args.data_dir,
            download=args.download,
        )
    except study.UnknownExperimentError as err:
        print(f"pyro-latent: {err}", file=sys.stderr)
        return 2
    figures = sorted({p for p in written if p.suffix == ".png"})
    print(
        f"wrote {len(figures)} figure(s) under {args.figures_dir}/, results under "
        f"{args.results_dir}/, report at {args.figures_dir / 'REPORT.md'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
