"""The study's VAE training on the CPU and on CUDA, side by side: seconds per epoch, and whether
the two devices train to the same ELBO.

Each preset is trained with :func:`pyro_latent.vae.train_vae` (the study's own loop, same seed,
same images, no checkpoints) for ``--epochs`` epochs on every device of ``--devices``, one after
the other in this one process, after a warm-up run on 1 000 images per device (so CUDA's
start-up and kernel caching are not timed).  Seconds per epoch are the run's wall time over its
epochs.
Float kernels differ between devices, so the ELBO histories are not bit-identical; the check is
that the final training ELBOs agree to within ``--elbo-tolerance`` nats per image.

A CUDA-trained checkpoint is also written and read back on the CPU (the path a user takes
when training on a GPU machine and analysing elsewhere): the reloaded VAE must reconstruct the
test images exactly as the CUDA one does, to float tolerance.

The last lines are machine-readable::

    vae_training_device preset=P device=D s_per_epoch=S final_elbo=E
    vae_training_device preset=P cpu_over_cuda=R elbo_gap=G

Usage: ``python benchmarks/vae_training_device.py --devices cpu cuda --epochs 3``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

import torch

from pyro_latent.vae import load_fashion_mnist, load_vae, train_vae
from pyro_latent.vae.data import DEBIAN_DIR


def _timed_training(preset: str, train, epochs: int, device: str, checkpoint_dir) -> dict:
    begin = time.perf_counter()
    vae = train_vae(
        preset, train, epochs, seed=0, device=device, checkpoint_dir=checkpoint_dir, progress=False
    )
    if device == "cuda":
        torch.cuda.synchronize()
    total = time.perf_counter() - begin
    return {"vae": vae, "total_s": total, "s_per_epoch": total / epochs, "history": vae.history_}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["small", "large"])
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"], choices=["cpu", "cuda"])
    parser.add_argument("--epochs", type=int, default=2, help="epochs per run (default 2)")
    parser.add_argument(
        "--train-limit", type=int, default=None, help="first N training images (default: all)"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--data-dir", default=None, help="FashionMNIST root (default data/)")
    parser.add_argument(
        "--debian-dir", default=str(DEBIAN_DIR), help="folder holding Debian's .gz archives"
    )
    parser.add_argument("--elbo-tolerance", type=float, default=2.0)
    args = parser.parse_args(argv)
    if "cuda" in args.devices and not torch.cuda.is_available():
        parser.error("--devices asks for cuda, but torch.cuda.is_available() is False")
    if args.threads:
        torch.set_num_threads(args.threads)
    train = load_fashion_mnist(args.data_dir, train=True, debian_dir=args.debian_dir)
    train = train.subset(args.train_limit)
    test = load_fashion_mnist(args.data_dir, train=False, debian_dir=args.debian_dir)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
        f"{torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU'}; "
        f"{len(train)} training images, {args.epochs} epochs"
    )
    for device in args.devices:  # warm-up, untimed
        train_vae(
            args.presets[0],
            train.subset(1000),
            1,
            device=device,
            checkpoint_dir=None,
            progress=False,
        )
    failures = []
    for preset in args.presets:
        runs = {}
        for device in args.devices:
            with tempfile.TemporaryDirectory() as runs_dir:
                runs[device] = _timed_training(preset, train, args.epochs, device, runs_dir)
                r = runs[device]
                print(
                    f"vae_training_device preset={preset} device={device} "
                    f"s_per_epoch={r['s_per_epoch']:.2f} final_elbo={r['history'][-1]:.3f}"
                )
                if device == "cuda":
                    failures += _check_cuda_checkpoint(preset, runs_dir, r["vae"], test.images)
        if len(runs) == 2:
            gap = abs(runs["cpu"]["history"][-1] - runs["cuda"]["history"][-1])
            ratio = runs["cpu"]["s_per_epoch"] / runs["cuda"]["s_per_epoch"]
            print(
                f"vae_training_device preset={preset} cpu_over_cuda={ratio:.2f} elbo_gap={gap:.3f}"
            )
            if gap > args.elbo_tolerance:
                failures.append(f"{preset}: CPU and CUDA final ELBOs differ by {gap:.3f} nats")
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 1 if failures else 0


def _check_cuda_checkpoint(preset: str, runs_dir: str, vae, images: torch.Tensor) -> list[str]:
    """Read the CUDA run's checkpoint back on the CPU; compare reconstructions."""
    on_cpu = load_vae(preset, seed=0, runs_dir=runs_dir, device="cpu")
    with torch.no_grad():
        expected = vae.reconstruct(images[:1000]).cpu()
        got = on_cpu.reconstruct(images[:1000])
    worst = float((expected - got).abs().max())
    print(f"vae_training_device preset={preset} cuda_checkpoint_on_cpu_max_abs_diff={worst:.2e}")
    return [] if worst < 1e-4 else [f"{preset}: CUDA checkpoint reloads differently on the CPU"]


if __name__ == "__main__":
    sys.exit(main())
