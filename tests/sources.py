"""Reading the project's own source as an AST, for the tests that check its shape."""

from __future__ import annotations

import ast
import gc
from pathlib import Path


def parse(path: Path) -> ast.Module:
    """``ast.parse`` of a file, the garbage collector held meanwhile: on CPython 3.11 a finalizer that runs
    inside the AST constructor (an asyncio future an earlier test left, logging as it goes) makes it raise
    SystemError ("AST constructor recursion depth mismatch")."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return ast.parse(path.read_text("utf-8"))
    finally:
        if enabled:
            gc.enable()
