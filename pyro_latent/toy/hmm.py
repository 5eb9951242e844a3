r"""Exact HMM inference over a compiled joint state space (the ``engine="hmm"`` path).

Both world models are hidden Markov models once their per-step latents are read as one joint state
``s ∈ {0..S-1}``: an initial distribution ``π``, a transition ``P`` (the product of the model's
CPTs) and per-step log-likelihoods ``ℓ_t(s) = log p(o_t | s)``.  Everything here works in log
space, so no weight underflows however small the observation noise or long the sequence:

    log α_0 = log π + ℓ_0
    log α_t(s') = logsumexp_s [log α_{t-1}(s) + log P(s, s')] + ℓ_t(s')
    log β_{T-1} = 0
    log β_t(s) = logsumexp_{s'} [log P(s, s') + ℓ_{t+1}(s') + log β_{t+1}(s')]

    log p(o) = logsumexp_s log α_{T-1}(s),      p(s_t | o) = exp(log α_t + log β_t - log p(o)).

The strip world's dynamics are deterministic, so on the valid states ``P`` is a permutation and
each ``logsumexp`` has a single term: the recursion is one gather per step, ``O(B·T·S)``.  Any
other ``P`` takes the dense route, ``O(B·T·S²)`` in chunks of sequences.

A step with ``logsumexp_s log α_t(s) = -∞`` makes the whole sequence impossible; its index is
returned so that callers can say where the observations stopped making sense.

:class:`CompiledHMM` takes the logs and checks the permutation once, when a model is built.
"""

from __future__ import annotations

import torch

_CHUNK = 256  # sequences per dense [B, S, S] step


class CompiledHMM:
    """``π [S]``, ``P [S, S]`` and emissions ``E [S, n, 3]`` prepared for log-space queries."""

    def __init__(self, init: torch.Tensor, trans: torch.Tensor, emission: torch.Tensor):
        self.num_states, self.n_cells, self.num_symbols = emission.shape
        self.log_init = init.log()
        self.log_trans = trans.log()
        ones = trans == 1
        self.is_permutation = bool(
            ((trans == 0) | ones).all() and (ones.sum(0) == 1).all() and (ones.sum(1) == 1).all()
        )
        if self.is_permutation:
            self.successor = ones.long().argmax(1)  # s -> s'
            self.predecessor = ones.long().argmax(0)  # s' -> s
        # ℓ_t(s) = Σ_k log E[s, k, o_tk] as one-hot products: the finite part of log E, and a
        # count of cells that s cannot show (E = 0), so that 0 · log 0 never makes NaN.
        impossible = emission == 0
        finite_log = torch.where(impossible, torch.zeros_like(emission), emission.log())
        width = self.n_cells * self.num_symbols
        self._finite_log = finite_log.reshape(self.num_states, width).T.contiguous()
        self._blocked = impossible.to(emission.dtype).reshape(self.num_states, width).T.contiguous()

    def log_likelihood(self, obs: torch.Tensor) -> torch.Tensor:
        """``ℓ_t(s)`` as ``[B, T, S]`` for ``obs [B, T, n]``; memory ``O(B·T·S)``."""
        one_hot = torch.nn.functional.one_hot(obs, self.num_symbols)
        one_hot = one_hot.to(self._finite_log.dtype).reshape(*obs.shape[:-1], -1)
        log_lik = one_hot @ self._finite_log
        return log_lik.masked_fill((one_hot @ self._blocked) > 0, -float("inf"))

    def _push(self, log_alpha: torch.Tensor) -> torch.Tensor:
        """``logsumexp_s log α(s) + log P(s, ·)`` for ``[B, S]``."""
        if self.is_permutation:
            return log_alpha[:, self.predecessor]
        return torch.cat(
            [
                torch.logsumexp(part.unsqueeze(-1) + self.log_trans, -2)
                for part in log_alpha.split(_CHUNK)
            ]
        )

    def _pull(self, log_message: torch.Tensor) -> torch.Tensor:
        """``logsumexp_{s'} log P(·, s') + m(s')`` for ``[B, S]``."""
        if self.is_permutation:
            return log_message[:, self.successor]
        return torch.cat(
            [
                torch.logsumexp(part.unsqueeze(-2) + self.log_trans, -1)
                for part in log_message.split(_CHUNK)
            ]
        )

    def _forward(self, log_lik: torch.Tensor) -> torch.Tensor:
        log_alpha = torch.empty_like(log_lik)
        log_alpha[:, 0] = self.log_init + log_lik[:, 0]
        for t in range(1, log_lik.shape[1]):
            log_alpha[:, t] = self._push(log_alpha[:, t - 1]) + log_lik[:, t]
        return log_alpha

    def forward_backward(
        self, log_lik: torch.Tensor, smooth: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """Exact evidence and smoothed marginals from ``log_lik [B, T, S]``.

        Returns ``(log_evidence [B], marginals [B, T, S] or None, first_impossible [B])`` where
        ``first_impossible`` is the first step with zero probability, or ``-1``.  Marginals of
        impossible sequences are set to zero.
        """
        B, T, S = log_lik.shape
        log_alpha = self._forward(log_lik)
        step_mass = torch.logsumexp(log_alpha, -1)  # [B, T]; -inf from the first impossible step
        dead = torch.isneginf(step_mass)
        first = torch.where(dead.any(-1), dead.float().argmax(-1), torch.full((B,), -1))
        log_evidence = step_mass[:, -1]
        if not smooth:
            return log_evidence, None, first
        log_beta = torch.zeros_like(log_lik)
        for t in range(T - 2, -1, -1):
            log_beta[:, t] = self._pull(log_lik[:, t + 1] + log_beta[:, t + 1])
        possible = first < 0
        log_z = torch.where(possible, log_evidence, torch.zeros_like(log_evidence))
        marginals = (log_alpha + log_beta - log_z.view(B, 1, 1)).exp()
        marginals = marginals.masked_fill(~possible.view(B, 1, 1), 0.0)
        return log_evidence, marginals, first

    def viterbi(self, log_lik: torch.Tensor) -> torch.Tensor:
        """Most probable state paths ``[B, T]`` (max-product; ties go to the lowest index).

        ``δ_0 = log π + ℓ_0``, ``δ_t(s') = max_s δ_{t-1}(s) + log P(s, s') + ℓ_t(s')``, then
        backtracking.  Sequences of probability zero get an arbitrary path: callers check first.
        """
        if log_lik.shape[0] > _CHUNK:
            return torch.cat([self.viterbi(part) for part in log_lik.split(_CHUNK)])
        B, T, S = log_lik.shape
        delta = self.log_init + log_lik[:, 0]
        back = torch.empty(B, T, S, dtype=torch.long)
        for t in range(1, T):
            delta, back[:, t] = (delta.unsqueeze(-1) + self.log_trans).max(-2)
            delta = delta + log_lik[:, t]
        path = torch.empty(B, T, dtype=torch.long)
        path[:, T - 1] = delta.argmax(-1)
        for t in range(T - 1, 0, -1):
            path[:, t - 1] = back[:, t].gather(-1, path[:, t : t + 1]).squeeze(-1)
        return path

    def sample_paths(
        self,
        log_lik: torch.Tensor,
        num_samples: int,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Joint posterior paths ``[num_samples, B, T]`` by forward filtering, backward sampling:
        ``s_{T-1} ~ α_{T-1}``, then ``s_t ~ α_t(s) P(s, s_{t+1})``, all from log weights."""
        B, T, S = log_lik.shape
        log_alpha = self._forward(log_lik)

        def draw(logits: torch.Tensor) -> torch.Tensor:  # [N, B, S] -> [N, B]
            probs = (logits - logits.max(-1, keepdim=True).values).exp().reshape(-1, S)
            return torch.multinomial(probs, 1, generator=generator).view(num_samples, B)

        paths = torch.empty(num_samples, B, T, dtype=torch.long)
        paths[:, :, T - 1] = draw(log_alpha[:, T - 1].expand(num_samples, B, S))
        log_trans_t = self.log_trans.T
        for t in range(T - 2, -1, -1):
            paths[:, :, t] = draw(log_alpha[:, t] + log_trans_t[paths[:, :, t + 1]])
        return paths
