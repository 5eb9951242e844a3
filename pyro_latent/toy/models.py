r"""The two world models of the strip world, as Pyro programs with exact enumeration.

Both are hidden Markov models over the same observations ``o_t ∈ {0,1,2}^n`` (the cells' symbols)
with different latent states.

**Model 1, object-centric.**  Three latents per step, ``blue_t``, ``red_t`` and ``velocity_t``::

    blue_0, velocity_0 ──► blue_1, velocity_1 ──► ...        (the pair moves, bounces)
    red_0 ──────────────► red_1 ─────────────────► ...        (red moves right, wraps)
      │  └──────┐            │  └──────┐
      ▼         ▼            ▼         ▼
    obs_0[k]  (k in the cells plate)   obs_1[k]  ...

**Model 2, local-state-centric.**  One code ``cell_t[i] ∈ {0..5}`` per cell, whose parents are
the radius-1 neighbourhood at ``t-1`` (:mod:`pyro_latent.toy.local_rule`)::

    cell_{t-1}[i-1]  cell_{t-1}[i]  cell_{t-1}[i+1]
               ╲          │          ╱
                ►    cell_t[i]     ◄            obs_t[i] ◄── cell_t[i]

It comes in two exact forms:

* ``form="literal"``: the per-cell Bayes net above, one Pyro site per cell and step.  Enumerating
  it costs up to ``6^{|N(i)|+1}`` per factor and grows quickly with ``n·T``; it is the reference.
  The prior over the first configuration cannot factor over cells (exactly one red, exactly one
  pair), so the ``t = 0`` cells hang from one root site ``config_init`` uniform over the valid
  configurations.
* ``form="compiled"`` (default): one joint site ``config_t`` over the ``S = 2n(n-2)``
  configurations in the support, whose transition is the product of the same per-cell tables.

Every query marginalises the discrete latents exactly.  Two exact engines evaluate the same
program:

* ``engine="enum"`` runs the Pyro program itself:

  - ``log_evidence``: ``log p(o) = log Σ_{l_{0:T-1}} p(l_{0:T-1}, o)``, the tensor contraction that
    :class:`~pyro.infer.TraceEnum_ELBO` performs, kept per sequence (TraceEnum_ELBO's loss is its
    negative sum over the batch);
  - ``marginals``: smoothed ``p(l_t | o)`` from the identity
    ``∂/∂θ_{t,x} log Σ_l p(l, o) exp(Σ_t θ_{t, l_t}) |_{θ=0} = p(l_t = x | o)``, the gradient of
    ``TraceEnum_ELBO.differentiable_loss`` with respect to zero potentials (backpropagation
    through the sum-product is forward–backward, so this is linear in ``T``, unlike
    ``TraceEnum_ELBO.compute_marginals``).

* ``engine="hmm"`` (default) multiplies the same CPTs out into one joint transition and runs a
  scaled forward–backward (:mod:`pyro_latent.toy.hmm`).  Pyro's plated contraction materialises
  each transition factor once per sequence (``S² · B`` numbers per step), which rules out batches
  of thousands; the compiled pass needs ``S · B``.  The tests check the engines against each other
  and against brute force.

``map`` and ``sample_posterior`` use :func:`~pyro.infer.infer_discrete` (temperature 0 and 1)
on the Pyro program with ``engine="enum"``, and Viterbi and forward-filtering backward-sampling
over the compiled tables with ``engine="hmm"``.  The literal form of model 2 always uses
``engine="enum"``: it is the reference that the compiled tables are checked against.

With ``obs_noise = 0`` an observation sequence can have probability zero: ``log_evidence`` then
returns ``-inf`` and posterior queries raise :class:`ImpossibleObservationError`.
"""

from __future__ import annotations

from collections import OrderedDict

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.infer import TraceEnum_ELBO, config_enumerate, infer_discrete
from pyro.ops.contract import contract_to_tensor
from pyro.ops.indexing import Vindex
from pyro.ops.rings import LogRing
from pyro.poutine.util import prune_subsample_sites

from pyro_latent.core.checks import check_long_tensor, check_positive_int
from pyro_latent.toy.hmm import CompiledHMM
from pyro_latent.toy.local_rule import (
    compiled_transition,
    local_tables,
    neighbourhoods,
    support_configurations,
)
from pyro_latent.toy.world import (
    BLANK,
    BLUE,
    CODE_TO_SYMBOL,
    NUM_LOCAL_CODES,
    RED,
    StripWorld,
    check_noise,
)

_MAX_PLATE_NESTING = 2  # sequences (dim -2) and cells (dim -1)


class ImpossibleObservationError(ValueError):
    """An observation sequence has probability zero under a noise-free model."""

    def __init__(self, message: str, sequence: int | None = None, step: int = -1):
        super().__init__(message)
        self.sequence = sequence
        self.step = step

    def __reduce__(self):  # picklable across processes, attributes included
        return type(self), (self.args[0], self.sequence, self.step)


def _empty_guide(*args, **kwargs):
    pass


def _base6(cells: torch.Tensor) -> torch.Tensor:
    """A configuration's cell codes ``[..., n]`` as one base-6 number ``[...]``."""
    powers = NUM_LOCAL_CODES ** torch.arange(cells.shape[-1])
    return (cells * powers).sum(-1)


def _as_cells(latents, n: int) -> torch.Tensor:
    """``latents`` as a long tensor ``[..., n]``; ``ValueError`` for another dtype or shape."""
    cells = check_long_tensor(latents, "cells")
    if cells.dim() == 0 or cells.shape[-1] != n:
        raise ValueError(f"cells must have shape [..., {n}], got {tuple(cells.shape)}")
    return cells


def _categorical(probs: torch.Tensor) -> dist.Categorical:
    # From logits, because torch clamps zero ``probs`` to a tiny positive number: an impossible
    # event must cost -inf, not about -36 nats per factor.
    return dist.Categorical(logits=probs.log())


class _EnumeratedWorldModel:
    """Shared machinery: validation, exact contraction, potentials, infer_discrete."""

    #: latent site base names and their sizes, set by subclasses
    latent_sizes: dict[str, int]

    ENGINES = ("hmm", "enum")

    def __init__(self, world: StripWorld, obs_noise: float = 0.0, engine: str = "hmm"):
        if not isinstance(world, StripWorld):
            raise ValueError(f"world must be a StripWorld, got {type(world).__name__}")
        if engine not in self.ENGINES:
            raise ValueError(f"engine must be one of {self.ENGINES}, got {engine!r}")
        self.world = world
        self.obs_noise = check_noise(obs_noise)
        self.n_cells = world.n_cells
        self.engine = engine

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.world!r}, obs_noise={self.obs_noise}, "
            f"engine={self.engine!r})"
        )

    def compiled_tables(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(init [S], transition [S, S], emission [S, n, 3])`` over the joint state."""
        raise NotImplementedError

    def _compile(self) -> None:
        init, trans, emission = self.compiled_tables()
        self.hmm = CompiledHMM(init, trans, emission)
        # F(k) = p(symbol <= k | state, cell) for k = 0, 1, read by ``sample``
        self._emission_cdf = emission.cumsum(-1)[..., :-1].contiguous()

    @property
    def valid_latents(self) -> torch.Tensor:
        """``[S, d]``: the model's latent of each valid state, in ``world.valid_states()`` order
        (model 1: ``(blue, red, velocity)``; model 2: the cell codes).  Row ``s`` is joint state
        ``s`` of :attr:`hmm`."""
        return self._decode_joint(torch.arange(self.world.n_states))

    def latent_index(self, latents) -> torch.Tensor:
        """Index in ``world.valid_states()`` (the joint state of :attr:`hmm`) of each latent,
        ``[..., d] -> [...]``.

        Raises ``ValueError`` for a latent outside the model's support: a non-integer dtype, a
        wrong last dimension, or a value that is not a valid state (for model 2: a code outside
        ``0..5`` or a configuration that is not the image of a valid state).
        """
        raise NotImplementedError

    def in_support(self, latents) -> torch.Tensor:
        """Boolean mask ``[...]`` of the latents ``[..., d]`` that are valid states; raises only
        on a malformed shape or dtype, never on values."""
        raise NotImplementedError

    def require_permutation(self, purpose: str) -> CompiledHMM:
        """:attr:`hmm`, after checking that its transition is a permutation of the valid states
        (deterministic dynamics), which ``purpose`` relies on; a ``ValueError`` otherwise."""
        if not self.hmm.is_permutation:
            raise ValueError(
                f"{purpose} needs deterministic dynamics, but {type(self).__name__}'s compiled "
                "transition is not a permutation of the valid states"
            )
        return self.hmm

    def _decode_joint(self, index: torch.Tensor) -> torch.Tensor:
        """Joint-state indices ``[..., T]`` -> the model's latent trajectories ``[..., T, ·]``."""
        raise NotImplementedError

    def _joint_to_sites(self, joint: torch.Tensor) -> dict[str, torch.Tensor]:
        """Joint-state marginals ``[B, T, S]`` -> per-site marginals ``{name: [B, T, K]}``."""
        raise NotImplementedError

    def _forward_backward(self, obs: torch.Tensor, smooth: bool):
        return self.hmm.forward_backward(self.hmm.log_likelihood(obs), smooth)

    # ------------------------------------------------------------- the program
    def program(self, obs: torch.Tensor | None, T: int, batch: int, potentials=None):
        """The Pyro program for ``batch`` sequences of length ``T`` (``obs`` ``[B, T, n]``)."""
        raise NotImplementedError

    def _potential(self, potentials, name: str, t: int, value: torch.Tensor) -> None:
        if potentials is not None and name in potentials:
            theta = potentials[name][:, t]  # [B, K]
            seq = torch.arange(theta.shape[0]).unsqueeze(-1)
            pyro.factor(f"potential_{name}_{t}", Vindex(theta)[seq, value])

    def _decode(self, values: dict[str, torch.Tensor], T: int) -> torch.Tensor:
        """Site values (each ``[..., B]`` for one step) -> the model's latent ``[..., B, T, ·]``."""
        raise NotImplementedError

    # ------------------------------------------------------------- validation
    def _prepare(self, obs) -> tuple[torch.Tensor, bool]:
        obs = self.world.check_obs(obs)
        if obs.dim() > 3:
            raise ValueError(f"obs must have shape [T, n] or [B, T, n], got {tuple(obs.shape)}")
        single = obs.dim() == 2
        obs = obs.unsqueeze(0) if single else obs
        if obs.shape[0] == 0:
            raise ValueError("obs is an empty batch (B = 0)")
        return obs, single

    # ------------------------------------------------------------- exact queries
    def _log_evidence(self, obs: torch.Tensor) -> torch.Tensor:
        if self.engine == "hmm":
            return self._forward_backward(obs, smooth=False)[0]
        return self._enum_log_evidence(obs)

    def _enum_log_evidence(self, obs: torch.Tensor) -> torch.Tensor:
        B, T, _ = obs.shape
        with poutine.block():
            enumerated = poutine.enum(self.program, -1 - _MAX_PLATE_NESTING)
            trace = poutine.trace(enumerated).get_trace(obs, T, B)
        trace = prune_subsample_sites(trace)
        trace.compute_log_prob()
        trace.pack_tensors()
        plate_symbols = set(trace.plate_to_symbol.values())
        log_factors: OrderedDict[frozenset, list] = OrderedDict()
        sum_dims = set()
        for node in trace.nodes.values():
            if node["type"] != "sample":
                continue
            ordinal = frozenset(
                trace.plate_to_symbol[f.name]
                for f in node["cond_indep_stack"]
                if f.vectorized and f.size > 1
            )
            log_prob = node["packed"]["log_prob"]
            log_factors.setdefault(ordinal, []).append(log_prob)
            sum_dims.update(set(log_prob._pyro_dims) - plate_symbols)
        target = frozenset({trace.plate_to_symbol["sequences"]}) if B > 1 else frozenset()
        result = contract_to_tensor(log_factors, sum_dims, target_ordinal=target, ring=LogRing())
        # Pyro's log-space einsum floors an empty sum at the dtype's most negative number
        # rather than -inf; no possible sequence comes anywhere near it.
        result = result.reshape(B)
        result = result.masked_fill(result < torch.finfo(result.dtype).min / 2, -float("inf"))
        if self.obs_noise > 0 and bool(torch.isneginf(result).any()):
            # With noise every sequence is possible: -inf can only be underflow inside Pyro's
            # log-space einsum, which multiplies separately shifted exponentials.
            raise FloatingPointError(
                f"engine='enum' underflowed to -inf at obs_noise={self.obs_noise}; "
                "use engine='hmm', which stays in log space throughout"
            )
        return result

    def log_evidence(self, obs: torch.Tensor) -> torch.Tensor:
        """``log p(o)`` per sequence: a scalar for ``[T, n]``, ``[B]`` for ``[B, T, n]``."""
        obs, single = self._prepare(obs)
        result = self._log_evidence(obs)
        return result[0] if single else result

    def _require_possible(self, obs: torch.Tensor, first: torch.Tensor | None = None) -> None:
        if first is None:
            log_z = self._log_evidence(obs)
            impossible = torch.isneginf(log_z).nonzero().flatten()
        else:
            impossible = (first >= 0).nonzero().flatten()
        if len(impossible) == 0:
            return
        b = int(impossible[0])
        step = self._first_impossible_step(obs[b]) if first is None else int(first[b])
        where = f"sequence {b}, " if obs.shape[0] > 1 else ""
        raise ImpossibleObservationError(
            f"{where}step {step}: the observations up to this step have probability zero under "
            f"{type(self).__name__} with obs_noise={self.obs_noise} "
            f"(observed {obs[b, step].tolist()})",
            sequence=b if obs.shape[0] > 1 else None,
            step=step,
        )

    def state_marginals(self, obs: torch.Tensor) -> torch.Tensor:
        """Smoothed joint posterior ``p(l_t = s | o)`` over the valid states, ``[(B,) T, S]``.

        Columns follow ``world.valid_states()`` (for model 2, their ``to_local`` codes).  Both
        models share this state space, so ``p₁(l_t = s | o)`` and ``p₂(l_t = s | o)`` can be
        compared column by column.  Always computed by the compiled forward–backward.
        """
        obs, single = self._prepare(obs)
        _, joint, first = self._forward_backward(obs, smooth=True)
        self._require_possible(obs, first)
        return joint[0] if single else joint

    def _first_impossible_step(self, seq: torch.Tensor) -> int:
        # Impossibility is monotone in the prefix length, so bisect on prefixes.
        lo, hi = 1, seq.shape[0]  # the prefix of length hi is impossible
        while lo < hi:
            mid = (lo + hi) // 2
            if torch.isneginf(self._log_evidence(seq[:mid].unsqueeze(0)))[0]:
                hi = mid
            else:
                lo = mid + 1
        return hi - 1

    def _site_marginals(self, obs: torch.Tensor) -> dict[str, torch.Tensor]:
        """Smoothed marginals ``{name: [B, T, K]}`` of every latent site (validated obs)."""
        if self.engine == "hmm":
            _, joint, first = self._forward_backward(obs, smooth=True)
            self._require_possible(obs, first)
            return self._joint_to_sites(joint)
        self._require_possible(obs)
        return self._enum_site_marginals(obs)

    def _enum_site_marginals(self, obs: torch.Tensor) -> dict[str, torch.Tensor]:
        B, T, _ = obs.shape
        potentials = {
            name: torch.zeros(B, T, size, dtype=torch.float64, requires_grad=True)
            for name, size in self.latent_sizes.items()
        }
        elbo = TraceEnum_ELBO(max_plate_nesting=_MAX_PLATE_NESTING)
        loss = elbo.differentiable_loss(self.program, _empty_guide, obs, T, B, potentials)
        grads = torch.autograd.grad(-loss, list(potentials.values()))
        return dict(zip(potentials, grads, strict=True))

    def _infer_discrete(self, obs, temperature: int, n_samples: int = 1):
        B, T, _ = obs.shape

        def plated(obs):
            with pyro.plate("samples", n_samples, dim=-1 - _MAX_PLATE_NESTING):
                self.program(obs, T, B)

        first_dim = -2 - _MAX_PLATE_NESTING
        decoder = infer_discrete(plated, first_available_dim=first_dim, temperature=temperature)
        trace = prune_subsample_sites(poutine.trace(decoder).get_trace(obs))
        values = {
            name: site["value"].reshape(n_samples, B)
            for name, site in trace.nodes.items()
            if site["type"] == "sample" and not site["is_observed"]
        }
        return self._decode(values, T)  # [n_samples, B, T, ·]

    def map(self, obs: torch.Tensor) -> torch.Tensor:
        """The most probable latent trajectory (``infer_discrete`` at temperature 0)."""
        obs, single = self._prepare(obs)
        if self.engine == "hmm":
            log_lik = self.hmm.log_likelihood(obs)
            _, _, first = self.hmm.forward_backward(log_lik, smooth=False)
            self._require_possible(obs, first)
            latents = self._decode_joint(self.hmm.viterbi(log_lik))
        else:
            self._require_possible(obs)
            latents = self._infer_discrete(obs, temperature=0)[0]
        return latents[0] if single else latents

    def sample_posterior(self, obs: torch.Tensor, n_samples: int) -> torch.Tensor:
        """Joint posterior trajectories ``[n_samples, (B,) T, ·]`` (temperature 1)."""
        check_positive_int(n_samples, "n_samples")
        obs, single = self._prepare(obs)
        if self.engine == "hmm":
            log_lik = self.hmm.log_likelihood(obs)
            _, _, first = self.hmm.forward_backward(log_lik, smooth=False)
            self._require_possible(obs, first)
            latents = self._decode_joint(self.hmm.sample_paths(log_lik, n_samples))
        else:
            self._require_possible(obs)
            latents = self._infer_discrete(obs, temperature=1, n_samples=n_samples)
        return latents[:, 0] if single else latents

    def sample(
        self,
        T: int,
        n_samples: int,
        initial=None,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward samples from the model's own generative process.

        Returns latent trajectories ``[N, T, d]`` in the model's coordinates and observations
        ``[N, T, n]`` (long).  ``initial`` fixes the latent at ``t = 0``: one latent ``[d]`` for
        every sample, or ``[N, d]``, one per sample; by default ``l_0`` is drawn from the prior.
        ``generator`` makes the draws reproducible (the global torch RNG otherwise).

        The draws run on the compiled tables (``s_0 ~ π``, ``s_t ~ P(s_{t-1}, ·)``,
        ``o_{t,k} ~ E[s_t, k, ·]``); the tests check them against the Pyro program and against
        the exact ``log_evidence``.
        """
        T = check_positive_int(T, "T")
        N = check_positive_int(n_samples, "n_samples")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise ValueError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        hmm = self.hmm
        if initial is None:
            start = torch.multinomial(hmm.log_init.exp(), N, replacement=True, generator=generator)
        else:
            start = self._initial_index(initial, N)
        states = torch.empty(N, T, dtype=torch.long)
        states[:, 0] = start
        if hmm.is_permutation:
            for t in range(1, T):
                states[:, t] = hmm.successor[states[:, t - 1]]
        else:
            trans = hmm.log_trans.exp()
            for t in range(1, T):
                states[:, t] = torch.multinomial(
                    trans[states[:, t - 1]], 1, generator=generator
                ).squeeze(-1)
        # Inverse-CDF draw of each cell's symbol: symbol k is shown when F(k-1) <= u < F(k).
        # ``>=`` keeps a zero-probability symbol unreachable even for u = 0 exactly.
        u = torch.rand(N, T, self.n_cells, dtype=torch.float64, generator=generator)
        obs = (u.unsqueeze(-1) >= self._emission_cdf[states]).sum(-1)
        return self._decode_joint(states), obs

    def _initial_index(self, initial, n_samples: int) -> torch.Tensor:
        index = self.latent_index(initial)
        if index.dim() == 0:
            return index.expand(n_samples)
        if index.dim() != 1 or index.shape[0] != n_samples:
            shape = tuple(torch.as_tensor(initial).shape)
            raise ValueError(
                f"initial must be one latent [d] or one per sample [n_samples = {n_samples}, "
                f"d], got shape {shape}"
            )
        return index

    def _emission_by_symbol(self) -> torch.Tensor:
        return self.world.emission_probs(self.obs_noise)  # [true symbol, shown symbol]


class ObjectCentricModel(_EnumeratedWorldModel):
    """Model 1: latents ``blue``, ``red``, ``velocity`` per step (see the module docstring).

    Latent trajectories are ``[T, 3]`` rows ``(blue, red, velocity_index)`` like the world's
    states; ``marginals`` returns ``{"blue": [T, n], "red": [T, n], "velocity": [T, 2]}``.
    """

    def __init__(self, world: StripWorld, obs_noise: float = 0.0, engine: str = "hmm"):
        super().__init__(world, obs_noise, engine)
        n = self.n_cells
        self.latent_sizes = {"blue": n, "red": n, "velocity": 2}
        states = world.valid_states()
        b, r, v = states.unbind(-1)
        # Initial CPTs: the uniform prior over valid states, factored as p(b) p(v | b) p(r).
        pair = torch.zeros(n, 2, dtype=torch.float64)
        pair.index_put_((b, v), torch.ones(len(b), dtype=torch.float64), accumulate=True)
        self.blue_init = pair.sum(-1) / pair.sum()
        pair[n - 1] = 1.0  # blue = n-1 has zero prior mass; any proper row will do
        self.velocity_init = pair / pair.sum(-1, keepdim=True)
        self.red_init = torch.full((n,), 1.0 / n, dtype=torch.float64)
        # Transition CPTs read off world.step; rows of impossible (blue, velocity) are uniform.
        nb, nr, nv = world.step(states).unbind(-1)
        self.blue_trans = torch.full((n, 2, n), 1.0 / n, dtype=torch.float64)
        self.blue_trans[b, v] = torch.nn.functional.one_hot(nb, n).double()
        self.velocity_trans = torch.full((n, 2, 2), 0.5, dtype=torch.float64)
        self.velocity_trans[b, v] = torch.nn.functional.one_hot(nv, 2).double()
        self.red_trans = torch.zeros(n, n, dtype=torch.float64)
        self.red_trans[r, nr] = 1.0
        # Emission p(obs_k | blue, red): the rendered symbol of cell k, then the noise.
        cells = torch.arange(n)
        blue_at = (cells == cells[:, None, None]) | (cells == cells[:, None, None] + 1)
        red_at = cells == cells[None, :, None]
        symbol = torch.where(blue_at, BLUE, torch.where(red_at, RED, BLANK))  # [b, r, k]
        self.emission = self._emission_by_symbol()[symbol]  # [b, r, k, 3]
        self._compile()

    def compiled_tables(self):
        """The CPTs multiplied out over the joint state ``(blue, red, velocity)``, restricted to
        the valid states (the others have zero prior mass and are never reached), in the order
        of ``world.valid_states()``."""
        b, r, v = self.world.valid_states().unbind(-1)
        init = self.blue_init[b] * self.velocity_init[b, v] * self.red_init[r]
        trans = (
            self.blue_trans[b, v][:, b] * self.velocity_trans[b, v][:, v] * self.red_trans[r][:, r]
        )
        mass = trans.sum(-1)
        if not torch.allclose(mass, torch.ones_like(mass)):
            raise RuntimeError("model 1's CPTs leak probability out of the valid states")
        return init, trans, self.emission[b, r]

    def _decode_joint(self, index):
        return self.world.valid_states()[index]

    def latent_index(self, latents) -> torch.Tensor:
        return self.world.state_index(latents)

    def in_support(self, latents) -> torch.Tensor:
        return self.world.is_valid_state(latents)

    def _joint_to_sites(self, joint):
        n = self.n_cells
        b, r, v = self.world.valid_states().unbind(-1)
        out = {}
        for name, value, size in (("blue", b, n), ("red", r, n), ("velocity", v, 2)):
            site = torch.zeros(*joint.shape[:-1], size, dtype=joint.dtype)
            out[name] = site.index_add_(-1, value, joint)
        return out

    @config_enumerate
    def program(self, obs, T, batch, potentials=None):
        cells = torch.arange(self.n_cells)
        blue = red = velocity = None
        cells_plate = pyro.plate("cells", self.n_cells, dim=-1)
        with pyro.plate("sequences", batch, dim=-2):
            for t in pyro.markov(range(T)):
                if t == 0:
                    blue_probs = self.blue_init
                    velocity_probs = None
                    red_probs = self.red_init
                else:
                    blue_probs = Vindex(self.blue_trans)[blue, velocity]
                    velocity_probs = Vindex(self.velocity_trans)[blue, velocity]
                    red_probs = Vindex(self.red_trans)[red]
                new_blue = pyro.sample(f"blue_{t}", _categorical(blue_probs))
                if t == 0:
                    velocity_probs = Vindex(self.velocity_init)[new_blue]
                velocity = pyro.sample(f"velocity_{t}", _categorical(velocity_probs))
                blue = new_blue
                red = pyro.sample(f"red_{t}", _categorical(red_probs))
                self._potential(potentials, "blue", t, blue)
                self._potential(potentials, "red", t, red)
                self._potential(potentials, "velocity", t, velocity)
                with cells_plate:
                    pyro.sample(
                        f"obs_{t}",
                        _categorical(Vindex(self.emission)[blue, red, cells]),
                        obs=None if obs is None else obs[:, t],
                    )

    def _decode(self, values, T):
        return torch.stack(
            [
                torch.stack([values[f"{k}_{t}"] for k in ("blue", "red", "velocity")], -1)
                for t in range(T)
            ],
            -2,
        )

    def marginals(self, obs: torch.Tensor) -> dict[str, torch.Tensor]:
        """Smoothed ``p(blue_t | o)``, ``p(red_t | o)``, ``p(velocity_t | o)``."""
        obs, single = self._prepare(obs)
        out = self._site_marginals(obs)
        return {k: v[0] for k, v in out.items()} if single else out


class LocalStateModel(_EnumeratedWorldModel):
    """Model 2: one local code per cell per step, in a compiled or a literal form.

    Latent trajectories are ``[T, n]`` cell codes; ``marginals`` returns ``{"cells": [T, n, 6]}``.
    """

    FORMS = ("compiled", "literal")

    def __init__(
        self,
        world: StripWorld,
        obs_noise: float = 0.0,
        form: str = "compiled",
        engine: str | None = None,
    ):
        if form not in self.FORMS:
            raise ValueError(f"form must be one of {self.FORMS}, got {form!r}")
        if form == "literal" and engine == "hmm":
            raise ValueError(
                "the literal per-cell program is the enumeration reference; it runs with "
                "engine='enum' (engine='hmm' would evaluate the compiled tables instead)"
            )
        if engine is None:
            engine = "enum" if form == "literal" else "hmm"
        super().__init__(world, obs_noise, engine)
        self.form = form
        self.tables = local_tables(world)
        self.parents = neighbourhoods(self.n_cells)
        self.configs = support_configurations(world)  # [S, n]
        S = self.configs.shape[0]
        self.init = torch.full((S,), 1.0 / S, dtype=torch.float64)
        self.code_emission = self._emission_by_symbol()[CODE_TO_SYMBOL]  # [6, 3]
        self.transition = compiled_transition(world, self.tables)  # [S, S]
        self.config_emission = self.code_emission[self.configs]  # [S, n, 3]
        self._support_keys = _base6(self.configs).sort().values
        self._compile()
        if form == "compiled":
            self.latent_sizes = {"config": S}
        else:
            self.latent_sizes = {f"cell_{i}": NUM_LOCAL_CODES for i in range(self.n_cells)}
            self.init_cells = torch.nn.functional.one_hot(self.configs, NUM_LOCAL_CODES).double()

    def __repr__(self) -> str:
        return f"{super().__repr__()[:-1]}, form={self.form!r})"

    def compiled_tables(self):
        """Uniform prior, the product-of-local-tables transition and the emission over the
        support configurations."""
        return self.init, self.transition, self.config_emission

    def _decode_joint(self, index):
        return self.configs[index]

    def latent_index(self, latents) -> torch.Tensor:
        # from_local validates dtype, shape, code range and the one-red / one-pair rules, vectorised
        return self.world.state_index(self.world.from_local(latents))

    def in_support(self, latents) -> torch.Tensor:
        latents = _as_cells(latents, self.n_cells)
        in_range = ((latents >= 0) & (latents < NUM_LOCAL_CODES)).all(-1)
        # A configuration is in the support when its base-6 key is one of the S support keys.
        keys = self._support_keys
        key = _base6(latents.clamp(0, NUM_LOCAL_CODES - 1))
        found = keys[torch.searchsorted(keys, key).clamp(max=len(keys) - 1)] == key
        return in_range & found

    def _joint_to_sites(self, joint):
        return {"config": joint}

    def program(self, obs, T, batch, potentials=None):
        if self.form == "compiled":
            return self._compiled_program(obs, T, batch, potentials)
        return self._literal_program(obs, T, batch, potentials)

    @config_enumerate
    def _compiled_program(self, obs, T, batch, potentials=None):
        cells = torch.arange(self.n_cells)
        config = None
        cells_plate = pyro.plate("cells", self.n_cells, dim=-1)
        with pyro.plate("sequences", batch, dim=-2):
            for t in pyro.markov(range(T)):
                probs = self.init if t == 0 else Vindex(self.transition)[config]
                config = pyro.sample(f"config_{t}", _categorical(probs))
                self._potential(potentials, "config", t, config)
                with cells_plate:
                    pyro.sample(
                        f"obs_{t}",
                        _categorical(Vindex(self.config_emission)[config, cells]),
                        obs=None if obs is None else obs[:, t],
                    )

    @config_enumerate
    def _literal_program(self, obs, T, batch, potentials=None):
        n = self.n_cells
        with pyro.plate("sequences", batch, dim=-2):
            root = pyro.sample("config_init", _categorical(self.init))
            previous = None
            for t in pyro.markov(range(T)):
                current = []
                for i in range(n):
                    if t == 0:
                        probs = self.init_cells[root, i]
                    else:
                        parents = tuple(previous[j] for j in self.parents[i])
                        probs = Vindex(self.tables[i])[parents]
                    cell = pyro.sample(f"cell_{t}_{i}", _categorical(probs))
                    self._potential(potentials, f"cell_{i}", t, cell)
                    pyro.sample(
                        f"obs_{t}_{i}",
                        _categorical(self.code_emission[cell]),
                        obs=None if obs is None else obs[:, t, i : i + 1],
                    )
                    current.append(cell)
                previous = current

    def _decode(self, values, T):
        if self.form == "compiled":
            index = torch.stack([values[f"config_{t}"] for t in range(T)], -1)
            return self.configs[index]
        return torch.stack(
            [
                torch.stack([values[f"cell_{t}_{i}"] for i in range(self.n_cells)], -1)
                for t in range(T)
            ],
            -2,
        )

    def marginals(self, obs: torch.Tensor) -> dict[str, torch.Tensor]:
        """Smoothed ``p(cell_t[i] = code | o)`` as ``{"cells": [(B,) T, n, 6]}``."""
        obs, single = self._prepare(obs)
        out = self._site_marginals(obs)
        if self.form == "compiled":
            one_hot = torch.nn.functional.one_hot(self.configs, NUM_LOCAL_CODES).double()
            cells = torch.einsum("bts,snc->btnc", out["config"], one_hot)
        else:
            cells = torch.stack([out[f"cell_{i}"] for i in range(self.n_cells)], -2)
        return {"cells": cells[0] if single else cells}
