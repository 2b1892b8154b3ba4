"""THE BASELINE: a minimal hand-written Responses API tool loop, as most people write it.

No framework: ``client.responses.create``, run the function calls, send the outputs back, repeat. It is what
agentlab is compared against, so it is written the idiomatic way, with no handicap.
"""

from __future__ import annotations

import json
from typing import Any

from openai import AsyncOpenAI

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": "sum_numbers",
        "description": "Add two numbers.",
        "strict": True,
        "parameters": {
            "type": "object",
            "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
            "required": ["a", "b"],
            "additionalProperties": False,
        },
    }
]


def sum_numbers(a: float, b: float) -> float:
    return a + b


async def raw_conversation(client: AsyncOpenAI, prompt: str, model: str = "gpt-5-mini") -> str:
    items: list[Any] = [{"role": "user", "content": prompt}]
    for _ in range(10):
        response = await client.responses.create(model=model, input=items, tools=TOOLS)  # type: ignore[arg-type]
        items += response.output
        calls = [item for item in response.output if item.type == "function_call"]
        if not calls:
            return response.output_text
        for call in calls:
            result = sum_numbers(**json.loads(call.arguments))
            items.append({"type": "function_call_output", "call_id": call.call_id, "output": str(result)})
    raise RuntimeError("no answer after 10 turns")
