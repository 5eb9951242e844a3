"""``pyro-latent train``: train one VAE preset with SVI, checkpointing every epoch.

Example::

    pyro-latent train --preset small --epochs 20 --seed 0           # runs/small-0/checkpoint.pt
    pyro-latent train --preset small --epochs 20 --seed 0 --resume  # after an interruption

Exit status 0 on success, 2 on a usage, data or checkpoint problem (with a one-paragraph
message, no traceback).
"""

from __future__ import annotations

import argparse
import sys

from pyro_latent.cli import add_machine_options
from pyro_latent.vae.data import DEBIAN_DIR, DataNotFoundError, load_fashion_mnist
from pyro_latent.vae.metrics import evaluate_elbo
from pyro_latent.vae.model import PRESETS
from pyro_latent.vae.training import CheckpointError, checkpoint_path, train_vae


def _preset_help() -> str:
    return "; ".join(
        f"{name}: {c.latent_dim}-D latent, hidden {list(c.hidden)}" for name, c in PRESETS.items()
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pyro-latent train",
        description="Train a FashionMNIST VAE preset with Pyro SVI (Trace_ELBO, Adam). A "
        "checkpoint is written atomically after every epoch to RUNS_DIR/<preset>-<seed>/"
        "checkpoint.pt; --resume continues an interrupted run from it, or reuses it when it "
        "is complete.",
        epilog=f"Presets: {_preset_help()}. Data: Debian's dataset-fashion-mnist package "
        f"({DEBIAN_DIR}), or --data-dir, or --download.",
    )
    parser.add_argument(
        "--preset", required=True, choices=sorted(PRESETS), help="the VAE configuration"
    )
    parser.add_argument(
        "--epochs", type=int, default=20, help="total epochs of the run (default 20)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue from (or reuse) an existing checkpoint of the same run; without it an "
        "existing checkpoint is left untouched and training refuses to start",
    )
    add_machine_options(parser)
    parser.add_argument(
        "--limit", type=int, default=None, help="train on the first N images only (smoke runs)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no tqdm progress bars")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.epochs < 1:
        print("pyro-latent train: --epochs must be at least 1", file=sys.stderr)
        return 2
    if args.limit is not None and args.limit < 1:
        print("pyro-latent train: --limit must be at least 1", file=sys.stderr)
        return 2
    if args.seed < 0:
        print("pyro-latent train: --seed must be non-negative", file=sys.stderr)
        return 2
    try:
        train = load_fashion_mnist(
            args.data_dir, train=True, download=args.download, limit=args.limit
        )
        test = load_fashion_mnist(args.data_dir, train=False, download=args.download)
        vae = train_vae(
            args.preset,
            train,
            epochs=args.epochs,
            seed=args.seed,
            device=args.device,
            checkpoint_dir=args.runs_dir,
            resume=args.resume,
            progress=not args.no_progress,
        )
    except (DataNotFoundError, CheckpointError, ValueError) as err:
        print(f"pyro-latent train: {err}", file=sys.stderr)
        return 2
    path = checkpoint_path(vae.config, args.seed, args.runs_dir)
    print(
        f"{args.preset} seed {args.seed}: {len(vae.history_)} epochs, train ELBO "
        f"{vae.history_[-1]:.2f}, test ELBO {evaluate_elbo(vae, test.images):.2f} nats/image; "
        f"checkpoint {path}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
