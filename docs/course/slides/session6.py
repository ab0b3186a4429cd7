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
# # Session 6 · Measuring, and going to a GPU
#
# Lecture 6 of 6 · Read before: §5.3 again; docs/real_models.md

# %% [markdown] slideshow={"slide_type": "slide"}
# ## An experiment you can run in class
#
# Does the branch term rank sound turns above fatal ones, before any training?
#
# * BEL's trees from the tiny policy, 24 held-out prompts per seed, 3 seeds
# * every turn labelled sound / fatal / after by the toy's oracle
# * credit AUC of A_hier at λ_tree ∈ {0, 0.5, 1}; the paired difference 0.5 − 0
# * 73 seconds on the 2-core development machine

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Reading a small experiment
#
# * report the interval, not just the mean: with 3 seeds the t quantile is 4.30
# * a direction that holds on every seed is not yet a finding if the interval includes zero
# * say what you would run next, and what it costs

# %% [markdown] slideshow={"slide_type": "slide"}
# ## From the toy to a real model
#
# * LoRA on any causal LM; QLoRA on nf4 base weights; the KL reference is the adapter switched off
# * the fenced format: a `python` code block ends a turn, its result comes back as an `output` block (context), the answer goes in `\boxed{}`
# * memory: the rollout KV cache dominates (128 rollouts × 2k tokens)
#
# ![QLoRA + ELPO memory estimate](../../../notebooks/figures/06_single_gpu_replication.png)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## In the lab, and after
#
# 1. E5, discussed (15 min)
# 2. notebook 06, the CPU walk-through (30 min)
# 3. **E9** ★★★, parts 1-2: the measurement and the full-size run (65 min)
#
# Homework: E9's write-up (35 min). Projects: a regime where ELPO wins, λ_tree on a validation split, non-monotone recoverability, a real model.
