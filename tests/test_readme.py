"""The README's Python examples run as written, in order, in one namespace."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def needs_the_study(block: str) -> bool:
    """Whether a block loads trained checkpoints or FashionMNIST (comments aside)."""
    code = "\n".join(line.split("#", 1)[0] for line in block.splitlines())
    return re.search(r"\bload_(vae|fashion_mnist)\(", code) is not None


def test_readme_examples_run():
    blocks = python_blocks()
    assert len(blocks) >= 3, "the README lost its examples"
    namespace: dict = {}
    for block in blocks:
        if needs_the_study(block):
            continue  # needs trained checkpoints; tests/test_vae_*.py cover the same calls
        exec(compile(block, str(README), "exec"), namespace)
    assert namespace["torch"].equal(
        namespace["M"], namespace["torch"].eye(160, dtype=namespace["M"].dtype)
    )
    estimate = namespace["rb"].distance_from_identity()
    assert 0 < estimate.value < 1 and estimate.standard_error > 0
    # "Using it on your own model": a wrapped model translated to a study VAE, a concept
    # direction found in it, and its posterior checked
    assert namespace["z_study"].shape == (1, 20)
    assert namespace["z0"].shape == (4,) and "two-image h" in namespace["dirs"]
    assert namespace["summary"]["importance"]["n_samples"] == 1000


def test_the_skip_rule_skips_only_what_needs_the_study():
    assert needs_the_study("vae = load_vae('small')")
    assert not needs_the_study("vae = VAE(get_preset('small'))  # or load_vae( after make study")
