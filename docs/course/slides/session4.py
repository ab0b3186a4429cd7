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
# # Session 4 · The update
#
# Lecture 4 of 6 · Read before: §4.3, Eq. 11; §4.4, Eq. 12; §3.2, Eq. 1; Table 2

# %% [markdown] slideshow={"slide_type": "slide"}
# ## The clip, from a bad token's side
#
# $\min\big(r A,\ \mathrm{clip}(r, 1-\epsilon_{low,t}, 1+\epsilon_{high}) A\big)$,  = e^{\log\pi - \log\pi_{old}}$
#
# * A < 0: once r < 1 − ε_low the gradient stops: the token's probability cannot be pushed further down
# * A > 0: once r > 1 + ε_high the gradient stops
# * the lower bound binds only for A < 0

# %% [markdown] slideshow={"slide_type": "slide"}
# ## ELC (Eq. 11)
#
# $\epsilon_{low,t} = \epsilon_{low} + \epsilon_{elc}$ on the critical step and its suffix in τ*, $\epsilon_{low}$ elsewhere.
#
# ![the clipped objective with and without ELC](../../../notebooks/figures/04_adaptive_clipping.png)
#
# Trust region [0.685, 1.315] on the error suffix, [0.8, 1.315] elsewhere; for A = +1 the curves coincide.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## When can ELC act?
#
# * only tokens under ELC, with A < 0, whose ratio is in [0.685, 0.8)
# * at the sampling policy every ratio is 1: **no effect on a step's first update**
# * in notebook 04, after one update at lr 1e-3: 2 of 95 such tokens; 4 epochs with and without ELC end within 0.01

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Two aggregations
#
# * Eq. 1, `seq-mean-token-mean`: each sequence weighs the same; a short sequence's tokens weigh more
# * DAPO's `token-mean`: each token weighs the same; long failures with retries weigh more
# * same batch: +0.07 against +0.11
# * a sequence without action tokens is left out of the count

# %% [markdown] slideshow={"slide_type": "slide"}
# ## In the lab, and after
#
# 1. E8's answers, discussed (20 min)
# 2. notebook 04 (50 min)
# 3. **E4** ★★: the ELC mask on the worked τ* (40 tokens), Eq. 11, the loss (40 min)
#
# Homework: **E7** ★★★, three bugs in the function that writes A_hier and ELC into training rows (75 min)
