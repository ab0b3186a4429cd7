"""The toy TIR world: generator, parser, checker, oracle, data files."""

import filecmp
import json
import random

import pytest

from elpo_min import toy
from elpo_min.sft import demo_steps, demonstration
from elpo_min.tasks import data_dir, load_problems, make_data
from elpo_min.tasks.toy_data import problem_to_row

P = toy.Problem(12, (("*", 7), ("+", 100), ("-", 5)), id="hand")  # 84, 184, 179


def test_values_and_prompt():
    assert P.values == [12, 84, 184, 179] and P.answer == 179
    assert P.prompt == "Q: 12 *7 +100 -5\n"


def test_generator_is_seeded_and_respects_knobs():
    a = toy.generate_problems(50, seed=3, min_ops=4, max_ops=5, digits=4)
    assert a == toy.generate_problems(50, seed=3, min_ops=4, max_ops=5, digits=4)
    assert a != toy.generate_problems(50, seed=4, min_ops=4, max_ops=5, digits=4)
    assert all(4 <= len(p.ops) <= 5 and 1000 <= p.start <= 9999 for p in a)
    with pytest.raises(ValueError, match="min_ops"):
        toy.generate_problems(1, seed=0, min_ops=5, max_ops=3)


def test_hard_digits_put_one_long_operand_where_hard_step_points():
    problems = toy.generate_problems(200, seed=7, min_ops=3, max_ops=5, hard_digits=7)
    for p in problems:
        long_ops = [i for i, (op, x) in enumerate(p.ops, start=1) if len(str(x)) == 7]
        assert len(long_ops) == 1 and p.ops[long_ops[0] - 1][0] in "+-"
        assert toy.hard_step(p) == long_ops[0]
    assert len({toy.hard_step(p) for p in problems}) == 5  # the hard step moves over all positions
    assert toy.hard_step(toy.Problem(1, (("+", 12), ("*", 3), ("-", 99)))) == 1  # first of equals


def test_hard_error_mis_copies_the_hard_operand_and_is_fatal_there():
    hard = toy.Problem(120, (("+", 300), ("-", 4818273), ("*", 3)))  # hard step 2
    for seed in range(30):
        calls, _ = demo_steps(hard, random.Random(seed), p_hard_error=1.0)
        operand = calls[1][0].split("-")[-1]
        assert operand != "4818273" and len(operand) == 7  # one digit changed, length kept
        assert sum(a != b for a, b in zip(operand, "4818273")) == 1
        assert calls[0][1] == "420"  # the step before is untouched
        assert toy.fatal_step(hard, [out for _, out in calls]) == 2
    calls, _ = demo_steps(hard, random.Random(0), p_hard_error=0.0)
    assert [out for _, out in calls] == [str(v) for v in hard.values[1:]]


def test_parse_turn():
    assert toy.parse_turn("<c>12*7</c>") == ("12*7", None)
    assert toy.parse_turn("think <a>179</a>") == (None, "179")
    assert toy.parse_turn("12*7") == (None, None)


def test_check_answer():
    assert toy.check_answer(P, "179") and toy.check_answer(P, " 179 ")
    assert not toy.check_answer(P, "178") and not toy.check_answer(P, "abc")
    assert not toy.check_answer(P, None)


@pytest.mark.parametrize(
    "outputs, expected",
    [
        (["84", "184", "179"], None),  # correct
        (["85", "185", "180"], 1),  # first step wrong
        (["84", "194", "189"], 2),  # later step wrong, carried on
        (["84", "SyntaxError: invalid syntax", "184", "179"], 2),  # recoverable error, repaired
        (["84", "184"], None),  # stopped early: no wrong output
    ],
)
def test_oracle_first_error_step(outputs, expected):
    assert toy.first_error_step(P, outputs) == expected


def test_demonstrations_follow_the_oracle():
    rng = random.Random(0)
    clean = demonstration(P, rng)
    assert clean == "<c>12*7</c><o>84</o><c>84+100</c><o>184</o><c>184-5</c><o>179</o><a>179</a>"
    for p in toy.generate_problems(300, seed=5):
        text = demonstration(p, rng, p_copy_error=0.3)
        outputs, answer = split(text)
        carried = [
            int(c.split(toy.CALL_CLOSE)[0][: -len(f"{op}{x}")])
            for c, (op, x) in zip(text.split(toy.CALL_OPEN)[1:], p.ops)
        ]
        miscopied = [i for i, (c, v) in enumerate(zip(carried, p.values), start=1) if c != v]
        assert toy.first_error_step(p, outputs) == (miscopied[0] if miscopied else None)
        if not miscopied:
            assert toy.check_answer(p, answer)
        outputs, answer = split(demonstration(p, rng, p_syntax_error=0.5))
        assert toy.check_answer(p, answer)  # syntax errors are always repaired
        assert (toy.first_error_step(p, outputs) is None) == all("Error" not in o for o in outputs)


def split(text):
    """(tool outputs, final answer) of a demonstration."""
    outputs = [o.split(toy.OUTPUT_CLOSE)[0] for o in text.split(toy.OUTPUT_OPEN)[1:]]
    return outputs, toy.parse_turn(text.split(toy.OUTPUT_CLOSE)[-1])[1]


def test_shipped_data_regenerates_byte_for_byte(tmp_path):
    make_data(tmp_path)
    for name in ("toy_train.jsonl", "toy_test.jsonl"):
        assert filecmp.cmp(tmp_path / name, data_dir() / name, shallow=False), name


def test_splits_are_disjoint():
    train = {(p.start, p.ops) for p in load_problems(data_dir() / "toy_train.jsonl")}
    test = {(p.start, p.ops) for p in load_problems(data_dir() / "toy_test.jsonl")}
    assert len(test) >= 800 and not train & test


def test_missing_data_file_names_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="make-data"):
        load_problems(tmp_path / "nope.jsonl")


@pytest.mark.parametrize(
    "line, message",
    [
        ("{not json", r"bad.jsonl:2: not valid JSON"),
        ('{"id": "x", "start": "12", "ops": [], "answer": 12}', r"bad.jsonl:2: field 'start'"),
        ('{"id": "x", "start": 12, "ops": ["^2"], "answer": 12}', r"bad.jsonl:2: field 'ops'"),
        ('{"id": "x", "start": 12, "ops": [["+", 2]], "answer": 14}', r"bad.jsonl:2: field 'ops'"),
        ('{"id": "x", "start": 12, "ops": ["+2"], "answer": 15}', r"bad.jsonl:2: field 'answer'"),
        ('{"start": 12, "ops": [], "answer": 12}', r"bad.jsonl:2: field 'id'"),
    ],
)
def test_malformed_row_names_row_and_field(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(problem_to_row(P)) + "\n" + line + "\n")
    with pytest.raises(ValueError, match=message):
        load_problems(path)
