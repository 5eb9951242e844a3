"""What a trained VAE does with its latent space, measured on held-out images.

For test images ``x_1..x_N`` with posteriors ``q(z | x_n) = N(μ_n, diag σ_n²)``:

* **Test ELBO** (nats per image): ``(1/N) Σ_n E_q[log p(x_n | z)] - KL(q(z | x_n) ‖ N(0, I))``,
  estimated with Pyro's ``TraceMeanField_ELBO``: Monte Carlo for the reconstruction term, the
  KL in closed form.
* **KL per dimension**: ``KL_d = (1/N) Σ_n ½ (μ_nd² + σ_nd² - 1 - log σ_nd²)``, in nats; the KL
  term of the ELBO is ``Σ_d KL_d``.
* **Active units** (Burda, Grosse & Salakhutdinov 2015, "Importance Weighted Autoencoders"):
  dimension ``d`` is active when ``A_d = Var_x(E_q[z_d | x]) = Var_n(μ_nd) > 0.01``.  An
  inactive dimension's posterior mean does not move with the input: the decoder ignores it and
  its posterior collapses to the prior, ``KL_d ≈ 0``.
* **Mean against sample correlation** (Locatello et al. 2019, "Challenging Common Assumptions in
  the Unsupervised Learning of Disentangled Representations"): the correlation matrix of the
  posterior means ``μ_n`` (the "representation") against that of one sample
  ``z_n = μ_n + σ_n ε_n`` per image (a draw from the aggregate posterior ``q(z) = (1/N) Σ_n
  q(z | x_n)``).  Summarised as the mean absolute off-diagonal entry, over all dimensions and
  over the active ones only (an inactive mean is constant up to noise, and an inactive sample is
  independent prior noise, so including them dilutes both numbers).

  Note the arithmetic: ``Cov(z) = Cov(μ) + diag(E[σ²])``, so the sample correlations are the
  mean correlations shrunk by the posterior variances.  The gap measures how much of each
  dimension's aggregate variance is posterior noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyro
import torch
from pyro.infer import TraceMeanField_ELBO

from pyro_latent.vae.model import VAE

ACTIVE_THRESHOLD = 0.01


@dataclass
class Encodings:
    """Posterior parameters ``loc``, ``scale`` (each ``(N, D)``) of a set of images."""

    loc: torch.Tensor
    scale: torch.Tensor

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """One draw ``z_n ~ q(z | x_n)`` per image."""
        eps = torch.randn(self.loc.shape, generator=generator, dtype=self.loc.dtype)
        return self.loc + self.scale * eps


@torch.no_grad()
def encode_dataset(vae: VAE, images: torch.Tensor, batch_size: int = 1000) -> Encodings:
    """Posterior ``(loc, scale)`` of every image, on the CPU."""
    locs, scales = [], []
    for start in range(0, images.shape[0], batch_size):
        loc, scale = vae.encode(images[start : start + batch_size])
        locs.append(loc.cpu())
        scales.append(scale.cpu())
    return Encodings(torch.cat(locs), torch.cat(scales))


def evaluate_elbo(
    vae: VAE,
    images: torch.Tensor,
    *,
    num_particles: int = 1,
    batch_size: int = 1000,
    seed: int = 0,
) -> float:
    """Mean ELBO per image (nats) of ``images`` under ``vae``, via ``TraceMeanField_ELBO``."""
    elbo = TraceMeanField_ELBO(num_particles=num_particles, vectorize_particles=False)
    total = 0.0
    with pyro.get_param_store().scope(), torch.no_grad(), torch.random.fork_rng():
        torch.manual_seed(seed)
        for start in range(0, images.shape[0], batch_size):
            x = vae.check_images(images[start : start + batch_size])
            total += elbo.loss(vae.model, vae.guide, x)
    return -total / images.shape[0]


def kl_per_dim(enc: Encodings) -> np.ndarray:
    """``KL_d``, the mean over images of ``KL(q(z_d | x) ‖ N(0, 1))``, shape ``(D,)``."""
    loc, scale = enc.loc.double(), enc.scale.double()
    kl = 0.5 * (loc**2 + scale**2 - 1.0 - 2.0 * torch.log(scale))
    return kl.mean(0).numpy()


def activity(enc: Encodings) -> np.ndarray:
    """``A_d = Var_x(E_q[z_d | x])``, shape ``(D,)``."""
    return enc.loc.double().var(0).numpy()


def active_units(enc: Encodings, threshold: float = ACTIVE_THRESHOLD) -> np.ndarray:
    """Boolean mask of the active dimensions, ``A_d > threshold``."""
    return activity(enc) > threshold


def _corr(x: torch.Tensor) -> np.ndarray:
    x = x.double().numpy()
    std = x.std(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(x, rowvar=False)
    corr[std == 0, :] = np.nan
    corr[:, std == 0] = np.nan
    return corr


def mean_abs_offdiag(corr: np.ndarray) -> float:
    """Mean of ``|C_ij|`` over ``i ≠ j`` (NaN entries of constant dimensions skipped)."""
    d = corr.shape[0]
    if d < 2:
        return float("nan")
    off = np.abs(corr[~np.eye(d, dtype=bool)])
    off = off[np.isfinite(off)]
    return float(off.mean()) if off.size else float("nan")


def correlations(enc: Encodings, seed: int = 0) -> dict:
    """Correlation matrices of the means and of one posterior sample per image, and their mean
    absolute off-diagonal values over all dimensions and over the active ones."""
    generator = torch.Generator().manual_seed(seed)
    mean_corr = _corr(enc.loc)
    sample_corr = _corr(enc.sample(generator))
    active = active_units(enc)
    sub = np.ix_(active, active)
    return {
        "mean_corr": mean_corr,
        "sample_corr": sample_corr,
        "mean_abs_offdiag_means": mean_abs_offdiag(mean_corr),
        "mean_abs_offdiag_samples": mean_abs_offdiag(sample_corr),
        "mean_abs_offdiag_means_active": mean_abs_offdiag(mean_corr[sub]),
        "mean_abs_offdiag_samples_active": mean_abs_offdiag(sample_corr[sub]),
    }


def summarize(vae: VAE, images: torch.Tensor, *, seed: int = 0, num_particles: int = 1) -> dict:
    """Every number above for one VAE on ``images`` (plain types, JSON-ready)."""
    enc = encode_dataset(vae, images)
    act = activity(enc)
    corr = correlations(enc, seed=seed)
    return {
        "test_elbo": evaluate_elbo(vae, images, seed=seed, num_particles=num_particles),
        "activity": act.tolist(),
        "kl_per_dim": kl_per_dim(enc).tolist(),
        "active_units": int((act > ACTIVE_THRESHOLD).sum()),
        "kl_total": float(kl_per_dim(enc).sum()),
        **{k: v for k, v in corr.items() if not k.endswith("_corr")},
    }
