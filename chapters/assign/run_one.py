"""Grade one exercise in this process and print one JSON line. Run by the grader in a subprocess
(so a crash or an endless loop costs only this exercise):

    python -m chapters.assign.run_one STUDENT_FILE REFERENCE_FILE EXERCISE_ID

The reference chapter's check runs on the student's function with the exercise's forbidden
functions behind tripwires (``tripwire.py``): a call to one of them from the student's code fails
the exercise, and the message names the call.
"""
from __future__ import annotations

import inspect
import json
import sys
import traceback

from chapters.assign.exercises import Exercise, by_id
from chapters.assign.loader import say


def first_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def forbidden_message(ex: Exercise, calls: list[str]) -> str:
    """The message for a solution that called forbidden functions (the first call named first)."""
    names = list(dict.fromkeys(calls))
    also = ", ".join(names[1:])
    if len(names) > 1:
        more_zh, more = f"（还有 {also}）", f" (also {also})"
    else:
        more_zh = more = ""
    return say(f"{ex.function}() 调用了 {names[0]}{more_zh}，而练习 {ex.id} 不允许调用它：请自己用张量运算实现，"
               "不要交给它代劳",
               f"{ex.function}() calls {names[0]}{more}, which exercise {ex.id} forbids: write it yourself "
               f"with tensor operations instead of delegating to it")


def load_student(student_file: str, ex: Exercise):
    """(module, function) or (None, a failed result) for a student file that does not load."""
    from chapters.assign.loader import load_definitions

    try:
        student = load_definitions(student_file, "student")
    except SyntaxError as e:
        return None, {"status": "failed", "message": say(f"学生文件无法编译：{e.msg}（{e.filename}:{e.lineno}）",
                                                         f"the student file does not compile: {e.msg} ({e.filename}:{e.lineno})")}
    except Exception as e:  # an import in the student file that fails, etc.
        return None, {"status": "failed", "message": say(f"学生文件无法加载：{type(e).__name__}: {first_line(e)}",
                                                         f"the student file does not load: {type(e).__name__}: {first_line(e)}")}
    impl = getattr(student, ex.function, None)
    if impl is None:
        return None, {"status": "failed", "message": say(f"{student_file} 中缺少函数 {ex.function}()",
                                                         f"function {ex.function}() is missing from {student_file}")}
    inner = inspect.unwrap(impl) if callable(impl) else impl  # through decorators such as @torch.no_grad()
    if id(getattr(inner, "__code__", None)) not in {id(c) for c in student.__assign_codes__}:
        where = getattr(impl, "__module__", None) or type(impl).__name__
        return None, {"status": "failed", "message": say(f"{ex.function} 必须是在 {student_file} 中定义的函数，"
                                                         f"实际得到的来自 {where}",
                                                         f"{ex.function} must be a function defined in {student_file}, "
                                                         f"received one from {where}")}
    return student, impl


def run_check(check, impl) -> dict:
    """Call ``check(impl)`` and turn its outcome into a result."""
    try:
        detail = check(impl)
    except NotImplementedError:
        return {"status": "failed", "message": say(f"{impl.__name__}() 尚未实现（引发了 NotImplementedError）",
                                                   f"{impl.__name__}() is not implemented yet (raises NotImplementedError)")}
    except AssertionError as e:
        return {"status": "failed", "message": first_line(e) or say("有一项检查未通过", "a check failed")}
    except Exception as e:
        frame = traceback.extract_tb(e.__traceback__)[-1]
        return {"status": "failed", "message": say(f"{type(e).__name__}: {first_line(e)}（第 {frame.lineno} 行）",
                                                   f"{type(e).__name__}: {first_line(e)} (line {frame.lineno})")}
    return {"status": "passed", "message": first_line(detail or "")}


def grade(student_file: str, reference_file: str, exercise: Exercise | str, enforce: bool = True) -> dict:
    """Run the reference check of ``exercise`` on the student's function; a result dict, never raises.

    enforce=False leaves the forbidden functions alone (the tests use it to show that a delegating
    solution would pass without the tripwires)."""
    from chapters.assign.loader import load_definitions
    from chapters.assign.tripwire import ForbiddenCall, Tripwires, introspection_in

    ex = exercise if isinstance(exercise, Exercise) else by_id(exercise)
    student, impl = load_student(student_file, ex)
    if student is None:
        return impl
    if enforce and introspection_in(student.__assign_codes__):
        used = ", ".join(introspection_in(student.__assign_codes__))
        return {"status": "failed", "message": say(f"{student_file} 使用了 {used}：评分文件中不允许对函数和栈帧做内省",
                                                   f"{student_file} uses {used}: "
                                                   "introspection of functions and frames is not allowed in graded files")}
    reference = load_definitions(reference_file, "reference")
    check = getattr(reference, ex.check)
    if not enforce:
        return run_check(check, impl)
    wires = Tripwires(ex.refused, student.__assign_codes__, reference.__assign_codes__)
    try:
        with wires.active([vars(student), vars(reference)], student):
            result = run_check(check, wires.guard(impl))
    except ForbiddenCall:  # raised outside anything that would turn it into a result
        result = {"status": "failed"}
    if wires.violations:
        return {"status": "failed", "message": forbidden_message(ex, wires.violations)}
    return result


if __name__ == "__main__":
    print("@@RESULT " + json.dumps(grade(*sys.argv[1:4])), flush=True)
