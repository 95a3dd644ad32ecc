"""Grade one exercise in this process and print one JSON line. Run by the grader in a subprocess
(so a crash or an endless loop costs only this exercise):

    python -m chapters.assign.run_one STUDENT_FILE REFERENCE_FILE FUNCTION CHECK
"""
from __future__ import annotations

import json
import sys
import traceback


def first_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def grade(student_file: str, reference_file: str, function: str, check: str) -> dict:
    from chapters.assign.loader import load_definitions

    try:
        student = load_definitions(student_file, "student")
    except SyntaxError as e:
        return {"status": "failed", "message": f"the student file does not compile: {e.msg} ({e.filename}:{e.lineno})"}
    except Exception as e:  # an import in the student file that fails, etc.
        return {"status": "failed", "message": f"the student file does not load: {type(e).__name__}: {first_line(e)}"}
    impl = getattr(student, function, None)
    if impl is None:
        return {"status": "failed", "message": f"function {function}() is missing from {student_file}"}
    reference = load_definitions(reference_file, "reference")
    try:
        detail = getattr(reference, check)(impl)
    except NotImplementedError:
        return {"status": "failed", "message": f"{function}() is not implemented yet (raises NotImplementedError)"}
    except AssertionError as e:
        return {"status": "failed", "message": first_line(e) or "a check failed"}
    except Exception as e:
        frame = traceback.extract_tb(e.__traceback__)[-1]
        return {"status": "failed", "message": f"{type(e).__name__}: {first_line(e)} (line {frame.lineno})"}
    return {"status": "passed", "message": first_line(detail or "")}


if __name__ == "__main__":
    print("@@RESULT " + json.dumps(grade(*sys.argv[1:5])), flush=True)
