r"""Cremer, Li & Duvenaud's inference gaps, for many images at once.

For each image ``x`` of a :class:`~pyro_latent.core.latent_model.LatentModel` with an amortised
guide ``q(z | x)`` (Cremer, Li & Duvenaud, "Inference Suboptimality in Variational Autoencoders",
ICML 2018):

.. math::

    \log p(x) - L[q] = \underbrace{\log p(x) - L[q^*]}_{\text{approximation gap}}
                     + \underbrace{L[q^*] - L[q]}_{\text{amortisation gap}},

with ``q*`` the guide refined for that image (:mod:`pyro_latent.vae.local_gaussian`).
:func:`batched_importance` estimates ``log p(x)`` by importance sampling for every image of a
batch, with the Pareto ``k̂`` of each image's weights (PSIS, ArviZ's ``psislw``);
:func:`inference_gaps` runs it with three proposals (the guide, ``q*``, and a Student-t with
``q*``'s location and scale), keeps for each image the most precise reliable estimate
(``k̂ ≤ 0.7``), and returns the two gaps.  An image without a reliable estimate has no
approximation gap (``NaN``) and is flagged, never averaged in silently.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from pyro_latent.core.checks import check_nonnegative_int, check_positive_int
from pyro_latent.core.latent_model import check_latent_model, encode, require_posterior
from pyro_latent.vae.local_gaussian import gaussian_elbo, model_log_joint, optimise_gaussians
from pyro_latent.vae.posterior import (
    PARETO_K_THRESHOLD,
    PROPOSALS,
    STUDENT_DF,
    evidence_proposals,
    pareto_k,
)

__all__ = ["PARETO_K_THRESHOLD", "PROPOSALS", "STUDENT_DF", "batched_importance",
           "inference_gaps"]  # fmt: skip


def batched_importance(
    log_joint: Callable[[torch.Tensor], torch.Tensor],
    proposal: torch.distributions.Distribution,
    n_samples: int,
    *,
    seed: int = 0,
    chunk: int = 100,
) -> dict[str, np.ndarray]:
    """Importance-sampled ``log p(x_n) = log (1/K) Σ_k p(x_n, z_k) / q_n(z_k)`` for every image.

    ``proposal`` has batch shape ``[N]`` and event shape ``[D]`` (one proposal per image);
    ``log_joint`` maps ``z [S, N, D]`` to ``[S, N]``.  Draws come ``chunk`` at a time from a
    private generator seeded by ``seed``.  Returns arrays ``[N]``: ``log_evidence``,
    ``log_evidence_se`` (``√((K/ESS - 1)/K)``), ``elbo`` (the mean log weight), ``ess``,
    ``pareto_k`` and ``reliable`` (``k̂ ≤ 0.7``)."""
    if len(proposal.batch_shape) != 1 or len(proposal.event_shape) != 1:
        raise ValueError(
            "proposal must have batch shape [N] (one per image) and event shape [D], got "
            f"{tuple(proposal.batch_shape)} and {tuple(proposal.event_shape)}"
        )
    K = check_positive_int(n_samples, "n_samples")
    chunk = check_positive_int(chunk, "chunk")
    seed = check_nonnegative_int(seed, "seed")
    pieces = []
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        for start in range(0, K, chunk):
            z = proposal.sample((min(chunk, K - start),))
            joint = log_joint(z)
            if tuple(joint.shape) != tuple(z.shape[:-1]):
                raise ValueError(
                    f"log_joint must map draws [S, N, D] to [S, N], got {tuple(joint.shape)}"
                )
            pieces.append((joint - proposal.log_prob(z)).double())
    log_w = torch.cat(pieces)  # [K, N]
    if not bool(torch.isfinite(log_w).all()):
        bad = torch.nonzero(~torch.isfinite(log_w).all(0)).flatten().tolist()
        raise ValueError(f"a log weight of image(s) {bad[:5]} is not finite")
    ess = 1 / torch.softmax(log_w, 0).square().sum(0)
    k_hat = pareto_k(log_w.T.numpy())
    return {
        "log_evidence": (torch.logsumexp(log_w, 0) - math.log(K)).numpy(),
        "log_evidence_se": ((K / ess - 1).clamp(min=0) / K).sqrt().numpy(),
        "elbo": log_w.mean(0).numpy(),
        "ess": ess.numpy(),
        "pareto_k": k_hat,
        "reliable": k_hat <= PARETO_K_THRESHOLD,
    }


def inference_gaps(
    model,
    images: torch.Tensor,
    *,
    n_samples: int = 1000,
    local_steps: int = 300,
    n_particles: int = 4,
    elbo_particles: int = 1000,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """The inference gaps of every image ``[N, *obs]`` under ``model`` (module docstring).

    Returns arrays ``[N]``: ``guide_elbo`` (``L[q]``) and ``local_elbo`` (``L[q*]``), each from
    ``elbo_particles`` fresh draws, with their standard errors (``*_elbo_se``); per proposal of
    :data:`PROPOSALS` its ``log_evidence``, ``log_evidence_se`` and ``pareto_k`` (keys
    ``"<proposal>_<field>"``); ``log_evidence``, the most precise reliable estimate (``NaN``
    where none is reliable), ``log_evidence_from`` (the proposal's index in :data:`PROPOSALS`,
    ``-1`` where none), ``reliable``, ``approximation_gap`` (``log p(x) - L[q*]``, ``NaN`` where
    unreliable) and ``amortisation_gap`` (``L[q*] - L[q]``)."""
    check_latent_model(model)
    with torch.no_grad():
        loc, scale = encode(model, images)
    scale = require_posterior(scale, purpose="the inference gaps (the amortised guide)")
    log_joint = model_log_joint(model, images)
    local = optimise_gaussians(
        log_joint, loc, scale, steps=local_steps, n_particles=n_particles, seed=seed
    )
    out = {}
    for name, q in evidence_proposals(loc, scale, local.loc, local.scale).items():
        # q* was fitted with the draws of ``seed`` and its ELBO below reads ``seed + 1``: its
        # importance draws take a third stream, so that neither reuses them
        draws = seed if name == "guide" else seed + 2
        estimate = batched_importance(log_joint, q, n_samples, seed=draws)
        for field in ("log_evidence", "log_evidence_se", "pareto_k"):
            out[f"{name}_{field}"] = estimate[field]
    # fresh draws (another seed than the optimiser's): an ELBO read off the draws q* was fitted
    # to is biased upwards
    for name, (m, s) in {"guide": (loc, scale), "local": (local.loc, local.scale)}.items():
        elbo, se = gaussian_elbo(log_joint, m, s, n_particles=elbo_particles, seed=seed + 1)
        out[f"{name}_elbo"], out[f"{name}_elbo_se"] = elbo.numpy(), se.numpy()
    se = np.stack([out[f"{p}_log_evidence_se"] for p in PROPOSALS])
    ok = np.stack([out[f"{p}_pareto_k"] <= PARETO_K_THRESHOLD for p in PROPOSALS])
    se = np.where(ok, se, np.inf)
    best = se.argmin(0)
    reliable = ok.any(0)
    values = np.stack([out[f"{p}_log_evidence"] for p in PROPOSALS])
    out["log_evidence"] = np.where(reliable, values[best, np.arange(len(best))], np.nan)
    out["log_evidence_from"] = np.where(reliable, best, -1)
    out["reliable"] = reliable
    out["approximation_gap"] = out["log_evidence"] - out["local_elbo"]
    out["amortisation_gap"] = out["local_elbo"] - out["guide_elbo"]
    return out
