"""Load only the definitions of a chapter — imports, functions, classes and literal constants —
without running its cells, so one exercise can be checked in isolation."""
from __future__ import annotations

import ast
import types
from pathlib import Path

from chapters.options import default_lang, tr

from .tripwire import code_objects


def run_language() -> str:
    """The language of the grader's messages: CHAPTERS_LANG, else the locale (chapters.options.default_lang);
    English when CHAPTERS_LANG holds something else, so that a bad value cannot stop a grading run."""
    try:
        return default_lang()
    except ValueError:
        return "en"


def say(zh: str, en: str) -> str:
    """``zh`` or ``en`` in the run's language (``run_language``): the grader's own messages."""
    return tr(run_language(), zh, en)


class ChapterLanguage:
    """What a chapter's checks use of its ``ch`` when only its definitions run: ``lang`` and ``tr``.

    The cell ``ch = Chapter(...)`` is left out with the others, so ``load_definitions`` puts one of these
    in its place: a check's ``ch.tr(zh, en)`` message then comes in the run's language (``run_language``)."""

    def __init__(self, lang: str | None = None):
        self.lang = run_language() if lang is None else lang

    def tr(self, zh: str, en: str) -> str:
        return tr(self.lang, zh, en)

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
    object compiled from the file (the grader tells the student's frames from the check's by them);
    ``module.ch`` is a ``ChapterLanguage``, for the checks' ``ch.tr(zh, en)`` messages."""
    path = Path(path)
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source, filename=str(path))
    tree.body = [n for n in tree.body if isinstance(n, KEPT) or is_literal_assignment(n)]
    module = types.ModuleType(module_name)
    module.__file__ = str(path)
    module.ch = ChapterLanguage()  # the chapter's ``ch = Chapter(...)`` is a cell, not run here
    code = compile(tree, str(path), "exec")
    module.__assign_codes__ = code_objects(code)
    exec(code, module.__dict__)
    return module
