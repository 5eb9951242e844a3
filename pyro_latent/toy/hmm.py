r"""Exact forward–backward over a compiled joint state space (the ``engine="hmm"`` path).

Both world models are hidden Markov models once their per-step latents are read as one joint state
``s ∈ {0..S-1}``: an initial distribution ``π``, a transition ``P`` (the product of the model's
CPTs) and per-step likelihoods ``L_t(s) = p(o_t | s)``.  The scaled forward recursion (Rabiner
1989) is

    α̂_0 ∝ π ⊙ L_0,      α̂_t ∝ (α̂_{t-1} P) ⊙ L_t,      c_t = Σ_s (α̂_{t-1} P ⊙ L_t)(s),

so that ``log p(o_{0:T-1}) = Σ_t log c_t``, and the backward recursion

    β̂_{T-1} = 1,        β̂_t = P (L_{t+1} ⊙ β̂_{t+1}) / c_{t+1}

gives the smoothed marginals ``p(s_t | o) = α̂_t ⊙ β̂_t``.  Everything is batched over sequences
and costs ``O(B·T·S²)`` time and ``O(B·T·S)`` memory.  Likelihoods are shifted by their per-step
maximum before exponentiation, so no step underflows even for tiny noise.

A step with ``c_t = 0`` makes the whole sequence impossible (``log p = -∞``); its index is returned
so that callers can say where the observations stopped making sense.
"""

from __future__ import annotations

import torch


def state_log_likelihood(emission: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
    """``log p(o_t | s)`` as ``[B, T, S]`` from ``emission [S, n, 3]`` and ``obs [B, T, n]``."""
    log_e = emission.log()  # [S, n, 3]; log 0 = -inf is intended
    S, n, _ = emission.shape
    cells = torch.arange(n)
    # per state, cell and observed symbol: gather then sum over cells
    picked = log_e[:, cells, obs]  # [S, B, T, n]
    return picked.sum(-1).permute(1, 2, 0)


def forward_backward(
    init: torch.Tensor, trans: torch.Tensor, log_lik: torch.Tensor, smooth: bool = True
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Exact evidence and smoothed marginals of a batch of HMM sequences.

    Args:
        init: ``[S]`` initial distribution.
        trans: ``[S, S]`` row-stochastic transition.
        log_lik: ``[B, T, S]`` per-step log-likelihoods of each state.
        smooth: also run the backward pass.

    Returns:
        ``(log_evidence [B], marginals [B, T, S] or None, first_impossible [B])`` where
        ``first_impossible`` is the first step with zero probability, or ``-1``.
    """
    B, T, S = log_lik.shape
    shift = log_lik.max(-1, keepdim=True).values  # [B, T, 1]
    finite_shift = torch.where(torch.isfinite(shift), shift, torch.zeros_like(shift))
    lik = (log_lik - finite_shift).exp()  # [B, T, S], each step's largest entry is 1 (or all 0)

    alpha = torch.empty(B, T, S, dtype=lik.dtype)
    log_c = torch.empty(B, T, dtype=lik.dtype)
    prior = init.to(lik.dtype).expand(B, S)
    for t in range(T):
        unnorm = prior * lik[:, t]
        c = unnorm.sum(-1)
        alpha[:, t] = unnorm / torch.where(c > 0, c, torch.ones_like(c)).unsqueeze(-1)
        log_c[:, t] = c.log()
        prior = alpha[:, t] @ trans
    impossible = torch.isneginf(log_c)
    first = torch.where(impossible.any(-1), impossible.float().argmax(-1), torch.full((B,), -1))
    log_evidence = (log_c + finite_shift.squeeze(-1)).sum(-1)
    log_evidence = torch.where(
        first >= 0, torch.full_like(log_evidence, -float("inf")), log_evidence
    )
    if not smooth:
        return log_evidence, None, first

    c = log_c.exp()
    safe_c = torch.where(c > 0, c, torch.ones_like(c))
    beta = torch.ones(B, S, dtype=lik.dtype)
    marginals = torch.empty_like(alpha)
    marginals[:, T - 1] = alpha[:, T - 1]
    for t in range(T - 2, -1, -1):
        beta = ((lik[:, t + 1] * beta) @ trans.T) / safe_c[:, t + 1].unsqueeze(-1)
        marginals[:, t] = alpha[:, t] * beta
    return log_evidence, marginals, first
