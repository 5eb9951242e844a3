"""MIG, DCI and SAP: exact answers against independent computations, known answers on
synthetic codes (axis-aligned, rotated, pure noise), their invariances, and bad inputs."""

import math

import numpy as np
import pytest
import torch

from pyro_latent.analysis import dci, mutual_information_gap, sap_score
from pyro_latent.analysis.disentanglement import dci_from_importance

N_ITEMS = 3000
N_TRAIN = 2000
LEVELS = (5, 6, 7, 8, 5)
N_NOISE = 3  # pure-noise dimensions added to the axis-aligned and rotated codes


# ------------------------------------------------------------------------------- fixtures
def make_factors():
    rng = np.random.default_rng(20240611)
    return np.stack([rng.integers(0, n, N_ITEMS) for n in LEVELS], axis=1)


def make_codes(factors):
    """``{"axis", "rotated", "noise"}`` codes of the factors, each ``[N, 8]``."""
    rng = np.random.default_rng(7)
    k = factors.shape[1]
    # Axis-aligned: each factor in its own dimension, scaled (either sign) and shifted, plus
    # pure-noise dimensions, a tiny jitter and the columns shuffled.
    scales = np.array([2.5, -0.7, 4.0, -3.0, 1.3])
    shifts = np.array([1.0, -5.0, 0.3, 10.0, -2.0])
    axis = factors * scales + shifts + 1e-3 * rng.standard_normal((N_ITEMS, k))
    axis = np.concatenate([axis, rng.standard_normal((N_ITEMS, N_NOISE))], axis=1)
    axis = axis[:, rng.permutation(axis.shape[1])]
    # Rotated: standardised factors 0, 1 mixed by 45°, and 2, 3; factor 4 left alone.
    s = (factors - factors.mean(0)) / factors.std(0)
    c = 1 / math.sqrt(2)
    mixed = np.stack(
        [c * (s[:, 0] + s[:, 1]), c * (s[:, 0] - s[:, 1])]
        + [c * (s[:, 2] + s[:, 3]), c * (s[:, 2] - s[:, 3]), s[:, 4]],
        axis=1,
    )
    rotated = mixed + 1e-3 * rng.standard_normal(mixed.shape)
    rotated = np.concatenate([rotated, rng.standard_normal((N_ITEMS, N_NOISE))], axis=1)
    noise = rng.standard_normal((N_ITEMS, k + N_NOISE))
    return {"axis": axis, "rotated": rotated, "noise": noise}


@pytest.fixture(scope="module")
def factors():
    return make_factors()


@pytest.fixture(scope="module")
def codes(factors):
    return make_codes(factors)


def split(z, v):
    return z[:N_TRAIN], v[:N_TRAIN], z[N_TRAIN:], v[N_TRAIN:]


@pytest.fixture(scope="module")
def dci_results(codes, factors):
    return {name: dci(*split(z, factors)) for name, z in codes.items()}


# -------------------------------------------------------------------- independent references
def plug_in_mi(x_labels, y_labels):
    """Plug-in mutual information (nats) from the joint counts of two label vectors."""
    joint = np.zeros((x_labels.max() + 1, y_labels.max() + 1))
    np.add.at(joint, (x_labels, y_labels), 1.0)
    p = joint / joint.sum()
    px, py = p.sum(1, keepdims=True), p.sum(0, keepdims=True)
    nz = p > 0
    return float((p[nz] * np.log(p[nz] / (px @ py)[nz])).sum())


def plug_in_entropy(labels):
    p = np.bincount(labels) / len(labels)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def equal_width_bins(column, bins):
    low, high = column.min(), column.max()
    return np.minimum(((column - low) / (high - low) * bins).astype(int), bins - 1)


# -------------------------------------------------------------------------------------- MIG
def test_mig_matches_brute_force_counts_on_known_bins():
    # Each code value is (its bin) + a fraction in [0.1, 0.9], with 0 and 20 present, so that
    # the 20 equal-width bins over [0, 20] are the integers and the bin of z is floor(z).
    rng = np.random.default_rng(1)
    n = 1500
    v = np.stack([rng.integers(0, 4, n), rng.integers(0, 7, n)], axis=1)
    b = np.stack(
        [
            (3 * v[:, 0] + rng.integers(0, 3, n)) % 20,
            (v[:, 1] * v[:, 0]) % 20,
            rng.integers(0, 20, n),
        ],
        axis=1,
    )
    z = b + rng.uniform(0.1, 0.9, b.shape)
    z[0], z[1] = 0.0, 20.0
    b[0], b[1] = 0, 19
    out = mutual_information_gap(z, v, bins=20)
    expected = np.array([[plug_in_mi(b[:, i], v[:, k]) for k in range(2)] for i in range(3)])
    entropy = np.array([plug_in_entropy(v[:, k]) for k in range(2)])
    np.testing.assert_allclose(out["mutual_information"], expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(out["entropy"], entropy, rtol=1e-12)
    ordered = -np.sort(-expected, axis=0)
    gaps = (ordered[0] - ordered[1]) / entropy
    np.testing.assert_allclose(out["per_factor"], gaps, rtol=1e-10)
    assert out["mig"] == pytest.approx(gaps.mean(), rel=1e-10)
    assert out["top_dimensions"] == list(np.argmax(expected, axis=0))


@pytest.mark.parametrize("bins", [2, 7, 20])
def test_mig_matches_brute_force_counts_on_gaussian_codes(bins):
    rng = np.random.default_rng(bins)
    v = rng.integers(0, 5, (800, 3))
    z = np.concatenate([v[:, :2] + rng.standard_normal((800, 2)), rng.standard_normal((800, 2))], 1)
    out = mutual_information_gap(z, v, bins=bins)
    expected = [
        [plug_in_mi(equal_width_bins(z[:, i], bins), v[:, k]) for k in range(3)] for i in range(4)
    ]
    np.testing.assert_allclose(out["mutual_information"], expected, rtol=1e-10, atol=1e-12)


def test_mig_with_one_dimension_subtracts_nothing(factors, codes):
    z = codes["axis"][:, :1]
    out = mutual_information_gap(z, factors)
    np.testing.assert_allclose(out["per_factor"], out["mutual_information"][0] / out["entropy"])


def test_mig_known_answers(codes, factors):
    axis = mutual_information_gap(codes["axis"], factors)
    rotated = mutual_information_gap(codes["rotated"], factors)
    noise = mutual_information_gap(codes["noise"], factors)
    assert axis["mig"] > 0.98  # measured 0.990: the gap falls short only by noise's MI bias
    assert min(axis["per_factor"]) > 0.98
    assert rotated["mig"] < 0.25  # measured 0.204: factor 4 alone keeps its gap
    assert max(rotated["per_factor"][:4]) < 0.05
    assert noise["mig"] < 0.01  # measured 0.0006


def test_mig_is_unchanged_by_positive_scaling_shifting_and_permuting(codes, factors):
    z = codes["axis"]
    base = mutual_information_gap(z, factors)
    rng = np.random.default_rng(3)
    scaled = z * rng.uniform(0.1, 10.0, z.shape[1]) + rng.uniform(-5, 5, z.shape[1])
    np.testing.assert_allclose(
        mutual_information_gap(scaled, factors)["mutual_information"],
        base["mutual_information"],
        rtol=1e-12,
        atol=1e-14,
    )
    order = rng.permutation(z.shape[1])
    permuted = mutual_information_gap(z[:, order], factors)
    np.testing.assert_allclose(
        permuted["mutual_information"], base["mutual_information"][order], rtol=1e-12
    )
    assert permuted["mig"] == pytest.approx(base["mig"], rel=1e-12)


def test_mig_accepts_tensors_and_factor_values_of_any_kind(codes, factors):
    base = mutual_information_gap(codes["rotated"], factors)
    as_tensors = mutual_information_gap(
        torch.from_numpy(codes["rotated"]).float(), torch.from_numpy(10.0 * factors - 3.5)
    )
    np.testing.assert_allclose(as_tensors["entropy"], base["entropy"], rtol=1e-12)
    assert as_tensors["mig"] == pytest.approx(base["mig"], abs=1e-3)


# -------------------------------------------------------------------------------------- DCI
def test_dci_from_importance_identity_and_one_hot_rows():
    out = dci_from_importance(np.eye(4))
    assert out["disentanglement"] == pytest.approx(1.0)
    assert out["completeness"] == pytest.approx(1.0)
    # More dimensions than factors, each used for one factor only (two for factor 0).
    one_hot = np.array([[0.0, 2.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.5], [0.0, 0.0, 0.0]])
    out = dci_from_importance(one_hot)
    assert out["disentanglement"] == pytest.approx(1.0)
    np.testing.assert_allclose(out["per_factor_completeness"], [1.0, 1.0, 1.0])


def test_dci_from_importance_uniform_is_zero():
    out = dci_from_importance(np.full((4, 6), 0.3))
    assert out["disentanglement"] == pytest.approx(0.0, abs=1e-12)
    assert out["completeness"] == pytest.approx(0.0, abs=1e-12)


def test_dci_from_importance_worked_example():
    # R = [[3, 1], [0, 2]]: rows P = (3/4, 1/4) and (0, 1), columns (1, 0) and (1/3, 2/3).
    out = dci_from_importance([[3.0, 1.0], [0.0, 2.0]])
    h_row0 = -(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25))  # 0.811278
    d = (4 / 6) * (1 - h_row0) + (2 / 6) * 1.0
    h_col1 = -(1 / 3 * math.log2(1 / 3) + 2 / 3 * math.log2(2 / 3))  # 0.918296
    c = (1.0 + (1 - h_col1)) / 2
    np.testing.assert_allclose(out["per_code_disentanglement"], [1 - h_row0, 1.0])
    np.testing.assert_allclose(out["code_weights"], [4 / 6, 2 / 6])
    np.testing.assert_allclose(out["per_factor_completeness"], [1.0, 1 - h_col1])
    assert out["disentanglement"] == pytest.approx(d) == pytest.approx(0.459148, abs=1e-6)
    assert out["completeness"] == pytest.approx(c) == pytest.approx(0.540852, abs=1e-6)


def test_dci_from_importance_three_by_three_by_hand():
    R = np.array([[1.0, 1.0, 2.0], [0.0, 3.0, 0.0], [1.0, 0.0, 0.0]])
    out = dci_from_importance(R)
    # Row 0: P = (1/4, 1/4, 1/2), H_3 = 1.5 log 2 / log 3; rows 1 and 2 are one-hot.
    d0 = 1 - 1.5 * math.log(2) / math.log(3)
    assert out["disentanglement"] == pytest.approx((4 * d0 + 3 + 1) / 8)
    # Columns: (1/2, 0, 1/2), (1/4, 3/4, 0), (1, 0, 0).
    c0 = 1 - math.log(2) / math.log(3)
    c1 = 1 - (-(0.25 * math.log(0.25) + 0.75 * math.log(0.75)) / math.log(3))
    assert out["completeness"] == pytest.approx((c0 + c1 + 1) / 3)


def test_dci_from_importance_zero_rows_and_columns_give_no_nan():
    R = np.array([[3.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    out = dci_from_importance(R)
    for key in ("per_code_disentanglement", "per_factor_completeness", "code_weights"):
        assert np.isfinite(out[key]).all()
    assert out["code_weights"][1] == 0.0
    assert out["per_code_disentanglement"][1] == 0.0
    assert out["per_factor_completeness"][2] == 0.0  # no dimension matters to factor 2
    # An unused dimension changes nothing about disentanglement.
    without = dci_from_importance(R[[0, 2]])
    assert out["disentanglement"] == pytest.approx(without["disentanglement"])
    # K = 1 and D = 1: the entropy of a distribution on one point is 0.
    assert dci_from_importance([[0.2], [0.0]])["disentanglement"] == 1.0
    assert dci_from_importance([[0.2, 0.0]])["completeness"] == 0.5


@pytest.mark.parametrize(
    "importance, message",
    [
        ([[1.0, -0.1]], "non-negative"),
        (np.zeros((3, 2)), "all zero"),
        ([[1.0, np.nan]], "NaN"),
        ([1.0, 2.0], "2-D"),
    ],
)
def test_dci_from_importance_bad_inputs(importance, message):
    with pytest.raises(ValueError, match=message):
        dci_from_importance(importance)


def test_dci_known_answers(dci_results):
    axis, rotated, noise = dci_results["axis"], dci_results["rotated"], dci_results["noise"]
    # measured: axis D = C = I = 1.000; rotated D = 0.656, C = 0.735, I = 1.000;
    # noise D = 0.004, C = 0.003, I = -0.027.
    assert axis["disentanglement"] > 0.98 and axis["completeness"] > 0.98
    assert axis["informativeness"] > 0.99
    assert min(axis["per_factor_informativeness"]) > 0.99
    assert rotated["disentanglement"] < 0.75 and rotated["completeness"] < 0.85
    assert rotated["disentanglement"] < axis["disentanglement"] - 0.25
    assert rotated["informativeness"] > 0.99  # a rotation loses no information
    assert noise["disentanglement"] < 0.05 and noise["completeness"] < 0.05
    assert abs(noise["informativeness"]) < 0.1
    for result in dci_results.values():
        R = result["importance"]
        assert R.shape == (len(LEVELS) + N_NOISE, len(LEVELS)) and (R >= 0).all()
        np.testing.assert_allclose(R.sum(axis=0), 1.0)  # each forest's importances sum to 1
        again = dci_from_importance(R)
        assert again["disentanglement"] == result["disentanglement"]


def test_dci_held_out_r2_matches_its_definition(codes, factors):
    from sklearn.ensemble import RandomForestRegressor

    z_train, v_train, z_test, v_test = split(codes["rotated"], factors)
    out = dci(z_train, v_train[:, :2], z_test, v_test[:, :2], seed=4)
    for k in range(2):
        forest = RandomForestRegressor(
            n_estimators=25,
            max_features=None,
            max_samples=0.5,
            min_samples_leaf=10,
            random_state=4,
            n_jobs=1,
        ).fit(z_train, v_train[:, k])
        assert out["per_factor_informativeness"][k] == pytest.approx(
            forest.score(z_test, v_test[:, k]), rel=1e-10
        )
        np.testing.assert_allclose(out["importance"][:, k], forest.feature_importances_)


def test_dci_discrete_factors_score_accuracy(codes, factors):
    flags = [True] * len(LEVELS)
    axis = dci(*split(codes["axis"], factors), discrete=flags)
    noise = dci(*split(codes["noise"], factors), discrete=flags)
    assert axis["disentanglement"] > 0.98 and axis["completeness"] > 0.98
    assert min(axis["per_factor_informativeness"]) > 0.99
    # Pure noise: the accuracy of guessing, about 1 / levels (measured within 0.023 of it).
    chance = np.array([1 / n for n in LEVELS])
    assert np.abs(noise["per_factor_informativeness"] - chance).max() < 0.06
    assert noise["disentanglement"] < 0.05


def test_dci_is_deterministic_and_unchanged_by_permuting_dimensions(codes, factors, dci_results):
    z_train, v_train, z_test, v_test = split(codes["rotated"], factors)
    base = dci_results["rotated"]
    again = dci(z_train, v_train, z_test, v_test)
    np.testing.assert_array_equal(again["importance"], base["importance"])
    order = np.random.default_rng(5).permutation(z_train.shape[1])
    permuted = dci(z_train[:, order], v_train, z_test[:, order], v_test)
    # Every split sees every dimension, so the forests are the same up to the column order and
    # to which of two exactly tied splits (frequent for a factor with few values) comes first:
    # measured differences 0.0013 in R and under 1e-4 in the scores.
    np.testing.assert_allclose(permuted["importance"], base["importance"][order], atol=0.01)
    for key in ("disentanglement", "completeness", "informativeness"):
        assert permuted[key] == pytest.approx(base[key], abs=2e-3)
    axis = split(codes["axis"], factors)
    exact = dci(axis[0][:, order], axis[1], axis[2][:, order], axis[3])
    np.testing.assert_array_equal(exact["importance"], dci_results["axis"]["importance"][order])
    other_seed = dci(z_train, v_train, z_test, v_test, seed=1)
    assert other_seed["disentanglement"] == pytest.approx(base["disentanglement"], abs=0.02)


# -------------------------------------------------------------------------------------- SAP
def test_sap_continuous_scores_are_squared_correlations(codes, factors):
    z_train, v_train, z_test, v_test = split(codes["rotated"], factors)
    out = sap_score(z_train, v_train, z_test, v_test)
    expected = np.array(
        [
            [np.corrcoef(z_train[:, i], v_train[:, k])[0, 1] ** 2 for k in range(len(LEVELS))]
            for i in range(z_train.shape[1])
        ]
    )
    np.testing.assert_allclose(out["scores"], expected, rtol=1e-10, atol=1e-15)
    ordered = -np.sort(-expected, axis=0)
    assert out["sap"] == pytest.approx((ordered[0] - ordered[1]).mean(), rel=1e-10)


def test_sap_known_answers(codes, factors):
    axis = sap_score(*split(codes["axis"], factors))
    rotated = sap_score(*split(codes["rotated"], factors))
    noise = sap_score(*split(codes["noise"], factors))
    assert axis["sap"] > 0.99  # measured 0.998
    assert rotated["sap"] < 0.3  # measured 0.230: factor 4 alone keeps its gap
    assert noise["sap"] < 0.01  # measured 0.0014


def test_sap_discrete_known_answers(codes, factors):
    flags = [True] * len(LEVELS)
    axis = sap_score(*split(codes["axis"], factors), discrete=flags)
    rotated = sap_score(*split(codes["rotated"], factors), discrete=flags)
    noise = sap_score(*split(codes["noise"], factors), discrete=flags)
    # The best dimension classifies perfectly; the second best is at about chance (1/levels).
    np.testing.assert_allclose(axis["scores"].max(axis=0), 1.0)
    assert axis["sap"] > 0.75  # measured 0.817
    assert rotated["sap"] < 0.25  # measured 0.157
    assert noise["sap"] < 0.05  # measured 0.004


def test_sap_constant_dimension_scores_zero(codes, factors):
    z = codes["axis"].copy()
    z[:, 2] = 0.1  # a constant whose mean is not exactly 0.1 in floating point
    for flags in (None, [True] * len(LEVELS)):
        out = sap_score(*split(z, factors), discrete=flags)
        assert np.isfinite(out["scores"]).all()
        np.testing.assert_array_equal(out["scores"][2], 0.0)


def test_sap_is_unchanged_by_permuting_dimensions_and_one_dimension_keeps_its_score(codes, factors):
    z_train, v_train, z_test, v_test = split(codes["axis"], factors)
    base = sap_score(z_train, v_train, z_test, v_test, discrete=[True, False, True, False, True])
    order = np.random.default_rng(6).permutation(z_train.shape[1])
    permuted = sap_score(
        z_train[:, order], v_train, z_test[:, order], v_test, discrete=[True, False] * 2 + [True]
    )
    np.testing.assert_allclose(permuted["scores"], base["scores"][order], rtol=1e-12)
    assert permuted["sap"] == pytest.approx(base["sap"], rel=1e-12)
    one = sap_score(z_train[:, :1], v_train, z_test[:, :1], v_test)
    np.testing.assert_allclose(one["per_factor"], one["scores"][0])


# ------------------------------------------------------------------------------- bad inputs
def _all_metrics(z, v, **kwargs):
    """Each metric on the same inputs (train = test for DCI and SAP)."""
    return [
        lambda: mutual_information_gap(z, v, **kwargs),
        lambda: dci(z, v, z, v, **kwargs),
        lambda: sap_score(z, v, z, v, **kwargs),
    ]


@pytest.mark.parametrize(
    "z, v, message",
    [
        (np.zeros(10), np.zeros((10, 2)), "codes.* must be 2-D"),
        (np.random.default_rng(0).standard_normal((10, 2)), np.arange(10.0), "factors.* 2-D"),
        (np.ones((10, 2)), np.ones((9, 2)), "same items"),
        (np.full((10, 2), np.nan), np.ones((10, 2)), "NaN"),
        (np.ones((1, 2)), np.ones((1, 2)), "at least 2 items"),
    ],
    ids=["codes-1d", "factors-1d", "n-mismatch", "nan", "one-item"],
)
def test_bad_arrays_raise_a_value_error_naming_the_problem(z, v, message):
    for call in _all_metrics(z, v):
        with pytest.raises(ValueError, match=message):
            call()


def test_a_constant_factor_is_refused_by_name():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((50, 3))
    v = np.stack([rng.integers(0, 3, 50), np.full(50, 2)], axis=1)
    for call in _all_metrics(z, v, factor_names=["shape", "colour"]):
        with pytest.raises(ValueError, match=r"factor 'colour' \(column 1\) takes a single value"):
            call()
    with pytest.raises(ValueError, match="factor 1 takes a single value.*entropy"):
        mutual_information_gap(z, v)


def test_bad_options_are_refused():
    rng = np.random.default_rng(0)
    z, v = rng.standard_normal((50, 3)), rng.integers(0, 3, (50, 2))
    with pytest.raises(ValueError, match="bins must be at least 2"):
        mutual_information_gap(z, v, bins=1)
    with pytest.raises(ValueError, match="bins must be an int"):
        mutual_information_gap(z, v, bins=2.0)
    with pytest.raises(ValueError, match="factor_names must name each of the 2 factors"):
        mutual_information_gap(z, v, factor_names=["a"])
    for metric in (dci, sap_score):
        with pytest.raises(ValueError, match="discrete must have one entry per factor"):
            metric(z, v, z, v, discrete=[True])
        with pytest.raises(ValueError, match=r"discrete\[1\] must be True or False"):
            metric(z, v, z, v, discrete=[True, 1])
        with pytest.raises(ValueError, match="discrete must be a sequence"):
            metric(z, v, z, v, discrete="yes")
        with pytest.raises(ValueError, match="codes_test must have the 3 dimensions"):
            metric(z, v, z[:, :2], v)
        with pytest.raises(ValueError, match="factors_test must have the 2 factors"):
            metric(z, v, z, v[:, :1])
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        dci(z, v, z, v, seed=-1)
    with pytest.raises(ValueError, match="single value in factors_test"):
        dci(z, v, z[:5], np.ones((5, 2)))
