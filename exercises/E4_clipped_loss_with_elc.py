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
# # E4 · The clipped loss with error-localized clipping
#
# *Difficulty ★★☆ · estimated 40 minutes · follows notebook 04.*
#
# Three functions take ELC from a search's t_crit to the loss (paper §3.2 and §4.3-4.4):
#
# 1. the ELC mask of one trajectory: 1 on the **action tokens** of turns t_crit, t_crit + 1,
#    ..., the last; 0 elsewhere. A turn is given as `(start, end, out_end)`: it generated the
#    tokens `[start, end)`, and its tool output, which is context, fills `[end, out_end)`;
# 2. the per-token lower clip width, Eq. 11:
#    $\epsilon_{low,t} = \epsilon_{low} + \epsilon_{elc}$ where the mask is 1, $\epsilon_{low}$
#    elsewhere;
# 3. the loss: minus the clipped objective of Eqs. 2 and 12,
#    $\min\big(r_t A_t,\ \mathrm{clip}(r_t, 1-\epsilon_{low,t}, 1+\epsilon_{high}) A_t\big)$ with
#    $r_t = e^{\log\pi - \log\pi_{old}}$, averaged over the action tokens (`mask` = 1):
#    * `"seq-mean-token-mean"` (Eq. 1): the mean over each sequence's action tokens, then the
#      mean over the sequences that have any;
#    * `"token-mean"` (DAPO): the mean over all action tokens of the batch.
#
# The advantages are per token: A_hier changes from turn to turn along a row, as in the
# trainer's batch. Write the code yourself: `elpo_min.clip_bounds` and
# `elpo_min.clipped_policy_loss` exist, and a graded hand-in that calls them gets no points
# for those parts.

# %%
import torch

from elpo_min.course import check_elc_mask, check_lower_bound, check_policy_loss

# %% [markdown]
# ## 1. The ELC mask · ★☆☆
#
# The check's first case is τ* of the worked example (notebook 01 prints its turns): t_crit =
# 4, 40 tokens under ELC, the row padded to 203 positions as in the worked batch.
#
# <details><summary>Hint</summary>
#
# t_crit counts turns from 1, a Python list from 0. Mark `[start, end)` of each turn from
# t_crit on; `[end, out_end)` is the tool output, and everything after the last turn is
# padding.
# </details>


# %% nbgrader={"grade": false, "grade_id": "e4_elc_mask", "locked": false, "schema_version": 3, "solution": true, "task": false}
def elc_mask(turns: list[tuple[int, int, int]], t_crit: int, length: int) -> list[float]:
    """1.0 on the generated tokens of turns t_crit..last (1-based), 0.0 elsewhere."""
    ### BEGIN SOLUTION
    mask = [0.0] * length
    for start, end, _ in turns[t_crit - 1 :]:
        mask[start:end] = [1.0] * (end - start)
    return mask
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "e4_elc_mask_check", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
# NBVAL_CHECK_OUTPUT
passed = check_elc_mask(elc_mask)
### BEGIN HIDDEN TESTS
assert passed
### END HIDDEN TESTS

# %% [markdown]
# ## 2. The lower clip width (Eq. 11) · ★☆☆


# %% nbgrader={"grade": false, "grade_id": "e4_lower_bound", "locked": false, "schema_version": 3, "solution": true, "task": false}
def lower_bound(elc: torch.Tensor, eps_low: float, eps_elc: float) -> torch.Tensor:
    """eps_low_t per token: [B, T] -> [B, T]."""
    ### BEGIN SOLUTION
    return eps_low + eps_elc * elc
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "e4_lower_bound_check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
# NBVAL_CHECK_OUTPUT
passed = check_lower_bound(lower_bound)
### BEGIN HIDDEN TESTS
assert passed
### END HIDDEN TESTS

# %% [markdown]
# ## 3. The loss (Eqs. 1, 2 and 12) · ★★☆
#
# All tensors are `[B, T]`. Use your `lower_bound`. The upper bound is $1 + \epsilon_{high}$.
# Return a tensor that `backward()` can use.
#
# <details><summary>Hint</summary>
#
# Clip r between its two bounds with `torch.maximum` and `torch.minimum` (the lower bound is a
# `[B, T]` tensor), take the smaller of r·A and clip(r)·A, then aggregate over the tokens
# where `mask` is 1. In seq-mean-token-mean a row with no action token has no mean: leave it
# out of the count of sequences.
# </details>


# %% nbgrader={"grade": false, "grade_id": "e4_policy_loss", "locked": false, "schema_version": 3, "solution": true, "task": false}
def policy_loss(
    logp, old_logp, advantages, mask, elc, eps_low, eps_high, eps_elc, aggregation
) -> torch.Tensor:
    """Minus the clipped objective, aggregated: the scalar to minimize."""
    ### BEGIN SOLUTION
    ratio = torch.exp(logp - old_logp)  # [B, T]
    lower = 1.0 - lower_bound(elc, eps_low, eps_elc)  # [B, T]
    clipped = torch.minimum(torch.maximum(ratio, lower), torch.full_like(ratio, 1 + eps_high))
    objective = torch.minimum(ratio * advantages, clipped * advantages)  # [B, T]
    tokens = mask.sum(-1)  # [B]
    if aggregation == "token-mean":
        return -(objective * mask).sum() / tokens.sum().clamp(min=1.0)
    per_sequence = (objective * mask).sum(-1) / tokens.clamp(min=1.0)  # [B]
    sequences = (tokens > 0).sum().clamp(min=1)
    return -per_sequence.sum() / sequences
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "e4_policy_loss_check", "locked": true, "points": 6, "schema_version": 3, "solution": false, "task": false}
# NBVAL_CHECK_OUTPUT
passed = check_policy_loss(policy_loss)
### BEGIN HIDDEN TESTS
assert passed
### END HIDDEN TESTS

# %% [markdown]
# ## To think about
#
# * For which tokens can ELC change the gradient at all? (Look at the sign of A and at where
#   the ratio is.)
# * Why is the ratio exactly 1 on the first mini-batch of a step, and what does that mean for
#   ELC when a step makes a single update?
