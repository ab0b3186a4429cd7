"""What one tool call returns, and how the policy sees it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ToolResult:
    """What one tool call produced.

    ``stdout`` is the printed text (its head when ``truncated``); ``error`` the last line of the
    traceback (``"ZeroDivisionError: division by zero"``) or a sandbox message (timeout, output
    limit, crash), None on success; ``timed_out`` says the wall-clock limit was hit.
    """

    stdout: str
    error: str | None = None
    timed_out: bool = False
    truncated: bool = False

    def render(self) -> str:
        """The text the model sees: stdout, then the error line if any."""
        parts = [self.stdout.rstrip("\n")] if self.stdout.strip() else []
        if self.truncated:
            parts.append("...[output truncated]")
        if self.error:
            parts.append(self.error)
        return "\n".join(parts)
