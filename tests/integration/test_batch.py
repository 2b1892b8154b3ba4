"""The Batch API's building blocks, on files that the offline model answers: in order, nothing lost, never raising."""

from __future__ import annotations

import json
import random
from pathlib import Path

import aiohttp

from agentlab import Agent, BackendError, Fulfilled, Rejected
from agentlab.batch import parse_results, read_batch_results, request_body, write_batch_jsonl
from agentlab.offline import LatencyModel, ServerConfig, start
from agentlab.tools.math import MATH_TOOLS

AGENT = Agent(name="calc", instructions="Use the tools.", tools=MATH_TOOLS)
PROMPTS = ["What is 7?", "Hello!", "What is 12 + 30?", "What is 2 * 21?", "What is 5?", "What is 9?", "What is 1?"]


async def answered_lines(lines: list[dict[str, object]]) -> list[dict[str, object]]:
    """Each request line answered by the offline /v1/responses, in the Batch API's output line format."""

    async def answer_all(base_url: str) -> list[dict[str, object]]:
        async with aiohttp.ClientSession() as session:
            results = []
            for line in lines:
                async with session.post(base_url + "/responses", json=line["body"]) as r:
                    response = {"status_code": r.status, "request_id": "req_1", "body": await r.json()}
                results.append({"id": "batch_req", "custom_id": line["custom_id"], "response": response, "error": None})
            return results

    with start(ServerConfig(LatencyModel(time_scale=0.001))) as server:
        return await answer_all(server.base_url)


async def test_write_and_read_back_a_batch(tmp_path: Path) -> None:
    requests = write_batch_jsonl(AGENT, PROMPTS, tmp_path / "requests.jsonl")
    lines = [json.loads(line) for line in requests.read_text().splitlines()]
    assert [line["custom_id"] for line in lines] == [f"conv-{i}" for i in range(len(PROMPTS))]
    assert lines[2]["url"] == "/v1/responses" and lines[2]["body"]["input"] == [{"role": "user", "content": PROMPTS[2]}]
    assert lines[2]["body"] == request_body(AGENT, PROMPTS[2]) and lines[2]["body"]["tools"][0]["name"] == "sum_numbers"

    results = await answered_lines(lines)
    results[3] = {"id": "x", "custom_id": "conv-3", "response": None, "error": {"code": "batch_expired"}}
    results[5]["response"]["body"]["output"] = "not a list"  # type: ignore[index]  # a body that is not a Response
    del results[4]  # one line never came back
    results.append({"id": "y", "custom_id": "someone-else", "response": None, "error": None})  # not ours
    random.Random(1).shuffle(results)
    text = "".join(json.dumps(r) + "\n" for r in results)
    cut = json.dumps(next(r for r in results if r["custom_id"] == "conv-6"))
    text = text.replace(cut, cut[: len(cut) // 2])  # one line cut off in the middle
    path = tmp_path / "results.jsonl"
    path.write_text(text)

    outcomes = read_batch_results(path, len(PROMPTS))
    assert [o.status for o in outcomes] == ["fulfilled", "fulfilled", "fulfilled"] + ["rejected"] * 4
    assert isinstance(outcomes[0], Fulfilled) and outcomes[0].value.output_text == "7."
    assert isinstance(outcomes[1], Fulfilled) and outcomes[1].value.output_text.startswith("Hello!")
    first_turn = outcomes[2]
    assert isinstance(first_turn, Fulfilled)
    assert [m["type"] for m in first_turn.value.messages] == ["reasoning", "function_call"]
    reasons = [str(o.reason) if isinstance(o, Rejected) else "" for o in outcomes]
    assert "batch_expired" in reasons[3]
    assert "no line for this conversation" in reasons[4]
    assert "not a Response" in reasons[5] and "output" in reasons[5]
    assert "not valid JSON" in reasons[6]
    assert all(isinstance(o.reason, BackendError) for o in outcomes if isinstance(o, Rejected))


def test_parse_results_never_raises_on_junk() -> None:
    junk = "\n".join(["[]", "null", "{", '{"custom_id": 3}', '{"custom_id": "a", "response": "x"}', "\x00"])
    found = parse_results(junk)
    assert list(found) == ["a"] and isinstance(found["a"], BackendError)
