"""The shipped tiny policy and model loading."""

import json

import pytest
import torch

from elpo_min import toy
from elpo_min.metrics import evaluate, maj_at_k, pass_at_k
from elpo_min.models import TINY_POLICY_DIR, load_policy
from elpo_min.rollout import RolloutEngine

RECORD = json.loads((TINY_POLICY_DIR / "tiny_policy.json").read_text())


def test_checkpoint_is_small_and_records_how_it_was_made():
    size = sum(f.stat().st_size for f in TINY_POLICY_DIR.iterdir())
    assert size < 10 * 2**20
    assert RECORD["command"].startswith("python -m elpo_min warmup")
    assert RECORD["params"] <= 5_000_000
    assert 0.30 <= RECORD["heldout_success"] <= 0.70


def test_shipped_policy_reproduces_its_recorded_success_rate(shipped_policy):
    model, tok = shipped_policy
    test = [toy.problem_from_row(r) for r in toy.load_problems(
        "data/toy_test.jsonl", limit=RECORD["eval_problems"])]
    torch.manual_seed(RECORD["eval_seed"])
    summary = evaluate(RolloutEngine(model, tok), test, k=1, progress=False)
    assert abs(summary["success_rate"] - RECORD["heldout_success"]) <= 0.05


def test_missing_model_path_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_policy(tmp_path / "no_such_model")


def test_tokenizer_round_trips_the_turn_format(shipped_policy):
    _, tok = shipped_policy
    text = "Q: 12 *7\n<c>12*7</c><o>84</o><a>84</a>"
    ids = tok.encode(text, add_special_tokens=False)
    assert tok.decode(ids) == text
    assert len(tok.encode("<c>", add_special_tokens=False)) == 1


def test_pass_at_k_by_hand():
    assert pass_at_k(4, 0, 1) == 0.0 and pass_at_k(4, 4, 4) == 1.0
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25)
    assert pass_at_k(4, 1, 2) == pytest.approx(0.5)  # 1 - C(3,2)/C(4,2) = 1 - 3/6
    with pytest.raises(ValueError):
        pass_at_k(2, 1, 3)


def test_maj_at_k_by_hand():
    assert maj_at_k(["5", "7", "7", None], [True, False, False, False]) is False
    assert maj_at_k(["5", "5", "7", None], [True, True, False, False]) is True
    assert maj_at_k([None, None], [False, False]) is False
