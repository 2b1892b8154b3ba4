"""What adversarial probes found (issue 11): the offline server stays linear, bounded and responsive whatever a
client sends, refuses bad settings at start, and never writes a traceback for a client's mistake."""

from __future__ import annotations

import argparse
import ast
import asyncio
import gc
import json
import re
import socket
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from agentlab.offline import LatencyModel, OfflineServer, ServerConfig, config_from_env, start
from agentlab.offline.arithmetic import parse_infix
from agentlab.offline.config import FaultPlan
from agentlab.offline.model import choose_tools, planned_turns, respond
from agentlab.offline.serve import add_serve_arguments, serve_command
from agentlab.tools.math import MATH_TOOLS

TOOLS = [t.schema() for t in MATH_TOOLS]
OFFLINE = Path(__file__).resolve().parents[2] / "agentlab" / "offline"


def seconds_to_answer(prompt: str) -> float:
    """The best of three: the machine is shared, and only the best time says what the work costs."""
    times = []
    for _ in range(3):
        started = time.perf_counter()
        respond([{"role": "user", "content": prompt}], TOOLS, True)
        planned_turns(prompt, TOOLS, True)
        times.append(time.perf_counter() - started)
    return min(times)


@pytest.mark.parametrize("unit", ["1+", "1*", "-", "(", "1 "])
def test_the_model_reads_hostile_prompts_in_linear_time(unit: str) -> None:
    small, large = seconds_to_answer(unit * 600 + "1"), seconds_to_answer(unit * 9_600 + "1")
    print(f"\n{unit!r} x 600: {small * 1000:.1f} ms, x 9,600: {large * 1000:.1f} ms")
    assert large < 40 * max(small, 2e-3)  # 16x the input: quadratic would be 256x
    assert seconds_to_answer(unit * 40_000 + "1") < 2.0


def test_the_infix_parser_walks_its_symbols_once() -> None:
    """Below the model's caps too: parse_chain used to copy what was left at every operator (quadratic)."""

    def best(terms: int) -> float:
        symbols: list[str | float] = [1.0, "+"] * terms + [1.0]
        times = []
        gc.disable()  # the collector's passes over a growing tree are not the parser's work
        try:
            for _ in range(5):
                started = time.process_time()  # this process's CPU: a busy neighbour process does not count
                parse_infix(symbols)
                times.append(time.process_time() - started)
        finally:
            gc.enable()
        return min(times)

    small, large = best(1_000), best(16_000)
    print(f"\n1,000 terms: {small * 1000:.1f} ms, 16,000 terms: {large * 1000:.1f} ms")
    assert large < 80 * small  # 16x the input: linear is 16x, quadratic 256x; a loaded machine's noise fits between


def test_a_long_sum_gets_a_polite_answer_not_a_hang() -> None:
    turn = respond([{"role": "user", "content": "What is " + "1+" * 40_000 + "1?"}], TOOLS, True)
    assert "too long" in turn.text and not turn.calls


async def time_requests(server: OfflineServer, hostile: bytes) -> tuple[float, float, int]:
    """(seconds for a normal request alone, seconds for one sent while ``hostile`` is in flight, its status)."""
    normal = json.dumps({"model": "gpt-5-mini", "input": "What is 2 + 3?"})
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:

        async def post(data: bytes | str) -> tuple[int, float]:
            started = time.perf_counter()
            async with session.post(server.base_url + "/responses", data=data) as response:
                await response.read()
                return response.status, time.perf_counter() - started

        async def in_flight() -> int:
            async with session.get(server.url + "/offline/stats") as response:
                return int((await response.json())["in_flight"])

        alone = min([(await post(normal))[1] for _ in range(3)])
        heavy = asyncio.create_task(post(hostile))
        while not await in_flight():  # each look is a round trip: until the server's handler has the 4 MB
            continue
        assert not heavy.done(), "the hostile request was over before the normal one was sent: nothing was tested"
        status, during = await post(normal)
        assert status == 200
        hostile_status, _ = await heavy
        return alone, during, hostile_status


@pytest.mark.parametrize("unit", ["1+", "[a=", "-"])
async def test_a_normal_request_is_answered_while_a_4mb_hostile_prompt_is_in_flight(unit: str) -> None:
    prompt = unit * (4_000_000 // len(unit))
    hostile = json.dumps({"model": "gpt-5-mini", "input": prompt, "tools": TOOLS}).encode()
    with start(ServerConfig(LatencyModel(time_scale=0.01))) as server:
        alone, during, status = await time_requests(server, hostile)
    print(
        f"\n{len(hostile) / 1e6:.1f} MB of {unit!r}: normal alone {alone * 1000:.0f} ms, during {during * 1000:.0f} ms"
    )
    assert status == 200
    assert during <= max(0.5, 5 * alone)


async def test_a_list_in_required_with_a_duration_marker_is_a_400_not_a_500() -> None:
    tool = {**TOOLS[0], "parameters": {"type": "object", "properties": {"a": {}}, "required": [["a"]]}}
    body = {"model": "gpt-5-mini", "input": "[duration=1] What is 2 + 3?", "tools": [tool]}

    async def send(url: str) -> tuple[int, Any]:
        async with aiohttp.ClientSession() as session, session.post(url, json=body) as response:
            return response.status, await response.json()

    with start(ServerConfig(LatencyModel(time_scale=0.01))) as server:
        status, answer = await send(server.base_url + "/responses")
    assert status == 400, answer
    assert answer["error"]["param"] == "tools[0].parameters.required"


def test_tool_descriptions_do_not_stay_in_memory() -> None:
    """Distinct 1 MB descriptions, one request each: what the model keeps afterwards stays bounded."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(40):
            tool = {**TOOLS[0], "name": "helper", "description": f"Adds {i} " + "x" * 1_000_000}
            assert choose_tools([tool])
            del tool
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    print(f"\n40 distinct 1 MB descriptions: {kept / 1e6:.1f} MB kept")
    assert kept < 5e6


@pytest.mark.parametrize(
    ("environ", "flags", "words"),
    [
        ({"AGENTLAB_TIME_SCALE": "inf"}, [], "time_scale"),
        ({"AGENTLAB_TIME_SCALE": "nan"}, [], "time_scale"),
        ({}, ["--time-scale", "-5"], "time_scale"),
        ({}, ["--fault-rate", "7"], "rate"),
        ({}, ["--base-latency", "-3"], "base"),
        ({}, ["--jitter", "2"], "jitter"),
        ({}, ["--per-token", "nan"], "per_output_token"),
        ({}, ["--batch-seconds", "inf"], "batch_seconds"),  # issue 24 #16: each of these once served
        ({}, ["--batch-seconds", "nan"], "batch_seconds"),
        ({}, ["--batch-seconds", "-3"], "batch_seconds"),
        ({}, ["--batch-seconds", "0"], "batch_seconds"),
        ({}, ["--rpm", "9" * 400], "a number of 400 digits"),
        ({"AGENTLAB_TPM": "9" * 400}, [], "tpm"),
    ],
)
def test_bad_settings_are_refused_at_start(
    environ: dict[str, str], flags: list[str], words: str, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    assert serve_command(parser.parse_args(["--port", "0", *flags])) == 2
    message = capsys.readouterr().err
    assert message.startswith("error: ") and words in message.lower() and len(message.splitlines()) == 1, message


def test_bad_settings_in_code_are_refused_too() -> None:
    with pytest.raises(ValueError, match="time_scale"):
        LatencyModel(time_scale=float("inf"))
    with pytest.raises(ValueError, match="rate"):
        FaultPlan(rate=-0.1)
    with pytest.raises(ValueError, match="AGENTLAB_TIME_SCALE"):
        config_from_env({"AGENTLAB_TIME_SCALE": "nan"})


def read_until_closed(conn: socket.socket) -> tuple[bytes, float]:
    started, reply = time.perf_counter(), b""
    while chunk := conn.recv(65536):
        reply += chunk
    return reply, time.perf_counter() - started


def test_a_slow_client_cannot_hold_a_connection_open() -> None:
    with start(ServerConfig(LatencyModel(time_scale=0.01), read_timeout=0.5)) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as headers_only:
            headers_only.sendall(b"POST /v1/responses HTTP/1.1\r\nHost: x\r\n")
            reply, waited = read_until_closed(headers_only)
            assert reply == b"" and waited < 5, "the server kept waiting for the rest of the headers"
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as slow_body:
            slow_body.sendall(b"POST /v1/responses HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
            reply, waited = read_until_closed(slow_body)
        head, _, body = reply.decode().partition("\r\n\r\n")
        assert head.startswith("HTTP/1.1 408") and waited < 5, reply
        assert json.loads(body)["error"]["code"] == "request_timeout"


def serve_process(*flags: str) -> tuple[subprocess.Popen[str], int]:
    command = [sys.executable, "-m", "agentlab", "serve", "--port", "0", "--time-scale", "0.01", *flags]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = process.stdout.readline() if process.stdout else ""
    return process, int(line.strip().rsplit(":", 1)[1].split("/")[0])


def test_a_malformed_chunked_body_writes_one_line_to_stderr_not_a_traceback() -> None:
    process, port = serve_process()
    try:
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
                conn.sendall(b"POST /v1/responses HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
                assert re.match(rb"HTTP/1\.[01] 400 ", conn.recv(100))
    finally:
        process.terminate()
        _, err = process.communicate(timeout=20)
    print(f"\nstderr after 3 malformed chunked bodies ({len(err)} bytes):\n{err}")
    assert "Traceback" not in err and len(err.splitlines()) <= 3


def test_serve_refuses_an_unknown_flag() -> None:
    command = [sys.executable, "-m", "agentlab", "serve", "--port", "0", "--no-such-flag", "5"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _, err = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail("`serve --no-such-flag 5` started a server instead of refusing the flag")
    assert process.returncode == 2 and "unrecognized arguments: --no-such-flag 5" in err


def test_offline_functions_stay_short() -> None:
    """The rule CI keeps (a module is one concept, whatever its length): no function over 50 lines."""
    too_long = []
    for path in sorted(OFFLINE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > 50:
                    too_long.append(f"{path.name}: {node.name}() is {length} lines")
    assert not too_long, too_long


def test_the_offline_server_uses_only_public_aiohttp_names() -> None:
    """No ``_default_expect_handler``, no ``site._server``: private names change without notice between releases."""
    private = []
    for path in sorted(OFFLINE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("aiohttp"):
                private += [f"{path.name}: {a.name}" for a in node.names if a.name.startswith("_")]
            if isinstance(node, ast.Attribute) and node.attr in ("_server", "_runner", "_app"):
                private.append(f"{path.name}: .{node.attr}")
    assert not private, private
