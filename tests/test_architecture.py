"""The layer rule in DESIGN.md holds: import-linter's contract in pyproject is kept."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_layers_contract_is_kept() -> None:
    linter = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    result = subprocess.run(
        [linter, "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_env_example_lists_every_setting() -> None:
    from reengage.config import ENV_PREFIX, Settings

    text = (ROOT / ".env.example").read_text()
    missing = [n for n in Settings.model_fields if f"{ENV_PREFIX}{n.upper()}=" not in text]
    assert missing == []


def test_every_module_has_a_place_in_the_layer_map() -> None:
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    layers = config["tool"]["importlinter"]["contracts"][0]["layers"]
    placed = {
        name.strip(" ()")
        for layer in layers
        for part in layer.replace(":", "|").split("|")
        if (name := part.strip())
    }
    modules = {
        "reengage." + path.relative_to(ROOT / "reengage").with_suffix("").parts[0]
        for path in (ROOT / "reengage").rglob("*.py")
        if path.name != "__init__.py" or path.parent != ROOT / "reengage"
    }
    assert modules - placed == set()
