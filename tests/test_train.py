"""Trainer: config validation, tree -> training batch, LoRA/QLoRA, degenerate batches, resume."""

import pytest
import torch
from conftest import TINY_RUN

from elpo_min import toy
from elpo_min.bel import BELResult, PromptTree
from elpo_min.config import Config
from elpo_min.diagnostics import read_log, toy_step_metrics
from elpo_min.launch import load_config, parse_overrides, run_training
from elpo_min.models import load_policy
from elpo_min.tasks import data_dir
from elpo_min.train import policy_update, training_batch
from elpo_min.trajectory import Trajectory, Turn

TINY_POLICY_DIR = data_dir() / "tiny_policy"


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"n_total": 1}, "n_total"),
        ({"x_min": 3, "x_max": 2}, "x_min"),
        ({"eps_low": -0.1}, "eps_low"),
        ({"eps_elc": -0.1}, "eps_elc"),
        ({"lambda_tree": 1.2}, "lambda_tree"),
        ({"algo": "ppo"}, "algo"),
        ({"elc_scope": "tree"}, "elc_scope"),
        ({"kl_coef": 0.1}, "kl_coef"),
    ],
)
def test_bad_config_fails_before_any_rollout_naming_the_field(overrides, field, monkeypatch):
    import elpo_min.launch.build as build_module

    monkeypatch.setattr(build_module, "load_policy", lambda *a, **k: pytest.fail("loaded a model"))
    with pytest.raises(ValueError, match=f"config field {field}"):
        run_training(load_config(None, overrides))


def test_unknown_config_key_is_rejected_with_a_suggestion(tmp_path):
    with pytest.raises(
        ValueError, match="unknown config key 'lamda_tree'; did you mean 'lambda_tree'"
    ):
        load_config(None, {"lamda_tree": 0.3})
    path = tmp_path / "c.yaml"
    path.write_text("lr: 0.001\nbogus: 1\n")
    with pytest.raises(ValueError, match="unknown config key 'bogus'"):
        load_config(str(path))


def test_cli_overrides_are_typed_and_win_over_yaml(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("lr: 0.001\nalgo: grpo\n")
    cfg = load_config(
        str(path), parse_overrides(["--lr", "3e-4", "--elc-unprobed", "false", "--steps=7"])
    )
    assert (cfg.lr, cfg.algo, cfg.elc_unprobed, cfg.steps) == (3e-4, "grpo", False, 7)
    with pytest.raises(ValueError, match="config field steps: expected an integer"):
        load_config(None, parse_overrides(["--steps", "many"]))


def test_a_value_after_equals_is_kept_as_written():
    # only the key's hyphens become underscores: a path such as runs/my-run stays intact
    overrides = parse_overrides(["--out-dir=runs/my-run", "--train_data", "data/a-b.jsonl"])
    assert overrides == {"out_dir": "runs/my-run", "train_data": "data/a-b.jsonl"}


def make_traj(tok, problem, turns, reward):
    """A finished trajectory with ``turns`` tool steps and a final answer turn."""
    ids = tok.encode(problem.prompt)
    traj = Trajectory(
        problem, list(ids), [0] * len(ids), [-0.5] * len(ids), [1.0] * len(ids), len(ids)
    )
    for i in range(turns + 1):
        code = tok.encode("<c>1+1</c>" if i < turns else "<a>2</a>")
        out = tok.encode("<o>2</o>") if i < turns else []
        s = len(traj.token_ids)
        traj.token_ids += code + out
        traj.action_mask += [1] * len(code) + [0] * len(out)
        traj.logprobs += [-0.5] * (len(code) + len(out))
        traj.entropies += [1.0] * (len(code) + len(out))
        traj.turns.append(
            Turn(
                s,
                s + len(code),
                s + len(code) + len(out),
                code="1+1" if i < turns else None,
                output="2" if i < turns else None,
            )
        )
    traj.reward = float(reward)
    traj.success = bool(reward)
    return traj


def test_training_batch_attributes_advantages_per_step_and_elc_suffix(shipped_policy):
    _, tok = shipped_policy
    p = toy.Problem(1, (("+", 1),), id="x")
    tau = make_traj(tok, p, 3, 0)
    ok = make_traj(tok, p, 3, 1)
    child = tau.prefix(1)
    child.token_ids += ok.token_ids[ok.turns[1].start :]
    child.action_mask += ok.action_mask[ok.turns[1].start :]
    child.logprobs += ok.logprobs[ok.turns[1].start :]
    child.entropies += ok.entropies[ok.turns[1].start :]
    child.turns += [Turn(t.start, t.end, t.out_end, t.code) for t in ok.turns[1:]]
    child.reward = 1.0
    tree = PromptTree(
        p, [tau, ok, child], {id(child): (tau, 1)}, [(tau, BELResult(2, [(1, [True])], 1))], 3
    )
    batch, info = training_batch([tree], Config(), tok.pad_token_id, step_metrics=toy_step_metrics)
    assert batch["input_ids"].shape[0] == 3 and info["t_crit_mean"] == 2 and info["unprobed"] == 0
    # values (1, 2): step 1's output 2 is right, step 2 repeats it, so the oracle's first wrong
    # step is 2
    assert info["t_crit_oracle_agree"] == 1.0
    off = PromptTree(p, [tau, ok], {}, [(tau, BELResult(3, [(2, [True])], 1))], 2)
    off_info = training_batch([off], Config(), tok.pad_token_id, step_metrics=toy_step_metrics)[1]
    assert off_info["t_crit_oracle_agree"] == 0.0
    # a search that never probed keeps the default t_crit = 1, which is no finding to average
    unprobed = PromptTree(p, [tau, ok], {}, [(tau, BELResult(1, [], 0))], 2)
    unprobed_info = training_batch([unprobed], Config(), tok.pad_token_id)[1]
    assert unprobed_info["unprobed"] == 1 and unprobed_info["t_crit_mean"] is None
    adv, elc, act = batch["advantages"], batch["elc_mask"], batch["action_mask"]
    assert torch.all(adv[act == 0] == 0) and torch.all(elc[act == 0] == 0)
    # tau's step 1 is shared with the successful child: values (0 + 1)/2 vs the other root child 1
    t1 = slice(tau.turns[0].start, tau.turns[0].end)
    t2 = slice(tau.turns[1].start, tau.turns[1].end)
    assert (
        torch.allclose(adv[0, t1], adv[2, t1]) and adv[0, t2].lt(0).all() and adv[2, t2].gt(0).all()
    )
    assert (
        elc[0, t1].sum() == 0
        and elc[0, t2].eq(1).all()
        and elc[0].sum() == act[0, t2.start :].sum()
    )
    assert elc[1].sum() == 0 and elc[2].sum() == 0  # trajectory scope: only tau*


@pytest.mark.parametrize(
    "rewards, turns", [([1, 1, 1], 2), ([0, 0, 0], 2), ([0, 1, 0], 0), ([1, 0, 0], 1)]
)
def test_degenerate_batches_train_without_nans(shipped_policy, rewards, turns):
    model, tok = load_policy()
    p = toy.Problem(1, (("+", 1),), id="x")
    trajs = [make_traj(tok, p, turns, r) for r in rewards]
    searches = [(trajs[0], BELResult(1))] if 0 in rewards else []
    tree = PromptTree(p, trajs, {}, searches, 3)
    batch, info = training_batch([tree], Config(), tok.pad_token_id, step_metrics=toy_step_metrics)
    assert info["t_crit_oracle_agree"] is None  # unprobed searches are not compared with the oracle
    stats = policy_update(model, torch.optim.AdamW(model.parameters(), lr=1e-4), batch, Config())
    assert all(torch.isfinite(torch.tensor(v)) for v in stats.values())
    assert all(torch.isfinite(p).all() for p in model.parameters())
    if len(set(rewards)) == 1:
        assert stats["loss"] == 0.0


def one_update(model, tok):
    p = toy.Problem(1, (("+", 1),), id="x")
    trajs = [make_traj(tok, p, 2, r) for r in (0, 1, 0, 1)]
    batch, _ = training_batch([PromptTree(p, trajs, {}, [], 4)], Config(), tok.pad_token_id)
    params = [q for q in model.parameters() if q.requires_grad]
    policy_update(model, torch.optim.AdamW(params, lr=1e-2), batch, Config())


def test_lora_step_changes_adapter_only():
    model, tok = load_policy(TINY_POLICY_DIR, lora_rank=4)
    before = {n: q.detach().clone() for n, q in model.named_parameters()}
    one_update(model, tok)
    changed = {n for n, q in model.named_parameters() if not torch.equal(q, before[n])}
    assert changed and all("lora_" in n for n in changed)
    assert any("lora_B" in n for n in changed)


def test_qlora_step_runs_on_cpu():
    pytest.importorskip("bitsandbytes")
    model, tok = load_policy(TINY_POLICY_DIR, lora_rank=4, load_in_4bit=True)
    assert any("4bit" in type(m).__name__ for m in model.modules())
    before = {n: q.detach().clone() for n, q in model.named_parameters() if q.requires_grad}
    with torch.no_grad():  # a no-grad pass first: the AVX512-BF16 repacking trap
        model(input_ids=torch.tensor([tok.encode("Q: 1 +1\n")]))
    one_update(model, tok)
    assert any(
        not torch.equal(q, before[n]) for n, q in model.named_parameters() if q.requires_grad
    )


def test_resume_without_checkpoint_is_a_clear_error(tmp_path):
    cfg = load_config(None, {**TINY_RUN, "out_dir": str(tmp_path / "none")})
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        run_training(cfg, resume=True)


def test_lora_run_with_kl_to_the_adapter_free_reference_and_gradient_checkpointing(tmp_path):
    cfg = load_config(
        None,
        {
            **TINY_RUN,
            "steps": 1,
            # the adapter starts at zero, so the KL is 0 until the first epoch has updated it
            "ppo_epochs": 2,
            "lora_rank": 4,
            "kl_coef": 0.05,
            "gradient_checkpointing": True,
            "out_dir": str(tmp_path),
        },
    )
    run_training(cfg)
    record = read_log(tmp_path / "metrics.jsonl")[1]
    assert record["kl_ref"] > 0.0 and torch.isfinite(torch.tensor(record["loss"]))
    saved = {p.name for p in (tmp_path / "checkpoint" / "model").iterdir()}
    assert "adapter_model.safetensors" in saved and "model.safetensors" not in saved  # adapter only


def test_missing_bitsandbytes_is_a_clear_message(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "bitsandbytes", None)
    with pytest.raises(ImportError, match=r"load_in_4bit needs bitsandbytes.*elpo_min\[quant\]"):
        load_policy(TINY_POLICY_DIR, lora_rank=4, load_in_4bit=True)


def test_training_batch_logs_step_level_credit_for_both_rules(shipped_policy):
    _, tok = shipped_policy
    p = toy.Problem(1, (("+", 1),), id="x")
    # fail: outputs 2, 2, 2 -> fatal step 2
    fail = make_traj(tok, p, 3, 0)
    win = make_traj(tok, p, 1, 1)
    tree = PromptTree(p, [fail, win], {}, [(fail, BELResult(2, [(1, [True])], 1))], 2)
    info = training_batch([tree], Config(), tok.pad_token_id, step_metrics=toy_step_metrics)[1]
    # two leaves z-score to -1 and +1 and nothing branches below the root, so every turn of
    # `fail` has -1 and of `win` +1 under both rules. Sound turns (fail's first, win's two) are
    # -1, +1, +1 against the fatal -1: two wins and a tie = 2.5 of 3 pairs
    assert info["credit_auc"] == info["credit_auc_lambda0"] == pytest.approx(2.5 / 3)
    assert info["sound_punished"] == 1.0 and info["unequal_failed"] == 0.0
    # ELC covers steps t_crit = 2 .. end
    assert info["elc_fatal"] == 1.0 and info["elc_sound"] == 0.0
    grpo = training_batch(
        [tree], Config(algo="grpo"), tok.pad_token_id, step_metrics=toy_step_metrics
    )[1]
    assert grpo["credit_auc"] == pytest.approx(2.5 / 3) and "credit_auc_lambda0" not in grpo
