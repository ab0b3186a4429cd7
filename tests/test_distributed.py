"""Data parallel on CPU (gloo, 2 processes, launched by ``accelerate launch`` with the shipped
configs or by torchrun): the same update as one process on the union batch, exact resume at the
same world size, rank-0-only files written once. DDP, and FSDP2 with LoRA, whose checkpoint also
loads in one process. docs/distributed.md has the table of what is tested where."""

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import rank_of

from elpo_min.diagnostics import read_log

pytest.importorskip("accelerate")
HERE = Path(__file__).resolve().parent
CONFIGS = HERE.parent / "configs" / "accelerate"
# the script the launches run; its run settings and its rewinding of a run are shared here
sys.path.insert(0, str(HERE))
from dist_update_worker import RUN, resume_from_step  # noqa: E402


def launch(args: list[str], cwd: Path, timeout: int = 300, check: bool = True, config=None):
    """``torchrun --standalone --nproc_per_node 2`` (a free port of its own), one thread each;
    with ``config``, ``accelerate launch --config_file config`` (2 processes, a free port).

    Returns the finished process; ``check`` asserts that it exited with 0.
    """
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    if config is None:
        launcher = ["torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    else:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        launcher = ["accelerate.commands.launch", "--config_file", str(config)]
        launcher += ["--num_processes", "2", "--main_process_port", str(port)]
    cmd = [sys.executable, "-m", *launcher, *args]
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check:
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def test_two_processes_take_the_update_of_one_process_on_the_union_batch(tmp_path):
    from dist_update_worker import main

    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    # this process: all 4 prompts' trees, one pass, per-leaf rows
    main(str(tmp_path / "one"), 0)
    # 2 ranks, micro-batches, the packed update, launched by accelerate with the DDP config
    worker = [
        str(HERE / "dist_update_worker.py"),
        str(tmp_path / "two"),
        "3",
        "--forward",
        "packed",
    ]
    launch(worker, tmp_path, config=CONFIGS / "ddp.yaml")
    for name in (
        "elpo_seq-mean-token-mean",
        "elpo_token-mean",
        "grpo_seq-mean-token-mean",
        "grpo_token-mean",
    ):
        one, two = (torch.load(tmp_path / d / f"{name}.pt") for d in ("one", "two"))
        assert one["sequences"] == two["sequences"] == 16
        assert not two["sharded"] and two["fsdp_units"] == 0
        assert two["loss"] == pytest.approx(one["loss"], rel=1e-5, abs=1e-7), name
        # the update is not trivial (GRPO's sequence-mean loss is 0 at a uniform ratio: its
        # z-scored advantages sum to 0 over each group, while the gradient does not vanish)
        assert one["grad_norm"] > 1e-3
        assert two["grad_norm"] == pytest.approx(one["grad_norm"], rel=1e-5), name
        for a, b in zip(one["params"], two["params"]):
            assert torch.allclose(a, b, atol=1e-6), name


def records(run: Path) -> list[dict]:
    return read_log(run / "metrics.jsonl")


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


@pytest.fixture(scope="module")
def fsdp_launch(tmp_path_factory):
    """One ``accelerate launch`` of the shipped FSDP config, two CPU processes over gloo: the
    worker's LoRA updates with micro-batches, then ``train`` with LoRA for 2 steps saving every
    step, and the same run resumed from its step-1 checkpoint."""
    folder = tmp_path_factory.mktemp("fsdp")
    (folder / "two").mkdir()
    worker = [str(HERE / "dist_update_worker.py"), str(folder / "two"), "3", "--lora_rank", "8"]
    args = [*worker, "--algos", "elpo", "--train", str(folder / "train"), "--forward", "packed"]
    launch(args, folder, config=CONFIGS / "fsdp.yaml")
    return folder


def test_fsdp_two_processes_take_the_update_of_one_process_on_the_union_batch(
    fsdp_launch, tmp_path
):
    from dist_update_worker import main

    main(str(tmp_path), 0, lora_rank=8, algos=["elpo"])  # this process: all 4 trees, one pass
    for name in ("elpo_seq-mean-token-mean", "elpo_token-mean"):
        one = torch.load(tmp_path / f"{name}.pt")
        two = torch.load(fsdp_launch / "two" / f"{name}.pt")
        # sharded for real: accelerate on CPU would have run DDP instead
        assert two["sharded"] and not one["sharded"]
        assert two["fsdp_units"] == 4 + 1  # the tiny policy's 4 decoder layers, and the root
        assert one["sequences"] == two["sequences"] == 16
        assert two["loss"] == pytest.approx(one["loss"], rel=1e-5, abs=1e-7), name
        assert one["loss"] != 0.0
        # the global norm over the shards, as one process computes it on whole gradients
        assert two["grad_norm"] == pytest.approx(one["grad_norm"], rel=1e-5), name
        for a, b in zip(one["params"], two["params"]):
            assert torch.allclose(a, b, atol=1e-6), name


def test_fsdp_resumed_run_matches_an_uninterrupted_one_and_rank_0_writes_once(fsdp_launch):
    straight, resumed = fsdp_launch / "train" / "straight", fsdp_launch / "train" / "resumed"
    log, again = records(straight), records(resumed)
    assert [r["step"] for r in log] == [r["step"] for r in again] == [0, 1, 2]
    assert all(r["world_size"] == 2 for r in log)
    files = sorted(p.name for p in straight.iterdir())
    assert files == [".lock", "checkpoint", "checkpoints", "learning_curve.png", "metrics.jsonl"]
    for key in ("loss", "train_success", "clip_frac", "sequences", "grad_norm"):
        assert again[2][key] == log[2][key], key
    assert again[2]["eval"] == log[2]["eval"]
    state = {
        d: torch.load(d / "checkpoint" / "trainer_state.pt", weights_only=False)
        for d in (straight, resumed)
    }
    assert os.readlink(resumed / "checkpoint") == "checkpoints/step-000002"
    for name, value in state[straight]["trainable"].items():
        assert torch.equal(value, state[resumed]["trainable"][name]), name


def test_a_checkpoint_saved_under_fsdp_loads_and_trains_on_in_one_process(fsdp_launch, tmp_path):
    """The step-1 checkpoint holds whole tensors, not rank 0's shards: the adapter loads as a
    model, and the weights and optimizer state load into one process, which takes a step."""
    from conftest import rank_of

    from elpo_min.checkpoints import load_checkpoint
    from elpo_min.config import Config
    from elpo_min.models import load_policy
    from elpo_min.train import policy_update

    run = tmp_path / "run"
    shutil.copytree(fsdp_launch / "train" / "straight", run, symlinks=True)
    version = run / "checkpoints" / "step-000001"
    saved = torch.load(version / "trainer_state.pt", weights_only=False)
    model, _ = load_policy(lora_rank=8)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=0.01)
    trainable = dict(model.named_parameters())
    assert saved["trainable"].keys() == {n for n, p in trainable.items() if p.requires_grad}
    # the CLI's --resume insists on the world size that wrote it (for an exact resume); the
    # state itself loads anywhere
    os.remove(run / "checkpoint")
    os.symlink("checkpoints/step-000001", run / "checkpoint")
    assert load_checkpoint(run, model, optimizer, rank_of(0, 2)) == 1
    for name, value in saved["trainable"].items():
        assert torch.equal(trainable[name].detach(), value), name
    moments = [s["exp_avg"] for s in optimizer.state.values()]
    assert len(moments) == len(saved["trainable"])
    assert all(m.shape == p.shape for m, p in zip(moments, optimizer.param_groups[0]["params"]))
    # the saved adapter alone, loaded as a model: the same LoRA weights
    adapted, _ = load_policy(str(version / "model"))
    loaded = dict(adapted.named_parameters())
    for name, value in saved["trainable"].items():
        assert torch.equal(loaded[name.removeprefix("base_model.model.")], value), name
    # and training goes on in this process: one AdamW step on the restored moments
    before = [p.detach().clone() for p in optimizer.param_groups[0]["params"]]
    ids = torch.randint(2, 100, (2, 6))  # [B, T]
    action = torch.tensor([[0, 0, 0, 1, 1, 1]] * 2)  # [B, T]
    batch = {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "action_mask": action,
        "old_logp": torch.zeros(ids.shape),
        "advantages": action.float(),
        "elc_mask": torch.zeros(ids.shape),
    }
    policy_update(model, optimizer, batch, Config(lora_rank=8))
    after = optimizer.param_groups[0]["params"]
    assert any(not torch.equal(a, b) for a, b in zip(before, after))


@pytest.mark.parametrize(
    "env, message",
    [
        ({"ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "1"}, "set fsdp_version: 2"),
        (
            {"ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "2", "FSDP_OFFLOAD_PARAMS": "true"},
            "offload",
        ),
        ({"ACCELERATE_USE_DEEPSPEED": "true"}, "DeepSpeed without a GPU"),
    ],
)
def test_a_launch_config_elpo_min_would_not_honour_fails_at_start(monkeypatch, env, message):
    """What accelerate would quietly drop on CPU (FSDP, DeepSpeed: it runs DDP instead) or
    elpo_min does not implement is an error before any process group or model exists."""
    from elpo_min.errors import ConfigError
    from elpo_min.parallel import runtime

    if "DEEPSPEED" in str(env) and torch.cuda.is_available():
        pytest.skip("DeepSpeed is refused only without a GPU")
    monkeypatch.setenv("WORLD_SIZE", "2")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        runtime()
