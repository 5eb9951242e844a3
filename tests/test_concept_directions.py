"""Concept directions on a linear decoder ``g(z) = A z + c`` whose answers are known in closed form.

Height and brightness are stood in for by linear pixel meters ``m(x) = a·x``, so
``∇_z m(g(z)) = Aᵀa`` exactly and every method's answer can be written down.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.base import clone

from pyro_latent.concepts.directions import (
    RegressionCAV,
    angle_degrees,
    bisect,
    condition_number,
    constrained_direction,
    gram_schmidt,
    meter_gradients,
    pullback_metric,
    two_image_direction,
    unit,
)

D, P = 5, 40


@pytest.fixture
def linear():
    g = torch.Generator().manual_seed(0)
    A = torch.randn(P, D, generator=g, dtype=torch.float64)
    c = torch.randn(P, generator=g, dtype=torch.float64)
    a_height = torch.randn(P, generator=g, dtype=torch.float64)
    a_bright = torch.randn(P, generator=g, dtype=torch.float64)

    def decode(z):
        return z.double() @ A.T + c

    return A, c, a_height, a_bright, decode


def test_pullback_metric_of_a_linear_map_is_AtA(linear):
    A, _, _, _, decode = linear
    torch.testing.assert_close(
        pullback_metric(decode, torch.zeros(D, dtype=torch.float64)), A.T @ A
    )


def test_gram_schmidt_in_the_pullback_metric_gives_orthogonal_pixel_changes(linear):
    A, _, _, _, decode = linear
    u, v = torch.randn(D, dtype=torch.float64), torch.randn(D, dtype=torch.float64)
    G = pullback_metric(decode, torch.zeros(D, dtype=torch.float64))
    w = gram_schmidt(u, v, G)
    assert float((A @ w) @ (A @ v)) == pytest.approx(0, abs=1e-9)
    assert float(w @ G @ w) == pytest.approx(1)
    euclid = gram_schmidt(u, v)
    assert float(euclid @ v) == pytest.approx(0, abs=1e-12)
    assert abs(float((A @ euclid) @ (A @ v))) > 1e-3  # orthogonal in z is not orthogonal in x
    with pytest.raises(ValueError, match="parallel"):
        gram_schmidt(v * 2, v)


def test_regression_cav_recovers_the_concept_gradient(linear):
    A, _, a_height, _, decode = linear
    Z = torch.randn(300, D, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    height = decode(Z) @ a_height
    cav = RegressionCAV(alpha=1e-8).fit(Z.numpy(), height.numpy())
    expected = unit(A.T @ a_height)
    torch.testing.assert_close(cav.filter_, expected)
    assert cav.r2_ == pytest.approx(1.0)
    assert cav.gain_ == pytest.approx(float((A.T @ a_height).norm()), rel=1e-6)
    # isotropic codes: the pattern is the filter, up to the sample covariance's deviation from I
    sample_cov = torch.cov(Z.T)
    torch.testing.assert_close(cav.pattern_, unit(sample_cov @ expected))
    assert angle_degrees(cav.pattern_, expected) < 15  # 300 draws in 5-D: a few degrees off I
    assert cav.pattern_gain_ == pytest.approx(cav.gain_ * float(cav.filter_ @ cav.pattern_))
    assert clone(cav).alpha == 1e-8 and not hasattr(clone(cav), "coef_")
    with pytest.raises(ValueError, match="one value"):
        RegressionCAV().fit(Z.numpy(), np.ones(300))


def _distractor_codes(n=4000, seed=0):
    """Codes of a linear decoder ``x = A z`` whose concept moves the code along ``e₀``; ``z₂``
    is nearly constant (sd 0.01, an inactive unit) and correlates with the concept's
    measurement noise ``η``, ``z₁`` is an unrelated active unit."""
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(n, generator=g, dtype=torch.float64)  # the concept itself
    eta = 0.5 * torch.randn(n, generator=g, dtype=torch.float64)  # the meter's error
    Z = torch.stack(
        [
            s + 0.3 * torch.randn(n, generator=g, dtype=torch.float64),
            torch.randn(n, generator=g, dtype=torch.float64),
            0.01 * (eta + 0.1 * torch.randn(n, generator=g, dtype=torch.float64)),
        ],
        -1,
    )
    return Z, s + eta


def test_regression_cav_pattern_recovers_the_generating_direction_and_the_filter_does_not():
    """Haufe et al.'s distractor: the filter leans on the near-constant dimension that explains
    the meter's noise; the pattern Cov(Z) w points along the direction the concept moves."""
    Z, measured = _distractor_codes()
    e0 = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    cav = RegressionCAV(alpha=1e-6).fit(Z.numpy(), measured.numpy())
    assert cav.r2_ > 0.9  # the regression itself is excellent
    assert angle_degrees(cav.filter_, e0) > 80  # and its weights point at the dead dimension
    assert abs(float(cav.filter_[2])) > 0.99
    assert angle_degrees(cav.pattern_, e0) < 2
    # Along the filter, a linear decoder that ignores z₂ hardly changes; along the pattern it does.
    A = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    assert float((A @ cav.filter_).norm()) < 0.15 < 0.99 < float((A @ cav.pattern_).norm())
    # Fitted on the active units only, the filter finds e₀ too, and the pattern still spans all.
    active = RegressionCAV(alpha=1e-6, dims=[0, 1]).fit(Z.numpy(), measured.numpy())
    assert active.coef_[2] == 0 and active.dims_.tolist() == [0, 1]
    assert angle_degrees(active.filter_, e0) < 2 and angle_degrees(active.pattern_, e0) < 2
    assert active.r2_ < cav.r2_  # the noise is no longer explained
    by_mask = RegressionCAV(alpha=1e-6, dims=np.array([True, True, False])).fit(Z, measured)
    torch.testing.assert_close(by_mask.filter_, active.filter_)
    torch.testing.assert_close(
        torch.as_tensor(active.predict(Z.numpy())),
        Z[:, :2] @ torch.as_tensor(active.coef_[:2]) + active.intercept_,
    )


@pytest.mark.parametrize(
    "dims, match",
    [([], "non-empty"), ([0, 3], "0..2"), ([1, 1], "distinct"), ([-1], "0..2"), ([0.5], "indices")],
)
def test_regression_cav_refuses_bad_dims(dims, match):
    Z, measured = _distractor_codes(n=50)
    with pytest.raises(ValueError, match=match):
        RegressionCAV(dims=dims).fit(Z.numpy(), measured.numpy())


def test_two_image_direction_is_the_unit_difference(linear):
    A, c, _, _, decode = linear
    pinv = torch.linalg.pinv(A)

    def encode_mean(x):
        return (x - c) @ pinv.T

    z0, step = torch.randn(D, dtype=torch.float64), torch.randn(D, dtype=torch.float64)
    d = two_image_direction(encode_mean, decode(z0[None]), decode((z0 + step)[None]))
    torch.testing.assert_close(d, unit(step))
    with pytest.raises(ValueError, match="same mean"):
        two_image_direction(encode_mean, decode(z0[None]), decode(z0[None]))


def test_bisection_finds_the_known_alpha(linear):
    A, _, a_height, a_bright, _ = linear
    h, b = unit(A.T @ a_height), unit(A.T @ a_bright)
    bright = A.T @ a_bright  # brightness change per unit step along a direction

    def brightness_change(alpha):
        return float(bright @ (h - alpha * b))

    known = float(bright @ h) / float(bright @ b)
    found = bisect(brightness_change, known - 3, known + 5, tol=1e-10)
    assert found["alpha"] == pytest.approx(known, abs=1e-8)
    assert found["slope"] == pytest.approx(-float(bright @ b), rel=1e-6)
    assert found["sensitivity"] == pytest.approx(1 / abs(float(bright @ b)), rel=1e-6)
    with pytest.raises(ValueError, match="same sign"):
        bisect(brightness_change, known + 1, known + 2)


def test_constrained_direction_holds_brightness_and_raises_height(linear):
    A, _, a_height, a_bright, decode = linear
    grads = meter_gradients(
        decode,
        torch.zeros(D, dtype=torch.float64),
        {"height": lambda x: x @ a_height, "bright": lambda x: x @ a_bright},
    )
    torch.testing.assert_close(grads["height"], A.T @ a_height)
    d = constrained_direction(grads["height"], grads["bright"])
    assert float(grads["bright"] @ d) == pytest.approx(0, abs=1e-9)
    assert float(grads["height"] @ d) > 0


def test_angles_and_condition_numbers():
    e1, e2 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    assert angle_degrees(e1, e2) == pytest.approx(90)
    assert angle_degrees(e1, e1 + 1e-3 * e2) == pytest.approx(math.degrees(1e-3), rel=1e-3)
    assert condition_number(e1, e2) == pytest.approx(1)
    tilted = torch.tensor([math.cos(0.01), math.sin(0.01)])
    assert condition_number(e1, tilted) > 100  # nearly collinear: ill-conditioned
    assert condition_number(e1, 2 * e1) == math.inf
    with pytest.raises(ValueError, match="finite"):
        angle_degrees(torch.tensor([float("nan"), 0.0]), e1)
    with pytest.raises(ValueError, match="zero length"):
        unit(torch.zeros(3))
