r"""Concept transfer between the two strip-world models by exact posterior translation.

Two models see the same observation window ``o = o_{0:T-1}`` and keep latents ``l₁ = g₁(o)`` and
``l₂ = g₂(o)`` at the last step.  The **translation** from a source model to a destination model is

.. math::

    M[l_s, l_d] = p(l_d \mid l_s) = \sum_{o \in \{0,1,2\}^{nT}} p_d(l_d \mid o)\, p_s(o \mid l_s),

each model under its own observation noise ``ε``.  Rows and columns are indexed by
``world.valid_states()`` (model 2's latents through ``to_local``).  A concept ``c`` on the source
latent is transferred to the destination as

.. math::

    f_d(l_d)_k = \mathbb{E}\big[[c(l_s) = k] \mid l_d\big]
             = \frac{\sum_{l_s} p(l_s) M[l_s, l_d] [c(l_s) = k]}{\sum_{l_s} p(l_s) M[l_s, l_d]},

a distribution over the concept's values (:func:`transfer_concept`).  When the models are
invertible on valid states, ``M`` is the identity and ``f_d = c ∘ g_s ∘ g_d^{-1}``
(:func:`invertible_formula`), the post's complete-data limit.

**Exact evaluation.**  Both models are hidden Markov models whose transitions are *deterministic
permutations* of the valid states (checked on their own CPTs by :func:`state_space`).  A last-step
state ``s`` therefore fixes the whole window ``w(s) = (pred^{T-1}(s), …, s)``, and

.. math::

    p(o \mid l_{T-1} = s) = \prod_{t,k} E[w(s)_t, k, o_{t,k}], \qquad
    p(l_{T-1} = s \mid o) \propto p(l_0 = pred^{T-1}(s))\, p(o \mid l_{T-1} = s),

with ``E`` the model's emission table: exact inference on the HMM, read off each model's own
CPTs, with no sampling.  The sum over ``o`` is then done exactly:

* source ``ε = 0``: ``p_s(o | s)`` is a point mass on the rendered window, so only the (at most
  ``S``) distinct noise-free windows contribute;
* source ``ε > 0``: every window has positive probability and all ``3^{nT}`` are enumerated in
  batches.  This is exact but exponential, so it is refused above ``max_windows``
  (default ``3^16``: ``n = 4, T ≤ 4`` or ``n = 5, T ≤ 3``).

The tests check this against an independent brute force written from the world's rules, against
Pyro's ``log_evidence`` and ``marginals``, and against the Monte-Carlo estimate of
:func:`monte_carlo_translation`, which samples observations from the *source Pyro program*
(``poutine.condition`` on the first step's latents, exact here because the window is determined
by its last state) and posterior latents from the *destination model* (``sample_posterior``: with
the default ``engine="hmm"`` forward-filtering backward-sampling over the compiled tables, with
``engine="enum"`` ``infer_discrete`` on the Pyro program).
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass

import numpy as np
import pyro
import torch
from pyro import poutine
from tqdm.auto import tqdm

from pyro_latent.toy.concepts import Concept, get_concept, latent_space
from pyro_latent.toy.local_rule import compiled_transition
from pyro_latent.toy.world import NUM_LOCAL_CODES, _check_length

__all__ = [
    "FormulaCheck",
    "MonteCarloTranslation",
    "StateSpace",
    "TransferredIdentifier",
    "concept_values",
    "distance_from_identity",
    "expected_tv",
    "invertible_formula",
    "latent_index",
    "loglog_slope",
    "monte_carlo_translation",
    "noise_free_windows",
    "sample_observations_given_last",
    "smallest_invertible_window",
    "state_space",
    "total_variation",
    "transfer_concept",
    "translation_matrix",
]

DEFAULT_MAX_WINDOWS = 3**16


# =============================================================================== state spaces
@dataclass(frozen=True)
class StateSpace:
    """A model's view of the valid states, read off its own CPTs.

    Attributes:
        latents: the model's latent for each valid state, ``[S, 3]`` or ``[S, n]`` (world order).
        next_index: ``[S]`` index of the successor under the model's transition.
        emission: ``[S, n, 3]`` ``p(o_k = symbol | state)``.
        prior: ``[S]`` the model's initial distribution over the valid states.
    """

    latents: torch.Tensor
    next_index: torch.Tensor
    emission: torch.Tensor
    prior: torch.Tensor

    @property
    def num_states(self) -> int:
        return self.latents.shape[0]

    def backward(self, T: int) -> torch.Tensor:
        """``[S, T]``: the states at steps ``0..T-1`` of the window that ends in each state."""
        previous = torch.empty_like(self.next_index)
        previous[self.next_index] = torch.arange(self.num_states)
        steps = [torch.arange(self.num_states)]
        for _ in range(T - 1):
            steps.append(previous[steps[-1]])
        return torch.stack(steps[::-1], -1)

    def prior_last(self, T: int) -> torch.Tensor:
        """``p(l_{T-1} = s)``: the prior pushed through ``T-1`` steps of the permutation."""
        return self.prior[self.backward(T)[:, 0]]

    def window_log_emission(self, T: int) -> torch.Tensor:
        """``[S, T, n, 3]`` log emission of the window that ends in each state."""
        return self.emission[self.backward(T)].log()


def _one_hot_next(table: torch.Tensor, what: str) -> torch.Tensor:
    top, index = table.max(-1)
    if not bool(torch.allclose(top, torch.ones_like(top))):
        raise ValueError(f"{what} is not deterministic on the valid states")
    return index


def state_space(model) -> StateSpace:
    """The :class:`StateSpace` of model 1 or model 2 (either form), from the model's CPTs.

    Raises ``ValueError`` when the transition is not a deterministic permutation of the valid
    states or the prior puts mass outside them, the two facts the exact method relies on.
    """
    world = model.world
    states = world.valid_states()
    if latent_space(model) == "objects":
        b, r, v = states.unbind(-1)
        nb = _one_hot_next(model.blue_trans[b, v], "model 1's blue transition")
        nv = _one_hot_next(model.velocity_trans[b, v], "model 1's velocity transition")
        nr = _one_hot_next(model.red_trans[r], "model 1's red transition")
        next_index = world.state_index(torch.stack([nb, nr, nv], -1))
        emission = model.emission[b, r]
        prior = model.blue_init[b] * model.velocity_init[b, v] * model.red_init[r]
        latents = states
    else:
        configs = model.configs
        if not torch.equal(configs, world.to_local(states)):
            raise ValueError("model 2's configurations are not in the world's state order")
        transition = getattr(model, "transition", None)
        if transition is None:  # the literal form: compile the same per-cell tables
            transition = compiled_transition(world, model.tables)
        next_index = _one_hot_next(transition, "model 2's transition")
        emission = model.code_emission[configs]
        prior = model.init
        latents = configs
    if sorted(next_index.tolist()) != list(range(len(states))):
        raise ValueError("the model's transition is not a permutation of the valid states")
    if not math.isclose(float(prior.sum()), 1.0, abs_tol=1e-9):
        raise ValueError("the model's prior puts mass outside the valid states")
    return StateSpace(latents, next_index, emission.double(), prior.double())


def latent_index(model, latents) -> torch.Tensor:
    """Index in ``world.valid_states()`` of each latent of ``model`` (``[..., d] -> [...]``).

    Raises ``ValueError`` for a latent outside the model's support (for model 2: a non-integer
    dtype, a code outside ``0..5``, or a configuration that is not the image of a valid state).
    """
    world = model.world
    if latent_space(model) == "objects":
        return world.state_index(latents)
    # from_local validates dtype, shape, code range and the one-red / one-pair rules, vectorised
    return world.state_index(world.from_local(latents))


def _base6(cells: torch.Tensor) -> torch.Tensor:
    powers = NUM_LOCAL_CODES ** torch.arange(cells.shape[-1])
    return (cells * powers).sum(-1)


def _config_keys(world):
    keys = _base6(world.to_local(world.valid_states()))
    keys, order = keys.sort()
    return keys, order


# =============================================================================== windows
def noise_free_windows(model, T: int) -> torch.Tensor:
    """``[S, T, n]`` the window of symbols that ends in each valid state, without noise.

    This is ``g⁻¹(l)``: the most probable observation window leading the model to ``l``.
    """
    _check_length(T, "window")
    world = model.world
    states = world.valid_states()[state_space(model).backward(T)]
    return world.render(states)


def _log_likelihood(space: StateSpace, obs: torch.Tensor, T: int) -> torch.Tensor:
    """``[W, S]`` ``log p(o_w | l_{T-1} = s)`` for windows ``obs [W, T, n]``."""
    log_e = space.window_log_emission(T).reshape(space.num_states, -1)  # [S, T*n*3]
    one_hot = torch.nn.functional.one_hot(obs.reshape(obs.shape[0], -1), 3)
    one_hot = one_hot.reshape(obs.shape[0], -1).double()  # [W, T*n*3]
    impossible = one_hot @ torch.isneginf(log_e).double().T > 0
    finite = one_hot @ log_e.clamp_min(-1e4).T
    return finite.masked_fill(impossible, -math.inf)


def _posterior(space: StateSpace, obs: torch.Tensor, T: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``p(l_{T-1} | o)`` ``[W, S]`` and ``log p(o)`` ``[W]`` (zero rows where ``p(o) = 0``)."""
    joint = _log_likelihood(space, obs, T) + space.prior_last(T).log()
    log_z = torch.logsumexp(joint, -1)
    ok = torch.isfinite(log_z)
    post = torch.zeros_like(joint)
    post[ok] = (joint[ok] - log_z[ok, None]).exp()
    return post, log_z


def _digits(cells: int) -> torch.Tensor:
    """All ``3^cells`` symbol vectors ``[3^cells, cells]``, the first cell varying fastest."""
    return (torch.arange(3**cells)[:, None] // 3 ** torch.arange(cells)) % 3


def _half_log_likelihood(log_e: torch.Tensor, symbols: torch.Tensor) -> torch.Tensor:
    """``[W, S]`` ``Σ_c log_e[s, c, symbols[w, c]]`` for ``log_e [S, C, 3]`` (all finite)."""
    one_hot = torch.nn.functional.one_hot(symbols, 3).reshape(symbols.shape[0], -1).double()
    return one_hot @ log_e.reshape(log_e.shape[0], -1).T


def _enumerated_matrix(src, dst, T, batch_windows, progress, desc) -> tuple:
    """``Σ_o p_src(o | s) p_dst(s' | o)`` over all ``3^C`` windows, ``C = nT``.

    The window's cells are split into two halves, ``log p(o | s) = A[o₁, s] + B[o₂, s]``, so a
    batch of windows is a broadcast sum instead of a fresh contraction.
    """
    log_src = src.window_log_emission(T).flatten(1, 2)  # [S, C, 3]
    log_dst = dst.window_log_emission(T).flatten(1, 2)
    C = log_src.shape[1]
    c1 = C // 2
    first, second = _digits(c1), _digits(C - c1)
    a_src, b_src = (
        _half_log_likelihood(log_src[:, :c1], first),
        _half_log_likelihood(log_src[:, c1:], second),
    )
    a_dst = _half_log_likelihood(log_dst[:, :c1], first) + dst.prior_last(T).log()
    b_dst = _half_log_likelihood(log_dst[:, c1:], second)
    chunk = max(1, batch_windows // second.shape[0])
    S = src.num_states
    matrix = torch.zeros(S, S, dtype=torch.float64)
    mass = torch.zeros(S, dtype=torch.float64)
    starts = range(0, first.shape[0], chunk)
    for start in tqdm(starts, desc=desc, disable=not progress):
        stop = start + chunk
        likelihood = (a_src[start:stop, None] + b_src[None]).exp().reshape(-1, S)
        posterior = torch.softmax(a_dst[start:stop, None] + b_dst[None], -1).reshape(-1, S)
        matrix += likelihood.T @ posterior
        mass += likelihood.sum(0)
    return matrix, mass


# =============================================================================== translation
def translation_matrix(
    src_model,
    dst_model,
    window: int,
    *,
    max_windows: int = DEFAULT_MAX_WINDOWS,
    batch_windows: int = 3**10,
    progress: bool = False,
) -> torch.Tensor:
    """Exact ``p(l_dst at the last step | l_src at the last step)``, ``[S, S]`` float64.

    See the module docstring for the method.  With ``src_model.obs_noise > 0`` all ``3^{nT}``
    windows are enumerated, and more than ``max_windows`` of them is a ``ValueError``.
    """
    T = _check_length(window, "window")
    _check_pair(src_model, dst_model)
    _check_noise_pair(src_model, dst_model)
    src, dst = state_space(src_model), state_space(dst_model)
    n = src_model.world.n_cells
    if src_model.obs_noise > 0:
        if 3 ** (n * T) > max_windows:
            raise ValueError(
                f"exact enumeration of 3^(n·T) = 3^{n * T} observation windows exceeds "
                f"max_windows = {max_windows}; use obs_noise = 0, a smaller world or window, or "
                "monte_carlo_translation"
            )
        desc = f"windows n={n} T={T}"
        matrix, mass = _enumerated_matrix(src, dst, T, batch_windows, progress, desc)
    else:
        obs = torch.unique(noise_free_windows(src_model, T), dim=0)
        likelihood = _log_likelihood(src, obs, T).exp()  # [W, S_src]
        posterior, log_z = _posterior(dst, obs, T)  # [W, S_dst]
        if bool((likelihood[~torch.isfinite(log_z)] > 0).any()):
            raise ValueError("the source emits a window that the destination finds impossible")
        matrix, mass = likelihood.T @ posterior, likelihood.sum(0)
    if not torch.allclose(mass, torch.ones_like(mass), atol=1e-9):
        raise RuntimeError(f"observation windows cover {mass.min():.6f} < 1 of p(o | l_src)")
    return matrix


def _check_pair(src_model, dst_model) -> None:
    for model in (src_model, dst_model):
        latent_space(model)  # raises for anything that is not one of the two models
    if src_model.world.n_cells != dst_model.world.n_cells:
        raise ValueError(
            f"the models live in different worlds: n_cells = {src_model.world.n_cells} and "
            f"{dst_model.world.n_cells}"
        )


def _check_noise_pair(src_model, dst_model) -> None:
    if src_model.obs_noise > 0 and dst_model.obs_noise == 0:
        raise ValueError(
            "src_model has obs_noise > 0 but dst_model has obs_noise = 0: the source emits "
            "windows that the destination finds impossible, so p(l_dst | o) is undefined"
        )


def _check_count(value, name: str) -> int:
    """A positive int (numpy / torch integer scalars accepted), or a ``ValueError``."""
    if isinstance(value, bool | np.bool_) or (
        isinstance(value, torch.Tensor) and value.dtype == torch.bool
    ):
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    try:
        count = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be a positive int, got {value!r}") from None
    if count < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return count


def distance_from_identity(matrix: torch.Tensor) -> float:
    """Mean over rows of ``TV(M[s, ·], δ_s) = 1 - M[s, s]``: 0 exactly when ``M = I``."""
    return float(1 - matrix.diagonal().mean())


def total_variation(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Row-wise total-variation distance ``½ Σ |p - q|`` (``[..., K] -> [...]``)."""
    return 0.5 * (p - q).abs().sum(-1)


def smallest_invertible_window(
    src_model, dst_model, max_window: int | None = None, atol: float = 1e-12
) -> int | None:
    """The smallest ``T`` for which ``translation_matrix(src, dst, T)`` is the identity.

    Only meaningful without noise (with ``ε > 0`` no window gives an exact identity, so that is a
    ``ValueError``).  Searches ``T = 1 .. max_window`` (default: the world's period plus one) and
    returns ``None`` if none qualifies.
    """
    if src_model.obs_noise or dst_model.obs_noise:
        raise ValueError("with obs_noise > 0 the translation is never exactly the identity")
    if max_window is None:
        max_window = src_model.world.period + 1
    max_window = _check_count(max_window, "max_window")
    eye = torch.eye(src_model.world.num_states, dtype=torch.float64)
    for T in range(1, max_window + 1):
        if torch.allclose(translation_matrix(src_model, dst_model, T), eye, atol=atol):
            return T
    return None


# =============================================================================== concepts
def concept_values(concept: Concept | str, model) -> torch.Tensor:
    """``[S]`` the concept on ``model``'s latent of every valid state (world order)."""
    concept = get_concept(concept, model.world)
    return concept(model, state_space(model).latents)


def transfer_concept(
    concept: Concept | str,
    src_model,
    dst_model,
    window: int,
    *,
    matrix: torch.Tensor | None = None,
) -> torch.Tensor:
    """The exact transferred identifier ``E[c(l_src) | l_dst]`` as ``[S, K]`` probabilities.

    Row ``s`` is the distribution of the source concept given the destination latent of valid
    state ``s``.  Pass ``matrix`` (``translation_matrix(src, dst, window)``) to reuse it.
    """
    concept = get_concept(concept, src_model.world)
    T = _check_length(window, "window")
    _check_pair(src_model, dst_model)
    if matrix is None:
        matrix = translation_matrix(src_model, dst_model, T)
    S = src_model.world.num_states
    if not isinstance(matrix, torch.Tensor) or tuple(matrix.shape) != (S, S):
        shape = tuple(matrix.shape) if isinstance(matrix, torch.Tensor) else type(matrix).__name__
        raise ValueError(
            f"matrix must be the [S, S] = [{S}, {S}] translation_matrix(src, dst, {T}), got {shape}"
        )
    matrix = matrix.double()
    prior = state_space(src_model).prior_last(T)
    joint = prior[:, None] * matrix  # p(l_src, l_dst)
    values = concept_values(concept, src_model)
    one_hot = torch.nn.functional.one_hot(values, concept.num_values(src_model.world)).double()
    numerator = joint.T @ one_hot
    return numerator / numerator.sum(-1, keepdim=True)


class TransferredIdentifier:
    """The exact transferred identifier as an estimator: ``f_d(l_d) = E[c(l_s) | l_d]``.

    Args:
        concept: the concept (name or :class:`~pyro_latent.toy.concepts.Concept`) on the source.
        src_model, dst_model: the two models (same world).
        window: observation window ``T`` through which the latents are translated.

    ``fit()`` computes the exact translation (``matrix_``) and the table ``proba_ [S, K]``;
    ``predict_proba`` and ``predict`` then take *destination* latents ``[N, d]``.
    """

    def __init__(self, concept, src_model, dst_model, window: int):
        self.concept = concept
        self.src_model = src_model
        self.dst_model = dst_model
        self.window = window

    def fit(self, X=None, y=None):
        """Compute the exact translation; ``X`` and ``y`` are ignored (nothing is learned from
        data)."""
        concept = get_concept(self.concept, self.src_model.world)
        self.matrix_ = translation_matrix(self.src_model, self.dst_model, self.window)
        self.proba_ = transfer_concept(
            concept, self.src_model, self.dst_model, self.window, matrix=self.matrix_
        )
        self.classes_ = np.arange(concept.num_values(self.src_model.world))
        return self

    def _check_fitted(self):
        if not hasattr(self, "proba_"):
            raise ValueError("this TransferredIdentifier is not fitted yet; call fit() first")

    def predict_proba(self, latents) -> np.ndarray:
        """``[N, K]`` ``P(c = k | l_d)`` for destination latents ``[N, d]``."""
        self._check_fitted()
        return self.proba_[latent_index(self.dst_model, latents)].numpy()

    def predict(self, latents) -> np.ndarray:
        """The most probable concept value for each destination latent."""
        proba = self.predict_proba(latents)
        return self.classes_[proba.argmax(-1)]


@dataclass
class FormulaCheck:
    """The invertible-case formula ``f_d = c ∘ g_s ∘ g_d⁻¹`` on every valid destination latent.

    Attributes:
        values: ``[S]`` the formula's concept value for each destination state.
        roundtrip: ``[S]`` whether ``g_d(g_d⁻¹(l_d)) = l_d`` (the premise of the formula).
        exact: ``[S, K]`` the exact transfer ``E[c(l_s) | l_d]``.
        gap: ``[S]`` ``1 - exact[s, values[s]]``, the probability the formula's answer is wrong.
    """

    values: torch.Tensor
    roundtrip: torch.Tensor
    exact: torch.Tensor
    gap: torch.Tensor

    @property
    def broken(self) -> torch.Tensor:
        """States where the formula disagrees with the exact transfer."""
        return self.gap > 1e-9


def invertible_formula(concept: Concept | str, src_model, dst_model, window: int) -> FormulaCheck:
    """Evaluate ``f_d(l_d) = c(g_s(g_d⁻¹(l_d)))`` with MAP decoding, and compare it with the
    exact ``E[c(l_s) | l_d]``.

    ``g_d⁻¹(l_d)`` is the noise-free window that ends in ``l_d``; ``g_s`` and ``g_d`` are the
    models' MAP latents at the last step (``model.map``: Viterbi over the compiled tables with
    the default ``engine="hmm"``, ``infer_discrete`` at temperature 0 with ``engine="enum"``).
    """
    concept = get_concept(concept, src_model.world)
    T = _check_length(window, "window")
    _check_pair(src_model, dst_model)
    obs = noise_free_windows(dst_model, T)  # g_d⁻¹, indexed by destination state
    dst_back = latent_index(dst_model, dst_model.map(obs)[:, -1])
    src_latent = src_model.map(obs)[:, -1]
    values = concept(src_model, src_latent)
    exact = transfer_concept(concept, src_model, dst_model, T)
    roundtrip = dst_back == torch.arange(obs.shape[0])
    gap = 1 - exact.gather(-1, values[:, None]).squeeze(-1)
    return FormulaCheck(values, roundtrip, exact, gap.clamp_min(0))


# =============================================================================== Monte Carlo
def _first_step_condition(model, start: torch.Tensor) -> dict[str, torch.Tensor]:
    """Site values fixing the model's latent at ``t = 0`` to the valid states ``start [B]``."""
    if latent_space(model) == "objects":
        b, r, v = model.world.valid_states()[start].unbind(-1)
        return {"blue_0": b[:, None], "red_0": r[:, None], "velocity_0": v[:, None]}
    site = "config_0" if model.form == "compiled" else "config_init"
    return {site: start[:, None]}


def _trace_observations(trace, T: int, n: int, batch: int) -> torch.Tensor:
    by_name = {
        name: site["value"]
        for name, site in trace.nodes.items()
        if site["type"] == "sample" and name.startswith("obs_")
    }
    rows = []
    for t in range(T):
        if f"obs_{t}" in by_name:
            rows.append(by_name[f"obs_{t}"].reshape(batch, n))
        else:  # literal form: one site per cell
            rows.append(
                torch.cat([by_name[f"obs_{t}_{i}"].reshape(batch, 1) for i in range(n)], -1)
            )
    return torch.stack(rows, 1)


def sample_observations_given_last(model, last: torch.Tensor, T: int) -> torch.Tensor:
    """Observation windows ``[B, T, n]`` drawn from ``p(o | l_{T-1} = last)`` by the model's Pyro
    program, conditioned (``poutine.condition``) on the first step's latents.

    Conditioning on ``l_0 = pred^{T-1}(last)`` is exact here: the dynamics are a deterministic
    permutation, so ``l_0`` and ``l_{T-1}`` determine each other.
    """
    start = state_space(model).backward(T)[last, 0]
    data = _first_step_condition(model, start)
    conditioned = poutine.condition(model.program, data=data)
    trace = poutine.trace(conditioned).get_trace(None, T, len(last))
    return _trace_observations(trace, T, model.world.n_cells, len(last))


@dataclass
class MonteCarloTranslation:
    """Samples ``l_dst ~ p(l_dst | l_src)``: ``samples[j, s]`` is the ``j``-th draw for source
    state ``s`` (a destination state index)."""

    samples: torch.Tensor  # [num_samples, S] long
    window: int

    def matrix(self, num_samples: int | None = None) -> torch.Tensor:
        """The estimate ``M̂ [S, S]`` from the first ``num_samples`` draws (all by default)."""
        if num_samples is not None:
            num_samples = _check_count(num_samples, "num_samples")
            if num_samples > self.samples.shape[0]:
                raise ValueError(
                    f"num_samples = {num_samples} exceeds the {self.samples.shape[0]} draws held"
                )
        draws = self.samples[:num_samples]
        S = self.samples.shape[1]
        counts = torch.nn.functional.one_hot(draws, S).double().sum(0)
        return counts / counts.sum(-1, keepdim=True)

    def tv_to(self, exact: torch.Tensor, num_samples: int | None = None) -> float:
        """Mean over source states of ``TV(M̂[s, ·], M[s, ·])``."""
        return float(total_variation(self.matrix(num_samples), exact).mean())

    def to_inference_data(self, labels=None):
        """The draws as ArviZ ``InferenceData``: posterior variable ``dst_state`` with dims
        ``(chain, draw, src_state)`` (``int16`` state indices)."""
        import arviz as az

        S = self.samples.shape[1]
        if S > np.iinfo(np.int16).max:
            raise ValueError(f"{S} states do not fit the int16 encoding of the draws")
        coords = {"src_state": list(labels) if labels is not None else list(range(S))}
        return az.from_dict(
            posterior={"dst_state": self.samples.numpy().astype(np.int16)[None]},
            coords=coords,
            dims={"dst_state": ["src_state"]},
            attrs={"window": self.window, "estimand": "p(l_dst at T-1 | l_src at T-1)"},
        )


def monte_carlo_translation(
    src_model,
    dst_model,
    window: int,
    num_samples: int,
    *,
    seed: int = 0,
    batch_size: int = 8192,
    progress: bool = False,
) -> MonteCarloTranslation:
    """Sampled ``p(l_dst | l_src)``: for each source state, ``num_samples`` observation windows
    from the source program (conditioned on that state) and one posterior draw of the
    destination latent for each (``sample_posterior``: forward-filtering backward-sampling over
    the compiled tables with the default ``engine="hmm"``, ``infer_discrete`` at temperature 1
    with ``engine="enum"``).

    Uses and reseeds Pyro's global RNG with ``seed``.
    """
    T = _check_length(window, "window")
    num_samples = _check_count(num_samples, "num_samples")
    batch_size = _check_count(batch_size, "batch_size")
    _check_pair(src_model, dst_model)
    _check_noise_pair(src_model, dst_model)
    pyro.set_rng_seed(seed)
    S = src_model.world.num_states
    last = torch.arange(S).repeat(num_samples)  # draw-major: row j*S + s
    out = []
    chunks = range(0, len(last), batch_size)
    for start in tqdm(chunks, desc=f"Monte Carlo T={T}", disable=not progress):
        chunk = last[start : start + batch_size]
        obs = sample_observations_given_last(src_model, chunk, T)
        draws = dst_model.sample_posterior(obs, 1)[0, :, -1]
        out.append(latent_index(dst_model, draws))
    samples = torch.cat(out).reshape(num_samples, S)
    return MonteCarloTranslation(samples, T)


def expected_tv(matrix: torch.Tensor, num_samples: int) -> float:
    """Leading-order ``E[TV]`` of an ``n``-draw empirical row: ``½ Σ_k sqrt(2 p_k(1-p_k) / (π n))``
    averaged over rows (the ``1/√n`` reference line)."""
    num_samples = _check_count(num_samples, "num_samples")
    p = matrix.clamp(0, 1)
    per_row = 0.5 * torch.sqrt(2 * p * (1 - p) / (math.pi * num_samples)).sum(-1)
    return float(per_row.mean())


def loglog_slope(xs, ys) -> float:
    """Least-squares slope of ``log y`` against ``log x``."""
    return float(np.polyfit(np.log(np.asarray(xs, float)), np.log(np.asarray(ys, float)), 1)[0])
