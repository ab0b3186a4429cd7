"""The tool format of chat models: fenced Python blocks inside the model's chat template.

Instruct models know this format from pre-training. A ```` ```python ```` block ends the
assistant's turn, its result comes back inline as an ```` ```output ```` block, and the final
answer is the last ``\\boxed{}`` of a turn without code; that turn ends at end-of-sequence.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from ..trajectory import TurnFormat

TIR_SYSTEM_PROMPT = (
    "Solve the problem by reasoning step by step and using Python. To run code, write one "
    "```python block and stop; its result comes back in an ```output block. Variables persist "
    "between blocks. Put the final answer in \\boxed{}."
)


def last_boxed(text: str) -> str | None:
    """Contents of the last ``\\boxed{...}`` (braces balanced), or None."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth = 0
    opening = start + len("\\boxed")
    for j in range(opening, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[opening + 1 : j]
    return None


@dataclass
class FencedFormat(TurnFormat):
    """Fenced TIR inside a chat template; build it with :meth:`for_chat`."""

    call_open: str = "```python\n"
    call_close: str = "```"
    answer_open: str = "\\boxed{"
    answer_close: str = "}"
    output_open: str = "\n```output\n"
    output_close: str = "\n```\n"
    system_prompt: str | None = None

    @classmethod
    def for_chat(cls, tokenizer, system_prompt: str = TIR_SYSTEM_PROMPT) -> FencedFormat:
        """The format for this tokenizer, which must have a chat template."""
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError(
                "this tokenizer has no chat template; use an instruct model, set "
                "tokenizer.chat_template, or use the plain toy TurnFormat()"
            )
        return cls(system_prompt=system_prompt)

    def parse(self, text: str) -> tuple[str | None, str | None]:
        block = re.search(r"```python[ \t]*\n(.*?)```", text, re.S)
        return (block.group(1), None) if block else (None, last_boxed(text))

    def turn_ends(self, text: str) -> bool:
        """At a complete python block; an answer turn ends at end-of-sequence instead."""
        code, _ = self.parse(text)
        return code is not None

    def prompt_text(self, tokenizer, question: str) -> str:
        messages = []
        if self.system_prompt:
            messages.append({"role": "system", "content": self.system_prompt})
        messages.append({"role": "user", "content": question})
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def output_text(self, output: str, turn_text: str = "") -> str:
        """The output block, framed so that the context reads exactly as the model's own text.

        The canonical text is ``...```\n```output\n...``. A tokenizer may close the code block
        with a token that holds more than the backticks (Qwen's ``"`\n"``); whatever the turn
        wrote after its closing ``` is the start of the opening, and is not written twice.
        """
        after_close = turn_text[turn_text.rfind(self.call_close) + len(self.call_close) :]
        opening = self.output_open
        if self.call_close in turn_text and opening.startswith(after_close):
            opening = opening[len(after_close) :]
        return opening + output + self.output_close

    def stop_rule(self, tokenizer, end_ids: set[int]) -> Callable[[list[int]], bool]:
        """The turn ends at an end id or where a python block is complete.

        ``` opens a block as well as closing it, so no single token ends a turn. Decoding the
        turn at every token would be slow; it is decoded only where the last token holds a
        backtick, the last character of the close marker.
        """
        stop_ids = set(end_ids)
        pieces = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
        triggers = {i for i, piece in enumerate(pieces) if self.call_close[-1] in piece}

        def stops(sampled: list[int]) -> bool:
            last = sampled[-1]
            if last in stop_ids:
                return True
            return last in triggers and self.turn_ends(tokenizer.decode(sampled))

        return stops
