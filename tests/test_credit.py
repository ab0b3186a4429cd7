"""The fatal-step oracle and the step-level credit metrics, on hand-made cases."""

from types import SimpleNamespace

import pytest

from elpo_min import toy
from elpo_min.diagnostics import credit_metrics, turn_labels

P = toy.Problem(10, (("+", 5), ("*", 2), ("-", 3)))  # values 10, 15, 30, 27


@pytest.mark.parametrize(
    "outputs, fatal, first_error",
    [
        # a success; a wrong final copy of 27 has the same tool outputs, so no fatal step either
        (["15", "30", "27"], None, None),
        (
            ["SyntaxError: unmatched ')'", "15", "30", "27"],
            None,
            1,
        ),  # a repaired syntax error, then success
        (["15", "31", "28"], 2, 2),  # a copy error carried forward
        (["15", "30", "28"], 3, 3),  # the last step's copy error
        (
            ["SyntaxError: invalid syntax", "15", "31", "28"],
            3,
            1,
        ),  # a repaired error before a copy error
        (["16", "15", "30", "27"], None, 1),  # a wrong value that a later step repaired
        (["15", "NameError: name 'x' is not defined"], None, 2),  # only a slip, then gave up
    ],
)
def test_fatal_step_separates_fatal_errors_from_recoverable_slips(outputs, fatal, first_error):
    assert toy.fatal_step(P, outputs) == fatal
    assert toy.first_error_step(P, outputs) == first_error


def traj(outputs, success, answer_turn=True):
    turns = [SimpleNamespace(code="c") for _ in outputs] + (
        [SimpleNamespace(code=None)] if answer_turn else []
    )
    return SimpleNamespace(problem=P, tool_outputs=outputs, turns=turns, success=success)


def test_turn_labels():
    assert turn_labels(traj(["15", "30", "27"], True)) == ["sound"] * 4
    assert turn_labels(traj(["SyntaxError: x", "15", "31", "28"], False)) == [
        "sound",
        "sound",
        "fatal",
        "after",
        "after",
    ]
    # no wrong value carried forward (a wrong final copy): the answer turn is the fatal one
    assert turn_labels(traj(["15", "30", "27"], False)) == ["sound", "sound", "sound", "fatal"]
    # truncated without an answer turn: its last turn
    assert turn_labels(traj(["15", "SyntaxError: x"], False, answer_turn=False)) == [
        "sound",
        "fatal",
    ]


def test_credit_metrics_on_hand_built_groups():
    group1 = [
        {"success": True, "turns": [("sound", 1.0, 2, 0), ("sound", 1.0, 2, 0)]},
        {
            "success": False,
            "turns": [("sound", -0.5, 3, 0), ("fatal", -1.0, 4, 4), ("after", -1.0, 2, 2)],
        },
        {"success": False, "turns": [("sound", -1.0, 1, 0), ("fatal", -1.0, 1, 0)]},
    ]
    group2 = [
        {"success": False, "turns": [("sound", 0.5, 2, 0), ("fatal", 0.5, 2, 2)]},
        {"success": True, "turns": [("sound", -0.2, 1, 0)]},
    ]
    m = credit_metrics([group1, group2])
    # group 1: sounds (1, 1, -0.5, -1) vs fatals (-1, -1): 2 + 2 + 2 wins + 2 ties = 7 of 8;
    # group 2: sounds (0.5, -0.2) vs fatal 0.5: one tie = 0.5 of 2. Pairs never cross groups.
    assert m["credit_auc"] == pytest.approx(7.5 / 10)
    assert m["sound_punished"] == pytest.approx(2 / 3)  # -0.5 and -1.0 punished, 0.5 not
    assert m["unequal_failed"] == pytest.approx(1 / 3)  # only (-0.5, -1, -1) differs
    assert m["elc_fatal"] == pytest.approx(6 / 7) and m["elc_sound"] == 0.0


def test_credit_metrics_with_nothing_to_count_are_none():
    assert set(credit_metrics([]).values()) == {None}
    only_success = [[{"success": True, "turns": [("sound", 0.0, 1, 0)]}]]
    m = credit_metrics(only_success)
    assert m["credit_auc"] is None and m["unequal_failed"] is None and m["elc_sound"] == 0.0
