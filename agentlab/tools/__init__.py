"""Tools: plain Python functions that the model may call (``function_tool.py``), the threads that sync tools
run in (``threads.py``), and the lessons' math tools (``math.py``). This file only re-exports, as httpx's does.
"""

from agentlab.tools.function_tool import Tool, format_value, tool

__all__ = ["Tool", "tool", "format_value"]
