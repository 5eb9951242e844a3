"""Translators between latent spaces: known maps recovered, scikit-learn conventions, checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.linalg import orthogonal_procrustes
from scipy.stats import ortho_group
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.metrics import r2_score
from sklearn.metrics.pairwise import cosine_similarity

from pyro_latent.translate.translators import (
    TRANSLATORS,
    AffineTranslator,
    Centering,
    LinearTranslator,
    MLPTranslator,
    ProcrustesTranslator,
    RelativeTranslator,
    StandardScaling,
    ZeroPadding,
    make_translator,
)

# Small settings that keep every fit in this file to a fraction of a second.
FAST = {"relative": {"n_anchors": 20}, "mlp": {"hidden_units": 16, "max_epochs": 30}}


def make(name: str, **params):
    return make_translator(name, **{**FAST.get(name, {}), **params})


def orthogonal(d: int, seed: int) -> np.ndarray:
    return ortho_group.rvs(d, random_state=seed)


def rms_scaled(Z: np.ndarray) -> np.ndarray:
    """Centred and divided by the root-mean-square row norm, computed here from scratch."""
    centred = Z - Z.mean(0)
    return centred / np.sqrt((centred**2).sum(1).mean())


@pytest.fixture
def pairs():
    """100 noisy pairs, 4-D source to 3-D target."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 4))
    Y = X @ rng.normal(size=(4, 3)) + 0.1 * rng.normal(size=(100, 3)) + 1.0
    return X, Y


# =============================================================================== known maps
def test_linear_recovers_a_known_matrix():
    rng = np.random.default_rng(1)
    X, W = rng.normal(size=(50, 4)), rng.normal(size=(4, 3))
    t = LinearTranslator().fit(X, X @ W)
    np.testing.assert_allclose(t.coef_, W, atol=1e-10)
    fresh = rng.normal(size=(20, 4))
    np.testing.assert_allclose(t.transform(fresh), fresh @ W, atol=1e-10)
    assert t.score(fresh, fresh @ W) == pytest.approx(1.0)


def test_affine_recovers_a_known_map():
    rng = np.random.default_rng(2)
    X, W, b = rng.normal(size=(50, 4)), rng.normal(size=(4, 6)), rng.normal(size=6)
    t = AffineTranslator().fit(X, X @ W + b)
    np.testing.assert_allclose(t.coef_, W, atol=1e-10)
    np.testing.assert_allclose(t.intercept_, b, atol=1e-10)
    # The linear translator has no intercept, so it cannot fit the same data.
    assert LinearTranslator().fit(X, X @ W + b).score(X, X @ W + b) < 0.99


@pytest.mark.parametrize("alpha", [0.0, 5.0])
def test_affine_matches_sklearn_least_squares_and_ridge(pairs, alpha):
    X, Y = pairs
    t = AffineTranslator(alpha=alpha).fit(X, Y)
    reference = (LinearRegression() if alpha == 0 else Ridge(alpha=alpha)).fit(X, Y)
    np.testing.assert_allclose(t.coef_, reference.coef_.T, atol=1e-10)
    np.testing.assert_allclose(t.intercept_, reference.intercept_, atol=1e-10)
    np.testing.assert_allclose(t.transform(X), reference.predict(X), atol=1e-10)


def test_procrustes_recovers_rotation_scale_and_translation():
    rng = np.random.default_rng(3)
    Q, shift = orthogonal(4, 0), rng.normal(size=4)
    X = rng.normal(size=(60, 4))
    t = ProcrustesTranslator().fit(X, 2.5 * X @ Q + shift)
    np.testing.assert_allclose(t.rotation_, Q, atol=1e-10)
    fresh = rng.normal(size=(20, 4))
    np.testing.assert_allclose(t.transform(fresh), 2.5 * fresh @ Q + shift, atol=1e-10)


def test_procrustes_embeds_a_source_into_a_larger_target():
    rng = np.random.default_rng(4)
    U = orthogonal(5, 1)[:, :3]  # orthonormal 5×3: z_dst = 0.5 U z_src + t
    X, shift = rng.normal(size=(60, 3)), rng.normal(size=5)
    t = ProcrustesTranslator().fit(X, 0.5 * X @ U.T + shift)
    assert t.rotation_.shape == (5, 5)
    np.testing.assert_allclose(t.rotation_ @ t.rotation_.T, np.eye(5), atol=1e-10)
    fresh = rng.normal(size=(20, 3))
    out = t.transform(fresh)
    assert out.shape == (20, 5)
    np.testing.assert_allclose(out, 0.5 * fresh @ U.T + shift, atol=1e-10)


def test_procrustes_maps_a_source_subspace_onto_a_smaller_target():
    rng = np.random.default_rng(5)
    U, Q = orthogonal(5, 2)[:, :3], orthogonal(3, 3)
    latent = rng.normal(size=(60, 3))  # the source codes live in a 3-D subspace of ℝ⁵
    t = ProcrustesTranslator().fit(latent @ U.T + 1.0, 3.0 * latent @ Q - 2.0)
    fresh = rng.normal(size=(20, 3))
    out = t.transform(fresh @ U.T + 1.0)
    assert out.shape == (20, 3)
    np.testing.assert_allclose(out, 3.0 * fresh @ Q - 2.0, atol=1e-10)


@pytest.mark.parametrize(("d_src", "d_dst"), [(4, 4), (3, 5), (5, 3)])
def test_procrustes_matches_scipy_on_noisy_pairs(d_src, d_dst):
    rng = np.random.default_rng(6)
    X = 3.0 * rng.normal(size=(80, d_src)) + 1.0
    Y = rng.normal(size=(80, d_dst)) + X[:, :1]
    width = max(d_src, d_dst)
    A = np.hstack([rms_scaled(X), np.zeros((80, width - d_src))])
    B = np.hstack([rms_scaled(Y), np.zeros((80, width - d_dst))])
    R = orthogonal_procrustes(A, B)[0]
    t = ProcrustesTranslator().fit(X, Y)
    np.testing.assert_allclose(t.rotation_, R, atol=1e-10)
    fresh = rng.normal(size=(10, d_src))
    x_scale = np.sqrt(((X - X.mean(0)) ** 2).sum(1).mean())
    y_scale = np.sqrt(((Y - Y.mean(0)) ** 2).sum(1).mean())
    padded = np.hstack([(fresh - X.mean(0)) / x_scale, np.zeros((10, width - d_src))])
    expected = (padded @ R)[:, :d_dst] * y_scale + Y.mean(0)
    np.testing.assert_allclose(t.transform(fresh), expected, atol=1e-10)


def sphere(rng, n: int, d: int) -> np.ndarray:
    Z = rng.normal(size=(n, d))
    return Z / np.linalg.norm(Z, axis=1, keepdims=True)


@pytest.mark.parametrize("center", [False, True])
def test_relative_recovers_an_affine_map_of_directions(center):
    # Relative codes forget ‖z − c‖, so the map is recoverable from them when the codes lie on
    # a sphere: exactly about the origin (center=False), nearly about the anchors' mean.
    rng = np.random.default_rng(7)
    W, b = rng.normal(size=(4, 6)), rng.normal(size=6)
    X, fresh = sphere(rng, 1000, 4), sphere(rng, 200, 4)
    t = RelativeTranslator(n_anchors=60, center=center).fit(X, X @ W + b)
    assert t.score(fresh, fresh @ W + b) > (0.99999 if not center else 0.999)


@pytest.mark.parametrize("center", [False, True])
def test_relative_code_is_the_cosine_to_the_anchors(pairs, center):
    X, Y = pairs
    t = RelativeTranslator(n_anchors=15, center=center, seed=4).fit(X, Y)
    assert len(np.unique(t.anchor_indices_)) == 15
    anchors = X[t.anchor_indices_]
    c = anchors.mean(0) if center else np.zeros(4)
    fresh = np.random.default_rng(8).normal(size=(10, 4))
    expected = cosine_similarity(fresh - c, anchors - c)
    np.testing.assert_allclose(t.relative_code(fresh), expected, atol=1e-12)
    np.testing.assert_allclose(t.anchors_, anchors)


@pytest.mark.parametrize("center", [False, True])
def test_relative_code_is_invariant_to_a_similarity_of_the_source(pairs, center):
    X, Y = pairs
    Q, scale = orthogonal(4, 5), 7.0
    shift = np.arange(4.0) if center else np.zeros(4)  # translations only with centring
    moved = lambda Z: scale * Z @ Q + shift  # noqa: E731
    original = RelativeTranslator(n_anchors=15, center=center).fit(X, Y)
    rotated = RelativeTranslator(n_anchors=15, center=center).fit(moved(X), Y)
    np.testing.assert_array_equal(original.anchor_indices_, rotated.anchor_indices_)
    fresh = np.random.default_rng(9).normal(size=(10, 4))
    np.testing.assert_allclose(original.relative_code(fresh), rotated.relative_code(moved(fresh)))
    np.testing.assert_allclose(original.transform(fresh), rotated.transform(moved(fresh)))
    # A general linear map of the source does change the code: the test can tell.
    skew = np.eye(4) + np.triu(np.ones((4, 4)), 1)
    skewed = RelativeTranslator(n_anchors=15, center=center).fit(X @ skew, Y)
    assert not np.allclose(original.relative_code(fresh), skewed.relative_code(fresh @ skew))


def test_relative_code_without_centring_sees_translations(pairs):
    X, Y = pairs
    shift = np.full(4, 3.0)
    original = RelativeTranslator(n_anchors=15, center=False).fit(X, Y)
    shifted = RelativeTranslator(n_anchors=15, center=False).fit(X + shift, Y)
    assert not np.allclose(original.relative_code(X), shifted.relative_code(X + shift))


def mild_map(Z: np.ndarray) -> np.ndarray:
    W = np.linspace(-1.0, 1.0, 15).reshape(5, 3)
    return Z @ W + 0.5 * np.sin(2.0 * Z[:, :3]) + 0.5


def test_mlp_fits_a_mild_nonlinear_map():
    rng = np.random.default_rng(10)
    X, fresh = rng.normal(size=(1000, 5)), rng.normal(size=(500, 5))
    t = MLPTranslator(hidden_units=32, max_epochs=200).fit(X, mild_map(X))
    assert t.score(fresh, mild_map(fresh)) > 0.95
    # The nonlinearity is real: the best affine map falls short of the network.
    affine = AffineTranslator().fit(X, mild_map(X)).score(fresh, mild_map(fresh))
    assert affine < t.score(fresh, mild_map(fresh)) - 0.03


@pytest.mark.parametrize("batch_size", [None, 64])
def test_mlp_is_deterministic_and_leaves_the_global_rng_alone(batch_size):
    rng = np.random.default_rng(11)
    X = rng.normal(size=(200, 5))
    state = torch.get_rng_state()
    fit = lambda seed: MLPTranslator(  # noqa: E731
        hidden_units=16, hidden_layers=2, max_epochs=20, batch_size=batch_size, seed=seed
    ).fit(X, mild_map(X))
    first, second, other = fit(3), fit(3), fit(4)
    assert torch.equal(torch.get_rng_state(), state)
    np.testing.assert_array_equal(first.transform(X), second.transform(X))
    assert not np.allclose(first.transform(X), other.transform(X))
    assert first.n_iter_ == 20 and np.isfinite(first.loss_)


# =============================================================================== conventions
@pytest.mark.parametrize("name", TRANSLATORS)
def test_transform_returns_float64_of_the_target_width(pairs, name):
    X, Y = pairs
    t = make(name).fit(torch.as_tensor(X, dtype=torch.float32), Y.astype(np.float32))
    out = t.transform(X[:7])
    assert out.dtype == np.float64 and out.shape == (7, 3)
    assert t.n_features_in_ == 4 and t.n_features_out_ == 3
    assert t.score(X, Y) == pytest.approx(r2_score(Y, t.transform(X)))
    np.testing.assert_array_equal(make(name).fit_transform(X, Y), make(name).fit(X, Y).transform(X))


@pytest.mark.parametrize("name", TRANSLATORS)
def test_clone_is_unfitted_with_equal_params(pairs, name):
    X, Y = pairs
    fitted = make(name, n_pairs=60, seed=3).fit(X, Y)
    copy = clone(fitted)
    assert copy.get_params() == fitted.get_params()
    assert copy.get_params()["n_pairs"] == 60 and copy.get_params()["seed"] == 3
    with pytest.raises(NotFittedError, match="not fitted yet"):
        copy.transform(X)
    np.testing.assert_array_equal(copy.fit(X, Y).transform(X), fitted.transform(X))


@pytest.mark.parametrize("transform", [Centering(), StandardScaling(), ZeroPadding(6)])
def test_clone_of_transforms(pairs, transform):
    copy = clone(transform.fit(pairs[0]))
    assert copy.get_params() == transform.get_params()
    with pytest.raises(NotFittedError):
        copy.transform(pairs[0])


def test_make_translator_builds_each_class_with_its_params():
    classes = [
        LinearTranslator,
        AffineTranslator,
        ProcrustesTranslator,
        RelativeTranslator,
        MLPTranslator,
    ]
    for name, cls in zip(TRANSLATORS, classes, strict=True):
        t = make_translator(name, seed=5)
        assert type(t) is cls and t.seed == 5
    with pytest.raises(ValueError, match="unknown translator 'cubic'; available: linear"):
        make_translator("cubic")


# =============================================================================== n_pairs
@pytest.mark.parametrize("name", TRANSLATORS)
def test_n_pairs_fits_exactly_the_drawn_pairs(pairs, name):
    X, Y = pairs
    t = make(name, n_pairs=30, seed=7).fit(X, Y)
    drawn = np.sort(np.random.default_rng(7).choice(100, size=30, replace=False))
    np.testing.assert_array_equal(t.pair_indices_, drawn)
    assert t.n_pairs_fit_ == 30
    again = make(name, n_pairs=30, seed=7).fit(X, Y)
    np.testing.assert_array_equal(t.transform(X), again.transform(X))
    other = make(name, n_pairs=30, seed=8).fit(X, Y)
    assert not np.array_equal(other.pair_indices_, drawn)
    if name == "relative":
        # Anchors are drawn among the pairs in use, after the pairs, from the same stream.
        assert set(t.anchor_indices_) <= set(drawn)
    else:
        # The fit sees the drawn rows and nothing else.
        subset = make(name, seed=7).fit(X[drawn], Y[drawn])
        np.testing.assert_allclose(t.transform(X), subset.transform(X), atol=1e-12)


def test_n_pairs_draws_the_sample_efficiency_curve():
    rng = np.random.default_rng(12)
    X, W = rng.normal(size=(1000, 5)), rng.normal(size=(5, 2))
    Y = X @ W + rng.normal(size=(1000, 2))
    fresh = rng.normal(size=(500, 5))
    scores = []
    for k in (10, 30, 100, 300, 1000):
        t = AffineTranslator(n_pairs=k).fit(X, Y)
        assert t.n_pairs_fit_ == k
        scores.append(t.score(fresh, fresh @ W))
    assert scores[0] < scores[-1] and scores[-1] > 0.99
    np.testing.assert_array_equal(t.pair_indices_, np.arange(1000))
    assert AffineTranslator().fit(X, Y).n_pairs_fit_ == 1000


# =============================================================================== checks
@pytest.mark.parametrize("name", TRANSLATORS)
def test_fit_refuses_bad_pairs(pairs, name):
    X, Y = pairs
    t = make(name)
    with pytest.raises(ValueError, match="got 100 rows in Z_src and 99 in Z_dst"):
        t.fit(X, Y[:99])
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="Z_src contains NaN"):
        t.fit(bad, Y)
    bad = Y.copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="Z_dst contains infinity"):
        t.fit(X, bad)
    with pytest.raises(ValueError, match=r"Z_src must be a 2-D array \[N, d\], got 1 dim"):
        t.fit(X[:, 0], Y)
    with pytest.raises(ValueError, match=r"Z_dst must be a 2-D array \[N, d\], got 3 dim"):
        t.fit(X, Y[:, :, None])
    with pytest.raises(ValueError, match="n_pairs=101 exceeds the 100 pairs given to fit"):
        make(name, n_pairs=101).fit(X, Y)
    for n_pairs in (0, 2.0, True):
        with pytest.raises(ValueError, match="n_pairs must be a positive int"):
            make(name, n_pairs=n_pairs).fit(X, Y)
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        make(name, seed=-1).fit(X, Y)


@pytest.mark.parametrize("name", TRANSLATORS)
def test_transform_refuses_bad_input(pairs, name):
    X, Y = pairs
    with pytest.raises(NotFittedError, match=f"This {type(make(name)).__name__} instance is not"):
        make(name).transform(X)
    t = make(name).fit(X, Y)
    cls = type(t).__name__
    with pytest.raises(ValueError, match=f"Z has 3 columns, but this {cls} was fitted on 4"):
        t.transform(X[:, :3])
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="Z contains NaN"):
        t.transform(bad)
    with pytest.raises(ValueError, match="Z_dst has 2 columns, but this .* was fitted on 3"):
        t.score(X, Y[:, :2])
    with pytest.raises(ValueError, match="got 100 rows in Z_src and 50 in Z_dst"):
        t.score(X, Y[:50])


def test_too_few_pairs_are_refused():
    rng = np.random.default_rng(13)
    X, Y = rng.normal(size=(5, 5)), rng.normal(size=(5, 2))
    with pytest.raises(ValueError, match="LinearTranslator needs at least 5 pairs .* got 4"):
        LinearTranslator().fit(X[:4], Y[:4])
    LinearTranslator().fit(X, Y)
    with pytest.raises(ValueError, match="AffineTranslator needs at least 6 pairs .* got 5"):
        AffineTranslator().fit(X, Y)
    with pytest.raises(ValueError, match="AffineTranslator needs at least 6 pairs .* got 3"):
        AffineTranslator(n_pairs=3).fit(X, Y)
    assert np.isfinite(AffineTranslator(alpha=1.0).fit(X[:2], Y[:2]).coef_).all()
    for cls in (ProcrustesTranslator, MLPTranslator):
        with pytest.raises(ValueError, match=f"{cls.__name__} needs at least 2 pairs"):
            cls().fit(X[:1], Y[:1])
    with pytest.raises(ValueError, match="n_anchors=300 exceeds the 5 pairs in use"):
        RelativeTranslator().fit(X, Y)
    with pytest.raises(ValueError, match="n_anchors=4 exceeds the 3 pairs in use"):
        RelativeTranslator(n_anchors=4, n_pairs=3).fit(X, Y)
    everyone = RelativeTranslator(n_anchors=None).fit(X, Y)
    np.testing.assert_array_equal(everyone.anchor_indices_, np.arange(5))


@pytest.mark.parametrize(
    ("translator", "message"),
    [
        (AffineTranslator(alpha=-1.0), r"alpha must be in \[0, inf\)"),
        (AffineTranslator(alpha=float("nan")), "alpha must be in"),
        (RelativeTranslator(n_anchors=0), "n_anchors must be a positive int"),
        (RelativeTranslator(n_anchors=5, center="yes"), "center must be True or False"),
        (RelativeTranslator(n_anchors=5, alpha=-1e-3), "alpha must be in"),
        (MLPTranslator(hidden_units=0), "hidden_units must be a positive int"),
        (MLPTranslator(hidden_layers=3), "hidden_layers must be at most 2"),
        (MLPTranslator(max_epochs=1.5), "max_epochs must be a positive int"),
        (MLPTranslator(learning_rate=0.0), "learning_rate must be positive"),
        (MLPTranslator(weight_decay=-1), "weight_decay must be in"),
        (MLPTranslator(batch_size=0), "batch_size must be a positive int"),
        (MLPTranslator(tol="small"), "tol must be a number"),
    ],
)
def test_bad_parameters_are_refused_at_fit(pairs, translator, message):
    with pytest.raises(ValueError, match=message):
        translator.fit(*pairs)
    with pytest.raises(NotFittedError):
        translator.transform(pairs[0])


# =============================================================================== transforms
def test_centering_round_trips(pairs):
    X = pairs[0]
    c = Centering().fit(X)
    np.testing.assert_allclose(c.mean_, X.mean(0))
    np.testing.assert_allclose(c.transform(X).mean(0), 0.0, atol=1e-12)
    np.testing.assert_allclose(c.inverse_transform(c.transform(X)), X, atol=1e-12)


def test_standard_scaling_gives_unit_mean_squared_norm(pairs):
    X = 4.0 * pairs[0] + 2.0
    s = StandardScaling().fit(X)
    out = s.transform(X)
    np.testing.assert_allclose(out, rms_scaled(X), atol=1e-12)
    assert (out**2).sum(1).mean() == pytest.approx(1.0)
    np.testing.assert_allclose(s.inverse_transform(out), X, atol=1e-12)


def test_standard_scaling_of_constant_columns_stays_finite():
    Z = np.column_stack([np.arange(4.0), np.full(4, 3.0)])
    out = StandardScaling().fit(Z).transform(Z)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out[:, 1], 0.0)
    flat = StandardScaling().fit(np.full((4, 2), 3.0))
    assert flat.scale_ == 1.0
    np.testing.assert_array_equal(flat.transform(np.full((4, 2), 3.0)), 0.0)
    # Procrustes on a source without spread predicts the target mean, not NaN.
    t = ProcrustesTranslator().fit(np.full((4, 2), 3.0), Z)
    np.testing.assert_allclose(t.transform(np.full((2, 2), 3.0)), np.tile(Z.mean(0), (2, 1)))


def test_zero_padding_pads_and_unpads(pairs):
    X = pairs[0]
    p = ZeroPadding(6).fit(X)
    padded = p.transform(X)
    np.testing.assert_array_equal(padded, np.hstack([X, np.zeros((100, 2))]))
    np.testing.assert_array_equal(p.inverse_transform(padded + 1.0), X + 1.0)
    np.testing.assert_array_equal(ZeroPadding().fit(X).transform(X), X)
    with pytest.raises(ValueError, match="width=3 is smaller than the 4 columns of Z"):
        ZeroPadding(3).fit(X)
    with pytest.raises(ValueError, match="Z has 4 columns, but this ZeroPadding was fitted on 6"):
        p.inverse_transform(X)
    with pytest.raises(ValueError, match="Z has 5 columns, but this ZeroPadding was fitted on 4"):
        p.transform(padded[:, :5])


# ----------------------------------------------------------------- the composable translator
def _pairs(n=120, d_src=5, d_dst=3, seed=0):
    rng = np.random.default_rng(seed)
    Z_src = rng.normal(size=(n, d_src))
    Z_dst = Z_src @ rng.normal(size=(d_src, d_dst)) + 0.1 * rng.normal(size=(n, d_dst)) + 2.0
    return Z_src, Z_dst


@pytest.mark.parametrize("name", ["linear", "affine", "procrustes", "relative"])
@pytest.mark.parametrize("dims", [(5, 3), (3, 5), (4, 4)])
def test_each_preset_is_the_named_translator(name, dims):
    # A second formulation of the same map: composed from parts, against the monolithic class.
    from pyro_latent.translate.translators import translator_preset

    Z_src, Z_dst = _pairs(n=400, d_src=dims[0], d_dst=dims[1])  # relative: 300 anchors
    composed = translator_preset(name).fit(Z_src[:340], Z_dst[:340])
    direct = make_translator(name).fit(Z_src[:340], Z_dst[:340])
    np.testing.assert_allclose(
        composed.transform(Z_src[340:]), direct.transform(Z_src[340:]), rtol=1e-9, atol=1e-10
    )
    assert composed.score(Z_src[340:], Z_dst[340:]) == pytest.approx(
        direct.score(Z_src[340:], Z_dst[340:])
    )


def test_nested_parameters_reach_clone_and_grid_search():
    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV

    from pyro_latent.translate.translators import (
        AffineTranslator,
        StandardScaling,
        Translator,
    )

    t = Translator(AffineTranslator(alpha=0.5), src_transform=StandardScaling())
    params = t.get_params(deep=True)
    assert params["aligner__alpha"] == 0.5 and "src_transform" in params
    copy = clone(t).set_params(aligner__alpha=2.0)
    assert copy.aligner.alpha == 2.0 and t.aligner.alpha == 0.5
    Z_src, Z_dst = _pairs()
    search = GridSearchCV(t, {"aligner__alpha": [0.0, 10.0, 1000.0]}, cv=3).fit(Z_src, Z_dst)
    assert search.best_params_["aligner__alpha"] in (0.0, 10.0)  # heavy ridge underfits
    fitted = Translator(AffineTranslator(), n_pairs=30, seed=1).fit(Z_src, Z_dst)
    assert fitted.n_pairs_fit_ == 30 and fitted.aligner_.n_pairs_fit_ == 30
    assert t.aligner.__dict__.keys() == {"alpha", "n_pairs", "seed"}  # never fitted


def test_the_composed_translator_refuses_bad_parts():
    from pyro_latent.translate.translators import OrthogonalAligner, Translator

    Z_src, Z_dst = _pairs()
    with pytest.raises(TypeError, match="aligner must be a paired translator"):
        Translator("affine").fit(Z_src, Z_dst)
    with pytest.raises(TypeError, match="src_transform must be a transform"):
        Translator(src_transform="standard").fit(Z_src, Z_dst)
    with pytest.raises(ValueError, match="dim_matcher"):
        Translator(OrthogonalAligner()).fit(Z_src, Z_dst)  # 5 against 3 columns
    with pytest.raises(NotFittedError):
        Translator().transform(Z_src)
