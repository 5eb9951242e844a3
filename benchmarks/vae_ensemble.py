"""Batched ensembles against one model at a time: seconds per model-epoch, side by side.

For each preset, in this one process and with the same images, the script times

* **ensemble R=3** and **ensemble R=6**: :func:`pyro_latent.vae.train_ensemble` of seeds
  ``0..R-1`` (one batched Pyro program, one Adam), divided by R;
* **study loop**: :func:`pyro_latent.vae.train_vae` of the same seeds one after another
  (the single-run study loop), divided by R;
* **torch**: the hand-written PyTorch loop of ``benchmarks/vae_svi_overhead.py`` (analytic KL,
  ``binary_cross_entropy_with_logits``), one model.

Every timing is a whole training call of ``--epochs`` epochs without checkpoints, set-up
included, median of ``--repeats``.  The issue's targets, per model-epoch against plain torch:
ensemble ≤ 0.6 on ``small`` and ≤ 0.9 on ``large``.  The last lines are machine-readable::

    vae_ensemble preset=small r3_over_torch=R r6_over_torch=R study_over_torch=R
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import pyro
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vae_svi_overhead import _positive, torch_epoch  # noqa: E402

from pyro_latent.vae import (  # noqa: E402
    PRESETS,
    VAE,
    get_preset,
    load_fashion_mnist,
    train_ensemble,
    train_vae,
)
from pyro_latent.vae.training import make_loader, resolve_device  # noqa: E402


def _torch_training(config, images, epochs: int) -> None:
    pyro.set_rng_seed(0)
    vae = VAE(config).to(images.device).train()
    optimizer = torch.optim.Adam(vae.parameters(), lr=config.lr)
    loader = make_loader(images, config.batch_size, torch.Generator().manual_seed(0))
    for _ in range(epochs):
        torch_epoch(vae, optimizer, loader)


def _median_seconds(run, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _per_model_seconds(config, images, device, args) -> dict[str, float]:
    """Median seconds per model of each way of training ``config`` (see the module docstring)."""
    common = {"checkpoint_dir": None, "progress": False, "device": device}
    per_model = {
        "torch": _median_seconds(
            lambda: _torch_training(config, images.to(device), args.epochs), args.repeats
        ),
    }
    for r in (3, 6):
        seeds = list(range(r))
        per_model[f"ensemble R={r}"] = (
            _median_seconds(
                lambda s=seeds: train_ensemble(config, images, args.epochs, s, **common),
                args.repeats,
            )
            / r
        )
    per_model["study loop ×3"] = (
        _median_seconds(
            lambda: [train_vae(config, images, args.epochs, s, **common) for s in range(3)],
            args.repeats,
        )
        / 3
    )
    return per_model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["small", "large"], choices=sorted(PRESETS))
    parser.add_argument("--epochs", type=_positive, default=1, help="epochs per call (default 1)")
    parser.add_argument("--repeats", type=_positive, default=1, help="timings (median; default 1)")
    parser.add_argument("--threads", type=_positive, default=1, help="torch threads (default 1)")
    parser.add_argument(
        "--limit", type=_positive, default=12000, help="training images (default 12000)"
    )
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    images = load_fashion_mnist(args.data_dir, train=True, limit=args.limit).images
    print(
        f"{images.shape[0]} images, {args.epochs} epoch(s) per call, {args.threads} thread(s), "
        f"{device}, median of {args.repeats}; seconds per model-epoch"
    )
    lines = []
    for preset in args.presets:
        per_model = _per_model_seconds(get_preset(preset), images, device, args)
        torch_seconds = per_model["torch"]
        print(f"\n{preset}")
        for name, seconds in per_model.items():
            per_epoch = seconds / args.epochs
            print(f"  {name:<16} {per_epoch:8.3f} s   {seconds / torch_seconds:5.2f}× torch")
        lines.append(
            f"vae_ensemble preset={preset} "
            f"r3_over_torch={per_model['ensemble R=3'] / torch_seconds:.3f} "
            f"r6_over_torch={per_model['ensemble R=6'] / torch_seconds:.3f} "
            f"study_over_torch={per_model['study loop ×3'] / torch_seconds:.3f}"
        )
    print()
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
