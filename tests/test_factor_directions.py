"""Directions against ground truth, on a linear world where every answer has a closed form: images
``x = B f + c``, a linear encoder ``μ(x) = A x`` and decoder ``g(z) = B M z + c``, all wrapped as
a LatentModel the library did not define."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from pyro_latent.concepts.factor_directions import (
    FactorReadout,
    counterfactual,
    factor_traversal_record,
    true_directions,
)
from pyro_latent.core.latent_model import as_latent_model

K, D = 3, 4
GEN = torch.Generator().manual_seed(0)
B = torch.rand(784, K, generator=GEN) * 0.1  # faint patterns: x stays inside [0, 1]
C = torch.full((784,), 0.1)
A = torch.randn(D, 784, generator=GEN) / 28
M = torch.randn(K, D, generator=GEN)


def render(factors: torch.Tensor) -> torch.Tensor:
    return (factors.to(torch.float32) @ B.T + C).clamp(0, 1)


def world(n: int, seed: int) -> torch.Tensor:
    return torch.rand(n, K, generator=torch.Generator().manual_seed(seed)) * 2 + 0.5


@pytest.fixture(scope="module")
def model():
    encoder = nn.Linear(784, D, bias=False)
    decoder = nn.Linear(D, 784)
    with torch.no_grad():
        encoder.weight.copy_(A)
        decoder.weight.copy_(B @ M)
        decoder.bias.copy_(C)
    return as_latent_model(encoder, decoder, latent_dim=D, likelihood="normal")


@pytest.fixture(scope="module")
def readout():
    f = world(4000, 1)
    return FactorReadout(hidden=(64,), epochs=30, seed=0).fit(render(f), f)


def test_counterfactual_moves_only_the_named_columns():
    f = world(5, 2)
    moved = counterfactual(f, {1: 2.0, 2: -1.0})
    torch.testing.assert_close(moved[:, 0], f[:, 0])
    torch.testing.assert_close(moved[:, 1], f[:, 1] + 2)
    torch.testing.assert_close(moved[:, 2], f[:, 2] - 1)
    with pytest.raises(ValueError, match="column index in 0..2"):
        counterfactual(f, {3: 1.0})
    with pytest.raises(ValueError, match="step"):
        counterfactual(f, {0: float("nan")})


def test_the_true_direction_of_a_linear_world_is_the_encoder_times_the_pattern(model):
    f = world(6, 3)
    for k in range(K):
        d = true_directions(model, render, f, k, delta=0.25)
        expected = (A @ B[:, k]).double().expand(6, D)
        torch.testing.assert_close(d, expected, atol=1e-5, rtol=1e-4)


def test_the_read_out_reads_held_out_factors_and_is_reproducible(readout):
    f = world(500, 4)
    r2 = readout.r2_per_factor(render(f), f)
    assert min(r2) > 0.97, r2
    again = FactorReadout(hidden=(64,), epochs=30, seed=0).fit(
        render(world(4000, 1)), world(4000, 1)
    )
    np.testing.assert_array_equal(again.predict(render(f)), readout.predict(render(f)))
    assert readout.losses_[-1] < readout.losses_[0]


def test_the_meter_is_the_read_out_and_differentiable(readout):
    image = render(world(1, 5))[0]
    meter = readout.meter(1)
    assert float(meter(image)) == pytest.approx(float(readout.predict(image[None])[0, 1]), abs=1e-6)
    x = image.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(meter(x), x)
    step = 1e-2 * grad / grad.norm()
    change = float(meter(image + step) - meter(image - step)) / 2
    assert change == pytest.approx(float(grad @ step), rel=1e-2)


def test_a_traversal_is_scored_in_closed_form(model, readout):
    """Along d the read-out factors move at ``M d`` per unit; purity and leakage follow."""
    spreads = np.array([0.6, 0.5, 0.4])
    z0 = torch.linalg.pinv(M.double()) @ world(1, 6)[0].double()  # decodes to r(f) for that f
    d = torch.tensor([1.0, -0.5, 0.2, 0.3], dtype=torch.float64)
    record = factor_traversal_record(
        model.decode, readout, z0, d, np.linspace(-0.3, 0.3, 7), target=2, spreads=spreads
    )
    slopes = (M.double() @ d).numpy()
    assert slopes[2] > 0  # d raises factor 2
    np.testing.assert_allclose(record["slopes"], slopes, rtol=0.08, atol=0.03)
    moved = np.abs(slopes) / spreads
    assert record["purity"] == pytest.approx(moved[2] / moved.sum(), abs=0.05)
    assert record["leakage"][1] == pytest.approx(moved[1] / moved[2], rel=0.15)
    along_nothing = factor_traversal_record(
        model.decode, readout, z0, torch.zeros(D, dtype=torch.float64), [-1, 0, 1], 0, spreads
    )
    # a constant image: the read-out's slopes are exactly 0, so nothing moves
    assert along_nothing["purity"] is None and set(along_nothing["leakage"].values()) == {None}
    backwards = factor_traversal_record(
        model.decode, readout, z0, -d, np.linspace(-0.3, 0.3, 7), target=2, spreads=spreads
    )
    assert backwards["gain"] == pytest.approx(-record["gain"], rel=1e-6)
    assert backwards["purity"] == 0.0  # it lowers the target: the wrong way earns nothing


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda r: r.fit(torch.rand(10, 784), torch.ones(10, 2)), "vary"),
        (lambda r: r.fit(torch.rand(10, 784), torch.rand(9, 2)), "10 images but 9"),
        (lambda r: r.fit(torch.rand(10, 5), torch.rand(10, 2)), "images must be"),
        (lambda r: r.fit(torch.rand(10, 784), torch.full((10, 2), float("nan"))), "finite"),
        (lambda r: r.set_params(epochs=0).fit(torch.rand(10, 784), torch.rand(10, 2)), "epochs"),
    ],
)
def test_bad_inputs(call, match):
    with pytest.raises(ValueError, match=match):
        call(FactorReadout(hidden=(8,), epochs=1))


def test_bad_directions_inputs(model, readout):
    with pytest.raises(ValueError, match="delta"):
        true_directions(model, render, world(2, 0), 0, delta=0.0)
    with pytest.raises(ValueError, match="column index"):
        true_directions(model, render, world(2, 0), 5, delta=0.1)
    with pytest.raises(ValueError, match="moves must map"):
        counterfactual(world(2, 0), [(0, 1.0)])
    with pytest.raises(ValueError, match="render must be a callable"):
        true_directions(model, None, world(2, 0), 0, delta=0.1)
    with pytest.raises(ValueError, match="hidden must be a sequence"):
        FactorReadout(hidden=8).fit(torch.rand(10, 784), torch.rand(10, 2))
    with pytest.raises(ValueError, match="images must be a tensor"):
        readout.forward(np.zeros((2, 784)))
    with pytest.raises(ValueError, match="one image of 784"):
        readout.meter(0)(torch.zeros(100))
    with pytest.raises(ValueError, match="finite"):
        factor_traversal_record(model.decode, readout, torch.zeros(D), torch.ones(D),
                                [0.0, float("nan")], 0, [1, 1, 1])  # fmt: skip
    with pytest.raises(ValueError, match="spreads"):
        factor_traversal_record(
            model.decode, readout, torch.zeros(D), torch.ones(D), [0, 1], 0, [1]
        )
