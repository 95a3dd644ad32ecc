"""Refuse delegation: while an exercise's check runs, a call from the student's code to one of the
functions the exercise forbids fails the exercise, and the message names the call.

Each forbidden name (``"torch.nn.functional.scaled_dot_product_attention"``) is resolved to its
object, then replaced for the duration of the check by a *tripwire* that calls the original:

* a function (Python or built-in) is replaced in every module namespace that holds it —
  ``sys.modules``, the modules they hold as attributes (``torch._C._nn``), the student's and the
  reference's chapter modules — and in the student's default arguments and class attributes;
* a class (``torch.nn.LayerNorm``, an ``autograd.Function``) gets tripwires on the ``__init__``
  and ``forward`` it defines, so a subclass or an instance reached some other way trips too;
* a method (``torch.Tensor.backward``, ``Seq2SeqTransformer.forward``) is replaced on its class;
* anything else with attributes (``torch.ops.aten.layer_norm``) is replaced on its owner.

A tripwire decides from the call stack who is calling: walking outwards from the call, the first
frame whose code belongs to the student's file makes it a violation; the first frame of the
reference chapter (the check itself, or a callback the check handed to the student) makes it
legitimate. The two files are compiled separately, so grading the reference against itself still
tells them apart. A call on another thread while the student's function runs is a violation too.
A violation is recorded (so ``except BaseException`` in student code cannot hide it) and raised as
:class:`ForbiddenCall`, a ``BaseException`` that ``except Exception`` does not catch.
"""
from __future__ import annotations

import contextlib
import importlib
import inspect
import sys
import threading
import types
import warnings
from typing import Callable, Iterable, Iterator

#: packages whose names must resolve; a forbidden name in any other package is skipped when that
#: package is not installed (``captum.attr.IntegratedGradients`` on a machine without captum).
REQUIRED_PACKAGES = ("torch", "minitransformer", "minibert", "minigpt")
PATCHED_CLASS_METHODS = ("__init__", "forward")


#: names through which code could reach a tripwire's original (its closure, a frame, the garbage
#: collector); a student file that mentions one is refused before its check runs
INTROSPECTION = frozenset({"__closure__", "cell_contents", "__globals__", "__wrapped__", "get_referrers",
                           "get_referents", "get_objects", "_getframe", "f_back", "f_globals", "f_locals"})


def introspection_in(codes) -> list[str]:
    """The INTROSPECTION names that ``codes`` use, as names or as string constants (for getattr)."""
    found = set()
    for code in codes:
        found |= INTROSPECTION & set(code.co_names)
        found |= INTROSPECTION & {c for c in code.co_consts if isinstance(c, str)}
    return sorted(found)


class ForbiddenCall(BaseException):
    """A student's code called a function its exercise forbids. The message names the call."""


def resolve(name: str):
    """(owner, attribute, object) for a dotted name, importing the longest module prefix that imports.

    None when the name's top-level package is not installed and is not one of REQUIRED_PACKAGES;
    ValueError naming what was expected when the name does not resolve."""
    parts = name.split(".")
    if len(parts) < 2:
        raise ValueError(f"forbidden name: expected a dotted path such as 'torch.nn.functional.gelu', received {name!r}")
    owner, i = None, len(parts) - 1
    while i > 0:
        try:
            owner = importlib.import_module(".".join(parts[:i]))
            break
        except ModuleNotFoundError as e:
            if i == 1 and parts[0] not in REQUIRED_PACKAGES and e.name == parts[0]:
                return None  # an optional package that is not installed
            i -= 1
    if owner is None:
        raise ValueError(f"forbidden name {name!r}: expected an importable module at its start, found none")
    for attr in parts[i:-1]:
        owner = _attribute(owner, attr, name)
    return owner, parts[-1], _attribute(owner, parts[-1], name)


def _attribute(owner, attr: str, name: str):
    try:
        return inspect.getattr_static(owner, attr) if inspect.isclass(owner) else getattr(owner, attr)
    except AttributeError:
        raise ValueError(f"forbidden name {name!r}: {getattr(owner, '__name__', owner)!s} has no attribute {attr!r}") from None


def code_objects(code: types.CodeType) -> tuple[types.CodeType, ...]:
    """``code`` and every code object nested in it (functions, classes, lambdas, comprehensions).

    Kept apart by identity: code objects compare equal by content, and the grader compiles the
    same file twice when it grades the reference chapters against themselves."""
    found = {id(code): code}
    stack = [code]
    while stack:
        for const in stack.pop().co_consts:
            if isinstance(const, types.CodeType) and id(const) not in found:
                found[id(const)] = const
                stack.append(const)
    return tuple(found.values())


class Tripwires:
    """Install tripwires on ``names`` for the time of a ``with tripwires.active(...)`` block.

    student_codes / reference_codes: the code objects compiled from the student's and the
    reference's chapter files (see :func:`code_objects`).
    """

    def __init__(self, names: Iterable[str], student_codes: set, reference_codes: set):
        self.names = tuple(names)
        # by identity: two compilations of one file give code objects that compare equal
        self._codes = (tuple(student_codes), tuple(reference_codes))  # keeps the ids valid
        self.student_codes = frozenset(map(id, student_codes))
        self.reference_codes = frozenset(map(id, reference_codes))
        self.violations: list[str] = []
        self._undo: list[Callable[[], None]] = []
        self._running = 0  # > 0 while the student's function runs (see guard)
        self._thread = threading.get_ident()

    # ------------------------------------------------------------------ deciding

    def _student_is_calling(self, frame) -> bool:
        while frame is not None:
            code = id(frame.f_code)
            if code in self.student_codes:
                return True
            if code in self.reference_codes:
                return False
            frame = frame.f_back
        return self._running > 0 and threading.get_ident() != self._thread

    def _tripwire(self, name: str, original: Callable) -> Callable:
        """A callable that records a violation when the student's code calls it, else calls ``original``."""
        def tripwire(*args, **kwargs):
            if self._student_is_calling(sys._getframe(1)):
                self.violations.append(name)
                raise ForbiddenCall(f"calls {name}")
            return original(*args, **kwargs)

        for attr in ("__name__", "__qualname__", "__doc__", "__module__"):  # no __wrapped__: that would lead back
            with contextlib.suppress(AttributeError, TypeError):
                setattr(tripwire, attr, getattr(original, attr))
        return tripwire

    def guard(self, impl: Callable) -> Callable:
        """``impl`` wrapped so that calls made on other threads while it runs count as the student's."""
        def guarded(*args, **kwargs):
            self._running += 1
            try:
                return impl(*args, **kwargs)
            finally:
                self._running -= 1

        for attr in ("__name__", "__qualname__", "__doc__"):
            setattr(guarded, attr, getattr(impl, attr, None))
        # reaching this frame before any frame of the reference means the student's function made the
        # call, even through a decorator or other code that is not in the student's file
        self.student_codes = self.student_codes | {id(guarded.__code__)}
        return guarded

    # ------------------------------------------------------------------ installing

    @contextlib.contextmanager
    def active(self, namespaces: Iterable[dict] = (), student: types.ModuleType | None = None) -> Iterator["Tripwires"]:
        """Tripwires in place inside the block, originals restored after it (also on error)."""
        functions: dict[int, tuple[str, object]] = {}
        owners: list[dict] = []
        try:
            for name in self.names:
                found = resolve(name)
                if found is None:
                    continue
                owner, attr, obj = found
                if inspect.isclass(obj):
                    self._patch_class(name, obj)
                elif inspect.isclass(owner):
                    self._patch_class_attribute(owner, attr, name)
                elif isinstance(owner, types.ModuleType):
                    functions.setdefault(id(obj), (name, obj))
                    owners.append(vars(owner))
                else:
                    self._patch_attribute(owner, attr, name, obj)
            if functions:
                self._patch_everywhere(functions, owners + list(namespaces), student)
            yield self
        finally:
            self.restore()

    def restore(self) -> None:
        """Put every original back (in reverse order)."""
        while self._undo:
            self._undo.pop()()

    def _patch_class(self, name: str, cls: type) -> None:
        for attr in PATCHED_CLASS_METHODS:
            if attr in cls.__dict__:
                self._patch_class_attribute(cls, attr, name)

    def _patch_class_attribute(self, cls: type, attr: str, name: str) -> None:
        raw = cls.__dict__.get(attr)
        if raw is None:  # inherited: override on this class, remove the override afterwards
            raw = inspect.getattr_static(cls, attr)
        if isinstance(raw, (staticmethod, classmethod)):
            new = type(raw)(self._tripwire(name, raw.__func__))
        elif isinstance(raw, property):
            return
        else:
            new = self._tripwire(name, raw)
        had = attr in cls.__dict__
        setattr(cls, attr, new)
        self._undo.append((lambda: setattr(cls, attr, raw)) if had else (lambda: delattr(cls, attr)))

    def _patch_attribute(self, owner, attr: str, name: str, obj) -> None:
        setattr(owner, attr, self._tripwire(name, obj))
        self._undo.append(lambda: setattr(owner, attr, obj))

    def _patch_everywhere(self, functions: dict[int, tuple[str, object]], namespaces: list[dict],
                          student: types.ModuleType | None) -> None:
        """Replace each function in every namespace that holds it (compared by identity)."""
        wires = {key: self._tripwire(name, obj) for key, (name, obj) in functions.items()}
        modules = [m for m in list(sys.modules.values()) if isinstance(m, types.ModuleType)]
        seen = {id(m) for m in modules}
        with warnings.catch_warnings():  # isinstance() on some deprecated torch attributes warns
            warnings.simplefilter("ignore")
            for m in modules:  # grows: modules held as attributes but missing from sys.modules (torch._C._nn)
                for value in list(vars(m).values()):
                    if isinstance(value, types.ModuleType) and id(value) not in seen:
                        seen.add(id(value))
                        modules.append(value)
        dicts, seen_dicts = [], set()
        for d in [vars(m) for m in modules] + namespaces:
            if id(d) not in seen_dicts:
                seen_dicts.add(id(d))
                dicts.append(d)
        if student is not None:
            dicts += [vars(v) for v in vars(student).values() if inspect.isclass(v) and v.__module__ == student.__name__]
        for d in dicts:
            for key, value in list(d.items()):
                if id(value) in wires and value is functions[id(value)][1]:
                    self._replace_in_dict(d, key, value, wires[id(value)])
        if student is not None:
            self._patch_defaults(student, functions, wires)

    def _replace_in_dict(self, d, key, original, wire) -> None:
        try:
            d[key] = wire
        except TypeError:  # a class's mappingproxy
            return
        self._undo.append(lambda: d.__setitem__(key, original))

    def _patch_defaults(self, student: types.ModuleType, functions: dict, wires: dict) -> None:
        """Default arguments captured when the student's functions were defined (``def f(x, g=F.gelu)``)."""
        owners = [v for v in vars(student).values() if isinstance(v, types.FunctionType)]
        for cls in (v for v in vars(student).values() if inspect.isclass(v) and v.__module__ == student.__name__):
            owners += [v for v in vars(cls).values() if isinstance(v, types.FunctionType)]
        for fn in owners:
            if fn.__defaults__ and any(id(d) in wires for d in fn.__defaults__):
                old = fn.__defaults__
                fn.__defaults__ = tuple(wires.get(id(d), d) if id(d) in wires and d is functions[id(d)][1] else d for d in old)
                self._undo.append(lambda fn=fn, old=old: setattr(fn, "__defaults__", old))
            if fn.__kwdefaults__ and any(id(d) in wires for d in fn.__kwdefaults__.values()):
                old_kw = dict(fn.__kwdefaults__)
                fn.__kwdefaults__ = {k: wires.get(id(d), d) for k, d in old_kw.items()}
                self._undo.append(lambda fn=fn, old_kw=old_kw: setattr(fn, "__kwdefaults__", old_kw))
