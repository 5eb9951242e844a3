"""The vae_latents experiment end to end, on a tiny profile: it trains, reuses its checkpoints,
writes every figure and a record that its template renders.  The numbers and verdicts themselves
are tested in ``test_vae_metrics.py`` and ``test_vae_latent_geometry.py``."""

from __future__ import annotations

import json
import sys

import pytest

from pyro_latent.study import Context, report
from pyro_latent.study import runner as study

FIGURES = (
    "vae2d_latents.png",
    "vae2d_manifold.png",
    "vae2d_tshirt_trouser.png",
    "active_units.png",
    "reconstructions.png",
    "latent_correlations.png",
)


@pytest.mark.slow
@pytest.mark.needs_fashion_mnist
def test_vae_latents_tiny_profile(tmp_path, monkeypatch):
    from pyro_latent.study import profiles

    exp = study.discover(names=["vae_latents"])["vae_latents"]
    module = sys.modules[exp.source]
    monkeypatch.setitem(
        module.PROFILES, "quick", {"n_seeds": 2, "sweep_seeds": 1, "two_d_seeds": 1}
    )
    tiny_training = {"epochs": 1, "train_limit": 600, "runs_subdir": "q"}
    monkeypatch.setitem(profiles.TRAINING_PROFILES, "quick", tiny_training)

    def run():
        ctx = Context(
            name="vae_latents",
            quick=True,
            figures_dir=tmp_path / "figures",
            results_dir=tmp_path / "results",
            runs_dir=tmp_path / "runs",
            data_dir=tmp_path / "data",
        )
        return json.loads(study.run_experiment(exp, ctx).read_text())

    record = run()
    assert set(record["figures"]) == set(FIGURES)
    for figure in FIGURES:
        assert (tmp_path / "figures" / figure).stat().st_size > 10_000, figure
    results = record["results"]
    assert [r["seed"] for r in results["runs"]["small"]] == [0, 1]
    assert [len(r["train_elbo"]) for r in results["runs"]["large"]] == [1, 1]  # the tiny profile
    assert [r["seed"] for r in results["runs"]["vae2d-a"]] == [0]
    assert [s["latent_dim"] for s in results["latent_sweep"]["sizes"]] == [10, 20, 40]
    section = report.render_section(record, tmp_path / "figures")
    assert section.startswith("## ") and "{{" not in section
    # Checkpoints for every run, and a second run reuses them: identical numbers, and not one
    # checkpoint rewritten (a retraining would rewrite them with identical bytes).
    runs = tmp_path / "runs"

    def files():
        return {p: p.stat().st_mtime_ns for p in sorted(runs.rglob("*")) if p.is_file()}

    before = files()
    assert len([p for p in before if p.name == "checkpoint.pt"]) == 2 * 2 + 2 * 1 + 2 * 1
    again = run()
    assert again["results"] == results
    assert files() == before
