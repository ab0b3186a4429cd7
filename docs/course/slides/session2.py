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
# # Session 2 · Finding the fatal step
#
# Lecture 2 of 6 · Read before: §4.1, Eqs. 4-5, Algorithm 1 (Appendix A), Table 2

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Recoverability
#
# prefix(m) = the prompt and steps 1..m. It is **recoverable** if some continuation from it still succeeds.
#
# {crit}$ = the first step m whose prefix is lost. One success proves a prefix recoverable; failures only make it likely lost.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Algorithm 1: binary search under a budget
#
# ```
# L, R <- 1, K
# while L < R and budget left:
#     m <- floor((L + R) / 2)
#     sample X_m continuations from prefix(m)
#     if any succeeds: L <- m + 1    else: R <- m
# t_crit <- L
# ```
#
# Every continuation is paid from the same N_total = 16 as the full rollouts.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## What the budget buys
#
# ![BEL against probing every step and random anchors](../../../notebooks/figures/02_binary_error_localization.png)
#
# BEL gets most of "probe every step"'s accuracy for about log2 K anchors.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Which failure, how many continuations
#
# * Eq. 4: $\tau^* = \arg\max_{\tau} (H_{tool}(\tau) - H_{root}(\tau))$ over the failure buffer
# * Eq. 5:  = \mathrm{round}\big(X_{min} + (X_{max}-X_{min})\,\sigma(\beta (H_{step} - H_{root}))\big)$, 1..3
# * too few continuations: a recoverable prefix looks lost, t_crit comes out early
# * a budget cut short: t_crit = L is a default, not a finding

# %% [markdown] slideshow={"slide_type": "slide"}
# ## The worked example's search
#
# | probe | outcomes | bracket |
# |---|---|---|
# | prefix(3) × 2 | True, False | [4, 6] |
# | prefix(5) × 2 | False, False | [4, 5] |
# | prefix(4) × 2 | False, False | [4, 4] |
#
# t_crit = 4 = the oracle's fatal step; `first_error_step` would have blamed 3.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## In the lab
#
# 1. **E2** ★★: Algorithm 1 from its description, edge cases and all (35 min)
# 2. **E6** ★★: a BEL that passes its tests and has three bugs; find, explain, fix (65 min)
#
# Homework: notebook 03, credit on the tree (45 min).
#
# Discussion: questions 2-4 (two ways to be wrong; a failure Eq. 4 never searches; non-monotone recoverability).
