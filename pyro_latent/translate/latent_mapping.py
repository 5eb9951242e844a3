r"""Translating between two latent models' spaces by posterior inference through the images.

Everything here takes any two :class:`~pyro_latent.core.latent_model.LatentModel`\ s: the
formula needs only ``encode`` and ``decode``; drawing images needs model 1's
``observation_model`` (or ``likelihood="mean"``); the guide's draws need model 2's posterior
``scale``, and the importance-resampled posterior its ``log_likelihood`` (and ``log_prior``, when
its prior is not ``N(0, I)``).  A model without what a step needs gets a :class:`TypeError`.

The toy half translates ``l₁ → l₂`` by conditioning on the observations both models explain.
Two VAEs trained on the same images share their observations ``x``, so the same construction
carries over to neural models, with VAE 1's decoder and VAE 2's encoder in the roles of the
toy's ``g₁⁻¹`` and ``g₂``.

**The invertible-case formula** (:func:`formula_map`), the toy's ``c ∘ g₁ ∘ g₂⁻¹`` read the
other way: decode ``z₁`` to its mean image, encode that with VAE 2's guide mean,

.. math::  z_2 = μ_2\bigl(\mathbb E_1[x \mid z_1]\bigr).

**The posterior mapping** (:func:`posterior_mapping`) keeps the uncertainty both steps carry,

.. math::  p(z_2 \mid z_1) = \int p_2(z_2 \mid x)\, p_1(x \mid z_1)\, dx,

by Monte Carlo, written as the Pyro program :func:`mapping_program`: draw images
``x_s ~ p₁(x | z₁)`` from VAE 1's likelihood (Bernoulli pixels), then ``z₂`` given each image,

* from VAE 2's amortised guide ``q₂(z | x_s)``; and
* from VAE 2's *true* posterior ``p₂(z | x_s) ∝ N(z; 0, I) p₂(x_s | z)`` by sampling-importance-
  resampling with the guide as proposal: ``z_k ~ q₂(z | x_s)``, ``k = 1..K``, weights
  ``w_k ∝ p₂(x_s, z_k) / q₂(z_k | x_s)``, and one ``z_k`` kept with probability ``w_k``.  The
  weights' effective sample size ``(Σ w)² / Σ w²`` (out of ``K``) says how far the guide is from
  the posterior on VAE 1's images, which VAE 2 never saw.

**The deterministic limit.**  With ``likelihood="mean"`` the image is VAE 1's mean image (a point
mass, ``pyro.distributions.Delta``) and ``z₂ ~ q₂(z | E₁[x | z₁])``, whose mean is exactly the
formula's point; the tests check that the Monte-Carlo mean converges to it.  With ``draw="mean"``
as well, every draw *is* the formula's point.

Draws use a private, seeded RNG (``torch.random.fork_rng``), so the global RNG is left alone and
the same seed and ``batch_points`` give the same draws (the points are drawn batch by batch, so
another batch size draws other, equally valid, numbers).

**Inactive dimensions.**  Where VAE 2's code is inactive, its posterior is its prior whatever
the image, so draws of ``z₂`` spread like ``N(0, 1)`` there however certain the rest of the code
is.  :meth:`PosteriorMapping.offsets` and :meth:`PosteriorMapping.summary` therefore take a mask
of the dimensions to measure (for instance VAE 2's active units), and the mapping keeps, beside
the draws, VAE 2's encoder mean of every drawn image (``means``): an identifier fitted on encoder
means should be averaged over those, not over draws it never saw in training.

:meth:`PosteriorMapping.to_inference_data` returns ArviZ ``InferenceData`` (one chain;
dimensions ``draw``, ``point``, ``latent``).
"""

from __future__ import annotations

from dataclasses import dataclass

import arviz as az
import numpy as np
import pyro
import pyro.distributions as dist
import torch
from pyro import poutine

from pyro_latent.core.checks import check_nonnegative_int, check_positive_int
from pyro_latent.core.latent_model import (
    check_codes,
    check_latent_model,
    encode,
    log_prior,
    observation_model,
    require_likelihood,
    require_posterior,
)

__all__ = [
    "LIKELIHOODS",
    "PosteriorMapping",
    "formula_map",
    "mapping_program",
    "posterior_mapping",
    "transferred_expectation",
]

LIKELIHOODS = ("sample", "mean")
DRAWS = ("guide", "mean")


def _check_pair(src, dst) -> None:
    check_latent_model(src, "src")
    check_latent_model(dst, "dst")


@torch.no_grad()
def formula_map(src, dst, z1: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    r"""``μ₂(decode₁(z₁))`` for codes ``z1 [N, D₁]`` of ``src``: ``[N, D₂]`` on the CPU.  Any two
    :class:`~pyro_latent.core.latent_model.LatentModel`\ s (deterministic ones too)."""
    _check_pair(src, dst)
    z1 = check_codes(z1, src, "z1")
    batch_size = check_positive_int(batch_size, "batch_size")
    out = [
        encode(dst, src.decode(z1[i : i + batch_size]))[0].cpu()
        for i in range(0, z1.shape[0], batch_size)
    ]
    return torch.cat(out) if out else torch.empty(0, dst.latent_dim)


def _encode_draws(dst, x: torch.Tensor, batch: torch.Size):
    """``dst``'s ``(loc, scale)`` of observations ``x [*batch, *obs]``, each ``[*batch, D₂]``:
    encoders take one batch dimension, so the draw and point dimensions are folded into it."""
    loc, scale = encode(dst, x.reshape(-1, *x.shape[len(batch) :]))
    scale = require_posterior(scale, "dst", purpose="the posterior mapping")
    return loc.reshape(*batch, -1), scale.reshape(*batch, -1)


def mapping_program(src, dst, z1: torch.Tensor, n_draws: int, likelihood: str = "sample"):
    """The Pyro program of ``p(z₂ | z₁)``: plates ``draws`` (``S``, dim -2) and ``points``
    (``N``, dim -1); sites ``x [S, N, *obs]`` (model 1's ``p(x | z₁)``, or its mean as a
    ``Delta``) and ``z2 [S, N, D₂]`` (model 2's ``q(z | x)``).  Returns ``z2``."""
    batch = torch.Size((n_draws, z1.shape[0]))
    with pyro.plate("draws", n_draws, dim=-2), pyro.plate("points", z1.shape[0], dim=-1):
        if likelihood == "mean":
            mean = src.decode(z1)
            mean = mean.expand(batch + mean.shape[1:])
            x = pyro.sample("x", dist.Delta(mean, event_dim=mean.ndim - 2))
        else:
            x = pyro.sample("x", observation_model(src, z1).expand(batch))
        loc, scale = _encode_draws(dst, x, batch)
        return pyro.sample("z2", dist.Normal(loc, scale).to_event(1))


@dataclass
class PosteriorMapping:
    """Draws of ``p(z₂ | z₁)`` for ``N`` points ``z1``: ``guide [S, N, D₂]`` (``z₂ ~ q₂(z | x)``),
    ``posterior [S, N, D₂]`` (importance-resampled from ``p₂(z | x)``, or ``None``), VAE 2's
    encoder means of the drawn images ``means [S, N, D₂]`` (``μ₂(x_s)``), the weights'
    effective sample size ``ess [S, N]`` (out of ``n_proposals``) and the formula's point
    ``formula [N, D₂]``."""

    z1: torch.Tensor
    formula: torch.Tensor
    guide: torch.Tensor
    means: torch.Tensor
    posterior: torch.Tensor | None
    ess: torch.Tensor | None
    n_proposals: int
    likelihood: str

    def draws(self, which: str = "posterior") -> torch.Tensor:
        """The ``[S, N, D₂]`` draws of ``which``: ``"guide"``, ``"posterior"`` or ``"means"``
        (VAE 2's encoder mean of each drawn image)."""
        if which == "guide":
            return self.guide
        if which == "means":
            return self.means
        if which != "posterior":
            raise ValueError(f"which must be 'guide', 'posterior' or 'means'; got {which!r}")
        if self.posterior is None:
            raise ValueError("this mapping was drawn with n_proposals=0: no posterior draws")
        return self.posterior

    def offsets(self, which: str = "posterior", dims=None) -> dict:
        """Per point: the formula's distance from the Monte-Carlo mean, in latent units and in
        standard errors of that mean (``‖f - m̄‖ / sqrt(Σ_d s_d² / S)``), and the spread of
        ``z₂`` (root mean per-dimension variance of the draws), over the dimensions ``dims``
        (a boolean mask ``[D₂]``; default all)."""
        draws, formula = self.draws(which).double(), self.formula.double()
        if dims is not None:
            dims = torch.as_tensor(np.asarray(dims, dtype=bool))
            if dims.shape != (draws.shape[-1],) or not bool(dims.any()):
                raise ValueError(
                    f"dims must be a boolean mask of length {draws.shape[-1]} with at least one "
                    f"True; got shape {tuple(dims.shape)}"
                )
            draws, formula = draws[..., dims], formula[..., dims]
        S = draws.shape[0]
        mean, var = draws.mean(0), draws.var(0, unbiased=S > 1)
        distance = (formula - mean).norm(dim=-1)
        standard_error = (var.sum(-1) / S).sqrt()
        return {
            "distance": distance,
            "z_score": distance / standard_error.clamp_min(1e-12),
            "spread": var.mean(-1).sqrt(),
        }

    def summary(self, dims=None) -> dict:
        """Medians over points of :meth:`offsets` (over ``dims``) for every kind of draw, and the
        ESS statistics."""
        out = {"points": int(self.z1.shape[0]), "draws": int(self.guide.shape[0])}
        if dims is not None:
            out["dims"] = int(np.asarray(dims, dtype=bool).sum())
        for which in ("guide", "posterior", "means"):
            if which == "posterior" and self.posterior is None:
                continue
            offsets = self.offsets(which, dims)
            out[which] = {k: float(v.median()) for k, v in offsets.items()}
        if self.ess is not None:
            out["ess"] = {
                "n_proposals": self.n_proposals,
                "median": float(self.ess.median()),
                "min": float(self.ess.min()),
                "fraction_below_10": float((self.ess < 10).double().mean()),
            }
        return out

    def to_inference_data(self):
        """ArviZ ``InferenceData``: posterior ``z2_guide`` and ``z2_posterior`` (chain 1, draws,
        points, latent), sample stats ``ess``, constant data ``z1`` and ``formula``."""
        posterior = {
            "z2_guide": self.guide.numpy()[None],
            "z2_image_means": self.means.numpy()[None],
        }
        if self.posterior is not None:
            posterior["z2_posterior"] = self.posterior.numpy()[None]
        dims = {name: ["point", "latent"] for name in posterior}
        stats = {}
        if self.ess is not None:
            stats["ess"] = self.ess.numpy()[None]
            dims["ess"] = ["point"]
        return az.from_dict(
            posterior=posterior,
            sample_stats=stats or None,
            constant_data={"z1": self.z1.numpy(), "formula": self.formula.numpy()},
            dims={**dims, "z1": ["point", "latent_src"], "formula": ["point", "latent"]},
        )


def _importance_resample(dst, x: torch.Tensor, n_proposals: int):
    """One draw from ``p₂(z | x)`` per observation ``x [B, *obs]`` by sampling-importance-
    resampling with ``q₂(z | x)`` as proposal; returns the draws ``[B, D₂]`` and the ESS
    ``[B]``."""
    loc, scale = encode(dst, x)
    scale = require_posterior(scale, "dst", purpose="the importance-resampled posterior")
    guide = dist.Normal(loc, scale).to_event(1)
    z = guide.sample((n_proposals,))  # [K, B, D₂]
    log_w = log_prior(dst, z) + dst.log_likelihood(x, z) - guide.log_prob(z)
    log_w = log_w.double()
    if not bool(torch.isfinite(log_w).all()):
        raise FloatingPointError("an importance weight is not finite")
    weights = torch.softmax(log_w, 0)  # [K, B]
    ess = 1.0 / weights.square().sum(0)
    pick = torch.multinomial(weights.T, 1).squeeze(-1)  # [B]
    return z[pick, torch.arange(x.shape[0])], ess


@torch.no_grad()
def posterior_mapping(
    src,
    dst,
    z1: torch.Tensor,
    n_draws: int = 64,
    *,
    n_proposals: int = 100,
    likelihood: str = "sample",
    draw: str = "guide",
    seed: int = 0,
    batch_points: int = 64,
) -> PosteriorMapping:
    """Monte-Carlo draws of ``p(z₂ | z₁)`` (module docstring) for the points ``z1 [N, D₁]``.

    Args:
        src, dst: VAE 1 (whose likelihood draws the images) and VAE 2 (whose guide and
            posterior give ``z₂``).
        n_draws: images ``S`` per point, one ``z₂`` per image from each of guide and posterior.
        n_proposals: guide proposals ``K`` per image for the importance-resampled posterior;
            0 skips the posterior.
        likelihood: ``"sample"`` draws Bernoulli images; ``"mean"`` takes VAE 1's mean image (the
            deterministic limit).
        draw: ``"guide"`` samples ``q₂``; ``"mean"`` takes its mean (with ``likelihood="mean"``
            every draw is then the formula's point).
        seed: seeds a private RNG; the global RNG is untouched.
        batch_points: points per batch (bounds memory at ``K·S·batch_points`` decodes).
    """
    _check_pair(src, dst)
    z1 = check_codes(z1, src, "z1")
    S = check_positive_int(n_draws, "n_draws")
    K = check_nonnegative_int(n_proposals, "n_proposals")
    seed = check_nonnegative_int(seed, "seed")
    batch_points = check_positive_int(batch_points, "batch_points")
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"likelihood must be one of {LIKELIHOODS}; got {likelihood!r}")
    if draw not in DRAWS:
        raise ValueError(f"draw must be one of {DRAWS}; got {draw!r}")
    if z1.shape[0] == 0:
        raise ValueError("z1 holds no points")
    if K == 1:
        raise ValueError("n_proposals must be 0 (no posterior) or at least 2")
    if K:
        require_likelihood(dst, "dst", purpose="the importance-resampled posterior")
    guide_draws, mean_draws, posterior_draws, ess = [], [], [], []
    # manual_seed reseeds every CUDA device, so restore them all, not only the VAEs' own
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        for start in range(0, z1.shape[0], batch_points):
            batch = z1[start : start + batch_points]
            trace = poutine.trace(mapping_program).get_trace(src, dst, batch, S, likelihood)
            x = trace.nodes["x"]["value"]  # [S, B, *obs]
            loc = _encode_draws(dst, x, x.shape[:2])[0]
            z2 = trace.nodes["z2"]["value"] if draw == "guide" else loc
            guide_draws.append(z2.cpu())
            mean_draws.append(loc.cpu())
            if K:
                flat = x.reshape(-1, *x.shape[2:])
                z, e = _importance_resample(dst, flat, K)
                posterior_draws.append(z.reshape(S, -1, dst.latent_dim).cpu())
                ess.append(e.reshape(S, -1).cpu())
    return PosteriorMapping(
        z1=z1.cpu(),
        formula=formula_map(src, dst, z1),
        guide=torch.cat(guide_draws, 1),
        means=torch.cat(mean_draws, 1),
        posterior=torch.cat(posterior_draws, 1) if K else None,
        ess=torch.cat(ess, 1) if K else None,
        n_proposals=K,
        likelihood=likelihood,
    )


def transferred_expectation(identifier, draws: torch.Tensor) -> np.ndarray:
    """``E[f(z) | ·] ≈ (1/S) Σ_s f(z_s)`` per point, for draws ``[S, N, D]`` and a fitted
    scikit-learn ``identifier`` (``predict``, or ``predict_proba`` averaged for classifiers:
    returns ``[N]`` or ``[N, C]``)."""
    if not isinstance(draws, torch.Tensor) or draws.ndim != 3:
        raise ValueError(
            f"draws must be a [S, N, D] tensor; got {getattr(draws, 'shape', type(draws))}"
        )
    S, N, D = draws.shape
    flat = draws.reshape(S * N, D).double().numpy()
    if hasattr(identifier, "predict_proba"):
        proba = identifier.predict_proba(flat)
        return proba.reshape(S, N, -1).mean(0)
    return np.asarray(identifier.predict(flat), dtype=float).reshape(S, N).mean(0)
