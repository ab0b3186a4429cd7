# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # E6 · Find the bugs: a BEL that passes its tests
#
# *Difficulty ★★☆ · estimated 65 minutes · follows notebook 02 and E2.*
#
# A teammate wrote the part of BEL that handles one failed trajectory: it reads the turn
# entropies, sizes the number of continuations at each anchor by Eq. 5, and runs the search
# of Algorithm 1 under a budget. It comes with tests, and they pass. It has **three bugs**.
# Each one would quietly change where ELPO puts its credit, and none of them crashes.
#
# 1. **Find them.** Write `test_localize(localize)`: tests that pass on a correct function
#    and fail on the version below. The check runs your tests on the right function and on
#    three versions that each carry one of the bugs; your tests must fail all three.
# 2. **Explain them**, in the answer cell: for each bug, what is wrong, an input that shows
#    it, and what it would do to ELPO's training.
# 3. **Fix them**: `localize` below, checked on hidden cases.
#
# Read the function first, line by line, against §4.1 and Algorithm 1 (notebook 02 prints
# it). Then look at what the given tests never vary.

# %%
import math

from elpo_min.course import check_localize, check_localize_tests


# %%
def localize_as_given(
    turn_entropies, probe, budget, x_min=1, x_max=3, beta=5.0, window=32
) -> tuple[int, list]:
    """t_crit of one failed trajectory and the probes that found it.

    turn_entropies: the entropies each turn generated (turn 0 before any tool output, turn m
    after the m-th one); probe(m, n): n continuations from prefix(m), their success flags;
    budget: the rollouts this search may spend.
    """

    def head_mean(values):
        head = values[:window]
        return sum(head) / len(head)

    h_root = head_mean(turn_entropies[0])
    h_steps = [head_mean(turn) for turn in turn_entropies[1:]]
    num_steps = len(h_steps)

    def continuations(m):
        # Eq. 5, with the sigmoid in the form that cannot overflow
        z = beta * (h_steps[m] - h_root)
        sigmoid = 1 / (1 + math.exp(-z)) if z >= 0 else math.exp(z) / (1 + math.exp(z))
        return math.floor(x_min + (x_max - x_min) * sigmoid + 0.5)

    left, right = 1, num_steps
    spent, probes = 0, []
    while left < right and spent < budget:
        m = (left + right) // 2
        n = min(continuations(m), budget - spent)
        outcomes = probe(m, n)
        spent += n
        probes.append((m, outcomes))
        # prefix(m) is recoverable when its continuations succeed
        if sum(outcomes) > n / 2:
            left = m + 1
        else:
            right = m
    return right, probes


# %% [markdown]
# ## The tests it came with
#
# They pass. Read them: what do they never vary?


# %%
def probe_lost_from(first_dead, calls):
    """A probe whose continuations succeed before step ``first_dead`` and fail from it on."""

    def probe(m, n):
        calls.append((m, n))
        return [m < first_dead] * n

    return probe


def given_tests(localize):
    flat = [[0.3] * 5] * 7  # K = 6 steps, every turn as uncertain as the first
    calls = []
    t_crit, _ = localize(flat, probe_lost_from(4, calls), budget=13)
    assert t_crit == 4, "the worked example: lost from step 4"
    assert all(n == 2 for _, n in calls), "X_m is 2 when the entropies are flat"
    t_crit, _ = localize(flat, probe_lost_from(1, []), budget=13)
    assert t_crit == 1, "every probe fails: t_crit = 1"
    calls = []
    localize(flat, probe_lost_from(6, calls), budget=16)
    assert sum(n for _, n in calls) <= 16, "never spends past the budget"


given_tests(localize_as_given)
print("the given tests pass")

# %% [markdown]
# ## 1. Tests that catch the bugs · ★★☆
#
# Write `test_localize(localize)` with `assert`s that hold for a correct `localize` and fail
# for the version above. Work out each expected value by hand from §4.1 and Algorithm 1, not
# by running `localize_as_given`. `probe_lost_from` is yours to use; a probe that replays
# fixed outcomes, e.g. `[True, False]` at the first anchor, is easy to write too.
#
# <details><summary>Hint</summary>
#
# The given tests keep three things fixed: every turn has the same entropy, every probe's
# continuations all succeed or all fail, and the budget always lasts. Vary each of them.
# </details>


# %% nbgrader={"grade": false, "grade_id": "e6_tests", "locked": false, "schema_version": 3, "solution": true, "task": false}
def test_localize(localize):
    """Assertions that a correct ``localize`` passes and the given version fails."""
    ### BEGIN SOLUTION
    # X_m must read H_step(m), the turn after the m-th output: make only step 3 uncertain
    entropies = [[0.0]] + [[0.0]] * 2 + [[1.0]] + [[0.0]] * 3  # K = 6, H_step(3) = 1
    calls = []
    localize(entropies, probe_lost_from(4, calls), budget=30)
    assert calls[0] == (3, 3), f"anchor 3 should get X_3 = 3 continuations, got {calls[0]}"

    # one success among the continuations is enough: prefix(3) is recoverable
    def mixed(m, n):
        return [True] + [False] * (n - 1) if m == 3 else [False] * n

    t_crit, _ = localize([[0.0]] * 7, mixed, budget=30)
    assert t_crit == 4, f"one success at anchor 3 proves it recoverable: t_crit 4, got {t_crit}"

    # the budget runs out after one probe at m = 3, all failed: the bracket is [1, 3], L = 1
    t_crit, _ = localize([[0.0]] * 7, probe_lost_from(1, []), budget=2)
    assert t_crit == 1, f"a search cut short returns L = 1, got {t_crit}"
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "e6_tests_check", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
# NBVAL_CHECK_OUTPUT
passed = check_localize_tests(test_localize)
### BEGIN HIDDEN TESTS
assert passed
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": true, "grade_id": "e6_explanation", "locked": false, "points": 3, "schema_version": 3, "solution": true, "task": false}
# ## 2. The three bugs, explained · ★★☆
#
# For each bug: what is wrong, an input that shows it, and what it would do to ELPO's
# training.
#
# ### BEGIN SOLUTION
# 1. **X_m reads the wrong step.** `h_steps[m]` is H_step(m + 1): the list starts at step 1,
#    so step m is `h_steps[m - 1]`. With only the third step uncertain it sends three
#    continuations to anchor 2 instead of 3. BEL then spends its budget where the policy was
#    sure and saves it where it hesitated, so recoverable prefixes are more often judged lost
#    and t_crit lands too early: credit and ELC go to sound turns.
# 2. **A majority instead of any.** One successful continuation proves prefix(m)
#    recoverable; `sum(outcomes) > n / 2` needs most of them. With a policy that recovers one
#    time in three (the toy's prefixes succeed 40-60%), a recoverable prefix whose probe drew
#    [True, False] is called lost and the search goes left: t_crit too early, as above, and
#    more often the smaller X_m is.
# 3. **R instead of L.** When the budget runs out before the bracket closes, Algorithm 1
#    returns L, the left end (the earliest step not yet shown recoverable); R is the last
#    step not yet shown lost. One failed probe at m = 3 with the budget gone leaves [1, 3]:
#    the function says 3, Algorithm 1 says 1. ELC then covers fewer turns than the paper's
#    rule, and the logged t_crit is biased late exactly for the searches the budget cut.
# ### END SOLUTION

# %% [markdown]
# ## 3. The fixed function · ★☆☆
#
# Copy `localize_as_given` here under the name `localize` and fix the three bugs (the check
# passes `x_min`, `x_max`, `beta` and `window` by name, as the given signature has them).


# %% nbgrader={"grade": false, "grade_id": "e6_localize", "locked": false, "schema_version": 3, "solution": true, "task": false}
def localize(turn_entropies, probe, budget, x_min=1, x_max=3, beta=5.0, window=32):
    """t_crit of one failed trajectory and the probes that found it."""
    ### BEGIN SOLUTION

    def head_mean(values):
        head = values[:window]
        return sum(head) / len(head)

    h_root = head_mean(turn_entropies[0])
    h_steps = [head_mean(turn) for turn in turn_entropies[1:]]
    num_steps = len(h_steps)

    def continuations(m):
        # step m is the m-th entry of h_steps, index m - 1
        z = beta * (h_steps[m - 1] - h_root)
        sigmoid = 1 / (1 + math.exp(-z)) if z >= 0 else math.exp(z) / (1 + math.exp(z))
        return math.floor(x_min + (x_max - x_min) * sigmoid + 0.5)

    left, right = 1, num_steps
    spent, probes = 0, []
    while left < right and spent < budget:
        m = (left + right) // 2
        n = min(continuations(m), budget - spent)
        outcomes = probe(m, n)
        spent += n
        probes.append((m, outcomes))
        # one success proves prefix(m) recoverable
        if any(outcomes):
            left = m + 1
        else:
            right = m
    # the left end of the bracket, also when the budget ran out first
    return left, probes
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "e6_localize_check", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
# NBVAL_CHECK_OUTPUT
passed = check_localize(localize)
### BEGIN HIDDEN TESTS
assert passed
### END HIDDEN TESTS

# %% [markdown]
# ## To think about
#
# * The given tests were not wrong, only narrow. Which property of each test let its bug
#   through, and what would you ask of a test suite for code like this?
# * A randomized test could compare `localize` with the package's
#   `elpo_min.binary_error_localization` on the same random probe, given the same X_m. Which of
#   the three bugs can such a test not see, and why?
