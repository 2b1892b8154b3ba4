"""The offline server: a local HTTP server that speaks the OpenAI Responses API with a scripted math model.

``start()`` runs it in a background thread (``with start() as server: ...`` or ``server.stop()``);
``python -m agentlab serve`` runs it in its own process. Read in this order: ``markers.py`` (the prompt markers
``[duration=5]``, ``[fault=429]``, …), ``lexer.py``, ``arithmetic.py``, ``planning.py`` and ``model.py`` (the
scripted model), ``validation.py`` and ``answer.py`` (one request in, one Response out), ``latency.py`` (how
long it thinks), ``server.py`` (HTTP), ``serving.py``, ``command.py`` and ``background.py`` (running it).
"""

from agentlab.offline.background import OfflineServer, start, start_process
from agentlab.offline.latency import FaultPlan, LatencyModel, ServerConfig, config_from_env
from agentlab.offline.server import create_app, transport

__all__ = [
    "FaultPlan",
    "LatencyModel",
    "OfflineServer",
    "ServerConfig",
    "config_from_env",
    "create_app",
    "start",
    "start_process",
    "transport",
]
