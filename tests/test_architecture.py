"""The layer rules of docs/architecture.md hold: import-linter's contracts in pyproject are
kept, every module has a place in the layer map, and no package imports itself in a circle."""

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


def test_no_import_cycle_among_the_modules_of_a_layered_package() -> None:
    # The root package and every package a contract layers (web, cli, demo): no two of their
    # modules import each other, directly or through others (imports only for type checking
    # count too: they are how a cycle hides).
    import tomllib
    from itertools import combinations

    import grimp

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"][
        "contracts"
    ]
    packages = ["reengage", *(c for contract in contracts for c in contract.get("containers", []))]
    graph = grimp.build_graph("reengage", cache_dir=None)
    cycles = [
        (a, b)
        for package in packages
        for a, b in combinations(sorted(graph.find_children(package)), 2)
        if graph.chain_exists(importer=a, imported=b, as_packages=True)
        and graph.chain_exists(importer=b, imported=a, as_packages=True)
    ]
    assert len(packages) >= 4
    assert cycles == []
