"""The ``vae_translation`` figures draw from small synthetic records, including awkward ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pyro_latent.plotting.translation import (
    TRANSLATORS,
    plot_concept_transfer,
    plot_sample_efficiency,
    plot_stitched,
    plot_translated_2d,
    plot_translator_metrics,
)

CLASSES = [f"class {i}" for i in range(10)]
KS = (10, 30, 100, 300, 1000)


def make_record(src: str, dst: str, seed: int, *, bad: bool = False, json_keys: bool = False):
    rng = np.random.default_rng(seed)

    def key(k):
        return str(k) if json_keys else k

    scores = {
        name: {
            "mse": float(rng.uniform(0, 1)),
            "r2": float(rng.uniform(0, 1)),
            "r2_weighted": float(rng.uniform(0, 1)),
            "stitched_bce": float(rng.uniform(200, 300)),
            "stitched_mse": float(rng.uniform(0.01, 0.05)),
            "stitched_mse_to_own": float(rng.uniform(0.0, 0.02)),
            "jaccard": float(rng.uniform(0, 1)),
            "mrr": float(rng.uniform(0, 1)),
            "probe_accuracy": float(rng.uniform(0.3, 0.9)),
            "concepts": {"ignored": 1.0},
        }
        for name in TRANSLATORS
    }
    if bad:
        scores["relative"]["r2_weighted"] = -57.3
        scores["formula"]["r2_weighted"] = -4.0
    efficiency = {
        name: {key(k): float(1 - 1 / np.log10(k + 1) + rng.normal(0, 0.05)) for k in KS}
        for name in TRANSLATORS
        if name != "formula"  # the formula is not fitted, so it has no learning curve
    }
    if bad:
        efficiency["mlp"][key(10)] = -12.0
    transfer = {}
    for concept in ("height", "class"):
        direct = {key(n): float(rng.uniform(0.2, 0.9)) for n in (10, 100, 1000)}
        sd = {key(n): 0.05 for n in (10, 100, 1000)}
        if bad:
            direct[key(10)] = None
            sd[key(10)] = None
            sd[key(100)] = None
        transfer[concept] = {
            "transfer": {
                "formula": 0.6,
                "translator (affine)": 0.7,
                "posterior mapping (guide)": -3.0 if bad else 0.5,
                "posterior mapping (posterior)": None if bad else 0.55,
            },
            "direct": direct,
            "direct_sd": sd,
            "samples_to_match": {"formula": 100},
            "n_test": 500,
        }
    return {
        "pair": f"{src} → {dst}",
        "src": src,
        "dst": dst,
        "scores": scores,
        "baseline": {"own_mse": 0.012, "probe_accuracy": 0.85},
        "cka": 0.8,
        "cka_biased": 0.85,
        "sample_efficiency": efficiency,
        "transfer": transfer,
    }


@pytest.fixture
def records():
    return [
        make_record("small-0", "large-0", 0),
        make_record("large-0", "small-0", 1, bad=True),
        make_record("vae2d-a-0", "vae2d-b-0", 2, json_keys=True),
    ]


def assert_png(path):
    assert path.is_file()
    assert path.stat().st_size > 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_stitched(tmp_path):
    originals = torch.rand(10, 784)
    rows = {name: torch.rand(10, 784) for name in reversed(TRANSLATORS)}
    out = plot_stitched(
        tmp_path / "stitched.png",
        originals,
        rows,
        "Stitched: encode with small-0, translate, decode with large-0",
    )
    assert_png(out)


def test_plot_translator_metrics(tmp_path, records):
    assert_png(plot_translator_metrics(tmp_path / "metrics.png", records))


def test_plot_sample_efficiency(tmp_path, records):
    assert_png(plot_sample_efficiency(tmp_path / "efficiency.png", records))


def test_plot_translated_2d(tmp_path):
    rng = np.random.default_rng(0)
    n = 200
    target = rng.normal(size=(n, 2))
    scatter = {
        "pair": ("vae2d-a-0", "vae2d-b-0"),
        "target": target,
        "labels": rng.integers(0, 10, size=n),
        "translated": {name: target + rng.normal(0, 0.3, size=(n, 2)) for name in TRANSLATORS},
    }
    assert_png(plot_translated_2d(tmp_path / "scatter.png", scatter, CLASSES))


def test_plot_concept_transfer(tmp_path, records):
    assert_png(plot_concept_transfer(tmp_path / "transfer.png", records))
