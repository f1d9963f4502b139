"""The import layers of DESIGN.md §2, checked on the source: no module imports a layer above its own.

Every import counts: absolute and relative, ``TYPE_CHECKING`` blocks, and imports inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from sources import parse

import gateway

# Bottom to top; a module may import its own layer and the ones below it.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("protocol",),
    ("server", "transports", "backplane", "static"),
    ("hub", "app", "streams"),
    ("progress", "admin", "demo", "cli", "__main__", "__init__"),
)
# Exceptions to the ladder: the Python client stands beside the server and uses only the sans-IO core.
ONLY: dict[str, frozenset[str]] = {"client": frozenset({"client", "protocol"})}


def _part(package: str, module: str) -> str:
    """The top-level part of ``package`` that ``module`` (dotted, absolute) belongs to."""
    rest = module.split(".")[1:]
    return rest[0] if rest else "__init__"


def _imports(path: Path, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, absolute module) for every import in the file, wherever it stands."""
    found: list[tuple[int, str]] = []
    base = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(parse(path)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            anchor = base[: len(base) - node.level + 1] if node.level else []
            target = ".".join([*anchor, *([node.module] if node.module else [])])
            found += [(node.lineno, f"{target}.{alias.name}" if not node.module else target) for alias in node.names]
    return found


def _rank(part: str, layers: tuple[tuple[str, ...], ...]) -> int:
    return next(i for i, layer in enumerate(layers) if part in layer)


def violations(
    root: Path, package: str, layers: tuple[tuple[str, ...], ...] = LAYERS, only: dict[str, frozenset[str]] = ONLY,
) -> list[str]:
    """Every import in ``root`` (the package's directory) of a layer above the importer's."""
    found = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root.parent).with_suffix("")
        is_package = relative.name == "__init__"
        module = ".".join(relative.parts[:-1] if is_package else relative.parts)
        part = _part(package, module) if module != package else "__init__"
        for line, imported in _imports(path, module, is_package):
            if imported != package and not imported.startswith(package + "."):
                continue
            target = _part(package, imported)
            if part in only:
                allowed = target in only[part]
            else:
                allowed = target not in only and _rank(target, layers) <= _rank(part, layers)
            if not allowed:
                found.append(f"{path.relative_to(root.parent)}:{line}: {part} imports {imported} ({target})")
    return found


def test_no_module_of_the_gateway_imports_a_higher_layer() -> None:
    root = Path(gateway.__file__).parent
    assert violations(root, "gateway") == []


def test_every_part_of_the_gateway_has_a_layer() -> None:
    root = Path(gateway.__file__).parent
    modules = [p for p in root.iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()]
    parts = {p.stem if p.is_file() else p.name for p in modules}
    known = {part for layer in LAYERS for part in layer} | set(ONLY)
    assert parts - known == set()


def _fake(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "fake"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


FAKE_LAYERS = (("protocol",), ("server", "transports"), ("hub",))


@pytest.mark.parametrize("importer, line", [
    ("server/app.py", "from ..hub import Hub\n"),
    ("server/app.py", "from fake.hub import Hub\n"),
    ("server/app.py", "import fake.hub\n"),
    ("server/app.py", "from .. import hub\n"),
    ("server/app.py", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..hub import Hub\n"),
    ("server/app.py", "def late():\n    from ..hub import Hub\n    return Hub\n"),
    ("protocol/__init__.py", "from ..transports import base\n"),
    ("client/session.py", "from ..server import app\n"),
])
def test_the_checker_reports_an_upward_import(tmp_path: Path, importer: str, line: str) -> None:
    files = {"__init__.py": "", "hub.py": "class Hub: ...\n", "server/__init__.py": "", "transports/__init__.py": "",
             "protocol/__init__.py": "", "client/__init__.py": "", importer: line}
    root = _fake(tmp_path, files)
    found = violations(root, "fake", FAKE_LAYERS, {"client": frozenset({"client", "protocol"})})
    assert len(found) == 1 and found[0].startswith(f"fake/{importer}:"), found


def test_the_checker_accepts_downward_and_sideways_imports(tmp_path: Path) -> None:
    files = {"__init__.py": "", "hub.py": "from .server import app\nfrom .protocol import x\n",
             "server/__init__.py": "", "server/app.py": "from ..transports import base\nfrom ..protocol import x\n",
             "transports/__init__.py": "", "transports/base.py": "from ..server import app\n",
             "protocol/__init__.py": "", "protocol/x.py": "import json\n"}
    root = _fake(tmp_path, files)
    assert violations(root, "fake", FAKE_LAYERS, {}) == []
