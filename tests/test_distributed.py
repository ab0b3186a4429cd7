"""Data parallel on CPU (gloo, 2 processes via torchrun): the same update as one process on
the union batch, exact resume at the same world size, rank-0-only files written once."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import rank_of

from elpo_min.diagnostics import read_log

pytest.importorskip("accelerate")
HERE = Path(__file__).resolve().parent


def launch(args: list[str], cwd: Path, timeout: int = 300, check: bool = True):
    """``torchrun --standalone --nproc_per_node 2`` (a free port of its own), one thread each.

    Returns the finished process; ``check`` asserts that it exited with 0.
    """
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        *args,
    ]
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check:
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def test_two_processes_take_the_update_of_one_process_on_the_union_batch(tmp_path):
    sys.path.insert(0, str(HERE))
    from dist_update_worker import main

    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    main(str(tmp_path / "one"), 0)  # this process: all 4 prompts' trees, one pass
    # 2 ranks, micro-batches
    launch([str(HERE / "dist_update_worker.py"), str(tmp_path / "two"), "3"], tmp_path)
    for name in (
        "elpo_seq-mean-token-mean",
        "elpo_token-mean",
        "grpo_seq-mean-token-mean",
        "grpo_token-mean",
    ):
        one, two = (torch.load(tmp_path / d / f"{name}.pt") for d in ("one", "two"))
        assert one["sequences"] == two["sequences"] == 16
        assert two["loss"] == pytest.approx(one["loss"], rel=1e-5, abs=1e-7), name
        assert one["loss"] != 0.0
        for a, b in zip(one["params"], two["params"]):
            assert torch.allclose(a, b, atol=1e-6), name


RUN = [
    "--steps",
    "2",
    "--prompts_per_step",
    "2",
    "--n_total",
    "4",
    "--b_max",
    "2",
    "--eval_problems",
    "6",
    "--eval_every",
    "2",
    "--save_every",
    "1",
    "--threads",
    "1",
    "--progress",
    "false",
]


def records(run: Path) -> list[dict]:
    return read_log(run / "metrics.jsonl")


def resume_from_step(finished: Path, step: int, folder: Path) -> None:
    """Copy a finished run's folder and point its checkpoint back at an earlier saved step: the
    state a run interrupted after that step leaves behind (and one launch fewer to make it)."""
    shutil.copytree(finished, folder, symlinks=True)
    link = folder / "checkpoint"
    version = f"checkpoints/step-{step:06d}"
    assert (folder / version).is_dir(), sorted(p.name for p in (folder / "checkpoints").iterdir())
    link.unlink()
    link.symlink_to(version)
    # the later versions go too: whatever the resumed run leaves behind, it wrote itself
    for later in (folder / "checkpoints").glob("step-*"):
        if later.name > f"step-{step:06d}":
            shutil.rmtree(later)


def test_resumed_two_process_run_matches_an_uninterrupted_one_and_rank_0_writes_once(tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    launch(["-m", "elpo_min", "train", *RUN, "--out_dir", str(straight)], tmp_path)
    # the step-1 checkpoint the straight run saved (save_every 1), resumed to step 2
    resume_from_step(straight, 1, resumed)
    launch(["-m", "elpo_min", "train", *RUN, "--out_dir", str(resumed), "--resume"], tmp_path)

    log = records(straight)
    # rank 0 alone writes: each step once
    assert [r["step"] for r in log] == [0, 1, 2]
    assert all(isinstance(r["step"], int) for r in log)
    assert all(r["world_size"] == 2 for r in log)
    assert log[1]["sequences"] == 2 * 4 and log[1]["rollouts_per_prompt"] == 4
    assert 0.0 <= log[-1]["eval"]["success_rate"] <= 1.0
    files = sorted(p.name for p in straight.iterdir())
    assert files == [".lock", "checkpoint", "checkpoints", "learning_curve.png", "metrics.jsonl"]
    state = {
        d: torch.load(d / "checkpoint" / "trainer_state.pt", weights_only=False)
        for d in (straight, resumed)
    }
    assert len(state[straight]["rng"]) == 2  # one RNG state per rank
    assert os.readlink(resumed / "checkpoint") == "checkpoints/step-000002"
    for name, value in state[straight]["trainable"].items():
        assert torch.equal(value, state[resumed]["trainable"][name]), name
    again = records(resumed)
    # the copied step-2 record was dropped and written again by the resumed run
    assert [r["step"] for r in again] == [0, 1, 2]
    for key in ("loss", "train_success", "clip_frac", "sequences"):
        assert again[2][key] == log[2][key], key
    assert again[2]["eval"] == log[2]["eval"]


def test_world_size_that_does_not_divide_prompts_per_step_fails_at_start(
    tmp_path, capsys, monkeypatch
):
    """Checked before any model loads, in this process with a runtime of two ranks (a launch
    costs two interpreters for a one-line error)."""
    import elpo_min.launch.build as build
    from elpo_min.launch.cli import main

    def too_late(*args, **kwargs):
        pytest.fail("the world-size check must come before any data or model is loaded")

    monkeypatch.setattr(build, "runtime", lambda: rank_of(0, 2))
    monkeypatch.setattr(build, "load_task", too_late)
    monkeypatch.setattr(build, "load_policy", too_late)
    argv = ["train", "--prompts_per_step", "3", "--out_dir", str(tmp_path / "run")]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "prompts_per_step: 3 prompts cannot be split over 2 processes" in capsys.readouterr().err
