"""Token-exactness with a real byte-level BPE and a ChatML template, in the fenced TIR format.

A character tokenizer cannot merge across a turn boundary, so the rollout tests on the toy
cannot catch a decode/re-encode bug. This BPE can: merges cross whitespace and backticks
(``use_regex=False``), and the first test proves that re-encoding the decoded text of these
trajectories does change ids. Every other test then shows the engine never does that.
"""

import pytest
import torch
from conftest import BPE_QUESTION

from elpo_min.diagnostics import read_log
from elpo_min.fast_update import chunked_token_logprobs
from elpo_min.logprobs import token_logprobs
from elpo_min.rollout import RolloutEngine
from elpo_min.tasks import FencedFormat, WordProblem, check_answer
from elpo_min.tools import PythonTool
from elpo_min.trajectory import collate


@pytest.fixture(scope="module")
def engine_and_trajs(bpe_chat_policy):
    model, tok, _ = bpe_chat_policy
    engine = RolloutEngine(
        model,
        tok,
        FencedFormat.for_chat(tok),
        lambda p: p.question,
        lambda p, a: check_answer(a, p.answer),
        tool=PythonTool(),
        max_new_tokens=64,
        max_turns=4,
    )
    torch.manual_seed(0)
    trajs = engine.rollout([engine.start(WordProblem(BPE_QUESTION, "13"))], 8)[0]
    return engine, trajs


def test_re_encoding_would_change_ids_so_these_tests_can_fail(engine_and_trajs):
    engine, trajs = engine_and_trajs
    assert sum(t.num_steps >= 2 for t in trajs) >= 4 and any(t.success for t in trajs)
    assert any(engine.encode(engine.tokenizer.decode(t.token_ids)) != t.token_ids for t in trajs)


def test_trajectory_ids_are_sampled_ids_plus_framing_encoded_once(engine_and_trajs):
    engine, trajs = engine_and_trajs
    fmt = engine.fmt
    for t in trajs:
        assert t.token_ids[: t.prompt_len] == engine.start(t.problem).token_ids
        for turn in t.turns:
            assert t.action_mask[turn.start : turn.end] == [1] * (turn.end - turn.start)
            if turn.out_end > turn.end:  # the tool output: framing + output, encoded on its own
                framed = fmt.output_ids(engine.tokenizer, turn.output)
                assert t.token_ids[turn.end : turn.out_end] == framed
                assert t.action_mask[turn.end : turn.out_end] == [0] * len(framed)


def test_framing_tokenizes_the_same_wherever_it_is_appended(engine_and_trajs):
    engine, trajs = engine_and_trajs
    by_output = {}
    for t in trajs:
        for turn in t.turns:
            if turn.out_end > turn.end:
                by_output.setdefault(turn.output, set()).add(
                    tuple(t.token_ids[turn.end : turn.out_end])
                )
    assert len(by_output.get("12", ())) == 1 and len(by_output.get("13", ())) == 1
    for ids in by_output.values():
        assert len(ids) == 1  # same output -> same ids, after any turn text


def test_python_state_persists_across_the_calls_of_a_trajectory(engine_and_trajs):
    _, trajs = engine_and_trajs
    second = [t.turns[1] for t in trajs if t.num_steps >= 2 and "x + 1" in (t.turns[1].code or "")]
    assert second and all(turn.output == "13" and not turn.failed for turn in second)


def test_ids_trained_on_are_the_ids_sampled_and_logprobs_match(engine_and_trajs, bpe_chat_policy):
    model, tok, _ = bpe_chat_policy
    _, trajs = engine_and_trajs
    batch = collate(trajs, tok.pad_token_id)
    for row, t in enumerate(trajs):
        assert batch["input_ids"][row, : len(t.token_ids)].tolist() == t.token_ids
    with torch.no_grad():
        logp = chunked_token_logprobs(model, batch["input_ids"], batch["attention_mask"], chunk=29)
    mask = batch["action_mask"].bool()
    assert mask.sum() > 100
    assert torch.allclose(logp[mask], batch["old_logp"][mask], atol=1e-4)


def test_continuation_from_a_prefix_never_re_tokenizes(engine_and_trajs, bpe_chat_policy):
    model, tok, _ = bpe_chat_policy
    engine, trajs = engine_and_trajs
    parent = next(t for t in trajs if t.num_steps >= 2)
    cut = parent.turns[0].out_end
    torch.manual_seed(1)
    children = engine.rollout([parent.prefix(1)], 4)[0]
    for child in children:
        assert child.token_ids[:cut] == parent.token_ids[:cut]
        assert child.logprobs[:cut] == parent.logprobs[:cut]
    batch = collate(children, tok.pad_token_id)
    with torch.no_grad():
        logp = token_logprobs(model, batch["input_ids"], batch["attention_mask"])
    new = batch["action_mask"].bool()
    new[:, :cut] = False  # the continuation's own sampled tokens
    assert new.sum() > 10
    assert torch.allclose(logp[new], batch["old_logp"][new], atol=1e-4)


def test_one_train_step_on_gsm_with_a_tiny_chat_model(bpe_chat_policy, tmp_path):

    from elpo_min.launch import load_config, run_training

    _, _, folder = bpe_chat_policy
    cfg = load_config(
        None,
        {
            "model": str(folder),
            "task": "gsm",
            "steps": 1,
            "prompts_per_step": 2,
            "n_total": 4,
            "b_max": 2,
            "eval_problems": 2,
            "max_new_tokens": 24,
            "max_turns": 2,
            "out_dir": str(tmp_path / "run"),
            "progress": False,
            "threads": 1,
        },
    )
    result = run_training(cfg)
    records = read_log(tmp_path / "run" / "metrics.jsonl")
    step = next(r for r in records if r["step"] == 1 and "loss" in r)
    assert step["rollouts_per_prompt"] == 4 and result["steps"] == 1
    assert (tmp_path / "run" / "checkpoint" / "model" / "tokenizer.json").is_file()
