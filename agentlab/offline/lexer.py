"""Prompt text → tokens for the arithmetic parser: numbers, operator symbols and words.

Number words become numbers ("twenty-one" → 21.0, "three hundred and five" → 305.0), operator words become
symbols ("plus" → "+", "multiplied by" → "*"), and control markers such as ``[duration=5]`` are not words
at all, so a marker's number is never read as part of the sum.
"""

from __future__ import annotations

import itertools
import re
from typing import TypeAlias

from agentlab.offline.markers import blank_markers

__all__ = ["Tokens", "tokenize"]

Tokens: TypeAlias = list[str | float]
HYPHENATED = re.compile(r"\b(twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)-(?=[a-z])")
TOKEN = re.compile(r"\d+(?:\.\d+)?|\.\d+|[a-z]+|[-+*/×÷(),]", re.IGNORECASE)
INFIX_WORDS = {"plus": "+", "minus": "-", "times": "*", "x": "*", "over": "/", "×": "*", "÷": "/"}
UNITS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
        "sixteen seventeen eighteen nineteen".split()
    )
}
TENS = {w: 10 * i for i, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()) if i > 1}


def tokenize(text: str, limit: int | None = None) -> Tokens:
    """Words, symbols and numbers; number words become numbers ("twenty-one" → 21.0). Markers are not words.

    With a ``limit``, it reads at most ``limit + 1`` words: enough for the caller to see the text is too long.
    """
    text = blank_markers(text).lower().replace("multiplied by", "times").replace("divided by", "over")
    found = TOKEN.finditer(HYPHENATED.sub(r"\1 ", text))  # "twenty-one" → "twenty one"
    words = [match.group() for match in itertools.islice(found, None if limit is None else limit + 1)]
    tokens: Tokens = []
    i = 0
    while i < len(words):
        number, i = read_number_words(words, i)
        if number is not None:
            tokens.append(number)
            continue
        word = words[i]
        i += 1
        if word[0].isdigit() or word[0] == ".":
            tokens.append(float(word))
        elif word == "negative":
            tokens.append("-")
        else:
            tokens.append(INFIX_WORDS.get(word, word))
    return tokens


def read_number_words(words: list[str], i: int) -> tuple[float | None, int]:
    """Read "three hundred and five" starting at ``words[i]``; (None, i) when there is no number word."""
    total = current = 0
    found = False
    while i < len(words):
        word = words[i]
        if word in UNITS:
            current += UNITS[word]
        elif word in TENS:
            current += TENS[word]
        elif word == "hundred" and found:
            current *= 100
        elif word == "thousand" and found:
            total, current = total + current * 1000, 0
        elif word == "and" and found and i + 1 < len(words) and (words[i + 1] in UNITS or words[i + 1] in TENS):
            if words[i - 1] not in ("hundred", "thousand"):
                break
        else:
            break
        found = True
        i += 1
    return (float(total + current), i) if found else (None, i)
