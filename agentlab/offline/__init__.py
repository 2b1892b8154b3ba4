"""The offline server: a local HTTP server that speaks the OpenAI Responses API with a scripted math model.

``start()`` runs it in a background thread (``with start() as server: ...`` or ``server.stop()``);
``python -m agentlab serve`` runs it in its own process; ``transport()`` answers in this process, with no
socket, for ``httpx.AsyncClient(transport=...)``. Read in this order: ``config.py`` (latency, faults, limits),
``markers.py`` (``[duration=5]``, ``[fault=429]``, …), ``arithmetic.py`` and ``model.py`` (the scripted model),
``responses.py`` (one request in, one Response out, or its events), ``app.py`` (the routes, over HTTP or in
process), ``batches.py`` (files and batches), ``ratelimit.py``, ``proxy.py`` (the real API behind it) and
``serve.py`` (running it).
"""

from agentlab.offline.app import create_app, transport
from agentlab.offline.config import FaultPlan, LatencyModel, ServerConfig, config_from_env
from agentlab.offline.serve import OfflineServer, start, start_process

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
