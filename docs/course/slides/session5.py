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
# # Session 5 · Does it help?
#
# Lecture 5 of 6 · Read before: §5.3 and Table 1

# %% [markdown] slideshow={"slide_type": "slide"}
# ## A fair comparison
#
# * equal rollouts per prompt (N_total for both); same model, optimizer, evaluation
# * paired seeds; a 95% t-interval of the per-seed differences
# * one run of 50 problems: standard error ≈ 7 points. A change after four updates under ~18 points is no evidence.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Six seeds, the default regime
#
# ![ELPO vs GRPO at equal rollouts, 6 seeds](../../../notebooks/figures/05_training_elpo_vs_grpo.png)
#
# ELPO − GRPO after 15 steps: −0.8 ± 7.0 points. A null, with an interval that rules out only gains above about 6 points.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Three regimes picked to give localization room
#
# | regime | ELPO − GRPO (points) | credit AUC: ELPO, λ=0, GRPO |
# |---|---|---|
# | paper (8 updates per step) | −5.3 ± 5.0 | 0.809, 0.845, 0.835 |
# | long (10-11 tool steps) | −2.0 ± 3.5 | 0.662, 0.694, 0.661 |
# | hard (one hard step) | +4.9 ± 5.4 | 0.837, 0.872, 0.839 |
#
# ELPO localizes (half its failures get unequal advantages) but does not rank sound above fatal turns better than GRPO; λ_tree = 0 ranks best everywhere.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## When should ELPO help?
#
# * long failures with many correct turns
# * errors concentrated at a few steps
# * prefixes recoverable often enough that probes find successes (36% of probes here)
# * a budget that probes the failures (19% of searches here got none)
# * clipping that binds (under 2% of tokens on the toy)
#
# The cost: 9.5 of 16 rollouts are independent trajectories.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## In the lab
#
# 1. E7's bugs, discussed (20 min)
# 2. notebook 05 (65 min)
# 3. **E5** ★★★, begun: your E3 and E4 functions in one ELPO step; two trees where λ_tree = 0.5 helps and hurts (60 min, 35 of them in class)
#
# Homework: the rest of E5 (25 min).
#
# Discussion: questions 7 and 8 (when is a continuation worth more than a sample; toy against paper).
