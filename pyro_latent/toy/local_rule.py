"""Model 2's radius-1 local rule, derived from the world's rules rather than written by hand.

Cell ``i``'s code at ``t+1`` is a function of the codes of its neighbourhood at ``t``::

    N(i) = (i-1 mod n, i, i+1)   for i < n-1      (red wraps round, so cell 0 sees cell n-1)
    N(n-1) = (n-2, n-1)                           (blue never wraps; red only comes from the left)

The conditional probability table ``CPT_i[a, b, c, x] = p(cell_i^{t+1} = x | N(i)^t = (a, b, c))``
is read off the world: every valid state ``s`` gives one neighbourhood of ``to_local(s)`` and the
code that cell takes in ``to_local(step(s))``.  :func:`local_tables` checks that this really is a
function of the neighbourhood (radius 1 is enough, as the design page says) and raises if it is
not.  Neighbourhoods that no valid configuration shows get a uniform row: they are never reached
from a configuration of positive probability, and a uniform row keeps each table a proper
distribution.

The *compiled* transition of model 2 over its support ``C`` (the 160 configurations
``to_local(valid_states)``) is the product of these same tables,

    P[s, s'] = ∏_i CPT_i[C[s, N(i)], C[s', i]],

and :func:`compiled_transition` checks that every row sums to one, i.e. that the support is closed
under the local rule.
"""

from __future__ import annotations

import torch

from pyro_latent.toy.world import NUM_LOCAL_CODES, StripWorld


def neighbourhoods(n_cells: int) -> list[tuple[int, ...]]:
    """The parent cells of each cell's next state."""
    n = n_cells
    return [((i - 1) % n, i, i + 1) for i in range(n - 1)] + [(n - 2, n - 1)]


def local_tables(world: StripWorld) -> list[torch.Tensor]:
    """Per-cell CPTs ``CPT_i`` of shape ``[6] * len(N(i)) + [6]`` (float64)."""
    states = world.valid_states()
    now = world.to_local(states)
    nxt = world.to_local(world.step(states))
    tables = []
    for i, parents in enumerate(neighbourhoods(world.n_cells)):
        shape = (NUM_LOCAL_CODES,) * len(parents)
        seen = torch.full(shape, -1, dtype=torch.long)
        for config, new in zip(now[:, parents].tolist(), nxt[:, i].tolist(), strict=True):
            old = seen[tuple(config)].item()
            if old not in (-1, new):
                raise RuntimeError(
                    f"cell {i}: neighbourhood {config} leads to both {old} and {new}; "
                    "the local rule is not a function of radius-1 neighbourhoods"
                )
            seen[tuple(config)] = new
        table = torch.full((*shape, NUM_LOCAL_CODES), 1.0 / NUM_LOCAL_CODES, dtype=torch.float64)
        hit = seen >= 0
        table[hit] = torch.nn.functional.one_hot(seen[hit], NUM_LOCAL_CODES).double()
        tables.append(table)
    return tables


def support_configurations(world: StripWorld) -> torch.Tensor:
    """Model 2's support ``C``: the local codes of every valid state, ``[S, n]``."""
    return world.to_local(world.valid_states())


def compiled_transition(world: StripWorld, tables: list[torch.Tensor]) -> torch.Tensor:
    """``[S, S]`` transition over the support, the product of the per-cell tables."""
    configs = support_configurations(world)
    trans = torch.ones(configs.shape[0], configs.shape[0], dtype=torch.float64)
    for i, (parents, table) in enumerate(zip(neighbourhoods(world.n_cells), tables, strict=True)):
        rows = table[tuple(configs[:, p] for p in parents)]  # [S, 6]: p(cell_i' | parents of s)
        trans = trans * rows[:, configs[:, i]]  # pick each target s' code at cell i
    mass = trans.sum(-1)
    if not torch.allclose(mass, torch.ones_like(mass)):
        raise RuntimeError(
            "the local rule leaks probability out of the support: row sums "
            f"range over [{mass.min():.3g}, {mass.max():.3g}]"
        )
    return trans
