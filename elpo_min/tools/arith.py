"""The toy world's tool: pure integer arithmetic, evaluated in-process.

Error lines read like Python's own (``SyntaxError: unmatched ')'``), so a call that raises looks
the same as under the Python sandbox. A subprocess per call (about 12 ms) would dominate a CPU
training step, and the toy never needs more than ``+ - * // %``.
"""

from __future__ import annotations

import ast
import operator

from .result import ToolResult

BINARY_OPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
UNARY_OPS = {ast.USub: operator.neg, ast.UAdd: operator.pos}


def _evaluate(node: ast.AST, max_digits: int) -> int:
    """The integer value of an arithmetic expression tree; anything else raises TypeError."""
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in BINARY_OPS:
        left = _evaluate(node.left, max_digits)
        right = _evaluate(node.right, max_digits)
        value = BINARY_OPS[type(node.op)](left, right)
        if len(str(abs(value))) > max_digits:
            raise OverflowError(f"result has more than {max_digits} digits")
        return value
    if isinstance(node, ast.UnaryOp) and type(node.op) in UNARY_OPS:
        return UNARY_OPS[type(node.op)](_evaluate(node.operand, max_digits))
    raise TypeError(f"unsupported expression: {ast.dump(node)[:40]}")


def safe_arith(code: str, max_digits: int = 64) -> ToolResult:
    """Evaluate pure integer arithmetic (``+ - * // %``, parentheses) in-process.

    Errors read like Python's (``SyntaxError: ...``, ``ZeroDivisionError: ...``), as under the
    Python sandbox; anything else (names, calls, floats, ``**``) is an error and never runs.
    """
    try:
        tree = ast.parse(code.strip(), mode="eval")
        return ToolResult(stdout=f"{_evaluate(tree.body, max_digits)}\n")
    except SyntaxError as e:
        return ToolResult(stdout="", error=f"SyntaxError: {e.msg}")
    except Exception as e:
        # the message is the tool's output, as the last line of a traceback would be
        return ToolResult(stdout="", error=f"{type(e).__name__}: {e}")


def run_arith(codes: list[str], histories: list | None = None) -> list[ToolResult]:
    """The toy's tool: :func:`safe_arith` on each snippet (no state, so no histories)."""
    return [safe_arith(code) for code in codes]
