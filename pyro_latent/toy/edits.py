r"""Manipulating beliefs: the post's *invertible* latent concept identifier.

An identifier ``c`` is invertible when it also says how to **set** the concept:
``set_c(l, v)`` is the latent that agrees with ``l`` in everything except ``c``, and has
``c(set_c(l, v)) = v``.  Each edit is written on each model's own coordinates:

==================  ==============================  ==============================================
concept             model 1, ``(b, r, v)``          model 2, cells ``x``
==================  ==============================  ==============================================
``blue_velocity``   ``v ← value``                   blue codes ``2 ↔ 4`` and ``3 ↔ 5``
``red_location``    ``r ← value``                   drop the red bit everywhere, add it at ``value``
``blue_location``   ``b ← value``                   drop the blue codes, write the pair at
                                                     ``value, value+1`` with its velocity
==================  ==============================  ==============================================

Two concepts are *not* invertible, and setting them is a ``ValueError``:

* ``red_hidden``: many latents share each value and no one of them is "the" edit;
* ``cell_k``: changing the code of one cell and nothing else never gives a valid state (a red bit
  added or removed breaks "exactly one red", a blue code added, removed or re-pointed breaks
  "exactly one adjacent pair with one velocity"), so the only edit that keeps everything else
  fixed is the no-op.  The tests check this exhaustively.

An edit whose result is not a valid state (a pair pointed into the wall it touches, a pair pushed
off the strip) raises a ``ValueError`` that names the edit and the reason, rather than returning
an invalid latent.

**The cross-model check** (the post: "iterate over possible changes to latent state 1 which match
the predictions made by world model 2 when the relevant latent variable is changed").  With
``P`` and ``E`` each model's own transition and emission tables,

.. math::

    \hat o_{t+j}(l) = E[P^j(l)], \qquad j = 0..k,

and an edit is *the same edit* in both models when ``ô(set₁(l₁, v)) = ô(set₂(l₂, v))`` for every
valid state.  :func:`edit_agreement` checks this exhaustively; :func:`matching_latents` performs
the post's search, returning every latent of one model whose predictions match a given latent of
the other.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pyro_latent.core.checks import as_int
from pyro_latent.toy.concepts import get_concept, latent_space

__all__ = [
    "EditAgreement",
    "edit_agreement",
    "matching_latents",
    "predicted_observations",
    "set_concept",
]

INVERTIBLE = ("blue_velocity", "red_location", "blue_location")


def _check_value(concept, world, value) -> int:
    count = concept.n_values(world)
    index = as_int(value)
    if index is None or not 0 <= index < count:
        labels = ", ".join(f"{i} ({label})" for i, label in enumerate(concept.labels(world)))
        raise ValueError(f"{concept.name} takes values 0..{count - 1} [{labels}], got {value!r}")
    return index


def _edit_objects(world, states, name, value):
    b, r, v = states.unbind(-1)
    if name == "blue_velocity":
        v = torch.full_like(v, value)
    elif name == "red_location":
        r = torch.full_like(r, value)
    else:  # blue_location
        b = torch.full_like(b, value)
    return torch.stack([b, r, v], -1)


def _edit_cells(world, cells, name, value):
    n = world.n_cells
    cells = cells.clone()
    index = torch.arange(n)
    if name == "blue_velocity":
        blue = cells >= 2
        return torch.where(blue, cells % 2 + 2 + 2 * value, cells)
    if name == "red_location":
        return cells - cells % 2 + (index == value).long()
    # blue_location
    code = torch.where(cells >= 4, 4, torch.where(cells >= 2, 2, 0)).amax(-1, keepdim=True)
    pair = (index == value) | (index == value + 1)
    return cells % 2 + pair.long() * code


def _edit(model, latents: torch.Tensor, name: str, value: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The edited latents (possibly invalid) and the mask of valid results, batched."""
    world = model.world
    if latent_space(model) == "objects":
        edited = _edit_objects(world, latents, name, value)
    else:
        edited = _edit_cells(world, latents, name, value)
    return edited, model.in_support(edited)


def _check_concept(world, name, value):
    concept = get_concept(name, world)
    if concept.name == "red_hidden":
        raise ValueError(
            "red_hidden is not an invertible identifier: many states share each value and none "
            "is the edit; invertible ones are " + ", ".join(INVERTIBLE)
        )
    if concept.name.startswith("cell_"):
        raise ValueError(
            f"{concept.name} is not an invertible identifier: changing one cell's code and "
            "nothing else never gives a valid state (one red, one adjacent blue pair), so only "
            "the no-op keeps everything else fixed; invertible ones are " + ", ".join(INVERTIBLE)
        )
    return concept, _check_value(concept, world, value)


def set_concept(model, latent, name: str, value: int) -> torch.Tensor:
    """Edit ``latent`` of ``model`` so that concept ``name`` takes ``value`` and nothing else
    changes (see the module docstring).  ``latent`` may carry leading batch dimensions.

    Raises ``ValueError`` for an unknown or non-invertible concept, a value outside the concept's
    range, a latent outside the model's support, or an edit with no valid result.
    """
    world = model.world
    concept, value = _check_concept(world, name, value)
    if latent_space(model) == "objects":
        original = world.check_states(latent)
    else:
        world.from_local(latent)  # the latent itself must be valid (integer dtype, support)
        original = torch.as_tensor(latent).long()
    edited, ok = _edit(model, original, concept.name, value)
    if not bool(ok.all()):
        bad = original[~ok][0]
        label = concept.labels(world)[value]
        try:
            if latent_space(model) == "objects":
                world.check_states(edited[~ok][0])
            else:
                world.from_local(edited[~ok][0])
            reason = "the result is not a valid state"
        except ValueError as error:
            reason = str(error)
        raise ValueError(f"cannot set {concept.name}={value} ({label}) on {bad.tolist()}: {reason}")
    return edited


def predicted_observations(model, latent, steps: int) -> torch.Tensor:
    """``[..., steps+1, n, 3]``: ``p(o_{t+j} | l_t = latent)`` for ``j = 0..steps``, from the
    model's own transition and emission tables."""
    hmm = model.require_permutation("predicting observations from one latent")
    emission = model.compiled_tables()[2]
    index = model.latent_index(latent)
    out = []
    for _ in range(steps + 1):
        out.append(emission[index])
        index = hmm.successor[index]
    return torch.stack(out, -3)


def matching_latents(src_model, src_latent, dst_model, steps: int) -> torch.Tensor:
    """Indices of every valid ``dst_model`` latent whose predictions for ``steps`` steps equal
    those of ``src_model`` at ``src_latent`` (``[d]`` gives ``[m]``; ``[B, d]`` gives a
    ``[B, S]`` boolean match matrix)."""
    target = predicted_observations(src_model, src_latent, steps)
    all_dst = predicted_observations(dst_model, dst_model.valid_latents, steps)
    single = target.dim() == 3
    distance = torch.cdist(target.reshape(-1, all_dst[0].numel()), all_dst.flatten(1), p=1)
    match = distance < 1e-9
    return match[0].nonzero().flatten() if single else match


@dataclass
class EditAgreement:
    """Outcome of :func:`edit_agreement` for one concept over every valid state and value.

    Every ``(state, value)`` pair falls in exactly one of ``edits``, ``unchanged``,
    ``impossible`` and ``one_sided``.  ``same_latent``, ``unique_match`` and
    ``hidden_red_ambiguous`` count among the ``edits`` only.
    """

    concept: str
    edits: int  # pairs both models accept and where the edit changes the latent
    unchanged: int  # pairs both models accept where the value is already the concept's (no-op)
    impossible: int  # pairs that both models reject
    one_sided: int  # pairs that only one model accepts
    disagreements: int  # one_sided plus accepted pairs whose predictions differ
    same_latent: int  # edits where to_local(set₁) == set₂
    unique_match: int  # edits where model 1's search finds exactly set₁
    hidden_red_ambiguous: int  # edits without a unique match whose edited state hides red

    @property
    def agree(self) -> bool:
        return self.disagreements == 0 and self.same_latent == self.edits


def edit_agreement(model1, model2, name: str, steps: int) -> EditAgreement:
    """Apply the edit to every valid state and every value in both models and compare the
    models' ``steps``-step predicted observations after the edits."""
    world = model1.world
    concept, _ = _check_concept(world, name, 0)
    states = world.valid_states()
    cells = model2.valid_latents
    hidden = get_concept("red_hidden")
    edits = unchanged = impossible = one_sided = disagreements = same = unique = ambiguous = 0
    for value in range(concept.n_values(world)):
        first, ok1 = _edit(model1, states, concept.name, value)
        second, ok2 = _edit(model2, cells, concept.name, value)
        impossible += int((~ok1 & ~ok2).sum())
        one_sided += int((ok1 != ok2).sum())
        both = ok1 & ok2
        if not bool(both.any()):
            continue
        p1 = predicted_observations(model1, first[both], steps)
        p2 = predicted_observations(model2, second[both], steps)
        disagreements += int((~torch.isclose(p1, p2, atol=1e-12).flatten(1).all(-1)).sum())
        changed = (first != states).any(-1) | (second != cells).any(-1)
        unchanged += int((both & ~changed).sum())
        keep = both & changed
        edits += int(keep.sum())
        if not bool(keep.any()):
            continue
        first, second = first[keep], second[keep]
        same += int((world.to_local(first) == second).all(-1).sum())
        match = matching_latents(model2, second, model1, steps)  # [E, S]
        expected = torch.nn.functional.one_hot(world.state_index(first), len(states)).bool()
        is_unique = (match == expected).all(-1)
        unique += int(is_unique.sum())
        ambiguous += int((~is_unique & (hidden(model1, first) == 1)).sum())
    return EditAgreement(
        concept.name,
        edits,
        unchanged,
        impossible,
        one_sided,
        disagreements + one_sided,
        same,
        unique,
        ambiguous,
    )
