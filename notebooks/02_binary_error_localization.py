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
# # 02 · Binary Error Localization
#
# A failed tool-using trajectory τ has K steps. Somewhere is its **first irrecoverable step**
# `t_crit`: before it, the policy could still have succeeded from the prefix; from it on,
# nothing it samples succeeds. ELPO finds it by binary search (paper §4.1, Algorithm 1 in
# Appendix A), paying for each probe in rollouts from the same fixed budget N_total that also
# buys the full trajectories:
#
# ```
# L, R <- 1, K
# while L < R and budget left:
#     m <- floor((L + R) / 2)
#     sample X_m continuations from prefix(m)
#     if any succeeds: L <- m + 1     # prefix(m) is still recoverable
#     else:            R <- m         # the fatal step is at or before m
# t_crit <- L
# ```
#
# `binary_error_localization` takes only a step count, a budget and a `probe(m, n)` callable,
# so we first study it on a *simulated* policy where the right answer is known, then run the
# whole per-prompt loop on notebook 01's worked example.

# %%
# Library progress bars and info logs would fill the committed outputs: switch them off.
# (tqdm warns that ipywidgets is missing; its text progress bars work without it.)
import warnings

warnings.filterwarnings("ignore", message="IProgress not found")
from transformers.utils import logging as hf_logging  # noqa: E402

hf_logging.disable_progress_bar()
hf_logging.set_verbosity_error()

# %%
import math
import random

import matplotlib.pyplot as plt
import torch

from elpo_min import Config, binary_error_localization, suffix_count, toy
from elpo_min.bel import build_trees, entropy_gap, select_failure, step_entropies
from elpo_min.diagnostics import bel_report
from elpo_min.fast_decoder import FastDecoder
from elpo_min.models import load_policy
from elpo_min.rollout import RolloutEngine
from elpo_min.tasks import data_dir, load_problems
from elpo_min.tools import run_arith
from elpo_min.train import BEL_ARGS

# %% [markdown]
# ## A simulated policy with known recoverability
#
# `p[m]` is the chance that one continuation from prefix(m) succeeds. Recoverability is
# monotone here: positive before the fatal step, zero from it on.


# %%
# NBVAL_CHECK_OUTPUT
def simulated_probe(p, rng):
    def probe(m, n):
        return [rng.random() < p[m] for _ in range(n)]

    return probe


K, t_true = 8, 6
p = {m: (0.5 if m < t_true else 0.0) for m in range(1, K + 1)}
result = binary_error_localization(K, simulated_probe(p, random.Random(1)), budget=13, n_suffix=2)
print("probes (anchor m, outcomes):", result.probes)
print("t_crit =", result.t_crit, "| true fatal step =", t_true, "| rollouts spent =", result.spent)

# %% [markdown]
# Same world, another random stream: at m = 4 both continuations failed although prefix(4)
# was recoverable (chance 0.25), and the search went left for good.

# %%
# NBVAL_CHECK_OUTPUT
unlucky = binary_error_localization(K, simulated_probe(p, random.Random(0)), budget=13, n_suffix=2)
print("probes:", unlucky.probes, "-> t_crit =", unlucky.t_crit)

# %% [markdown]
# Each probe halves the bracket `[L, R]`, so about log2(K) anchors suffice. With few
# continuations a recoverable prefix can look lost, which pushes `t_crit` too early. ELPO
# sizes the number of continuations by how uncertain the policy is right after the tool
# output (Eq. 5):
#
# $$X_m = \mathrm{round}\big(X_{\min} + (X_{\max}-X_{\min})\,\sigma(\beta\,(H_{step}(\tau,m) - H_{root}(\tau)))\big)$$
#
# with the paper's X_min = 1, X_max = 3, β = 5 (Table 2). A step after which the policy is
# more uncertain than at the start gets more continuations.

# %%
# NBVAL_CHECK_OUTPUT
for gap in (-1.0, -0.1, 0.0, 0.1, 1.0):
    print(f"H_step - H_root = {gap:+.1f}  ->  X_m = {suffix_count(1.0 + gap, 1.0)}")

# %% [markdown]
# ## Budget accounting: BEL vs probing every step vs random anchors
#
# Same simulated world, 2,000 trajectories with a random K and fatal step. Three strategies
# spend continuations (2 per anchor) to name the first irrecoverable step:
# * **BEL**: the binary search;
# * **every step**: probe all of m = 1..K−1; t = 1 + the last m with a success (a success
#   proves recoverability, so only the last recoverable step can be missed);
# * **random anchors**: 3 random steps, keeping the tightest bracket, as BEL would.


# %% tags=["readme-figure"]
def every_step(K, probe, n=2):
    alive = [m for m in range(1, K) if any(probe(m, n))]
    return (max(alive) + 1 if alive else 1), n * (K - 1)


def random_anchors(K, probe, rng, n=2, anchors=3):
    left, right, spent = 1, K, 0
    for m in rng.sample(range(1, K), min(anchors, K - 1)):
        if left <= m < right:
            spent += n
            left, right = (m + 1, right) if any(probe(m, n)) else (left, m)
    return left, spent


rng = random.Random(1)
scores = {"BEL": [], "every step": [], "random anchors": []}
for _ in range(2000):
    K = rng.randint(2, 10)
    t = rng.randint(1, K)
    probe = simulated_probe({m: (0.5 if m < t else 0.0) for m in range(1, K + 1)}, rng)
    r = binary_error_localization(K, probe, budget=32, n_suffix=2)
    found = {
        "BEL": (r.t_crit, r.spent),
        "every step": every_step(K, probe),
        "random anchors": random_anchors(K, probe, rng),
    }
    for name, (t_found, spent) in found.items():
        scores[name].append((t_found == t, spent))

fig, ax = plt.subplots(figsize=(5, 3.2))
for name, rows in scores.items():
    accuracy = sum(ok for ok, _ in rows) / len(rows)
    cost = sum(s for _, s in rows) / len(rows)
    ax.scatter(cost, accuracy, s=80, label=name)
    print(f"{name:15s} accuracy {accuracy:.2f}  continuations {cost:.1f}")
ax.set(xlabel="continuations spent per trajectory", ylabel="localization accuracy", ylim=(0, 1))
ax.legend()
ax.grid(alpha=0.3)
plt.show()

# %% [markdown]
# Probing every step is the most accurate (one lucky success anywhere fixes the bracket) but
# costs K−1 anchors; BEL gets most of that accuracy for about log2(K) anchors, and random
# anchors waste probes outside the current bracket. BEL's misses are recoverable prefixes
# whose continuations all failed by chance, which a larger X_m makes rarer.
#
# ## When recoverability is not monotone
#
# The search assumes that once prefix(m) is lost, every longer prefix is lost too. Suppose
# instead that the success rate from prefix(3) is 0 but the one from prefix(4) is high again.
# Then the search can close in on a step that is not the first dead one.

# %%
# NBVAL_CHECK_OUTPUT
K = 8
# prefix(3) looks dead, prefix(4) and prefix(5) are alive again
p = {1: 1.0, 2: 1.0, 3: 0.0, 4: 1.0, 5: 1.0, 6: 0.0, 7: 0.0, 8: 0.0}
r = binary_error_localization(K, simulated_probe(p, random.Random(0)), budget=16)
print("anchors:", [m for m, _ in r.probes], "-> t_crit =", r.t_crit, "(first dead prefix is 3)")

# %% [markdown]
# The search probed m = 4 (alive), moved right, and never looked at step 3.
#
# A tool call that raises and is then retried is **not** such a dip: the correct number stays
# in context, so the prefix right after the error is still recoverable (the worked example
# below probes exactly such a prefix, and a continuation succeeds). A dip needs a prefix whose
# continuations almost never succeed although a longer one's often do, for example when τ's
# next step happened to repair a mistake that the policy rarely repairs. For the toy, the
# reference for t_crit is therefore `toy.fatal_step` (the first wrong value carried forward),
# not `toy.first_error_step`, which also counts a call that raised and was retried.
#
# ## BEL on the worked example
#
# Now the whole per-prompt loop of Algorithm 1 with the tiny policy: collect full
# trajectories until the failure buffer holds `b_max` failures, pick τ*, search it, and repeat
# while budget is left. `build_trees` runs it for a batch of prompts in lockstep rounds; here
# for the one problem and seed of notebook 01.

# %%
# NBVAL_CHECK_OUTPUT
PROBLEM_ID, SEED = "test2-2", 4
problem = next(p for p in load_problems(data_dir() / "toy_test.jsonl") if p.id == PROBLEM_ID)
model, tokenizer = load_policy()
model.eval()
engine = RolloutEngine(model, tokenizer, tool=run_arith)
cfg = Config()
bel_args = {name: getattr(cfg, name) for name in BEL_ARGS}
print("BEL's settings (paper Table 2):", bel_args)
torch.manual_seed(SEED)
tree = build_trees(engine, [problem], **bel_args)[0]
print(f"rollouts spent: {tree.rollouts} of N_total = {cfg.n_total}; searches: {len(tree.searches)}")

# %% [markdown]
# ### τ* from the failure buffer (Eq. 4)
#
# The first collection sampled the three trajectories of notebook 01 (same seed), all failed,
# so the buffer is full at once. ELPO searches the failure with the largest entropy gap:
# $\tau^* = \arg\max_{\tau \in \text{buffer}} \big(H_{tool}(\tau) - H_{root}(\tau)\big)$.

# %%
# NBVAL_CHECK_OUTPUT
buffer = [traj for traj in tree.trajectories[: cfg.b_max] if not traj.success]
for i, traj in enumerate(buffer):
    print(f"buffer[{i}]: K = {traj.num_steps}, entropy gap = {entropy_gap(traj):+.4f}")
tau, result = tree.searches[0]
print(f"select_failure picks buffer[{buffer.index(select_failure(buffer))}]")
print("the first search ran on it:", select_failure(buffer) is tau)

# %% [markdown]
# All three gaps are small and negative: on this toy the tool outputs barely move the
# policy's uncertainty, so Eq. 4 separates the failures by a few hundredths of a nat. It picks
# buffer[0], notebook 01's worked example.
#
# ### X_m at each anchor (Eq. 5), the probes, and t_crit

# %%
# NBVAL_CHECK_OUTPUT
h_root, h_steps = step_entropies(tau)
print(f"H_root = {h_root:.3f}")
for m, h_step in enumerate(h_steps, start=1):
    x_m = suffix_count(h_step, h_root, cfg.x_min, cfg.x_max, cfg.beta)
    print(f"m = {m}: H_step = {h_step:.3f}, H_step - H_root = {h_step - h_root:+.3f}, X_m = {x_m}")

# %%
# NBVAL_CHECK_OUTPUT
left, right = 1, tau.num_steps
print(f"start: [L, R] = [{left}, {right}]")
for m, outcomes in result.probes:
    left, right = (m + 1, right) if any(outcomes) else (left, m)
    verdict = "a success: recoverable" if any(outcomes) else "all failed: lost"
    print(
        f"probe prefix({m}) x {len(outcomes)}: {outcomes} ({verdict}) -> [L, R] = [{left}, {right}]"
    )
print(f"t_crit = {result.t_crit}, rollouts spent on this search: {result.spent}")
print("oracle: fatal_step =", toy.fatal_step(problem, tau.tool_outputs), end=", ")
print("first_error_step =", toy.first_error_step(problem, tau.tool_outputs))

# %% [markdown]
# The gaps H_step − H_root run from −0.105 to +0.024, and X_m is 2 at every anchor. How far
# could a gap go before X_m changed? With X_min = 1, X_max = 3 and β = 5, Eq. 5 is
# X_m = round(1 + 2 σ(5 · gap)), rounded half up, which is 2 for 1.5 ≤ 1 + 2σ < 2.5, that is
# for ¼ ≤ σ(5 · gap) < ¾. Since σ(x) = ¾ at x = ln 3, that is −ln(3)/5 ≤ gap < ln(3)/5:
# X_m stays 2 while |H_step − H_root| < 0.22, and every gap here is well inside.
# `suffix_count` agrees on either side of both edges:

# %%
# NBVAL_CHECK_OUTPUT
edge = math.log(3) / cfg.beta
print(f"ln(3) / beta = {edge:.4f}")
for gap in (-edge - 1e-6, -edge + 1e-6, edge - 1e-6, edge + 1e-6):
    x_m = suffix_count(gap, 0.0, cfg.x_min, cfg.x_max, cfg.beta)
    print(f"H_step - H_root = {gap:+.6f} -> X_m = {x_m}")
print(f"largest |H_step - H_root| of tau*: {max(abs(h - h_root) for h in h_steps):.3f}")

# %% [markdown]
# The first probe, prefix(3), ends right after the call that raised; one of its two
# continuations recovered, so the slip was not fatal and the search moved right. Both
# continuations from prefix(5) and from prefix(4) failed: t_crit = 4, the step that copied
# 26462 instead of 26406, which is the oracle's fatal step. `first_error_step` would have
# blamed step 3.
#
# The search spent 6 rollouts, and the first collection 3, so 7 of N_total = 16 were left for a
# second round. A round starts with **collecting**: sampling full trajectories until the
# failure buffer holds `b_max` = 3 failures again. Each request for full trajectories asks for
# as many as failures are still missing (at most the budget left), so a success costs a
# request more. Here the buffer refilled in three requests, of 3, 2 and 1 trajectories, which
# left a single rollout for the second search:

# %%
# NBVAL_CHECK_OUTPUT
full = [traj for traj in tree.trajectories if id(traj) not in tree.parents]
second_round, failures, requests = full[cfg.b_max :], 0, []
while failures < cfg.b_max and second_round:  # replay the collection's requests
    n = cfg.b_max - failures
    got, second_round = second_round[:n], second_round[n:]
    requests.append(["success" if traj.success else "failure" for traj in got])
    failures += sum(not traj.success for traj in got)
print("second round, full trajectories per request:", requests)
second_tau, second = tree.searches[1]
print("second search: K =", second_tau.num_steps, "| probes:", second.probes, end=" ")
print("| spent:", second.spent, "| t_crit =", second.t_crit)
print("its oracle fatal step:", toy.fatal_step(problem, second_tau.tool_outputs))

# %% [markdown]
# Its only probe failed, which set R = 3, and the budget was gone: t_crit = L = 1 is the left
# end of an open bracket [1, 3], a default rather than a finding. (Here it happens to be
# right: that trajectory mis-copied the first number.) A search with no probe at all
# (K ≤ 1, or no budget left) gets the same default; `unprobed` in the training log counts
# those, and `t_crit_mean` leaves them out.
#
# ### The tree this leaves behind
#
# Rows are trajectories in the order they were sampled; a continuation starts at its anchor,
# dotted from its parent. Notebook 03 turns this tree into credit.

# %%
rows = {id(traj): i for i, traj in enumerate(tree.trajectories)}
fig, ax = plt.subplots(figsize=(8, 0.32 * len(rows) + 1.2))
for i, traj in enumerate(tree.trajectories):
    parent = tree.parents.get(id(traj))
    first = parent[1] if parent else 0
    steps = list(range(first, len(traj.turns) + 1))
    color = "tab:green" if traj.success else "tab:grey"
    ax.plot(steps, [i] * len(steps), "-o", color=color, ms=4)
    if parent:
        ax.plot([first, first], [rows[id(parent[0])], i], ":", color="tab:blue")
for searched, res in tree.searches:
    row = rows[id(searched)]
    ax.plot(res.t_crit, row, "x", color="red", ms=12, mew=3)
    fatal = toy.fatal_step(problem, searched.tool_outputs)
    if fatal:
        ax.plot(fatal, row, "D", mfc="none", mec="black", ms=12)
ax.plot([], [], "-o", color="tab:green", label="success")
ax.plot([], [], "-o", color="tab:grey", label="failure")
ax.plot([], [], ":", color="tab:blue", label="continuation from prefix(m)")
ax.plot([], [], "x", color="red", mew=3, label="t_crit found by BEL")
ax.plot([], [], "D", mfc="none", mec="black", label="oracle's fatal step")
ax.set(
    xlabel="step (turn)",
    ylabel="rollout, in sampling order",
    title=f"BEL's tree for {PROBLEM_ID}: {tree.rollouts} rollouts",
)
ax.invert_yaxis()
ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
plt.show()

# %% [markdown]
# ## BEL on many prompts
#
# The same loop on 12 held-out problems, with the fast decoder (the same samples, sooner).
# How often does a search end without a finding, and how good are the `t_crit` it finds?
# Two references: the toy oracle's fatal step, and a **Monte-Carlo** one, 6 continuations
# from every prefix(m) of τ* and the first m where none succeeds. The same Monte-Carlo rates
# also score the *ranking* of siblings at every branch point (notebook 03's A_b) against
# their prefixes' success rates.

# %%
fast_engine = RolloutEngine(model, tokenizer, tool=run_arith, decoder=FastDecoder)
torch.manual_seed(0)
problems = load_problems(data_dir() / "toy_test.jsonl", limit=12)
trees = build_trees(fast_engine, problems, **bel_args)
searches = [res for t in trees for _, res in t.searches]
unprobed = sum(not res.probes for res in searches)
print(f"{len(searches)} searches, {unprobed} of them unprobed (K <= 1 or no budget left)")

# %% [markdown]
# An unprobed search has t_crit = 1 by default. With `elc_unprobed=True`, the default and the
# pseudo-code read literally, ELC then covers that failure's **whole** trajectory (notebook
# 04); `elc_unprobed=False` leaves it alone. Its A_hier does not depend on t_crit at all.

# %%
report = bel_report(fast_engine, trees[:4], n=6)
print(f"probed searches scored:   {report['searches']}")
print(f"t_crit = Monte-Carlo's first dead step: {report['agree_mc']:.0%} of them")
print(f"t_crit = oracle's fatal step: {report['agree_oracle']:.0%} of {report['oracle_searches']}")
print(
    f"sibling sets ranked: {report['sibling_sets']}, pairwise accuracy of A_b: "
    f"{report['pairwise_accuracy']:.2f} (chance 0.5), Kendall tau-a {report['kendall_tau']:.2f}"
)
scaled = 2 * report["pairwise_accuracy"] - 1
print(
    f"2 * accuracy - 1 = {scaled:.2f}; tau-a / (2 * accuracy - 1) = "
    f"{report['kendall_tau'] / scaled:.2f}, the share of sibling pairs whose rates differ"
)
print(f"Monte-Carlo rollouts spent for this report: {report['rollouts']}")

# %% [markdown]
# The two ranking scores count pairs differently. Pairwise accuracy counts only the sibling
# pairs whose Monte-Carlo rates differ (a tie in A_b counting half), so
# 2 · accuracy − 1 = (concordant − discordant) / (pairs whose rates differ). Kendall's τ here
# is τ-a: the same numerator over **all** sibling pairs, a pair whose two rates are equal (both
# prefixes dead, say) counting as neither concordant nor discordant. So τ-a is 2 · accuracy − 1
# times the share of pairs whose rates differ, smaller whenever some rates tie, and the
# second line recovers that share.
#
# These rates come from a handful of searches of four prompts, so one agreement more or less
# moves them by 15 to 20 points: they show what to measure, not a precise figure. A probed
# t_crit can miss for two reasons: a recoverable prefix whose few continuations all failed
# (the unlucky probe of the first section), and a Monte-Carlo reference that is itself
# estimated from 6 continuations per prefix.
#
# ## What to try next
# * `n_suffix` = 1, 2, 4 in the budget plot: how does accuracy trade against rollouts?
# * Lower the success probability of recoverable prefixes (0.5 → 0.2): when does BEL start
#   to blame steps too early?
# * `n_total` = 8 or 32 in `bel_args`: how many searches go unprobed?
