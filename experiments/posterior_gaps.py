"""The inference gaps of the study's VAEs, as Cremer, Li & Duvenaud (ICML 2018) measure them.

Loads the ``small`` and ``large`` VAEs that ``vae_latents`` trained (trained here if missing) and,
for each seed, takes test images of every class and the post's whitened and two-pixel-taller
shoes.  For each image it refines the guide into ``q*`` by SVI, estimates ``log p(x)`` by
importance sampling from the guide, from ``q*`` and from a Student-t of ``q*``, keeps the most
precise estimate whose Pareto k̂ ≤ 0.7, and splits ``log p(x) - L[q]`` into the approximation
gap ``log p(x) - L[q*]`` and the amortisation gap ``L[q*] - L[q]``
(:mod:`pyro_latent.vae.gaps`, tables in :mod:`pyro_latent.study.posterior_gaps`).
Profiles: *full*, 20 test images per class (200) and 20 shoes whitened and taller, 3 seeds,
1000 draws per proposal, 300 SVI steps per image; *quick*, 3 per class, 4 shoes, one seed, 200
draws, 100 steps.  The README gives the measured cost.  The prose is
``experiments/templates/posterior_gaps.md``.
"""

from __future__ import annotations

import numpy as np
import torch

from pyro_latent.concepts.shoes import taller_shoe, whiten
from pyro_latent.core.threads import in_workers, single_threaded
from pyro_latent.plotting.vae import plot_gaps
from pyro_latent.study import Context, cli, experiment
from pyro_latent.study import posterior_gaps as verdicts
from pyro_latent.study.profiles import study_vaes, training_set
from pyro_latent.vae import SHOE_CLASSES, load_fashion_mnist
from pyro_latent.vae.gaps import PARETO_K_THRESHOLD, PROPOSALS, STUDENT_DF, inference_gaps

PROFILES = {
    "quick": {"seeds": 1, "per_class": 3, "shoes": 4, "n_samples": 200, "local_steps": 100},
    "full": {"seeds": 3, "per_class": 20, "shoes": 20, "n_samples": 1000, "local_steps": 300},
}
PRESETS = ("small", "large")
THREADS = 1


def needed_vaes(ctx: Context) -> dict:
    """Every preset, every seed."""
    seeds = [ctx.seed + i for i in range(PROFILES["quick" if ctx.quick else "full"]["seeds"])]
    return {"fashion": [(n, s) for n in PRESETS for s in seeds]}


@experiment("posterior_gaps", title="Inference gaps: approximation and amortisation", order=45,
            vaes=needed_vaes)  # fmt: skip
def run(ctx: Context) -> dict:
    with single_threaded():  # identical numbers whatever the machine; light on 2 cores
        return _run(ctx, PROFILES["quick" if ctx.quick else "full"])


def _images(test, cfg) -> tuple[torch.Tensor, list[str], np.ndarray]:
    """The first ``per_class`` test images of each class, then the first ``shoes`` shoes
    whitened and whitened-and-taller: ``(images, groups, labels)``."""
    labels = test.labels.numpy()
    real = np.concatenate([np.flatnonzero(labels == c)[: cfg["per_class"]] for c in range(10)])
    shoes = np.flatnonzero(np.isin(labels, SHOE_CLASSES))[: cfg["shoes"]]
    white = whiten(test.images[shoes].reshape(len(shoes), -1))
    images = torch.cat([test.images[real].reshape(len(real), -1), white, taller_shoe(white)])
    groups = ["real"] * len(real) + ["whitened shoe"] * len(shoes) + ["taller shoe"] * len(shoes)
    return images, groups, np.concatenate([labels[real], labels[shoes], labels[shoes]])


def _run(ctx: Context, cfg: dict) -> dict:
    profile = "quick" if ctx.quick else "full"
    train = training_set(profile, ctx.data_dir, ctx.download)
    test = load_fashion_mnist(ctx.data_dir, train=False, download=ctx.download)
    images, groups, labels = _images(test, cfg)
    seeds = [ctx.seed + i for i in range(cfg["seeds"])]
    runs = needed_vaes(ctx)["fashion"]
    vaes = study_vaes(runs, train, profile, ctx.runs_dir, **ctx.training_options())
    ctx.lap("set-up")
    opts = {"n_samples": cfg["n_samples"], "local_steps": cfg["local_steps"]}
    jobs = [(vaes[f"{n}-{s}"], images, {**opts, "seed": s}) for n, s in runs]
    rows = []  # the VAEs in parallel, one thread each: the same numbers as one after another
    for (name, seed), gaps in zip(runs, in_workers(inference_gaps, jobs, ctx.jobs), strict=True):
        rows += verdicts.gap_rows(name, seed, gaps, groups, labels)
    ctx.lap(f"gaps of {len(runs)} VAEs × {len(images)} images")
    table = verdicts.gap_table(rows, test.classes)
    ctx.draw(plot_gaps, "posterior_gaps.png", table)
    return {
        "profile": {**cfg, "seeds": seeds, "name": profile, "threads": THREADS},
        "proposals": list(PROPOSALS), "student_df": STUDENT_DF,
        "pareto_k_threshold": PARETO_K_THRESHOLD, "n_real": groups.count("real"),
        "table": table, "verdict": verdicts.gap_verdict(table),
        "sources": verdicts.source_counts(rows), "seconds": ctx.sections,
    }  # fmt: skip


if __name__ == "__main__":
    cli.run_script("posterior_gaps")
