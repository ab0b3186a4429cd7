"""Tasks: answer checking, the shipped gsm splits, and the errors a user meets first."""

import filecmp
import json

import pytest

from elpo_min import tasks
from elpo_min.launch import load_config

EQUAL = [
    ("\\boxed{18}", "18"),
    ("The answer is \\boxed{18}.", "18"),
    ("18.00", "18"),
    ("5 dollars", "5"),
    ("x = 5", "5"),
    ("\\dfrac{3}{4}", "0.75"),
    ("\\boxed{\\dfrac{3}{4}}", "3/4"),
    ("$\\frac{3}{4}$", "\\frac{3}{4}"),
    ("1,234", "1234"),
    ("\\boxed{1,234}", "1234"),
    ("0.5", "\\frac{1}{2}"),
    ("  42 \n", "42"),
    ("-7", "-7"),
    ("\\boxed{\\sqrt{4}}", "2"),
    ("100\\%", "100"),
]
UNEQUAL = [
    ("\\boxed{17}", "18"),
    ("18.5", "18"),
    ("\\dfrac{3}{5}", "0.75"),
    ("-5", "5"),
    ("1,235", "1234"),
    ("x = 6", "5"),
]


@pytest.mark.parametrize("prediction,gold", EQUAL)
def test_equal_forms_are_accepted(prediction, gold):
    assert tasks.check_answer(prediction, gold)


@pytest.mark.parametrize("prediction,gold", UNEQUAL)
def test_unequal_forms_are_rejected(prediction, gold):
    assert not tasks.check_answer(prediction, gold)


@pytest.mark.parametrize(
    "garbage", ["", "   ", None, "no idea", "\\boxed{", "}{}{", "\\frac{{{", "$$$$", "x" * 5000]
)
def test_garbage_is_false_never_an_exception(garbage):
    assert tasks.check_answer(garbage, "5") is False


def test_outcomes_name_the_cause_of_a_failure():
    assert tasks.answer_outcome(None, "5") == "no answer"
    assert tasks.answer_outcome("  ", "5") == "no answer"
    assert tasks.answer_outcome("no idea", "5") == "unparseable"
    assert tasks.answer_outcome("6", "5") == "wrong"
    assert tasks.answer_outcome("\\boxed{5}", "5") == "correct"


def test_last_boxed_balances_braces():
    assert tasks.last_boxed("a \\boxed{1} then \\boxed{\\frac{1}{2}} done") == "\\frac{1}{2}"
    assert tasks.last_boxed("\\boxed{\\frac{1}{2}") is None
    assert tasks.last_boxed("no box") is None


def test_gsm_splits_regenerate_byte_for_byte(tmp_path):
    tasks.make_gsm_data(tmp_path)
    for split, (size, _) in tasks.GSM_SPLITS.items():
        shipped = tasks.data_dir() / f"gsm_{split}.jsonl"
        assert filecmp.cmp(tmp_path / f"gsm_{split}.jsonl", shipped, shallow=False), split
        assert len(shipped.read_text().splitlines()) == size
    questions = [
        json.loads(line)["question"]
        for s in tasks.GSM_SPLITS
        for line in (tasks.data_dir() / f"gsm_{s}.jsonl").read_text().splitlines()
    ]
    assert len(questions) == len(set(questions)) >= 2700  # no problem in two splits


def test_gsm_gold_answers_check_against_themselves():
    task = tasks.load_task("gsm", test_limit=50)
    assert len(task.train) == 2000 and len(task.test) == 50
    assert all(task.check(p, f"\\boxed{{{p.answer}}}") for p in task.test)
    assert not any(task.check(p, str(float(p.answer) + 1)) for p in task.test)


def test_unknown_task_names_the_choices():
    with pytest.raises(ValueError, match="'toy', 'gsm' or 'hf:"):
        tasks.load_task("gsm9k")
    with pytest.raises(ValueError, match="config field task"):
        load_config(None, {"task": "gsm9k"})


def test_row_with_a_missing_field_names_line_and_field(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(
        '{"id": "a", "question": "1+1?", "answer": "2"}\n{"id": "b", "question": "2+2?"}\n'
    )
    with pytest.raises(ValueError, match=r"bad.jsonl:2: field 'answer'"):
        tasks.load_task("gsm", train_data=str(path))


def test_a_row_limit_reads_that_many_rows_and_nothing_after_them(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"id": "a"}\n{"id": "b"}\nnot json\n')
    fields = {"id": str}
    assert tasks.read_jsonl(path, fields, "make it", limit=0) == []
    assert [r["id"] for r in tasks.read_jsonl(path, fields, "make it", limit=2)] == ["a", "b"]
    # without a limit the bad third line is read, and named
    with pytest.raises(ValueError, match=r"rows.jsonl:3"):
        tasks.read_jsonl(path, fields, "make it")


def test_hub_dataset_offline_fails_at_once_saying_what_to_do(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(RuntimeError, match="Unset HF_HUB_OFFLINE.*or use --task gsm"):
        tasks.load_task("hf:openai/gsm8k")


def test_word_problems_need_the_python_tool():
    with pytest.raises(ValueError, match="--executor python"):
        load_config(None, {"task": "gsm", "executor": "arith"})
