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
    """``log p(o_t | s) = Σ_k log E[s, k, o_tk]`` as ``[B, T, S]`` from ``emission [S, n, 3]``
    and ``obs [B, T, n]``.

    Computed as one matrix product of the one-hot observations with the finite part of
    ``log E``, plus a second product counting the cells that ``s`` cannot show (``E = 0``), so
    that ``0 · log 0`` never produces NaN and memory stays ``O(B·T·S)``.
    """
    S, n, k = emission.shape
    one_hot = torch.nn.functional.one_hot(obs, k).to(emission.dtype).reshape(*obs.shape[:-1], -1)
    impossible = emission == 0
    finite_log = torch.where(impossible, torch.zeros_like(emission), emission.log())
    log_lik = one_hot @ finite_log.reshape(S, n * k).T
    blocked = one_hot @ impossible.to(emission.dtype).reshape(S, n * k).T
    return log_lik.masked_fill(blocked > 0, -float("inf"))


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

    # A sequence whose step t has c_t = 0 gets NaN from there on; it is reported as impossible
    # through ``first`` and its evidence is set to -inf, so the NaNs never leave this function.
    alpha = torch.empty(B, T, S, dtype=lik.dtype)
    c = torch.empty(B, T, 1, dtype=lik.dtype)
    prior = init.to(lik.dtype).expand(B, S)
    for t in range(T):
        unnorm = prior * lik[:, t]
        c[:, t] = unnorm.sum(-1, keepdim=True)
        alpha[:, t] = unnorm / c[:, t]
        prior = alpha[:, t] @ trans
    c = c.squeeze(-1)
    zero = c == 0
    first = torch.where(zero.any(-1), zero.float().argmax(-1), torch.full((B,), -1))
    log_evidence = (c.log() + finite_shift.squeeze(-1)).sum(-1)
    log_evidence = torch.where(
        first >= 0, torch.full_like(log_evidence, -float("inf")), log_evidence
    )
    if not smooth:
        return log_evidence, None, first

    beta = torch.ones(B, S, dtype=lik.dtype)
    marginals = torch.empty_like(alpha)
    marginals[:, T - 1] = alpha[:, T - 1]
    trans_t = trans.T.contiguous()
    c = c.unsqueeze(-1)
    for t in range(T - 2, -1, -1):
        beta = ((lik[:, t + 1] * beta) @ trans_t) / c[:, t + 1]
        marginals[:, t] = alpha[:, t] * beta
    return log_evidence, marginals, first


def viterbi(
    init: torch.Tensor, trans: torch.Tensor, log_lik: torch.Tensor, chunk: int = 256
) -> torch.Tensor:
    """Most probable state paths ``[B, T]`` (max-product; ties broken by the lowest index).

    ``δ_0 = log π + log L_0``,  ``δ_t(s') = max_s δ_{t-1}(s) + log P(s, s') + log L_t(s')``, then
    backtracking.  Sequences are processed ``chunk`` at a time so that the ``[B, S, S]`` step
    stays small.  Sequences of probability zero get an arbitrary path: callers check first.
    """
    if log_lik.shape[0] > chunk:
        return torch.cat([viterbi(init, trans, part, chunk) for part in log_lik.split(chunk)])
    B, T, S = log_lik.shape
    log_trans = trans.log()
    delta = init.log() + log_lik[:, 0]
    back = torch.empty(B, T, S, dtype=torch.long)
    for t in range(1, T):
        scores = delta.unsqueeze(-1) + log_trans  # [B, S_prev, S]
        delta, back[:, t] = scores.max(-2)
        delta = delta + log_lik[:, t]
    path = torch.empty(B, T, dtype=torch.long)
    path[:, T - 1] = delta.argmax(-1)
    for t in range(T - 1, 0, -1):
        path[:, t - 1] = back[:, t].gather(-1, path[:, t : t + 1]).squeeze(-1)
    return path


def sample_paths(
    init: torch.Tensor,
    trans: torch.Tensor,
    log_lik: torch.Tensor,
    num_samples: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Joint posterior paths ``[num_samples, B, T]`` by forward filtering, backward sampling:
    ``s_{T-1} ~ α̂_{T-1}``, then ``s_t ~ α̂_t(s) P(s, s_{t+1})`` (normalised)."""
    B, T, S = log_lik.shape
    shift = log_lik.max(-1, keepdim=True).values
    lik = (log_lik - torch.where(torch.isfinite(shift), shift, torch.zeros_like(shift))).exp()
    alpha = torch.empty(B, T, S, dtype=lik.dtype)
    prior = init.to(lik.dtype).expand(B, S)
    for t in range(T):
        unnorm = prior * lik[:, t]
        alpha[:, t] = unnorm / unnorm.sum(-1, keepdim=True)
        prior = alpha[:, t] @ trans
    paths = torch.empty(num_samples, B, T, dtype=torch.long)
    weights = alpha[:, T - 1].expand(num_samples, B, S).reshape(-1, S)
    paths[:, :, T - 1] = torch.multinomial(weights, 1, generator=generator).view(num_samples, B)
    for t in range(T - 2, -1, -1):
        into_next = trans.T[paths[:, :, t + 1]]  # [N, B, S]: P(s, s_{t+1})
        weights = (alpha[:, t] * into_next).reshape(-1, S)
        drawn = torch.multinomial(weights, 1, generator=generator)
        paths[:, :, t] = drawn.view(num_samples, B)
    return paths
