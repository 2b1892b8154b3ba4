"""Past one machine: the provider's Batch API, not a home-made cluster.

The Batch API takes a JSONL file of requests and returns files of results within 24 hours, at about half the
price. It fits work that needs no answer now, and it is bounded by the provider, not by Python.

- ``run_batched(agent, prompts, state_path=...)`` runs whole tool-calling conversations through it, one
  batch per turn, and can be resumed after a crash (``run.py``, ``state.py``).
- ``write_batch_jsonl`` and ``read_batch_results`` are its building blocks for one turn (``jsonl.py``).
- ``Price`` / ``PRICES`` / ``BatchedReport`` give the cost of a run, live against batched (``report.py``).
"""

from agentlab.batch.jsonl import parse_results, read_batch_results, request_body, request_line, write_batch_jsonl
from agentlab.batch.report import PRICES, BatchedReport, CostReport, Price, RoundTiming, cost_of
from agentlab.batch.run import SimulatedCrash, crash_at_round, run_batched

__all__ = [
    "PRICES",
    "BatchedReport",
    "CostReport",
    "Price",
    "RoundTiming",
    "SimulatedCrash",
    "cost_of",
    "crash_at_round",
    "parse_results",
    "read_batch_results",
    "request_body",
    "request_line",
    "run_batched",
    "write_batch_jsonl",
]
