"""The README's Python examples run as written, in order, in one namespace."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_readme_toy_examples_run():
    blocks = python_blocks()
    assert len(blocks) >= 3, "the README lost its examples"
    namespace: dict = {}
    for block in blocks:
        if "pyro_latent.vae" in block:
            continue  # needs trained checkpoints; tests/test_vae_*.py cover the same calls
        exec(compile(block, str(README), "exec"), namespace)
    assert namespace["torch"].equal(
        namespace["M"], namespace["torch"].eye(160, dtype=namespace["M"].dtype)
    )
    estimate = namespace["rb"].distance_from_identity()
    assert 0 < estimate.value < 1 and estimate.standard_error > 0
