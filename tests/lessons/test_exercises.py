"""Exercise checks: each passes on its solution and fails on the untouched exercise, with specific feedback.

Two layers:

- fast unit tests call each ``agentlab.exercises.exNN.check`` directly on handmade answers (good, wrong, and
  placeholders such as ``...`` or ``None``);
- slow tests (``-m slow``, still run by default) execute every untouched exercise in ``notebooks/`` in a fresh
  kernel at ``AGENTLAB_TIME_SCALE=0.05`` and read what its ``check(...)`` cells show, beside what the solution's
  check cells show (stored, and compared with a fresh run by nbval; see ``stored_or_executed``).
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import os
import pkgutil
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

import agentlab.exercises
from agentlab.errors import BackendError, ConversationTimeout
from agentlab.exercises import Feedback, check, hints
from agentlab.records import BatchReport, ConversationTiming, Fulfilled, Rejected, RunResult, Span, Usage

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
PAIRS = [
    (exercise, NOTEBOOKS / "solutions" / exercise.name.replace("_exercise", "_solution"))
    for exercise in sorted((NOTEBOOKS / "exercises").glob("*_exercise.ipynb"))
]
# A check id is "NN" or, for a second task of the same exercise, "NNb" (check("04b", figure=fig)).
MODULES = sorted(m.name[2:] for m in pkgutil.iter_modules(agentlab.exercises.__path__) if m.name.startswith("ex"))
assert len(PAIRS) >= 6 and len(MODULES) >= len(PAIRS), "an exercise, a solution and a check per lesson"  # never vacuous


# -- The notebooks, run for real ----------------------------------------------------------------------------


def execute(path: Path) -> nbformat.NotebookNode:
    """Run a notebook top to bottom in a fresh python3 kernel, in its own folder, at the test time scale."""
    notebook: nbformat.NotebookNode = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
    env = {**os.environ, "AGENTLAB_TIME_SCALE": "0.05", "AGENTLAB_BACKEND": "offline"}
    env.pop("OPENAI_API_KEY", None)
    client = NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute(env=env)
    return notebook


def stored_or_executed(solution: Path) -> nbformat.NotebookNode:
    """The solution's stored outputs, when nbval compares its check cells; else the solution, run afresh.

    The README's test line runs every solution under nbval, which fails unless a fresh run shows what is stored:
    reading the stored ✓ here is as strong as running the solution a second time, at no cost. A check cell that
    nbval does not compare (tagged ``nbval-ignore-output``) gets the fresh run.
    """
    notebook: nbformat.NotebookNode = nbformat.read(solution, as_version=4)  # type: ignore[no-untyped-call]
    checks = [c for c in notebook.cells if c.cell_type == "code" and c.source.lstrip().startswith("check(")]
    if any("nbval-ignore-output" in c.metadata.get("tags", []) for c in checks):
        return execute(solution)
    return notebook


def shown_by_checks(notebook: nbformat.NotebookNode) -> list[str]:
    """Everything each ``check(...)`` cell displayed (its text and its HTML), one string per check cell."""
    shown = []
    for cell in notebook.cells:
        if cell.cell_type == "code" and cell.source.lstrip().startswith("check("):
            parts = [str(o.get("text", "")) for o in cell.outputs]
            parts += [str(value) for o in cell.outputs for value in o.get("data", {}).values()]
            shown.append("\n".join(parts))
    assert shown, "the notebook has no cell that starts with check(...)"
    return shown


def stderr_of(notebook: nbformat.NotebookNode) -> list[str]:
    return [
        str(o.get("text", ""))
        for cell in notebook.cells
        if cell.cell_type == "code"
        for o in cell.outputs
        if o.get("output_type") == "stream" and o.get("name") == "stderr"
    ]


@pytest.mark.slow
@pytest.mark.parametrize(("exercise", "solution"), PAIRS, ids=[p[0].name[:2] for p in PAIRS])
def test_check_passes_on_the_solution_and_fails_on_the_untouched_exercise(exercise: Path, solution: Path) -> None:
    assert solution.exists(), f"{exercise.name} has no solution {solution.name}"
    untouched, solved = execute(exercise), stored_or_executed(solution)
    for passed, failed in zip(shown_by_checks(solved), shown_by_checks(untouched), strict=True):
        assert "✓" in passed and "✗" not in passed, passed
        assert "✗" in failed and "✓" not in failed, failed
    assert not stderr_of(solved) and not stderr_of(untouched)


# -- Every check module -------------------------------------------------------------------------------------


def test_there_is_a_check_module_for_every_exercise_notebook() -> None:
    for exercise, _ in PAIRS:
        assert exercise.name[:2] in MODULES, f"{exercise.name} has no agentlab/exercises/ex{exercise.name[:2]}.py"
        for cell in nbformat.read(exercise, as_version=4).cells:  # type: ignore[no-untyped-call]
            if cell.cell_type == "code" and cell.source.lstrip().startswith("check("):
                exercise_id = cell.source.split('"')[1]
                assert exercise_id in MODULES, f"{exercise.name} checks {exercise_id!r}, which has no module"


@pytest.mark.parametrize("exercise", MODULES)
def test_placeholders_ask_to_fill_in_and_none_says_what_gives_none(exercise: str) -> None:
    module = importlib.import_module(f"agentlab.exercises.ex{exercise}")
    names = [
        p.name
        for p in inspect.signature(module.check).parameters.values()
        if p.kind is p.KEYWORD_ONLY or p.kind is p.POSITIONAL_OR_KEYWORD
    ]
    feedback = check(exercise, **dict.fromkeys(names, ...))
    assert isinstance(feedback, Feedback)
    assert not feedback.passed and "fill in" in feedback.messages[0], feedback
    assert "fill in" in check(exercise).messages[0]
    # None is no placeholder (the TODO cells hold `...`): it came from a line that gave back nothing
    feedback = check(exercise, **dict.fromkeys(names, None))
    assert not feedback.passed and "is None" in feedback.messages[0] and "fill in" not in feedback.messages[0]


@pytest.mark.parametrize("exercise", MODULES)
def test_hints_are_progressive(exercise: str) -> None:
    view = hints(exercise)
    assert 2 <= len(view.items) <= 4
    assert view._repr_html_().count("<details>") == len(view.items)
    assert str(view).startswith("Hint 1: ")


def test_feedback_renders_as_text_and_html() -> None:
    feedback = Feedback(False, ("a <b>", "c"))
    assert str(feedback).startswith("✗ not yet")
    assert "&lt;b&gt;" in feedback._repr_html_()
    assert "✓" in Feedback(True)._repr_html_()
    with pytest.raises(ValueError, match="no exercise"):
        check("99")


# -- Handmade answers for 01-03 -----------------------------------------------------------------------------


def run(prompt: str, start: float, duration: float) -> RunResult:
    """A RunResult as ``await agent.run(prompt)`` returns it, with chosen start and end times."""
    messages = [{"role": "user", "content": prompt}, {"type": "message", "role": "assistant", "content": "ok"}]
    return RunResult("ok", messages, (), Usage(), 2, start, start + duration)


PROMPTS = ["a [duration=3]", "b [duration=2]", "c [duration=1]"]
SERIAL = [run("a [duration=3]", 0, 3), run("b [duration=2]", 3, 2), run("c [duration=1]", 5, 1)]
CONCURRENT = [run("a [duration=3]", 0, 3), run("b [duration=2]", 0, 2), run("c [duration=1]", 0, 1)]


def message(feedback: Feedback) -> str:
    assert not feedback.passed, feedback
    return feedback.messages[0]


def test_01_passes_when_the_total_is_about_the_sum() -> None:
    feedback = check("01", prompts=PROMPTS, results=SERIAL, total=6.05)
    assert feedback.passed
    assert "about the sum of the durations (3.00 s + 2.00 s + 1.00 s = 6.00 s): good" in feedback.messages[0]


def test_01_catches_missing_awaits() -> None:
    async def pending() -> None: ...

    coroutines = [pending() for _ in PROMPTS]
    try:
        assert "`results` holds coroutine objects" in message(check("01", results=coroutines, total=0.001))
        assert "await agent.run(prompt)" in message(check("01", results=coroutines, total=0.001))
    finally:
        for coroutine in coroutines:
            coroutine.close()


def test_01_catches_overlap_a_bad_clock_and_wrong_types() -> None:
    assert "overlapped" in message(check("01", prompts=PROMPTS, results=CONCURRENT, total=3.1))
    assert "start the clock just before" in message(check("01", prompts=PROMPTS, results=SERIAL, total=20.0))
    assert "order of the prompts" in message(check("01", prompts=PROMPTS, results=SERIAL[::-1], total=6.0))
    assert "3 results for 2 prompts" in message(check("01", prompts=PROMPTS[:2], results=SERIAL, total=6.0))
    assert "`total` should be the elapsed seconds" in message(check("01", results=SERIAL, total="6"))
    assert "`total` should be the elapsed seconds" in message(check("01", results=SERIAL, total=True))
    assert "list of the RunResults" in message(check("01", results=["42", "42", "42"], total=6.0))
    assert "list of the RunResults" in message(check("01", results=SERIAL[0], total=6.0))


def test_02_says_serial_when_the_batch_took_the_sum() -> None:
    text = message(check("02", prompts=PROMPTS, results=SERIAL))
    assert text.startswith("your batch took 6.00 s, about the sum of durations (6.00 s): did you await inside")
    assert "Create all the tasks first, then gather them." in text


def test_02_passes_at_about_the_longest_and_checks_order() -> None:
    feedback = check("02", prompts=PROMPTS, results=CONCURRENT)
    assert feedback.passed and "about the longest conversation (3.00 s)" in feedback.messages[0]
    assert "2.00x faster" in feedback.messages[0]
    assert "not in the order of the prompts" in message(check("02", prompts=PROMPTS, results=CONCURRENT[::-1]))
    assert "3 results for 2 prompts" in message(check("02", prompts=PROMPTS[:2], results=CONCURRENT))


def test_02_spots_half_done_work_and_unawaited_tasks() -> None:
    partly = [run("a [duration=3]", 0, 3), run("b [duration=2]", 0, 2), run("c [duration=1]", 3, 1)]
    assert "well above the longest conversation (3.00 s)" in message(check("02", prompts=PROMPTS, results=partly))

    async def pending() -> None: ...

    coroutines = [pending() for _ in PROMPTS]
    try:
        assert "await asyncio.gather(*tasks)" in message(check("02", prompts=PROMPTS, results=coroutines))
    finally:
        for coroutine in coroutines:
            coroutine.close()
    assert "list of RunResults" in message(check("02", prompts=PROMPTS, results=[1, 2, 3]))


FAULTY = ["a", "b [fault=500]", "c", "d [fault=500]"]


def settled(order: list[int] | None = None) -> list[Any]:
    outcomes: list[Any] = [
        Fulfilled(run("a", 0, 1)),
        Rejected(RuntimeError("500")),
        Fulfilled(run("c", 0, 1)),
        Rejected(RuntimeError()),
    ]
    return [outcomes[i] for i in order] if order else outcomes


def test_03_passes_with_settled_outcomes_or_gathered_exceptions() -> None:
    feedback = check("03", prompts=FAULTY, outcomes=settled(), failed=[1, 3])
    assert feedback.passed and "failed: [1, 3]" in feedback.messages[0]
    gathered = [run("a", 0, 1), RuntimeError(), run("c", 0, 1), RuntimeError()]
    assert check("03", prompts=FAULTY, outcomes=gathered, failed=[1, 3]).passed
    assert check("03", prompts=FAULTY, outcomes=tuple(settled()), failed=(3, 1)).passed


def test_03_checks_count_order_and_indices() -> None:
    assert "3 outcomes for 4 prompts" in message(check("03", prompts=FAULTY, outcomes=settled()[:3], failed=[1, 3]))
    assert "outcome 0 answers another prompt" in message(
        check("03", prompts=FAULTY, outcomes=settled([2, 1, 0, 3]), failed=[1, 3])
    )
    assert "your `failed` is [1]" in message(check("03", prompts=FAULTY, outcomes=settled(), failed=[1]))
    assert "not their indices" in message(check("03", prompts=FAULTY, outcomes=settled(), failed=["b [fault=500]"]))
    assert "a list of indices" in message(check("03", prompts=FAULTY, outcomes=settled(), failed=1))
    unchanged = ["a", "b", "c", "d [fault=500]"]
    assert "prompts with a fault marker are [3]" in message(
        check("03", prompts=unchanged, outcomes=settled(), failed=[1, 3])
    )
    assert "neither a result nor a failure" in message(
        check("03", prompts=FAULTY, outcomes=[1, 2, 3, 4], failed=[1, 3])
    )
    assert "pass the exercise's list of `prompts`" in message(check("03", prompts="a", outcomes=settled(), failed=[1]))


# -- Handmade answers for 04-06 -----------------------------------------------------------------------------


def report_of(*durations: float, wall: float) -> BatchReport:
    """A run_concurrent report whose conversations all start at 0 and last ``durations``."""
    timings = tuple(ConversationTiming(i, 0.0, d, "fulfilled", turns=2) for i, d in enumerate(durations))
    return BatchReport("run_concurrent", wall, timings)


def test_04_accepts_figures_rounded_to_two_decimals_even_below_one() -> None:
    report = report_of(0.455, 0.3, 0.2, wall=1.0)  # efficiency 45.5%: 1% of it is less than the rounding
    assert check("04", report=report, speedup=0.95, efficiency=0.45).passed  # seen in CI: it was refused
    assert not check("04", report=report, speedup=0.95, efficiency=0.44).passed


def test_04_compares_the_learners_figures_with_the_report() -> None:
    report = report_of(3, 2, 1, wall=4.0)  # speedup 6 / 4 = 1.50x, efficiency 3 / 4 = 75%
    feedback = check("04", report=report, speedup=1.5, efficiency=0.75)
    assert feedback.passed and feedback.messages[0] == "speedup 1.50x ✓ (the report says 1.50x)"
    assert "the conversations added up to 1.50x the wall time" in feedback.messages[2]
    assert "took 1.33x as long as its longest" in feedback.messages[2]
    swapped = message(check("04", report=report, speedup=4 / 6, efficiency=0.75))  # wall / sum, upside down
    assert swapped == (
        "speedup: you have 0.67x (that is wall / sum, upside down); the report has 1.50x: "
        "speedup = sum of durations / wall"
    )
    wrong = check("04", report=report, speedup=1.5, efficiency=1.0)
    assert not wrong.passed and "100% is the ideal" in wrong.messages[1]
    assert "pass the batch's `report`" in message(check("04", report=None, speedup=2.0, efficiency=1.0))
    assert "`efficiency` should be a number" in message(check("04", report=report, speedup=2.0, efficiency="100%"))


BOUNDED_PROMPTS = ["a", "b [fault=hang]", "c", "d"]


def bounded(starts: tuple[float, float, float], order: tuple[int, ...] = (0, 1, 2, 3)) -> list[Any]:
    """Outcomes as run_bounded gives them: 1 s conversations a, c, d starting at ``starts``, b timed out."""
    outcomes: list[Any] = [
        Fulfilled(run("a", starts[0], 1)),
        Rejected(ConversationTimeout(2.0)),
        Fulfilled(run("c", starts[1], 1)),
        Fulfilled(run("d", starts[2], 1)),
    ]
    return [outcomes[i] for i in order]


def test_05_passes_with_a_limit_a_timeout_and_the_input_order() -> None:
    feedback = check("05", prompts=BOUNDED_PROMPTS, outcomes=bounded((0, 0, 1)), max_concurrency=2)
    assert feedback.passed, feedback
    assert "the hung prompt [1] timed out; at most 2 ran at once (limit 2)" in feedback.messages[0]


def test_05_catches_no_limit_no_timeout_and_a_changed_order() -> None:
    all_at_once = message(check("05", prompts=BOUNDED_PROMPTS, outcomes=bounded((0, 0, 0)), max_concurrency=2))
    assert all_at_once.startswith("up to 3 conversations ran at the same time; the limit is 2")
    no_timeout = bounded((0, 0, 1))
    no_timeout[1] = Rejected(BackendError("the model server did not answer in time"))
    assert "not cut by a deadline of yours" in message(check("05", prompts=BOUNDED_PROMPTS, outcomes=no_timeout))
    too_short = bounded((0, 0, 1))
    too_short[0] = Rejected(ConversationTimeout(0.5))
    text = message(check("05", prompts=BOUNDED_PROMPTS, outcomes=too_short))
    assert "your timeout (0.5 s) also cut 1 healthy conversation(s), [0]" in text and "timeout=?" not in text
    sorted_by_end = bounded((0, 0, 1), order=(0, 1, 3, 2))
    assert message(check("05", prompts=BOUNDED_PROMPTS, outcomes=sorted_by_end)).startswith(
        "outcome 2 answers another prompt"
    )
    assert "one outcome per prompt" in message(check("05", prompts=BOUNDED_PROMPTS, outcomes=bounded((0, 0, 1))[:3]))


def with_tool(prompt: str, start: float) -> RunResult:
    """A conversation whose one tool call ran from ``start`` for 1 s."""
    result = run(prompt, start - 0.1, 1.2)
    return dataclasses.replace(result, spans=(Span("tool", "slow_sum", start, start + 1.0),))


def test_06_tells_overlapping_tools_from_a_frozen_loop() -> None:
    overlapping = [with_tool(p, 0.1) for p in "abcd"]
    feedback = check("06", results=overlapping, total=1.3)
    assert feedback.passed and "4 tool calls of about 1.00 s each (4.00 s in all) waited within 1.00 s" in str(feedback)
    staircase = [with_tool(p, 0.1 + i) for i, p in enumerate("abcd")]
    text = message(check("06", results=staircase, total=4.3))
    assert "for 4.00 s at least one of its 4 tool calls was running, about 4 × 1.00 s" in text
    assert "The tool still blocks the event loop" in text
    started_together = [  # every call started at once, then each blocked in turn: overlap alone would pass
        dataclasses.replace(r, spans=(Span("tool", "slow_sum", 0.1, 1.1 + i),)) for i, r in enumerate(overlapping)
    ]
    assert "The tool still blocks the event loop" in message(check("06", results=started_together, total=4.3))
    no_tools = [run(p, 0, 1) for p in "abcd"]
    assert "no tool was called" in message(check("06", results=no_tools, total=1.0))


def test_07_counts_the_429s_its_own_budget_sent_again() -> None:
    """A budget that met a 429 waits and sends the call again (a ``wait "retry"`` span): that batch met the limit."""
    prompts = ["a", "b"]
    paced = [run(p, 0, 1) for p in prompts]
    retried = [paced[0], dataclasses.replace(paced[1], spans=(Span("wait", "retry", 0.2, 0.5),))]
    assert check("07", prompts=prompts, outcomes=paced).passed
    assert "1 had calls refused and sent again (1…)" in message(check("07", prompts=prompts, outcomes=retried))
