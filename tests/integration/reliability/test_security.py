"""Security: the server listens on loopback unless told otherwise (loudly); no API key in reprs, errors, logs or
notebooks; the math tools never evaluate their arguments; the offline server ignores the Authorization header.
"""

from __future__ import annotations

import argparse
import ast
import json
import logging
import os
import re
import socket
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from openai import AsyncOpenAI, DefaultAioHttpClient

import agentlab
from agentlab import Agent, BackendError, Rejected, make_client, run_settled
from agentlab.offline import LatencyModel, OfflineServer, ServerConfig, start_process
from agentlab.offline.serve import add_serve_arguments, serve_command
from agentlab.tools import Tool
from agentlab.tools.math import MATH_TOOLS

FAKE_KEY = "sk-proj-" + "Zx9Qw7" * 8
KEY_PATTERN = re.compile(r"sk-[A-Za-z0-9_-]{16,}")
ROOT = Path(__file__).resolve().parents[3]
PACKAGE = Path(agentlab.__file__).resolve().parent


@pytest.fixture(scope="module")
def server_config() -> ServerConfig:
    return ServerConfig(LatencyModel(time_scale=0.01))


def no_key(text: str) -> bool:
    return FAKE_KEY not in text and not KEY_PATTERN.search(text)


# -- Where the server listens -------------------------------------------------------------------------------


def listening_addresses(port: int) -> set[str]:
    """The addresses with a socket listening on ``port``, read from the kernel's table (Linux)."""
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state != "0A" or int(hex_port, 16) != port or len(address) != width:
                continue
            raw = b"".join(bytes.fromhex(address[i : i + 8])[::-1] for i in range(0, width, 8))
            found.add(socket.inet_ntop(socket.AF_INET if width == 8 else socket.AF_INET6, raw))
    return found


needs_proc = pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's /proc/net/tcp")


@needs_proc
def test_the_thread_server_listens_on_loopback_only(server: OfflineServer) -> None:
    bound = listening_addresses(server.port)
    print(f"\nstart(): host {server.host}, listening on {bound} port {server.port}")
    assert server.host == "127.0.0.1" and server.base_url.startswith("http://127.0.0.1:")
    assert bound == {"127.0.0.1"}


@needs_proc
def test_the_serve_command_listens_on_loopback_by_default() -> None:
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    defaults = parser.parse_args([])
    assert defaults.host == "127.0.0.1" and defaults.allow_remote is False
    process = start_process(time_scale=0.01)  # `python -m agentlab serve --port 0` with the default host
    try:
        bound = listening_addresses(process.port)
    finally:
        process.stop()
    print(f"\nserve defaults: --host {defaults.host}; the process listened on {bound} port {process.port}")
    assert bound == {"127.0.0.1"}


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10"])
def test_a_remote_host_without_allow_remote_is_refused(host: str, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    code = serve_command(parser.parse_args(["--host", host, "--port", "0"]))
    err = capsys.readouterr().err
    print(f"\n--host {host}: exit {code}, stderr {err.strip()!r}")
    assert code == 2
    assert f"--host {host}" in err and "--allow-remote" in err and "other machines" in err


def test_the_command_line_refuses_0000_with_exit_code_2() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "agentlab", "serve", "--host", "0.0.0.0", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    print(f"\npython -m agentlab serve --host 0.0.0.0: exit {proc.returncode}, stderr {proc.stderr.strip()!r}")
    assert proc.returncode == 2
    assert "--allow-remote" in proc.stderr and proc.stdout == ""


@needs_proc
def test_allow_remote_listens_on_all_interfaces_with_a_warning() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agentlab",
            "serve",
            "--host",
            "0.0.0.0",
            "--allow-remote",
            "--port",
            "0",
            "--time-scale",
            "0.01",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready = process.stdout.readline()
        port = int(ready.strip().rsplit(":", 1)[1].split("/")[0])
        bound = listening_addresses(port)
    finally:
        process.terminate()
        _, err = process.communicate(timeout=10)
    print(f"\n--host 0.0.0.0 --allow-remote: {ready.strip()!r}, listening on {bound}; stderr {err.strip()!r}")
    assert bound == {"0.0.0.0"}
    assert err.startswith("warning: ") and "other machines can reach it" in err and "no authentication" in err


# -- No key in reprs, errors, logs and notebooks -------------------------------------------------------------


async def test_no_key_in_reprs_of_client_agent_results_reports_and_errors(
    server: OfflineServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)

    real = make_client(backend="openai")
    assert real.api_key == FAKE_KEY  # the key is there, in the client...
    real_agent = Agent(name="calc", instructions="", tools=MATH_TOOLS, client=real)
    # a run with the key sent to the offline server, and a run whose server is gone (a BackendError)
    keyed = AsyncOpenAI(base_url=server.base_url, api_key=FAKE_KEY, max_retries=0, http_client=DefaultAioHttpClient())
    closed_port = socket.socket()
    closed_port.bind(("127.0.0.1", 0))
    nowhere = AsyncOpenAI(
        base_url=f"http://127.0.0.1:{closed_port.getsockname()[1]}/v1",
        api_key=FAKE_KEY,
        max_retries=0,
        http_client=DefaultAioHttpClient(),
    )
    closed_port.close()
    good = await run_settled(
        Agent(name="calc", instructions="", tools=MATH_TOOLS, client=keyed),
        ["What is 1 + 1?", "What is 2 + 2? [fault=500]"],
    )
    bad = await run_settled(Agent(name="calc", instructions="", tools=MATH_TOOLS, client=nowhere), ["1 + 1"])
    for client in (real, keyed, nowhere):
        await client.close()
    errors = [o.reason for o in [*good, *bad] if isinstance(o, Rejected)]
    assert len(errors) == 2 and all(isinstance(e, BackendError) for e in errors)
    texts = [
        repr(real),
        str(real),
        repr(real_agent),
        str(real_agent),
        repr(good),
        repr(good[0]),
        repr(good[0].value),
        str(good.report),
        repr(good.report),
        good.report._repr_html_(),  # type: ignore[union-attr]
        str(bad.report),
        json.dumps(good[0].value.messages),
    ]  # type: ignore[union-attr]
    for error in errors:
        texts += [str(error), repr(error), "".join(traceback.format_exception(error))]
    texts = texts
    leaks = [text[:80] for text in texts if not no_key(text)]
    print(f"\nreprs, reports, transcripts and error tracebacks checked: {len(texts)}; with the key: {len(leaks)}")
    assert leaks == []


async def conversation_with_the_key(base_url: str) -> None:
    async def main() -> None:
        async with AsyncOpenAI(
            base_url=base_url, api_key=FAKE_KEY, max_retries=1, http_client=DefaultAioHttpClient()
        ) as client:
            assert client.auth_headers == {"Authorization": f"Bearer {FAKE_KEY}"}  # it is sent with each request
            agent = Agent(name="calc", instructions="", tools=MATH_TOOLS, client=client)
            # a retried 429 too, so that the client's retry logging runs
            batch = await run_settled(agent, ["What is 2 + 3?", "What is 4 + 4? [fault=429x1]"])
            assert [o.status for o in batch] == ["fulfilled", "fulfilled"]

    await main()


async def test_no_key_in_any_log_record_at_debug(server: OfflineServer, caplog: pytest.LogCaptureFixture) -> None:
    names = {
        "",
        "openai",
        "openai._base_client",
        "httpx",
        "httpx2",
        "httpcore",
        "aiohttp",
        "aiohttp.client",
        "aiohttp.server",
        "aiohttp.access",
        "aiohttp.internal",
        "aiohttp.web",
        "asyncio",
        "agentlab",
        *logging.root.manager.loggerDict,
    }
    for name in sorted(names):
        caplog.set_level(logging.DEBUG, logger=name or None)
        logger = logging.getLogger(name or None)
        if not logger.propagate:
            logger.addHandler(caplog.handler)
    await conversation_with_the_key(server.base_url)
    text = "\n".join(f"{r.name} {r.getMessage()} {r.args!r} {r.__dict__!r}" for r in caplog.records)
    by_logger = {name: sum(r.name == name for r in caplog.records) for name in sorted({r.name for r in caplog.records})}
    print(f"\n{len(caplog.records)} log records at DEBUG from {by_logger}; key found: {not no_key(text)}")
    assert any(r.name.startswith("openai") for r in caplog.records), "the check saw the client's debug logs"
    assert no_key(text)


SCRIPT = """
import asyncio, logging, sys
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
from tests.integration.reliability.test_security import conversation_with_the_key
asyncio.run(conversation_with_the_key(sys.argv[1]))
"""


def test_no_key_in_the_output_of_a_process_with_openai_log_debug(server: OfflineServer) -> None:
    env = {**os.environ, "OPENAI_LOG": "debug", "PYTHONASYNCIODEBUG": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, server.base_url], capture_output=True, text=True, timeout=120, cwd=ROOT, env=env
    )
    output = proc.stdout + proc.stderr
    print(f"\nOPENAI_LOG=debug: {len(output.splitlines())} lines of output, key found: {not no_key(output)}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "HTTP Request: POST" in output or "Request options" in output, "the process logged its requests"
    assert no_key(output)


def test_no_key_in_notebooks() -> None:
    notebooks = sorted((ROOT / "notebooks").rglob("*.ipynb"))
    leaks = [str(p.relative_to(ROOT)) for p in notebooks if KEY_PATTERN.search(p.read_text(encoding="utf-8"))]
    print(f"\nscanned {len(notebooks)} notebooks (cells and stored outputs): {len(leaks)} with a key {leaks}")
    assert len(notebooks) >= 6
    assert leaks == []


# -- The math tools never evaluate anything ------------------------------------------------------------------

ATTACK = "__import__('os').system('id')"
PAYLOADS = [
    json.dumps({"a": ATTACK, "b": 1}),
    json.dumps({"a": 1, "b": ATTACK}),
    json.dumps({"a": ATTACK, "b": ATTACK}),
    ATTACK,  # not JSON at all
    json.dumps(ATTACK),  # a JSON string, not an object
    json.dumps({"a": 1, "b": 2, ATTACK: 3}),
    json.dumps({"a": {"__class__": ATTACK}, "b": [ATTACK]}),
]


@pytest.mark.parametrize("tool", MATH_TOOLS, ids=lambda t: t.name)
async def test_math_tools_never_evaluate_their_arguments(tool: Tool, monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[Any] = []
    monkeypatch.setattr(os, "system", lambda *a: ran.append(a))
    monkeypatch.setattr(os, "popen", lambda *a, **k: ran.append(a))
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: ran.append(a))
    outputs = [await tool.call(payload) for payload in PAYLOADS]
    print(
        f"\n{tool.name}: {len(PAYLOADS)} injection payloads → {sum(o.startswith('error: ') for o in outputs)} "
        f"'error: …' answers, {len(ran)} commands run; e.g. {outputs[0]!r}"
    )
    assert all(output.startswith("error: ") for output in outputs), outputs
    assert outputs[0] == f"error: {tool.name}: parameter a must be number, got {json.dumps(ATTACK)}"
    assert ran == []


def test_the_tool_and_model_sources_never_call_eval_or_exec() -> None:
    files = sorted((PACKAGE / "tools").rglob("*.py")) + [PACKAGE / "offline" / "model.py"]
    builtins = {"eval", "exec", "compile", "__import__"}  # any mention of these names, called or passed around
    attributes = {"eval", "exec", "literal_eval", "import_module"}  # builtins.eval(...), ast.literal_eval(...)
    found = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Name) and node.id in builtins) or (
                isinstance(node, ast.Attribute) and node.attr in attributes
            ):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {ast.unparse(node)}")
    print(f"\nscanned {len(files)} files for {sorted(builtins | attributes)}: {found or 'none'}")
    assert found == []


# -- The offline server ignores the Authorization header -----------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, f"Bearer {FAKE_KEY}", "Bearer ", "", "garbage", "Basic dXNlcjpwYXNz", "Bearer " + "x" * 4000],
    ids=["none", "a key", "empty bearer", "empty", "garbage", "basic", "4 KB"],
)
async def test_the_offline_server_ignores_the_authorization_header(
    server: OfflineServer, authorization: str | None
) -> None:
    async def go() -> tuple[int, Any]:
        headers = {} if authorization is None else {"Authorization": authorization}
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                server.base_url + "/responses", json={"model": "gpt-5-mini", "input": "What is 2 + 2?"}, headers=headers
            ) as response,
        ):
            return response.status, await response.json(content_type=None)

    status, answer = await go()
    print(f"\nAuthorization header {'absent' if authorization is None else f'of {len(authorization)} chars'}: {status}")
    assert status == 200, answer
    assert answer["output"][-1]["content"][0]["text"] == "2 + 2 = 4."
