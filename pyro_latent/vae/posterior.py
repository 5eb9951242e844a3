r"""The true posterior ``p(z | x)`` of a trained VAE, next to its amortised guide ``q(z | x)``.

The guide is trained on real images, so on an image off the data distribution (the post's
whitened, two-pixel-taller shoe) ``q(z | x)`` may sit far from the posterior.  Two checks:

**NUTS.**  The unnormalised posterior is ``log p(x, z) = log N(z; 0, I) + log p_θ(x | z)``;
:func:`nuts_chains` samples it with Pyro's ``NUTS`` from the potential ``U(z) = -log p(x, z)``,
one chain at a time from dispersed starting points (deterministic given the seed, no worker
processes), and returns ArviZ ``InferenceData`` so that R-hat and the effective sample size
come from ``az.summary``.

**Importance sampling.**  With the guide as proposal,

.. math::

    \log p(x) \approx \log \frac1K \sum_{k=1}^K \frac{p(x, z_k)}{q(z_k \mid x)}, \qquad
    z_k \sim q(z \mid x),

which is a lower bound in expectation that tightens as ``K`` grows (it is the IWAE bound), and
whose gap to the ELBO ``E_q[\log p(x, z) - \log q(z \mid x)]`` measures how far ``q`` is from the
posterior (the amortisation-plus-approximation gap).  The effective sample size of the weights,
``(Σ w)² / Σ w²``, and the Pareto shape ``k̂`` of the largest weights' tail (PSIS, Vehtari,
Simpson, Gelman, Yao & Gabry 2024, computed by ArviZ's ``psislw``) say how much the estimate can
be trusted: with ``k̂ > 0.7`` the weights' variance is effectively infinite and the estimate is
unreliable whatever ``K`` (:func:`importance_log_evidence`).

:func:`standardised_offset` is the distance between the encoder mean and the posterior mean in
posterior standard deviations, per dimension.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from contextlib import contextmanager

import arviz as az
import numpy as np
import pyro
import torch
from pyro.infer import MCMC, NUTS

from pyro_latent.core.checks import (
    check_nonnegative_float,
    check_nonnegative_int,
    check_positive_int,
)
from pyro_latent.core.latent_model import (
    check_latent_model,
    encode,
    log_prior,
    require_likelihood,
    require_posterior,
)
from pyro_latent.vae.local_gaussian import optimise_gaussians

__all__ = [
    "CONVERGENCE",
    "ImportanceEstimate",
    "PARETO_K_THRESHOLD",
    "PROPOSALS",
    "STUDENT_DF",
    "convergence",
    "evidence_proposals",
    "posterior_check",
    "importance_log_evidence",
    "nuts_chains",
    "pareto_k",
    "standardised_offset",
    "vae_log_joint",
    "vae_log_evidence",
]

# Pyro's split R-hat (run by every chain's diagnostics) halves each chain and needs two draws
# in each half; ArviZ's R-hat compares chains, so it needs two of them.
MIN_NUTS_SAMPLES = 4
MIN_CHECK_CHAINS = 2
# Above this Pareto k̂ an importance-sampling estimate is unreliable (Vehtari et al., PSIS).
PARETO_K_THRESHOLD = 0.7
# Converged: every latent's rank-normalised R-hat at most 1.01, bulk and tail ESS at least 400,
# no divergent transition (Vehtari, Gelman, Simpson, Carpenter & Bürkner 2021; ArviZ's defaults).
CONVERGENCE = {"r_hat_max": 1.01, "ess_min": 400, "divergences_max": 0}
NUTS_OPTIONS = ("n_samples", "warmup_steps", "n_chains", "spread")
# The heavier-tailed proposal: a Student-t with q*'s location and scale and this many degrees of
# freedom (its weights stay bounded where q*'s Gaussian tails fall off faster than p(z | x)).
STUDENT_DF = 3.0
PROPOSALS = ("guide", "local", "local_t")


def _check_callable(f, name: str) -> None:
    if not callable(f):
        raise TypeError(f"{name} must be callable, got {type(f).__name__}")


def _one_observation(model, x) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """``(batch [1, *obs], loc [1, D], scale)`` for one observation ``x``, given as ``[*obs]``
    or as a batch of one ``[1, *obs]`` (whichever the model's encoder accepts)."""
    check_latent_model(model)
    if not isinstance(x, torch.Tensor) or x.ndim < 1:
        raise ValueError(f"x must be one observation as a tensor; got {type(x).__name__}")
    for batch in (x[None], x):
        try:
            with torch.no_grad():
                loc, scale = encode(model, batch)
        except (ValueError, RuntimeError):
            continue
        if tuple(loc.shape) == (1, model.latent_dim):
            return batch, loc, scale
        if loc.ndim == 2 and loc.shape[1] == model.latent_dim:
            raise ValueError(f"expected one observation, got a batch of {loc.shape[0]}")
    raise ValueError(
        f"x must be one observation [*obs] or a batch of one [1, *obs] that the model encodes; "
        f"got shape {tuple(x.shape)}"
    )


def vae_log_joint(vae, x: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """``z [..., D] -> log p(x, z) [...]`` for one observation ``x`` under any
    :class:`~pyro_latent.core.latent_model.LatentModel` with a likelihood: its prior (``N(0,
    I)`` unless it has its own ``log_prior``) plus ``log_likelihood``."""
    require_likelihood(vae, purpose="log p(x, z)")
    x = _one_observation(vae, x)[0][0]

    def log_joint(z: torch.Tensor) -> torch.Tensor:
        return log_prior(vae, z) + vae.log_likelihood(x, z)

    return log_joint


class ImportanceEstimate(dict):
    """``{"log_evidence", "log_evidence_se", "elbo", "gap", "ess", "pareto_k", "reliable",
    "n_samples"}``: the importance-sampled ``log p(x)`` and its delta-method standard error
    ``sd(w) / (mean(w) √K) = √((K / ESS - 1) / K)``, the ELBO from the same draws, their
    difference, the weights' effective sample size, the Pareto ``k̂`` of their tail and whether
    ``k̂ ≤ 0.7``.  The standard error means something only where ``k̂ ≤ 0.7``: beyond, the
    weights' variance is effectively infinite."""


def importance_log_evidence(
    log_joint: Callable[[torch.Tensor], torch.Tensor],
    proposal: torch.distributions.Distribution,
    n_samples: int,
    *,
    seed: int = 0,
) -> ImportanceEstimate:
    """``log (1/K) Σ p(x, z_k) / q(z_k)`` with ``z_k ~ proposal`` (see the module docstring).

    ``proposal`` is a torch distribution over ``z`` with event shape ``[D]``; draws use a private
    generator seeded by ``seed``, so the global RNG is left alone.  A ``TypeError`` when
    ``log_joint`` is not callable or ``proposal`` is not a torch distribution, a ``ValueError``
    when ``proposal`` is not over one vector ``[D]`` or ``log_joint`` does not map ``[K, D]`` to
    ``[K]``.
    """
    _check_callable(log_joint, "log_joint")
    if not isinstance(proposal, torch.distributions.Distribution):
        raise TypeError(
            f"proposal must be a torch.distributions.Distribution, got {type(proposal).__name__}"
        )
    if len(proposal.event_shape) != 1 or len(proposal.batch_shape) != 0:
        raise ValueError(
            "proposal must be a distribution over one vector z [D] (event shape [D], no batch "
            f"shape), got event shape {tuple(proposal.event_shape)} and batch shape "
            f"{tuple(proposal.batch_shape)} (wrap independent dimensions in "
            "torch.distributions.Independent(..., 1))"
        )
    K = check_positive_int(n_samples, "n_samples")
    seed = check_nonnegative_int(seed, "seed")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        z = proposal.sample((K,))
    with torch.no_grad():
        joint = log_joint(z)
        if not isinstance(joint, torch.Tensor) or tuple(joint.shape) != (K,):
            shape = tuple(joint.shape) if isinstance(joint, torch.Tensor) else type(joint).__name__
            raise ValueError(f"log_joint must map [K, D] draws to [K] values, got {shape}")
        log_w = (joint - proposal.log_prob(z)).double()
    if not bool(torch.isfinite(log_w).all()):
        raise ValueError("a log weight is not finite: the proposal puts mass where p(x, z) = 0")
    log_evidence = float(torch.logsumexp(log_w, 0) - math.log(K))
    normalised = torch.softmax(log_w, 0)
    elbo = float(log_w.mean())
    k_hat = float(pareto_k(log_w.numpy()))
    ess = float(1 / normalised.square().sum())
    return ImportanceEstimate(
        log_evidence=log_evidence,
        log_evidence_se=math.sqrt(max(K / ess - 1, 0.0) / K),
        elbo=elbo,
        gap=log_evidence - elbo,
        ess=ess,
        pareto_k=k_hat,
        reliable=bool(k_hat <= PARETO_K_THRESHOLD),
        n_samples=K,
    )


def pareto_k(log_weights: np.ndarray) -> np.ndarray:
    """PSIS's ``k̂`` of log importance weights ``[..., K]`` (draws last), one per leading index
    (ArviZ ``psislw``).  ArviZ fits the tail of the largest ``min(K/5, 3√K)`` weights and
    returns ``inf`` when there are too few draws to fit it (a few dozen); a single draw, which
    ArviZ cannot take, is ``inf`` too: unreliable."""
    import warnings

    log_weights = np.asarray(log_weights, dtype=float)
    if log_weights.shape[-1] < 2:
        return np.full(log_weights.shape[:-1], math.inf)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, k = az.psislw(log_weights)
    k = np.asarray(k, dtype=float).reshape(log_weights.shape[:-1])
    return np.where(np.isfinite(k), k, math.inf)


def evidence_proposals(loc, scale, local_loc, local_scale) -> dict:
    """The proposals of :data:`PROPOSALS` for codes ``[..., D]``, as distributions with event
    ``[D]``: the guide ``N(loc, scale²)``, ``q* = N(local_loc, local_scale²)`` and a Student-t
    with :data:`STUDENT_DF` degrees of freedom and ``q*``'s location and scale."""
    dist = torch.distributions
    return {
        "guide": dist.Independent(dist.Normal(loc, scale), 1),
        "local": dist.Independent(dist.Normal(local_loc, local_scale), 1),
        "local_t": dist.Independent(dist.StudentT(STUDENT_DF, local_loc, local_scale), 1),
    }


def vae_log_evidence(vae, x: torch.Tensor, n_samples: int = 1000, *, seed: int = 0):
    """:func:`importance_log_evidence` for one observation with the model's own encoder
    ``q(z | x)`` as proposal (a :class:`TypeError` for a deterministic encoder)."""
    _, loc, scale = _one_observation(vae, x)
    scale = require_posterior(scale, purpose="importance sampling with the guide")
    proposal = torch.distributions.Independent(torch.distributions.Normal(loc[0], scale[0]), 1)
    return importance_log_evidence(vae_log_joint(vae, x), proposal, n_samples, seed=seed)


def _traced_potential(log_joint, start):
    """``z -> -log_joint(z)`` compiled by ``torch.jit.trace`` at ``start``, or ``None`` when it
    cannot be traced (a captured tensor that requires grad, data-dependent control flow)."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(lambda z: -log_joint(z), (start.clone(),), check_trace=False)
            probe = start.clone().requires_grad_(True)
            (grad,) = torch.autograd.grad(traced(probe), probe)
    except RuntimeError:
        return None
    # A trace records one path through the code: check it away from where it was made too.
    ramp = torch.linspace(0.5, 1.0, start.numel(), dtype=start.dtype)
    probes = (start, start + ramp, start - ramp)
    with torch.no_grad():
        for z in probes:
            expected, got = -log_joint(z), traced(z)
            if not (torch.isfinite(got) and torch.allclose(got, expected, rtol=1e-5, atol=1e-6)):
                return None
    if not bool(torch.isfinite(grad).all()):
        return None
    return traced


def _one_chain(log_joint, start, n_samples, warmup_steps, seed, threads, jit=False):
    """One NUTS chain from ``start``; ``(draws [N, D], diverging [N], jit_compiled)``.  Seeds
    itself, so a chain gives the same draws in this process or in a worker."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        pyro.set_rng_seed(seed)
        traced = _traced_potential(log_joint, start) if jit else None
        negative_log_joint = traced if traced is not None else (lambda z: -log_joint(z))

        def potential(params):
            return negative_log_joint(params["z"])

        kernel = NUTS(potential_fn=potential, adapt_step_size=True, adapt_mass_matrix=True)
        mcmc = MCMC(
            kernel,
            num_samples=n_samples,
            warmup_steps=warmup_steps,
            initial_params={"z": start},
            disable_progbar=True,
        )
        mcmc.run()
        diverging = np.zeros(n_samples, dtype=bool)
        diverging[mcmc.diagnostics()["divergences"]["chain 0"]] = True
        return mcmc.get_samples()["z"].detach().double().numpy(), diverging, traced is not None
    finally:
        torch.set_num_threads(before)


def nuts_chains(
    log_joint: Callable[[torch.Tensor], torch.Tensor],
    initial: torch.Tensor,
    *,
    n_samples: int = 200,
    warmup_steps: int = 200,
    n_chains: int = 4,
    spread: float = 1.0,
    seed: int = 0,
    n_jobs: int = 1,
    jit: bool = False,
):
    """Posterior draws of ``z`` by NUTS from the potential ``-log_joint(z)``, as ArviZ
    ``InferenceData`` with variable ``z`` of dims ``(chain, draw, latent)``.

    Chain ``c`` starts at ``initial + spread · ε_c``, ``ε_c ~ N(0, I)`` (drawn from ``seed``), so
    that R-hat can see chains that do not mix, and is seeded with ``1000 · seed + c``.  With
    ``n_jobs > 1`` the chains run in joblib worker processes with one torch thread each; the
    draws are the same as in one process (each chain carries its own seed and thread count).

    With ``jit`` the potential is compiled by ``torch.jit.trace`` (Pyro's own ``jit_compile``
    does nothing for a ``potential_fn``); that needs every tensor ``log_joint`` captures not to
    require grad (:func:`posterior_check` freezes the model's parameters for it), and a potential
    that cannot be traced runs as it is.  ``attrs["jit_compiled"]`` says which happened.

    ``n_samples`` must be at least 4 (Pyro's split R-hat, run on every chain, needs two draws
    in each half of a chain); R-hat across chains (``az.rhat``, ``az.summary``) also needs
    ``n_chains ≥ 2``.  Bad arguments are a ``ValueError`` naming them.
    """
    from joblib import Parallel, delayed

    _check_callable(log_joint, "log_joint")
    n_samples = _check_n_samples(n_samples)
    warmup_steps = check_nonnegative_int(warmup_steps, "warmup_steps")
    n_chains = check_positive_int(n_chains, "n_chains")
    seed = check_nonnegative_int(seed, "seed")
    n_jobs = check_positive_int(n_jobs, "n_jobs")
    try:
        initial = torch.as_tensor(initial)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(
            f"initial must be one finite latent [D], got {type(initial).__name__}"
        ) from None
    if (
        initial.dim() != 1
        or initial.numel() == 0
        or not initial.is_floating_point()
        or not bool(torch.isfinite(initial).all())
    ):
        raise ValueError(
            f"initial must be one finite floating latent [D], got shape {tuple(initial.shape)} "
            f"({initial.dtype})"
        )
    check_nonnegative_float(spread, "spread")
    noise = torch.randn(
        n_chains, initial.numel(), generator=torch.Generator().manual_seed(seed)
    ).to(initial.dtype)
    tasks = [
        (log_joint, initial + spread * noise[c], n_samples, warmup_steps, seed * 1000 + c, 1, jit)
        for c in range(n_chains)
    ]
    if n_jobs == 1:
        chains = [_one_chain(*task) for task in tasks]
    else:
        chains = Parallel(n_jobs=min(n_jobs, n_chains))(delayed(_one_chain)(*t) for t in tasks)
    return az.from_dict(
        posterior={"z": np.stack([draws for draws, _, _ in chains])},
        sample_stats={"diverging": np.stack([diverging for _, diverging, _ in chains])},
        dims={"z": ["latent"]},
        attrs={
            "sampler": "pyro NUTS",
            "warmup_steps": warmup_steps,
            "jit_compiled": int(all(compiled for _, _, compiled in chains)),
        },  # fmt: skip
    )


def _check_n_samples(n_samples) -> int:
    out = check_positive_int(n_samples, "n_samples")
    if out < MIN_NUTS_SAMPLES:
        raise ValueError(
            f"n_samples must be at least {MIN_NUTS_SAMPLES} (Pyro's split R-hat needs two "
            f"draws in each half of every chain), got {n_samples!r}"
        )
    return out


def standardised_offset(point, draws) -> dict:
    """How far ``point`` (e.g. the encoder mean) lies from the posterior mean, in posterior
    standard deviations: ``t_d = (point_d - mean_d) / sd_d`` per dimension, from ``draws [N, D]``
    (or ``[..., N, D]``: chains are flattened).  Returns ``{"per_dim", "max_abs", "rms"}``.

    A ``ValueError`` when ``point`` is not a finite vector ``[D]``, ``draws`` does not end in
    ``D`` or holds fewer than 2 draws or non-finite values, or a dimension has no spread.
    """
    try:
        point_array = np.asarray(point, dtype=np.float64)
        draws_array = np.asarray(draws, dtype=np.float64)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(
            "point and draws must be real arrays (point a vector [D], draws [N, D])"
        ) from None
    if point_array.ndim != 1 or point_array.size == 0:
        raise ValueError(f"point must be a non-empty vector [D], got shape {point_array.shape}")
    if not np.isfinite(point_array).all():
        raise ValueError("point must be finite, got NaN or infinite entries")
    D = point_array.size
    if draws_array.ndim < 2 or draws_array.shape[-1] != D:
        raise ValueError(
            f"draws must be [N, D] with D = len(point) = {D}, got shape {draws_array.shape}"
        )
    count = draws_array.size // D
    if count < 2:
        raise ValueError(f"draws must hold at least 2 draws for a standard deviation, got {count}")
    if not np.isfinite(draws_array).all():
        raise ValueError("draws must be finite, got NaN or infinite values")
    draws = torch.as_tensor(np.asarray(draws), dtype=torch.float64).reshape(-1, len(point))
    point = torch.as_tensor(point, dtype=torch.float64)
    sd = draws.std(0)
    if bool((sd == 0).any()):
        raise ValueError("a latent dimension has zero posterior spread in the draws")
    t = (point - draws.mean(0)) / sd
    return {
        "per_dim": t.tolist(),
        "max_abs": float(t.abs().max()),
        "rms": float(t.square().mean().sqrt()),
    }


def _check_nuts_options(nuts) -> None:
    """``nuts`` holds only options of :func:`nuts_chains` that :func:`posterior_check` passes on,
    with enough draws and chains for R-hat."""
    if not isinstance(nuts, Mapping):
        raise TypeError(f"nuts must be a dict of nuts_chains options, got {type(nuts).__name__}")
    unknown = [key for key in nuts if key not in NUTS_OPTIONS]
    if unknown:
        hint = (
            " (seed and n_jobs are posterior_check's own arguments)"
            if {"seed", "n_jobs"} & set(unknown)
            else ""
        )
        raise ValueError(
            f"nuts has unknown option(s) {', '.join(repr(k) for k in unknown)}; allowed keys: "
            f"{', '.join(NUTS_OPTIONS)}{hint}"
        )
    if "n_samples" in nuts:
        _check_n_samples(nuts["n_samples"])
    default_chains = inspect.signature(nuts_chains).parameters["n_chains"].default
    n_chains = nuts.get("n_chains", default_chains)
    chains = check_positive_int(n_chains, "nuts['n_chains']")
    if chains < MIN_CHECK_CHAINS:
        raise ValueError(
            f"nuts['n_chains'] must be at least {MIN_CHECK_CHAINS}: posterior_check reports "
            f"R-hat, which compares chains; got {n_chains!r}"
        )
    if "warmup_steps" in nuts:
        check_nonnegative_int(nuts["warmup_steps"], "nuts['warmup_steps']")
    if "spread" in nuts:
        check_nonnegative_float(nuts["spread"], "nuts['spread']")


@contextmanager
def _frozen_parameters(model):
    """``requires_grad`` off for the parameters of ``model`` (when it is a ``torch.nn.Module``)
    for the length of the block, then back on."""
    params = []
    if isinstance(model, torch.nn.Module):
        params = [p for p in model.parameters() if p.requires_grad]
    for param in params:
        param.requires_grad_(False)
    try:
        yield
    finally:
        for param in params:
            param.requires_grad_(True)


def convergence(data, criteria: Mapping = CONVERGENCE) -> dict:
    """ArviZ's diagnostics of NUTS draws ``data`` (``InferenceData`` with variable ``z``) against
    ``criteria`` (:data:`CONVERGENCE`): ``{"r_hat_max", "ess_bulk_min", "ess_tail_min",
    "divergences", "converged"}``, the worst value over the latent dimensions of each, unrounded
    (``az.summary`` rounds R-hat to two decimals, which would let 1.014 pass as 1.01)."""
    out = {
        "r_hat_max": float(az.rhat(data)["z"].values.max()),
        "ess_bulk_min": float(az.ess(data, method="bulk")["z"].values.min()),
        "ess_tail_min": float(az.ess(data, method="tail")["z"].values.min()),
        "divergences": int(data.sample_stats["diverging"].values.sum()),
    }
    out["converged"] = bool(
        out["r_hat_max"] <= criteria["r_hat_max"]
        and min(out["ess_bulk_min"], out["ess_tail_min"]) >= criteria["ess_min"]
        and out["divergences"] <= criteria["divergences_max"]
    )
    return out


def _evidence(vae, x, loc, scale, is_samples: int, seed: int, local_steps: int) -> dict:
    """The three importance-sampled estimates of :func:`posterior_check` and the best reliable
    one."""
    log_joint = vae_log_joint(vae, x)
    local = optimise_gaussians(log_joint, loc, scale, steps=local_steps, seed=seed)
    proposals = evidence_proposals(loc[0], scale[0], local.loc[0], local.scale[0])
    # Draws from another seed than the optimiser's: an ELBO read off the noise q* was fitted to
    # would be biased upwards (and the guide's estimate keeps its seed, as before q* existed).
    estimates = {
        name: dict(
            importance_log_evidence(
                log_joint,
                q,
                is_samples,
                seed=seed if name == "guide" else seed + 1,
            )
        )
        for name, q in proposals.items()
    }
    local_elbo = estimates["local"]["elbo"]
    reliable = {k: e["log_evidence_se"] for k, e in estimates.items() if e["reliable"]}
    best = min(reliable, key=reliable.get) if reliable else None
    return {
        "importance": estimates["guide"],
        "importance_local": estimates["local"],
        "importance_local_t": estimates["local_t"],
        "local_elbo": local_elbo,
        "log_evidence": estimates[best]["log_evidence"] if best else None,
        "log_evidence_se": estimates[best]["log_evidence_se"] if best else None,
        "log_evidence_from": best,
        "approximation_gap": estimates[best]["log_evidence"] - local_elbo if best else None,
        "amortisation_gap": local_elbo - estimates["guide"]["elbo"],
    }


def posterior_check(
    vae,
    x: torch.Tensor,
    *,
    nuts: dict,
    is_samples: int = 1000,
    seed: int = 0,
    n_jobs: int = 1,
    max_samples: int | None = None,
    local_steps: int = 500,
) -> tuple[dict, object]:
    """The encoder against the true posterior for one observation, under any
    :class:`~pyro_latent.core.latent_model.LatentModel` with a posterior and a likelihood:
    NUTS from the encoder mean (:func:`nuts_chains` with the options ``nuts``) and importance
    sampling with the guide (:func:`vae_log_evidence`).

    **Until converged.**  When the chains fail :data:`CONVERGENCE` (R-hat ≤ 1.01, bulk and
    tail ESS ≥ 400, no divergence; :func:`convergence`), they are run again from the start with
    twice the draws and twice the warm-up, as long as the draws per chain stay within
    ``max_samples`` (``None``: one run only).  Every run's diagnostics are kept in ``rounds``.

    Returns ``(summary, InferenceData)`` of the last run; ``summary`` has the diagnostics of
    :func:`convergence` (``converged`` among them), ``rounds``, ``n_samples`` and
    ``warmup_steps`` of the last run, ``offset`` (:func:`standardised_offset` of the encoder
    mean), ``posterior_mean``, ``summary`` (per dimension), and the evidence:

    * ``importance``: importance sampling with the guide ``q(z | x)`` (with its Pareto ``k̂``);
    * ``importance_local``: with ``q*``, the guide refined for this image by ``local_steps`` of
      SVI (:func:`~pyro_latent.vae.local_gaussian.optimise_gaussians`), and
      ``importance_local_t``: with a Student-t of ``q*``'s location and scale
      (:data:`STUDENT_DF` degrees of freedom); ``local_elbo``: ``L[q*]`` (from the draws of
      ``importance_local``);
    * ``log_evidence``: the most precise (smallest standard error) of the reliable
      (``k̂ ≤ 0.7``) estimates, and ``log_evidence_from`` (``"guide"``, ``"local"`` or
      ``"local_t"``); ``None`` for both when none is reliable.  Not the highest: each is a
      lower bound only in expectation, and the highest is the luckiest draw; its
      ``log_evidence_se``;
    * Cremer et al.'s ``approximation_gap`` ``log p(x) - L[q*]`` (``None`` without a reliable
      ``log p(x)``) and ``amortisation_gap`` ``L[q*] - L[q]``.

    The posterior numbers are there whether or not the chains converged: a reader must check
    ``converged`` before quoting them.

    ``nuts`` may hold only :data:`NUTS_OPTIONS` (``seed`` and ``n_jobs`` are this function's
    own arguments); R-hat needs ``n_chains ≥ 2`` and ``n_samples ≥ 4``.  Anything else is a
    ``ValueError`` naming the option, checked before any sampling.
    """

    _check_nuts_options(nuts)
    is_samples = check_positive_int(is_samples, "is_samples")
    seed = check_nonnegative_int(seed, "seed")
    n_jobs = check_positive_int(n_jobs, "n_jobs")
    local_steps = check_nonnegative_int(local_steps, "local_steps")
    defaults = inspect.signature(nuts_chains).parameters
    options = {k: nuts.get(k, defaults[k].default) for k in NUTS_OPTIONS}
    if max_samples is not None:
        max_samples = check_positive_int(max_samples, "max_samples")
        if max_samples < options["n_samples"]:
            raise ValueError(
                f"max_samples ({max_samples}) must be at least nuts['n_samples'] "
                f"({options['n_samples']}): it caps the draws per chain when runs are doubled"
            )
    x, loc, scale = _one_observation(vae, x)
    require_posterior(scale, purpose="posterior_check (importance sampling with the guide)")
    mu = loc[0]
    rounds = []
    while True:
        with _frozen_parameters(vae):  # so that the potential can be traced
            data = nuts_chains(
                vae_log_joint(vae, x), mu, **options, seed=seed, n_jobs=n_jobs, jit=True
            )
        diagnosed = convergence(data)
        rounds.append({"n_samples": options["n_samples"], "warmup_steps": options["warmup_steps"],
                       **diagnosed})  # fmt: skip
        if diagnosed["converged"] or max_samples is None or 2 * options["n_samples"] > max_samples:
            break
        options["n_samples"] *= 2
        options["warmup_steps"] = max(2 * options["warmup_steps"], 1)
    draws = data.posterior["z"].values.reshape(-1, mu.numel())
    evidence = _evidence(vae, x, loc, scale, is_samples, seed, local_steps)
    summary = {
        **diagnosed,
        "rounds": rounds,
        "n_samples": options["n_samples"],
        "warmup_steps": options["warmup_steps"],
        "jit_compiled": bool(data.attrs.get("jit_compiled", 0)),
        "offset": standardised_offset(mu, draws),
        **evidence,
        "posterior_mean": draws.mean(0).tolist(),
        "summary": [
            {"dim": i, **{k: float(row[k]) for k in ("mean", "sd", "r_hat", "ess_bulk")}}
            for i, (_, row) in enumerate(az.summary(data).iterrows())
        ],
    }
    return summary, data
