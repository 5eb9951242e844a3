"""Shoe height and brightness in the VAEs: the post's directions, measured on many shoes and seeds.

Loads the ``small`` and ``large`` VAEs that ``vae_latents`` trained (the same checkpoints under
``runs/``; they are trained here if missing), builds every candidate height direction at each of
many test shoes (:mod:`pyro_latent.concepts.shoe_directions`), traverses it and measures height and
brightness of the decoded images (:mod:`pyro_latent.concepts.traversal`), and compares the encoder
with the true posterior by NUTS and importance sampling (:mod:`pyro_latent.vae.posterior`).
Profiles: *full*, 50 shoes × seeds 0–2 × both VAEs, NUTS with 4 chains of 500 + 500 steps on the
whitened shoe, the taller one and two real shoes (where 250 + 250 fell short on most), doubled
until they converge or reach 2000 draws per chain (chains in parallel on every core, the
potential traced by torch.jit); *quick*, 5 shoes, one seed, 4 chains of 25 + 25 steps, never
doubled (about 25 s).  The README gives the measured cost.
The prose is ``experiments/templates/shoe_concepts.md``.
"""

from __future__ import annotations

import os

import torch

from pyro_latent.concepts import shoe_directions as sd
from pyro_latent.concepts import traversal as tr
from pyro_latent.concepts.directions import (
    angle_degrees,
    two_image_direction,
    unit,
)
from pyro_latent.concepts.shoes import (
    measure_shoes,
    taller_shoe,
    whiten,
)
from pyro_latent.core.threads import single_threaded
from pyro_latent.plotting.shoes import plot_purity, plot_traversals
from pyro_latent.study import Context, cli, experiment
from pyro_latent.study import shoe_concepts as verdicts
from pyro_latent.study.profiles import study_vaes, training_set
from pyro_latent.vae import SHOE_CLASSES, load_fashion_mnist
from pyro_latent.vae import posterior as post

PROFILES = {
    "quick": {"seeds": 1, "shoes": 5, "cav_shoes": 500, "nuts_real": 0, "is_samples": 1000,
              "nuts": {"n_samples": 25, "warmup_steps": 25, "n_chains": 4}, "nuts_max": None},
    "full": {"seeds": 3, "shoes": 50, "cav_shoes": 3000, "nuts_real": 2, "is_samples": 1000,
             "nuts": {"n_samples": 500, "warmup_steps": 500, "n_chains": 4}, "nuts_max": 2000},
}  # fmt: skip
PRESETS = ("small", "large")
ALPHAS = [-3.0, -2.25, -1.5, -0.75, 0.0, 0.75, 1.5, 2.25, 3.0]
SHOWN = ("two-image h", "two-image b", "gs euclidean", "gs pullback", "commenter h-αb", "jacobian")
THREADS = 1


def needed_vaes(ctx: Context) -> dict:
    """Both presets, every seed."""
    seeds = [ctx.seed + i for i in range(PROFILES["quick" if ctx.quick else "full"]["seeds"])]
    return {"fashion": [(n, s) for n in PRESETS for s in seeds]}


@experiment("shoe_concepts", title="Shoe height and brightness in the VAEs", order=40,
            vaes=needed_vaes)  # fmt: skip
def run(ctx: Context) -> dict:
    with single_threaded():  # identical numbers whatever the machine; light on 2 cores
        return _run(ctx, PROFILES["quick" if ctx.quick else "full"])


def _run(ctx: Context, cfg: dict) -> dict:
    profile = "quick" if ctx.quick else "full"
    train = training_set(profile, ctx.data_dir, ctx.download)
    test = load_fashion_mnist(ctx.data_dir, train=False, download=ctx.download)
    shoes = test.select(SHOE_CLASSES)
    post_shoe = shoes.images[0]  # the first shoe of the test set stands in for the post's
    post_index = int(torch.isin(test.labels, torch.tensor(SHOE_CLASSES)).nonzero()[0])
    picks = torch.linspace(0, len(shoes) - 1, cfg["shoes"]).round().long()
    spreads = tr.meter_spreads(shoes.images)
    cav_images = shoes.images[: cfg["cav_shoes"]]
    measured = measure_shoes(cav_images, shoe_only=True)
    meters = {k: measured[k].tolist() for k in ("height", "brightness")}
    seeds = [ctx.seed + i for i in range(cfg["seeds"])]
    opts = ctx.training_options()
    vaes = study_vaes(needed_vaes(ctx)["fashion"], train, profile, ctx.runs_dir, **opts)
    records, diagnostics, skipped, cav_fit, nuts, vectors = [], [], [], {}, {}, {}
    for name in PRESETS:
        for seed in seeds:
            vae = vaes[f"{name}-{seed}"]
            encode_mean = _encoder(vae)
            Z = encode_mean(cav_images).double().numpy()
            cavs, cav_fit[f"{name}-{seed}"] = verdicts.fit_cavs(Z, meters)  # filters, patterns
            diags, recs, skips = verdicts.measure_many_shoes(
                vae, shoes.images, picks.tolist(), cavs, ALPHAS, spreads,
                {"vae": name, "seed": seed},
            )  # fmt: skip
            diagnostics, records, skipped = diagnostics + diags, records + recs, skipped + skips
            if seed == ctx.seed:
                vectors[name] = _draw_traversals(
                    ctx, name, vae, encode_mean, post_shoe, shoes, cavs
                )
                nuts[name] = _posterior_checks(
                    ctx, name, vae, encode_mean, post_shoe, shoes, cfg, spreads
                )
    table = verdicts.direction_table(records)
    ctx.draw(plot_purity, "shoe_purity.png", table)
    h_rows = {row["vae"]: row for row in table if row["direction"] == "two-image h"}
    conds = [d["condition_hb"] for d in diagnostics]
    return {
        "profile": {**cfg, "seeds": seeds, "alphas": ALPHAS, "threads": THREADS},
        "post_shoe_index": post_index,
        "shoe_classes": [test.classes[c] for c in SHOE_CLASSES],
        "n_shoes": len(picks), "skipped": skipped, "n_test_shoes": len(shoes), "spreads": spreads,
        "cav_fit": cav_fit, "cav_reading": verdicts.cav_reading(table, cav_fit), "table": table,
        "brightness_claim": {n: verdicts.brightness_claim_verdict(h_rows[n], spreads)
                             for n in PRESETS},
        "collinearity": verdicts.collinearity_verdict(conds, [d["angle_hb"] for d in diagnostics]),
        "gram_schmidt": verdicts.gram_schmidt_summary(diagnostics, table),
        "jacobian_decay": verdicts.decay_table(records, ("jacobian", "jacobian path")),
        "commenter": verdicts.commenter_summary(diagnostics),
        "purest": verdicts.purest_direction(table),
        "posterior": nuts, "post_shoe_vectors": vectors,
        "convergence": post.CONVERGENCE, "pareto_k_threshold": post.PARETO_K_THRESHOLD,
    }  # fmt: skip


def _encoder(vae):
    def encode_mean(images):
        with torch.no_grad():
            return vae.encode(images.reshape(-1, 784))[0]

    return encode_mean


def _draw_traversals(ctx, name, vae, encode_mean, image, shoes, cavs) -> dict:
    """The post's figure for one VAE: the whitened shoe along each direction, then real shoes of
    each class along the post's height vector."""
    z0, dirs, diag = sd.directions_at(vae, image, cavs)
    rows = [{"label": d, "images": tr.traverse(vae.decode, z0, dirs[d].to(z0.dtype), ALPHAS)}
            for d in SHOWN if d in dirs]  # fmt: skip
    path = sd.jacobian_path_images(vae.decode, z0, ALPHAS)
    if path is not None:
        rows.append({"label": "jacobian path", "images": path})
    h = dirs["two-image h"].to(z0.dtype)
    for c in SHOE_CLASSES:
        first = shoes.images[shoes.labels == c][0]
        z = encode_mean(first)[0]
        label = f"{shoes.classes[c]} along h"
        rows.append({"label": label, "images": tr.traverse(vae.decode, z, h, ALPHAS)})
    title = f"{name}: decoded z₀ + α·d from the whitened shoe, then real shoes along h"
    ctx.draw(plot_traversals, f"shoe_traversals_{name}.png", rows, ALPHAS, title)
    return {"angle_hb": diag["angle_hb"], "condition_hb": diag["condition_hb"],
            "commenter_alpha": diag["commenter"]["alpha"]}  # fmt: skip


def _posterior_checks(ctx, name, vae, encode_mean, image, shoes, cfg, spreads) -> dict:
    """NUTS and importance sampling on the whitened shoe, the taller one and real shoes."""
    white = whiten(image.reshape(1, -1))
    images = {"whitened": white, "taller": taller_shoe(white)}
    images |= {f"real {i}": shoes.images[1 + i] for i in range(cfg["nuts_real"])}
    out, n_jobs = {}, ctx.jobs or os.cpu_count() or 1
    opts = {"nuts": cfg["nuts"], "max_samples": cfg["nuts_max"], "seed": ctx.seed}
    opts |= {"is_samples": cfg["is_samples"], "n_jobs": n_jobs}
    for label, x in images.items():
        out[label], data = post.posterior_check(vae, x, **opts)
        if label == "whitened":
            data.to_netcdf(ctx.artifact(f"shoe_posterior_{name}.nc"))
    means = {k: torch.tensor(out[k]["posterior_mean"]) for k in ("whitened", "taller")}
    vectors = {"encoder": two_image_direction(encode_mean, images["whitened"], images["taller"]),
               "posterior": unit(means["taller"] - means["whitened"])}  # fmt: skip
    z0 = encode_mean(white)[0]  # both traversed from the post's start, the encoded whitened shoe
    again = {k: tr.traversal_record(vae.decode, z0, v.to(z0.dtype), ALPHAS, spreads)
             for k, v in vectors.items()}  # fmt: skip
    return {
        "images": out,
        "converged": out["whitened"]["converged"] and out["taller"]["converged"],
        "height_vector_angle": angle_degrees(vectors["encoder"], vectors["posterior"]),
        "height_vector_again": verdicts.compare_records(again["encoder"], again["posterior"]),
    }


if __name__ == "__main__":
    cli.run_script("shoe_concepts")
