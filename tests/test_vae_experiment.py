"""The vae_latents experiment end to end, on a tiny profile: it trains, reuses its checkpoints,
writes every figure and a report section whose numbers come from the JSON results."""

from __future__ import annotations

import json
import sys

import pytest

from pyro_latent import study
from pyro_latent.study import Context


def _module():
    study.discover()  # imports every experiment script under the runner's module names
    return sys.modules["pyro_latent_experiments.vae_latents"]


@pytest.mark.slow
def test_vae_latents_tiny_profile(tmp_path, monkeypatch):
    module = _module()
    monkeypatch.setitem(module.QUICK, "epochs", 1)
    monkeypatch.setitem(module.QUICK, "train_limit", 600)
    monkeypatch.setitem(module.QUICK, "n_seeds", 2)

    def context():
        return Context(
            name="vae_latents",
            quick=True,
            figures_dir=tmp_path / "figures",
            results_dir=tmp_path / "results",
            runs_dir=tmp_path / "runs",
            data_dir=tmp_path / "data",
        )

    section = module.run(context())
    for figure in module.FIGURES:
        assert (tmp_path / "figures" / figure).stat().st_size > 10_000, figure
        assert f"]({figure})" in section
    results = json.loads((tmp_path / "results" / "vae_latents.json").read_text())["results"]
    small = results["runs"]["small"]
    assert set(small) == {"0", "1"}
    for seed, r in small.items():
        assert f"| `small` | {seed} | {r['test_elbo']:.1f} | {r['active_units']} |" in section
    assert "quick-profile numbers" in section
    assert set(results["runs"]) == set(module.PRESET_NAMES)  # 2-D VAEs in the tables too
    assert "| `vae2d-a` | 0 |" in section
    # Checkpoints for every run, and a second run reuses them: identical numbers, and not one
    # checkpoint rewritten (a retraining would rewrite them with identical bytes).
    runs = tmp_path / "runs"

    def files():
        return {p: p.stat().st_mtime_ns for p in sorted(runs.rglob("*")) if p.is_file()}

    before = files()
    assert len([p for p in before if p.name == "checkpoint.pt"]) == 2 * 2 + 2 * 1 + 2 * 1
    again = module.run(context())
    assert again == section
    assert files() == before


def _run_record(kl, act):
    return {"kl_per_dim": kl, "activity": act}


def test_active_kls_follow_the_activity_mask():
    module = _module()
    # The most informative dimension by KL is inactive: it must not be listed.
    r = _run_record([5.0, 1.0, 0.5, 0.2], [0.001, 0.5, 0.02, 0.3])
    assert module._active_kls(r) == [1.0, 0.5, 0.2]


def test_kl_story_checks_the_split():
    module = _module()
    agree = [_run_record([2.0, 0.001], [0.5, 0.001])]
    assert "agrees" in module._kl_story(agree)
    overlap = [_run_record([2.0, 0.3, 0.2], [0.5, 0.001, 0.02])]
    story = module._kl_story(overlap)
    assert "agrees" not in story and "not" in story


def test_correlation_story_is_conditional():
    module = _module()
    holds = module._correlation_story(0.1, 0.9, True, 0.5)
    assert "observation holds" in holds and "gap lives in the inactive" in holds
    fails = module._correlation_story(0.7, 0.9, True, 0.5)
    assert "does **not** hold" in fails and "gap lives" not in fails
    low_active = module._correlation_story(0.1, 0.5, True, 0.5)
    assert "gap lives" not in low_active and "gap remains" in low_active


def _two_d(nearest, ratio, blends, wheres, second=None, accuracy=0.99):
    return {
        "path": {
            "nearest": nearest,
            "second": second or [0] * len(nearest),
            "ratio": ratio,
            "blends": blends,
        },
        "shoes": {"where": wheres[0]},
        "shoes_by_seed": {
            s: {"where": w, "linear_separability": accuracy} for s, w in enumerate(wheres)
        },
    }


CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat") + ("x",) * 5


def test_path_story_follows_the_captions():
    module = _module()
    via_dress = _two_d([0, 0, 3, 3, 1], [0.5, 0.6, 0.7, 0.95, 0.4], [], ["top"], [3, 1, 1, 1, 3])
    story = module._path_story({"a": via_dress}, CLASSES)
    assert "not** reproduced" in story and "2 nearest to Dress" in story
    assert "closest call has ratio 0.60" in story  # only T-shirt/trouser pairs count
    blend = _two_d([0, 0, 1, 1], [0.5, 0.95, 0.93, 0.5], [1, 2], ["top"])
    story = module._path_story({"a": blend}, CLASSES)
    assert "2 of 4 decoded images" in story and "not** reproduced" not in story


def test_where_story_is_measured():
    module = _module()
    moved = module._where_story({"a": _two_d([0], [0], [], ["top", "bottom", "top"])})
    assert "changes with the seed alone" in moved
    stable = module._where_story({"a": _two_d([0], [0], [], ["top", "top", "top"])})
    assert "stable" in stable and "arbitrary" not in stable
    one = module._where_story({"a": _two_d([0], [0], [], ["top"])})
    assert "not measured" in one


def test_shoe_story_names_the_spaces_without_a_region():
    module = _module()
    good = {"a": _two_d([0], [0], [], ["top", "top"], accuracy=0.99)}
    assert "every 2-D space" in module._shoe_story(good)
    mixed = {**good, "b": _two_d([0], [0], [], ["top"], accuracy=0.8)}
    story = module._shoe_story(mixed)
    assert "2 of 3" in story and "`b` seed 0 (80.0%)" in story
    bad = {"b": _two_d([0], [0], [], ["top"], accuracy=0.8)}
    assert "not reproduced" in module._shoe_story(bad)
