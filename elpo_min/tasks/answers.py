"""Is a model's final answer equal to the gold one? math-verify underneath.

``\\boxed{\\dfrac{3}{4}}``, ``0.75``, ``18.00``, ``1,234``, ``5 dollars`` and ``x = 5`` all count;
malformed text is a wrong answer, never an exception. :func:`answer_outcome` also says *why* one
failed (no answer, unparseable, wrong), which evaluation reports.
"""

from __future__ import annotations

import threading


def _timeout() -> int | None:
    """math-verify's timeouts use SIGALRM, which only the main thread may set."""
    return 5 if threading.current_thread() is threading.main_thread() else None


def _parse(text: str) -> list:
    from math_verify import parse

    # what a final answer needs; it bounds math-verify's work
    text = text[-1000:]
    found = parse(text, parsing_timeout=_timeout())
    if not found and "\\" in text and "$" not in text:
        # bare LaTeX (\dfrac{3}{4}) is only found inside $...$
        found = parse(f"${text}$", parsing_timeout=_timeout())
    return found


def answer_outcome(prediction: str | None, gold: str) -> str:
    """``"correct"``, ``"no answer"``, ``"unparseable"`` or ``"wrong"``; never raises."""
    if prediction is None or not prediction.strip():
        return "no answer"
    try:
        from math_verify import verify

        found = _parse(prediction.replace("\\!", ""))
        if not found:
            return "unparseable"
        return "correct" if verify(_parse(gold), found, timeout_seconds=_timeout()) else "wrong"
    except Exception:
        # math-verify on pathological text: an answer we cannot read
        return "unparseable"


def check_answer(prediction: str, gold: str) -> bool:
    """Is the model's final answer mathematically equal to ``gold``? Never raises."""
    return answer_outcome(prediction, gold) == "correct"
