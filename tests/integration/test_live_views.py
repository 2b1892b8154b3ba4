"""The live views in a real process: loaded only when a batch asks for one, and drawn in a real kernel as a live
widget that leaves its final HTML in the notebook."""

from __future__ import annotations

import subprocess
import sys

import nbformat
import pytest
from nbclient import NotebookClient


def test_runners_load_no_view_until_a_batch_asks_for_one() -> None:
    code = (
        "import sys, asyncio, agentlab\n"
        "assert 'agentlab.views' not in sys.modules, 'import agentlab loaded the views'\n"
        "from agentlab.tools.math import MATH_TOOLS\n"
        "agent = agentlab.Agent(name='c', instructions='', tools=MATH_TOOLS)\n"
        "asyncio.run(agentlab.run_settled(agent, ['What is 1 + 2?']))\n"
        "assert 'agentlab.views' not in sys.modules, 'a batch without progress loaded them'\n"
        "asyncio.run(agentlab.run_settled(agent, ['What is 1 + 2?'], progress=True))\n"
        "assert 'agentlab.views.live' in sys.modules\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


NOTEBOOK_CELL = """
from agentlab import Agent, run_concurrent
from agentlab.views import {view}
from agentlab.tools.math import MATH_TOOLS
agent = Agent("math", "Use the tools.", tools=MATH_TOOLS, stream=True)
view = {view}(refresh=0.0)
results = await run_concurrent(agent, ["What is 3 + 4?", "What is 6 * 7?"], progress=view)
print(view.renders)
"""


@pytest.mark.timeout(120)
@pytest.mark.parametrize("view", ["Lanes", "ConversationBoard"])
def test_in_a_kernel_a_live_widget_leaves_its_final_html_in_the_notebook(view: str) -> None:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(NOTEBOOK_CELL.format(view=view))])
    NotebookClient(notebook, timeout=90, kernel_name="python3", store_widget_state=False).execute()
    outputs = notebook.cells[0].outputs
    shown = [o for o in outputs if o.output_type == "display_data"]
    assert len(shown) == 1  # one view, updated in place
    data = shown[0].data
    assert "application/vnd.jupyter.widget-view+json" not in data  # the live widget was replaced...
    assert "text/html" in data and "2 done" in data["text/html"]  # ...by its final picture
    assert "← 7" in data["text/html"] and "42" in data["text/html"]
    renders = int("".join(o.text for o in outputs if o.output_type == "stream").split()[-1])
    assert renders > 3  # it was redrawn live while the batch ran
