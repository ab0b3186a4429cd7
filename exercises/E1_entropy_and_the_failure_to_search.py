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
# # E1 · Entropy, and which failure to search
#
# *Difficulty ★☆☆ · estimated 40 minutes · follows notebook 01 and the first half of
# notebook 02 (up to "Budget accounting").*
#
# ELPO reads the policy's uncertainty turn by turn to decide which failed trajectory to search
# and how many continuations to spend at each step (paper §4.1). You will write the four
# pieces:
#
# 1. the per-token entropy of the sampling distribution (Eq. 3);
# 2. H_root, H_step and the entropy gap of a trajectory;
# 3. τ*, the failure of the buffer to search (Eq. 4);
# 4. X_m, the number of continuations at anchor m (Eq. 5).
#
# Replace each `raise NotImplementedError` with your code, then run the check below it. A
# check prints ✓ per case; at the first failure it shows the input, the expected value and
# what your function returned, and a hint when your output is that of a usual mistake. Write
# the code yourself: every function here also exists in `elpo_min`, and a graded hand-in that
# imports it gets no points for that part.

# %%
import math

import torch

from elpo_min.course import (
    check_select_failure,
    check_step_entropies,
    check_suffix_count,
    check_token_entropy,
)

# %% [markdown]
# ## 1. Token entropy (Eq. 3) · ★☆☆
#
# The policy samples each token from $p = \mathrm{softmax}(z / T)$, the logits $z$ divided by
# the sampling temperature $T$. The entropy of that distribution is
#
# $$H = -\sum_j p_j \log p_j .$$
#
# Write it for a batch: `logits` is `[B, V]`, the result `[B]`.
#
# <details><summary>Hint</summary>
#
# Work with log-probabilities, `torch.log_softmax(..., dim=-1)`, rather than
# `torch.log(torch.softmax(...))`: on a confident row a probability underflows to 0, its log
# is −∞, and 0 · (−∞) is NaN. The check has such a row.
# </details>


# %% nbgrader={"grade": false, "grade_id": "e1_token_entropy", "locked": false, "schema_version": 3, "solution": true, "task": false}
def token_entropy(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """The entropy of softmax(logits / temperature) per row: [B, V] -> [B]."""
    ### BEGIN SOLUTION
    log_probs = torch.log_softmax(logits / temperature, dim=-1)  # [B, V]
    return -(log_probs.exp() * log_probs).sum(-1)  # [B]
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "e1_token_entropy_check", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
# NBVAL_CHECK_OUTPUT
passed = check_token_entropy(token_entropy)
### BEGIN HIDDEN TESTS
assert passed
### END HIDDEN TESTS

# %% [markdown]
# ## 2. H_root, H_step and the entropy gap · ★☆☆
#
# A trajectory with K tool steps has K + 1 turns: turn 0 before any tool output, and turn m
# right after the m-th tool output (the last one is the answer). Here a trajectory is given as
# `turn_entropies`, the entropies of the tokens each turn generated.
#
# * $H_{root}$: the mean entropy of the first `window` tokens of turn 0;
# * $H_{step}(m)$ for m = 1..K: the same mean over turn m;
# * the entropy gap: the mean of $H_{step}$ over the K steps, minus $H_{root}$.
#
# Return `(h_root, h_steps, gap)` with `h_steps` a list of K numbers.
#
# <details><summary>Hint</summary>
#
# Write one helper for "the mean of the first `window` values of a list" and use it for every
# turn. The gap averages the K per-step means, each step counting once whatever its length.
# </details>


# %% nbgrader={"grade": false, "grade_id": "e1_step_entropies", "locked": false, "schema_version": 3, "solution": true, "task": false}
def step_entropies(turn_entropies: list[list[float]], window: int = 32):
    """(H_root, [H_step(1), ..., H_step(K)], entropy gap) of one trajectory."""

    ### BEGIN SOLUTION
    def head_mean(values: list[float]) -> float:
        head = values[:window]
        return sum(head) / len(head)

    h_root = head_mean(turn_entropies[0])
    h_steps = [head_mean(turn) for turn in turn_entropies[1:]]
    gap = sum(h_steps) / len(h_steps) - h_root
    return h_root, h_steps, gap
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "e1_step_entropies_check", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
# NBVAL_CHECK_OUTPUT
passed = check_step_entropies(step_entropies)
### BEGIN HIDDEN TESTS
assert passed
### END HIDDEN TESTS

# %% [markdown]
# ## 3. Which failure to search (Eq. 4) · ★☆☆
#
# BEL collects failures into a buffer and searches the one whose policy grew most uncertain
# after its tool outputs:
#
# $$\tau^* = \arg\max_{\tau \in \text{buffer}} \big(H_{tool}(\tau) - H_{root}(\tau)\big)$$
#
# Given the buffer's entropy gaps, return the index of τ* (the first one on a tie).


# %% nbgrader={"grade": false, "grade_id": "e1_select_failure", "locked": false, "schema_version": 3, "solution": true, "task": false}
def select_failure(gaps: list[float]) -> int:
    """The index of tau* in the failure buffer, given each failure's entropy gap."""
    ### BEGIN SOLUTION
    return max(range(len(gaps)), key=lambda i: gaps[i])
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "e1_select_failure_check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
# NBVAL_CHECK_OUTPUT
passed = check_select_failure(select_failure)
### BEGIN HIDDEN TESTS
assert passed
### END HIDDEN TESTS

# %% [markdown]
# ## 4. How many continuations at anchor m (Eq. 5) · ★★☆
#
# $$X_m = \mathrm{round}\Big(X_{\min} + (X_{\max} - X_{\min})\,\sigma\big(\beta\,(H_{step}(\tau^*, m) - H_{root}(\tau^*))\big)\Big)$$
#
# with σ the logistic function. Round half up (2.5 → 3), as this implementation does. The
# check's last case has an entropy drop of 200 nats: your σ must survive it.
#
# <details><summary>Hint</summary>
#
# `1 / (1 + math.exp(-z))` overflows when −z is larger than about 709. For z < 0 the same
# number is `math.exp(z) / (1 + math.exp(z))`, which cannot overflow. Python's `round` rounds
# half to even (`round(2.5) == 2`); `math.floor(x + 0.5)` rounds half up.
# </details>


# %% nbgrader={"grade": false, "grade_id": "e1_suffix_count", "locked": false, "schema_version": 3, "solution": true, "task": false}
def suffix_count(h_step, h_root, x_min=1, x_max=3, beta=5.0) -> int:
    """X_m: continuations to sample from prefix(m)."""
    ### BEGIN SOLUTION
    z = beta * (h_step - h_root)
    # 1 / (1 + e^-z) overflows for very negative z; e^z / (1 + e^z) is the same number there
    sigmoid = 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))
    return math.floor(x_min + (x_max - x_min) * sigmoid + 0.5)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "e1_suffix_count_check", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
# NBVAL_CHECK_OUTPUT
passed = check_suffix_count(suffix_count)
### BEGIN HIDDEN TESTS
assert passed
### END HIDDEN TESTS

# %% [markdown]
# ## To think about
#
# * On the tiny policy (notebook 02) every gap H_step − H_root was small (the largest −0.105
#   nat, well inside the ±0.22 nat where X_m stays 2), so X_m was 2 at every anchor. What would make Eq. 4 and Eq. 5 matter more?
# * The check's X_m cases include β = 50. What does a large β turn Eq. 5 into, and what would
#   you lose by using it?
