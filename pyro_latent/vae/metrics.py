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

Below these, small summaries over runs (:func:`mean_sd`, :func:`activity_mask`,
:func:`kl_split`).  The study's verdicts and tables over them live in
:mod:`pyro_latent.study.vae_latents`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyro
import torch
from pyro.infer import TraceMeanField_ELBO

from pyro_latent.core.checks import (
    check_nonnegative_float,
    check_nonnegative_int,
    check_positive_int,
)
from pyro_latent.core.latent_model import (
    LatentModel,
    elbo_programs,
    encode_in_batches,
    require_posterior,
)

ACTIVE_THRESHOLD = 0.01


@dataclass
class Encodings:
    """Posterior parameters ``loc``, ``scale`` (each ``(N, D)``) of a set of observations;
    ``scale`` is ``None`` for a deterministic encoder."""

    loc: torch.Tensor
    scale: torch.Tensor | None

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """One draw ``z_n ~ q(z | x_n)`` per observation."""
        scale = require_posterior(self.scale, "these encodings", purpose="sampling q(z | x)")
        eps = torch.randn(self.loc.shape, generator=generator, dtype=self.loc.dtype)
        return self.loc + scale * eps


def encode_dataset(model: LatentModel, images: torch.Tensor, batch_size: int = 1000) -> Encodings:
    """``q(z | x)``'s ``(loc, scale)`` of every observation under any
    :class:`~pyro_latent.core.latent_model.LatentModel`, on the CPU (``batch_size`` a
    positive int: a ``ValueError`` otherwise)."""
    batch_size = check_positive_int(batch_size, "batch_size")
    return Encodings(*encode_in_batches(model, images, batch_size))


def _check_encodings(enc, *, min_rows: int = 1) -> None:
    """``enc`` is :class:`Encodings`-like: a finite ``loc [N, D]`` with ``N ≥ min_rows``."""
    loc = getattr(enc, "loc", None)
    if not isinstance(loc, torch.Tensor):
        raise TypeError(f"enc must be Encodings (from encode_dataset), got {type(enc).__name__}")
    if loc.dim() != 2 or loc.shape[1] == 0:
        raise ValueError(f"enc.loc must be [N, D], got shape {tuple(loc.shape)}")
    if loc.shape[0] < min_rows:
        raise ValueError(f"enc must hold at least {min_rows} encodings, got {loc.shape[0]}")
    if not bool(torch.isfinite(loc).all()):
        raise ValueError("enc.loc contains NaN or infinite values")


def evaluate_elbo(
    model: LatentModel,
    images: torch.Tensor,
    *,
    n_particles: int = 1,
    batch_size: int = 1000,
    seed: int = 0,
) -> float:
    """Mean ELBO per observation (nats) of ``images`` under any
    :class:`~pyro_latent.core.latent_model.LatentModel` with a posterior and a likelihood,
    via ``TraceMeanField_ELBO`` on the model's :func:`~pyro_latent.core.latent_model.
    elbo_programs`."""
    n_particles = check_positive_int(n_particles, "n_particles")
    batch_size = check_positive_int(batch_size, "batch_size")
    seed = check_nonnegative_int(seed, "seed")
    if not isinstance(images, torch.Tensor) or images.ndim < 2 or images.shape[0] == 0:
        raise ValueError(
            "images must be a non-empty tensor of observations [N, ...]; got "
            f"{getattr(images, 'shape', type(images).__name__)}"
        )
    if not images.is_floating_point():
        raise ValueError(f"images must be floating point; got dtype {images.dtype}")
    if not bool(torch.isfinite(images).all()):
        raise ValueError("images contain NaN or infinite values")
    model_fn, guide_fn = elbo_programs(model)
    elbo = TraceMeanField_ELBO(num_particles=n_particles, vectorize_particles=False)
    total = 0.0
    with pyro.get_param_store().scope(), torch.no_grad(), torch.random.fork_rng():
        torch.manual_seed(seed)
        for start in range(0, images.shape[0], batch_size):
            total += elbo.loss(model_fn, guide_fn, images[start : start + batch_size])
    return -total / images.shape[0]


def kl_per_dim(enc: Encodings) -> np.ndarray:
    """``KL_d``, the mean over images of ``KL(q(z_d | x) ‖ N(0, 1))``, shape ``(D,)``.

    A ``TypeError`` for a deterministic encoder's encodings (no ``scale``), a ``ValueError``
    for a ``scale`` that is not positive and finite or not the shape of ``loc``.
    """
    _check_encodings(enc)
    scale = require_posterior(enc.scale, "these encodings", purpose="the KL per dimension")
    if not isinstance(scale, torch.Tensor) or scale.shape != enc.loc.shape:
        shape = tuple(scale.shape) if isinstance(scale, torch.Tensor) else type(scale).__name__
        raise ValueError(
            f"enc.scale must have the shape of enc.loc {tuple(enc.loc.shape)}, got {shape}"
        )
    if not bool(torch.isfinite(scale).all()) or not bool((scale > 0).all()):
        raise ValueError("enc.scale must be positive and finite (a standard deviation)")
    loc, scale = enc.loc.double(), scale.double()
    kl = 0.5 * (loc**2 + scale**2 - 1.0 - 2.0 * torch.log(scale))
    return kl.mean(0).numpy()


def activity(enc: Encodings) -> np.ndarray:
    """``A_d = Var_x(E_q[z_d | x])``, shape ``(D,)``."""
    return enc.loc.double().var(0).numpy()


def active_units(enc: Encodings, threshold: float = ACTIVE_THRESHOLD) -> np.ndarray:
    """Boolean mask of the active dimensions, ``A_d > threshold``.

    ``threshold`` must be a finite non-negative number and ``enc`` hold at least 2 encodings
    (a variance needs two): a ``ValueError`` otherwise.
    """
    check_nonnegative_float(threshold, "threshold")
    _check_encodings(enc, min_rows=2)
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


def summarize(
    vae: LatentModel, images: torch.Tensor, *, seed: int = 0, n_particles: int = 1
) -> dict:
    """Every number above for one VAE on ``images`` (plain types, JSON-ready)."""
    enc = encode_dataset(vae, images)
    act = activity(enc)
    kl = kl_per_dim(enc)
    corr = correlations(enc, seed=seed)
    return {
        "test_elbo": evaluate_elbo(vae, images, seed=seed, n_particles=n_particles),
        "activity": act.tolist(),
        "kl_per_dim": kl.tolist(),
        "active_units": int((act > ACTIVE_THRESHOLD).sum()),
        "kl_total": float(kl.sum()),
        "kl_split": kl_split(kl, act > ACTIVE_THRESHOLD),
        **{k: v for k, v in corr.items() if not k.endswith("_corr")},
    }


# --- summaries over runs ------------------------------------------------------------------------


def mean_sd(values: Sequence[float]) -> dict:
    """``{"mean", "sd", "n"}`` of ``values``: the mean and the sample standard deviation
    (``ddof = 1``) over runs; ``sd`` is None for a single run (nothing to spread)."""
    values = np.asarray(values, dtype=float)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"values must be a non-empty list of numbers, got shape {values.shape}")
    sd = float(values.std(ddof=1)) if values.size > 1 else None
    return {"mean": float(values.mean()), "sd": sd, "n": int(values.size)}


def activity_mask(activity_per_dim: Sequence[float], threshold: float = ACTIVE_THRESHOLD):
    """``A_d > threshold`` for a list of activities ``A_d`` (the mask of :func:`active_units`)."""
    act = np.asarray(activity_per_dim, dtype=float)
    if act.ndim != 1:
        raise ValueError(f"activity must be one number per dimension, got shape {act.shape}")
    return act > threshold


def kl_split(kl: Sequence[float], active: Sequence[bool]) -> dict:
    """``KL_d`` split by an activity mask: ``{"active": [...], "inactive": [...]}``, each sorted
    largest first.

    An inactive dimension (``A_d ≤ 0.01``) should have collapsed onto the prior, ``KL_d ≈ 0``;
    an active one carries information about ``x``, ``KL_d > 0``.
    """
    kl = np.asarray(kl, dtype=float)
    active = np.asarray(active)
    if active.dtype != bool or kl.ndim != 1 or active.shape != kl.shape:
        raise ValueError(
            f"kl and active must be a vector and a boolean mask of one length, got {kl.shape} "
            f"and {active.shape} ({active.dtype})"
        )
    return {
        "active": sorted(kl[active].tolist(), reverse=True),
        "inactive": sorted(kl[~active].tolist(), reverse=True),
    }


def cluster_accuracy(labels, clusters) -> float:
    """The share of items whose cluster maps to their label under the best one-to-one map of
    clusters to labels (the Hungarian algorithm on the contingency table,
    :func:`scipy.optimize.linear_sum_assignment`); clusters left unmatched, when there are more
    clusters than labels, count as wrong."""
    from scipy.optimize import linear_sum_assignment

    labels, clusters = np.asarray(labels).ravel(), np.asarray(clusters).ravel()
    if labels.shape != clusters.shape or labels.size == 0:
        raise ValueError(
            f"labels and clusters must be non-empty and of one length, got {labels.size} and "
            f"{clusters.size}"
        )
    _, label_index = np.unique(labels, return_inverse=True)
    _, cluster_index = np.unique(clusters, return_inverse=True)
    table = np.zeros((cluster_index.max() + 1, label_index.max() + 1), dtype=np.int64)
    np.add.at(table, (cluster_index, label_index), 1)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / labels.size)
