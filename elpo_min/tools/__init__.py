"""The tools a policy calls: the toy's arithmetic, and a sandboxed Python interpreter.

A tool is any callable ``tool(codes, histories) -> list[ToolResult]``: one snippet per pending
call of a round, plus the earlier successful snippets of the same trajectory (a tool with state
replays them). The rollout engine renders each :class:`ToolResult` into the text the policy
reads next.

* ``arith``: :func:`run_arith`, the toy's in-process integer arithmetic.
* ``python_sandbox``: :func:`run_python` / :class:`PythonTool`, what real models call for their
  fenced ```python blocks; see its docstring for what each layer of confinement guarantees.
  ``sandbox_child`` is what runs inside the confined process, ``cleanup`` removes its directory
  whatever the code left there.

It sits outside the core because the engine takes whichever tool the task needs; the wiring
(:mod:`elpo_min.launch`) picks it.
"""

from .arith import run_arith, safe_arith
from .python_sandbox import PythonTool, os_layers, run_many, run_python
from .result import ToolResult
