"""Where the shipped data lives, and the one JSONL reader that every split goes through.

The defaults need files: the tiny policy and the toy splits (and, for the real-model path, the
gsm splits). A checkout keeps them in the repository's ``data/`` folder; a wheel ships the same
files inside the package, as ``elpo_min/data/``. :func:`data_dir` is the only place that knows
both, so no other module builds a path to them.

:func:`read_jsonl` validates every row as it reads it and names ``path:line`` at the first bad
one, so a mistake in a data file stops a run before any rollout is spent.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from ..errors import DataError, MissingFile

PACKAGE_DIR = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """The folder of the shipped data: ``tiny_policy/``, ``toy_*.jsonl``, ``gsm_*.jsonl``.

    Returns:
        ``elpo_min/data`` inside an installed wheel, else ``data/`` of the checkout.
    """
    candidates = [PACKAGE_DIR / "data", PACKAGE_DIR.parent / "data"]
    for folder in candidates:
        if (folder / "tiny_policy").is_dir():
            return folder
    raise MissingFile(
        f"the shipped data (tiny policy, toy splits) is in neither {candidates[0]} nor "
        f"{candidates[1]}; install elpo_min from a wheel (it carries the data) or run it from "
        "a checkout of the repository"
    )


def read_jsonl(
    path: str | Path,
    fields: dict[str, type],
    remedy: str,
    limit: int | None = None,
    check: Callable[[dict, str], None] | None = None,
) -> list[dict]:
    """The rows of a JSONL file, each validated as it is read.

    Args:
        path: the file; blank lines are skipped.
        fields: required field -> type. A row without one, with another type, or with "" fails.
        remedy: the command that makes the file, named when it is missing.
        limit: stop after this many rows.
        check: ``check(row, "path:line")`` validates more, raising :class:`DataError`.

    Returns:
        the rows as dicts, in file order.

    Raises:
        MissingFile: no such file.
        DataError: naming ``path:line``: text that is not UTF-8 or not JSON, a missing or
            mistyped field, or an ``id`` seen before.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFile(f"data file {path} not found; run `{remedy}` to make it")
    rows, seen_ids = [], {}
    for lineno, raw in enumerate(path.read_bytes().splitlines(), start=1):
        if limit is not None and len(rows) >= limit:
            break
        where = f"{path}:{lineno}"
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DataError(
                f"{where}: not UTF-8 text (byte {raw[e.start]:#04x} at column {e.start + 1}); "
                "save the file as UTF-8"
            ) from None
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{where}: not valid JSON ({e.msg}); one object per line") from None
        if not isinstance(row, dict):
            raise DataError(f"{where}: expected a JSON object, got {type(row).__name__}")
        for field, kind in fields.items():
            value = row.get(field)
            # bool is an int in Python; a row with true as a number is a mistake
            if not isinstance(value, kind) or isinstance(value, bool) or value == "":
                raise DataError(
                    f"{where}: field {field!r} must be a non-empty {kind.__name__}, got "
                    f"{value!r}; rows need {sorted(fields)}"
                )
        if "id" in row:
            if row["id"] in seen_ids:
                raise DataError(
                    f"{where}: id {row['id']!r} is already used at line {seen_ids[row['id']]}; "
                    "every problem needs its own id"
                )
            seen_ids[row["id"]] = lineno
        if check:
            check(row, where)
        rows.append(row)
    return rows


def write_jsonl(rows: list[dict], path: str | Path) -> None:
    """Write ``rows`` one JSON object per line, keys sorted: the same rows give the same bytes."""
    lines = [json.dumps(row, sort_keys=True) + "\n" for row in rows]
    Path(path).write_text("".join(lines))
