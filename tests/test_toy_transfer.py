"""Concept transfer between the toy models: concepts, the exact translation and its checks.

The exact matrix is checked against a brute force written here from the world's rules alone
(``rollout``, ``render``, ``emission_probs``), against Pyro's own ``log_evidence`` and
``marginals``, and against the Monte-Carlo estimate drawn through the Pyro programs.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from pyro_latent.toy import LocalStateModel, ObjectCentricModel, StripWorld
from pyro_latent.toy.concepts import concept_names, concepts, get_concept
from pyro_latent.toy.transfer import (
    TransferredIdentifier,
    distance_from_identity,
    expected_tv,
    invertible_formula,
    last_step_prior,
    monte_carlo_translation,
    smallest_invertible_window,
    transfer_concept,
    translation_matrix,
    window_log_likelihood,
)


def models(n, eps=0.0):
    world = StripWorld(n)
    return world, ObjectCentricModel(world, eps), LocalStateModel(world, eps)


# ----------------------------------------------------------------------------- concepts
@pytest.mark.parametrize("n", [4, 6, 10])
def test_concepts_agree_on_both_latents(n):
    world, m1, m2 = models(n)
    states = world.valid_states()
    cells = world.to_local(states)
    for name, concept in concepts(world).items():
        a, b = concept(m1, states), concept(m2, cells)
        assert torch.equal(a, b), name
        assert int(a.min()) >= 0 and int(a.max()) < concept.n_values(world), name


def test_concept_examples_from_the_design_page():
    world, m1, m2 = models(10)
    cells = torch.tensor([0, 0, 1, 0, 4, 4, 0, 0, 0, 0])  # red at 2, blue at 4-5 moving right
    assert get_concept("blue_velocity")(m2, cells) == 1
    assert get_concept("red_location")(m2, cells) == 2
    assert get_concept("blue_location")(m2, cells) == 4
    assert get_concept("red_hidden")(m2, cells) == 0
    assert get_concept("cell_4", world)(m2, cells) == 4
    # b=4, r=5, moving right: cell 5 holds red under the right-moving pair, code 5
    assert get_concept("red_hidden")(m1, torch.tensor([4, 5, 1])) == 1
    assert get_concept("cell_5", world)(m1, torch.tensor([4, 5, 1])) == 5


def test_unknown_concept_lists_the_available_ones():
    world = StripWorld(5)
    with pytest.raises(ValueError, match="available: blue_velocity.*cell_0 .. cell_4"):
        get_concept("green_velocity", world)
    with pytest.raises(ValueError, match="unknown concept 'cell_5'"):
        get_concept("cell_5", world)
    assert concept_names(world)[-1] == "cell_4"


def test_concepts_reject_latents_outside_the_support():
    world, m1, m2 = models(6)
    velocity = get_concept("blue_velocity")
    with pytest.raises(ValueError, match="blue=5 is outside"):
        velocity(m1, torch.tensor([5, 0, 0]))  # blue = n-1: in the domain, not in the support
    with pytest.raises(ValueError, match="points into the wall"):
        velocity(m1, torch.tensor([0, 3, 0]))
    with pytest.raises(ValueError, match="2 red cells"):
        velocity(m2, torch.tensor([1, 1, 4, 4, 0, 0]))
    with pytest.raises(ValueError, match="disagree on velocity"):
        velocity(m2, torch.tensor([1, 2, 4, 0, 0, 0]))
    with pytest.raises(ValueError, match="ObjectCentricModel or LocalStateModel"):
        velocity("model", torch.tensor([1, 0, 1]))


# ----------------------------------------------------------------------------- brute force
def brute_force_matrix(world, eps, T, eps_dst=None):
    """``Σ_o p_dst(l_dst | o) p_src(o | l_src)`` over every window, from the world's rules; the
    source sees noise ``eps`` and the destination ``eps_dst`` (default: the same)."""
    eps_dst = eps if eps_dst is None else eps_dst
    states = world.valid_states()
    S, n = len(states), world.n_cells
    starts = {}
    for s0 in range(S):
        window = world.rollout(states[s0], T)
        starts[int(world.state_index(window[-1]))] = world.render(window).numpy()
    windows = np.stack([starts[s] for s in range(S)]).reshape(S, -1)  # [S, T*n]
    obs = np.array(list(itertools.product(range(3), repeat=n * T)))  # [W, T*n]
    lik_src = np.stack([world.emission_probs(eps).numpy()[w, obs].prod(-1) for w in windows], 1)
    lik_dst = np.stack(
        [world.emission_probs(eps_dst).numpy()[w, obs].prod(-1) for w in windows], 1
    )  # [W, S]
    total = lik_dst.sum(-1, keepdims=True)
    posterior = np.divide(lik_dst, total, out=np.zeros_like(lik_dst), where=total > 0)
    return torch.from_numpy(lik_src.T @ posterior)  # uniform prior at the last step


@pytest.mark.parametrize(("eps", "T"), [(0.0, 1), (0.0, 2), (0.1, 1), (0.1, 2), (0.3, 2)])
@pytest.mark.parametrize("direction", ["1->2", "2->1"])
def test_translation_matrix_matches_brute_force(eps, T, direction):
    world, m1, m2 = models(4, eps)
    src, dst = (m1, m2) if direction == "1->2" else (m2, m1)
    exact = translation_matrix(src, dst, T)
    assert exact.shape == (world.n_states, world.n_states)
    torch.testing.assert_close(exact, brute_force_matrix(world, eps, T), rtol=0, atol=1e-12)
    torch.testing.assert_close(exact.sum(-1), torch.ones(world.n_states, dtype=torch.float64))


@pytest.mark.parametrize(
    ("eps_src", "eps_dst", "T"), [(0.0, 0.2, 2), (0.1, 0.3, 2), (0.3, 0.05, 1)]
)
@pytest.mark.parametrize("direction", ["1->2", "2->1"])
def test_translation_matrix_with_different_noise_matches_brute_force(
    eps_src, eps_dst, T, direction
):
    # Unequal noise makes the matrix asymmetric, so a rows/columns swap cannot pass.
    world = StripWorld(4)
    if direction == "1->2":
        src, dst = ObjectCentricModel(world, eps_src), LocalStateModel(world, eps_dst)
    else:
        src, dst = LocalStateModel(world, eps_src), ObjectCentricModel(world, eps_dst)
    expected = brute_force_matrix(world, eps_src, T, eps_dst)
    assert float((expected - expected.T).abs().max()) > 1e-3
    torch.testing.assert_close(translation_matrix(src, dst, T), expected, rtol=0, atol=1e-12)


def test_literal_and_compiled_model2_give_the_same_matrix():
    world, m1, m2 = models(4, 0.2)
    literal = LocalStateModel(world, 0.2, form="literal")
    torch.testing.assert_close(translation_matrix(m1, literal, 2), translation_matrix(m1, m2, 2))


@pytest.mark.parametrize("n", [4, 7, 10])
def test_single_frame_is_uniform_over_states_with_the_same_frame(n):
    world, m1, m2 = models(n)
    frames = world.render(world.valid_states())
    same = (frames[:, None] == frames[None]).all(-1).double()
    closed_form = same / same.sum(-1, keepdim=True)
    torch.testing.assert_close(translation_matrix(m1, m2, 1), closed_form, rtol=0, atol=1e-12)
    assert distance_from_identity(closed_form) > 0.4


def first_window_with_distinct_renders(world):
    """Independent: the smallest T at which the S backward windows are pairwise distinct."""
    states = world.valid_states()
    frames = world.render(world.rollout(states, world.period + 1))  # ends one period on, at s
    for T in range(1, world.period + 2):
        rendered = {tuple(w.flatten().tolist()) for w in frames[:, -T:]}
        if len(rendered) == len(states):
            return T
    return None


@pytest.mark.parametrize("n", [4, 5, 10])
def test_smallest_invertible_window(n):
    world, m1, m2 = models(n)
    T_star = smallest_invertible_window(m1, m2)
    assert T_star == first_window_with_distinct_renders(world)
    assert T_star == smallest_invertible_window(m2, m1)
    eye = torch.eye(world.n_states, dtype=torch.float64)
    torch.testing.assert_close(translation_matrix(m1, m2, T_star), eye)
    torch.testing.assert_close(translation_matrix(m1, m2, T_star + 3), eye)
    assert distance_from_identity(translation_matrix(m1, m2, T_star - 1)) > 0


def test_noisy_matrices_approach_identity_as_the_window_grows():
    world, m1, m2 = models(4, 0.1)
    distances = [distance_from_identity(translation_matrix(m1, m2, T)) for T in (1, 2, 3)]
    assert distances[0] > distances[1] > distances[2] > 0


def test_posterior_matches_pyro_log_evidence_and_marginals():
    world, m1, m2 = models(5, 0.15)
    g = torch.Generator().manual_seed(3)
    T = 3
    obs = torch.stack([world.sample_episode(T, 0.15, g)[1] for _ in range(6)])
    for model in (m1, m2):
        # the per-window route of the translation: Σ over last states of p(o | s) p(s)
        joint = window_log_likelihood(model, obs).double() + last_step_prior(model, T).log()
        log_z = torch.logsumexp(joint, -1)
        post = (joint - log_z[:, None]).exp()
        torch.testing.assert_close(log_z, model.log_evidence(obs).double())
        marg = model.marginals(obs)
        latents = model.valid_latents
        if model is m1:
            for key, col, size in (("blue", 0, 5), ("red", 1, 5), ("velocity", 2, 2)):
                one_hot = torch.nn.functional.one_hot(latents[:, col], size).double()
                torch.testing.assert_close(post @ one_hot, marg[key][:, -1])
        else:
            one_hot = torch.nn.functional.one_hot(latents, 6).double()  # [S, n, 6]
            cells = torch.einsum("ws,snc->wnc", post, one_hot)
            torch.testing.assert_close(cells, marg["cells"][:, -1])


def test_translation_errors():
    world, m1, m2 = models(5, 0.1)
    with pytest.raises(ValueError, match="exceeds max_windows"):
        translation_matrix(m1, m2, 4)
    with pytest.raises(ValueError, match="window must be a positive int"):
        translation_matrix(m1, m2, 0)
    with pytest.raises(ValueError, match="different worlds"):
        translation_matrix(m1, LocalStateModel(StripWorld(4), 0.1), 1)
    with pytest.raises(ValueError, match="dst_model has obs_noise = 0"):
        translation_matrix(m1, LocalStateModel(world), 1)
    with pytest.raises(ValueError, match="never exactly the identity"):
        smallest_invertible_window(m1, m2)
    with pytest.raises(ValueError, match="2 red cells"):
        m2.latent_index(torch.tensor([1, 1, 2, 2, 0]))
    with pytest.raises(ValueError, match="max_window must be a positive int"):
        smallest_invertible_window(*models(5)[1:], max_window="3")
    with pytest.raises(ValueError, match="max_window must be a positive int"):
        smallest_invertible_window(*models(5)[1:], max_window=-1)
    with pytest.raises(ValueError, match="max_window must be a positive int"):
        smallest_invertible_window(*models(5)[1:], max_window=0)
    assert smallest_invertible_window(*models(5)[1:], max_window=np.int64(5)) == 5
    assert smallest_invertible_window(*models(5)[1:], max_window=4) is None


def test_latent_index_rejects_model2_latents_outside_the_support():
    world, m1, m2 = models(10)
    cells = world.to_local(world.valid_states())
    assert torch.equal(m2.latent_index(cells), torch.arange(world.n_states))
    valid = world.to_local(torch.tensor([0, 1, 1]))
    assert valid.tolist() == [4, 5, 0, 0, 0, 0, 0, 0, 0, 0]
    alias = torch.tensor([10, 4, 0, 0, 0, 0, 0, 0, 0, 0])  # same base-6 key as `valid`
    with pytest.raises(ValueError, match="cell code 10 is outside 0..5"):
        m2.latent_index(alias)
    with pytest.raises(ValueError, match="cell code -6 is outside 0..5"):
        m2.latent_index(torch.tensor([4, 5, 0, 0, 0, 0, 0, 0, -6, 1]))
    with pytest.raises(ValueError, match="integer dtype"):
        m2.latent_index(valid.double() + 0.7)
    with pytest.raises(ValueError, match="integer dtype"):
        m2.latent_index(valid.double())
    with pytest.raises(ValueError, match="integer dtype"):
        m1.latent_index(torch.tensor([0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="shape"):
        m2.latent_index(valid[:5])
    f = TransferredIdentifier("blue_velocity", m1, m2, 1).fit()
    with pytest.raises(ValueError, match="outside 0..5"):
        f.predict(alias[None])


def test_cell_concept_checks_the_cell_against_the_world():
    world, m1, m2 = models(10)
    concept = get_concept("cell_99")  # no world given: checked when applied
    with pytest.raises(ValueError, match="cell_99 does not exist.*n_cells = 10"):
        concept(m1, world.valid_states())
    with pytest.raises(ValueError, match="cell_99 does not exist.*n_cells = 10"):
        concept(m2, world.to_local(world.valid_states()))
    assert int(get_concept("cell_9")(m2, world.to_local(torch.tensor([8, 0, 0])))) == 2


def test_bad_arguments_to_transfer_and_monte_carlo():
    world, m1, m2 = models(4)
    exact = translation_matrix(m1, m2, 1)
    with pytest.raises(ValueError, match=r"matrix must be the \[S, S\] = \[16, 16\]"):
        transfer_concept("blue_velocity", m1, m2, 1, matrix=torch.eye(3))
    with pytest.raises(ValueError, match="matrix must be"):
        transfer_concept("blue_velocity", m1, m2, 1, matrix=exact.numpy())
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        monte_carlo_translation(m1, m2, 1, 2, batch_size=0)
    with pytest.raises(ValueError, match="n_samples must be a positive int"):
        monte_carlo_translation(m1, m2, 1, 0)
    noisy = ObjectCentricModel(world, 0.1)
    with pytest.raises(ValueError, match="dst_model has obs_noise = 0"):
        monte_carlo_translation(noisy, m2, 1, 2)
    mc = monte_carlo_translation(m1, m2, 1, 5, batch_size=7)
    assert torch.equal(mc.matrix(), mc.matrix(np.int64(5)))
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="n_samples must be a positive int"):
            mc.tv_to(exact, bad)
        with pytest.raises(ValueError, match="n_samples must be a positive int"):
            expected_tv(exact, bad)
    with pytest.raises(ValueError, match="exceeds the 5 draws"):
        mc.matrix(6)


# ----------------------------------------------------------------------------- transfer
def test_transferred_identifier_is_exact_in_the_invertible_case():
    world, m1, m2 = models(10)
    T = smallest_invertible_window(m1, m2)
    matrix = translation_matrix(m1, m2, T)
    cells = world.to_local(world.valid_states())
    for name, concept in concepts(world).items():
        probs = transfer_concept(name, m1, m2, T, matrix=matrix)
        assert torch.equal(probs.argmax(-1), concept(m2, cells)), name
        torch.testing.assert_close(
            probs.max(-1).values, torch.ones(len(cells), dtype=torch.float64)
        )


def test_invertible_formula_equals_exact_transfer_when_invertible():
    world, m1, m2 = models(6)
    T = smallest_invertible_window(m1, m2)
    for name in ("blue_velocity", "red_location", "red_hidden", "cell_3"):
        check = invertible_formula(name, m1, m2, T)
        assert bool(check.roundtrip.all())
        assert torch.equal(check.values, check.exact.argmax(-1))
        assert not bool(check.broken.any()), name


def test_invertible_formula_breaks_on_a_single_frame():
    world, m1, m2 = models(6)
    check = invertible_formula("blue_velocity", m1, m2, 1)
    states = world.valid_states()
    b = states[:, 0]
    at_wall = (b == 0) | (b == world.n_cells - 2)
    # Away from the walls a frame cannot show velocity: exact is 1/2, the formula says 0 or 1.
    torch.testing.assert_close(check.gap[~at_wall], torch.full_like(check.gap[~at_wall], 0.5))
    assert not bool(check.broken[at_wall].any())
    assert not bool(check.roundtrip.all())


def test_monte_carlo_converges_to_the_exact_matrix():
    world, m1, m2 = models(4, 0.1)
    T = 2
    exact = translation_matrix(m1, m2, T)
    mc = monte_carlo_translation(m1, m2, T, n_samples=800, seed=0)
    assert mc.samples.shape == (800, world.n_states)
    tv = {n: mc.tv_to(exact, n) for n in (50, 800)}
    # Empirical rows have E[TV] ≈ expected_tv; a fixed seed and a 1.5x margin (a 5-sigma-ish
    # band for the mean of 16 rows) make this deterministic yet able to fail.
    for n, value in tv.items():
        assert value < 1.5 * expected_tv(exact, n), (n, value)
    assert tv[800] < 0.5 * tv[50]
    idata = mc.to_inference_data()
    assert idata.posterior["dst_state"].shape == (1, 800, world.n_states)


def test_monte_carlo_with_model2_as_source_is_exact_without_noise():
    world, m1, m2 = models(5)
    T = smallest_invertible_window(m2, m1)
    mc = monte_carlo_translation(m2, m1, T, n_samples=3, seed=1)
    assert torch.equal(mc.matrix(), torch.eye(world.n_states, dtype=torch.float64))
    assert math.isclose(
        mc.tv_to(translation_matrix(m2, m1, 1)),
        distance_from_identity(translation_matrix(m2, m1, 1)),
    )


def test_transferred_identifier_estimator():
    world, m1, m2 = models(6)
    T = smallest_invertible_window(m1, m2)
    f2 = TransferredIdentifier("blue_velocity", m1, m2, window=T)
    with pytest.raises(ValueError, match="not fitted"):
        f2.predict(world.to_local(world.valid_states()))
    f2.fit()
    cells = torch.tensor([[0, 0, 1, 4, 4, 0], [0, 2, 3, 0, 0, 0]])
    assert f2.predict(cells).tolist() == [1, 0]
    np.testing.assert_allclose(f2.predict_proba(cells).sum(-1), 1.0)
    one_frame = TransferredIdentifier("blue_velocity", m1, m2, window=1).fit()
    np.testing.assert_allclose(one_frame.predict_proba(cells[:1]), [[0.5, 0.5]])
    with pytest.raises(ValueError, match="2 red cells"):
        f2.predict(torch.tensor([[1, 1, 4, 4, 0, 0]]))
    # a scikit-learn estimator: clone gives an unfitted copy with the same parameters
    from sklearn.base import clone
    from sklearn.exceptions import NotFittedError

    copy = clone(f2)
    assert {k: repr(v) for k, v in copy.get_params().items()} == {
        k: repr(v) for k, v in f2.get_params().items()
    }  # the models are deep copies, equal in everything but identity
    assert not hasattr(copy, "proba_")
    with pytest.raises(NotFittedError):
        copy.predict(cells)
    assert copy.fit().predict(cells).tolist() == [1, 0]
    assert f2.score(cells, np.array([1, 0])) == 1.0  # ClassifierMixin's accuracy
