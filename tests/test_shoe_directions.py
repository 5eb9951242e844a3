"""Every candidate direction at one shoe, on an untrained VAE: the properties each must have."""

from __future__ import annotations

import pytest
import torch

from pyro_latent import as_latent_model
from pyro_latent.concepts.directions import unit
from pyro_latent.concepts.shoe_directions import (
    CAV_PATTERN_KEYS,
    DIRECTIONS,
    brighter,
    directions_at,
)
from pyro_latent.concepts.shoes import EmptyShapeError, soft_shoe_brightness
from pyro_latent.vae import get_preset
from pyro_latent.vae.model import VAE


@pytest.fixture(scope="module")
def vae():
    torch.manual_seed(0)
    return VAE(get_preset("small")).eval()


def shoe() -> torch.Tensor:
    image = torch.zeros(28, 28)
    image[15:24, 3:25] = 0.6
    image[10:15, 3:10] = 0.45  # the ankle: grey, so whitening and brightening both change it
    return image.reshape(784)


def test_every_direction_is_a_unit_vector_with_its_defining_property(vae):
    cavs = {k: torch.randn(20) for k in ("height", "brightness", *CAV_PATTERN_KEYS)}
    z0, directions, diag = directions_at(vae, shoe(), cavs)
    assert z0.shape == (20,)
    assert set(directions) <= set(DIRECTIONS) and len(directions) >= len(DIRECTIONS) - 1
    for name, d in directions.items():
        if name != "gs pullback":  # unit in G, not in the Euclidean norm
            assert float(d.norm()) == pytest.approx(1.0), name
    h, b = directions["two-image h"], directions["two-image b"]
    assert float(directions["gs euclidean"] @ b) == pytest.approx(0, abs=1e-9)
    assert float(directions["gs euclidean b⊥h"] @ h) == pytest.approx(0, abs=1e-9)
    assert diag["pixel_cosine_gs_pullback"] == pytest.approx(0, abs=1e-6)
    assert 0 <= diag["angle_hb"] <= 180 and diag["condition_hb"] >= 1
    grad = torch.func.grad(lambda z: soft_shoe_brightness(vae.decode(z[None])[0]))(z0)
    assert float(grad.detach().double() @ directions["jacobian"]) == pytest.approx(0, abs=1e-4)
    if diag["commenter"]["found"]:
        d = directions["commenter h-αb"].float()
        with torch.no_grad():
            change = soft_shoe_brightness(vae.decode((z0 + d)[None])[0]) - soft_shoe_brightness(
                vae.decode(z0[None])[0]
            )
        assert float(change) == pytest.approx(0, abs=1e-3)
    else:
        assert "same sign" in diag["commenter"]["reason"]
    assert torch.allclose(h, directions["two-image h"])
    for key in ("height", *CAV_PATTERN_KEYS):
        torch.testing.assert_close(directions[f"cav {key}"], unit(cavs[key]))


def test_the_cav_patterns_are_optional_and_unknown_keys_are_refused(vae):
    cavs = {"height": torch.randn(20), "brightness": torch.randn(20)}
    _, directions, _ = directions_at(vae, shoe(), cavs)
    assert "cav height" in directions and "cav height pattern" not in directions
    with pytest.raises(ValueError, match="unknown key.*'height patern'"):
        directions_at(vae, shoe(), {**cavs, "height patern": torch.randn(20)})
    with pytest.raises(ValueError, match=r"cavs\['brightness pattern'\] must be a vector \[20\]"):
        directions_at(vae, shoe(), {**cavs, "brightness pattern": torch.randn(3)})


def test_brighter_saturates_at_one():
    x = torch.tensor([0.0, 0.4, 0.8])
    assert brighter(x).tolist() == pytest.approx([0.0, 0.6, 1.0])


def test_the_jacobian_path_follows_the_constraint(vae):
    from pyro_latent.concepts.shoe_directions import jacobian_path, jacobian_path_images

    z0 = vae.encode(shoe().reshape(1, -1))[0][0].detach()
    alphas = [-0.5, 0.0, 0.5, 1.0]
    path = jacobian_path(vae.decode, z0, alphas)
    assert path.shape == (4, 20) and torch.equal(path[1], z0)
    steps = (path[1:] - path[:-1]).norm(dim=-1)
    torch.testing.assert_close(steps, torch.full((3,), 0.5), rtol=1e-4, atol=1e-5)
    with torch.no_grad():
        before = soft_shoe_brightness(vae.decode(path[1:2])[0])
        after = soft_shoe_brightness(vae.decode(path[2:3])[0])
    assert abs(float(after - before)) < 0.01  # held to first order over a half-unit step
    assert jacobian_path_images(vae.decode, z0, alphas).shape == (4, 784)


def test_measure_shoe_traverses_every_direction(vae):
    from pyro_latent.concepts.shoe_directions import measure_shoe

    cavs = {"height": torch.randn(20), "brightness": torch.randn(20)}
    spreads = {"height": 5.0, "brightness": 0.1}
    alphas = [-1.0, 0.0, 1.0]
    diag, records = measure_shoe(vae, shoe(), cavs, alphas, spreads)
    assert "angle_hb" in diag and "jacobian path" in records
    assert set(records) - {"jacobian path"} <= set(DIRECTIONS)
    for record in records.values():
        assert (
            len(record["purity_by_distance"]) == 1 and record["alpha_lo"] <= 0 <= record["alpha_hi"]
        )
    blank = as_latent_model(
        lambda x: vae.encode(x)[0], lambda z: torch.zeros(z.shape[0], 784), latent_dim=20
    )
    with pytest.raises(EmptyShapeError):
        measure_shoe(blank, shoe(), cavs, alphas, spreads)
    with pytest.raises(TypeError, match="LatentModel"):
        directions_at(vae.decode, shoe(), cavs)
