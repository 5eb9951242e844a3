"""The latent-space measurements on encodings with known answers, and the summaries and
verdicts over runs on synthetic numbers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from pyro_latent.study import vae_latents as verdicts
from pyro_latent.vae import VAE, VAEConfig
from pyro_latent.vae import metrics as m
from pyro_latent.vae.metrics import (
    Encodings,
    active_units,
    activity,
    correlations,
    encode_dataset,
    evaluate_elbo,
    kl_per_dim,
    mean_abs_offdiag,
)


def _encodings(n=4000, seed=0) -> Encodings:
    """Dims 0-1 move with x (correlated with each other), dim 2 barely, dim 3 not at all."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n, generator=g)
    loc = torch.stack(
        [
            base,
            0.8 * base + 0.6 * torch.randn(n, generator=g),
            0.05 * torch.randn(n, generator=g),  # variance 0.0025 < 0.01
            torch.zeros(n),
        ],
        dim=1,
    )
    scale = torch.tensor([0.1, 0.1, 1.0, 1.0]).expand(n, 4)
    return Encodings(loc, scale)


def test_active_units_burda_criterion():
    enc = _encodings()
    assert active_units(enc).tolist() == [True, True, False, False]
    act = activity(enc)
    assert act[0] == pytest.approx(1.0, abs=0.1) and act[3] == 0.0


def test_kl_per_dim_matches_torch():
    enc = _encodings()
    expected = kl_divergence(Normal(enc.loc, enc.scale), Normal(0.0, 1.0)).mean(0)
    np.testing.assert_allclose(kl_per_dim(enc), expected.double().numpy(), rtol=1e-5)
    assert kl_per_dim(enc)[3] == pytest.approx(0.0, abs=1e-12)  # the prior itself


def test_means_correlated_samples_less():
    enc = _encodings()
    corr = correlations(enc, seed=0)
    assert corr["mean_corr"][0, 1] == pytest.approx(0.8, abs=0.03)
    # Cov(z) = Cov(mu) + diag E[sigma^2]: 0.8 / sqrt(1.01 * 1.01) on the active pair.
    assert corr["sample_corr"][0, 1] == pytest.approx(0.8 / 1.01, abs=0.03)
    assert np.isnan(corr["mean_corr"][3, 0])  # a constant mean has no correlation
    assert corr["mean_abs_offdiag_means_active"] == pytest.approx(0.8, abs=0.03)
    assert corr["mean_abs_offdiag_samples"] < corr["mean_abs_offdiag_means"]


def test_mean_abs_offdiag():
    c = np.array([[1.0, -0.5, np.nan], [-0.5, 1.0, 0.1], [np.nan, 0.1, 1.0]])
    assert mean_abs_offdiag(c) == pytest.approx((0.5 + 0.5 + 0.1 + 0.1) / 4)
    assert np.isnan(mean_abs_offdiag(np.eye(1)))


def test_evaluate_elbo_is_seeded_and_bounded():
    torch.manual_seed(0)
    vae = VAE(VAEConfig("t", latent_dim=2, hidden=(8,)))
    x = torch.rand(50, 784)
    a, b = evaluate_elbo(vae, x, seed=1), evaluate_elbo(vae, x, seed=1)
    assert a == b and np.isfinite(a) and a < 0
    state = torch.get_rng_state()
    evaluate_elbo(vae, x, seed=2)
    assert torch.equal(state, torch.get_rng_state()), "the global RNG must be left alone"
    enc = encode_dataset(vae, x, batch_size=7)
    assert enc.loc.shape == (50, 2)


# --- summaries over runs and the verdicts ---------------------------------------------------------


def test_summarize_splits_the_kl_by_activity():
    torch.manual_seed(0)
    vae = VAE(VAEConfig("t", latent_dim=3, hidden=(8,)))
    out = m.summarize(vae, torch.rand(40, 784))
    mask = np.asarray(out["activity"]) > m.ACTIVE_THRESHOLD
    split = out["kl_split"]
    assert len(split["active"]) == mask.sum() and len(split["inactive"]) == (~mask).sum()
    assert sum(split["active"]) + sum(split["inactive"]) == pytest.approx(out["kl_total"])


def test_mean_sd():
    assert m.mean_sd([1.0, 3.0]) == {"mean": 2.0, "sd": pytest.approx(2**0.5), "n": 2}
    assert m.mean_sd([5]) == {"mean": 5.0, "sd": None, "n": 1}
    with pytest.raises(ValueError, match="non-empty"):
        m.mean_sd([])


def test_kl_split_sorts_by_the_mask():
    out = m.kl_split([5.0, 1.0, 0.5, 0.2], m.activity_mask([0.001, 0.5, 0.02, 0.3]))
    assert out == {"active": [1.0, 0.5, 0.2], "inactive": [5.0]}
    with pytest.raises(ValueError, match="boolean mask"):
        m.kl_split([1.0, 2.0], [1, 0])
    with pytest.raises(ValueError, match="one number per dimension"):
        m.activity_mask([[0.1]])


def test_kl_split_verdict_every_branch():
    agree = verdicts.kl_split_verdict(
        [{"active": [2.0, 0.4], "inactive": [0.01]}, {"active": [1.0], "inactive": [0.009]}]
    )
    assert agree["verdict"] == "agrees" and agree["value"] == 0.01 and agree["threshold"] == 0.4
    overlap = verdicts.kl_split_verdict([{"active": [2.0, 0.2], "inactive": [0.3]}])
    assert overlap["verdict"] == "disagrees"
    all_active = verdicts.kl_split_verdict([{"active": [2.0], "inactive": []}])
    assert all_active["verdict"] == "cannot be tested" and all_active["all_active"]
    none_active = verdicts.kl_split_verdict([{"active": [], "inactive": [0.1]}])
    assert none_active["verdict"] == "cannot be tested" and none_active["none_active"]


def test_count_verdict_every_branch():
    agree = verdicts.count_verdict([5, 6, 5], (5, 6))
    assert agree["verdict"] == "agrees" and not agree["partly"] and agree["inside"] == 3
    partly = verdicts.count_verdict([5, 9], (5, 6))
    assert partly["verdict"] == "disagrees" and partly["partly"] and partly["inside"] == 1
    none = verdicts.count_verdict([10, 10, 9], (5, 6))
    assert none["verdict"] == "disagrees" and not none["partly"] and none["expected"] == [5, 6]
    assert verdicts.count_verdict([2, 2], None)["verdict"] == "cannot be tested"
    assert verdicts.count_verdict([], (5, 6))["verdict"] == "cannot be tested"
    with pytest.raises(ValueError, match="lo ≤ hi"):
        verdicts.count_verdict([5], (6, 5))
    with pytest.raises(ValueError):
        verdicts.count_verdict([5.5], (5, 6))


def test_larger_uses_more_every_branch():
    assert verdicts.larger_uses_more([5, 6], [9, 10])["order"] == "larger"
    smaller = verdicts.larger_uses_more([10, 10, 9], [6, 7, 6])
    assert smaller["verdict"] == "disagrees" and smaller["order"] == "smaller"
    assert smaller["value"] == pytest.approx(29 / 3) and smaller["expected"] == pytest.approx(
        19 / 3
    )
    assert verdicts.larger_uses_more([6], [6])["order"] == "equal"
    assert verdicts.larger_uses_more([], [6])["verdict"] == "cannot be tested"


def test_latent_size_effect_and_near_cap():
    little = verdicts.latent_size_effect({20: [10, 10, 9], 40: [9, 9, 10]})
    assert little["verdict"] == "agrees" and little["value"] == pytest.approx(-1 / 3)
    assert (little["base"], little["larger"]) == (20, 40)
    much = verdicts.latent_size_effect({20: [5], 40: [10]})
    assert much["verdict"] == "disagrees" and much["value"] == 5.0
    assert verdicts.latent_size_effect({20: [5]})["verdict"] == "cannot be tested"
    assert (
        verdicts.near_cap([10, 9, 10], 10)
        and not verdicts.near_cap([7, 8], 10)
        and not verdicts.near_cap([], 10)
    )


def _corr_run(means, samples, means_active, samples_active, active=2, dims=3):
    return {
        "mean_abs_offdiag_means": means,
        "mean_abs_offdiag_samples": samples,
        "mean_abs_offdiag_means_active": means_active,
        "mean_abs_offdiag_samples_active": samples_active,
        "active_units": active,
        "activity": [1.0] * dims,
    }


def test_correlation_ratios():
    runs = [_corr_run(0.2, 0.02, 0.05, 0.05), _corr_run(0.1, 0.03, 0.04, 0.02, active=3)]
    two_d = [_corr_run(0.1, 0.1, 0.1, 0.1, 2, 2), _corr_run(0.3, 0.1, 0.3, 0.1, 2, 2)]
    out = verdicts.correlation_ratios(runs, two_d)
    assert out["all"] == pytest.approx((0.1 + 0.3) / 2)
    assert out["active"] == pytest.approx((1.0 + 0.5) / 2)
    assert out["two_d"] == pytest.approx(0.1 / 0.2) and out["has_two_d"]
    assert out["any_inactive"]
    alone = verdicts.correlation_ratios([_corr_run(0.0, 0.0, 0.1, 0.1, active=3)])
    assert alone["active"] == 1.0 and np.isnan(alone["all"]) and not alone["has_two_d"]
    assert not alone["any_inactive"]


@pytest.mark.parametrize(
    ("ratios", "verdict", "gap"),
    [
        ({"all": 0.1, "active": 0.9, "any_inactive": True}, "agrees", "inactive_dims"),
        ({"all": 0.7, "active": 0.9, "any_inactive": True}, "disagrees", "active_equal"),
        ({"all": 0.1, "active": 0.5, "any_inactive": True}, "agrees", "active_gap"),
        ({"all": 0.3, "active": 0.3, "any_inactive": False}, "agrees", "all_active"),
        (
            {"all": float("nan"), "active": 0.3, "any_inactive": True},
            "cannot be tested",
            "active_gap",
        ),
    ],
)
def test_decorrelation_verdict(ratios, verdict, gap):
    out = verdicts.decorrelation_verdict(ratios)
    assert (out["verdict"], out["gap"], out["threshold"]) == (verdict, gap, 0.5)


def _act_run(seed, active, test_elbo=-250.0, dims=4):
    activity = [1.0] * active + [0.001] * (dims - active)
    kl = [1.0] * active + [0.002] * (dims - active)
    return {
        "seed": seed,
        "active_units": active,
        "activity": activity,
        "kl_per_dim": kl,
        "test_elbo": test_elbo,
    }


def test_activity_summary():
    runs = {
        "small": [_act_run(0, 3, -250.0), _act_run(1, 4, -252.0)],
        "large": [_act_run(0, 2), _act_run(1, 2)],
        "flat": [_act_run(0, 2, dims=2)],
    }
    out = verdicts.activity_summary(runs, {"small": (3, 3), "large": (2, 3)})
    rows = {row["preset"]: row for row in out["presets"]}
    assert rows["small"]["seeds"] == [0, 1] and rows["small"]["active_units"] == [3, 4]
    assert rows["small"]["test_elbo"]["mean"] == -251.0 and rows["small"]["latent_dim"] == 4
    assert rows["small"]["post"]["partly"] and rows["large"]["post"]["verdict"] == "agrees"
    assert rows["flat"]["post"]["verdict"] == "cannot be tested" and rows["flat"]["latent_dim"] == 2
    assert out["larger_uses_more"]["order"] == "smaller"
    assert out["kl_split"]["verdict"] == "agrees" and out["kl_split"]["value"] == 0.002
    with pytest.raises(ValueError, match="no runs"):
        verdicts.activity_summary({"small": runs["small"]}, {})
    with pytest.raises(ValueError, match="at least one run"):
        verdicts.activity_summary({**runs, "large": []}, {})


def test_latent_size_summary():
    sweep = {40: [_act_run(0, 9)], 10: [_act_run(0, 10), _act_run(1, 9)], 20: [_act_run(0, 10)]}
    out = verdicts.latent_size_summary(sweep)
    assert [s["latent_dim"] for s in out["sizes"]] == [10, 20, 40]
    assert out["sizes"][0]["seeds"] == 2 and out["sizes"][0]["active_units"] == [10, 9]
    assert out["effect"]["value"] == -1.0 and out["effect"]["verdict"] == "agrees"
    assert out["smallest"] == {"latent_dim": 10, "active_units": [10, 9], "near_cap": True}
    with pytest.raises(ValueError):
        verdicts.latent_size_summary({0: [_act_run(0, 1)]})


def test_correlation_summary():
    runs = {
        "small": [_corr_run(0.2, 0.02, 0.05, 0.05), _corr_run(0.2, 0.02, 0.05, 0.05)],
        "flat": [_corr_run(0.1, 0.1, 0.1, 0.1, 2, 2)],
    }
    out = verdicts.correlation_summary(runs, two_d=["flat"])
    small = out["presets"][0]
    assert small["preset"] == "small" and small["seeds"] == 2
    assert small["means_all"] == {"mean": 0.2, "sd": 0.0, "n": 2}
    assert out["presets"][1]["samples_active"] == {"mean": 0.1, "sd": None, "n": 1}
    assert out["ratios"]["all"] == pytest.approx(0.1) and out["ratios"]["two_d"] == 1.0
    assert out["observation"]["verdict"] == "agrees"
    assert out["observation"]["gap"] == "inactive_dims"
    with pytest.raises(ValueError, match="two_d"):
        verdicts.correlation_summary(runs, two_d=["nope"])
