"""The Batch API pieces, on files that the offline model answers: in order, nothing lost."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path

import aiohttp

from agentlab import Agent, BackendError, Fulfilled, Rejected
from agentlab.batch import read_batch_results, write_batch_jsonl
from agentlab.offline import LatencyModel, ServerConfig, start
from agentlab.tools.math import MATH_TOOLS

AGENT = Agent(name="calc", instructions="Use the tools.", tools=MATH_TOOLS)


def test_write_and_read_back_a_batch(tmp_path: Path) -> None:
    prompts = ["What is 7?", "Hello!", "What is 12 + 30?", "What is 2 * 21?", "What is 5?"]
    requests = write_batch_jsonl(AGENT, prompts, tmp_path / "requests.jsonl")
    lines = [json.loads(line) for line in requests.read_text().splitlines()]
    assert [line["custom_id"] for line in lines] == [f"conv-{i}" for i in range(5)]
    assert lines[2]["url"] == "/v1/responses" and lines[2]["body"]["input"] == [{"role": "user", "content": prompts[2]}]
    assert lines[2]["body"]["tools"][0]["name"] == "sum_numbers"

    async def answer_all(base_url: str) -> list[dict[str, object]]:
        async with aiohttp.ClientSession() as session:
            results = []
            for line in lines:
                async with session.post(base_url + "/responses", json=line["body"]) as r:
                    response = {"status_code": r.status, "body": await r.json()}
                results.append({"id": "batch_req", "custom_id": line["custom_id"], "response": response, "error": None})
            return results

    with start(ServerConfig(LatencyModel(time_scale=0.001))) as server:
        results = asyncio.run(answer_all(server.base_url))
    results[3] = {"id": "x", "custom_id": "conv-3", "response": None, "error": {"code": "batch_expired"}}
    del results[4]  # one line never came back
    random.Random(1).shuffle(results)
    path = tmp_path / "results.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in results))

    outcomes = read_batch_results(path, len(prompts))
    assert [o.status for o in outcomes] == ["fulfilled", "fulfilled", "fulfilled", "rejected", "rejected"]
    assert isinstance(outcomes[0], Fulfilled) and outcomes[0].value.output_text == "7."
    assert isinstance(outcomes[1], Fulfilled) and outcomes[1].value.output_text.startswith("Hello!")
    first_turn = outcomes[2]
    assert isinstance(first_turn, Fulfilled)
    assert [m["type"] for m in first_turn.value.messages] == ["reasoning", "function_call"]
    assert isinstance(outcomes[3], Rejected) and "batch_expired" in str(outcomes[3].reason)
    assert isinstance(outcomes[4], Rejected) and isinstance(outcomes[4].reason, BackendError)
    assert "no line for this conversation" in str(outcomes[4].reason)
