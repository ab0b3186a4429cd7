"""Checkpoints and resume: one atomic switch, digests, interrupts, overrides, and the lock.

A crash is injected at every point of a checkpoint write (not a timing race): before and after
each of its steps. Whatever point it hits, the folder holds the previous checkpoint or the new
one, and a resumed run goes on. Interrupts during rollouts and during an update both leave a
checkpoint from which the resumed run equals an uninterrupted one.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import TINY_RUN, rank_of

import elpo_min.train as train_module
from elpo_min.checkpoints import RunFiles, store
from elpo_min.diagnostics import read_log
from elpo_min.errors import UserError
from elpo_min.launch import load_config, run_training
from elpo_min.launch.config_io import load_resumed_config
from elpo_min.models import load_policy

ROOT = Path(__file__).resolve().parent.parent


def records(folder) -> list[dict]:
    return read_log(folder / "metrics.jsonl")


def step_record(folder, step: int) -> dict:
    return next(r for r in records(folder) if r["step"] == step and "loss" in r)


def assert_same_run(a, b):
    for key in (
        "loss",
        "train_success",
        "clip_frac",
        "grad_norm",
        "sequences",
        "rollouts_per_prompt",
        "t_crit_mean",
    ):
        if b[key] is None:
            # t_crit_mean when no search probed
            assert a[key] is None, key
        else:
            assert a[key] == pytest.approx(b[key], rel=1e-6, abs=1e-9), key
    assert a.get("eval") == b.get("eval")


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """An uninterrupted run: the reference for every resumed one."""
    folder = tmp_path_factory.mktemp("straight")
    run_training(load_config(None, {**TINY_RUN, "out_dir": str(folder)}))
    return folder


@pytest.fixture
def policy():
    model, tokenizer = load_policy()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    return model, tokenizer, optimizer


def saved_step(folder) -> int:
    model, _ = load_policy()
    return store.load_checkpoint(folder, model, torch.optim.AdamW(model.parameters()))


CRASH_POINTS = [
    (name, when) for name in ("write_version", "publish", "prune") for when in ("before", "after")
]


@pytest.mark.parametrize("name, when", CRASH_POINTS, ids=[f"{w} {n}" for n, w in CRASH_POINTS])
def test_a_crash_at_any_point_of_a_save_leaves_the_old_or_the_new_checkpoint(
    name, when, policy, tmp_path, monkeypatch
):
    model, tokenizer, optimizer = policy
    store.save_checkpoint(tmp_path, model, tokenizer, optimizer, 1, {"lr": 1e-4})
    real = getattr(store, name)

    def crash(*args, **kwargs):
        if when == "after":
            real(*args, **kwargs)
        raise OSError("power cut")

    monkeypatch.setattr(store, name, crash)
    with pytest.raises(OSError, match="power cut"):
        store.save_checkpoint(tmp_path, model, tokenizer, optimizer, 2, {"lr": 1e-4})
    monkeypatch.undo()
    expected = (
        2 if (name, when) in (("publish", "after"), ("prune", "before"), ("prune", "after")) else 1
    )
    assert saved_step(tmp_path) == expected
    store.save_checkpoint(tmp_path, model, tokenizer, optimizer, 3, {"lr": 1e-4})
    assert saved_step(tmp_path) == 3
    versions = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert versions[-1] == "step-000003" and len(versions) <= 2


def test_a_crash_between_the_two_renames_of_the_old_layout_cannot_happen_any_more(policy, tmp_path):
    """The checkpoint is a link replaced in one step; the version it points to is complete."""
    model, tokenizer, optimizer = policy
    for step in (1, 2, 3):
        store.save_checkpoint(tmp_path, model, tokenizer, optimizer, step, {})
    link = tmp_path / "checkpoint"
    assert link.is_symlink() and os.readlink(link) == "checkpoints/step-000003"
    assert (link / "model" / "config.json").is_file()


def test_changed_bytes_are_a_clear_error_not_a_resumed_run(policy, tmp_path):
    model, tokenizer, optimizer = policy
    store.save_checkpoint(tmp_path, model, tokenizer, optimizer, 1, {})
    weights = tmp_path / "checkpoint" / "trainer_state.pt"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(UserError, match="trainer_state.pt does not match the digest"):
        saved_step(tmp_path)


def test_a_checkpoint_of_other_world_size_is_refused(policy, tmp_path):
    model, tokenizer, optimizer = policy
    store.save_checkpoint(tmp_path, model, tokenizer, optimizer, 1, {})
    with pytest.raises(UserError, match="written by 1 process.*resume with 1"):
        store.load_checkpoint(tmp_path, model, optimizer, rank_of(0, 2))


def test_a_second_run_into_the_same_folder_fails_at_once(policy, tmp_path):
    model, _, optimizer = policy
    first = RunFiles(tmp_path, {})
    first.open(model, optimizer, resume=False)
    try:
        with pytest.raises(UserError, match=f"another run .*pid {os.getpid()}.* {tmp_path}"):
            RunFiles(tmp_path, {}).open(model, optimizer, resume=False)
    finally:
        first.close()
    second = RunFiles(tmp_path, {})
    second.open(model, optimizer, resume=False)
    second.close()


def test_overrides_on_resume_apply_and_frozen_fields_are_refused(tmp_path):
    folder = tmp_path / "run"
    run_training(load_config(None, {**TINY_RUN, "steps": 1, "lr": 3e-4, "out_dir": str(folder)}))
    kept = load_resumed_config(None, {"steps": "2"}, str(folder))
    assert kept.lr == 3e-4 and kept.steps == 2  # the saved lr, not the default
    changed = load_resumed_config(None, {"lr": "1e-5", "steps": "2"}, str(folder))
    assert changed.lr == 1e-5
    seen = []
    real_update = train_module.policy_update

    def spy(forward, optimizer, batch, cfg, rt=None):
        seen.append(optimizer.param_groups[0]["lr"])
        return real_update(forward, optimizer, batch, cfg, rt)

    train_module.policy_update = spy
    try:
        run_training(changed, resume=True)
    finally:
        train_module.policy_update = real_update
    assert seen == [1e-5]
    for field, value in (("lora_rank", "4"), ("algo", "grpo"), ("model", "other"), ("seed", "3")):
        with pytest.raises(UserError, match=f"config field {field} cannot change on --resume"):
            load_resumed_config(None, {field: value}, str(folder))


def test_a_finished_run_resumes_exactly_and_drops_records_after_its_checkpoint(straight, tmp_path):
    part = tmp_path / "part"
    run_training(load_config(None, {**TINY_RUN, "out_dir": str(part), "steps": 2}))
    with open(part / "metrics.jsonl", "a") as log:
        # a step logged after the checkpoint
        log.write(json.dumps({"step": 3, "loss": 123.0}) + "\n")
    run_training(load_config(None, {**TINY_RUN, "out_dir": str(part)}), resume=True)
    # the stale step-3 record was dropped, not duplicated
    assert [r["step"] for r in records(part)] == [0, 1, 2, 3, 4]
    assert_same_run(step_record(part, 4), step_record(straight, 4))
    assert (straight / "learning_curve.png").stat().st_size > 1000


def test_an_interrupt_during_rollouts_resumes_exactly(straight, tmp_path, monkeypatch):
    folder = tmp_path / "run"
    calls = []
    real = train_module.build_trees

    def interrupted(*args, **kwargs):
        trees = real(*args, **kwargs)
        calls.append(1)
        if len(calls) == 3:
            # the rollouts of step 3 have drawn from the random stream: then Ctrl-C
            raise KeyboardInterrupt
        return trees

    monkeypatch.setattr(train_module, "build_trees", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_training(load_config(None, {**TINY_RUN, "out_dir": str(folder)}))
    monkeypatch.undo()
    assert saved_step(folder) == 2
    run_training(load_resumed_config(None, {}, str(folder)), resume=True)
    assert [r["step"] for r in records(folder)] == [0, 1, 2, 3, 4]
    for step in (3, 4):
        assert_same_run(step_record(folder, step), step_record(straight, step))


def test_an_interrupt_during_an_update_waits_for_it_and_resumes_exactly(
    straight, tmp_path, monkeypatch
):
    folder = tmp_path / "run"
    real = train_module.policy_update
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            # Ctrl-C arrives in the middle of step 3's update
            os.kill(os.getpid(), signal.SIGINT)
        return real(*args, **kwargs)

    monkeypatch.setattr(train_module, "policy_update", interrupted)
    with pytest.raises(KeyboardInterrupt, match="checkpoint of step 3 is saved"):
        run_training(load_config(None, {**TINY_RUN, "out_dir": str(folder)}))
    monkeypatch.undo()
    assert saved_step(folder) == 3
    assert_same_run(step_record(folder, 3), step_record(straight, 3))
    run_training(load_resumed_config(None, {}, str(folder)), resume=True)
    assert [r["step"] for r in records(folder)] == [0, 1, 2, 3, 4]
    assert_same_run(step_record(folder, 4), step_record(straight, 4))


def test_ctrl_c_on_the_command_line_says_what_it_saved_and_exits_130(tmp_path):
    folder = tmp_path / "run"
    flags = [f"--{key}={value}" for key, value in {**TINY_RUN, "steps": 200}.items()]
    command = [sys.executable, "-m", "elpo_min", "train", *flags, f"--out_dir={folder}"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    deadline = time.monotonic() + 120
    # wait until a training step is logged, so the interrupt lands inside the loop
    while time.monotonic() < deadline and process.poll() is None:
        log = folder / "metrics.jsonl"
        if log.exists() and any("loss" in line for line in log.read_text().splitlines()):
            break
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "--resume continues it" in stderr
    assert saved_step(folder) >= 1
