"""NUTS with a diagonal against a dense mass matrix on the study's posteriors: ESS per second.

``posterior_check`` adapts a diagonal mass matrix.  The posterior issue asks for whichever of
diagonal and dense the diagnostics favour.  For each preset this script takes the whitened first
ankle boot of the test set (the post's off-distribution image) and runs, in this one process and
one thread, ``--chains`` chains of ``--draws`` draws after as many warm-up steps, once with each
mass matrix.  It prints the seconds, the minimum bulk and tail ESS over the latent dimensions
(ArviZ), their minimum per second, and R-hat.  Needs the trained checkpoints under ``runs/``
(``make study``).  Each preset is run ``--repeats`` times with other chain seeds; the last lines
are machine-readable, the median ratio and each run's::

    nuts_mass_matrix preset=small dense_over_diag_ess_per_s=R (median of R R R)
"""

from __future__ import annotations

import argparse
import time

import arviz as az
import numpy as np
import pyro
import torch
from pyro.infer import MCMC, NUTS

from pyro_latent.concepts.shoes import whiten
from pyro_latent.vae import load_fashion_mnist, load_vae
from pyro_latent.vae.posterior import vae_log_joint


def run(preset: str, chains: int, draws: int, seed: int, repeat: int) -> dict:
    vae = load_vae(preset, seed=seed)
    test = load_fashion_mnist(train=False)
    x = whiten(test.images[test.labels == 9][0].reshape(1, -1))
    log_joint = vae_log_joint(vae, x)
    start = vae.encode(x)[0][0].detach()
    out = {}
    for name, dense in (("diag", False), ("dense", True)):
        g = torch.Generator().manual_seed(100 * seed + repeat)
        noise = torch.randn(chains, start.numel(), generator=g)
        samples, began = [], time.perf_counter()
        for c in range(chains):
            pyro.set_rng_seed(1000 * seed + 100 * repeat + c)
            kernel = NUTS(potential_fn=lambda p: -log_joint(p["z"]), full_mass=dense)
            init = {"z": start + 0.5 * noise[c]}
            mcmc = MCMC(kernel, draws, draws, initial_params=init, disable_progbar=True)
            mcmc.run()
            samples.append(mcmc.get_samples()["z"].double().numpy())
        seconds = time.perf_counter() - began
        data = az.from_dict(posterior={"z": np.stack(samples)})
        ess = min(float(az.ess(data, method=m)["z"].min()) for m in ("bulk", "tail"))
        out[name] = {"seconds": seconds, "ess_min": ess, "per_second": ess / seconds,
                     "r_hat_max": float(az.rhat(data)["z"].max())}  # fmt: skip
        r_hat = out[name]["r_hat_max"]
        print(
            f"  {preset:6s} run {repeat} {name:5s} {seconds:6.1f} s  min ESS {ess:6.0f}  "
            f"{ess / seconds:5.1f} per s  R-hat {r_hat:.3f}",
            flush=True,
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["small", "large"])
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--draws", type=int, default=250, help="draws and warm-up steps per chain")
    parser.add_argument("--seed", type=int, default=0, help="the VAE's seed and the chains'")
    parser.add_argument("--repeats", type=int, default=3, help="runs with other chain seeds")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for preset in args.presets:
        ratios = []
        for repeat in range(args.repeats):
            r = run(preset, args.chains, args.draws, args.seed, repeat)
            ratios.append(r["dense"]["per_second"] / r["diag"]["per_second"])
        listed = " ".join(f"{x:.2f}" for x in ratios)
        print(
            f"nuts_mass_matrix preset={preset} dense_over_diag_ess_per_s={np.median(ratios):.2f} "
            f"(median of {listed})"
        )


if __name__ == "__main__":
    main()
