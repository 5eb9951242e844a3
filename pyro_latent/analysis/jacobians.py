r"""Spectra of Jacobians: the local structure that survives any smooth invertible change of
coordinates.

For a differentiable map ``f: ℝ^D → ℝ^P`` (a decoder ``z ↦ pixel means``, or one block of a
network) and a point ``z``, the Jacobian ``J(z) = ∂f/∂z`` is a ``P × D`` matrix with singular
values ``σ_1 ≥ … ≥ σ_k ≥ 0``, ``k = min(P, D)``.

**What is coordinate free.**  Re-express the input by a diffeomorphism ``h`` and the output by
``g``; by the chain rule the new map ``g ∘ f ∘ h`` has Jacobian

.. math::

    J_{g \circ f \circ h}(u) = Dg\bigl(f(h(u))\bigr) \; J_f\bigl(h(u)\bigr) \; Dh(u)
        = B \, J \, A,

with ``A`` and ``B`` invertible.  The rank of ``J`` is unchanged by this, and by the local form
of the rank theorem it is the only invariant: any two ``P × D`` matrices of equal rank are
``B J A`` of each other.  A Jacobian of rank ``r < min(P, D)`` says that, near ``z``, ``f``
factors through an ``r``-dimensional summary, whatever the coordinates.  The singular values
themselves are *not* invariant, only their count above zero is.

**Numerical rank.**  A trained network's Jacobian is never exactly singular, so
:func:`effective_rank` counts the singular values above a *relative* tolerance,

.. math::

    \operatorname{rank}_\tau J = \#\{ i : \sigma_i > \tau \, \sigma_1 \}, \qquad 0 < \tau < 1,

(0 for ``J = 0``), which is unchanged by a rescaling of ``f``.  It is invariant under ``B J A``
only up to conditioning: ``σ_min(A) σ_min(B) σ_i ≤ σ_i(BJA) ≤ ‖A‖ ‖B‖ σ_i``, so every ratio
``σ_i / σ_1`` moves by at most a factor ``κ = κ(A) κ(B)`` and
``rank_{τκ} J ≤ rank_τ(BJA) ≤ rank_{τ/κ} J``.  A rank that holds across several decades of
``τ`` is a property of the map; one that moves with ``τ`` is a property of the coordinates.

:func:`entropy_rank` is Roy & Vetterli's (2007) continuous effective rank
``exp(H(p))``, ``p_i = σ_i / Σ_j σ_j``: ``1`` for a rank-one ``J``, ``k`` for equal singular
values, and in between otherwise.

**Between layers.**  :func:`layer_spectra` splits an ``nn.Sequential`` into blocks that end at
each activation (``Linear → ReLU``, …, the last ``Linear`` alone) and takes the spectrum of each
block's Jacobian at the activations that feed it: the "low-dimensional summary between layers"
of a network.  For a ``Linear → ReLU`` block ``x ↦ relu(Wx + b)`` the Jacobian is
``diag(1[Wx + b > 0]) W``, piecewise constant in ``x``: its rank is that of the rows of ``W`` of
the active units, so it counts the active units (exactly, when those rows are linearly
independent), rather than measuring any curvature.

The Jacobians are computed in reverse mode, ``torch.func.vmap(torch.func.jacrev(...))`` over
batches of points, and their singular values in float64.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from pyro_latent.core.checks import check_positive_int, check_probability
from pyro_latent.core.latent_model import decoder_of, is_latent_model

__all__ = [
    "decoder_spectra",
    "effective_rank",
    "entropy_rank",
    "layer_spectra",
    "spectra_summary",
]

# A batch of Jacobians holds at most about this many entries (128 MB in float64), so that a wide
# block (e.g. 512 → 784) is taken a few dozen points at a time whatever ``batch_size`` says.
_JACOBIAN_ENTRIES = 2**24

# The module that defines torch's activations (ReLU, Tanh, Sigmoid, GELU, Softplus, ...): a block
# of a Sequential ends after any module whose class, or a base class, comes from it.
_ACTIVATION_MODULE = "torch.nn.modules.activation"


# ------------------------------------------------------------------------------- validation
def _points(values, name: str) -> torch.Tensor:
    """``values`` as a finite floating ``[N, d]`` tensor in its own floating dtype (the network's);
    integers become the default floating dtype."""
    if not isinstance(values, torch.Tensor):
        try:
            values = torch.as_tensor(np.asarray(values))
        except (TypeError, ValueError, RuntimeError):
            raise ValueError(f"{name} must be a real matrix, got {type(values).__name__}") from None
    if values.dtype == torch.bool or values.is_complex():
        raise ValueError(f"{name} must be a real matrix, got dtype {values.dtype}")
    if not values.is_floating_point():
        values = values.to(torch.get_default_dtype())
    if values.dim() != 2:
        raise ValueError(f"{name} must be 2-D [points, dims], got shape {tuple(values.shape)}")
    if values.shape[0] == 0 or values.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {tuple(values.shape)})")
    values = values.detach()
    if not bool(torch.isfinite(values).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    return values


def _spectra(singular_values) -> np.ndarray:
    """Singular values ``[N, k]`` as a finite, non-negative float64 array."""
    if isinstance(singular_values, torch.Tensor):
        singular_values = singular_values.detach().cpu().double().numpy()
    try:
        s = np.asarray(singular_values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"singular_values must be a real matrix, got {type(singular_values).__name__}"
        ) from None
    if s.ndim != 2:
        raise ValueError(f"singular_values must be 2-D [points, values], got shape {s.shape}")
    if s.size == 0:
        raise ValueError(f"singular_values is empty (shape {s.shape})")
    if not np.isfinite(s).all() or (s < 0).any():
        raise ValueError("singular_values must be finite and non-negative")
    return s


def _tolerance(tol) -> float:
    """A relative tolerance strictly between 0 and 1: ``τ = 0`` would count rounding noise as
    rank, ``τ ≥ 1`` nothing at all."""
    try:
        out = check_probability(tol, "tol", include_high=False)
    except ValueError:
        raise ValueError(f"tol must be a number in (0, 1), got {tol!r}") from None
    if out <= 0.0:
        raise ValueError(f"tol must be a number in (0, 1), got {tol!r}")
    return out


# -------------------------------------------------------------------------------- Jacobians
def _is_vmap_control_flow(error: RuntimeError) -> bool:
    """Whether ``error`` is vmap refusing a value-dependent branch, as in a check that the input
    is finite (``VAE.decode`` does one)."""
    message = str(error)
    return "vmap" in message and "data-dependent control flow" in message


def _vmapped_jacobians(f: Callable, xb: torch.Tensor) -> torch.Tensor:
    """``[B, P, D]``: one ``jacrev`` per point, vectorised; ``f`` sees each point as a batch of
    one, so a function that checks its input's shape accepts it."""
    return torch.func.vmap(torch.func.jacrev(lambda w: f(w[None])[0]))(xb)


def _summed_jacobians(f: Callable, xb: torch.Tensor) -> torch.Tensor:
    """``[B, P, D]`` from one call of ``f`` on the whole batch.  Row ``b`` of ``f(X)`` depends on
    row ``b`` of ``X`` alone, so ``∂(Σ_b f(X)_b)/∂x_b = J(x_b)``: the same Jacobians, without
    vmap seeing ``f``'s forward pass (and refusing its checks of the input's values)."""
    return torch.func.jacrev(lambda X: f(X).sum(0))(xb).permute(1, 0, 2)


def _jacobian_spectra(f: Callable, x: torch.Tensor, out_dim: int, batch_size: int, what: str):
    """Singular values ``[N, min(P, D)]`` (float64, CPU) of ``J(x_n)`` for every row of ``x``."""
    n, d = x.shape
    step = max(1, min(batch_size, _JACOBIAN_ENTRIES // (out_dim * d)))
    vectorised = True
    spectra = []
    # The torch.func transforms ignore an outer no_grad, which only stops the Jacobians from
    # recording a graph back to the network's parameters.
    with torch.no_grad():
        for start in range(0, n, step):
            xb = x[start : start + step]
            if vectorised:
                try:
                    J = _vmapped_jacobians(f, xb)
                except RuntimeError as error:
                    if not _is_vmap_control_flow(error):
                        raise
                    vectorised = False
            if not vectorised:
                J = _summed_jacobians(f, xb)
            J = J.detach().double()
            finite = torch.isfinite(J).flatten(1).all(1)
            if not bool(finite.all()):
                row = start + int((~finite).nonzero()[0, 0])
                raise ValueError(f"the Jacobian of {what} is not finite at row {row}")
            spectra.append(torch.linalg.svdvals(J).cpu())
    return torch.cat(spectra)


def _output_dim(f: Callable, x: torch.Tensor, what: str) -> int:
    """``P`` of ``f: [B, D] → [B, P]``, from one point, or a ``ValueError`` naming ``what``."""
    with torch.no_grad():
        out = f(x[:1])
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != 1:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(
            f"{what} must map [B, D] to [B, P]; got {shape} for an input of shape "
            f"{tuple(x[:1].shape)}"
        )
    if out.shape[1] == 0:
        raise ValueError(f"{what} has no outputs (shape {tuple(out.shape)})")
    return int(out.shape[1])


def decoder_spectra(decode, z, batch_size: int = 256) -> torch.Tensor:
    """Singular values of ``J(z_n) = ∂decode/∂z`` at each row of ``z [N, D]``.

    ``decode`` is a :class:`~pyro_latent.core.latent_model.LatentModel` or a function mapping
    ``[B, D] → [B, *obs]`` row by row (e.g. ``vae.decode``, which checks its input's shape and
    values); observations of any shape are flattened to ``P`` numbers.  Returns
    ``[N, min(P, D)]``, float64 on the CPU, each row descending.
    The Jacobians come ``batch_size`` points at a time (fewer when ``P · D`` is large) from
    ``vmap(jacrev(w ↦ decode(w[None])[0]))``; a ``decode`` that branches on its input's values,
    which vmap refuses, is differentiated on the whole batch instead (the same Jacobians, as its
    rows are independent).  Non-2-D or non-finite ``z`` (or, for a model, ``z`` whose width is
    not its ``latent_dim``), a ``batch_size`` that is not a positive int, and a non-finite
    Jacobian, are a ``ValueError``.
    """
    latent_dim = int(decode.latent_dim) if is_latent_model(decode) else None
    decoder = decoder_of(decode)

    def decode(w: torch.Tensor) -> torch.Tensor:
        out = decoder(w)
        if isinstance(out, torch.Tensor) and out.dim() > 2 and out.shape[0] == w.shape[0]:
            out = out.reshape(w.shape[0], -1)  # an observation [*obs] as P numbers
        return out

    z = _points(z, "z")
    if latent_dim is not None and z.shape[1] != latent_dim:
        raise ValueError(
            f"z must have shape [N, {latent_dim}] (the model's latent_dim), got {tuple(z.shape)}"
        )
    batch_size = check_positive_int(batch_size, "batch_size")
    out_dim = _output_dim(decode, z, "decode")
    return _jacobian_spectra(decode, z, out_dim, batch_size, "decode")


# ------------------------------------------------------------------------------------- ranks
def effective_rank(singular_values, tol: float) -> np.ndarray:
    """``#{i : σ_i > tol · σ_max}`` per row of ``singular_values [N, k]``: ``[N]`` ints.

    The tolerance is relative to the row's largest singular value, so the count ignores the
    map's overall scale; a zero Jacobian (``σ_max = 0``) has rank 0.  ``tol`` is in ``(0, 1)``
    (a negative, zero, NaN or ``≥ 1`` one is a ``ValueError``).
    """
    s = _spectra(singular_values)
    tol = _tolerance(tol)
    return (s > tol * s.max(axis=1, keepdims=True)).sum(axis=1).astype(np.int64)


def entropy_rank(singular_values) -> np.ndarray:
    """Roy & Vetterli's effective rank ``exp(H(p))``, ``p_i = σ_i / Σ_j σ_j``, per row: ``[N]``
    floats in ``[1, k]`` (0 for an all-zero row), with ``0 log 0 = 0``."""
    s = _spectra(singular_values)
    total = s.sum(axis=1, keepdims=True)
    p = np.divide(s, total, out=np.zeros_like(s), where=total > 0)
    terms = np.zeros_like(p)
    np.multiply(p, np.log(p, out=np.zeros_like(p), where=p > 0), out=terms)
    return np.where(total[:, 0] > 0, np.exp(-terms.sum(axis=1)), 0.0)


# ------------------------------------------------------------------------------------ layers
def _is_activation(module: nn.Module) -> bool:
    return any(cls.__module__ == _ACTIVATION_MODULE for cls in type(module).__mro__)


def _blocks(net: nn.Sequential) -> list[nn.Sequential]:
    """``net``'s modules in runs that each end after an activation; the modules after the last
    activation form the final block."""
    blocks, current = [], []
    for module in net:
        current.append(module)
        if _is_activation(module):
            blocks.append(nn.Sequential(*current))
            current = []
    if current:
        blocks.append(nn.Sequential(*current))
    return blocks


def layer_spectra(net: nn.Sequential, x, batch_size: int = 256) -> list[dict]:
    """The spectrum of each block of ``net`` at the activations that feed it, for inputs ``x``.

    ``net`` is split into blocks ending after each activation (``Linear → ReLU``, …, the last
    ``Linear`` alone; an activation is any module from ``torch.nn.modules.activation``).  Block
    ``b`` is differentiated at its own input, the output of blocks ``0..b-1`` on ``x [N, in]``.
    Returns one dict per block: ``{"block": b, "modules": [class names], "in": in_dim,
    "out": out_dim, "singular_values": [N, min(in, out)] float64 tensor}``.

    For ``Linear → ReLU`` the Jacobian is ``diag(1[Wx + b > 0]) W``, so its rank counts the
    active units (when their rows of ``W`` are independent): a ReLU block's rank is a census of
    active units, not a smooth summary.

    The float64 SVDs dominate the cost, ``O(N · in · out · min(in, out))``: for a 512 → 784
    block about half a second per point on one CPU core, so sample a few hundred points, or pass
    a network and ``x`` on a GPU.
    """
    if not isinstance(net, nn.Sequential):
        raise ValueError(f"net must be a torch.nn.Sequential, got {type(net).__name__}")
    if len(net) == 0:
        raise ValueError("net is an empty Sequential")
    h = _points(x, "x")
    parameter = next(net.parameters(), None)
    if parameter is not None:  # the inputs go where the network lives (a GPU, say)
        h = h.to(device=parameter.device, dtype=parameter.dtype)
    batch_size = check_positive_int(batch_size, "batch_size")
    results = []
    for index, block in enumerate(_blocks(net)):
        what = f"block {index}"
        try:
            out_dim = _output_dim(block, h, what)
        except RuntimeError as error:  # a width mismatch, from inside torch
            raise ValueError(
                f"{what} refuses its input of shape {tuple(h.shape)}: {error}"
            ) from None
        results.append(
            {
                "block": index,
                "modules": [type(m).__name__ for m in block],
                "in": int(h.shape[1]),
                "out": out_dim,
                "singular_values": _jacobian_spectra(block, h, out_dim, batch_size, what),
            }
        )
        with torch.no_grad():
            h = block(h)
    return results


# ----------------------------------------------------------------------------------- summary
def _stats(values: np.ndarray) -> dict:
    q25, median, q75 = (float(q) for q in np.quantile(values, [0.25, 0.5, 0.75]))
    low, high = values.min(), values.max()
    is_int = np.issubdtype(values.dtype, np.integer)
    return {
        "median": median,
        "q25": q25,
        "q75": q75,
        "min": int(low) if is_int else float(low),
        "max": int(high) if is_int else float(high),
    }


def _labels(labels, n: int) -> np.ndarray:
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    array = np.asarray(labels)
    if array.ndim != 1 or len(array) != n:
        raise ValueError(
            f"labels must be 1-D with one label per point ({n}), got shape {array.shape}"
        )
    return array


def _by_label(values: np.ndarray, labels: np.ndarray) -> dict:
    """Median of ``values`` per label, keyed by ``str(label)`` (JSON keys are strings)."""
    return {str(k.item()): float(np.median(values[labels == k])) for k in np.unique(labels)}


def spectra_summary(
    singular_values, tols: Sequence[float] = (1e-1, 1e-2, 1e-3), labels=None
) -> dict:
    """Distribution over points of the effective rank at each tolerance, and of the entropy rank.

    Returns plain Python numbers only (JSON-able)::

        {"n_points": N, "n_values": k,
         "effective_rank": {"0.1": {"median", "q25", "q75", "min", "max"[, "by_label"]}, ...},
         "entropy_rank": {"median", "q25", "q75", "min", "max"[, "by_label"]}}

    keyed by ``f"{tol:g}"``; ``by_label`` (when ``labels [N]`` is given) maps ``str(label)`` to
    the median over that label's points.
    """
    s = _spectra(singular_values)
    if isinstance(tols, str | bytes) or not isinstance(tols, Sequence) or len(tols) == 0:
        raise ValueError(f"tols must be a non-empty sequence of numbers in (0, 1), got {tols!r}")
    tols = [_tolerance(t) for t in tols]
    labels = None if labels is None else _labels(labels, len(s))

    def summarise(values: np.ndarray) -> dict:
        out = _stats(values)
        if labels is not None:
            out["by_label"] = _by_label(values, labels)
        return out

    return {
        "n_points": int(s.shape[0]),
        "n_values": int(s.shape[1]),
        "effective_rank": {f"{t:g}": summarise(effective_rank(s, t)) for t in tols},
        "entropy_rank": summarise(entropy_rank(s)),
    }
