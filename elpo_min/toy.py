"""The toy tool-integrated-reasoning world: chain arithmetic that needs the tool.

A problem is a start number and a chain of operations applied left to right::

    Q: 4821 *7 +7710 -5          (prompt, ends with a newline)
    <c>4821*7</c><o>33747</o>     step 1: the policy copies numbers, the tool computes
    <c>33747+7710</c><o>41457</o> step 2
    <c>41457-5</c><o>41452</o>    step 3
    <a>41452</a>                  final answer (not a step)

The policy never does arithmetic itself; it must carry each tool output into the
next call. That gives the two kinds of mistakes ELPO is about:

* **recoverable**: a call that raises (``<c>33747+7710)</c>`` gives a SyntaxError);
  the correct number is still in context, so a retry repairs it;
* **irrecoverable**: a wrong number carried forward (a mis-copied digit); every
  later tool output is wrong, and nothing in context says so.

:func:`first_error_step` is the oracle of the first step whose tool output departs
from the correct computation; :func:`fatal_step` the first *fatal* one (a wrong value
carried forward and never repaired), which is what BEL's t_crit should find. Both are
policy-independent; which departures a given policy cannot recover from is what BEL
estimates.

Data files are JSONL rows ``{"id", "start", "ops": ["*7", "+710", ...], "answer"}`` made by
:func:`generate_problems` (``python -m elpo_min make-data`` rewrites them byte for byte).
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

from .sandbox import safe_arith

CALL_OPEN, CALL_CLOSE = "<c>", "</c>"
OUTPUT_OPEN, OUTPUT_CLOSE = "<o>", "</o>"
ANSWER_OPEN, ANSWER_CLOSE = "<a>", "</a>"
MARKERS = [CALL_OPEN, CALL_CLOSE, OUTPUT_OPEN, OUTPUT_CLOSE, ANSWER_OPEN, ANSWER_CLOSE]
OPS = "+-*"


@dataclass(frozen=True)
class Problem:
    """One chain-arithmetic problem. ``ops`` is a tuple of ``(op, operand)``."""

    start: int
    ops: tuple[tuple[str, int], ...]
    id: str = ""

    @property
    def values(self) -> list[int]:
        """Correct intermediate values v_0 = start, v_i = v_{i-1} op_i operand_i."""
        values = [self.start]
        for op, x in self.ops:
            values.append(values[-1] + x if op == "+" else values[-1] - x if op == "-" else values[-1] * x)
        return values

    @property
    def answer(self) -> int:
        return self.values[-1]

    @property
    def prompt(self) -> str:
        return "Q: " + " ".join([str(self.start)] + [f"{op}{x}" for op, x in self.ops]) + "\n"

    def to_row(self) -> dict:
        return {"id": self.id, "start": self.start, "ops": [f"{op}{x}" for op, x in self.ops], "answer": self.answer}


def generate_problems(n: int, seed: int, min_ops: int = 3, max_ops: int = 6,
                      digits: int = 3, prefix: str = "p", hard_digits: int = 0) -> list[Problem]:
    """Seeded problems: ``min_ops..max_ops`` operations, ``digits``-digit start and
    +/- operands, 1-digit multipliers (2-9), so values stay at most ~10 digits. ``hard_digits`` > 0:
    one random step becomes +/- a ``hard_digits``-digit operand (:func:`hard_step`)."""
    if not 1 <= min_ops <= max_ops:
        raise ValueError(f"need 1 <= min_ops <= max_ops, got {min_ops}, {max_ops}")
    rng = random.Random(seed)
    lo, hi = 10 ** (digits - 1), 10**digits - 1
    problems = []
    for i in range(n):
        ops = []
        for _ in range(rng.randint(min_ops, max_ops)):
            op = rng.choice(OPS)
            ops.append((op, rng.randint(2, 9) if op == "*" else rng.randint(lo, hi)))
        if hard_digits:
            ops[rng.randrange(len(ops))] = (rng.choice("+-"), rng.randint(10 ** (hard_digits - 1), 10**hard_digits - 1))
        problems.append(Problem(rng.randint(lo, hi), tuple(ops), id=f"{prefix}{seed}-{i}"))
    return problems


def chat_question(problem: Problem) -> str:
    """The user message for instruct models (``--chat true``)."""
    return "Apply these operations left to right: " + problem.prompt[3:].strip()


def parse_turn(text: str, call=(CALL_OPEN, CALL_CLOSE), answer=(ANSWER_OPEN, ANSWER_CLOSE)
               ) -> tuple[str | None, str | None]:
    """Split one generated assistant turn into ``(code, answer)``; both None if malformed.

    A call wins over an answer in the same turn (the turn stopped at the call's end).
    """
    for (open_, close), is_code in ((call, True), (answer, False)):
        m = re.search(re.escape(open_) + r"(.*?)" + re.escape(close), text, re.S)
        if m:
            return (m.group(1), None) if is_code else (None, m.group(1))
    return None, None


def check_answer(problem: Problem, answer: str | None) -> bool:
    """Exact integer match; anything that is not an integer is wrong."""
    try:
        return answer is not None and int(answer.strip()) == problem.answer
    except ValueError:
        return False


def first_error_step(problem: Problem, tool_outputs: list[str]) -> int | None:
    """The oracle: 1-based index of the first step whose output departs from the correct
    computation, or None. Step i is correct when its output is the next correct value
    ``v_{done+1}`` (then ``done`` advances); an error followed by a repair still counts."""
    values, done, first = problem.values, 0, None
    for i, out in enumerate(tool_outputs, start=1):
        if done < len(values) - 1 and out.strip() == str(values[done + 1]):
            done += 1
        elif first is None:
            first = i
    return first


def fatal_step(problem: Problem, tool_outputs: list[str]) -> int | None:
    """The first *irrecoverable* step: 1-based index of the first wrong numeric output after
    the last step that advanced the chain. None for a success, a failure whose only mistakes
    were calls that raised (recoverable slips, retried), a wrong value that a later step
    repaired (the chain advanced after it), and a wrong final copy (every step advanced)."""
    values, done, last_advance = problem.values, 0, 0
    for i, out in enumerate(tool_outputs, start=1):
        if done < len(values) - 1 and out.strip() == str(values[done + 1]):
            done, last_advance = done + 1, i
    return next((i for i, out in enumerate(tool_outputs, start=1)
                 if i > last_advance and re.fullmatch(r"-?\d+", out.strip())), None)


def hard_step(problem: Problem) -> int:
    """1-based step with the longest operand (the first of equals): the one ``hard_digits`` made."""
    return max(range(len(problem.ops)), key=lambda i: (len(str(problem.ops[i][1])), -i)) + 1


def _miscopy(number: str, rng: random.Random) -> str:
    """``number`` with one digit replaced (never a new leading zero)."""
    first = int(number[0] == "-")  # index of the leading digit
    pos = rng.randrange(first, len(number))
    wrong = rng.choice([d for d in "0123456789" if d != number[pos] and
                        (pos != first or d != "0" or len(number) == first + 1)])
    return number[:pos] + wrong + number[pos + 1:]


def demo_steps(problem: Problem, rng: random.Random, p_copy_error: float = 0.0,
               p_syntax_error: float = 0.0, p_hard_error: float = 0.0) -> tuple[list[tuple[str, str]], int]:
    """A worked solution as ``[(code, tool output), ...]`` and the final answer, with controlled
    mistakes drawn from ``rng``: ``p_copy_error`` per step, one digit of the carried number
    mis-copied (irrecoverable: the chain goes on from the wrong value), ``p_hard_error`` the same in
    :func:`hard_step`'s operand; ``p_syntax_error`` per step, a call that raises, then a retry."""
    calls, current = [], problem.start
    for step, (op, x) in enumerate(problem.ops, start=1):
        carried = str(current)
        if rng.random() < p_copy_error:
            carried = _miscopy(carried, rng)
        if p_hard_error and step == hard_step(problem) and rng.random() < p_hard_error:
            x = _miscopy(str(x), rng)
        if rng.random() < p_syntax_error:
            broken = rng.choice([f"{carried}{op}{x})", f"{carried}{op}", f"({carried}{op}{x}"])
            calls.append((broken, safe_arith(broken).render()))
        code = f"{carried}{op}{x}"
        current = int(safe_arith(code).stdout)
        calls.append((code, str(current)))
    return calls, current


def demo_pieces(problem: Problem, rng: random.Random, p_copy_error: float = 0.0, p_syntax_error: float = 0.0,
                fenced: bool = False, p_hard_error: float = 0.0) -> list[tuple[str, str | None]]:
    """:func:`demo_steps` as assistant pieces ``[(text, tool output | None)]``: the toy's tags, or
    (``fenced``) one ```python block per step and a ``\\boxed{}`` answer for a chat model's cold start."""
    calls, answer = demo_steps(problem, rng, p_copy_error, p_syntax_error, p_hard_error)
    if not fenced:
        return [(f"{CALL_OPEN}{code}{CALL_CLOSE}", out) for code, out in calls] + [
            (f"{ANSWER_OPEN}{answer}{ANSWER_CLOSE}", None)]
    pieces = [(f"Step {i}:\n```python\n{code}\n```", out) for i, (code, out) in enumerate(calls, start=1)]
    return pieces + [(f"The final answer is \\boxed{{{answer}}}.", None)]


def demonstration(problem: Problem, rng: random.Random, p_copy_error: float = 0.0,
                  p_syntax_error: float = 0.0) -> str:
    """:func:`demo_pieces` in the toy's tag format as one string (prompt excluded)."""
    return "".join(text + (f"{OUTPUT_OPEN}{out}{OUTPUT_CLOSE}" if out is not None else "")
                   for text, out in demo_pieces(problem, rng, p_copy_error, p_syntax_error))


def write_jsonl(problems: list[Problem], path: str | Path) -> None:
    Path(path).write_text("".join(json.dumps(p.to_row(), sort_keys=True) + "\n" for p in problems))


def read_jsonl(path: str | Path, fields: dict, command: str, limit: int | None = None, check=None):
    """Load a JSONL split into a ``datasets.Dataset`` after validating every row: ``fields``
    maps required fields to types, ``check(row, "path:line")`` checks more. A missing file
    names ``command`` (which makes it); a bad row raises ValueError naming line and field."""
    import datasets

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data file {path} not found; run `{command}` to regenerate it")
    rows = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
        for field, kind in fields.items():
            if not isinstance(row.get(field), kind) or row[field] == "":
                raise ValueError(f"{path}:{lineno}: field {field!r} must be a non-empty {kind.__name__}, got "
                                 f"{row.get(field)!r}; rows need {sorted(fields)}")
        if check:
            check(row, f"{path}:{lineno}")
        rows.append(row)
        if limit is not None and len(rows) == limit:
            break
    return datasets.Dataset.from_list(rows)


def _check_chain(row: dict, where: str) -> None:
    for op in row["ops"]:
        if not (isinstance(op, str) and re.fullmatch(r"[-+*]\d+", op)):
            raise ValueError(f"{where}: field 'ops' needs strings like '*7' or '+120' "
                             f"(op in {OPS!r}, then an integer), got {op!r}")
    if problem_from_row(row).answer != row["answer"]:
        raise ValueError(f"{where}: field 'answer' is {row['answer']}, but the chain gives "
                         f"{problem_from_row(row).answer}")


def load_problems(path: str | Path, limit: int | None = None):
    """The toy split at ``path`` as a ``datasets.Dataset``, every row validated."""
    return read_jsonl(path, {"id": str, "start": int, "ops": list, "answer": int}, "python -m elpo_min make-data",
                      limit, _check_chain)


def problem_from_row(row: dict) -> Problem:
    return Problem(row["start"], tuple((op[0], int(op[1:])) for op in row["ops"]), id=row["id"])


def held_out(n_test: int = 1000) -> set:
    """``(start, ops)`` of the test split's problems: training data of any kind must avoid them."""
    return {(p.start, p.ops) for p in generate_problems(n_test, seed=2, prefix="test")}


def make_data(out_dir: str | Path = "data", n_train: int = 4000, n_test: int = 1000) -> None:
    """Write the shipped splits (deterministic: same bytes on every run)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    test, test_keys = generate_problems(n_test, seed=2, prefix="test"), held_out(n_test)
    train = [p for p in generate_problems(n_train + 50, seed=1, prefix="train")
             if (p.start, p.ops) not in test_keys][:n_train]
    write_jsonl(train, out_dir / "toy_train.jsonl")
    write_jsonl(test, out_dir / "toy_test.jsonl")
