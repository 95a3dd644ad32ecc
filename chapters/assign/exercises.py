"""The graded exercises: where each lives, its points, and its statement in English and Chinese.

An exercise is a top-level function in a chapter whose body sits between ### BEGIN SOLUTION and
### END SOLUTION, checked by the chapter's own ``check_<function>`` (references nobody here wrote).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Exercise:
    id: str
    chapter: str  # file name under chapters/
    function: str  # the function the student writes
    check: str  # the chapter's check function, called with the student's function
    points: int
    minutes: int  # estimated time a student needs
    en: str
    zh: str


EXERCISES: list[Exercise] = []
