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
# # E8 · Derivation: what a z-score forgets, and what its ε is for
#
# *Difficulty ★★☆ · estimated 55 minutes · follows notebook 03 and E3.*
#
# Every advantage of ELPO is a z-score: GRPO's over a group (§3.2), A_b over siblings (Eq. 7),
# A_t over the leaves (Eq. 8), all with the population standard deviation and a small ε in the
# denominator:
#
# $$z_i = \frac{r_i - \mu}{\sigma + \epsilon}, \qquad \mu = \frac1n \sum_j r_j, \quad
# \sigma = \sqrt{\frac1n \sum_j (r_j - \mu)^2}, \quad \epsilon = 10^{-6}.$$
#
# Notebook 03 says "scale rewards to {−1, +1}: the advantages do not change". Here you derive
# when that is true and what ε changes, then check your algebra numerically against the
# package's z-scores. Derive on paper first; the code cells only write down your result.

# %%
import math

from elpo_min.course.derivation import (
    check_half_credit,
    check_pair_zscores,
    check_rescaled_zscores,
)

# %% [markdown] nbgrader={"grade": true, "grade_id": "e8_derivation", "locked": false, "points": 3, "schema_version": 3, "solution": true, "task": false}
# ## 1. An affine change of reward · ★★☆
#
# Replace every reward by $r'_i = a r_i + b$ (a ≠ 0). Derive $\mu'$, $\sigma'$ and $z'_i$ in
# terms of $z_i$, σ, a and ε. When is $z' = z$ exactly? What happens for a < 0, and for a
# scale so small that $|a|\sigma$ is comparable with ε?
#
# ### BEGIN SOLUTION
# $\mu' = \frac1n\sum_j (a r_j + b) = a\mu + b$, so $r'_i - \mu' = a (r_i - \mu)$: the shift b
# cancels. $\sigma' = \sqrt{\frac1n\sum_j a^2 (r_j - \mu)^2} = |a|\sigma$. Hence
#
# $$z'_i = \frac{a (r_i - \mu)}{|a|\sigma + \epsilon}
#        = \operatorname{sign}(a)\,\frac{\sigma + \epsilon}{\sigma + \epsilon / |a|}\; z_i .$$
#
# With ε = 0 this is $z' = \operatorname{sign}(a)\, z$: z-scores are invariant to any positive
# affine change of reward, and a negative scale flips every advantage (rewarding failure).
# With ε > 0 they are invariant only up to the factor $(\sigma+\epsilon)/(\sigma+\epsilon/|a|)$,
# which is 1 when a = 1 and within $\epsilon/\sigma$ of 1 whenever $|a|\sigma \gg \epsilon$; so
# {0, 1} → {−1, +1} (a = 2, σ ≈ 0.5) changes the advantages by a relative 1e-6. When
# $|a|\sigma$ is of the order of ε the factor shrinks every advantage towards 0: at
# $|a|\sigma = \epsilon$ it is about one half, so rewards on a scale of 1e-6 would give almost
# no gradient. If all rewards are equal, σ = 0 and every z-score is 0 before and after.
# ### END SOLUTION

# %% [markdown]
# ## 2. Your result as code · ★☆☆
#
# Write `rescaled_zscores(z, std, a, b, eps)`: the z-scores of $a r + b$ computed **from the
# z-scores `z` of r and their std**, by your formula (not by recomputing from rewards, which
# you do not have). The check draws rewards, gives you their z-scores, and compares your
# answer with the package's z-scores of $a r + b$, for positive and negative a and for a scale
# near ε.


# %% nbgrader={"grade": false, "grade_id": "e8_rescaled", "locked": false, "schema_version": 3, "solution": true, "task": false}
def rescaled_zscores(z: list[float], std: float, a: float, b: float, eps: float) -> list[float]:
    """The z-scores of a r + b, from the z-scores z of r and r's population std."""
    ### BEGIN SOLUTION
    factor = math.copysign(1.0, a) * (std + eps) / (std + eps / abs(a))
    return [factor * value for value in z]
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "e8_rescaled_check", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
# NBVAL_CHECK_OUTPUT
passed = check_rescaled_zscores(rescaled_zscores)
### BEGIN HIDDEN TESTS
assert passed
### END HIDDEN TESTS

# %% [markdown]
# ## 3. Equal and nearly equal siblings · ★★☆
#
# Two siblings have values v and v + δ (δ ≥ 0). Derive their z-scores as a function of δ and
# ε, and write them as `pair_zscores(delta, eps) -> (z_low, z_high)`. Then find the δ at which
# each gets half its full credit, |z| = 1/2, and write it as `half_credit_delta(eps)`.
#
# <details><summary>Hint</summary>
#
# The mean of the two values is v + δ/2; each is δ/2 away from it; what is their population
# standard deviation?
# </details>


# %% nbgrader={"grade": false, "grade_id": "e8_pair", "locked": false, "schema_version": 3, "solution": true, "task": false}
def pair_zscores(delta: float, eps: float) -> tuple[float, float]:
    """The z-scores of two siblings whose values differ by delta >= 0."""
    ### BEGIN SOLUTION
    # mean v + delta / 2, std delta / 2: z = ∓ (delta / 2) / (delta / 2 + eps)
    z = delta / (delta + 2 * eps)
    return -z, z
    ### END SOLUTION


def half_credit_delta(eps: float) -> float:
    """The difference delta at which each of two siblings gets |z| = 1/2."""
    ### BEGIN SOLUTION
    # delta / (delta + 2 eps) = 1/2  <=>  delta = 2 eps
    return 2 * eps
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "e8_pair_check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
# NBVAL_CHECK_OUTPUT
passed = check_pair_zscores(pair_zscores)
### BEGIN HIDDEN TESTS
assert passed
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "e8_half_check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
# NBVAL_CHECK_OUTPUT
passed = check_half_credit(half_credit_delta)
### BEGIN HIDDEN TESTS
assert passed
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": true, "grade_id": "e8_epsilon", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# ## 4. What ε does · ★★☆
#
# In a few sentences: what does ε do when siblings are equal, and when they are nearly equal? With
# rewards in {0, 1}, can two sibling values in one of BEL's trees (at most 16 leaves) differ by less
# than 2ε? Try `sum([1/2, 2/3, 1/3]) / 3` against `sum([1, 1/2, 0]) / 3`, and think of a node's
# value as a mean of means computed along different paths. So when does ε matter in ELPO?
#
# ### BEGIN SOLUTION
# Equal siblings have δ = 0 and σ = 0: without ε their z-scores are 0 / 0, NaN, which would poison
# the whole loss; with ε they are 0, the right answer, since no sibling did better. Nearly equal
# siblings get ∓δ/(δ + 2ε): ε is a floor below which a difference counts for little (half credit at
# δ = 2ε, part 3) while differences far above it get ±1.
#
# Real differences between sibling values are never that small here: a value is a fraction built
# from at most 16 rewards of 0 or 1, and two different ones differ by thousandths at least (the
# smallest in 100,000 random trees of up to 16 leaves was 0.0046). But *equal* values computed
# along different paths can differ by rounding: `sum([1/2, 2/3, 1/3]) / 3` is
# 0.49999999999999994, while `sum([1, 1/2, 0]) / 3` is 0.5. Without ε two such siblings would get
# ∓1, a full advantage out of rounding noise; with ε they get about ∓1e-11. So in ELPO ε matters
# exactly there: it turns 0/0 into 0 and rounding noise into nothing, and changes no real
# advantage by more than a relative 1e-6/σ. (`elpo_min.advantages.zscores` also returns an exact 0
# when all values are equal.) It would change real advantages only for rewards on a scale near
# 1e-6 (part 1).
# ### END SOLUTION

# %% [markdown]
# ## To think about
#
# * GRPO z-scores over a group of N independent samples. If every sample in a group fails,
#   what advantage does each get, and what does the group contribute to the gradient? What
#   does ELPO's tree do with the same all-failed group?
# * With two siblings, A_b is always ∓1 (or 0). With three, which values can it take when the
#   rewards are 0 or 1? What does that say about how much A_b can distinguish?
