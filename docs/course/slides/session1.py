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

# %% [markdown] slideshow={"slide_type": "slide"}
# # Session 1 · Where GRPO's credit goes wrong
#
# ELPO (arXiv 2602.09598), lecture 1 of 6
#
# Read before: §3.2, Eqs. 1-2; §4.1 up to Eq. 3

# %% [markdown] slideshow={"slide_type": "slide"}
# ## GRPO in one slide (§3.2)
#
# * N independent trajectories per prompt; reward R ∈ {0, 1}
# * advantage of trajectory i: $A_i = (R_i - \mathrm{mean}\,R) / (\mathrm{std}\,R + \epsilon)$, on **every** token it sampled
# * clipped surrogate (Eq. 2): $\min\big(r_t A_t,\ \mathrm{clip}(r_t, 1-\epsilon_{low}, 1+\epsilon_{high}) A_t\big)$
# * averaged per trajectory, then over trajectories (Eq. 1)
#
# One number per trajectory: every turn of a failure is punished alike.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Tool-integrated reasoning is multi-turn
#
# * a turn ends in a tool call `<c>...</c>` or an answer `<a>...</a>`
# * the tool's output `<o>...</o>` is **context**: action mask 0, never trained
# * a **slip** (a call that raises, the number still in context) is recoverable
# * a **mis-copied number** carried forward is fatal: nothing in context says so
#
# The toy has oracles for both: `first_error_step` and `fatal_step`.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## The worked example: one failure, seven turns
#
# Problem `test2-2`, seed 4: `489 *9 *6 +991 +472 -426`
#
# * turn 3 raised (`26406+991)`): a slip, 26406 still in context
# * turn 4 wrote **26462** instead of 26406: fatal
# * turns 5-7 compute correctly from the wrong number
#
# GRPO gives all seven turns the same negative advantage.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Where the policy hesitated (Eq. 3)
#
# ![per-token entropy of the worked example](../../../notebooks/figures/01_tool_integrated_rollouts.png)
#
# $H_t = -\sum_j p_{t,j} \log p_{t,j}$ with $p_t = \mathrm{softmax}(z_t / T)$: it spikes on copied digits; the fatal `6` at position 100 has the turn's highest entropy, 0.49.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## H_root, H_step and the entropy gap (§4.1)
#
# * $H_{root}$: mean entropy of the first 32 tokens of turn 1
# * $H_{step}(m)$: the same over the turn right after the m-th tool output
# * gap = mean of $H_{step}$ − $H_{root}$: how much the tool outputs unsettled the policy
#
# On the tiny policy every gap is small: X_m stays 2 while |H_step − H_root| < ln 3 / 5 ≈ 0.22
# (notebook 02).

# %% [markdown] slideshow={"slide_type": "slide"}
# ## In the lab
#
# 1. notebook 01: rollouts, the sandbox, the worked example as tensors (30 min)
# 2. notebook 02: the search on a simulated policy, X_m (45 min)
# 3. **E1** ★: entropy, the gap, τ*, X_m (40 min)
#
# Question to carry: *if only turn 4 was fatal, which of the seven turns should the gradient push down?*
