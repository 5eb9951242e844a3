r"""Exact HMM inference over a compiled joint state space (the ``engine="hmm"`` path).

Both world models are hidden Markov models once their per-step latents are read as one joint state
``s ∈ {0..S-1}``: an initial distribution ``π``, a transition ``P`` (the product of the model's
CPTs) and per-step log-likelihoods ``ℓ_t(s) = log p(o_t | s) = Σ_k log E[s, k, o_tk]``.
Everything here works in log space, so no weight underflows however small the observation noise or
long the sequence:

    log α_0 = log π + ℓ_0
    log α_t(s') = logsumexp_s [log α_{t-1}(s) + log P(s, s')] + ℓ_t(s')
    log β_{T-1} = 0
    log β_t(s) = logsumexp_{s'} [log P(s, s') + ℓ_{t+1}(s') + log β_{t+1}(s')]

    log p(o) = logsumexp_s log α_{T-1}(s),      p(s_t | o) = exp(log α_t + log β_t - log p(o)).

Viterbi replaces ``logsumexp`` by ``max`` in the forward pass (``δ_t``) and backtracks; forward
filtering, backward sampling (FFBS) draws ``s_{T-1} ~ α_{T-1}``, then
``s_t ~ α_t(s) P(s, s_{t+1})``.  For a general ``P`` these are the dense route: ``O(B·T·S²)``,
step by step, in chunks of sequences.

**The permutation fast path.**  The strip world's dynamics are deterministic, so on the valid
states ``P`` is a permutation ``σ``: ``P(s, s') = 1`` iff ``s' = σ(s)``.  Every sum and max above
then has a single term, and the chain is a mixture of ``S`` deterministic trajectories
``s_t = σ^t(s_0)``, one per initial state.  Along the trajectory of ``s_0``

    log α_t(σ^t(s_0)) = log π(s_0) + Σ_{k≤t} ℓ_k(σ^k(s_0))     (a cumulative sum over t)
    log β_t(σ^t(s_0)) = Σ_{t<k<T} ℓ_k(σ^k(s_0))

so ``α_t β_t`` does not depend on ``t``: ``p(s_t = σ^t(s_0) | o) = w(s_0)``, the posterior weight
``w(s_0) ∝ α_{T-1}(σ^{T-1}(s_0))`` of the whole trajectory, and ``p(s_t = s | o) = w(σ^{-t}(s))``.
Only one path of nonzero prior probability ends in each state at each step, so max-product equals
sum-product (``δ_t = log α_t``) and Viterbi is the trajectory through ``argmax_s α_{T-1}(s)``:
backtracking is ``s_{t-1} = σ^{-1}(s_t)``.
In FFBS the weight ``α_t(s) P(s, s_{t+1})`` has one nonzero term, ``s = σ^{-1}(s_{t+1})``, so the
draw of ``s_{T-1}`` fixes the whole path and the sampled paths are still exact posterior draws.
The powers ``σ^t`` and ``σ^{-t}`` are read off the cycles of ``σ`` (``σ^t(c_i) = c_{(i+t) mod |c|}``
on a cycle ``c``) and cached, so a query is a few gathers over ``[B, T, S]`` and one cumulative
sum: ``O(B·T·S)`` with no Python loop over ``t``.

A step with ``logsumexp_s log α_t(s) = -∞`` makes the whole sequence impossible; its index is
returned so that callers can say where the observations stopped making sense.

:class:`CompiledHMM` takes the logs and checks the permutation once, when a model is built.
"""

from __future__ import annotations

import torch

_CHUNK = 256  # sequences per dense [B, S, S] step


def _cycles(successor: list[int]) -> tuple[list[int], list[int], list[int], list[int]]:
    """The cycles of a permutation laid end to end: ``(order, start, length, position)`` with
    ``s = order[start[s] + position[s]]`` on a cycle of ``length[s]`` states."""
    S = len(successor)
    order: list[int] = []
    start, length, position = [0] * S, [0] * S, [0] * S
    seen = [False] * S
    for s in range(S):
        cycle = []
        while not seen[s]:
            seen[s] = True
            cycle.append(s)
            s = successor[s]
        for i, u in enumerate(cycle):
            start[u], length[u], position[u] = len(order), len(cycle), i
        order.extend(cycle)
    return order, start, length, position


class CompiledHMM:
    """``π [S]``, ``P [S, S]`` and emissions ``E [S, n, 3]`` prepared for log-space queries.

    ``fast_path=False`` keeps the dense route even when ``P`` is a permutation (to check one
    route against the other); ``self.fast_path`` says which route the queries take.
    """

    def __init__(
        self,
        init: torch.Tensor,
        trans: torch.Tensor,
        emission: torch.Tensor,
        fast_path: bool = True,
    ):
        self.n_states, self.n_cells, self.n_symbols = emission.shape
        self.log_init = init.log()
        self.log_trans = trans.log()
        ones = trans == 1
        self.is_permutation = bool(
            ((trans == 0) | ones).all() and (ones.sum(0) == 1).all() and (ones.sum(1) == 1).all()
        )
        self.fast_path = self.is_permutation and fast_path
        if self.is_permutation:
            self.successor = ones.long().argmax(1)  # s -> s'
            self.predecessor = ones.long().argmax(0)  # s' -> s
            order, start, length, position = _cycles(self.successor.tolist())
            self._cycle_order = torch.tensor(order)
            self._cycle_start = torch.tensor(start)
            self._cycle_length = torch.tensor(length)
            self._cycle_position = torch.tensor(position)
            self._forward_orbit = self._backward_orbit = torch.empty(0, self.n_states).long()
            self._orbits_for(1)
        # ℓ_t(s) = Σ_k log E[s, k, o_tk] is a sum of n rows of log E, one row per (cell, symbol):
        # an embedding_bag sum.  A symbol that s cannot show (E = 0) adds -inf, never NaN (a one-hot
        # product would meet 0 · log 0), and memory stays O(B·T·S).
        self._log_emission_rows = (
            emission.log().permute(1, 2, 0).reshape(self.n_cells * self.n_symbols, -1)
        ).contiguous()
        self._cell_offset = torch.arange(self.n_cells) * self.n_symbols

    # ------------------------------------------------------------------ shared
    def log_likelihood(self, obs: torch.Tensor) -> torch.Tensor:
        """``ℓ_t(s)`` as ``[B, T, S]`` for ``obs [B, T, n]``; memory ``O(B·T·S)``."""
        rows = (obs + self._cell_offset).reshape(-1, self.n_cells)
        log_lik = torch.nn.functional.embedding_bag(rows, self._log_emission_rows, mode="sum")
        return log_lik.view(*obs.shape[:-1], self.n_states)

    @staticmethod
    def _first_impossible(dead: torch.Tensor) -> torch.Tensor:
        """First step of ``dead [B, T]`` (zero probability from there on), or ``-1``."""
        return dead.to(torch.uint8).argmax(-1).masked_fill(~dead.any(-1), -1)

    def forward_backward(
        self, log_lik: torch.Tensor, smooth: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """Exact evidence and smoothed marginals from ``log_lik [B, T, S]``.

        Returns ``(log_evidence [B], marginals [B, T, S] or None, first_impossible [B])`` where
        ``first_impossible`` is the first step with zero probability, or ``-1``.  Marginals of
        impossible sequences are set to zero.
        """
        if self.fast_path:
            return self._trajectory_forward_backward(log_lik, smooth)
        return self._dense_forward_backward(log_lik, smooth)

    def viterbi(self, log_lik: torch.Tensor) -> torch.Tensor:
        """Most probable state paths ``[B, T]`` (max-product; ties go to the lowest index).

        ``δ_0 = log π + ℓ_0``, ``δ_t(s') = max_s δ_{t-1}(s) + log P(s, s') + ℓ_t(s')``, then
        backtracking.  Sequences of probability zero get an arbitrary path: callers check first.
        """
        if self.fast_path:
            return self._trajectory_viterbi(log_lik)
        return self._dense_viterbi(log_lik)

    def sample_paths(
        self,
        log_lik: torch.Tensor,
        n_samples: int,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Joint posterior paths ``[n_samples, B, T]`` by forward filtering, backward sampling:
        ``s_{T-1} ~ α_{T-1}``, then ``s_t ~ α_t(s) P(s, s_{t+1})``, all from log weights.
        Sequences of probability zero raise inside ``torch.multinomial``: callers check first."""
        if self.fast_path:
            return self._trajectory_sample_paths(log_lik, n_samples, generator)
        return self._dense_sample_paths(log_lik, n_samples, generator)

    def trajectories(self, start: torch.Tensor, T: int) -> torch.Tensor:
        """The deterministic paths ``σ^t(s_0)``, ``t < T``, as ``[..., T]`` from ``start [...]``.

        Only for a permutation ``P``; one gather from the cached powers of ``σ``."""
        if not self.is_permutation:
            raise ValueError("trajectories need a permutation transition")
        self._orbits_for(T)
        return self._forward_orbit[:T].T[start]

    # ------------------------------------------------------------------ permutation fast path
    def _orbits_for(self, T: int) -> None:
        """Cache ``σ^t(s)`` and ``σ^{-t}(s)`` as ``[T', S]`` for some ``T' ≥ T``."""
        cached = self._forward_orbit.shape[0]
        if cached >= T:
            return
        T = max(T, 2 * cached)  # doubling: a run of growing T recomputes O(log T) times
        t = torch.arange(T).unsqueeze(-1)
        start, length, position = self._cycle_start, self._cycle_length, self._cycle_position
        self._forward_orbit = self._cycle_order[start + (position + t) % length]  # σ^t(s)
        self._backward_orbit = self._cycle_order[start + (position - t) % length]  # σ^{-t}(s)
        # flat indices of ℓ_t(σ^t(s_0)) in a [T, S] block, for one gather per query
        self._flat_orbit = (t * self.n_states + self._forward_orbit).flatten()

    def _trajectory_log_alpha(self, log_lik: torch.Tensor) -> torch.Tensor:
        """``log α_t(σ^t(s_0))`` as ``[B, T, S]`` indexed by the initial state ``s_0``.

        The additions are those of the recursion, in the same order (``cumsum`` is sequential),
        so the numbers agree bit for bit with the dense route on a permutation."""
        B, T, S = log_lik.shape
        self._orbits_for(T)
        index = self._flat_orbit[: T * S].expand(B, -1)
        along = log_lik.reshape(B, T * S).gather(1, index).view(B, T, S)
        along[:, 0] += self.log_init
        return along.cumsum_(1)

    def _trajectory_forward_backward(self, log_lik: torch.Tensor, smooth: bool):
        B, T, S = log_lik.shape
        log_alpha = self._trajectory_log_alpha(log_lik)
        # A step is impossible when every trajectory is dead by then.
        first = self._first_impossible(torch.isneginf(log_alpha.amax(-1)))
        log_evidence = torch.logsumexp(log_alpha[:, -1], -1)
        if not smooth:
            return log_evidence, None, first
        # w(s_0), placed at σ^t(s_0) for every t; impossible sequences have w = exp(-inf) = 0.
        log_z = log_evidence.masked_fill(first >= 0, 0.0)
        weight = (log_alpha[:, -1] - log_z.unsqueeze(-1)).exp()
        index = self._backward_orbit[:T].reshape(1, T * S).expand(B, -1)
        marginals = weight.gather(1, index).view(B, T, S)
        return log_evidence, marginals, first

    def _trajectory_end(self, log_lik: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``log α_{T-1}(s)`` over end states ``s`` ``[B, S]``, and ``σ^{-(T-1)}`` ``[S]``."""
        T = log_lik.shape[1]
        log_alpha = self._trajectory_log_alpha(log_lik)
        to_start = self._backward_orbit[T - 1]
        return log_alpha[:, -1, to_start], to_start

    def _trajectory_viterbi(self, log_lik: torch.Tensor) -> torch.Tensor:
        delta, to_start = self._trajectory_end(log_lik)  # δ_{T-1} = log α_{T-1}
        start = to_start[delta.argmax(-1)]  # argmax breaks ties at the lowest end state
        return self.trajectories(start, log_lik.shape[1])

    def _trajectory_sample_paths(self, log_lik, n_samples, generator):
        log_alpha, to_start = self._trajectory_end(log_lik)
        probs = (log_alpha - log_alpha.max(-1, keepdim=True).values).exp()
        end = torch.multinomial(probs, n_samples, replacement=True, generator=generator)
        return self.trajectories(to_start[end.T], log_lik.shape[1])  # [N, B, T]

    # ------------------------------------------------------------------ dense route
    def _push(self, log_alpha: torch.Tensor) -> torch.Tensor:
        """``logsumexp_s log α(s) + log P(s, ·)`` for ``[B, S]``."""
        return torch.cat(
            [
                torch.logsumexp(part.unsqueeze(-1) + self.log_trans, -2)
                for part in log_alpha.split(_CHUNK)
            ]
        )

    def _pull(self, log_message: torch.Tensor) -> torch.Tensor:
        """``logsumexp_{s'} log P(·, s') + m(s')`` for ``[B, S]``."""
        return torch.cat(
            [
                torch.logsumexp(part.unsqueeze(-2) + self.log_trans, -1)
                for part in log_message.split(_CHUNK)
            ]
        )

    def _forward(self, log_lik: torch.Tensor) -> torch.Tensor:
        log_alpha = [self.log_init + log_lik[:, 0]]
        for t in range(1, log_lik.shape[1]):
            log_alpha.append(self._push(log_alpha[-1]) + log_lik[:, t])
        return torch.stack(log_alpha, 1)

    def _dense_forward_backward(self, log_lik: torch.Tensor, smooth: bool):
        B, T, S = log_lik.shape
        log_alpha = self._forward(log_lik)
        step_mass = torch.logsumexp(log_alpha, -1)  # [B, T]; -inf from the first impossible step
        first = self._first_impossible(torch.isneginf(step_mass))
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

    def _dense_viterbi(self, log_lik: torch.Tensor) -> torch.Tensor:
        if log_lik.shape[0] > _CHUNK:
            return torch.cat([self._dense_viterbi(part) for part in log_lik.split(_CHUNK)])
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

    def _dense_sample_paths(self, log_lik, n_samples, generator):
        B, T, S = log_lik.shape
        log_alpha = self._forward(log_lik)

        def draw(logits: torch.Tensor) -> torch.Tensor:  # [N, B, S] -> [N, B]
            probs = (logits - logits.max(-1, keepdim=True).values).exp().reshape(-1, S)
            return torch.multinomial(probs, 1, generator=generator).view(n_samples, B)

        paths = torch.empty(n_samples, B, T, dtype=torch.long)
        paths[:, :, T - 1] = draw(log_alpha[:, T - 1].expand(n_samples, B, S))
        log_trans_t = self.log_trans.T
        for t in range(T - 2, -1, -1):
            paths[:, :, t] = draw(log_alpha[:, t] + log_trans_t[paths[:, :, t + 1]])
        return paths
