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
# # E2 · Binary error localization under a budget
#
# *Difficulty ★★☆ · estimated 35 minutes · follows notebook 02.*
#
# Write the search of Algorithm 1 (paper §4.1 and Appendix A). Your function gets the number
# of tool steps K of a failed trajectory, a `probe(m, n)` callable that samples n
# continuations from prefix(m) and returns their success flags, a budget of rollouts, and
# `n_suffix`, the number of continuations per anchor (an int, or a function of m such as
# Eq. 5's X_m).
#
# What the search must do, in words: the first irrecoverable step t_crit lies somewhere in
# 1..K. Keep a bracket of steps that may still be t_crit and probe the prefix at its middle.
# One successful continuation proves that prefix recoverable, so t_crit lies after it; if
# every continuation failed, t_crit is at that step or before. Stop when the bracket holds
# one step or the budget is spent, and return the bracket's left end. Try to write it from
# this description before you open the pseudo-code.
#
# <details><summary>The pseudo-code of Algorithm 1</summary>
#
# ```
# L, R <- 1, K
# while L < R and budget left:
#     m <- floor((L + R) / 2)
#     sample X_m continuations from prefix(m), but never more than the budget left
#     if any succeeds: L <- m + 1
#     else:            R <- m
# t_crit <- L
# ```
# </details>
#
# Return `(t_crit, probes)`, with `probes` the list of `(m, outcomes)` in the order you made
# them. The check also watches your calls to `probe`: never ask for zero continuations, and
# never spend more than the budget. Mind the edge cases: K ≤ 1, every probe failing, every
# probe succeeding, and the budget running out in the middle of the search. Its probes
# succeed by chance (0.4 to 0.6 per continuation before the fatal step), as a real policy's
# do; the worked example replays the outcomes notebook 02 drew.

# %%
from elpo_min.course import check_bel_search


# %% nbgrader={"grade": false, "grade_id": "e2_binary_search", "locked": false, "schema_version": 3, "solution": true, "task": false}
def binary_search(num_steps: int, probe, budget: int, n_suffix=2):
    """t_crit, the first irrecoverable step, and the probes that found it."""
    ### BEGIN SOLUTION
    left, right = 1, num_steps
    spent, probes = 0, []
    while left < right and spent < budget:
        m = (left + right) // 2
        wanted = n_suffix(m) if callable(n_suffix) else n_suffix
        n = min(wanted, budget - spent)
        outcomes = probe(m, n)
        spent += n
        probes.append((m, outcomes))
        if any(outcomes):
            left = m + 1
        else:
            right = m
    return left, probes
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "e2_binary_search_check", "locked": true, "points": 10, "schema_version": 3, "solution": false, "task": false}
# NBVAL_CHECK_OUTPUT
passed = check_bel_search(binary_search)
### BEGIN HIDDEN TESTS
assert passed
### END HIDDEN TESTS

# %% [markdown]
# ## To think about
#
# * When the budget runs out with L < R, your function returns L. Notebook 02's second search
#   ended that way. Is L then a finding? What does the trainer do with it?
# * The search assumes recoverability is monotone along a trajectory. Write a `probe` for
#   which it is not, and find a K where your search returns a step after the first dead one.
