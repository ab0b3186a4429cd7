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
# # Session 3 · Credit on the tree
#
# Lecture 3 of 6 · Read before: §4.2, Eqs. 6-10; Appendix B, Figure 4

# %% [markdown] slideshow={"slide_type": "slide"}
# ## BEL leaves a tree
#
# * one node per assistant turn; a full trajectory is a root-to-leaf path
# * a continuation from prefix(m) shares its parent's first m nodes, and branches below node m
# * chains of only children pass values up and advantages down

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Four equations
#
# * Eq. 6: (\text{leaf}) = R$; (n)$ = mean of its **direct children's** values
# * Eq. 7: $ = z-score of $ among siblings (population std); an only child inherits; the root's is 0
# * Eqs. 8-9: $ = z-score of a leaf's R among **all leaves**; internal: mean $ of the leaves below
# * Eq. 10: {hier} = \lambda_{tree} A_b + (1-\lambda_{tree}) A_t$, on every action token of the turn

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Figure 4, by hand
#
# Children with values −1.1, 1, 1: value (−1.1 + 1 + 1) / 3 = 0.3; their $: −1.414, 0.707, 0.707.
#
# Two siblings are always ∓1; three with 0/1 rewards: ±1.414 and ∓0.707. A_b sees ranks in small sets.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## The worked example's credit
#
# ![A_hier on BEL's tree for one prompt](../../../notebooks/figures/03_hierarchical_advantages.png)
#
# τ*: turns 1-3 get −0.16, the fatal turn 4 −0.64, turns 5-7 −0.29. GRPO: the same number on all seven.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## What λ_tree trades
#
# * $ puts credit on the branch point that made the difference
# * by the same rule it punishes a **sound** prefix whose siblings did better (notebook 03's `s1`: −0.33 at λ=0, −1.0 at λ=1)
# * λ_tree = 0 is **not** GRPO: it is the tree's own leaf z-scores, averaged over the leaves below

# %% [markdown] slideshow={"slide_type": "slide"}
# ## In the lab, and after
#
# 1. notebook 03's questions, discussed (20 min; the notebook was homework)
# 2. **E3** ★★: node values, A_b, A_t, A_hier, checked at λ_tree 0, 0.25, 0.5, 0.8, 1 (80 min)
#
# Homework: **E8** ★★, the derivation: what a z-score forgets under r → a r + b, and what ε is for (55 min)
