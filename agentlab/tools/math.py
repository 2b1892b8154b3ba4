"""The math tools that the lessons give the model. Plain arithmetic on numbers: nothing is ever ``eval``-ed.

Each one is a normal function (so you can call and test it directly) wrapped by ``tool``.
"""

from __future__ import annotations

from agentlab.tools.function_tool import Tool, tool

__all__ = ["sum_numbers", "multiply_numbers", "subtract_numbers", "divide_numbers", "MATH_TOOLS"]


@tool
def sum_numbers(a: float, b: float) -> float:
    """Add two numbers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b


@tool
def multiply_numbers(a: float, b: float) -> float:
    """Multiply two numbers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a * b


@tool
def subtract_numbers(a: float, b: float) -> float:
    """Subtract b from a.

    Args:
        a: The number to subtract from.
        b: The number to subtract.
    """
    return a - b


@tool
def divide_numbers(a: float, b: float) -> float:
    """Divide a by b.

    Args:
        a: The dividend.
        b: The divisor (not zero).
    """
    if b == 0:
        raise ZeroDivisionError("cannot divide by zero")
    return a / b


MATH_TOOLS: tuple[Tool, ...] = (sum_numbers, multiply_numbers, subtract_numbers, divide_numbers)
