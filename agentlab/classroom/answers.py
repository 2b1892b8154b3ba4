"""The learners' answers: they leave the kernel as data, and the verdict is the grader's.

A verdict computed in the learner's kernel can always be forged there: one cell can replace importlib.reload,
define __import__, register an IPython hook that shows a passing verdict, or patch what the check calls
(isinstance, math, ...). So the kernel only sends its answers: the grader's cell there pickles the values the
check takes (``answers``), and the grader unpickles them with an allow-list of plain classes (``load_answers``:
records, errors, containers; never a function that runs code) and runs the check itself (``judge_answers``).
A learner can still send made-up answers, as they could always build made-up results in their own code; what
they cannot do is say "passed". What does not cross as itself crosses as a stand-in: a matplotlib Figure as
its bars, ticks and labels (drawn again here), an exception of another library as one of the same name,
anything else as its type's name, its repr, and the ``url`` or ``is_closed()`` the checks read.

``answers`` runs in the grader's cells, in the learner's kernel: it picks the answers by the check's parameter
names (evaluating the course's check-cell expressions, such as ``tool_seconds=1 * SCALE``) and shows them,
pickled; ``judge_answers`` runs the check in the grader on what ``load_answers`` lets through.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import importlib
import inspect
import io
import pickle
import sys
import types
from typing import Any

MISSING = object()

ANSWERS_MIME = "application/vnd.agentlab.answers+pickle"  # base64 of a pickled {parameter: value}
ANSWERS_LIMIT = 16_000_000  # characters of base64: past this, the answers are not judged
SAFE_BUILTINS = {
    "list", "tuple", "dict", "set", "frozenset", "str", "bytes", "bytearray", "int", "float", "complex", "bool",
    "range", "slice", "object", "NoneType",
}  # fmt: skip
SAFE_MODULES = ("agentlab.records", "agentlab.errors", "agentlab.batch.report", "collections", "datetime")


def answers(exercise: str, namespace: dict[str, Any], expressions: dict[str, str], names: list[str]) -> Any:
    """In the kernel: the check's answers, evaluated as the course's check cell has them, shown for the grader."""
    values = {}
    for name in names:
        if (value := evaluate(expressions.get(name, name), namespace)) is not MISSING:
            values[name] = value
    buffer = io.BytesIO()
    AnswerPickler(buffer, protocol=4).dump(values)
    return Answers(exercise, base64.b64encode(buffer.getvalue()).decode())


@dataclasses.dataclass(frozen=True)
class Answers:
    """What the grader's cell shows: the answers, pickled, for the grader to judge."""

    exercise: str
    payload: str

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return {ANSWERS_MIME: self.payload, "text/plain": f"your answers to check {self.exercise}, for the grader"}


def evaluate(expression: str, namespace: dict[str, Any]) -> Any:
    try:
        return eval(expression, namespace)  # the course's own expression, on the learner's variables
    except Exception:  # an undefined name is a missing answer, which the check names
        return MISSING


def allowed(module: str, name: str) -> bool:
    """A class the grader may rebuild from a learner's pickle: plain data, no code run on the way."""
    if module == "builtins":
        import builtins

        found = getattr(builtins, name, None)
        return name in SAFE_BUILTINS or (isinstance(found, type) and issubclass(found, BaseException))
    if (module, name) in {("copyreg", "_reconstructor"), ("copyreg", "__newobj__"), ("copyreg", "__newobj_ex__")}:
        return True
    if module == __name__ or module == "agentlab.classroom.answers":
        return name in {"standing_in", "figure_again"}
    return module in SAFE_MODULES and isinstance(getattr(importlib.import_module(module), name, None), type)


class AnswerPickler(pickle.Pickler):
    """Pickles what ``allowed`` lets through as itself, and the rest as ``standing_in`` or ``figure_again``."""

    def reducer_override(self, obj: Any) -> Any:
        named = isinstance(obj, (type, types.FunctionType, types.BuiltinFunctionType))  # pickled by name
        kind = obj if named else type(obj)
        if allowed(kind.__module__, kind.__qualname__) and not isinstance(obj, BaseException):
            return NotImplemented
        if kind.__module__.split(".")[0] == "numpy" and callable(getattr(obj, "tolist", None)):
            plain = obj.tolist()  # a number, or nested lists of them
            if isinstance(plain, (int, float, complex, bool, list)):
                return type(plain), (plain,)
        figure = sys.modules.get("matplotlib.figure")
        axes = sys.modules.get("matplotlib.axes")
        if figure is not None and isinstance(obj, figure.Figure):
            return figure_again, (figure_parts(obj), False)
        if axes is not None and isinstance(obj, axes.Axes) and obj.figure is not None:
            return figure_again, (figure_parts(obj.figure), True)
        return standing_in, (describe_kind(obj), repr(obj)[:200], readable_parts(obj))


def describe_kind(obj: Any) -> list[tuple[str, str]]:
    """The class and its bases, as (module, name), nearest first."""
    kind = obj if isinstance(obj, type) else type(obj)
    return [(k.__module__, k.__qualname__) for k in kind.__mro__]


def readable_parts(obj: Any) -> dict[str, Any]:
    """What the checks read of an object that cannot cross: an exception's arguments and plain attributes,
    a server's ``url``, a client's ``is_closed()``."""
    plain = (str, int, float, bool, type(None))
    parts: dict[str, Any] = {}
    if isinstance(obj, BaseException):
        parts["args"] = [a if isinstance(a, plain) else repr(a)[:200] for a in obj.args]
    for name, value in list(getattr(obj, "__dict__", {}).items())[:50]:
        if isinstance(value, plain):
            parts[name] = value
    if isinstance(getattr(obj, "url", None), str):
        parts["url"] = obj.url
    closed = getattr(obj, "is_closed", None)
    if callable(closed):
        with contextlib.suppress(Exception):
            parts["closed"] = bool(closed())
    return parts


def figure_parts(figure: Any) -> list[dict[str, Any]]:
    """A Figure as the data of its axes: labels, ticks and bars."""
    from matplotlib.container import BarContainer

    axes = []
    for ax in figure.axes:
        ticks = {axis: [float(x) for x in getattr(ax, f"{axis}axis").get_majorticklocs()] for axis in ("x", "y")}
        labels = {axis: [t.get_text() for t in getattr(ax, f"{axis}axis").get_majorticklabels()] for axis in ("x", "y")}
        containers = [
            {
                "orientation": str(c.orientation),
                "label": str(c.get_label()),
                "patches": [
                    (float(p.get_x()), float(p.get_y()), float(p.get_width()), float(p.get_height())) for p in c.patches
                ],
                "values": [float(v) for v in list(c.datavalues)],  # type: ignore[arg-type]
            }
            for c in ax.containers
            if isinstance(c, BarContainer)
        ]
        texts = (ax.get_title(), ax.get_xlabel(), ax.get_ylabel())
        axes.append({"texts": texts, "ticks": ticks, "labels": labels, "bars": containers})
    return axes


def figure_again(parts: list[dict[str, Any]], as_axes: bool) -> Any:
    """In the grader: the learner's Figure drawn again from its parts (or its first Axes, if that was given)."""
    from matplotlib.figure import Figure

    figure = Figure()
    for part in parts:
        ax = figure.add_subplot()
        for bars in part["bars"]:
            for (x, y, width, height), value in zip(bars["patches"], bars["values"], strict=False):
                if bars["orientation"] == "horizontal":
                    ax.barh(y + height / 2, value, height=height, left=x, label=bars["label"])
                else:
                    ax.bar(x + width / 2, value, width=width, bottom=y, label=bars["label"])
        regroup_bars(ax, [len(bars["patches"]) for bars in part["bars"]], [b["label"] for b in part["bars"]])
        ax.set_xticks(part["ticks"]["x"], part["labels"]["x"])
        ax.set_yticks(part["ticks"]["y"], part["labels"]["y"])
        title, xlabel, ylabel = part["texts"]
        ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    return figure.axes[0] if as_axes and figure.axes else figure


def regroup_bars(ax: Any, sizes: list[int], labels: list[str]) -> None:
    """One BarContainer per series, as the learner drew them (each bar above was drawn alone)."""
    from matplotlib.container import BarContainer

    singles = list(ax.containers)
    ax.containers.clear()
    for size, label in zip(sizes, labels, strict=False):
        taken, singles = singles[:size], singles[size:]
        if taken:
            patches = [patch for single in taken for patch in single.patches]
            merged = BarContainer(patches, orientation=taken[0].orientation, label=label)
            merged.datavalues = [value for single in taken for value in single.datavalues]
            ax.containers.append(merged)


def standing_in(kinds: list[tuple[str, str]], text: str, parts: dict[str, Any]) -> Any:
    """In the grader: what stands for an object that could not cross: of the same name, and an exception of the
    nearest allowed kind if it was one; it says its ``repr`` and keeps the plain ``parts``."""
    base: type = StandIn
    for module, name in kinds:
        if allowed(module, name):
            found = getattr(sys.modules.get(module) or importlib.import_module(module), name)
            if isinstance(found, type) and issubclass(found, BaseException):
                base = found
            break
    name = kinds[0][1].rsplit(".", 1)[-1] if kinds else "object"
    methods = {"__repr__": lambda self: text, "is_closed": lambda self: parts.get("closed", True)}
    kind: Any = type(name, (base,), methods)
    obj = kind.__new__(kind)
    if isinstance(obj, BaseException):
        obj.args = tuple(parts.get("args", ()))
    if not str(parts.get("url", "http://")).startswith(("http://", "https://")):
        del parts["url"]  # the checks ask a server over HTTP, never urllib's file:// or ftp://
    for key, value in parts.items():
        if key not in ("args", "closed"):
            with contextlib.suppress(Exception):
                object.__setattr__(obj, key, value)
    return obj


class StandIn:
    """The base of what stands for a learner's object that cannot cross into the grader."""


def load_answers(payload: str) -> dict[str, Any]:
    """The learner's answers, unpickled with nothing but ``allowed`` classes and the stand-ins."""

    class Answers(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            if not allowed(module, name):
                raise pickle.UnpicklingError(f"{module}.{name} is not allowed in answers")
            return getattr(sys.modules.get(module) or importlib.import_module(module), name)

    if len(payload) > ANSWERS_LIMIT:
        raise ValueError(f"the answers are too big to judge ({len(payload):,} characters)")
    values = Answers(io.BytesIO(base64.b64decode(payload, validate=True))).load()
    if not isinstance(values, dict) or not all(isinstance(k, str) for k in values):
        raise ValueError("the answers are not a dict of names")
    return values


def check_parameters(exercise: str) -> list[str]:
    """The names of the answers that the exercise's check takes."""
    check = importlib.import_module(f"agentlab.exercises.ex{exercise}").check
    kinds = (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
    return [name for name, p in inspect.signature(check).parameters.items() if p.kind not in kinds]


def judge_answers(exercise: str, payload: str | None) -> dict[str, Any]:
    """In the grader: the verdict of the exercise's check on the learner's answers, as the check's MIME has it."""
    from agentlab.exercises import Feedback

    module = importlib.import_module(f"agentlab.exercises.ex{exercise}")
    if payload is None:
        return {"exercise": exercise, "passed": None, "messages": []}
    try:
        feedback = module.check(**load_answers(payload))
    except Exception as exc:  # a strange answer must not hide the verdict: it is a failed check
        feedback = Feedback(False, (f"the check could not judge your answers: {type(exc).__name__}: {exc}"[:300],))
    return {"exercise": exercise, "passed": bool(feedback.passed), "messages": [str(m) for m in feedback.messages]}
