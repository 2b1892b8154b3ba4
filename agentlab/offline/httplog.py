"""What the offline server writes when a client sends broken HTTP: one line on stderr, never a traceback.

aiohttp logs a request it cannot parse (a malformed chunked body, a bad header) with its whole traceback,
500 bytes a request, and a client can send thousands. The mistake is the client's, and the 400 it gets already
says what it was; the server's own log needs only one line, for the person running it.
"""

from __future__ import annotations

import logging
import sys

__all__ = ["ONE_LINE_LOG"]


class OneLine(logging.Formatter):
    """``agentlab offline server: Error handling request from 127.0.0.1: BadHttpMessage: 400, message: ...``."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        error = record.exc_info[1] if record.exc_info else None
        if error is not None:
            message += f": {type(error).__name__}: {error}"
        return "agentlab offline server: " + " ".join(message.split())[:300]


class ToStderr(logging.Handler):
    """Writes to whatever ``sys.stderr`` is now (a test may have swapped it since the server started)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(self.format(record), file=sys.stderr, flush=True)
        except (OSError, ValueError):  # stderr closed: nobody to tell
            pass


def one_line_log() -> logging.Logger:
    """A logger of its own (not registered with ``logging``): the application's log settings stay untouched."""
    log = logging.Logger("agentlab.offline.http", logging.INFO)
    handler = ToStderr()
    handler.setFormatter(OneLine())
    log.addHandler(handler)
    return log


ONE_LINE_LOG = one_line_log()
