"""Every user error is one clear line: exit code 2, the field or file named, no traceback.

Table-driven over bad command lines, bad config files and bad data files; each is checked to
fail before any model is loaded where it can, and ``--debug`` brings the traceback back.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from elpo_min.errors import UserError
from elpo_min.launch.cli import main

ROOT = Path(__file__).resolve().parent.parent
ROW = {"id": "a", "start": 12, "ops": ["+3"], "answer": 15}
FILES = {
    "list.yaml": "- 1\n- 2\n",
    "lr_list.yaml": "lr: [0.1]\n",
    "null.yaml": "n_total: null\n",
    "malformed.yaml": "lr: 0.1\nsteps: [3\n",
    "unknown.yaml": "lr: 0.001\nbogus: 1\n",
    "empty.jsonl": "\n",
    "dup.jsonl": json.dumps(ROW) + "\n" + json.dumps(ROW) + "\n",
    "badrow.jsonl": json.dumps(ROW) + "\n{not json\n",
    "wrong_answer.jsonl": json.dumps({**ROW, "answer": 16}) + "\n",
}
# (command line, what the one line must name); {tmp} is a folder holding FILES
CASES = [
    (["train", "--n_total", "1"], "n_total"),
    (["train", "--lr", "0"], "lr"),
    (["train", "--lr", "-1e-4"], "lr"),
    (["train", "--max_grad_norm", "-1"], "max_grad_norm"),
    (["train", "--steps", "-3"], "steps"),
    (["train", "--max_turns", "0"], "max_turns"),
    (["train", "--max_new_tokens", "0"], "max_new_tokens"),
    (["train", "--temperature", "inf"], "temperature"),
    (["train", "--temperature", "0"], "temperature"),
    (["train", "--beta", "nan"], "beta"),
    (["train", "--lora_rank", "-1"], "lora_rank"),
    (["train", "--eval_every", "0"], "eval_every"),
    (["train", "--save_every", "0"], "save_every"),
    (["train", "--eval_problems", "0"], "eval_problems"),
    (["train", "--threads", "-1"], "threads"),
    (["train", "--micro_batch_size", "-1"], "micro_batch_size"),
    (["train", "--dtype", "float7"], "dtype"),
    (["train", "--device", "banana"], "device"),
    (["train", "--algo", "ppo"], "algo"),
    (["train", "--decoder", "turbo"], "decoder"),
    (["train", "--lambda_tree", "1.5"], "lambda_tree"),
    (["train", "--top_p", "1.5"], "top_p"),
    (["train", "--eps_elc", "0.9"], "eps_elc"),
    (["train", "--x_min", "3", "--x_max", "2"], "x_min"),
    (["train", "--steps", "many"], "steps"),
    (["train", "--progress", "maybe"], "progress"),
    (["train", "--lamda_tree", "0.3"], "lambda_tree"),
    (["train", "--kl_coef", "0.1"], "kl_coef"),
    (["train", "--task", "gsm9k"], "task"),
    (["train", "--task", "gsm", "--executor", "arith"], "executor"),
    (["train", "lr", "3"], "lr"),
    (["train", "--config", "{tmp}/missing.yaml"], "missing.yaml"),
    (["train", "--config", "{tmp}/list.yaml"], "list.yaml"),
    (["train", "--config", "{tmp}/lr_list.yaml"], "lr"),
    (["train", "--config", "{tmp}/null.yaml"], "n_total"),
    (["train", "--config", "{tmp}/malformed.yaml"], "malformed.yaml line"),
    (["train", "--config", "{tmp}/unknown.yaml"], "bogus"),
    (["train", "--train_data", "{tmp}/nope.jsonl"], "train_data"),
    (["train", "--train_data", "{tmp}/empty.jsonl"], "empty.jsonl"),
    (["train", "--train_data", "{tmp}/latin1.jsonl"], "latin1.jsonl:1"),
    (["train", "--train_data", "{tmp}/dup.jsonl"], "dup.jsonl:2"),
    (["train", "--train_data", "{tmp}/badrow.jsonl"], "badrow.jsonl:2"),
    (["train", "--train_data", "{tmp}/wrong_answer.jsonl"], "wrong_answer.jsonl:1"),
    (["train", "--model", "{tmp}/no_model"], "no_model"),
    (["train", "--model", "no-such-org/no-such-model"], "no-such-org/no-such-model"),
    (["train", "--resume", "--out_dir", "{tmp}/fresh"], "fresh"),
    (["eval", "--problems", "x"], "--problems"),
    (["eval", "--max_turns", "0"], "max_turns"),
    (["warmup", "--steps", "x"], "--steps"),
    (["bogus"], "bogus"),
    (["demo", "--lr", "1"], "--lr"),
    (["make-data", "--task", "mnist"], "--task"),
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad_inputs")
    for name, text in FILES.items():
        (tmp / name).write_text(text)
    row = json.dumps({**ROW, "id": "café"}, ensure_ascii=False)
    (tmp / "latin1.jsonl").write_bytes(row.encode("latin-1") + b"\n")
    return tmp


@pytest.mark.parametrize("argv, named", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_a_bad_command_line_is_one_line_naming_the_problem(
    argv, named, folder, capsys, monkeypatch
):
    import elpo_min.launch.build as build

    real_load = build.load_policy

    def guarded_load(name, *args, **kwargs):
        # only the cases about the model itself may get this far
        assert "model" in named or "no_model" in named or "/" in named, "loaded a model"
        return real_load(name, *args, **kwargs)

    monkeypatch.setattr(build, "load_policy", guarded_load)
    argv = [a.replace("{tmp}", str(folder)) for a in argv]
    if argv[0] == "train" and "--out_dir" not in argv:
        argv += ["--out_dir", str(folder / "run")]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert exit_info.value.code == 2, captured.err
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert named in lines[0], lines[0]
    assert "Traceback" not in captured.err + captured.out


def test_there_are_at_least_forty_cases():
    assert len(CASES) >= 40


def test_debug_shows_the_traceback(tmp_path):
    # the real entry point once: one line and exit code 2
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    args = [sys.executable, "-m", "elpo_min", "train", "--lr", "0"]
    plain = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, env=env)
    assert plain.returncode == 2 and plain.stderr.strip().count("\n") == 0
    assert "config field lr" in plain.stderr
    # --debug lets the error itself escape main(), and with it the interpreter's traceback
    with pytest.raises(UserError, match="config field lr"):
        main(["train", "--lr", "0", "--debug", "--out_dir", str(tmp_path / "run")])


def test_threads_zero_keeps_torchs_default_and_a_count_sets_it():
    import torch

    from elpo_min.launch.build import use_threads

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        use_threads(0)
        assert torch.get_num_threads() == 1
        use_threads(2)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
