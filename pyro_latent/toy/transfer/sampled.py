r"""Sampled translation ``p(l_d | l_s)``, for windows too long to enumerate.

The exact translation (:mod:`pyro_latent.toy.transfer.exact`) is

.. math::

    M[s, s'] = \sum_o p_d(l_{T-1} = s' \mid o)\, p_s(o \mid l_{T-1} = s),

a sum over ``3^{nT}`` windows once the source is noisy: ``n = 10`` is out of reach at any ``T``.
Both estimators here draw windows from the source instead.  In this deterministic world the
window that ends in ``s`` is ``w(s) = (σ^{-(T-1)}(s), …, s)``, so ``o ~ p_s(o | l_{T-1} = s)``
is a forward sample of the source model started at ``l_0 = σ^{-(T-1)}(s)``
(``src_model.sample(T, N, initial=…)``).

* :func:`monte_carlo_translation` then draws **one** destination latent per window,
  ``l_d ~ p_d(l_d | o)`` (``dst_model.sample_posterior``), and counts:
  ``M̂[s, s'] = (1/N) Σ_j [l_d^{(j)} = s']``.  Each row is a multinomial sample, with
  ``E[TV(M̂[s], M[s])] ≈ ½ Σ_{s'} sqrt(2 M[s,s'](1 - M[s,s']) / (π N))`` (:func:`expected_tv`).
* :func:`rao_blackwell_translation` replaces the draw of ``l_d`` by its conditional expectation,
  the destination's exact posterior at the last step (forward–backward, ``model.hmm``):

  .. math::

      \hat M[s, s'] = \frac1N \sum_{j=1}^N p_d(l_{T-1} = s' \mid o^{(j, s)}),
      \qquad o^{(j, s)} \sim p_s(o \mid l_{T-1} = s).

  This is unbiased, and by the law of total variance its variance is never larger than the
  Monte-Carlo estimator's: only the noise of ``o`` is left, not that of ``l_d`` given ``o``.
  Each entry gets the standard error ``sd_j(p_d(s' | o^{(j,s)})) / √N``.  The distance from the
  identity ``d = 1 - (1/S) Σ_s M[s, s]`` is estimated by ``1 - (1/S) Σ_s M̂[s, s]``; the rows are
  drawn independently, so its standard error is ``sqrt(Σ_s se[s, s]²) / S``.

Memory is bounded by ``batch_size · T · S`` floats per batch, whatever ``N``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import arviz as az
import numpy as np
import pyro
import torch
from tqdm.auto import tqdm

from pyro_latent.core.checks import check_int, check_nonnegative_int, check_positive_int
from pyro_latent.toy.transfer.exact import _check_noise_pair, _check_pair, window_states

__all__ = [
    "Estimate",
    "MonteCarloTranslation",
    "RaoBlackwellTranslation",
    "expected_tv",
    "loglog_slope",
    "monte_carlo_translation",
    "rao_blackwell_translation",
    "total_variation",
]


def total_variation(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Row-wise total-variation distance ``½ Σ |p - q|`` (``[..., K] -> [...]``)."""
    return 0.5 * (p - q).abs().sum(-1)


def _sample_windows(src_model, last: torch.Tensor, T: int, generator) -> torch.Tensor:
    """Windows ``[B, T, n]`` from ``p_src(o | l_{T-1} = last)``: forward samples started at the
    first state of the window that ends in each ``last`` (exact: the dynamics are a permutation,
    so ``l_0`` and ``l_{T-1}`` determine each other)."""
    start = window_states(src_model, T)[last, 0]
    initial = src_model.valid_latents[start]
    return src_model.sample(T, len(last), initial=initial, generator=generator)[1]


def _batches(total: int, batch_size: int, progress: bool, desc: str):
    starts = range(0, total, batch_size)
    return tqdm(starts, desc=desc, disable=not progress)


# =============================================================================== Monte Carlo
@dataclass
class MonteCarloTranslation:
    """Samples ``l_dst ~ p(l_dst | l_src)``: ``samples[j, s]`` is the ``j``-th draw for source
    state ``s`` (a destination state index)."""

    samples: torch.Tensor  # [n_samples, S] long
    window: int

    def matrix(self, n_samples: int | None = None) -> torch.Tensor:
        """The estimate ``M̂ [S, S]`` from the first ``n_samples`` draws (all by default)."""
        if n_samples is not None:
            n_samples = check_positive_int(n_samples, "n_samples")
            if n_samples > self.samples.shape[0]:
                raise ValueError(
                    f"n_samples = {n_samples} exceeds the {self.samples.shape[0]} draws held"
                )
        draws = self.samples[:n_samples]
        S = self.samples.shape[1]
        counts = torch.nn.functional.one_hot(draws, S).double().sum(0)
        return counts / counts.sum(-1, keepdim=True)

    def tv_to(self, exact: torch.Tensor, n_samples: int | None = None) -> float:
        """Mean over source states of ``TV(M̂[s, ·], M[s, ·])``."""
        return float(total_variation(self.matrix(n_samples), exact).mean())

    def to_inference_data(self, labels=None):
        """The draws as ArviZ ``InferenceData``: posterior variable ``dst_state`` with dims
        ``(chain, draw, src_state)`` (``int16`` state indices)."""
        S = self.samples.shape[1]
        if S > np.iinfo(np.int16).max:
            raise ValueError(f"{S} states do not fit the int16 encoding of the draws")
        coords = {"src_state": _labels(labels, S)}
        return az.from_dict(
            posterior={"dst_state": self.samples.numpy().astype(np.int16)[None]},
            coords=coords,
            dims={"dst_state": ["src_state"]},
            attrs={"window": self.window, "estimand": "p(l_dst at T-1 | l_src at T-1)"},
        )


def _labels(labels, S: int) -> list:
    if labels is None:
        return list(range(S))
    labels = list(labels)
    if len(labels) != S:
        raise ValueError(f"labels must name the {S} states, got {len(labels)}")
    return labels


def monte_carlo_translation(
    src_model,
    dst_model,
    window: int,
    n_samples: int,
    *,
    seed: int = 0,
    batch_size: int = 8192,
    progress: bool = False,
) -> MonteCarloTranslation:
    """Sampled ``p(l_dst | l_src)``: for each source state, ``n_samples`` observation windows
    from the source model (``src_model.sample`` started where the window that ends in that state
    starts) and one posterior draw of the destination latent for each
    (``dst_model.sample_posterior``: forward-filtering backward-sampling over the compiled tables
    with the default ``engine="hmm"``, ``infer_discrete`` on the Pyro program at temperature 1
    with ``engine="enum"``).

    The windows come from a ``torch.Generator`` seeded with ``seed``; the posterior draws use,
    and reseed, Pyro's global RNG with ``seed``.
    """
    T = check_positive_int(window, "window")
    n_samples = check_positive_int(n_samples, "n_samples")
    seed = check_nonnegative_int(seed, "seed")
    batch_size = check_positive_int(batch_size, "batch_size")
    _check_pair(src_model, dst_model)
    _check_noise_pair(src_model, dst_model)
    pyro.set_rng_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    S = src_model.world.n_states
    last = torch.arange(S).repeat(n_samples)  # draw-major: row j*S + s
    out = []
    for start in _batches(len(last), batch_size, progress, f"Monte Carlo T={T}"):
        chunk = last[start : start + batch_size]
        obs = _sample_windows(src_model, chunk, T, generator)
        draws = dst_model.sample_posterior(obs, 1)[0, :, -1]
        out.append(dst_model.latent_index(draws))
    samples = torch.cat(out).reshape(n_samples, S)
    return MonteCarloTranslation(samples, T)


def expected_tv(matrix: torch.Tensor, n_samples: int) -> float:
    """Leading-order ``E[TV]`` of an ``n``-draw empirical row: ``½ Σ_k sqrt(2 p_k(1-p_k) / (π n))``
    averaged over rows (the ``1/√n`` reference line)."""
    n_samples = check_positive_int(n_samples, "n_samples")
    p = matrix.clamp(0, 1)
    per_row = 0.5 * torch.sqrt(2 * p * (1 - p) / (math.pi * n_samples)).sum(-1)
    return float(per_row.mean())


def loglog_slope(xs, ys) -> float:
    """Least-squares slope of ``log y`` against ``log x``."""
    return float(np.polyfit(np.log(np.asarray(xs, float)), np.log(np.asarray(ys, float)), 1)[0])


# =============================================================================== Rao–Blackwell
class Estimate(NamedTuple):
    """A Monte-Carlo estimate and its standard error."""

    value: float
    standard_error: float


@dataclass
class RaoBlackwellTranslation:
    """The Rao–Blackwellised estimate of ``p(l_dst | l_src)`` (see the module docstring).

    Attributes:
        matrix: ``[S, S]`` ``M̂[s, s'] = mean_j p_d(s' | o^{(j, s)})``.
        standard_error: ``[S, S]`` ``sd_j(p_d(s' | o^{(j, s)})) / √N`` (``ddof = 1``).
        diagonal_draws: ``[N, S]`` the per-draw diagonal ``p_d(l_{T-1} = s | o^{(j, s)})``.
        window: ``T``.
        n_samples: ``N``, windows per source state.
    """

    matrix: torch.Tensor
    standard_error: torch.Tensor
    diagonal_draws: torch.Tensor
    window: int
    n_samples: int

    def distance_from_identity(self) -> Estimate:
        """``1 - (1/S) Σ_s M̂[s, s]`` and its standard error ``sqrt(Σ_s se[s, s]²) / S`` (the
        rows are independent, so their variances add)."""
        diagonal = self.diagonal_draws
        S = diagonal.shape[1]
        value = 1 - float(diagonal.mean(0).mean())
        variance = diagonal.var(0, correction=1) / diagonal.shape[0]
        return Estimate(value, math.sqrt(float(variance.sum())) / S)

    def z_scores(self, reference: torch.Tensor) -> torch.Tensor:
        """``(M̂ - reference) / se`` entry by entry; ``0`` where both the difference and the
        standard error vanish, ``±inf`` where only the standard error does."""
        reference = torch.as_tensor(reference, dtype=torch.float64)
        diff = self.matrix - reference
        z = diff / self.standard_error
        return torch.where((diff == 0) & (self.standard_error == 0), torch.zeros_like(z), z)

    def to_inference_data(self, labels=None):
        """The draws as ArviZ ``InferenceData``.

        * ``posterior``: ``diagonal`` ``(chain, draw, src_state)``, the per-draw
          ``p_d(l_{T-1} = s | o^{(j, s)})``, and ``distance`` ``(chain, draw)``, ``1 - `` its mean
          over states;
        * ``constant_data``: the estimate ``matrix`` and its ``standard_error``
          ``(src_state, dst_state)``.

        For ``n = 10`` (``S = 160``) and ``N = 200`` this is about 0.7 MB.
        """
        S = self.matrix.shape[0]
        names = _labels(labels, S)
        diagonal = self.diagonal_draws.numpy()[None]
        distance, se = self.distance_from_identity()
        return az.from_dict(
            posterior={"diagonal": diagonal, "distance": 1 - diagonal.mean(-1)},
            constant_data={
                "matrix": self.matrix.numpy(),
                "standard_error": self.standard_error.numpy(),
            },
            coords={"src_state": names, "dst_state": names},
            dims={
                "diagonal": ["src_state"],
                "matrix": ["src_state", "dst_state"],
                "standard_error": ["src_state", "dst_state"],
            },
            attrs={
                "window": self.window,
                "n_samples": self.n_samples,
                "estimand": "p(l_dst at T-1 | l_src at T-1), Rao-Blackwellised",
                "distance_from_identity": distance,
                "distance_standard_error": se,
            },
        )


def rao_blackwell_translation(
    src_model,
    dst_model,
    window: int,
    n_samples: int,
    *,
    seed: int = 0,
    batch_size: int = 1024,
    progress: bool = False,
) -> RaoBlackwellTranslation:
    """Rao–Blackwellised ``p(l_dst | l_src)`` with standard errors (see the module docstring).

    For each source state, ``n_samples`` windows from ``p_src(o | l_{T-1} = s)`` (forward samples
    of ``src_model``), each contributing the destination's exact last-step posterior
    ``p_dst(l_{T-1} | o)`` from its compiled forward–backward.  Deterministic given ``seed`` (a
    private ``torch.Generator``; no global RNG is touched).  ``batch_size`` windows are processed
    at a time, so memory is ``O(batch_size · T · S)``.

    Raises ``ValueError`` for a non-positive or non-integer ``window`` or ``batch_size``, fewer
    than 2 samples (a standard error needs two), a negative or non-integer ``seed``, models of
    different worlds, or a noisy source with a noise-free destination.
    """
    T = check_positive_int(window, "window")
    N = check_int(n_samples, "n_samples", minimum=2)
    seed = check_nonnegative_int(seed, "seed")
    batch_size = check_positive_int(batch_size, "batch_size")
    _check_pair(src_model, dst_model)
    _check_noise_pair(src_model, dst_model)
    generator = torch.Generator().manual_seed(seed)
    S = src_model.world.n_states
    hmm = dst_model.hmm
    last = torch.arange(S).repeat(N)  # draw-major: row j*S + s
    total = torch.zeros(S, S, dtype=torch.float64)
    total_sq = torch.zeros(S, S, dtype=torch.float64)
    diagonal = torch.empty(N * S, dtype=torch.float64)
    for start in _batches(len(last), batch_size, progress, f"Rao-Blackwell T={T}"):
        rows = last[start : start + batch_size]
        obs = _sample_windows(src_model, rows, T, generator)
        _, marginals, first = hmm.forward_backward(hmm.log_likelihood(obs), smooth=True)
        if bool((first >= 0).any()):
            raise ValueError(
                "the source emitted a window that the destination finds impossible "
                f"(window {int(start + (first >= 0).nonzero()[0])})"
            )
        posterior = marginals[:, -1].double()  # [B, S_dst]
        total.index_add_(0, rows, posterior)
        total_sq.index_add_(0, rows, posterior.square())
        diagonal[start : start + len(rows)] = posterior.gather(1, rows[:, None]).squeeze(1)
    mean = total / N
    # Σ (x - x̄)² = Σ x² - N x̄²; clamped because the difference can round below zero.
    variance = ((total_sq - N * mean.square()) / (N - 1)).clamp_min(0)
    return RaoBlackwellTranslation(
        matrix=mean,
        standard_error=(variance / N).sqrt(),
        diagonal_draws=diagonal.reshape(N, S),
        window=T,
        n_samples=N,
    )
