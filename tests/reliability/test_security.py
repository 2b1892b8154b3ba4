"""Security: loopback by default, no key in reprs, logs or notebooks, no eval, Authorization ignored."""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
from pathlib import Path

import pytest
from openai import AsyncOpenAI

import agentlab.tools
import agentlab.tools.math
from agentlab import Agent, make_client, run_concurrent
from agentlab.offline import start
from agentlab.offline.background import add_serve_arguments
from agentlab.tools.math import MATH_TOOLS

FAKE_KEY = "sk-proj-" + "Zx9" * 12
KEY_PATTERN = re.compile(r"sk-[A-Za-z0-9_-]{16,}")
ROOT = Path(__file__).resolve().parents[2]


def test_the_server_binds_to_loopback_by_default() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    assert parser.parse_args([]).host == "127.0.0.1"
    with start() as server:
        assert server.host == "127.0.0.1"


def test_no_key_in_reprs_of_client_agent_results_and_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)

    async def main() -> list[str]:
        real = make_client(backend="openai")
        agent = Agent(name="calc", instructions="", tools=MATH_TOOLS, client=real)
        offline_agent = Agent(name="calc", instructions="", tools=MATH_TOOLS)
        batch = await run_concurrent(offline_agent, ["What is 1 + 1?"])
        texts = [repr(real), repr(agent), str(agent), repr(batch[0]), str(batch.report), batch.report._repr_html_()]
        await real.close()
        return texts

    for text in asyncio.run(main()):
        assert FAKE_KEY not in text and not KEY_PATTERN.search(text)


def test_no_key_in_logs_even_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    with start() as server, caplog.at_level(logging.DEBUG):

        async def main() -> None:
            async with AsyncOpenAI(base_url=server.base_url, api_key=FAKE_KEY) as client:
                agent = Agent(name="calc", instructions="", tools=MATH_TOOLS, client=client)
                await agent.run("What is 2 + 3?")

        asyncio.run(main())
    print(f"\n{len(caplog.records)} log records at DEBUG, key found: {FAKE_KEY in caplog.text}")
    assert caplog.records, "the check saw the client's debug logs"
    assert FAKE_KEY not in caplog.text


def test_no_key_in_notebook_outputs() -> None:
    notebooks = list((ROOT / "notebooks").rglob("*.ipynb"))
    assert notebooks
    leaks = [p.name for p in notebooks if KEY_PATTERN.search(p.read_text())]
    print(f"\nscanned {len(notebooks)} notebooks: {len(leaks)} with a key")
    assert leaks == []


@pytest.mark.parametrize("tool", MATH_TOOLS, ids=lambda t: t.name)
def test_math_tools_never_evaluate_their_arguments(tool: agentlab.tools.Tool) -> None:
    attack = '{"a": "__import__(\'os\').system(\'id\')", "b": 1}'
    output = asyncio.run(tool.call(attack))
    assert output.startswith("error: ") and "must be number" in output


def test_tool_sources_hold_no_eval_or_exec() -> None:
    for module in (agentlab.tools, agentlab.tools.math):
        code = re.sub(r'""".*?"""', "", inspect.getsource(module), flags=re.S)
        assert not re.search(r"\b(eval|exec)\(", code)
