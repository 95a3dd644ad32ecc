"""Load only the definitions of a chapter — imports, functions, classes and literal constants —
without running its cells, so one exercise can be checked in isolation."""
from __future__ import annotations

import ast
import types
from pathlib import Path

from .tripwire import code_objects

KEPT = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def is_literal_assignment(node: ast.stmt) -> bool:
    """``NAME = <literal>`` (numbers, strings, tuples, dicts of literals...), plain names only:
    ``t[0] = 1.0`` or ``obj.x = 2`` act on state the cells built, so they are left out."""
    if not isinstance(node, (ast.Assign, ast.AnnAssign)) or node.value is None:
        return False
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    if not all(isinstance(t, ast.Name) for t in targets):
        return False
    try:
        ast.literal_eval(node.value)
    except ValueError:
        return False
    return True


def load_definitions(path: str | Path, module_name: str = "chapter_definitions") -> types.ModuleType:
    """Execute the top-level imports, defs, classes and literal constants of ``path``.
    A SyntaxError propagates with its file and line. ``module.__assign_codes__`` holds every code
    object compiled from the file (the grader tells the student's frames from the check's by them)."""
    path = Path(path)
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source, filename=str(path))
    tree.body = [n for n in tree.body if isinstance(n, KEPT) or is_literal_assignment(n)]
    module = types.ModuleType(module_name)
    module.__file__ = str(path)
    code = compile(tree, str(path), "exec")
    module.__assign_codes__ = code_objects(code)
    exec(code, module.__dict__)
    return module
