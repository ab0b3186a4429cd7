"""Checkpoints and resume: one atomic switch, digests, interrupts, overrides, and the lock.

A crash is injected at every point of a checkpoint write (not a timing race): before and after
each of its steps. Whatever point it hits, the folder holds the previous checkpoint or the new
one, and a resumed run goes on. Interrupts during rollouts and during an update both leave a
checkpoint from which the resumed run equals an uninterrupted one.

What a crash test found broken is tested below the first block, each with faults injected in
the process (an ``OSError`` from a save's step, a torn line written by hand, a signal sent to
itself), none filling a real disk: a checkpoint without a readable manifest, a torn log or
config, a full disk and any ``OSError`` during a save, interrupts during an evaluation and
during a save, and resuming a finished run.
"""

import builtins
import errno
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import TINY_RUN, rank_of
from safetensors import SafetensorError

import elpo_min.launch.build as build_module
import elpo_min.train as train_module
from elpo_min.checkpoints import RunFiles, store
from elpo_min.diagnostics import read_log
from elpo_min.errors import UserError
from elpo_min.launch import load_config, run_training
from elpo_min.launch.cli import main
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


@pytest.fixture(autouse=True)
def ctrl_c_raises():
    """Ctrl-C raises KeyboardInterrupt here and in the processes these tests start, as in a
    terminal. A shell without job control starts background commands with SIGINT ignored, and
    Python then installs no handler for it: the interrupt tests would test that shell. (A child
    process starts with the default action again, since a handler does not survive exec.)"""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


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
    # Ctrl-C arrives in the middle of step 3's update
    interrupted = failing(train_module.policy_update, ctrl_c, nth_call(3))
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


class PowerCut(BaseException):
    """The process dies here: nothing after it runs (no ``except Exception`` catches it)."""


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def one_line_error(argv: list[str], capsys) -> str:
    """Run the command line in-process: it must end in one line on stderr and exit code 2."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    captured = capsys.readouterr()
    # transformers' own progress bars ("Loading weights: 100%|...") are not messages
    parts = re.split(r"[\r\n]", captured.err)
    lines = [line for line in parts if line.strip() and not re.search(r"\d+%\|", line)]
    assert exit_info.value.code == 2, captured.err
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert "Traceback" not in captured.err + captured.out
    return lines[0]


def two_versions(policy, folder: Path) -> Path:
    """Checkpoints of steps 1 and 2 in ``folder``; returns the published version (step 2)."""
    model, tokenizer, optimizer = policy
    for step in (1, 2):
        store.save_checkpoint(folder, model, tokenizer, optimizer, step, {})
    return (folder / "checkpoint").resolve()


@pytest.mark.parametrize("damage", ["missing", "torn", "empty"])
def test_a_missing_or_unreadable_manifest_is_one_line_naming_the_fix_never_a_skip(
    damage, policy, tmp_path, capsys
):
    version = two_versions(policy, tmp_path)
    # changed weights that only the digests can catch
    flip_a_byte(version / "trainer_state.pt")
    manifest = version / "manifest.json"
    if damage == "missing":
        manifest.unlink()
    elif damage == "torn":
        manifest.write_text(manifest.read_text()[:40])
    else:
        manifest.write_text("{}")
    fix = f"ln -sfn checkpoints/step-000001 {tmp_path}/checkpoint"
    with pytest.raises(UserError, match="manifest.json") as error:
        saved_step(tmp_path)
    assert fix in str(error.value)
    line = one_line_error(["train", "--resume", "--out_dir", str(tmp_path)], capsys)
    assert "manifest.json" in line and fix in line


def tearing(real_open):
    """``open`` whose writes to the run's log tear: half the bytes land, then the process dies."""

    class Torn:
        def __init__(self, handle):
            self.handle = handle

        def write(self, data):
            self.handle.write(data[: len(data) // 2])
            self.handle.close()
            raise PowerCut

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def __getattr__(self, name):
            return getattr(self.handle, name)

    def opener(file, mode="r", *args, **kwargs):
        handle = real_open(file, mode, *args, **kwargs)
        writes = "w" in mode or "a" in mode
        return Torn(handle) if writes and "metrics" in Path(file).name else handle

    return opener


def test_a_torn_log_line_is_dropped_and_a_crash_while_resume_rewrites_the_log_loses_nothing(
    policy, tmp_path, monkeypatch, capsys
):
    model, tokenizer, optimizer = policy
    store.save_checkpoint(tmp_path, model, tokenizer, optimizer, 2, {})
    kept = [json.dumps({"step": step, "loss": step / 10}) for step in (0, 1, 2)]
    log = tmp_path / "metrics.jsonl"
    # step 3 was logged after the checkpoint, then a crash tore the line of step 4
    log.write_text("\n".join(kept + [json.dumps({"step": 3, "loss": 0.3})]) + '\n{"step": 4, "lo')
    # a crash while --resume rewrites the log
    monkeypatch.setattr(builtins, "open", tearing(builtins.open))
    monkeypatch.setattr(io, "open", tearing(io.open))
    crashed = RunFiles(tmp_path, {})
    with pytest.raises(PowerCut):
        crashed.open(model, optimizer, resume=True)
    monkeypatch.undo()
    # the process died: its lock goes with it
    crashed.close()
    files = RunFiles(tmp_path, {})
    assert files.open(model, optimizer, resume=True) == 2
    files.close()
    assert log.read_text() == "".join(line + "\n" for line in kept)
    assert "dropped line 5" in capsys.readouterr().err


def test_a_broken_config_json_is_one_line_not_a_traceback(policy, tmp_path, capsys):
    version = two_versions(policy, tmp_path)
    (version / "config.json").write_text('{"lr": 0.00')
    line = one_line_error(["train", "--resume", "--out_dir", str(tmp_path)], capsys)
    assert "config.json does not match the digest" in line
    assert f"ln -sfn checkpoints/step-000001 {tmp_path}/checkpoint" in line


def test_resume_without_a_published_link_names_the_versions_and_how_to_publish_one(
    policy, tmp_path, capsys
):
    model, tokenizer, optimizer = policy
    store.save_checkpoint(tmp_path, model, tokenizer, optimizer, 2, {})
    # a version renamed in whose link was never made (the disk filled up in between)
    (tmp_path / "checkpoint").unlink()
    line = one_line_error(["train", "--resume", "--out_dir", str(tmp_path)], capsys)
    publish = f"ln -sfn checkpoints/step-000002 {tmp_path}/checkpoint"
    assert "nothing to resume" in line and "holds step-000002" in line and publish in line
    os.symlink("checkpoints/step-000002", tmp_path / "checkpoint")
    assert saved_step(tmp_path) == 2


def enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def safetensors_full(*args, **kwargs):
    raise SafetensorError(
        "Error while serializing: I/O error: No space left on device (os error 28)"
    )


def torch_save_full(*args, **kwargs):
    """What torch.save raises on a full disk: no errno, no word of the disk."""
    try:
        raise RuntimeError("basic_ios::clear: iostream error")
    except RuntimeError:
        # as torch raises it: in the context of the stream's error, not from it
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")  # noqa: B904


def failing(real, error, when=lambda *args, **kwargs: True):
    def call(*args, **kwargs):
        if when(*args, **kwargs):
            error()
        return real(*args, **kwargs)

    return call


def ctrl_c():
    os.kill(os.getpid(), signal.SIGINT)


def nth_call(n: int):
    """A ``when`` for :func:`failing`: true at the n-th call only."""
    calls = []
    return lambda *args, **kwargs: calls.append(1) or len(calls) == n


def named(name):
    return lambda path, *args, **kwargs: Path(path).name == name


def save_operations(model, tokenizer):
    """Each operation of a save that writes, as (what, object, attribute, failing version)."""
    return [
        ("make checkpoints/", Path, "mkdir", failing(Path.mkdir, enospc, named("checkpoints"))),
        (
            "write the weights",
            type(model),
            "save_pretrained",
            failing(type(model).save_pretrained, safetensors_full),
        ),
        (
            "write the tokenizer",
            type(tokenizer),
            "save_pretrained",
            failing(type(tokenizer).save_pretrained, enospc),
        ),
        ("write trainer_state.pt", store.torch, "save", failing(torch.save, torch_save_full)),
        (
            "write config.json",
            Path,
            "write_text",
            failing(Path.write_text, enospc, named("config.json")),
        ),
        (
            "write manifest.json",
            Path,
            "write_text",
            failing(Path.write_text, enospc, named("manifest.json")),
        ),
        (
            "rename the version in",
            os,
            "replace",
            failing(os.replace, enospc, lambda src, *a, **k: Path(src).name.startswith(".step-")),
        ),
        ("make the new link", Path, "symlink_to", failing(Path.symlink_to, enospc)),
        (
            "switch the link",
            os,
            "replace",
            failing(os.replace, enospc, lambda src, dst, *a, **k: Path(dst).name == "checkpoint"),
        ),
    ]


def test_an_oserror_at_any_operation_of_a_save_is_one_line_with_the_space_and_the_old_checkpoint(
    policy, tmp_path, monkeypatch
):
    model, tokenizer, optimizer = policy
    store.save_checkpoint(tmp_path, model, tokenizer, optimizer, 1, {})
    full = shutil.disk_usage(tmp_path)._replace(free=4096)
    for what, owner, attribute, fault in save_operations(model, tokenizer):
        with monkeypatch.context() as patch:
            patch.setattr(shutil, "disk_usage", lambda path: full)
            patch.setattr(owner, attribute, fault)
            with pytest.raises(UserError) as error:
                store.save_checkpoint(tmp_path, model, tokenizer, optimizer, 2, {})
        message = str(error.value)
        expected = (
            r"could not save the checkpoint of step 2 in .*: the disk is full .*; a version needs "
            r"about [\d.]+ MiB and 4\.0 KiB is free there; the checkpoint is still step 1: make "
            r"room, then --resume continues it"
        )
        assert re.fullmatch(expected, message), (what, message)
        # what the save wrote is gone, the old checkpoint is whole
        assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-000001"], what
        assert not (tmp_path / ".checkpoint-link").exists(), what
        assert store.load_checkpoint(tmp_path, model, optimizer) == 1, what
    store.save_checkpoint(tmp_path, model, tokenizer, optimizer, 2, {})
    assert store.load_checkpoint(tmp_path, model, optimizer) == 2


def test_a_full_disk_during_a_run_is_one_line_and_no_second_save_is_tried(
    tmp_path, monkeypatch, capsys
):
    folder = tmp_path / "run"
    writes = []
    real = store.write_version

    def full_at_the_second(staging, model, tokenizer, state, step, *args):
        writes.append(step)
        if len(writes) == 1:
            return real(staging, model, tokenizer, state, step, *args)
        # part of the version lands, then the disk is full
        staging.mkdir(parents=True, exist_ok=True)
        (staging / "trainer_state.pt").write_bytes(bytes(4096))
        enospc()

    monkeypatch.setattr(store, "write_version", full_at_the_second)
    run = {**TINY_RUN, "steps": 2, "save_every": 1, "out_dir": folder}
    # the smallest run that saves twice
    run.update(prompts_per_step=1, n_total=2, eval_problems=1)
    line = one_line_error(["train", *[f"--{key}={value}" for key, value in run.items()]], capsys)
    assert "could not save the checkpoint of step 2" in line, line
    assert "the disk is full (No space left on device)" in line and "still step 1" in line, line
    # the failed save is not followed by a second one
    assert writes == [1, 2]
    monkeypatch.undo()
    assert [p.name for p in (folder / "checkpoints").iterdir()] == ["step-000001"]
    assert saved_step(folder) == 1


def test_an_interrupt_during_an_evaluation_logs_the_step_and_resume_redoes_the_evaluation(
    straight, tmp_path, monkeypatch, capsys
):
    folder = tmp_path / "run"
    # Ctrl-C while step 2 is evaluated (the first evaluation is step 0's)
    interrupted = failing(build_module.held_out_success, ctrl_c, nth_call(2))
    monkeypatch.setattr(build_module, "held_out_success", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_training(load_config(None, {**TINY_RUN, "out_dir": str(folder)}))
    monkeypatch.undo()
    assert "interrupted: step 2 is saved" in capsys.readouterr().err
    record = step_record(folder, 2)
    assert record["eval_interrupted"] is True
    assert_same_run(record, {**step_record(straight, 2), "eval": None})
    # the checkpoint is the uninterrupted run's step 2 (which it keeps as the previous version)
    ours = torch.load(folder / "checkpoint" / "trainer_state.pt", weights_only=False)
    theirs = torch.load(straight / "checkpoints/step-000002/trainer_state.pt", weights_only=False)
    assert ours["step"] == theirs["step"] == 2
    assert torch.equal(ours["rng"][0]["torch"], theirs["rng"][0]["torch"])
    assert ours["rng"][0]["python"] == theirs["rng"][0]["python"]
    assert all(torch.equal(v, theirs["trainable"][k]) for k, v in ours["trainable"].items())
    # the resume redoes the evaluation first (here with nothing left to train)
    run_training(load_resumed_config(None, {"steps": "2"}, str(folder)), resume=True)
    logged = records(folder)
    assert [r["step"] for r in logged] == [0, 1, 2, 2]
    assert logged[3]["eval"] == step_record(straight, 2)["eval"]


def test_a_second_interrupt_during_the_save_waits_for_it_and_saved_means_saved(
    tmp_path, monkeypatch, capsys
):
    folder = tmp_path / "run"
    # Ctrl-C during step 1's update: it waits until the step is logged and saved
    monkeypatch.setattr(train_module, "policy_update", failing(train_module.policy_update, ctrl_c))
    # an impatient second Ctrl-C during that save
    monkeypatch.setattr(store, "write_version", failing(store.write_version, ctrl_c))
    run = {**TINY_RUN, "prompts_per_step": 1, "n_total": 2, "eval_problems": 1}
    with pytest.raises(KeyboardInterrupt):
        run_training(load_config(None, {**run, "out_dir": str(folder)}))
    monkeypatch.undo()
    assert "interrupted: step 1 is saved" in capsys.readouterr().err
    assert saved_step(folder) == 1
    assert [r["step"] for r in records(folder)] == [0, 1]


def test_resuming_a_finished_run_logs_nothing_new(straight, tmp_path, monkeypatch):
    folder = tmp_path / "done"
    shutil.copytree(straight, folder, symlinks=True)
    log = (folder / "metrics.jsonl").read_text()
    monkeypatch.setattr(
        build_module, "held_out_success", lambda *a, **k: pytest.fail("evaluated again")
    )
    result = run_training(load_resumed_config(None, {}, str(folder)), resume=True)
    # the last logged evaluation is the final one
    assert (folder / "metrics.jsonl").read_text() == log
    assert result["after"] == step_record(straight, 4)["eval"]


def test_settings_changed_on_resume_are_said_in_one_line(policy, tmp_path, monkeypatch, capsys):
    model, tokenizer, optimizer = policy
    saved = {"prompts_per_step": 2, "lr": 1e-4, "steps": 4, "out_dir": "elsewhere"}
    store.save_checkpoint(tmp_path, model, tokenizer, optimizer, 4, saved)
    seen = []
    outcome = {"before": None, "after": {"success_rate": 0.5}, "log": "metrics.jsonl"}
    monkeypatch.setattr(
        build_module, "run_training", lambda cfg, resume: seen.append(cfg) or outcome
    )
    overrides = ["--prompts_per_step", "4", "--lr", "3e-5", "--steps", "4"]
    main(["train", "--resume", "--out_dir", str(tmp_path), *overrides])
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "resume: prompts_per_step 2 -> 4, lr 0.0001 -> 3e-05", out
    # the run goes on where its checkpoint is, though it was saved as "elsewhere"
    assert seen[0].prompts_per_step == 4 and seen[0].out_dir == str(tmp_path)


def test_read_log_leaves_out_a_line_being_written_and_names_a_broken_one(tmp_path):
    log = tmp_path / "metrics.jsonl"
    # a run still training: its last record is half written, with no newline yet
    log.write_text('{"step": 0}\n{"step": 1}\n{"step": 2, "lo')
    with pytest.warns(UserWarning, match="last line"):
        assert read_log(log) == [{"step": 0}, {"step": 1}]
    # a broken line that is not the one being written is an error naming it
    log.write_text('{"step": 0}\n{"step": 1, "lo\n{"step": 2}\n')
    with pytest.raises(ValueError, match="line 2 of .*--resume"):
        read_log(log)
    # a whole last line (with its newline) that is not JSON is not mid-write either
    log.write_text('{"step": 0}\nnot json\n')
    with pytest.raises(ValueError, match="line 2 of"):
        read_log(log)
