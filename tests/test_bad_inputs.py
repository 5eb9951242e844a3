"""Bad input to the newer helpers (issue #15 §3): every plausible mistake is a ``ValueError`` (or a
``TypeError`` for a wrong type) that names the argument, never a NaN, a silent acceptance or an
error from deep inside numpy, torch or Pyro; and one valid call of each helper still works."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

from pyro_latent.analysis.jacobians import decoder_spectra, effective_rank
from pyro_latent.concepts.directions import (
    angle_degrees,
    bisect,
    condition_number,
    gram_schmidt,
    two_image_direction,
    unit,
)
from pyro_latent.concepts.shoe_directions import brighter, directions_at, jacobian_path
from pyro_latent.concepts.shoes import shoe_height
from pyro_latent.concepts.traversal import meter_spreads
from pyro_latent.core.checks import (
    check_finite_float,
    check_nonnegative_float,
    check_positive_float,
)
from pyro_latent.translate.gromov import gromov_wasserstein_objective
from pyro_latent.vae import VAE, VAEConfig, get_preset, load_vae, train_vae
from pyro_latent.vae.metrics import (
    Encodings,
    active_units,
    encode_dataset,
    evaluate_elbo,
    kl_per_dim,
)
from pyro_latent.vae.posterior import (
    importance_log_evidence,
    nuts_chains,
    posterior_check,
    standardised_offset,
)
from pyro_latent.vae.training import checkpoint_path, resolve_device

NAN, INF = float("nan"), float("inf")
BAD = (ValueError, TypeError)
D = 20  # the latent size of the "small" preset


@pytest.fixture(scope="module")
def vae():
    torch.manual_seed(0)
    return VAE(get_preset("small")).eval()


@pytest.fixture(scope="module")
def vae2d():
    torch.manual_seed(0)
    return VAE(get_preset("vae2d-a")).eval()


def shoe() -> torch.Tensor:
    image = torch.zeros(28, 28)
    image[15:24, 3:25] = 0.6
    image[10:15, 3:10] = 0.45
    return image.reshape(784)


def cavs(dim: int = D) -> dict:
    g = torch.Generator().manual_seed(1)
    return {"height": torch.randn(dim, generator=g), "brightness": torch.randn(dim, generator=g)}


def gaussian_log_joint(z: torch.Tensor) -> torch.Tensor:
    return torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)


# ------------------------------------------------------------------------- shared validators
@pytest.mark.parametrize(
    ("check", "value"),
    [
        (check_finite_float, NAN),
        (check_finite_float, INF),
        (check_finite_float, "1"),
        (check_finite_float, True),
        (check_finite_float, None),
        (check_positive_float, 0.0),
        (check_positive_float, -1),
        (check_positive_float, NAN),
        (check_positive_float, INF),
        (check_positive_float, torch.tensor([1.0, 2.0])),
        (check_nonnegative_float, -1e-9),
        (check_nonnegative_float, NAN),
        (check_nonnegative_float, INF),
        (check_nonnegative_float, False),
    ],
)
def test_float_validators_refuse(check, value):
    with pytest.raises(ValueError, match="^x must be"):
        check(value, "x")


def test_float_validators_accept():
    assert check_finite_float(-2, "x") == -2.0 and isinstance(check_finite_float(-2, "x"), float)
    assert check_positive_float(np.float32(0.5), "x") == 0.5
    assert check_positive_float(torch.tensor(2.0), "x") == 2.0
    assert check_nonnegative_float(0, "x") == 0.0 and check_nonnegative_float(np.int64(3), "x") == 3


# ------------------------------------------------------------------------------- directions
E1, E2 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])


@pytest.mark.parametrize(
    ("u", "v", "metric", "match"),
    [
        (torch.zeros(2), E1, None, "u has zero length"),
        (E1, torch.zeros(2), None, "v has zero length"),
        (E2, E1, torch.diag(torch.tensor([1.0, 0.0])), "u has zero length"),
        (torch.ones(3), E1, None, "u and v must have one length"),
        (torch.tensor([NAN, 0.0]), E1, None, "u must be finite"),
        (E1, torch.tensor([0.0, INF]), None, "v must be finite"),
        ("ab", E1, None, "u must be"),
        (E1, E2, torch.eye(3), "metric"),
    ],
)
def test_angle_degrees_refuses(u, v, metric, match):
    with pytest.raises(BAD, match=match):
        angle_degrees(u, v, metric)


def test_angle_degrees_valid():
    assert angle_degrees(E1, E2) == pytest.approx(90)
    assert angle_degrees(E1, E1 + E2) == pytest.approx(45)


@pytest.mark.parametrize(
    ("vectors", "match"),
    [
        ((), "at least two vectors"),
        ((E1,), "at least two vectors"),
        ((E1, torch.ones(3)), "vectors must have one length"),
        ((E1, torch.tensor([NAN, 1.0])), "vector 1 must be finite"),
        ((torch.tensor([INF, 1.0]), E2), "vector 0 must be finite"),
        ((E1, torch.zeros(2, 2)), "vector 1 must be a non-empty 1-D vector"),
    ],
)
def test_condition_number_refuses(vectors, match):
    with pytest.raises(BAD, match=match):
        condition_number(*vectors)


def test_condition_number_valid():
    assert condition_number(E1, E2) == pytest.approx(1)
    assert condition_number(E1, 2 * E1) == math.inf


def _line(alpha: float) -> float:
    return alpha - 0.3


@pytest.mark.parametrize(
    ("f", "lo", "hi", "options", "match"),
    [
        (_line, -1, 1, {"tol": 0}, "tol"),
        (_line, -1, 1, {"tol": -1e-6}, "tol"),
        (_line, -1, 1, {"tol": NAN}, "tol"),
        (_line, -1, 1, {"tol": INF}, "tol"),
        (_line, -1, 1, {"tol": "small"}, "tol"),
        (_line, 1, -1, {}, "lo < hi"),
        (_line, 1, 1, {}, "lo < hi"),
        (_line, NAN, 1, {}, "lo must be a finite number"),
        (_line, -1, INF, {}, "hi must be a finite number"),
        (_line, "a", 1, {}, "lo must be a finite number"),
        (_line, -1, 1, {"max_iter": 0}, "max_iter"),
        (_line, -1, 1, {"max_iter": 2.5}, "max_iter"),
        ("f", -1, 1, {}, "f must be callable"),
    ],
)
def test_bisect_refuses(f, lo, hi, options, match):
    with pytest.raises(BAD, match=match):
        bisect(f, lo, hi, **options)


def test_bisect_valid():
    found = bisect(_line, -1, 1, tol=1e-10)
    assert found["alpha"] == pytest.approx(0.3) and found["slope"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("v", "metric", "match"),
    [
        (torch.zeros(3), None, "v has zero length"),
        (E2, torch.diag(torch.tensor([1.0, 0.0])), "v has zero length"),
        (E1, torch.eye(3), "metric must be a"),
        (E1, torch.tensor([[1.0, 2.0], [0.0, 1.0]]), "metric must be a finite symmetric"),
        (torch.tensor([1.0, NAN]), None, "v must be finite"),
        (torch.ones(2, 2), None, "v must be a non-empty 1-D vector"),
        (torch.ones(0), None, "v must be a non-empty 1-D vector"),
    ],
)
def test_unit_refuses(v, metric, match):
    with pytest.raises(BAD, match=match):
        unit(v, metric)


def test_unit_valid():
    torch.testing.assert_close(unit(torch.tensor([3.0, 4.0])), torch.tensor([0.6, 0.8]).double())


@pytest.mark.parametrize(
    ("u", "v", "metric", "match"),
    [
        (torch.ones(3), E1, None, "u and v must have one length"),
        (torch.zeros(2), E1, None, "u has zero length"),
        (E1, torch.zeros(2), None, "v has zero length"),
        (E2, E1, torch.diag(torch.tensor([1.0, 0.0])), "u has zero length"),
        (2 * E1, E1, None, "u is parallel to v"),
        (E1, E2, torch.eye(3), "metric"),
        (torch.tensor([NAN, 1.0]), E1, None, "u must be finite"),
    ],
)
def test_gram_schmidt_refuses(u, v, metric, match):
    with pytest.raises(BAD, match=match):
        gram_schmidt(u, v, metric)


def test_gram_schmidt_valid():
    torch.testing.assert_close(gram_schmidt(E1 + E2, E1), E2.double())


def _identity(x):
    return x


@pytest.mark.parametrize(
    ("encode_mean", "before", "after", "match"),
    [
        (_identity, torch.ones(1, 3), torch.ones(1, 4), "differ in shape"),
        (_identity, torch.ones(2, 3), torch.ones(1, 3), "differ in shape"),
        (_identity, torch.ones(1, 3), torch.ones(1, 3), "same mean"),
        (
            _identity,
            torch.ones(3),
            torch.tensor([1.0, NAN, 2.0]),
            "before and after must be finite",
        ),
        (_identity, torch.ones(1, 2, 3), torch.zeros(1, 2, 3), "encode_mean must map"),
        ("encode", torch.ones(3), torch.zeros(3), "encode_mean must be callable"),
    ],
)
def test_two_image_direction_refuses(encode_mean, before, after, match):
    with pytest.raises(BAD, match=match):
        two_image_direction(encode_mean, before, after)


def test_two_image_direction_valid():
    d = two_image_direction(_identity, torch.zeros(2), torch.tensor([3.0, 4.0]))
    torch.testing.assert_close(d, torch.tensor([0.6, 0.8]).double())
    batch = two_image_direction(_identity, torch.zeros(2, 2), torch.eye(2))
    torch.testing.assert_close(batch, torch.eye(2).double())


# --------------------------------------------------------------------------- shoe directions
@pytest.mark.parametrize("factor", [0, 0.0, -1.5, NAN, INF, "1.5", True, None])
def test_brighter_refuses(factor):
    with pytest.raises(BAD, match="factor"):
        brighter(shoe(), factor)


def test_brighter_valid():
    x = torch.tensor([0.0, 0.4, 0.8])
    assert brighter(x).tolist() == pytest.approx([0.0, 0.6, 1.0])
    assert brighter(x, 2).tolist() == pytest.approx([0.0, 0.8, 1.0])
    with pytest.raises(TypeError, match="images"):
        brighter([0.1, 0.2])


def _without(key: str) -> dict:
    out = cavs()
    del out[key]
    return out


def _with(key: str, value) -> dict:
    out = cavs()
    out[key] = value
    return out


@pytest.mark.parametrize(
    ("image", "the_cavs", "options", "match"),
    [
        (shoe(), _without("brightness"), {}, "cavs is missing 'brightness'"),
        (shoe(), _without("height"), {}, "cavs is missing 'height'"),
        (shoe(), {}, {}, "cavs is missing 'height', 'brightness'"),
        (shoe(), [torch.randn(D), torch.randn(D)], {}, "cavs must be a mapping"),
        (shoe(), _with("height", torch.randn(5)), {}, re.escape("cavs['height'] must be a vector")),
        (
            shoe(),
            _with("brightness", torch.randn(D + 1)),
            {},
            re.escape("cavs['brightness'] must be a vector [20]"),
        ),
        (shoe(), _with("height", torch.randn(1, D)), {}, re.escape("cavs['height']")),
        (
            shoe(),
            _with("height", torch.full((D,), NAN)),
            {},
            re.escape("cavs['height'] must"),
        ),
        (
            shoe(),
            _with("brightness", torch.zeros(D)),
            {},
            re.escape("cavs['brightness'] is"),
        ),
        (torch.rand(100), cavs(), {}, "image must be one shoe of 784 pixels"),
        (torch.rand(2, 784), cavs(), {}, "image must be one shoe of 784 pixels"),
        (2 * shoe(), cavs(), {}, r"image must lie in \[0, 1\]"),
        (torch.full((784,), NAN), cavs(), {}, "image contain NaN"),
        (shoe().numpy(), cavs(), {}, "image must be a torch.Tensor"),
        (shoe(), cavs(), {"bracket": (4.0, -4.0)}, "bracket must be two finite numbers lo < hi"),
        (shoe(), cavs(), {"bracket": (NAN, 4.0)}, re.escape("bracket[0]")),
        (shoe(), cavs(), {"bracket": (1.0,)}, "bracket must be two numbers"),
    ],
)
def test_directions_at_refuses(vae, image, the_cavs, options, match):
    with pytest.raises(BAD, match=match):
        directions_at(vae, image, the_cavs, **options)


def test_directions_at_valid(vae):
    z0, directions, diagnostics = directions_at(vae, shoe().reshape(28, 28), cavs())
    assert z0.shape == (D,) and float(directions["cav height"].norm()) == pytest.approx(1.0)
    assert 0 <= diagnostics["angle_hb"] <= 180


@pytest.mark.parametrize(
    ("z0", "alphas", "match"),
    [
        (torch.zeros(D), [], "alphas must be a non-empty list of finite numbers"),
        (torch.zeros(D), [0.0, NAN], "alphas"),
        (torch.zeros(D), [0.0, INF], "alphas"),
        (torch.zeros(D), 1.0, "alphas"),
        (torch.zeros(D), "01", "alphas"),
        (torch.zeros(D), [0.0, "x"], "alphas"),
        (torch.zeros(5), [0.0, 1.0], re.escape("z0 must be one latent [20]")),
        (torch.zeros(1, D), [0.0, 1.0], re.escape("z0 must be one latent [20]")),
        (torch.full((D,), NAN), [0.0, 1.0], "z0 must be finite"),
        (torch.zeros(D, dtype=torch.long), [0.0, 1.0], "z0 must be floating point"),
        ([0.0] * D, [0.0, 1.0], "z0 must be a torch.Tensor"),
    ],
)
def test_jacobian_path_refuses(vae, z0, alphas, match):
    with pytest.raises(BAD, match=match):
        jacobian_path(vae, z0, alphas)


def test_jacobian_path_valid(vae):
    z0 = vae.encode(shoe()[None])[0][0].detach()
    path = jacobian_path(vae, z0, [0.0, 0.5])
    assert path.shape == (2, D) and torch.equal(path[0], z0)
    assert jacobian_path(vae.decode, z0, [0.0]).shape == (1, D)  # a bare decode: any [D]


# --------------------------------------------------------------------------------- traversal
@pytest.mark.parametrize(
    ("images", "match"),
    [
        (shoe()[None], "at least 2 images"),
        (shoe().reshape(1, 28, 28), "at least 2 images"),
        (torch.rand(3, 100), r"images must be a batch \[N, 784\]"),
        (shoe(), r"images must be a batch \[N, 784\]"),
        (torch.full((2, 784), NAN), "images contain NaN"),
        (torch.full((2, 784), 2.0), r"images must lie in \[0, 1\]"),
        (shoe()[None].repeat(2, 1).numpy(), "images must be a torch.Tensor"),
    ],
)
def test_meter_spreads_refuses(images, match):
    with pytest.raises(BAD, match=match):
        meter_spreads(images)


def test_meter_spreads_valid():
    taller = shoe().reshape(28, 28).clone()
    taller[8:15, 3:10] = 0.6
    pair = torch.stack([shoe(), taller.reshape(784)])
    spreads = meter_spreads(pair)
    heights = [float(shoe_height(x, shoe_only=False)) for x in pair]
    assert spreads["n"] == 2 and heights[0] != heights[1]
    assert spreads["height"] == pytest.approx(float(np.std(heights, ddof=1)))
    assert math.isfinite(spreads["brightness"])


# --------------------------------------------------------------------------------- posterior
def _standard_normal(dim: int = 2):
    return torch.distributions.MultivariateNormal(torch.zeros(dim), torch.eye(dim))


@pytest.mark.parametrize(
    ("log_joint", "proposal", "n_samples", "seed", "match"),
    [
        (gaussian_log_joint, _standard_normal(), 0, 0, "n_samples"),
        (gaussian_log_joint, _standard_normal(), 2.0, 0, "n_samples"),
        (gaussian_log_joint, _standard_normal(), 5, -1, "seed"),
        (gaussian_log_joint, "normal", 5, 0, "proposal must be a torch.distributions"),
        (gaussian_log_joint, torch.distributions.Normal(torch.zeros(2), 1.0), 5, 0, "proposal"),
        (gaussian_log_joint, torch.distributions.Normal(0.0, 1.0), 5, 0, "proposal"),
        (lambda z: z, _standard_normal(), 5, 0, r"log_joint must map \[K, D\]"),
        (lambda z: float(z.sum()), _standard_normal(), 5, 0, "log_joint must map"),
        (None, _standard_normal(), 5, 0, "log_joint must be callable"),
    ],
)
def test_importance_log_evidence_refuses(log_joint, proposal, n_samples, seed, match):
    with pytest.raises(BAD, match=match):
        importance_log_evidence(log_joint, proposal, n_samples, seed=seed)


def test_importance_log_evidence_valid():
    out = importance_log_evidence(gaussian_log_joint, _standard_normal(), 10)
    assert out["log_evidence"] == pytest.approx(0.0, abs=1e-6) and out["ess"] == pytest.approx(10)


@pytest.mark.parametrize(
    ("initial", "options", "match"),
    [
        (torch.zeros(2), {"n_samples": 3}, "n_samples must be at least 4"),
        (torch.zeros(2), {"n_samples": 0}, "n_samples"),
        (torch.zeros(2), {"n_samples": 4.0}, "n_samples"),
        (torch.zeros(2), {"n_chains": 0}, "n_chains"),
        (torch.zeros(2), {"warmup_steps": -1}, "warmup_steps"),
        (torch.zeros(2), {"spread": -1.0}, "spread"),
        (torch.zeros(2), {"spread": NAN}, "spread"),
        (torch.zeros(2), {"spread": True}, "spread"),
        (torch.zeros(2), {"seed": -1}, "seed"),
        (torch.zeros(2), {"n_jobs": 0}, "n_jobs"),
        (torch.tensor([NAN, 0.0]), {}, "initial"),
        (torch.zeros(1, 2), {}, "initial"),
        (torch.zeros(0), {}, "initial"),
        (torch.zeros(2, dtype=torch.long), {}, "initial"),
        ("origin", {}, "initial"),
    ],
)
def test_nuts_chains_refuses(initial, options, match):
    with pytest.raises(BAD, match=match):
        nuts_chains(gaussian_log_joint, initial, **options)


def test_nuts_chains_refuses_a_non_callable():
    with pytest.raises(TypeError, match="log_joint must be callable"):
        nuts_chains("log p", torch.zeros(2))


def test_nuts_chains_valid():
    data = nuts_chains(gaussian_log_joint, torch.zeros(2), n_samples=4, warmup_steps=4, n_chains=2)
    assert data.posterior["z"].shape == (2, 4, 2)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"nuts": {"samples": 4}}, "unknown option.*'samples'.*allowed keys: n_samples"),
        ({"nuts": {"seed": 1}}, "seed and n_jobs are posterior_check's own arguments"),
        ({"nuts": {"n_samples": 4, "n_jobs": 2}}, "allowed keys"),
        ({"nuts": {"n_samples": 3}}, "n_samples must be at least 4"),
        ({"nuts": {"n_chains": 1}}, r"nuts\['n_chains'\] must be at least 2"),
        ({"nuts": {"n_chains": 0}}, r"nuts\['n_chains'\]"),
        ({"nuts": {"warmup_steps": -2}}, r"nuts\['warmup_steps'\]"),
        ({"nuts": {"spread": NAN}}, r"nuts\['spread'\]"),
        ({"nuts": [("n_samples", 4)]}, "nuts must be a dict"),
        ({"nuts": {}, "is_samples": 0}, "is_samples"),
        ({"nuts": {}, "seed": -1}, "seed"),
        ({"nuts": {}, "n_jobs": 0}, "n_jobs"),
        ({"nuts": {"n_samples": 8}, "max_samples": 4}, r"max_samples \(4\) must be at least"),
        ({"nuts": {}, "max_samples": 0}, "max_samples"),
    ],
)
def test_posterior_check_refuses(vae2d, options, match):
    with pytest.raises(BAD, match=match):
        posterior_check(vae2d, (shoe() > 0).float(), **options)


def test_posterior_check_valid(vae2d):
    nuts = {"n_samples": 4, "warmup_steps": 4, "n_chains": 2}
    summary, data = posterior_check(vae2d, (shoe() > 0).float(), nuts=nuts, is_samples=20)
    assert data.posterior["z"].shape == (2, 4, 2) and len(summary["offset"]["per_dim"]) == 2
    assert summary["importance"]["n_samples"] == 20
    assert set(summary["importance"]) >= {"pareto_k", "reliable"}
    # 4 draws per chain cannot reach an ESS of 400: doubled to 8, then 16, and stopped there
    summary, data = posterior_check(
        vae2d, (shoe() > 0).float(), nuts=nuts, is_samples=20, max_samples=16
    )
    assert [r["n_samples"] for r in summary["rounds"]] == [4, 8, 16]
    assert [r["warmup_steps"] for r in summary["rounds"]] == [4, 8, 16]
    assert data.posterior["z"].shape == (2, 16, 2) and summary["n_samples"] == 16
    assert summary["converged"] is False and not any(r["converged"] for r in summary["rounds"])


DRAWS = np.random.default_rng(0).normal(size=(10, 2))


@pytest.mark.parametrize(
    ("point", "draws", "match"),
    [
        ([0.0, 0.0, 0.0], DRAWS, r"draws must be \[N, D\] with D = len\(point\) = 3"),
        ([0.0], DRAWS, r"draws must be \[N, D\] with D = len\(point\) = 1"),
        ([0.0, 0.0], DRAWS[:1], "draws must hold at least 2 draws"),
        ([0.0, 0.0], DRAWS.reshape(-1), r"draws must be \[N, D\]"),
        ([0.0, NAN], DRAWS, "point must be finite"),
        ([0.0, 0.0], np.where(DRAWS > 1, np.nan, DRAWS), "draws must be finite"),
        ([[0.0, 0.0]], DRAWS, r"point must be a non-empty vector \[D\]"),
        ([], DRAWS, "point must be a non-empty vector"),
        ([0.0, 0.0], np.ones((5, 2)), "zero posterior spread"),
        (["a", "b"], DRAWS, "point and draws must be real arrays"),
    ],
)
def test_standardised_offset_refuses(point, draws, match):
    with pytest.raises(BAD, match=match):
        standardised_offset(point, draws)


def test_standardised_offset_valid():
    out = standardised_offset(torch.zeros(2), torch.as_tensor(DRAWS))
    expected = -DRAWS.mean(0) / DRAWS.std(0, ddof=1)
    np.testing.assert_allclose(out["per_dim"], expected)
    chains = standardised_offset([0.0, 0.0], DRAWS.reshape(2, 5, 2))  # [chain, draw, D]
    np.testing.assert_allclose(chains["per_dim"], expected)


# ----------------------------------------------------------------------------------- metrics
@pytest.mark.parametrize("batch_size", [0, -1, 2.5, True, "2"])
def test_encode_dataset_refuses(vae, batch_size):
    with pytest.raises(BAD, match="batch_size"):
        encode_dataset(vae, torch.rand(3, 784), batch_size=batch_size)


def test_encode_dataset_valid(vae):
    enc = encode_dataset(vae, torch.rand(5, 784), batch_size=2)
    assert enc.loc.shape == (5, D) and enc.scale.shape == (5, D)


@pytest.mark.parametrize("threshold", [-0.01, NAN, INF, "0.01", None, True])
def test_active_units_refuses_a_bad_threshold(vae, threshold):
    enc = encode_dataset(vae, torch.rand(4, 784))
    with pytest.raises(BAD, match="threshold"):
        active_units(enc, threshold)


@pytest.mark.parametrize(
    ("enc", "match"),
    [
        (Encodings(torch.zeros(1, 3), torch.ones(1, 3)), "at least 2 encodings"),
        (Encodings(torch.tensor([[NAN], [0.0]]), None), "enc.loc contains NaN"),
        (Encodings(torch.zeros(4), None), r"enc.loc must be \[N, D\]"),
        (torch.zeros(4, 2), "enc must be Encodings"),
    ],
)
def test_active_units_refuses_bad_encodings(enc, match):
    with pytest.raises(BAD, match=match):
        active_units(enc)


def test_active_units_valid():
    loc = torch.tensor([[0.0, 0.0], [1.0, 0.01], [-1.0, -0.01]])
    assert active_units(Encodings(loc, None)).tolist() == [True, False]
    assert active_units(Encodings(loc, None), 0).tolist() == [True, True]


@pytest.mark.parametrize(
    ("images", "options", "match"),
    [
        (torch.full((2, 784), NAN), {}, "images contain NaN"),
        (torch.ones(2, 784, dtype=torch.long), {}, "images must be floating point"),
        (torch.zeros(0, 784), {}, "images must be a non-empty tensor"),
        (torch.rand(784), {}, "images must be a non-empty tensor"),
        (torch.rand(2, 784), {"n_particles": 0}, "n_particles"),
        (torch.rand(2, 784), {"batch_size": 0}, "batch_size"),
        (torch.rand(2, 784), {"seed": -1}, "seed"),
    ],
)
def test_evaluate_elbo_refuses(vae, images, options, match):
    with pytest.raises(BAD, match=match):
        evaluate_elbo(vae, images, **options)


def test_evaluate_elbo_valid(vae):
    assert math.isfinite(evaluate_elbo(vae, torch.rand(4, 784), batch_size=3))


@pytest.mark.parametrize(
    ("enc", "match"),
    [
        (Encodings(torch.zeros(2, 2), torch.zeros(2, 2)), "enc.scale must be positive and finite"),
        (Encodings(torch.zeros(2, 2), -torch.ones(2, 2)), "enc.scale must be positive"),
        (Encodings(torch.zeros(2, 2), torch.full((2, 2), NAN)), "enc.scale must be positive"),
        (Encodings(torch.zeros(2, 2), torch.full((2, 2), INF)), "enc.scale must be positive"),
        (Encodings(torch.zeros(2, 2), torch.ones(2, 3)), "enc.scale must have the shape"),
        (Encodings(torch.full((2, 2), NAN), torch.ones(2, 2)), "enc.loc contains NaN"),
        (Encodings(torch.zeros(2, 2), None), "deterministic"),
    ],
)
def test_kl_per_dim_refuses(enc, match):
    with pytest.raises(BAD, match=match):
        kl_per_dim(enc)


def test_kl_per_dim_valid():
    enc = Encodings(torch.tensor([[0.0, 1.0]]), torch.tensor([[1.0, 1.0]]))
    np.testing.assert_allclose(kl_per_dim(enc), [0.0, 0.5])


# ------------------------------------------------------------------------------------ gromov
C2X2 = np.array([[0.0, 1.0], [1.0, 0.0]])
C3X3 = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 1.0], [2.0, 1.0, 0.0]])
T2X3 = np.full((2, 3), 1 / 6)


@pytest.mark.parametrize(
    ("C1", "C2", "T", "match"),
    [
        (np.ones((2, 3)), C3X3, T2X3, "C1 must be a non-empty square matrix"),
        (C2X2, np.ones((3, 2)), T2X3, "C2 must be a non-empty square matrix"),
        (C2X2, C3X3, np.full((3, 2), 1 / 6), r"T must have shape \(len\(C1\), len\(C2\)\)"),
        (C2X2, C3X3, np.full((2, 2), 1 / 4), r"T must have shape"),
        (np.full((2, 2), np.nan), C3X3, T2X3, "C1 contains NaN"),
        (C2X2, np.full((3, 3), np.inf), T2X3, "C2 contains NaN or infinite"),
        (C2X2, C3X3, np.full((2, 3), np.nan), "T contains NaN"),
        (np.ones(4), C3X3, T2X3, "C1 must be 2-D"),
        (C2X2, C3X3, "T", "T must be a real matrix"),
        (np.zeros((0, 0)), C3X3, T2X3, "C1 must be a non-empty square matrix"),
    ],
)
def test_gromov_wasserstein_objective_refuses(C1, C2, T, match):
    with pytest.raises(BAD, match=match):
        gromov_wasserstein_objective(C1, C2, T)


def test_gromov_wasserstein_objective_valid():
    brute = sum(
        (C2X2[i, k] - C3X3[j, l]) ** 2 * T2X3[i, j] * T2X3[k, l]
        for i in range(2)
        for k in range(2)
        for j in range(3)
        for l in range(3)  # noqa: E741
    )
    assert gromov_wasserstein_objective(C2X2, C3X3, T2X3) == pytest.approx(brute, rel=1e-12)


# --------------------------------------------------------------------------------- jacobians
@pytest.mark.parametrize(
    ("z", "options", "match"),
    [
        (torch.zeros(2, 5), {}, r"z must have shape \[N, 20\]"),
        (torch.zeros(D), {}, "z must be 2-D"),
        (torch.full((2, D), NAN), {}, "z contains NaN"),
        (torch.zeros(0, D), {}, "z is empty"),
        (torch.zeros(2, D), {"batch_size": 0}, "batch_size must be a positive int"),
    ],
)
def test_decoder_spectra_refuses(vae, z, options, match):
    with pytest.raises(BAD, match=match):
        decoder_spectra(vae, z, **options)


def test_decoder_spectra_valid(vae):
    s = decoder_spectra(vae, torch.zeros(2, D))
    assert s.shape == (2, D) and bool((s[:, :-1] >= s[:, 1:]).all())


@pytest.mark.parametrize("tol", [-0.1, 0, 0.0, 1, 1.5, NAN, INF, "0.1", None])
def test_effective_rank_refuses(tol):
    with pytest.raises(BAD, match="tol"):
        effective_rank(np.array([[3.0, 1.0, 0.0]]), tol)


def test_effective_rank_valid():
    assert effective_rank(np.array([[3.0, 1.0, 1e-4], [0.0, 0.0, 0.0]]), 1e-2).tolist() == [2, 0]


# --------------------------------------------------------------------------------- load_vae
@pytest.mark.parametrize("device", ["gpu", "GPU", "xpu", "cuda:99", -1, 3.5, "cpu:x"])
def test_load_vae_refuses_an_unknown_device(tmp_path, device):
    with pytest.raises(
        ValueError, match=re.escape(repr(str(device))) + "|" + re.escape(repr(device))
    ):
        load_vae("small", runs_dir=tmp_path, device=device)


def test_load_vae_refuses_cuda_without_a_gpu(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    for device in ("cuda", torch.device("cuda"), "cuda:0"):
        with pytest.raises(ValueError, match=f"device '{device}' was asked for"):
            load_vae("small", runs_dir=tmp_path, device=device)


def test_load_vae_valid_devices(tmp_path):
    config = VAEConfig("tiny", latent_dim=2, hidden=(8,), batch_size=50, lr=1e-3)
    images = (torch.rand(50, 784, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    train_vae(config, images, epochs=1, seed=0, checkpoint_dir=tmp_path, progress=False)
    path = checkpoint_path(config, 0, tmp_path)
    for device in (None, "cpu", torch.device("cpu")):
        loaded = load_vae(path, device=device)
        assert loaded.latent_dim == 2 and next(loaded.parameters()).device.type == "cpu"
    assert resolve_device(None) == torch.device("cpu")
