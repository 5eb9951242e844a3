"""The VAE's Pyro program, its encode/decode API and their input checks."""

from __future__ import annotations

import pyro
import pyro.poutine as poutine
import pytest
import torch

from pyro_latent.vae import PRESETS, VAE, VAEConfig, get_preset


@pytest.fixture
def vae():
    torch.manual_seed(0)
    return VAE(VAEConfig("t", latent_dim=3, hidden=(16,)))


@pytest.mark.parametrize("shape", [(5, 784), (5, 28, 28), (5, 1, 28, 28)])
def test_encode_decode_shapes(vae, shape):
    x = torch.rand(shape)
    loc, scale = vae.encode(x)
    assert loc.shape == scale.shape == (5, 3)
    assert (scale > 0).all()
    probs = vae.decode(loc)
    assert probs.shape == (5, 784)
    assert ((probs >= 0) & (probs <= 1)).all()
    assert vae.reconstruct(x).shape == (5, 784)


def test_decode_is_differentiable(vae):
    z = torch.zeros(2, 3, requires_grad=True)
    vae.decode(z).sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "x, match",
    [
        (torch.rand(5, 100), "shape"),
        (torch.rand(784), "shape"),
        (torch.rand(2, 3, 28, 28), "shape"),
        (torch.full((2, 784), float("nan")), "NaN"),
        (torch.full((2, 784), float("inf")), "NaN or infinite"),
        (torch.rand(2, 784) * 255, r"\[0, 1\]"),
        (-torch.rand(2, 784), r"\[0, 1\]"),
        (torch.randint(0, 255, (2, 784), dtype=torch.uint8), "255"),
        ([[0.0] * 784], "torch.Tensor"),
        (torch.rand(5, 100, dtype=torch.float64), "shape"),
        (torch.full((2, 784), float("nan"), dtype=torch.float64), "NaN"),
        (torch.rand(2, 784, dtype=torch.float64) + 1, r"\[0, 1\]"),
        (torch.full((2, 784), 2.0, dtype=torch.float16), r"\[0, 1\]"),
    ],
)
def test_encode_rejects_bad_images(vae, x, match):
    with pytest.raises(ValueError, match=match):
        vae.encode(x)


@pytest.mark.parametrize(
    "z, match",
    [
        (torch.zeros(2, 4), "latents must have shape \\(N, 3\\)"),
        (torch.zeros(3), "shape"),
        (torch.tensor([[0.0, float("nan"), 0.0]]), "NaN"),
        (torch.zeros(2, 3, dtype=torch.long), "floating point"),
        (torch.zeros(2, 4, dtype=torch.float64), "shape"),
        (torch.tensor([[0.0, float("inf"), 0.0]], dtype=torch.float64), "NaN or infinite"),
    ],
)
def test_decode_rejects_bad_latents(vae, z, match):
    with pytest.raises(ValueError, match=match):
        vae.decode(z)


def test_model_and_guide_sites(vae):
    x = torch.rand(6, 784)
    with pyro.get_param_store().scope():
        guide_tr = poutine.trace(vae.guide).get_trace(x)
        model_tr = poutine.trace(poutine.replay(vae.model, trace=guide_tr)).get_trace(x)
    assert guide_tr.nodes["z"]["fn"].batch_shape == (6,)
    assert guide_tr.nodes["z"]["fn"].event_shape == (3,)
    assert model_tr.nodes["x"]["is_observed"]
    assert [f.name for f in model_tr.nodes["z"]["cond_indep_stack"]] == ["data"]
    assert [f.name for f in guide_tr.nodes["z"]["cond_indep_stack"]] == ["data"]
    # The Bernoulli log-likelihood of grey values is minus the binary cross-entropy.
    logits = vae.decoder(guide_tr.nodes["z"]["value"])
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none")
    torch.testing.assert_close(model_tr.nodes["x"]["fn"].log_prob(x), -bce.sum(-1))
    # The prior is standard normal.
    prior = model_tr.nodes["z"]["fn"]
    assert prior.batch_shape == (6,) and prior.event_shape == (3,)
    assert torch.equal(prior.base_dist.loc, torch.zeros(6, 3))
    assert torch.equal(prior.base_dist.scale, torch.ones(6, 3))


def test_continuous_bernoulli_option():
    vae = VAE(VAEConfig("cb", latent_dim=2, hidden=(8,), likelihood="continuous_bernoulli"))
    x = torch.rand(4, 784)
    with pyro.get_param_store().scope():
        loss = pyro.infer.Trace_ELBO().loss(vae.model, vae.guide, x)
    assert torch.isfinite(torch.tensor(loss))
    probs = vae.decode(torch.zeros(1, 2))
    assert ((probs > 0) & (probs < 1)).all()


def test_presets():
    assert set(PRESETS) == {
        "small",
        "large",
        "vae2d-a",
        "vae2d-b",
        "small-mix",
        "large-mix",
        "conv",
    }
    for name in ("small", "large"):  # the mixture presets are the same networks, K = 10
        mix = get_preset(f"{name}-mix")
        assert mix.prior_components == 10 and get_preset(name).prior_components == 0
        assert (mix.hidden, mix.latent_dim) == (
            get_preset(name).hidden,
            get_preset(name).latent_dim,
        )
    small, large = get_preset("small"), get_preset("large")
    assert small.latent_dim == large.latent_dim == 20
    assert len(small.hidden) == 1 and len(large.hidden) > 1
    assert max(large.hidden) > max(small.hidden)
    assert get_preset("vae2d-a").latent_dim == get_preset("vae2d-b").latent_dim == 2
    assert small.with_latent_dim(40).name == "small-z40"
    assert VAEConfig.from_dict(small.to_dict()) == small


@pytest.mark.parametrize(
    "kwargs",
    [dict(latent_dim=0), dict(hidden=()), dict(likelihood="gaussian"), dict(name="a/b")],
)
def test_bad_configs(kwargs):
    with pytest.raises(ValueError):
        VAEConfig(**{"name": "x", **kwargs})


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_other_float_dtypes_are_converted(vae, dtype):
    x = torch.rand(4, 784)
    loc, scale = vae.encode(x.to(dtype))
    assert loc.dtype == torch.float32
    tol = 1e-6 if dtype == torch.float64 else 5e-2
    torch.testing.assert_close(loc, vae.encode(x)[0], atol=tol, rtol=tol)
    probs = vae.decode(loc.to(dtype))
    assert probs.dtype == torch.float32 and probs.shape == (4, 784)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(latent_dim=2.5), "latent_dim"),
        (dict(latent_dim="3"), "latent_dim"),
        (dict(latent_dim=True), "latent_dim"),
        (dict(hidden=64), "hidden"),
        (dict(hidden="64"), "hidden"),
        (dict(hidden=(64.5,)), "hidden"),
        (dict(hidden=(64, None)), "hidden"),
        (dict(batch_size=12.5), "batch_size"),
        (dict(lr="fast"), "lr"),
        (dict(name=3), "name"),
    ],
)
def test_config_types_are_checked(kwargs, match):
    with pytest.raises(ValueError, match=match):
        VAEConfig(**{"name": "x", **kwargs})


def test_sweep_names():
    assert get_preset("small-z10") == get_preset("small").with_latent_dim(10)
    assert get_preset("small-z10").name == "small-z10"
    assert get_preset("large-z5").hidden == get_preset("large").hidden
    for bad in ("medium-z10", "small-z0", "small-zz", "small-z"):
        with pytest.raises(KeyError, match="small-z10"):
            get_preset(bad)


# --- GreyBernoulli: the fast exact log-density, against torch's binary cross-entropy ------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("binary", [False, True])
def test_grey_bernoulli_log_prob_and_gradients_match_torch(dtype, binary):
    from torch.nn.functional import binary_cross_entropy_with_logits as bce

    from pyro_latent.vae.model import GreyBernoulli

    generator = torch.Generator().manual_seed(1)
    logits = torch.randn(3, 40, 784, generator=generator, dtype=dtype) * 8  # tails included
    x = torch.rand(40, 784, generator=generator, dtype=dtype)
    x = (x > 0.5).to(dtype) if binary else x
    mine = logits.clone().requires_grad_()
    theirs = logits.clone().requires_grad_()
    value = GreyBernoulli(logits=mine).log_prob(x)
    reference = -bce(theirs, x.expand_as(theirs), reduction="none")
    tolerance = 1e-5 if dtype == torch.float32 else 1e-12
    assert value.shape == reference.shape == (3, 40, 784)
    torch.testing.assert_close(value, reference, atol=tolerance, rtol=0)
    (value * x).sum().backward()  # a non-uniform upstream gradient
    (reference * x).sum().backward()
    torch.testing.assert_close(mine.grad, theirs.grad, atol=tolerance, rtol=0)


def test_grey_bernoulli_second_derivatives_and_value_gradient():
    from pyro_latent.vae.model import GreyBernoulli

    generator = torch.Generator().manual_seed(2)
    logits = (torch.randn(2, 6, generator=generator, dtype=torch.float64) * 3).requires_grad_()
    x = torch.rand(2, 6, generator=generator, dtype=torch.float64).requires_grad_()

    def log_density(logits, x):
        return GreyBernoulli(logits=logits).log_prob(x)

    assert torch.autograd.gradcheck(log_density, (logits, x))
    assert torch.autograd.gradgradcheck(log_density, (logits, x))
    # the closed form of the curvature: ∂²/∂l² log p = -σ(l)(1 - σ(l))
    (hess_diag,) = torch.autograd.grad(
        torch.autograd.grad(log_density(logits, x).sum(), logits, create_graph=True)[0].sum(),
        logits,
    )
    p = torch.sigmoid(logits.detach())
    torch.testing.assert_close(hess_diag, -p * (1 - p))


def test_grey_bernoulli_is_a_bernoulli_under_pyro():
    from pyro_latent.vae.model import GreyBernoulli

    d = GreyBernoulli(logits=torch.zeros(4, 784)).to_event(1)
    expanded = d.expand((2, 4))
    assert isinstance(expanded.base_dist, GreyBernoulli)
    assert expanded.batch_shape == (2, 4) and expanded.event_shape == (784,)
    with pyro.validation_enabled(True):
        draw = pyro.sample("x", d)
        assert set(draw.unique().tolist()) <= {0.0, 1.0}
        half = torch.full((4, 784), 0.5)
        torch.testing.assert_close(d.log_prob(half), torch.full((4,), -784 * 0.6931471805599453))
