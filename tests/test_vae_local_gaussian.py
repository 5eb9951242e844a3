"""The locally optimised Gaussian q* and every posterior estimator against exact answers: the
mean-field optimum of a linear-Gaussian model in closed form, and a 2-D VAE by quadrature."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pyro_latent.vae import get_preset
from pyro_latent.vae.local_gaussian import (
    gaussian_elbo,
    local_gaussians,
    model_log_joint,
    optimise_gaussians,
)
from pyro_latent.vae.model import VAE
from pyro_latent.vae.posterior import posterior_check

Normal, MVN = torch.distributions.Normal, torch.distributions.MultivariateNormal


@pytest.fixture(scope="module")
def linear():
    """``z ~ N(0, I_3)``, ``x | z ~ N(W z, σ² I_4)`` for three images: the posterior precision is
    ``Λ = I + WᵀW/σ²``; the best diagonal Gaussian has the posterior mean and variances
    ``1/Λ_dd``, and its ELBO is ``log p(x) - ½(Σ log Λ_dd - log det Λ)``."""
    g = torch.Generator().manual_seed(0)
    D, P, sigma = 3, 4, 0.5
    W = torch.randn(P, D, generator=g, dtype=torch.float64)
    X = torch.randn(3, P, generator=g, dtype=torch.float64)

    def log_joint(z):
        return Normal(0.0, 1.0).log_prob(z).sum(-1) + Normal(z @ W.T, sigma).log_prob(X).sum(-1)

    precision = torch.eye(D, dtype=torch.float64) + W.T @ W / sigma**2
    mean = torch.linalg.solve(precision, W.T @ X.T / sigma**2).T
    scale = precision.diagonal().rsqrt().expand(3, D)
    covariance = W @ W.T + sigma**2 * torch.eye(P, dtype=torch.float64)
    evidence = MVN(torch.zeros(P, dtype=torch.float64), covariance).log_prob(X)
    kl = 0.5 * (precision.diagonal().log().sum() - torch.logdet(precision))
    return log_joint, mean, scale, evidence, evidence - kl, precision


def test_q_star_is_the_mean_field_optimum_of_a_linear_gaussian(linear):
    log_joint, mean, scale, evidence, best_elbo, _ = linear
    start = torch.zeros_like(mean), torch.ones_like(mean)  # far from the answer
    q = optimise_gaussians(log_joint, *start, steps=1500, lr=0.02, n_particles=16)
    assert ((q.loc - mean).abs() / scale).max() < 0.15
    assert (q.scale / scale - 1).abs().max() < 0.05
    elbo, se = gaussian_elbo(log_joint, q.loc, q.scale, n_particles=4000, seed=1)
    assert ((elbo - best_elbo).abs() < 4 * se + 1e-3).all()
    assert (elbo < evidence).all() and (best_elbo < evidence).all()
    assert q.history[-1] > q.history[0]  # the ELBO rose from the poor start
    exact, _ = gaussian_elbo(log_joint, mean, scale, n_particles=4000, seed=1)
    assert ((exact - best_elbo).abs() < 4 * se).all()


def test_bad_starts_and_log_joints_are_refused(linear):
    log_joint, mean, scale, *_ = linear
    with pytest.raises(ValueError, match="scale must be positive"):
        optimise_gaussians(log_joint, mean, -scale)
    with pytest.raises(ValueError, match=r"loc must be a tensor \[N, D\]"):
        optimise_gaussians(log_joint, mean[0], scale[0])
    with pytest.raises(ValueError, match=r"log_joint must map draws \[S, N, D\] to \[S, N\]"):
        optimise_gaussians(lambda z: z.sum(), mean, scale, steps=1)
    with pytest.raises(ValueError, match="non-finite at step 1"):
        optimise_gaussians(lambda z: z.sum(-1) * math.nan, mean, scale, steps=1)
    with pytest.raises(TypeError, match="posterior"):
        from pyro_latent import as_latent_model

        plain = as_latent_model(lambda x: x[:, :2], lambda z: torch.sigmoid(z @ torch.ones(2, 784)),
                                latent_dim=2, likelihood="bernoulli")  # fmt: skip
        local_gaussians(plain, torch.rand(2, 784), steps=1)


# --------------------------------------------------------------- a 2-D VAE against quadrature


@pytest.fixture(scope="module")
def vae2d():
    """An untrained 2-D VAE, one image drawn from its decoder at z = (1.2, -0.8) (a real,
    peaked posterior), and that posterior on a grid: log p(x) and the moments."""
    torch.manual_seed(0)
    vae = VAE(get_preset("vae2d-a")).double().eval()
    with torch.no_grad():
        probs = vae.decode(torch.tensor([[1.2, -0.8]], dtype=torch.float64))[0]
    x = torch.bernoulli(probs, generator=torch.Generator().manual_seed(1))
    log_joint = model_log_joint(vae, x[None])

    def grid(lo, hi, n):
        axes = [torch.linspace(a, b, n, dtype=torch.float64) for a, b in zip(lo, hi, strict=True)]
        z = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 2)
        with torch.no_grad():
            lj = torch.cat([log_joint(chunk[:, None, :])[:, 0] for chunk in z.split(20_000)])
        area = math.prod(float(a[1] - a[0]) for a in axes)
        return z, lj, area

    z, lj, _ = grid((-6.0, -6.0), (6.0, 6.0), 121)  # coarse: where the mass is
    w = torch.softmax(lj, 0)
    m = w @ z
    sd = (w @ (z - m) ** 2).sqrt()
    z, lj, area = grid(m - 8 * sd, m + 8 * sd, 301)  # fine, ±8 sd
    w = torch.softmax(lj, 0)
    mean = w @ z
    sd = (w @ (z - mean) ** 2).sqrt()
    edge = (z - m).abs().div(sd).max(-1).values > 7.5
    assert float(w[edge].sum()) < 1e-8  # the grid holds the posterior
    evidence = float(torch.logsumexp(lj, 0) + math.log(area))
    return vae, x, evidence, mean, sd


def test_every_estimator_against_quadrature_on_a_2d_vae(vae2d):
    """ELBO of the guide ≤ L[q*] ≤ log p(x); importance sampling within 0.05 nats wherever k̂ ≤
    0.7 and the proposal is good (q* and its Student-t), and within three of its standard errors
    with the untrained guide, whose effective sample size is a tenth of K (its 0.05 would need
    K ≈ 10 000 or more); NUTS means within 0.1 posterior sd and sds within 10%."""
    vae, x, evidence, mean, sd = vae2d
    nuts = {"n_samples": 500, "warmup_steps": 300, "n_chains": 2}
    summary, data = posterior_check(vae, x, nuts=nuts, is_samples=4000, max_samples=1000)
    guide, local = summary["importance"]["elbo"], summary["local_elbo"]
    assert guide <= local + 0.05 and local <= evidence
    reliable = 0
    for key in ("importance", "importance_local", "importance_local_t"):
        estimate = summary[key]
        if estimate["reliable"]:
            reliable += 1
            tolerance = 0.05 if key != "importance" else 3 * estimate["log_evidence_se"]
            assert estimate["log_evidence"] == pytest.approx(evidence, abs=tolerance), key
            assert estimate["log_evidence_se"] < 0.1
    assert reliable >= 2 and summary["importance_local_t"]["reliable"]
    assert summary["log_evidence"] == pytest.approx(evidence, abs=0.05)
    assert summary["log_evidence_from"] in {"guide", "local", "local_t"}
    assert summary["approximation_gap"] == pytest.approx(summary["log_evidence"] - local)
    assert 0 <= summary["approximation_gap"] < 0.2  # q* is nearly the posterior here
    assert summary["amortisation_gap"] == pytest.approx(local - guide) and local - guide > 1
    assert summary["converged"], summary["rounds"]
    draws = torch.as_tensor(data.posterior["z"].values).reshape(-1, 2)
    assert ((draws.mean(0) - mean).abs() / sd).max() < 0.1
    assert (draws.std(0) / sd - 1).abs().max() < 0.1


def test_local_gaussians_of_a_model_start_at_its_guide(vae2d):
    vae, x, *_ = vae2d
    images = torch.stack([x, 1 - x])
    none = local_gaussians(vae, images, steps=0)
    loc, scale = vae.encode(images)
    torch.testing.assert_close(none.loc, loc.detach())
    torch.testing.assert_close(none.scale, scale.detach())
    refined = local_gaussians(vae, images, steps=300)
    before, _ = gaussian_elbo(model_log_joint(vae, images), none.loc, none.scale, n_particles=2000)
    after, se = gaussian_elbo(
        model_log_joint(vae, images), refined.loc, refined.scale, n_particles=2000
    )
    assert (after > before - 3 * se).all()  # the amortisation gap of each image, closed or kept


# --------------------------------------------------------------- the gaps of many images at once


def test_batched_importance_is_exact_with_each_image_s_own_posterior(linear):
    """With the exact (full-covariance) posterior of each image as its proposal every weight is
    p(x): the estimate is exact, the ESS is K and k̂ is far below 0.7."""
    from pyro_latent.vae.gaps import batched_importance

    log_joint, mean, scale, evidence, _, precision = linear
    posterior = MVN(mean, precision_matrix=precision)  # batch [3], one per image
    out = batched_importance(log_joint, posterior, 500, chunk=64)
    torch.testing.assert_close(torch.as_tensor(out["log_evidence"]), evidence)
    assert (out["ess"] > 499).all() and (out["log_evidence_se"] < 1e-6).all()
    assert out["reliable"].all() and (out["pareto_k"] < 0.5).all()
    assert out["log_evidence"].shape == (3,)
    with pytest.raises(ValueError, match=r"batch shape \[N\]"):
        batched_importance(log_joint, MVN(mean[0], torch.eye(3, dtype=torch.float64)), 10)


def test_inference_gaps_against_quadrature(vae2d):
    """Per image: log p(x) from the most precise reliable proposal within 0.05 nats of the
    quadrature, L[q] ≤ L[q*] ≤ log p(x), and the two gaps add up to log p(x) - L[q]."""
    from pyro_latent.vae.gaps import PROPOSALS, inference_gaps

    vae, x, evidence, *_ = vae2d
    out = inference_gaps(vae, torch.stack([x, x]), n_samples=2000, local_steps=300, seed=3)
    assert out["reliable"].all()
    assert np.abs(out["log_evidence"] - evidence).max() < 0.05
    assert (out["guide_elbo"] < out["local_elbo"]).all()
    assert (out["local_elbo"] < evidence + 3 * out["local_elbo_se"]).all()
    assert PROPOSALS[out["log_evidence_from"][0]] in {"local", "local_t"}  # q* beats the guide
    total = out["log_evidence"] - out["guide_elbo"]
    np.testing.assert_allclose(out["approximation_gap"] + out["amortisation_gap"], total)
    assert (out["amortisation_gap"] > 1).all() and (np.abs(out["approximation_gap"]) < 0.2).all()


def test_posterior_check_on_a_linear_gaussian_decoder_in_six_dimensions():
    """A LatentModel with a linear decoder and a Normal likelihood, x = W z + σ ε, whose posterior
    is Gaussian in closed form, handed a guide that knows nothing (N(0, I)): NUTS converges to
    its moments, L[q*] is the closed-form optimum log p(x) − KL(q* ‖ p(z | x)) of the best
    diagonal Gaussian, KL = ½(Σ log Λ_dd − log det Λ), and the evidence errs low, as flagged."""
    from pyro_latent import as_latent_model

    g = torch.Generator().manual_seed(2)
    D, P, sigma = 6, 10, 0.5
    W = torch.randn(P, D, generator=g, dtype=torch.float64) / 2
    x = torch.randn(P, generator=g, dtype=torch.float64)
    model = as_latent_model(
        lambda obs: (torch.zeros(obs.shape[0], D, dtype=obs.dtype),
                     torch.ones(obs.shape[0], D, dtype=obs.dtype)),
        lambda z: z @ W.T, latent_dim=D, likelihood="normal", likelihood_scale=sigma,
    )  # fmt: skip
    precision = torch.eye(D, dtype=torch.float64) + W.T @ W / sigma**2
    covariance = torch.linalg.inv(precision)
    mean = covariance @ W.T @ x / sigma**2
    evidence = float(
        MVN(torch.zeros(P, dtype=torch.float64), W @ W.T + sigma**2 * torch.eye(P)).log_prob(x)
    )
    nuts = {"n_samples": 500, "warmup_steps": 300, "n_chains": 2}
    opts = {"is_samples": 4000, "max_samples": 2000, "local_steps": 3000}  # a far start
    summary, data = posterior_check(model, x, nuts=nuts, **opts)
    assert summary["converged"], summary["rounds"]
    draws = torch.as_tensor(data.posterior["z"].values).reshape(-1, D)
    sd = covariance.diagonal().sqrt()
    assert ((draws.mean(0) - mean).abs() / sd).max() < 0.1
    assert (draws.std(0) / sd - 1).abs().max() < 0.1
    # Here the diagonal proposals are poor for a correlated posterior: the chosen estimate has
    # k̂ between 0.5 and 0.7 and falls short by 0.06 to 0.21 nats depending on the draws, more
    # than its nominal standard error (beyond k̂ = 0.5 that understates the error): the issue's
    # 0.05 holds on the 2-D VAE, not here.  What holds: it errs low, as importance sampling does.
    chosen = summary["importance" if summary["log_evidence_from"] == "guide" else
                     f"importance_{summary['log_evidence_from']}"]  # fmt: skip
    assert 0.5 < chosen["pareto_k"] <= 0.7
    assert evidence - 0.3 < summary["log_evidence"] < evidence + 3 * summary["log_evidence_se"]
    # q* itself is the mean-field optimum: L[q*] = log p(x) − KL(q* ‖ p(z | x)) in closed form
    kl = 0.5 * float(precision.diagonal().log().sum() - torch.logdet(precision))
    assert summary["local_elbo"] == pytest.approx(evidence - kl, abs=0.1)
    assert summary["amortisation_gap"] > 1  # the know-nothing guide
