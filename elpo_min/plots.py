"""Figures: learning curves from ``metrics.jsonl`` logs."""

from __future__ import annotations

import json
from pathlib import Path


def read_log(path: str | Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def plot_learning_curve(log_paths: list, out_png: str | Path, labels: list[str] | None = None,
                        colors: list[str] | None = None):
    """Held-out success (left) and training success of full rollouts (right) per step.

    Returns:
        the matplotlib figure (also saved to ``out_png``).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    for i, path in enumerate(log_paths):
        records, color = read_log(path), colors[i] if colors else None
        label = labels[i] if labels else Path(path).parent.name
        left.plot(*zip(*[(r["step"], r["eval"]["success_rate"]) for r in records if "eval" in r]), marker="o",
                  label=label, color=color)
        train = [(r["step"], r["train_success"]) for r in records if "train_success" in r]
        if train:
            right.plot(*zip(*train), alpha=0.6, label=label, color=color)
    left.set(xlabel="training step", ylabel="held-out success (pass@1)", title="held-out")
    right.set(xlabel="training step", ylabel="success of full rollouts", title="training rollouts")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return fig
