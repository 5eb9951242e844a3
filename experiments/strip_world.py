"""The strip world and its two Bayes nets: a sample episode, the nets, and p₁(o) = p₂(o).

Run alone with ``python experiments/strip_world.py [--quick] [--seed N]``; the prose is
``experiments/templates/strip_world.md``.
"""

from __future__ import annotations

import math

import torch
from tqdm import tqdm

from pyro_latent.plotting.world import plot_bayes_net, plot_episodes
from pyro_latent.study import Context, cli, experiment
from pyro_latent.toy import LocalStateModel, ObjectCentricModel, StripWorld
from pyro_latent.toy.agreement import log_evidence_gap

PROFILES = {
    "quick": {"lengths": [1, 2, 3, 5, 8, 12], "per_length": 20, "enum_per_length": 4},
    "full": {
        "lengths": [1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 24, 32],
        "per_length": 100,
        "enum_per_length": 10,
    },
}
ENUM_LENGTHS = [1, 2, 3, 5, 8]  # the Pyro programs' contraction, on shorter sequences
LITERAL = {"n_cells": 5, "lengths": [1, 2, 3, 4], "per_length": 4}


def sequence_batches(world, eps, lengths, per_length, generator):
    """For each length, sampled episodes and arbitrary symbol sequences (mostly impossible at
    ε = 0, where both models must say −∞)."""
    for T in tqdm(lengths, desc=f"p1 vs p2 (ε={eps})", leave=False):
        yield torch.stack([world.sample_episode(T, eps, generator)[1] for _ in range(per_length)])
        yield torch.randint(0, 3, (per_length, T, world.n_cells), generator=generator)


@experiment("strip_world", title="The strip world and its two Bayes-net world models", order=10)
def run(ctx: Context) -> dict:
    cfg = PROFILES["quick" if ctx.quick else "full"]
    g = torch.Generator().manual_seed(ctx.seed)
    world = StripWorld(10)

    states, obs = world.sample_episode(16, 0.0, g)
    noisy = world.observe(states, 0.1, g)
    ctx.draw(
        plot_episodes,
        "strip_world_sample.png",
        [(obs, "a sample episode (ε = 0)"), (noisy, "the same episode seen with ε = 0.1")],
        world.symbols,
    )
    T = 3
    ctx.draw(
        plot_bayes_net,
        "model1_bayes_net.png",
        ObjectCentricModel(world).program,
        (torch.zeros(1, T, world.n_cells, dtype=torch.long), T, 1),
    )
    small = StripWorld(4)
    ctx.draw(
        plot_bayes_net,
        "model2_bayes_net.png",
        LocalStateModel(small, form="literal").program,
        (torch.zeros(1, T, small.n_cells, dtype=torch.long), T, 1),
    )

    agreement = []
    for engine, eps_values, lengths, per_length in (
        ("hmm", (0.0, 0.1, 0.3), cfg["lengths"], cfg["per_length"]),
        ("enum", (0.0, 0.1), ENUM_LENGTHS, cfg["enum_per_length"]),
    ):
        for eps in eps_values:
            m1 = ObjectCentricModel(world, eps, engine=engine)
            m2 = LocalStateModel(world, eps, engine=engine)
            batches = sequence_batches(world, eps, lengths, per_length, g)
            row = log_evidence_gap(m1, m2, batches)
            agreement.append({"engine": engine, "eps": eps, "lengths": lengths, **row})

    literal = []
    small = StripWorld(LITERAL["n_cells"])
    for eps in (0.0, 0.1):
        batches = sequence_batches(small, eps, LITERAL["lengths"], LITERAL["per_length"], g)
        row = log_evidence_gap(
            LocalStateModel(small, eps, form="literal"), LocalStateModel(small, eps), batches
        )
        literal.append({"eps": eps, "n_cells": small.n_cells, "lengths": LITERAL["lengths"], **row})

    successors = world.state_index(world.step(world.valid_states()))
    gaps = [r["max_abs_diff"] for r in agreement + literal]
    return {
        "n_cells": world.n_cells,
        "valid_states": world.n_states,
        "period": world.period,
        "red_period": world.n_cells,
        "pair_period": 2 * (world.n_cells - 2),  # there and back along n - 1 positions
        "step_is_permutation": len(set(successors.tolist())) == world.n_states,
        "lengths": cfg["lengths"],
        "enum_lengths": ENUM_LENGTHS,
        "evidence_agreement": agreement,
        "literal_vs_compiled": literal,
        "all_gaps_finite": all(math.isfinite(x) for x in gaps),
    }


if __name__ == "__main__":
    cli.run_script("strip_world")
