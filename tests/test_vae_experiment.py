"""The vae_latents experiment end to end, on a tiny profile: it trains, reuses its checkpoints,
writes every figure and a report section whose numbers come from the JSON results."""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest

from pyro_latent.study import Context, experiments_dir


def _module():
    name = "pyro_latent_experiments.vae_latents"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, experiments_dir() / "vae_latents.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


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
    # Checkpoints for every run, and a second run reuses them: identical numbers.
    assert len(list((tmp_path / "runs" / "quick").glob("*/checkpoint.pt"))) == 2 * 2 + 2 * 1 + 2
    again = module.run(context())
    assert again == section
