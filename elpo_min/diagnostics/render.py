"""Trajectories as readable text: prompt, turns, and the tool outputs set apart."""

from __future__ import annotations

from ..trajectory import Trajectory


def render_trajectory(traj: Trajectory, tokenizer, color: bool = True) -> str:
    """Readable text: the prompt, the sampled turns, and tool outputs boxed or coloured."""

    def span(a: int, b: int) -> str:
        return tokenizer.decode(traj.token_ids[a:b])

    lines = [span(0, traj.prompt_len).rstrip("\n")]
    for i, turn in enumerate(traj.turns, start=1):
        lines.append(f"  turn {i}: {span(turn.start, turn.end)}")
        if turn.out_end > turn.end:
            out = span(turn.end, turn.out_end)
            lines.append(f"    tool> \x1b[36m{out}\x1b[0m" if color else f"    tool> [{out}]")
    status = "correct" if traj.success else ("truncated" if traj.truncated else "wrong")
    lines.append(f"  => answer {traj.answer!r}: {status} (reward {traj.reward:g})")
    return "\n".join(lines)
