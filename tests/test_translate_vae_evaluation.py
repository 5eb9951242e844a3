"""Scoring translations between VAEs and transferring identifiers, on tiny untrained VAEs and
synthetic codes whose right answers are known."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import LinearRegression

from pyro_latent.study import vae_translation as ev
from pyro_latent.translate.latent_mapping import posterior_mapping
from pyro_latent.vae import VAE, VAEConfig


def _vae(latent_dim: int, seed: int) -> VAE:
    torch.manual_seed(seed)
    return VAE(VAEConfig(f"t{seed}", latent_dim=latent_dim, hidden=(16,))).eval()


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(0)
    images = torch.rand(160, 784, generator=g) * (torch.rand(160, 784, generator=g) > 0.6)
    labels = np.arange(160) % 10
    return images[:120], labels[:120], images[120:], labels[120:]


@pytest.fixture(scope="module")
def codes(data):
    fit, _, test, _ = data
    src, dst = _vae(3, 1), _vae(2, 2)
    return src, dst, ev.pair_codes(src, fit, test), ev.pair_codes(dst, fit, test)


def test_a_perfect_translation_scores_perfectly(data, codes):
    _, y_fit, test, y_test = data
    _, dst, _, c2 = codes
    probe = ev.class_probe().fit(c2["fit"], y_fit)
    scores = ev.translation_scores(
        c2["test"], c2["test"], dst, test, y_test, probe, own_reconstruction=c2["recon"]
    )
    assert scores["r2"] == pytest.approx(1.0) and scores["mse"] == pytest.approx(0.0)
    assert scores["r2_weighted"] == pytest.approx(1.0)
    assert scores["stitched_mse_to_own"] == pytest.approx(0.0, abs=1e-12)
    assert scores["mrr"] == pytest.approx(1.0) and scores["jaccard"] == pytest.approx(1.0)
    own = (c2["recon"].double() - test.double()).square().mean()
    assert scores["stitched_mse"] == pytest.approx(float(own))
    assert scores["probe_accuracy"] == pytest.approx(np.mean(probe.predict(c2["test"]) == y_test))
    assert scores["concepts"]["n_shoes"] == int(np.isin(y_test, ev.SHOE_CLASSES).sum())
    assert scores["concepts"]["height_shift_vs_own"] == pytest.approx(0.0)


def test_translating_a_vae_to_itself_is_exact_for_the_paired_translators(data, codes):
    _, y_fit, test, y_test = data
    src, _, c1, _ = codes
    result = ev.evaluate_translators(src, src, c1, c1, y_fit, y_test, test, names=("affine",))
    assert result["scores"]["affine"]["r2"] == pytest.approx(1.0, abs=1e-9)
    assert result["scores"]["affine"]["stitched_mse_to_own"] == pytest.approx(0.0, abs=1e-10)
    assert set(result["scores"]) == {"affine", "formula"}
    # the formula decodes then re-encodes: not the identity for an untrained VAE
    assert result["scores"]["formula"]["r2"] < 0.99
    assert result["baseline"]["own_mse"] == pytest.approx(
        result["scores"]["affine"]["stitched_mse"]
    )


def test_scores_refuse_codes_of_another_shape(data, codes):
    _, y_fit, test, y_test = data
    _, dst, _, c2 = codes
    probe = ev.class_probe().fit(c2["fit"], y_fit)
    with pytest.raises(ValueError, match="same N items"):
        ev.translation_scores(
            c2["test"][:10], c2["test"], dst, test, y_test, probe, own_reconstruction=c2["recon"]
        )


def test_sample_efficiency_marks_counts_below_what_least_squares_needs(codes):
    _, _, c1, c2 = codes
    curves = ev.sample_efficiency(
        ["linear", "procrustes"], c1["fit"], c2["fit"], c1["test"], c2["test"], [2, 3, 50]
    )
    assert curves["linear"][2] is None and curves["linear"][3] is not None
    assert all(v is not None for v in curves["procrustes"].values())


def test_samples_to_match():
    curve = {10: 0.2, 30: 0.5, 100: 0.9}
    assert ev.samples_to_match(curve, 0.5) == 30
    assert ev.samples_to_match(curve, 0.1) == 10
    assert ev.samples_to_match(curve, 0.95) is None


def test_concept_transfer_scores_against_a_known_linear_concept():
    rng = np.random.default_rng(0)
    z_pool, z_test = rng.normal(size=(400, 3)), rng.normal(size=(200, 3))
    w = np.array([1.0, -2.0, 0.5])
    y_pool, y_test = z_pool @ w, z_test @ w
    perfect, constant = y_test, np.full(200, y_test.mean())
    out = ev.concept_transfer_scores(
        LinearRegression(), ev.r2, {"perfect": perfect, "constant": constant},
        z_pool, y_pool, y_test, z_test, [2, 5, 50],
    )  # fmt: skip
    assert out["transfer"] == {"perfect": 1.0, "constant": pytest.approx(0.0)}
    assert out["direct"][50] == pytest.approx(1.0)  # noise-free: 50 samples recover w
    # the smallest n whose direct score reaches the transfer's: 0 for the constant predictor
    assert out["samples_to_match"]["constant"] == next(
        n for n in (2, 5, 50) if out["direct"][n] >= out["transfer"]["constant"]
    )
    assert out["direct"][2] < out["direct"][50]
    with pytest.raises(ValueError, match="exceeds the labelled pool"):
        ev.concept_transfer_scores(
            LinearRegression(), ev.r2, {}, z_pool, y_pool, y_test, z_test, [401]
        )


def test_transfer_concepts_on_tiny_vaes(data, codes):
    fit, y_fit, test, y_test = data
    src, dst, c1, c2 = codes
    heights = {k: np.where(np.isin(y, ev.SHOE_CLASSES), 10.0 + y, np.nan)
               for k, y in (("fit", y_fit), ("test", y_test))}  # fmt: skip
    mapping = posterior_mapping(src, dst, torch.as_tensor(c1["test"][:20]), 3, n_proposals=4)
    affine = ev.make_translator("affine").fit(c1["fit"], c2["fit"])
    labels = {"fit": y_fit, "test": y_test}
    out = ev.transfer_concepts(mapping, affine, c1, c2, labels, heights, [10, 20])
    assert out["height"]["n_test"] == int(np.isin(y_test[:20], ev.SHOE_CLASSES).sum())
    assert out["class"]["n_test"] == 20
    assert set(out["class"]["transfer"]) == {
        "formula", "translator (affine)", "posterior mapping (guide)",
        "posterior mapping (posterior)", "posterior mapping (image means)",
    }  # fmt: skip
    # the formula's height score, computed by hand
    rows, keep = ~np.isnan(heights["fit"]), ~np.isnan(heights["test"][:20])
    f2 = ev.height_regressor().fit(c2["fit"][rows], heights["fit"][rows])
    expected = ev.r2(heights["test"][:20][keep], f2.predict(mapping.formula.double().numpy()[keep]))
    assert out["height"]["transfer"]["formula"] == pytest.approx(expected)
    with pytest.raises(ValueError, match="first N test codes"):
        other = posterior_mapping(src, dst, torch.as_tensor(c1["test"][1:21]), 2, n_proposals=0)
        ev.transfer_concepts(other, affine, c1, c2, labels, heights, [10])


def test_shoe_concepts_are_nan_for_empty_images():
    images = torch.zeros(2, 784)
    images[1, 100:110] = 1.0
    out = ev.shoe_concepts(images)
    assert np.isnan(out["height"][0]) and out["height"][1] == 1.0


def test_translation_summary_finds_the_best_translator_and_the_asymmetry():
    def record(src, dst, r2, mse):
        scores = {
            n: {"r2_weighted": r2, "stitched_mse": m}
            for n, m in zip(("linear", "formula"), mse, strict=True)
        }
        transfer = {c: {"transfer": {"formula": 0.5}} for c in ("height", "class")}
        return {"src": src, "dst": dst, "pair": f"{src} → {dst}", "scores": scores,
                "src_preset": src.split("-")[0], "dst_preset": dst.split("-")[0],
                "baseline": {"own_mse": 0.05}, "cka": 0.8, "transfer": transfer}  # fmt: skip

    records = [record("small-0", "large-0", 0.9, (0.06, 0.09)),
               record("large-0", "small-0", 0.7, (0.07, 0.08)),
               record("small-0", "small-1", 0.8, (0.055, 0.09)),
               record("small-1", "small-0", 0.8, (0.055, 0.09))]  # fmt: skip
    summary = ev.translation_summary(records, {"small-0": 11, "large-0": 6, "small-1": 11})
    assert summary["pairs"]["small-0 → large-0"]["best"] == "linear"
    assert summary["pairs"]["small-0 → large-0"]["best_over_own"] == pytest.approx(1.2)
    assert summary["pairs"]["small-0 → small-1"]["linear_over_own"] == pytest.approx(1.1)
    (asym,) = summary["asymmetry"]  # the same-preset pairs have no better or worse side
    assert asym["easier"] == "small-0 → large-0"
    assert (asym["easier_into"], asym["easier_from"]) == ("large-0", "small-0")
    assert asym["into_has"] == "fewer"
    assert asym["active_units"] == {"small-0": 11, "large-0": 6}
    flipped = ev.translation_summary(records[:2], {"small-0": 6, "large-0": 11})
    assert flipped["asymmetry"][0]["into_has"] == "more"
    unknown = ev.translation_summary(records[:2], {"small-0": 6})
    assert unknown["asymmetry"][0]["into_has"] is None
    # constant CKA over four pairs: no rank correlation to report
    assert summary["cka_vs_transfer"]["spearman"]["height"] is None
    assert unknown["cka_vs_transfer"]["spearman"]["height"] is None  # too few pairs
