"""The tool format of chat models: fenced Python blocks inside the model's chat template.

Instruct models know this format from pre-training. A ```` ```python ```` block ends the
assistant's turn, its result comes back inline as an ```` ```output ```` block, and the final
answer is the last ``\\boxed{}`` of a turn without code; that turn ends at end-of-sequence.
What the code prints cannot end the block or forge a turn: see :class:`FencedFormat`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from ..trajectory import TurnFormat, encode_as_text

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


# two backticks that a third follows: the third gets a backslash before it
FENCE = re.compile("``(?=`)")


@dataclass
class FencedFormat(TurnFormat):
    """Fenced TIR inside a chat template; build it with :meth:`for_chat`.

    The tool's output cannot forge the format. In the ```` ```output ```` block's body, a
    backslash goes before every backtick that would be the third in a row (````` ``` ````` reads
    ````` ``\\` `````), so the body holds no fence and the block ends where the format ends it;
    control characters but newline and tab are escaped as a repr writes them (ESC reads
    ``\\x1b``). The body is tokenized without the tokenizer's added tokens wherever it would form
    one (:meth:`~elpo_min.trajectory.TurnFormat.output_ids`): ``<|im_end|>`` printed by the code
    is the characters, never the token that ends a turn, and ``<|im_start|>user`` starts no
    turn. An output with none of these is rendered and tokenized as it always was.
    """

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

    def output_parts(self, output: str, turn_text: str = "") -> tuple[str, str, str]:
        """The output block, framed so that the context reads exactly as the model's own text.

        The canonical text is ``...```\n```output\n...``. A tokenizer may close the code block
        with a token that holds more than the backticks (Qwen's ``"`\n"``); whatever the turn
        wrote after its closing ``` is the start of the opening, and is not written twice.
        """
        after_close = turn_text[turn_text.rfind(self.call_close) + len(self.call_close) :]
        opening, body, closing = super().output_parts(output)
        if self.call_close in turn_text and opening.startswith(after_close):
            opening = opening[len(after_close) :]
        # the body's control characters are escaped already; its fences are escaped here
        return opening, FENCE.sub("``\\\\", body), closing

    def output_ids(self, tokenizer, output: str, turn_text: str = "") -> list[int]:
        """The output block's ids: in one piece, as the text reads, unless the body would form
        an added token that the frame does not hold; then the body is encoded on its own,
        without added tokens. (The frame is text here, and a tokenizer may merge across its
        edges: encoding the body apart always would change the ids of ordinary outputs.)"""
        encode = partial(tokenizer.encode, add_special_tokens=False)
        opening, body, closing = self.output_parts(output, turn_text)
        ids, head, tail = encode(opening + body + closing), encode(opening), encode(closing)
        added = set(tokenizer.get_added_vocab().values()) - {tokenizer.unk_token_id}
        if [i for i in ids if i in added] == [i for i in head + tail if i in added]:
            return ids
        return head + encode_as_text(tokenizer, body) + tail

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
