"""The strip world: ``n`` cells, one red circle, one pair of blue circles.

The rules are fixed by ``shared/design/strip-world.md`` (they win over the post).  A *state* is a
triple ``(b, r, v)``: the left blue circle's cell ``b ∈ {0..n-2}``, the red cell ``r ∈ {0..n-1}``
and the velocity index ``v ∈ {0, 1}`` (``0 ↔ -1`` left, ``1 ↔ +1`` right).  One step is::

    r ← (r + 1) mod n
    b ← b + v                      (v as ±1)
    v ← -v   if b == 0 or b + 1 == n - 1      (the pair bounces as it touches a wall)

so a pair against a wall always points away from it, and the states ``(0, ·, left)`` and
``(n-2, ·, right)`` are excluded.  That leaves ``2n(n-2)`` valid states (160 for ``n = 10``) on
which the step is a permutation with period ``lcm(n, 2(n-2))`` (80 for ``n = 10``).

Rendering shows each cell as a symbol, ``0`` blank, ``1`` blue, ``2`` red, with blue drawn over
red.  Observation noise ``ε`` keeps each symbol with probability ``1-ε`` and replaces it by each of
the other two with probability ``ε/2``, independently per cell.

Model 2 of the post describes the same world by a *local state* per cell (``LOCAL_CODES``)::

    code  0: empty  1: red  2: blue←  3: red+blue←  4: blue→  5: red+blue→
"""

from __future__ import annotations

import math
from functools import cached_property

import torch

from pyro_latent.core.checks import (
    check_int,
    check_long_tensor,
    check_positive_int,
    check_probability,
)

BLANK, BLUE, RED = 0, 1, 2
SYMBOLS = ("blank", "blue", "red")
LEFT, RIGHT = 0, 1
VELOCITY_VALUES = (-1, +1)
LOCAL_CODES = (
    "no red, no blue",
    "red, no blue",
    "no red, blue moving left",
    "red, blue moving left",
    "no red, blue moving right",
    "red, blue moving right",
)
NUM_LOCAL_CODES = len(LOCAL_CODES)

# local code -> (has red, has blue, velocity index or -1); and the observed symbol of each code.
_CODE_RED = torch.tensor([0, 1, 0, 1, 0, 1], dtype=torch.bool)
_CODE_BLUE = torch.tensor([0, 0, 1, 1, 1, 1], dtype=torch.bool)
_CODE_VELOCITY = torch.tensor([-1, -1, LEFT, LEFT, RIGHT, RIGHT])
CODE_TO_SYMBOL = torch.tensor([BLANK, RED, BLUE, BLUE, BLUE, BLUE])


class StripWorld:
    """The strip world with ``n_cells >= 4`` cells (default 10).

    All methods are vectorised over leading batch dimensions and validate their input: anything
    that is not a valid state, configuration or observation gets a :class:`ValueError` that names
    the problem.

    ``symbols`` and ``local_codes`` name the observation symbols and model 2's cell codes, by
    code (:data:`SYMBOLS`, :data:`LOCAL_CODES`).
    """

    symbols = SYMBOLS
    local_codes = LOCAL_CODES

    def __init__(self, n_cells: int = 10):
        # four cells are the fewest for which a pair can bounce with red beside it
        self.n_cells = check_int(n_cells, "n_cells", minimum=4)

    def __repr__(self) -> str:
        return f"StripWorld(n_cells={self.n_cells})"

    # ----------------------------------------------------------------- the state space
    @cached_property
    def _valid_states(self) -> torch.Tensor:
        n = self.n_cells
        rows = [
            (b, r, v)
            for b in range(n - 1)
            for r in range(n)
            for v in (LEFT, RIGHT)
            if not (b == 0 and v == LEFT) and not (b == n - 2 and v == RIGHT)
        ]
        return torch.tensor(rows, dtype=torch.long)

    def valid_states(self) -> torch.Tensor:
        """All valid states as a ``LongTensor [S, 3]`` of ``(blue, red, velocity_index)``,
        in lexicographic order; ``S = 2n(n-2)``."""
        return self._valid_states.clone()

    @property
    def n_states(self) -> int:
        return self._valid_states.shape[0]

    @cached_property
    def period(self) -> int:
        """Period of the step map: red cycles in ``n`` steps, the pair in ``2(n-2)``."""
        n = self.n_cells
        return math.lcm(n, 2 * (n - 2))

    @cached_property
    def _index_table(self) -> torch.Tensor:
        n = self.n_cells
        table = torch.full(((n - 1) * n * 2,), -1, dtype=torch.long)
        b, r, v = self._valid_states.unbind(-1)
        table[(b * n + r) * 2 + v] = torch.arange(self.n_states)
        return table

    def state_index(self, states: torch.Tensor) -> torch.Tensor:
        """Index of each state in :meth:`valid_states` (``[..., 3] -> [...]``)."""
        b, r, v = self.check_states(states).unbind(-1)
        return self._index_table[(b * self.n_cells + r) * 2 + v]

    def is_valid_state(self, states: torch.Tensor) -> torch.Tensor:
        """Boolean mask of valid states (``[..., 3] -> [...]``); raises only on a malformed
        shape or dtype, never on values."""
        b, r, v = _as_state_tensor(states).unbind(-1)
        n = self.n_cells
        ok = (b >= 0) & (b <= n - 2) & (r >= 0) & (r < n) & ((v == LEFT) | (v == RIGHT))
        ok &= ~((b == 0) & (v == LEFT)) & ~((b == n - 2) & (v == RIGHT))
        return ok

    def check_states(self, states) -> torch.Tensor:
        """Return ``states`` as a ``LongTensor [..., 3]`` or raise a ``ValueError`` naming the
        first invalid one."""
        states = _as_state_tensor(states)
        ok = self.is_valid_state(states)
        if not bool(ok.all()):
            bad = states[~ok][0].tolist()
            b, r, v = bad
            n = self.n_cells
            if not 0 <= b <= n - 2:
                why = f"blue={b} is outside 0..{n - 2}"
            elif not 0 <= r < n:
                why = f"red={r} is outside 0..{n - 1}"
            elif v not in (LEFT, RIGHT):
                why = f"velocity_index={v} is not 0 (left) or 1 (right)"
            else:
                why = "the pair points into the wall it touches"
            raise ValueError(f"invalid state {tuple(bad)}: {why}")
        return states

    # ----------------------------------------------------------------- dynamics
    def step(self, states: torch.Tensor) -> torch.Tensor:
        """One step of the world (``[..., 3] -> [..., 3]``)."""
        states = self.check_states(states)
        b, r, v = states.unbind(-1)
        n = self.n_cells
        b = b + 2 * v - 1
        bounce = (b == 0) | (b == n - 2)
        v = torch.where(bounce, 1 - v, v)
        r = (r + 1) % n
        return torch.stack([b, r, v], dim=-1)

    def rollout(self, state: torch.Tensor, T: int) -> torch.Tensor:
        """The states at steps ``0..T-1`` starting from ``state`` (``[..., 3] -> [..., T, 3]``)."""
        check_positive_int(T, "T")
        states = [self.check_states(state)]
        for _ in range(T - 1):
            states.append(self.step(states[-1]))
        return torch.stack(states, dim=-2)

    # ----------------------------------------------------------------- views of a state
    def render(self, states: torch.Tensor) -> torch.Tensor:
        """Symbols shown by each cell (``[..., 3] -> [..., n]``); blue hides red."""
        return CODE_TO_SYMBOL[self.to_local(states)]

    def to_local(self, states: torch.Tensor) -> torch.Tensor:
        """Model 2's local cell codes of each state (``[..., 3] -> [..., n]``)."""
        states = self.check_states(states)
        b, r, v = (x.unsqueeze(-1) for x in states.unbind(-1))
        cells = torch.arange(self.n_cells)
        blue = (cells == b) | (cells == b + 1)
        red = cells == r
        return red.long() + blue.long() * (2 + 2 * v)

    def from_local(self, cells: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`to_local` (``[..., n] -> [..., 3]``).

        Raises ``ValueError`` for a configuration that is not the image of a valid state: codes
        outside ``0..5``, not exactly one red, not exactly two adjacent blue cells, two blue
        cells that disagree on the velocity, or a pair pointing into the wall.
        """
        cells = check_long_tensor(cells, "cells")
        n = self.n_cells
        if cells.dim() == 0 or cells.shape[-1] != n:
            raise ValueError(f"cells must have shape [..., {n}], got {tuple(cells.shape)}")
        if bool(((cells < 0) | (cells >= NUM_LOCAL_CODES)).any()):
            bad = cells[(cells < 0) | (cells >= NUM_LOCAL_CODES)][0].item()
            raise ValueError(f"cell code {bad} is outside 0..{NUM_LOCAL_CODES - 1}")
        flat = cells.reshape(-1, n)
        red, blue, vel = _CODE_RED[flat], _CODE_BLUE[flat], _CODE_VELOCITY[flat]
        b = blue.long().argmax(-1, keepdim=True)
        partner = (b + 1).clamp(max=n - 1)
        red_count = red.sum(-1)
        pair_ok = (
            (blue.sum(-1) == 2) & blue.gather(-1, partner).squeeze(-1) & (b.squeeze(-1) < n - 1)
        )
        same_velocity = vel.gather(-1, b) == vel.gather(-1, partner)
        problems = [
            (red_count != 1, lambda i: f"has {int(red_count[i])} red cells, not 1"),
            (~pair_ok, lambda i: "has no single pair of adjacent blue cells"),
            (~same_velocity.squeeze(-1), lambda i: "the two blue cells disagree on velocity"),
        ]
        for bad, why in problems:
            if bool(bad.any()):
                i = int(bad.nonzero()[0])
                raise ValueError(f"configuration {flat[i].tolist()}: {why(i)}")
        states = torch.stack(
            [b.squeeze(-1), red.long().argmax(-1), vel.gather(-1, b).squeeze(-1)], -1
        )
        ok = self.is_valid_state(states)
        if not bool(ok.all()):
            raise ValueError(
                f"configuration {flat[~ok][0].tolist()}: the pair points into the wall"
            )
        return states.reshape(*cells.shape[:-1], 3)

    # ----------------------------------------------------------------- observations
    def emission_probs(self, obs_noise: float) -> torch.Tensor:
        """``[3, 3]`` matrix ``p(shown symbol | true symbol)`` for noise ``ε``."""
        eps = check_noise(obs_noise)
        probs = torch.full((3, 3), eps / 2, dtype=torch.float64)
        probs.fill_diagonal_(1 - eps)
        return probs

    def observe(
        self, states: torch.Tensor, obs_noise: float = 0.0, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Noisy observations of ``states`` (``[..., 3] -> [..., n]``)."""
        symbols = self.render(states)
        probs = self.emission_probs(obs_noise)[symbols]
        flat = torch.multinomial(probs.reshape(-1, 3), 1, generator=generator)
        return flat.reshape(symbols.shape)

    def sample_episode(
        self, T: int, obs_noise: float = 0.0, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A state trajectory ``[T, 3]`` from the uniform prior and its observations ``[T, n]``."""
        index = torch.randint(self.n_states, (), generator=generator)
        states = self.rollout(self._valid_states[index], T)
        return states, self.observe(states, obs_noise, generator)

    def check_obs(self, obs) -> torch.Tensor:
        """Return ``obs`` as a ``LongTensor [..., T, n]`` of symbols or raise ``ValueError``."""
        if not isinstance(obs, torch.Tensor):
            raise ValueError(f"obs must be a torch.Tensor of symbols, got {type(obs).__name__}")
        if obs.dtype.is_floating_point or obs.dtype.is_complex or obs.dtype == torch.bool:
            raise ValueError(f"obs must have an integer dtype, got {obs.dtype}")
        n = self.n_cells
        if obs.dim() < 2 or obs.shape[-1] != n:
            raise ValueError(f"obs must have shape [T, {n}] or [B, T, {n}], got {tuple(obs.shape)}")
        if obs.shape[-2] == 0:
            raise ValueError("obs has no time steps (T = 0)")
        if obs.numel() and bool(((obs < 0) | (obs > 2)).any()):
            bad = obs[(obs < 0) | (obs > 2)][0].item()
            raise ValueError(f"obs values must be symbols 0 (blank), 1 (blue), 2 (red); got {bad}")
        return obs.long()


def check_noise(obs_noise) -> float:
    """Validate an observation-noise level ``ε ∈ [0, 1)``."""
    return check_probability(obs_noise, "obs_noise", include_high=False)


def _as_state_tensor(states) -> torch.Tensor:
    states = check_long_tensor(states, "states")
    if states.dim() == 0 or states.shape[-1] != 3:
        raise ValueError(
            "states must have shape [..., 3] (blue, red, velocity_index), "
            f"got {tuple(states.shape)}"
        )
    return states
