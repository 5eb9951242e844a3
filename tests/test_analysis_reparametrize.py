"""Invertible latent maps, and a VAE re-parametrised by one: the same function of the images."""

from __future__ import annotations

import math

import pytest
import torch

from pyro_latent.analysis.reparametrize import (
    AdditiveCoupling,
    Identity,
    Linear,
    MonotoneRotation,
    ReparametrizedVAE,
    Rotation,
)
from pyro_latent.core.latent_model import LatentModel
from pyro_latent.vae.model import VAE, VAEConfig

MAPS = {
    "identity": lambda d: Identity(d),
    "rotation": lambda d: Rotation(d, seed=1),
    "linear": lambda d: Linear(d, seed=2, condition=10.0),
    "scaled-linear": lambda d: Linear(d, seed=2, condition=10.0, determinant=0.25),
    "coupling": lambda d: AdditiveCoupling(d, seed=5, layers=3, strength=1.5),
    "monotone": lambda d: MonotoneRotation(d, seed=3, strength=0.5),
    "monotone-strong": lambda d: MonotoneRotation(d, seed=4, strength=5.0),
}


@pytest.fixture(scope="module")
def vae() -> VAE:
    torch.manual_seed(0)
    return VAE(VAEConfig("t", latent_dim=3, hidden=(16,))).eval()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.rand(8, 784, generator=torch.Generator().manual_seed(1))


def codes(n: int, d: int, dtype=torch.float64, spread: float = 3.0) -> torch.Tensor:
    return spread * torch.randn(n, d, generator=torch.Generator().manual_seed(2), dtype=dtype)


# ------------------------------------------------------------------------------ the maps
@pytest.mark.parametrize("name", MAPS)
@pytest.mark.parametrize("dim", [1, 3, 20])
def test_forward_and_inverse_are_inverses(name, dim):
    if name in ("linear", "scaled-linear", "coupling") and dim == 1:
        pytest.skip("a 1-D linear map has condition number 1, a coupling needs 2 axes")
    phi = MAPS[name](dim)
    z = codes(200, dim)
    torch.testing.assert_close(phi.inverse(phi.forward(z)), z, atol=1e-8, rtol=0)
    torch.testing.assert_close(phi.forward(phi.inverse(z)), z, atol=1e-8, rtol=0)
    assert phi(z).shape == z.shape and phi(z).dtype == torch.float64


def test_newton_inverse_reaches_1e_10_even_far_out():
    phi = MonotoneRotation(4, seed=0, strength=5.0)
    z = torch.tensor([[0.0, 1e-8, -40.0, 3.0], [-1e-3, 200.0, 0.7, -0.7]], dtype=torch.float64)
    assert (phi.inverse(phi.forward(z)) - z).abs().max() < 1e-10


@pytest.mark.parametrize("name", MAPS)
def test_jacobian_matches_autograd(name):
    phi = MAPS[name](4)
    z = codes(5, 4)
    expected = torch.stack(
        [torch.autograd.functional.jacobian(phi.forward, r[None])[0, :, 0] for r in z]
    )
    torch.testing.assert_close(phi.jacobian(z), expected)
    if phi.jacobian_is_constant:
        torch.testing.assert_close(phi.jacobian(z), phi.jacobian(z.flip(0)))


def test_inverse_is_differentiable_with_the_implicit_derivative():
    phi = MonotoneRotation(3, seed=0, strength=2.0)
    y = codes(1, 3).requires_grad_(True)
    jac_inverse = torch.autograd.functional.jacobian(phi.inverse, y)[0, :, 0]
    jac_forward = phi.jacobian(phi.inverse(y).detach())[0]
    torch.testing.assert_close(jac_inverse @ jac_forward, torch.eye(3, dtype=torch.float64))


def test_rotation_is_orthogonal_and_seeded():
    Q = torch.as_tensor(Rotation(6, seed=5).matrix)
    torch.testing.assert_close(Q.T @ Q, torch.eye(6, dtype=torch.float64))
    z = codes(10, 6)
    torch.testing.assert_close(Rotation(6, 5)(z).norm(dim=1), z.norm(dim=1))
    assert (Rotation(6, 5).matrix == Rotation(6, 5).matrix).all()
    assert not (Rotation(6, 5).matrix == Rotation(6, 6).matrix).all()


@pytest.mark.parametrize("condition", [1.0, 10.0, 1000.0])
def test_linear_has_the_requested_condition_number(condition):
    phi = Linear(5, seed=0, condition=condition)
    singular = torch.linalg.svdvals(torch.as_tensor(phi.matrix))
    assert float(singular.max() / singular.min()) == pytest.approx(condition, rel=1e-10)
    assert float(singular.prod()) == pytest.approx(1.0, rel=1e-10)  # volume-preserving
    assert float(torch.linalg.cond(torch.as_tensor(phi.matrix))) == pytest.approx(condition)


def test_linear_determinant_scales_every_singular_value():
    base, scaled = Linear(5, seed=3, condition=10.0), Linear(5, seed=3, determinant=32.0)
    assert abs(float(torch.linalg.det(torch.as_tensor(scaled.matrix)))) == pytest.approx(32.0)
    torch.testing.assert_close(torch.as_tensor(scaled.matrix), 2.0 * torch.as_tensor(base.matrix))
    assert base.volume_preserving and not scaled.volume_preserving
    assert "determinant=32" in repr(scaled) and "determinant" not in repr(base)


def test_coupling_preserves_volume_with_a_varying_jacobian():
    phi = AdditiveCoupling(5, seed=0, layers=4, strength=2.0)
    z = codes(50, 5)
    jac = phi.jacobian(z)
    torch.testing.assert_close(torch.linalg.det(jac), torch.ones(50, dtype=torch.float64))
    assert float((jac - jac[:1]).abs().max()) > 0.1  # not a linear map in disguise
    assert phi.volume_preserving and not phi.jacobian_is_constant
    torch.testing.assert_close(AdditiveCoupling(5, strength=0.0)(z), z)
    assert (
        not MonotoneRotation(5).volume_preserving
        and MonotoneRotation(5, strength=0).volume_preserving
    )


def test_maps_compute_in_their_inputs_dtype():
    z = codes(4, 3, dtype=torch.float32)
    for make in MAPS.values():
        phi = make(3)
        assert phi(z).dtype == phi.inverse(z).dtype == phi.jacobian(z).dtype == torch.float32


@pytest.mark.parametrize("name", MAPS)
def test_maps_refuse_bad_inputs(name):
    phi = MAPS[name](3)
    bad_nan = codes(2, 3)
    bad_nan[1, 2] = math.nan
    for method in (phi.forward, phi.inverse, phi.jacobian):
        with pytest.raises(ValueError, match=r"shape \(N, 3\)"):
            method(codes(2, 4))
        with pytest.raises(ValueError, match=r"shape \(N, 3\)"):
            method(codes(2, 3)[0])
        with pytest.raises(ValueError, match="NaN"):
            method(bad_nan)
        with pytest.raises(ValueError, match="floating point"):
            method(torch.zeros(2, 3, dtype=torch.long))
        with pytest.raises(ValueError, match="torch.Tensor"):
            method([[0.0, 0.0, 0.0]])


def test_constructors_refuse_bad_parameters():
    with pytest.raises(ValueError, match="dim"):
        Rotation(0)
    with pytest.raises(ValueError, match="seed"):
        Rotation(3, seed=-1)
    with pytest.raises(ValueError, match="condition"):
        Linear(3, condition=0.5)
    with pytest.raises(ValueError, match="condition"):
        Linear(3, condition=math.nan)
    with pytest.raises(ValueError, match="condition number 1"):
        Linear(1, condition=10.0)
    assert Linear(1, condition=1.0).matrix.shape == (1, 1)
    with pytest.raises(ValueError, match="strength"):
        MonotoneRotation(3, strength=-0.1)
    with pytest.raises(ValueError, match="dim"):
        Identity(2.0)
    with pytest.raises(ValueError, match="determinant"):
        Linear(3, determinant=0.0)
    with pytest.raises(ValueError, match="two"):
        AdditiveCoupling(1)
    with pytest.raises(ValueError, match="layers"):
        AdditiveCoupling(3, layers=0)
    with pytest.raises(ValueError, match="strength"):
        AdditiveCoupling(3, strength=-1.0)


# ------------------------------------------------------------------------------ the VAE
@pytest.mark.parametrize("name", MAPS)
def test_reparametrized_vae_reconstructs_like_the_original(vae, images, name):
    wrapped = ReparametrizedVAE(vae, MAPS[name](3))
    with torch.no_grad():
        expected = vae.reconstruct(images)
        torch.testing.assert_close(wrapped.reconstruct(images), expected, atol=1e-5, rtol=0)
        loc, _ = wrapped.encode(images)
        torch.testing.assert_close(wrapped.decode(loc), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", MAPS)
def test_encode_pushes_the_posterior_forward(vae, images, name):
    phi = MAPS[name](3)
    wrapped = ReparametrizedVAE(vae, phi)
    with torch.no_grad():
        loc, scale = vae.encode(images)
        loc_y, scale_y = wrapped.encode(images)
    torch.testing.assert_close(loc_y, phi(loc))
    # sqrt(diag(J diag(σ²) Jᵀ)) row by row, the long way.
    J = phi.jacobian(loc)
    expected = torch.stack(
        [torch.diagonal(J[n] @ torch.diag(scale[n] ** 2) @ J[n].T).sqrt() for n in range(len(J))]
    )
    torch.testing.assert_close(scale_y, expected)
    assert loc_y.shape == scale_y.shape == (8, 3) and (scale_y > 0).all()


def test_rotation_preserves_an_isotropic_posterior(vae):
    # An orthogonal Q maps N(μ, σ² I) to N(Qμ, σ² I): the pushed-forward scales are σ again.
    phi = Rotation(3, seed=0)
    sigma = torch.full((4, 3), 0.3)
    J = phi.jacobian(torch.zeros(4, 3))
    torch.testing.assert_close(torch.einsum("nik,nk->ni", J**2, sigma**2).sqrt(), sigma)


def test_the_wrapper_is_a_latent_model(vae, images):
    wrapped = ReparametrizedVAE(vae, Rotation(3, seed=0))
    assert isinstance(wrapped, LatentModel)
    assert wrapped.latent_dim == 3
    assert wrapped.name == "t+rotation" and vae.name == "t"
    assert ReparametrizedVAE(vae, MonotoneRotation(3)).name == "t+monotone-rotation"
    assert wrapped.encode(images.view(8, 28, 28))[0].shape == (8, 3)
    assert wrapped.decode(torch.zeros(2, 3)).shape == (2, 784)
    assert wrapped.observation_model(torch.zeros(5, 2, 3)).event_shape == (784,)
    assert list(wrapped.parameters()) == list(vae.parameters())
    assert "t+rotation" in repr(wrapped)


def test_the_wrapper_keeps_the_likelihood_of_the_same_images(vae, images):
    # log p(x | y) in the new coordinates is log p(x | φ⁻¹(y)) in the old ones.
    phi = MonotoneRotation(3, seed=1)
    wrapped = ReparametrizedVAE(vae, phi)
    z = codes(8, 3, dtype=torch.float32, spread=1.0)
    torch.testing.assert_close(
        wrapped.log_likelihood(images, phi.forward(z)), vae.log_likelihood(images, z)
    )


def test_the_pushed_forward_prior_of_a_linear_map_is_gaussian(vae):
    # y = A z with z ~ N(0, I) is N(0, A Aᵀ): an independent closed form of the change of
    # variables log p(φ⁻¹ y) − log|det J|.
    phi = Linear(3, seed=0, condition=10.0)
    wrapped = ReparametrizedVAE(vae, phi)
    A = torch.as_tensor(phi.matrix)
    y = codes(16, 3, dtype=torch.float64, spread=2.0)
    expected = torch.distributions.MultivariateNormal(torch.zeros(3, dtype=A.dtype), A @ A.T)
    expected = expected.log_prob(y)
    torch.testing.assert_close(wrapped.log_prior(y), expected)


def test_the_pushed_forward_prior_of_a_monotone_map_integrates_to_one():
    # On a 1-D model: ∫ p_Y(y) dy = 1 by quadrature, whatever φ does to the shape.
    from torch import nn

    from pyro_latent import as_latent_model

    model = as_latent_model(nn.Linear(2, 1), nn.Linear(1, 2), latent_dim=1, likelihood="normal")
    wrapped = ReparametrizedVAE(model, MonotoneRotation(1, seed=0, strength=0.9))
    y = torch.linspace(-40.0, 40.0, 40001, dtype=torch.float64)[:, None]
    density = wrapped.log_prior(y).exp()
    assert float(torch.trapezoid(density, y[:, 0])) == pytest.approx(1.0, abs=1e-6)


def test_the_wrapper_is_differentiable(vae, images):
    wrapped = ReparametrizedVAE(vae, MonotoneRotation(3, seed=0))
    y = torch.zeros(2, 3, requires_grad=True)
    wrapped.decode(y).sum().backward()
    assert y.grad is not None and torch.isfinite(y.grad).all()
    loc, scale = wrapped.encode(images)
    (loc.sum() + scale.sum()).backward()
    assert vae.encoder.net[0].weight.grad is not None
    vae.zero_grad(set_to_none=True)  # the fixture is shared


def test_the_wrapper_refuses_bad_inputs(vae, images):
    wrapped = ReparametrizedVAE(vae, Linear(3, seed=0))
    with pytest.raises(ValueError, match=r"shape \(N, 3\)"):
        wrapped.decode(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="NaN"):
        wrapped.decode(torch.tensor([[0.0, math.nan, 0.0]]))
    with pytest.raises(ValueError, match=r"\[\.\.\., 3\]"):
        wrapped.log_likelihood(images, torch.zeros(8, 2))
    with pytest.raises(TypeError, match="LatentModel"):
        ReparametrizedVAE(torch.nn.Linear(3, 3), Rotation(3))
    with pytest.raises(ValueError, match="images"):
        wrapped.encode(images * 2.0)
    with pytest.raises(ValueError, match="images"):
        wrapped.encode(images[:, :100])
    with pytest.raises(ValueError, match="3-D latent space"):
        ReparametrizedVAE(vae, Rotation(4))
    with pytest.raises(ValueError, match="LatentMap"):
        ReparametrizedVAE(vae, torch.eye(3))
