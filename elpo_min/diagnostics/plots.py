"""Figures: learning curves from ``metrics.jsonl`` logs.

Nothing here chooses a matplotlib backend: a library that calls ``matplotlib.use`` switches off
inline figures for the rest of a notebook's kernel. Figures are saved with ``savefig``, which
works under any backend, and returned so that a notebook can show them.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path


def read_log(path: str | Path) -> list[dict]:
    """The records of a ``metrics.jsonl``, in order.

    A run that is still training may be halfway through writing its last line, and a run killed
    mid-write leaves that line torn: a last line without its newline that is not yet JSON is left
    out, with a warning. Any other line that is not JSON is an error naming the line.
    """
    text = Path(path).read_text()
    lines = text.split("\n")
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError:
            # only the last line can be mid-write; it has no newline after it yet
            if number == len(lines) and not text.endswith("\n"):
                warnings.warn(
                    f"{path}: left out its last line, not yet a whole record", stacklevel=2
                )
                continue
            raise ValueError(
                f"line {number} of {path} is not a JSON record; `--resume` drops such lines, or "
                "delete it by hand"
            ) from None
    return records


def plot_learning_curve(
    log_paths: list,
    out_png: str | Path | None = None,
    labels: list[str] | None = None,
    colors: list[str] | None = None,
):
    """Held-out success (left) and the training rollouts' success (right) per step.

    The training success is each prompt's first collection (``train_success`` in the log): for
    ELPO its first ``b_max`` rollouts, sampled before BEL looked at any outcome.

    Args:
        log_paths: ``metrics.jsonl`` files, one curve each.
        out_png: where to save the figure (None: do not save).
        labels, colors: per log (default: the run folder's name, matplotlib's cycle).

    Returns:
        the matplotlib figure.
    """
    from matplotlib.figure import Figure

    # a Figure not registered with pyplot: nothing is left open, and no backend is chosen
    fig = Figure(figsize=(10, 3.6))
    left, right = fig.subplots(1, 2)
    for i, path in enumerate(log_paths):
        records = read_log(path)
        color = colors[i] if colors else None
        label = labels[i] if labels else Path(path).parent.name
        evals = [(r["step"], r["eval"]["success_rate"]) for r in records if "eval" in r]
        left.plot(*zip(*evals), marker="o", label=label, color=color)
        train = [(r["step"], r["train_success"]) for r in records if "train_success" in r]
        if train:
            right.plot(*zip(*train), alpha=0.6, label=label, color=color)
    left.set(xlabel="training step", ylabel="held-out success (pass@1)", title="held-out")
    right.set(
        xlabel="training step", ylabel="success of sampled rollouts", title="training rollouts"
    )
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    if out_png is not None:
        fig.savefig(out_png, dpi=110)
    return fig
