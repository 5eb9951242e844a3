"""The posterior tools against closed forms: a linear-Gaussian model and a Gaussian potential."""

from __future__ import annotations

import math

import arviz as az
import numpy as np
import pytest
import torch

from pyro_latent.vae import get_preset
from pyro_latent.vae.model import VAE
from pyro_latent.vae.posterior import (
    CONVERGENCE,
    convergence,
    importance_log_evidence,
    nuts_chains,
    standardised_offset,
    vae_log_evidence,
    vae_log_joint,
)

Normal, MVN = torch.distributions.Normal, torch.distributions.MultivariateNormal


@pytest.fixture
def linear_gaussian():
    """``z ~ N(0, I_2)``, ``x | z ~ N(W z, σ² I_3)``: ``p(x) = N(0, W Wᵀ + σ² I)`` and the
    posterior is Gaussian with known moments."""
    W = torch.tensor([[1.0, 0.5], [-0.3, 2.0], [0.7, 0.1]], dtype=torch.float64)
    sigma = 0.6
    x = torch.tensor([0.4, -1.2, 0.9], dtype=torch.float64)

    def log_joint(z):
        prior = Normal(0.0, 1.0).log_prob(z).sum(-1)
        return prior + Normal(z @ W.T, sigma).log_prob(x).sum(-1)

    evidence = float(
        MVN(torch.zeros(3, dtype=torch.float64), W @ W.T + sigma**2 * torch.eye(3)).log_prob(x)
    )
    precision = torch.eye(2, dtype=torch.float64) + W.T @ W / sigma**2
    cov = torch.linalg.inv(precision)
    mean = cov @ W.T @ x / sigma**2
    return log_joint, evidence, mean, cov


def test_importance_sampling_is_exact_with_the_true_posterior_as_proposal(linear_gaussian):
    log_joint, evidence, mean, cov = linear_gaussian
    out = importance_log_evidence(log_joint, MVN(mean, cov), 50)
    assert out["log_evidence"] == pytest.approx(evidence, abs=1e-6)
    assert out["gap"] == pytest.approx(0, abs=1e-6) and out["ess"] == pytest.approx(50)


def test_importance_sampling_converges_from_a_poor_proposal(linear_gaussian):
    log_joint, evidence, mean, cov = linear_gaussian
    proposal = MVN(mean + cov.diagonal().sqrt(), 3 * cov)  # shifted by one sd, too wide
    out = importance_log_evidence(log_joint, proposal, 20_000, seed=1)
    assert out["log_evidence"] == pytest.approx(evidence, abs=0.03)
    assert out["gap"] > 0.5  # the ELBO of a poor proposal is far below log p(x)
    assert 1 < out["ess"] < 20_000
    with pytest.raises(ValueError, match="n_samples"):
        importance_log_evidence(log_joint, proposal, 0)


def test_pareto_k_flags_a_proposal_too_narrow_and_off_centre(linear_gaussian):
    """PSIS's k̂: a proposal wider than the posterior has bounded weights (k̂ < 0.5); one half
    as wide and two sds off centre has weights of infinite variance (k̂ > 0.7 on every seed
    tried), and the estimate is flagged however close it happens to land."""
    log_joint, evidence, mean, cov = linear_gaussian
    sd = cov.diagonal().sqrt()
    wide = importance_log_evidence(log_joint, MVN(mean, 4 * cov), 2000, seed=0)
    assert wide["pareto_k"] < 0.5 and wide["reliable"] is True
    assert wide["log_evidence"] == pytest.approx(evidence, abs=0.05)
    for seed in range(3):
        narrow = importance_log_evidence(log_joint, MVN(mean + 2 * sd, 0.25 * cov), 2000, seed=seed)
        assert narrow["pareto_k"] > 0.7 and narrow["reliable"] is False, seed
    one = importance_log_evidence(log_joint, MVN(mean, cov), 1)
    assert one["pareto_k"] == math.inf and one["reliable"] is False


def test_nuts_finds_a_known_posterior_mean(linear_gaussian):
    log_joint, _, mean, cov = linear_gaussian
    data = nuts_chains(
        log_joint,
        torch.zeros(2, dtype=torch.float64),
        n_samples=300,
        warmup_steps=150,
        n_chains=2,
        seed=0,
    )
    draws = torch.as_tensor(data.posterior["z"].values).reshape(-1, 2)
    se = (cov.diagonal() / 100).sqrt()  # a generous effective sample size of 100
    assert ((draws.mean(0) - mean).abs() < 4 * se).all()
    assert float(az.rhat(data)["z"].max()) < 1.05
    offset = standardised_offset(mean + cov.diagonal().sqrt(), draws)
    assert offset["rms"] == pytest.approx(1.0, abs=0.3)


def test_nuts_rejects_bad_arguments(linear_gaussian):
    log_joint = linear_gaussian[0]
    with pytest.raises(ValueError, match="initial"):
        nuts_chains(log_joint, torch.tensor([math.nan, 0.0]))
    with pytest.raises(ValueError, match="n_chains"):
        nuts_chains(log_joint, torch.zeros(2), n_chains=0)


def test_vae_log_evidence_runs_on_an_untrained_vae():
    torch.manual_seed(0)
    vae = VAE(get_preset("vae2d-a"))
    x = (torch.rand(784) > 0.7).float()
    out = vae_log_evidence(vae, x, 200)
    assert math.isfinite(out["log_evidence"]) and out["gap"] >= 0 and 1 <= out["ess"] <= 200
    log_joint = vae_log_joint(vae, x)
    z = torch.randn(5, 2)
    batched = log_joint(z)
    assert batched.shape == (5,)
    one_by_one = torch.stack([log_joint(row) for row in z])
    torch.testing.assert_close(batched, one_by_one)
    bce = torch.nn.functional.binary_cross_entropy(vae.decode(z[:1])[0], x, reduction="sum")
    prior = Normal(0.0, 1.0).log_prob(z[0]).sum()
    torch.testing.assert_close(batched[0], prior - bce, rtol=1e-4, atol=1e-3)
    with pytest.raises(ValueError, match="a batch of 2"):
        vae_log_evidence(vae, torch.rand(2, 784), 10)


@pytest.mark.slow
def test_nuts_chains_are_the_same_in_worker_processes(linear_gaussian):
    log_joint = linear_gaussian[0]
    opts = {"n_samples": 30, "warmup_steps": 30, "n_chains": 2, "seed": 3}
    here = nuts_chains(log_joint, torch.zeros(2, dtype=torch.float64), **opts)
    there = nuts_chains(log_joint, torch.zeros(2, dtype=torch.float64), **opts, n_jobs=2)
    assert (here.posterior["z"].values == there.posterior["z"].values).all()


def _inference_data(draws, diverging=None):
    diverging = np.zeros(draws.shape[:2], dtype=bool) if diverging is None else diverging
    return az.from_dict(
        posterior={"z": draws}, sample_stats={"diverging": diverging}, dims={"z": ["latent"]}
    )


def test_convergence_criteria_on_draws_with_known_properties():
    """Independent draws of one distribution converge; chains stuck apart (R-hat), too few
    draws (ESS) or a single divergent transition do not."""
    rng = np.random.default_rng(0)
    good = _inference_data(rng.normal(size=(4, 1000, 3)))
    out = convergence(good)
    assert out["converged"] is True and out["r_hat_max"] <= CONVERGENCE["r_hat_max"]
    assert min(out["ess_bulk_min"], out["ess_tail_min"]) > 2000  # ≈ 4000 independent draws
    apart = rng.normal(size=(4, 1000, 3))
    apart[0, :, 1] += 0.5  # one chain in another place, in one dimension
    out = convergence(_inference_data(apart))
    assert out["converged"] is False and out["r_hat_max"] > 1.01
    few = convergence(_inference_data(rng.normal(size=(4, 60, 3))))
    assert few["converged"] is False and few["ess_bulk_min"] < 400 and few["r_hat_max"] < 1.1
    diverging = np.zeros((4, 1000), dtype=bool)
    diverging[2, 17] = True
    one = convergence(_inference_data(rng.normal(size=(4, 1000, 3)), diverging))
    assert one["divergences"] == 1 and one["converged"] is False
    # unrounded: a chain offset that gives R-hat between 1.01 and 1.015 must fail
    for shift in np.linspace(0.05, 0.3, 26):
        near = rng.normal(size=(4, 1000, 3))
        near[0, :, 0] += shift
        r_hat = convergence(_inference_data(near))["r_hat_max"]
        if 1.01 < r_hat < 1.015:
            assert convergence(_inference_data(near))["converged"] is False
            break
    else:
        pytest.fail("no offset gave an R-hat between 1.01 and 1.015")
    strict = convergence(good, {**CONVERGENCE, "ess_min": 10**6})
    assert strict["converged"] is False


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
def test_a_traced_potential_gives_the_same_chains(linear_gaussian):
    """``jit=True`` compiles the potential with torch.jit.trace: the same draws as without; a
    log-joint whose trace would take the wrong branch elsewhere runs uncompiled instead."""
    log_joint = linear_gaussian[0]
    start = torch.zeros(2, dtype=torch.float64)
    opts = {"n_samples": 30, "warmup_steps": 30, "n_chains": 2, "seed": 1}
    plain = nuts_chains(log_joint, start, **opts)
    traced = nuts_chains(log_joint, start, **opts, jit=True)
    assert traced.attrs["jit_compiled"] == 1 and plain.attrs["jit_compiled"] == 0
    np.testing.assert_allclose(traced.posterior["z"].values, plain.posterior["z"].values, atol=1e-8)

    def branching(z):  # Python control flow on a value: a trace would freeze one branch
        below = float(z.detach().sum()) < 0.5
        return log_joint(z) if below else log_joint(z) - z.square().sum(-1)

    fallback = nuts_chains(branching, start, **opts, jit=True)
    assert fallback.attrs["jit_compiled"] == 0
    reference = nuts_chains(branching, start, **opts)
    np.testing.assert_array_equal(fallback.posterior["z"].values, reference.posterior["z"].values)
