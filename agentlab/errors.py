"""The errors that agentlab raises: one small tree under ``AgentLabError``.

Catch ``AgentLabError`` to catch them all. Each message says what went wrong and what to do.
``translate_error`` at the bottom is the one place where the openai client's exceptions become ours.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import openai

if TYPE_CHECKING:
    from openai import AsyncOpenAI


class AgentLabError(Exception):
    """The root of every error that agentlab raises on purpose."""


class ConfigurationError(AgentLabError, ValueError):
    """The library was set up or called in a way that cannot work (a missing key, a bad tool, …)."""


class PromptError(ConfigurationError, TypeError):
    """A prompt, or a batch of prompts, has a shape that no model call can take (also a ``TypeError``)."""


# A tool that cannot be built (no type hint, a *args parameter, …) is a ConfigurationError: a mistake in how the
# library is used. A tool that fails while a conversation runs goes back to the model as "error: …" text, which
# is the model's to handle. So no ToolError of its own was ever raised; the name stays for code that catches it.
ToolError = ConfigurationError


class MaxTurnsExceeded(AgentLabError):
    """The model kept asking for tools past ``max_turns``. ``transcript`` holds the partial conversation."""

    def __init__(self, max_turns: int, transcript: list[dict[str, Any]]) -> None:
        super().__init__(
            f"the conversation did not finish within max_turns={max_turns}; "
            "raise Agent.max_turns or check why the model keeps calling tools "
            f"(the partial transcript has {len(transcript)} items: see .transcript)"
        )
        self.max_turns = max_turns
        self.transcript = transcript


class ConversationTimeout(AgentLabError, TimeoutError):
    """One conversation took longer than the runner's ``timeout``."""

    def __init__(self, timeout: float) -> None:
        super().__init__(
            f"the conversation took longer than timeout={timeout:g} s and was cancelled; "
            "raise the timeout, or look for a hung request"
        )
        self.timeout = timeout


class BackendError(AgentLabError):
    """The model server answered with an error (or could not be reached) after the client's own retries."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


# -- The one place where the openai client's exceptions become ours ---------------------------------------
#
# Like httpx's table from httpcore's exceptions to its own, every failure of a model call is translated here,
# so that each message says what the server answered and what to do. Keys are exact statuses, or a class of
# them (400 for any other 4xx, 500 for any 5xx). {after} says how many retries were made, and by whom: the
# client, or under a budget the budget (the client then does not retry).

STATUS_ADVICE: dict[int, str] = {
    401: "the model server refused the API key (401): {detail}. Check OPENAI_API_KEY.",
    404: "the model server has no such model or endpoint (404): {detail}. Check the model name and base_url.",
    413: "the model server refused a request that is too large (413): {detail}. Send a shorter conversation.",
    429: (
        "the model server rate-limited this conversation (429) {after}: {detail} "
        "Send fewer at once with run_bounded(max_concurrency=...)."
    ),
    400: "the model server rejected the request ({status}): {detail}",
    500: (
        "the model server failed ({status}) {after}: {detail} "
        "Try again later; run_settled keeps the other conversations' results."
    ),
}

API_KEY = re.compile(r"sk-[A-Za-z0-9_\-]{8,}")  # what an OpenAI key looks like, in a server's message

REFUSED = (
    "nothing is listening at {base_url} (connection refused); is the model server running? "
    "For the offline server, let agentlab start it (do not pass base_url by hand)."
)
UNREACHABLE = (
    "could not reach the model server at {base_url} ({kind}: {error}); is it running? "
    "For the offline server, let agentlab start it (do not pass base_url by hand)."
)
TIMED_OUT = (
    "the model server did not answer in time (client timeout {timeout}, {retries} retries); raise the "
    "client's timeout, or use run_bounded(timeout=...) to cut slow conversations."
)


def translate_error(exc: openai.APIError, client: AsyncOpenAI, *, budget_retries: int | None = None) -> BackendError:
    """The ``BackendError`` for one failed model call: a status, a refused connection, or a time-out.

    Under a budget the client does not retry; the budget does, and ``budget_retries`` says how often it did.
    """
    by, retries = ("client", client.max_retries) if budget_retries is None else ("budget", budget_retries)
    if isinstance(exc, openai.APIStatusError):
        return BackendError(explain_status(exc, by, retries), status_code=exc.status_code)
    # Checked before the time-out: with nothing listening, the transport reports a *connect time-out* whose
    # cause is a ConnectionRefusedError, at once. Refused means "not running"; only a real wait is "slow".
    if caused_by(exc, ConnectionRefusedError):
        return BackendError(REFUSED.format(base_url=client.base_url))
    if isinstance(exc, openai.APITimeoutError):
        return BackendError(TIMED_OUT.format(timeout=client.timeout, retries=f"the {by}'s {retries}"))
    return BackendError(UNREACHABLE.format(base_url=client.base_url, kind=type(exc).__name__, error=exc))


def explain_status(exc: openai.APIStatusError, by: str, retries: int) -> str:
    """The advice of ``STATUS_ADVICE`` for this status, filled in with what the server said and who retried."""
    status = exc.status_code
    template = STATUS_ADVICE.get(status) or STATUS_ADVICE[500 if status >= 500 else 400]
    if retries:
        after = f"after the {by}'s {retries} retries"
    elif by == "client":
        after = "(the client does not retry: max_retries=0)"
    else:
        after = "(the budget did not retry it)"
    body = exc.body
    detail = str(body.get("message", exc.message)) if isinstance(body, dict) else exc.message
    return template.format(status=status, after=after, detail=mask_keys(detail))


def mask_keys(text: str) -> str:
    """``"… key sk-proj-abc…xyz9 …"`` → ``"… key sk-…xyz9 …"``: a server may echo the key; our messages never do."""
    return API_KEY.sub(lambda match: f"sk-…{match.group(0)[-4:]}", text)


def caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    """Whether ``kind`` is anywhere in the chain of causes of ``exc`` (each link at most once)."""
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        if isinstance(link, kind):
            return True
        seen.add(id(link))
        link = link.__cause__ or link.__context__
    return False
