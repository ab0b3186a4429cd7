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
# *Follows notebook 02. About 40 minutes.*
#
# Write the search of Algorithm 1 (paper §4.1 and Appendix A). Your function gets the number
# of tool steps K of a failed trajectory, a `probe(m, n)` callable that samples n
# continuations from prefix(m) and returns their success flags, a budget of rollouts, and
# `n_suffix`, the number of continuations per anchor (an int, or a function of m such as
# Eq. 5's X_m).
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
#
# Return `(t_crit, probes)`, with `probes` the list of `(m, outcomes)` in the order you made
# them. The check also watches your calls to `probe`: never ask for zero continuations, and
# never spend more than the budget. Mind the edge cases: K ≤ 1, every probe failing, every
# probe succeeding, and the budget running out in the middle of the search.

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


# %%
# NBVAL_CHECK_OUTPUT
check_bel_search(binary_search)

# %% [markdown]
# ## To think about
#
# * When the budget runs out with L < R, your function returns L. Notebook 02's second search
#   ended that way. Is L then a finding? What does the trainer do with it?
# * The search assumes recoverability is monotone along a trajectory. Write a `probe` for
#   which it is not, and find a K where your search returns a step after the first dead one.
