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

**Exact evaluation.**  Both models are hidden Markov models whose compiled transitions
(``model.hmm``, :class:`~pyro_latent.toy.hmm.CompiledHMM`, over ``world.valid_states()``) are
*deterministic permutations* ``σ`` of the valid states.  A last-step state ``s`` therefore fixes
the whole window ``w(s) = (σ^{-(T-1)}(s), …, σ^{-1}(s), s)`` (:func:`window_states`), and

.. math::

    \log p(o \mid l_{T-1} = s) = \sum_t ℓ_t(w(s)_t), \qquad
    p(l_{T-1} = s) = π(σ^{-(T-1)}(s)),

with ``ℓ_t(s) = log p(o_t | s)`` the compiled per-step log-likelihood
(``hmm.log_likelihood``) and ``π`` the compiled prior (:func:`last_step_prior`).  The
destination posterior ``p_d(l_{T-1} | o)`` is the last step of the destination's exact
forward–backward (``hmm.forward_backward``), the same pass every model query uses, so there is
one inference path.  The sum over ``o`` is then done exactly:

* source ``ε = 0``: ``p_s(o | s)`` is a point mass on the rendered window, so only the (at most
  ``S``) distinct noise-free windows contribute;
* source ``ε > 0``: every window has positive probability and all ``3^{nT}`` are enumerated in
  batches, the window's ``C = nT`` cells split in two halves so that
  ``log p(o | s) = A[o_{:C/2}, s] + B[o_{C/2:}, s]`` and a batch of windows is a broadcast sum.
  This is exact but exponential, so it is refused above ``max_windows`` (default ``3^16``:
  ``n = 4, T ≤ 4`` or ``n = 5, T ≤ 3``);
  :func:`~pyro_latent.toy.transfer.sampled.rao_blackwell_translation` estimates the same matrix,
  with standard errors, at any size.

The tests check this against an independent brute force written from the world's rules, against
Pyro's ``log_evidence`` and ``marginals``, and against the sampled estimates of
:mod:`pyro_latent.toy.transfer.sampled`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted
from tqdm.auto import tqdm

from pyro_latent.core.checks import check_positive_int
from pyro_latent.toy.concepts import Concept, get_concept, latent_space

__all__ = [
    "DEFAULT_MAX_WINDOWS",
    "FormulaCheck",
    "TransferredIdentifier",
    "concept_values",
    "distance_from_identity",
    "invertible_formula",
    "last_step_prior",
    "noise_free_windows",
    "smallest_invertible_window",
    "transfer_concept",
    "translation_matrix",
    "window_log_likelihood",
    "window_states",
]

DEFAULT_MAX_WINDOWS = 3**16


# =============================================================================== windows
def window_states(model, T: int) -> torch.Tensor:
    """``[S, T]``: the joint states at steps ``0..T-1`` of the window that ends in each state,
    ``w(s) = (σ^{-(T-1)}(s), …, s)``, read off ``model.hmm.predecessor``.

    Raises ``ValueError`` unless the model's compiled transition is a permutation.
    """
    T = check_positive_int(T, "window")
    latent_space(model)  # a clear ValueError for anything that is not one of the two models
    predecessor = model.require_permutation("the window that ends in a state").predecessor
    steps = [torch.arange(len(predecessor))]
    for _ in range(T - 1):
        steps.append(predecessor[steps[-1]])
    return torch.stack(steps[::-1], -1)


def last_step_prior(model, T: int) -> torch.Tensor:
    """``p(l_{T-1} = s)`` ``[S]`` float64: the model's prior ``π`` pushed through ``T-1`` steps of
    its permutation, ``π(σ^{-(T-1)}(s))``."""
    start = window_states(model, T)[:, 0]
    return model.hmm.log_init.exp().double()[start]


def noise_free_windows(model, T: int) -> torch.Tensor:
    """``[S, T, n]`` the window of symbols that ends in each valid state, without noise.

    This is ``g⁻¹(l)``: the most probable observation window leading the model to ``l``.
    """
    states = window_states(model, T)
    world = model.world
    return world.render(world.valid_states()[states])


def window_log_likelihood(model, obs: torch.Tensor) -> torch.Tensor:
    """``[W, S]`` ``log p(o_w | l_{T-1} = s) = Σ_t ℓ_t(w(s)_t)`` for windows ``obs [W, T, n]``.

    In this deterministic world the last state fixes the window's states, so this is the
    emission along ``w(s)``: no sum over paths.
    """
    obs = model.world.check_obs(obs)
    if obs.dim() != 3:
        raise ValueError(f"obs must have shape [W, T, n], got {tuple(obs.shape)}")
    W, T, _ = obs.shape
    window = window_states(model, T)  # [S, T]
    log_lik = model.hmm.log_likelihood(obs)  # [W, T, S]
    along = log_lik.gather(2, window.T.unsqueeze(0).expand(W, T, window.shape[0]))
    return along.sum(1)


def _last_step_posterior(model, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``p(l_{T-1} | o)`` ``[W, S]`` from the model's exact forward–backward, and the mask of
    windows with ``p(o) > 0`` (their rows are zero otherwise)."""
    hmm = model.hmm
    _, marginals, first = hmm.forward_backward(hmm.log_likelihood(obs), smooth=True)
    return marginals[:, -1], first < 0


def _window_log_emission(model, T: int) -> torch.Tensor:
    """``[S, T·n, 3]`` log emission of each cell of the window that ends in each state."""
    emission = model.compiled_tables()[2].double()
    return emission[window_states(model, T)].log().flatten(1, 2)


def _digits(cells: int) -> torch.Tensor:
    """All ``3^cells`` symbol vectors ``[3^cells, cells]``, the first cell varying fastest."""
    return (torch.arange(3**cells)[:, None] // 3 ** torch.arange(cells)) % 3


def _half_log_likelihood(log_e: torch.Tensor, symbols: torch.Tensor) -> torch.Tensor:
    """``[W, S]`` ``Σ_c log_e[s, c, symbols[w, c]]`` for ``log_e [S, C, 3]`` (all finite)."""
    one_hot = torch.nn.functional.one_hot(symbols, 3).reshape(symbols.shape[0], -1).double()
    return one_hot @ log_e.reshape(log_e.shape[0], -1).T


def _enumerated_matrix(src_model, dst_model, T, batch_windows, progress, desc) -> tuple:
    """``Σ_o p_src(o | s) p_dst(s' | o)`` over all ``3^C`` windows, ``C = nT``.

    The window's cells are split into two halves, ``log p(o | s) = A[o₁, s] + B[o₂, s]``, so a
    batch of windows is a broadcast sum instead of a fresh contraction.
    """
    log_src = _window_log_emission(src_model, T)  # [S, C, 3]
    log_dst = _window_log_emission(dst_model, T)
    C = log_src.shape[1]
    c1 = C // 2
    first, second = _digits(c1), _digits(C - c1)
    a_src, b_src = (
        _half_log_likelihood(log_src[:, :c1], first),
        _half_log_likelihood(log_src[:, c1:], second),
    )
    a_dst = _half_log_likelihood(log_dst[:, :c1], first) + last_step_prior(dst_model, T).log()
    b_dst = _half_log_likelihood(log_dst[:, c1:], second)
    chunk = max(1, batch_windows // second.shape[0])
    S = log_src.shape[0]
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
    T = check_positive_int(window, "window")
    max_windows = check_positive_int(max_windows, "max_windows")
    batch_windows = check_positive_int(batch_windows, "batch_windows")
    _check_pair(src_model, dst_model)
    _check_noise_pair(src_model, dst_model)
    n = src_model.world.n_cells
    if src_model.obs_noise > 0:
        if 3 ** (n * T) > max_windows:
            raise ValueError(
                f"exact enumeration of 3^(n·T) = 3^{n * T} observation windows exceeds "
                f"max_windows = {max_windows}; use obs_noise = 0, a smaller world or window, or "
                "rao_blackwell_translation"
            )
        desc = f"windows n={n} T={T}"
        matrix, mass = _enumerated_matrix(src_model, dst_model, T, batch_windows, progress, desc)
    else:
        obs = torch.unique(noise_free_windows(src_model, T), dim=0)
        likelihood = window_log_likelihood(src_model, obs).exp()  # [W, S_src]
        posterior, possible = _last_step_posterior(dst_model, obs)  # [W, S_dst]
        if bool((likelihood[~possible] > 0).any()):
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


def distance_from_identity(matrix: torch.Tensor) -> float:
    """Mean over rows of ``TV(M[s, ·], δ_s) = 1 - M[s, s]``: 0 exactly when ``M = I``."""
    return float(1 - matrix.diagonal().mean())


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
    max_window = check_positive_int(max_window, "max_window")
    eye = torch.eye(src_model.world.n_states, dtype=torch.float64)
    for T in range(1, max_window + 1):
        if torch.allclose(translation_matrix(src_model, dst_model, T), eye, atol=atol):
            return T
    return None


# =============================================================================== concepts
def concept_values(concept: Concept | str, model) -> torch.Tensor:
    """``[S]`` the concept on ``model``'s latent of every valid state (world order)."""
    concept = get_concept(concept, model.world)
    return concept(model, model.valid_latents)


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
    T = check_positive_int(window, "window")
    _check_pair(src_model, dst_model)
    if matrix is None:
        matrix = translation_matrix(src_model, dst_model, T)
    S = src_model.world.n_states
    if not isinstance(matrix, torch.Tensor) or tuple(matrix.shape) != (S, S):
        shape = tuple(matrix.shape) if isinstance(matrix, torch.Tensor) else type(matrix).__name__
        raise ValueError(
            f"matrix must be the [S, S] = [{S}, {S}] translation_matrix(src, dst, {T}), got {shape}"
        )
    matrix = matrix.double()
    prior = last_step_prior(src_model, T)
    joint = prior[:, None] * matrix  # p(l_src, l_dst)
    values = concept_values(concept, src_model)
    one_hot = torch.nn.functional.one_hot(values, concept.n_values(src_model.world)).double()
    numerator = joint.T @ one_hot
    return numerator / numerator.sum(-1, keepdim=True)


class TransferredIdentifier(ClassifierMixin, BaseEstimator):
    """The exact transferred identifier as a scikit-learn classifier: ``f_d(l_d) = E[c(l_s) |
    l_d]``.

    Args:
        concept: the source concept (a name or a :class:`~pyro_latent.concepts.Concept`).
        src_model, dst_model: the two models (same world).
        window: observation window ``T`` through which the latents are translated.

    ``fit()`` computes the exact translation (``matrix_``) and the table ``proba_ [S, K]``;
    ``predict_proba`` and ``predict`` then take *destination* latents ``[N, d]`` (before
    ``fit``, :class:`sklearn.exceptions.NotFittedError`).  :func:`sklearn.base.clone` gives an
    unfitted copy with the same parameters.
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
        self.classes_ = np.arange(concept.n_values(self.src_model.world))
        return self

    def _check_fitted(self):
        check_is_fitted(
            self, "proba_", msg="This TransferredIdentifier is not fitted yet: call fit() first."
        )

    def predict_proba(self, latents) -> np.ndarray:
        """``[N, K]`` ``P(c = k | l_d)`` for destination latents ``[N, d]``."""
        self._check_fitted()
        return self.proba_[self.dst_model.latent_index(latents)].numpy()

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
    T = check_positive_int(window, "window")
    _check_pair(src_model, dst_model)
    obs = noise_free_windows(dst_model, T)  # g_d⁻¹, indexed by destination state
    dst_back = dst_model.latent_index(dst_model.map(obs)[:, -1])
    src_latent = src_model.map(obs)[:, -1]
    values = concept(src_model, src_latent)
    exact = transfer_concept(concept, src_model, dst_model, T)
    roundtrip = dst_back == torch.arange(obs.shape[0])
    gap = 1 - exact.gather(-1, values[:, None]).squeeze(-1)
    return FormulaCheck(values, roundtrip, exact, gap.clamp_min(0))
