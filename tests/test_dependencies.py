"""Dependencies: only their public modules are imported, and the installed versions are within pyproject's ranges."""

from __future__ import annotations

import ast
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from sources import parse

ROOT = Path(__file__).resolve().parent.parent


def imported_modules(path: Path) -> list[str]:
    """Absolute module names that ``path`` imports (relative imports are the project's own)."""
    names: list[str] = []
    for node in ast.walk(parse(path)):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.extend(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_private_module_of_a_dependency_is_imported() -> None:
    private = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in sorted((ROOT / "gateway").rglob("*.py"))
        for name in imported_modules(path)
        if not name.startswith(("gateway.", "__future__."))
        and any(part.startswith("_") for part in name.split("."))
    ]
    assert private == []


def requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    return [Requirement(r) for r in project["dependencies"]]


@pytest.mark.parametrize("requirement", requirements(), ids=str)
def test_the_installed_version_is_allowed(requirement: Requirement) -> None:
    assert requirement.specifier.contains(version(requirement.name), prereleases=True)
