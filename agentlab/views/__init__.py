"""Views of a run while it happens: the live views of a batch, and the gauges of a rate limit.

- ``live.py``: the bar, the table (``ConversationBoard``) and the ``Lanes``, behind the one ``Progress``
  protocol of ``agentlab.records``; the runners and ``run_batched`` make one from ``progress=...``.
- ``gauges.py``: lesson 07's views of a rate limit: ``ServerMeter``, ``tokens_chart``, ``BudgetGauge``.

The charts of a finished batch are ``agentlab.charts``.
"""

from agentlab.views.gauges import BudgetGauge, ServerMeter, tokens_chart
from agentlab.views.live import ConversationBoard, Lanes, LiveView, Quiet, Row, TqdmProgress, make_progress

__all__ = [
    "BudgetGauge",
    "ConversationBoard",
    "Lanes",
    "LiveView",
    "Quiet",
    "Row",
    "ServerMeter",
    "TqdmProgress",
    "make_progress",
    "tokens_chart",
]
