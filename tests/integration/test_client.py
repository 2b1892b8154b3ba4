"""Backend selection, one client per event loop, loop hygiene and run_sync."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap

import httpx
import openai
import pytest

from agentlab import Agent, ConfigurationError, default_client, make_client, run_sync, settings
from agentlab.errors import translate_error
from agentlab.tools.math import MATH_TOOLS

FAKE_KEY = "sk-test-" + "A1b2C3d4E5f6G7h8I9j0" * 2


def run_script(code: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONASYNCIODEBUG"}
    env["PYTHONWARNINGS"] = "default"
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120, env=env
    )


def test_offline_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGENTLAB_BACKEND", raising=False)
    assert settings.backend() == "offline"


def test_unknown_backend_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTLAB_BACKEND", "anthropic")
    with pytest.raises(ConfigurationError, match="use 'offline'"):
        settings.backend()


def test_openai_backend_without_a_key_says_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTLAB_BACKEND", "openai")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="set OPENAI_API_KEY"):
        make_client()


async def test_no_key_in_reprs_or_error_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)

    client = make_client(backend="openai")
    assert client.api_key == FAKE_KEY  # the key is really there to leak
    agent = Agent(name="x", instructions="", tools=MATH_TOOLS, client=client)
    for text in (repr(client), repr(agent), str(agent)):
        assert FAKE_KEY not in text and "sk-test" not in text
    # A server may echo the key it refused; the BackendError that a learner prints must not.
    echo = f"Incorrect API key provided: {FAKE_KEY}."
    response = httpx.Response(401, request=httpx.Request("POST", "https://api.openai.com/v1/responses"))
    error = translate_error(openai.AuthenticationError(echo, response=response, body={"message": echo}), client)
    assert "Check OPENAI_API_KEY" in str(error) and error.status_code == 401
    assert FAKE_KEY not in str(error) and "sk-…" + FAKE_KEY[-4:] in str(error)
    await client.close()


def test_one_client_per_loop_closed_when_the_loop_ends() -> None:
    seen = []

    async def grab() -> None:
        first = default_client()
        assert default_client() is first
        seen.append(first)

    asyncio.run(grab())
    asyncio.run(grab())
    assert seen[0] is not seen[1]
    assert seen[0].is_closed() and seen[1].is_closed()


def test_twenty_asyncio_runs_leave_no_loop_errors() -> None:
    proc = run_script(
        """
        import asyncio, logging, warnings
        logging.basicConfig(level=logging.WARNING)
        warnings.simplefilter("always")
        from agentlab import Agent, run_concurrent
        from agentlab.tools.math import MATH_TOOLS
        agent = Agent(name="calc", instructions="", tools=MATH_TOOLS)
        for i in range(20):
            result = asyncio.run(agent.run(f"What is {i} + 1?"))
            assert result.output_text.endswith(f"{i + 1}."), result.output_text
        for i in range(3):
            asyncio.run(run_concurrent(agent, ["What is 1 + 2?"] * 5))
        print("ok")
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
    for bad in ("Event loop is closed", "Task exception was never retrieved", "Unclosed", "Traceback"):
        assert bad not in proc.stderr, proc.stderr
    assert proc.stderr.strip() == ""


def test_run_sync_in_a_script_and_inside_a_running_loop() -> None:
    agent = Agent(name="calc", instructions="", tools=MATH_TOOLS)
    assert run_sync(agent.run("What is 2 + 3?")).output_text.endswith("5.")

    async def inside_a_loop() -> str:
        # what a Jupyter cell does: asyncio.run would raise here, run_sync uses a worker thread
        coro = agent.run("What is 4 + 4?")
        with pytest.raises(RuntimeError, match="running event loop"):
            asyncio.run(coro)
        coro.close()  # it never ran; closing it avoids a "never awaited" warning
        return run_sync(agent.run("What is 4 + 4?")).output_text

    assert asyncio.run(inside_a_loop()).endswith("8.")


def test_the_offline_server_starts_once_per_process_on_first_use() -> None:
    result = run_script("""
        import threading
        import agentlab.client as client
        from agentlab import Agent, offline_server, run_sync
        from agentlab.tools.math import MATH_TOOLS

        assert client._server is None, "importing agentlab starts nothing"
        agent = Agent(name="calc", instructions="", tools=MATH_TOOLS)
        print(run_sync(agent.run("What is 2 + 3?")).output_text)
        first = offline_server()
        for _ in range(3):
            run_sync(agent.run("What is 1 + 1?"))
        servers = [t for t in threading.enumerate() if t.name == "agentlab-offline-server"]
        print(offline_server() is first, len(servers))
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["2 + 3 = 5.", "True 1"]


async def test_the_default_client_uses_openais_aiohttp_transport() -> None:
    from openai import DefaultAioHttpClient, DefaultAsyncHttpxClient

    client = default_client()
    assert isinstance(client._client, DefaultAioHttpClient)
    assert not isinstance(client._client, DefaultAsyncHttpxClient)
    assert client.max_retries == 2


async def test_make_client_over_the_in_process_transport_starts_no_server(monkeypatch: pytest.MonkeyPatch) -> None:
    import agentlab.client as client_module
    from agentlab.offline import transport

    monkeypatch.delenv("AGENTLAB_OFFLINE_URL", raising=False)
    monkeypatch.setattr(client_module, "_server", None)  # as in a fresh process: no server started yet
    client = make_client(http_client=httpx.AsyncClient(transport=transport()))
    agent = Agent(name="calc", instructions="", tools=MATH_TOOLS, client=client)
    assert (await agent.run("What is 6 * 7?")).output_text == "6 * 7 = 42."
    assert str(client.base_url) == "http://offline.invalid/v1/" and client_module._server is None
    await client.close()
