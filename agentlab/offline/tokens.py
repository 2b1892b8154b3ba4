"""How many tokens a request costs: one documented rule, for ``usage.input_tokens`` and for rate limits.

Real models count tokens with a tokenizer; about four characters of English make one token. The offline
server uses that rule of thumb on what the model reads, and on nothing else::

    input_tokens = max(1, ceil(len(JSON text of [instructions, input, tools]) / 4))

The JSON text is compact (no spaces after separators) and keeps non-ASCII characters as they are, so a prompt of
400 letters costs about 100 tokens whatever else the body holds (metadata, model name, flags cost nothing).
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["CHARACTERS_PER_TOKEN", "input_tokens"]

CHARACTERS_PER_TOKEN = 4


def input_tokens(body: dict[str, Any]) -> int:
    """The tokens the model reads from a ``/v1/responses`` body: its instructions, input and tools."""
    read = [body.get("instructions"), body.get("input"), body.get("tools")]
    text = json.dumps(read, ensure_ascii=False, separators=(",", ":"), default=str)
    return max(1, math.ceil(len(text) / CHARACTERS_PER_TOKEN))
