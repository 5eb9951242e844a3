r"""Latent concepts of the strip world: plain functions of one model's latent state.

A *latent concept identifier* (the post's term) is a function ``c : L → V`` from a model's latent
space to a small set of values ``V = {0 .. K-1}``.  Each concept here is written **twice**, once on
each model's own coordinates, and neither version goes through the other:

==================  ==============================  ==========================================
concept             on model 1's ``(b, r, v)``       on model 2's cells ``x ∈ {0..5}^n``
==================  ==============================  ==========================================
``blue_velocity``   ``v``  (0 left, 1 right)         ``1`` if some ``x_i ∈ {4,5}``, else ``0``
``red_location``    ``r``                            the ``i`` with ``x_i ∈ {1,3,5}``
``blue_location``   ``b``                            the first ``i`` with ``x_i ∈ {2..5}``
``red_hidden``      ``r ∈ {b, b+1}``                  some ``x_i ∈ {3,5}``
``cell_k``          ``[r = k] + [k ∈ {b,b+1}](2+2v)``  ``x_k``
==================  ==============================  ==========================================

(``shared/design/strip-world.md``, "Latent concepts".)  Both versions agree on every valid
state, ``c₁(s) = c₂(to_local(s))``, which the tests check; the *transfer* problem is to recover
one from the other through the observations alone (:mod:`pyro_latent.toy.transfer.exact`).

A concept is only defined on its model's **support**: model 1's ``blue = n-1`` (a value of the
latent's domain with zero probability) and model 2's configurations that are not the image of a
valid state get a :class:`ValueError`, as does an unknown concept name, whose message lists the
available ones.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import torch

from pyro_latent.toy.world import LOCAL_CODES, StripWorld

__all__ = [
    "Concept",
    "concept_names",
    "concepts",
    "get_concept",
    "latent_space",
    "register_concept",
]

_Fn = Callable[[StripWorld, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Concept:
    """A named latent concept with one implementation per model.

    Args:
        name: registry name, e.g. ``"blue_velocity"``.
        doc: one-line description.
        on_objects_fn: ``(world, states [..., 3]) -> values [...]`` on model 1's latent.
        on_cells_fn: ``(world, cells [..., n]) -> values [...]`` on model 2's latent.
        labels_fn: ``world -> tuple of value labels`` (its length is the number of values).
    """

    name: str
    doc: str
    on_objects_fn: _Fn
    on_cells_fn: _Fn
    labels_fn: Callable[[StripWorld], tuple[str, ...]]

    def labels(self, world: StripWorld) -> tuple[str, ...]:
        """Human-readable label of each value ``0 .. K-1``."""
        return self.labels_fn(world)

    def n_values(self, world: StripWorld) -> int:
        return len(self.labels_fn(world))

    def on_objects(self, world: StripWorld, states) -> torch.Tensor:
        """The concept on model 1's latent ``(blue, red, velocity)``, ``[..., 3] -> [...]``."""
        return self.on_objects_fn(world, world.check_states(states))

    def on_cells(self, world: StripWorld, cells) -> torch.Tensor:
        """The concept on model 2's latent, the cell codes (``[..., n] -> [...]``)."""
        world.from_local(cells)  # validates: raises ValueError outside the support
        return self.on_cells_fn(world, torch.as_tensor(cells).long())

    def __call__(self, model, latent) -> torch.Tensor:
        """The concept on ``model``'s latent (model 1 or model 2, dispatched on its type)."""
        space = latent_space(model)
        if space == "objects":
            return self.on_objects(model.world, latent)
        return self.on_cells(model.world, latent)

    def __repr__(self) -> str:
        return f"Concept({self.name!r})"


def latent_space(model) -> str:
    """``"objects"`` for model 1, ``"cells"`` for model 2 (by their ``latent_sizes``)."""
    sizes = getattr(model, "latent_sizes", None)
    if sizes is None or not hasattr(model, "world"):
        raise ValueError(
            f"expected ObjectCentricModel or LocalStateModel, got {type(model).__name__}"
        )
    return "objects" if "velocity" in sizes else "cells"


# --------------------------------------------------------------------------- implementations
def _velocity_labels(world):
    return ("left", "right")


def _hidden_labels(world):
    return ("visible", "hidden")


def _cell_labels(world):
    return tuple(f"cell {i}" for i in range(world.n_cells))


def _blue_labels(world):
    return tuple(f"cell {i}" for i in range(world.n_cells - 1))


def _code_labels(world):
    return LOCAL_CODES


def _first(mask: torch.Tensor) -> torch.Tensor:
    """Index of the first ``True`` along the last dimension (the support guarantees one)."""
    return mask.long().argmax(-1)


def _cell_of_state(world: StripWorld, states: torch.Tensor, k: int) -> torch.Tensor:
    b, r, v = states.unbind(-1)
    blue = (b == k) | (b + 1 == k)
    return (r == k).long() + blue.long() * (2 + 2 * v)


_REGISTRY: dict[str, Concept] = {}


def register_concept(concept: Concept) -> Concept:
    """Add a concept to the registry (a name may be registered once)."""
    if concept.name in _REGISTRY or _CELL.fullmatch(concept.name):
        raise ValueError(f"a concept named {concept.name!r} is already registered")
    _REGISTRY[concept.name] = concept
    return concept


_CELL = re.compile(r"cell_(\d+)")

register_concept(
    Concept(
        "blue_velocity",
        "direction the blue pair moves: 0 left, 1 right",
        lambda w, s: s[..., 2],
        lambda w, x: (x >= 4).any(-1).long(),
        _velocity_labels,
    )
)
register_concept(
    Concept(
        "red_location",
        "cell of the red circle",
        lambda w, s: s[..., 1],
        lambda w, x: _first(x % 2 == 1),
        _cell_labels,
    )
)
register_concept(
    Concept(
        "blue_location",
        "cell of the left blue circle",
        lambda w, s: s[..., 0],
        lambda w, x: _first(x >= 2),
        _blue_labels,
    )
)
register_concept(
    Concept(
        "red_hidden",
        "whether the red circle shares a cell with blue (and so is not shown)",
        lambda w, s: ((s[..., 1] == s[..., 0]) | (s[..., 1] == s[..., 0] + 1)).long(),
        lambda w, x: ((x == 3) | (x == 5)).any(-1).long(),
        _hidden_labels,
    )
)


def _check_cell(world: StripWorld, k: int) -> None:
    if not 0 <= k < world.n_cells:
        raise ValueError(
            f"cell_{k} does not exist in a world with n_cells = {world.n_cells} "
            f"(cells 0..{world.n_cells - 1})"
        )


def _cell_on_objects(k: int) -> _Fn:
    def fn(world, states):
        _check_cell(world, k)
        return _cell_of_state(world, states, k)

    return fn


def _cell_on_cells(k: int) -> _Fn:
    def fn(world, cells):
        _check_cell(world, k)
        return cells[..., k]

    return fn


def _cell_concept(k: int) -> Concept:
    """``cell_k``; ``k`` is checked against the world's ``n_cells`` each time it is applied."""
    return Concept(
        f"cell_{k}",
        f"local state of cell {k} (model 2's six codes)",
        _cell_on_objects(k),
        _cell_on_cells(k),
        _code_labels,
    )


def concept_names(world: StripWorld) -> list[str]:
    """Every concept defined on ``world``: the registered ones, then ``cell_0 .. cell_{n-1}``."""
    return [*_REGISTRY, *(f"cell_{k}" for k in range(world.n_cells))]


def get_concept(name: str, world: StripWorld | None = None) -> Concept:
    """The concept called ``name``; ``cell_<k>`` is the state of cell ``k`` (checked against
    ``world`` when given).  An unknown name gets a ``ValueError`` listing the available ones."""
    if isinstance(name, Concept):
        return name
    if name in _REGISTRY:
        return _REGISTRY[name]
    match = _CELL.fullmatch(name) if isinstance(name, str) else None
    if match and (world is None or int(match.group(1)) < world.n_cells):
        return _cell_concept(int(match.group(1)))
    cells = "cell_0 .. cell_{n-1}" if world is None else f"cell_0 .. cell_{world.n_cells - 1}"
    raise ValueError(f"unknown concept {name!r}; available: {', '.join(_REGISTRY)}, {cells}")


def concepts(world: StripWorld) -> dict[str, Concept]:
    """All concepts on ``world`` by name, in :func:`concept_names` order."""
    return {name: get_concept(name, world) for name in concept_names(world)}
