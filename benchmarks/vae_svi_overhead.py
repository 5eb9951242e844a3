"""What Pyro costs over a hand-written PyTorch VAE loop: the study's loop, Pyro's floor, torch.

Four loops train the same network (same initial weights), on the same FashionMNIST images in the
same shuffled minibatches, for one epoch each, in this one process, alternating ``--repeats``
times after a short warm-up (median time per epoch):

* **study**: the step :func:`pyro_latent.vae.train_vae` runs, ``TraceMeanField_ELBO``'s
  ``differentiable_loss`` of the model and guide (Pyro programs), one ``torch.optim.Adam``
  (``foreach``) over the VAE's parameters, Pyro's validation off inside the loop;
* **pyro floor**: the same pattern written out here in a few lines (the minimal Pyro loop of
  the issue), to check that the study adds nothing of its own;
* **svi (before)**: the study's previous loop, ``SVI(model, guide, pyro.optim.Adam,
  Trace_ELBO())`` with validation on, for reference;
* **torch**: ``torch.optim.Adam`` on ``BCE(x, sigmoid(f(z))) + KL(N(μ, σ²) ‖ N(0, I))`` with
  ``z = μ + σ ε`` and the KL in closed form.

The last line is machine-readable::

    vae_svi_overhead study_over_torch=R floor_over_torch=R study_over_floor=R svi_over_torch=R

Measured on the 2-core CPU, 1 torch thread, all 60 000 images, batch 128, median of 3
(2026-11-30): see the README's performance table.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time

import pyro
import torch
from pyro.infer import SVI, Trace_ELBO, TraceMeanField_ELBO
from pyro.optim import Adam as PyroAdam
from torch.nn import functional as F

from pyro_latent.vae import PRESETS, VAE, get_preset, load_fashion_mnist
from pyro_latent.vae.training import _make_step, make_loader


def torch_loss(vae: VAE, x: torch.Tensor) -> torch.Tensor:
    """Negative ELBO of a minibatch with the analytic KL: BCE + ½ Σ (μ² + σ² - 1 - log σ²)."""
    loc, scale = vae.encoder(x)
    z = loc + scale * torch.randn_like(loc)
    rec = F.binary_cross_entropy_with_logits(vae.decoder(z), x, reduction="sum")
    kl = 0.5 * (loc.pow(2) + scale.pow(2) - 1.0 - 2.0 * scale.log()).sum()
    return rec + kl


def torch_epoch(vae: VAE, optimizer: torch.optim.Optimizer, loader) -> float:
    total = 0.0
    for (x,) in loader:
        optimizer.zero_grad(set_to_none=True)
        loss = torch_loss(vae, x)
        loss.backward()
        optimizer.step()
        total += loss.item()
    return total


def pyro_epoch(svi: SVI, loader) -> float:
    return sum(svi.step(x) for (x,) in loader)


def warm_up(run, loader, batches: int) -> None:
    for i, batch in enumerate(loader):
        if i >= batches:
            break
        run(batch)


def _adam(vae: VAE, config) -> torch.optim.Optimizer:
    return torch.optim.Adam(vae.parameters(), lr=config.lr, foreach=True)


def _quiet(run):
    with pyro.validation_enabled(False):
        return run()


def _positive(text: str) -> int:
    """argparse type: an int ≥ 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive int, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--preset",
        default="small",
        choices=sorted(PRESETS),
        help="network to time (default small)",
    )
    parser.add_argument(
        "--repeats", type=_positive, default=3, help="alternating epochs (default 3)"
    )
    parser.add_argument("--threads", type=_positive, default=1, help="torch threads (default 1)")
    parser.add_argument(
        "--limit", type=_positive, default=None, help="images per epoch (default all)"
    )
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    config = get_preset(args.preset)
    images = load_fashion_mnist(args.data_dir, train=True, limit=args.limit).images
    n = images.shape[0]
    pyro.set_rng_seed(0)
    vae = VAE(config).train()

    def loader():
        return make_loader(images, config.batch_size, torch.Generator().manual_seed(0))

    copies = {name: copy.deepcopy(vae) for name in ("study", "floor", "svi", "torch")}
    loss = TraceMeanField_ELBO().differentiable_loss
    study_step = _make_step(copies["study"], loss, _adam(copies["study"], config))
    floor, floor_adam = copies["floor"], _adam(copies["floor"], config)

    def floor_step(x):
        value = loss(floor.model_for_training, floor.guide_for_training, x)
        value.backward()
        floor_adam.step()
        floor_adam.zero_grad(set_to_none=True)
        return value.item()

    torch_adam = torch.optim.Adam(copies["torch"].parameters(), lr=config.lr)
    with pyro.get_param_store().scope():
        svi = SVI(
            copies["svi"].model, copies["svi"].guide, PyroAdam({"lr": config.lr}), Trace_ELBO()
        )
        epochs = {
            "study": lambda data: _quiet(lambda: sum(study_step(x) for (x,) in data)),
            "pyro floor": lambda data: _quiet(lambda: sum(floor_step(x) for (x,) in data)),
            "svi (before)": lambda data: pyro_epoch(svi, data),
            "torch": lambda data: torch_epoch(copies["torch"], torch_adam, data),
        }
        for run in epochs.values():
            warm_up(lambda b, run=run: run([b]), loader(), 20)
        times: dict[str, list[float]] = {name: [] for name in epochs}
        losses: dict[str, float] = {}
        for _ in range(args.repeats):
            for name, run in epochs.items():
                start = time.perf_counter()
                losses[name] = run(loader())
                times[name].append(time.perf_counter() - start)
    median = {name: statistics.median(t) for name, t in times.items()}
    print(
        f"preset {config.name} (hidden {list(config.hidden)}, latent {config.latent_dim}), "
        f"batch {config.batch_size}, {n} images/epoch, {args.threads} thread(s), "
        f"{args.repeats} alternating epoch(s) each"
    )
    steps = len(loader())
    for name, t in median.items():
        print(
            f"  {name:13s} {t:6.2f} s/epoch  {1e3 * t / steps:5.2f} ms/step  "
            f"{median[name] / median['torch']:5.2f}x torch  ELBO {-losses[name] / n:.1f}"
        )
    ratios = {
        "study_over_torch": median["study"] / median["torch"],
        "floor_over_torch": median["pyro floor"] / median["torch"],
        "study_over_floor": median["study"] / median["pyro floor"],
        "svi_over_torch": median["svi (before)"] / median["torch"],
    }
    print("vae_svi_overhead " + " ".join(f"{k}={v:.3f}" for k, v in ratios.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
