"""The kernel command of the grader's kernelspec: ask the zygote for a kernel, and stand in for it.

Run by path (``python .../forked_kernel.py SOCKET -f CONNECTION_FILE``), so it imports only the standard
library and starts in milliseconds. The zygote forks a kernel with this process's environment and folder; this
process lives as long as that kernel, exits with its status, and passes on the signals jupyter_client sends.
When jupyter_client kills this process, the zygote sees the connection close and kills the kernel.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
from typing import Any


def main(argv: list[str]) -> int:
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.connect(argv[0])
    stream = connection.makefile("rwb", buffering=0)

    def send(message: dict[str, Any]) -> None:
        stream.write(json.dumps(message).encode() + b"\n")

    def relay(number: int, _frame: Any) -> None:
        send({"signal": number})

    send({"argv": ["ipykernel_launcher", *argv[1:]], "env": dict(os.environ), "cwd": os.getcwd()})
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, relay)
    for line in stream:
        message = json.loads(line)
        if "exit" in message:
            return int(message["exit"])
    return 1  # the zygote went away without a word


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
