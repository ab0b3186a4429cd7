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
# # 04 · Error-localized adaptive clipping (ELC)
#
# The policy loss is PPO's clipped surrogate per token (paper Eq. 2):
#
# $$\min\big(r_t A_t,\ \mathrm{clip}(r_t, 1-\epsilon_{low,t}, 1+\epsilon_{high})\, A_t\big),\qquad r_t = e^{\log\pi_\theta - \log\pi_{old}}$$
#
# averaged per trajectory over its action tokens, then over the trajectories (Eq. 1). ELC
# (§4.3, Eq. 11) widens only the **lower** bound, and only on the critical step and its
# suffix in the failed trajectory τ*: $\epsilon_{low,t} = \epsilon_{low} + \epsilon_{elc}$
# there, $\epsilon_{low}$ elsewhere; Eq. 12 is the resulting surrogate. With the paper's
# values (Table 2) the trust region is [0.685, 1.315] on the error suffix and [0.8, 1.315]
# elsewhere.

# %%
# Library progress bars and info logs would fill the committed outputs: switch them off.
# (tqdm warns that ipywidgets is missing; its text progress bars work without it.)
import warnings

warnings.filterwarnings("ignore", message="IProgress not found")
from transformers.utils import logging as hf_logging  # noqa: E402

hf_logging.disable_progress_bar()
hf_logging.set_verbosity_error()

# %%
import copy
import json

import matplotlib.pyplot as plt
import torch

from elpo_min import Config, clip_bounds, clipped_policy_loss
from elpo_min.bel import build_trees
from elpo_min.diagnostics import mean_ci
from elpo_min.fast_update import ChunkedLogProbs, PackedLogProbs, ancestor_mask, pack_rows
from elpo_min.logprobs import token_logprobs
from elpo_min.loss import aggregate
from elpo_min.models import load_policy
from elpo_min.rollout import RolloutEngine
from elpo_min.tasks import data_dir, load_problems
from elpo_min.tools import run_arith
from elpo_min.train import BEL_ARGS, credit_tree, policy_update, training_batch

# %%
# NBVAL_CHECK_OUTPUT
cfg = Config()
eps_low = clip_bounds(torch.tensor([[1.0, 0.0]]), eps_low=cfg.eps_low, eps_elc=cfg.eps_elc)
print("lower bounds on / off the error suffix:", [round(1 - e, 3) for e in eps_low[0].tolist()])
print("upper bound everywhere:", 1 + cfg.eps_high)

# %% [markdown]
# ## The objective against the ratio
#
# The lower bound only matters when A < 0: once r < 1 − ε_low, the clip stops the update from
# pushing a bad token's probability further down. ELC lets the tokens of the error suffix go
# 11.5 points further down before their gradient switches off.

# %% tags=["readme-figure"]
ratios = torch.linspace(0.4, 1.6, 241)
fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), sharex=True)
for ax, advantage in zip(axes, (-1.0, 1.0)):
    for in_suffix, style in ((0.0, "-"), (1.0, "--")):
        objective = []
        for r in ratios:
            loss, _ = clipped_policy_loss(
                torch.log(r).view(1, 1),
                torch.zeros(1, 1),
                torch.tensor([[advantage]]),
                torch.ones(1, 1),
                clip_bounds(torch.tensor([[in_suffix]])),
                cfg.eps_high,
            )
            objective.append(-loss.item())
        ax.plot(ratios, objective, style, label="error suffix (ELC)" if in_suffix else "elsewhere")
    ax.set(title=f"A = {advantage:+.0f}", xlabel="ratio r", ylabel="clipped objective")
    ax.grid(alpha=0.3)
    ax.legend()
plt.show()

# %% [markdown]
# Flat stretches are where the gradient is zero. For A < 0 the flat part starts at r = 0.8
# normally and at r = 0.685 on the error suffix; for A > 0 the two curves coincide.
#
# ## The worked example's batch
#
# BEL's tree for problem `test2-2` with seed 4 (notebooks 02 and 03), as training sequences:
# one row per root-to-leaf path, with A_hier on its action tokens and the ELC mask on the
# action tokens from t_crit on.

# %%
# NBVAL_CHECK_OUTPUT
PROBLEM_ID, SEED = "test2-2", 4
problem = next(p for p in load_problems(data_dir() / "toy_test.jsonl") if p.id == PROBLEM_ID)
model, tokenizer = load_policy()
model.eval()
engine = RolloutEngine(model, tokenizer, tool=run_arith)
torch.manual_seed(SEED)
tree = build_trees(engine, [problem], **{name: getattr(cfg, name) for name in BEL_ARGS})[0]
batch, info = training_batch([tree], cfg, tokenizer.pad_token_id)
for name, tensor in batch.items():
    dims = "[B sequences, T tokens]" if tensor.dim() == 2 else "[B sequences]: each row's prompt"
    print(f"{name:15s} {tuple(tensor.shape)}  {dims}")

# %%
# NBVAL_CHECK_OUTPUT
tau, result = tree.searches[0]
second_tau, second = tree.searches[1]
for row, traj in enumerate(tree.trajectories):
    actions = int(batch["action_mask"][row].sum())
    elc = int(batch["elc_mask"][row].sum())
    if elc:
        which = "τ*" if traj is tau else "the second search's failure"
        print(f"row {row:2d}: {actions} action tokens, {elc} under ELC  ({which})")
print(
    "ELC tokens that are not actions:", int((batch["elc_mask"] * (1 - batch["action_mask"])).sum())
)
first_elc = int(batch["elc_mask"][0].nonzero()[0])
print(
    f"τ*'s first ELC token is position {first_elc}, the start of turn {result.t_crit}:",
    first_elc == tau.turns[result.t_crit - 1].start,
)

# %% [markdown]
# Two rows carry ELC: τ* from its turn 4 on, and the failure of the second search, whose open
# bracket left t_crit = 1, so ELC covers all of its action tokens (the pseudo-code read
# literally; `elc_unprobed` decides the same for searches with no probe at all). No
# continuation is covered: with the default `elc_scope="trajectory"` ELC marks τ* only.
#
# ## The loss and its gradient, with and without ELC
#
# At the policy that sampled the batch every ratio is 1 (the teacher-forced log-probs equal the
# recorded ones up to float rounding), inside both trust regions, so ELC changes nothing: the
# loss and the gradient are the same with ε_elc = 0.115 and with 0.


# %%
def loss_and_gradient(policy, eps_elc, aggregation=cfg.aggregation):
    """Eq. 12's loss on the batch and its gradient as one flat vector."""
    policy.zero_grad()
    logp = token_logprobs(  # [B, T]
        policy, batch["input_ids"], batch["attention_mask"], target_mask=batch["action_mask"]
    )
    lower = clip_bounds(batch["elc_mask"], cfg.eps_low, eps_elc)  # [B, T]
    loss, stats = clipped_policy_loss(
        logp,
        batch["old_logp"],
        batch["advantages"],
        batch["action_mask"],
        lower,
        cfg.eps_high,
        aggregation,
        region=batch["elc_mask"],
    )
    loss.backward()
    gradient = torch.cat([p.grad.flatten() for p in policy.parameters()])  # [parameters]
    return loss.item(), gradient, stats, logp.detach()


# %%
# NBVAL_CHECK_OUTPUT
loss_elc, grad_elc, _, logp = loss_and_gradient(model, cfg.eps_elc)
loss_plain, grad_plain, _, _ = loss_and_gradient(model, 0.0)
ratio = (logp - batch["old_logp"]).exp()  # [B, T]
action = batch["action_mask"] > 0
print(f"gradient: {tuple(grad_elc.shape)}")
print("every action token's ratio within 1e-4 of 1:", bool((ratio[action] - 1).abs().max() < 1e-4))
print(f"loss with ELC {loss_elc:+.5f}, without {loss_plain:+.5f}")
print("gradients equal:", torch.equal(grad_elc, grad_plain))

# %% [markdown]
# Why is the loss not 0? At r = 1 the clipped objective min(r A, clip(r, ...) A) is A itself,
# so the loss is minus Eq. 1's aggregate of the advantages: each row's mean A over its action
# tokens, averaged over the rows. A_hier is normalized on the tree, not on this batch. A_t
# z-scores the 16 leaves' rewards, so its mean over the leaves is 0; but a row's token mean
# mixes the A_hier of all its turns, weighted by their lengths, and most turns are internal
# nodes, whose A_t is the mean over their leaves and whose A_b, half of their A_hier, is a
# z-score among siblings only. Nothing makes those row means average to 0. (GRPO's advantages,
# one z-score per trajectory on all of its tokens, would aggregate to 0 up to rounding.)

# %%
# NBVAL_CHECK_OUTPUT
mean_advantage = aggregate(batch["advantages"], batch["action_mask"], cfg.aggregation).item()
print(f"-aggregate(A) = {-mean_advantage:+.5f}")
print(
    "the loss at ratio 1 equals -aggregate(A) within 1e-6:", abs(loss_elc + mean_advantage) < 1e-6
)
leaves = credit_tree(tree, cfg).root.leaves()
leaf_mean = sum(leaf.a_traj for leaf in leaves) / len(leaves)
print(f"mean A_t over the {len(leaves)} leaves is 0 within 1e-9:", abs(leaf_mean) < 1e-9)

# %% [markdown]
# ELC acts only once the ratio has moved, that is from the second update on the same batch
# (a later mini-batch or epoch). So we move the policy first: one update on the whole batch
# at a learning rate of 1e-3, ten times the default so that ratios move visibly in one step.
# Then the same loss and gradient at the moved policy, against the log-probs recorded at
# sampling, as the second update would compute them.

# %%
# NBVAL_CHECK_OUTPUT
torch.manual_seed(0)
moved = copy.deepcopy(model)
optimizer = torch.optim.AdamW(moved.parameters(), lr=1e-3)
policy_update(moved, optimizer, batch, Config(lr=1e-3))
loss_elc, grad_elc, stats_elc, logp = loss_and_gradient(moved, cfg.eps_elc)
loss_plain, grad_plain, stats_plain, _ = loss_and_gradient(moved, 0.0)
ratio = (logp - batch["old_logp"]).exp()  # [B, T]
bad = (batch["action_mask"] > 0) & (batch["advantages"] < 0)
between = (ratio >= 1 - cfg.eps_low - cfg.eps_elc) & (ratio < 1 - cfg.eps_low)
elc = batch["elc_mask"] > 0
print(
    f"ELC tokens with A < 0: {int((bad & elc).sum())}; their ratio is below 0.685 for "
    f"{int((bad & elc & (ratio < 0.685)).sum())}, in [0.685, 0.8) for "
    f"{int((bad & elc & between).sum())}"
)
print(f"loss without ELC - loss with ELC = {loss_plain - loss_elc:+.4f}")
print(
    f"clipped share of ELC tokens: with ELC {stats_elc['clip_frac_in_region']:.3f}, "
    f"without {stats_plain['clip_frac_in_region']:.3f}"
)
print(
    f"clipped share elsewhere:     with ELC {stats_elc['clip_frac_out_region']:.3f}, "
    f"without {stats_plain['clip_frac_out_region']:.3f}"
)
difference = (grad_elc - grad_plain).norm() / grad_plain.norm()
print(f"|grad with ELC - grad without| / |grad without| = {difference:.3f}")

# %% [markdown]
# The gradients now differ, and only through the error-suffix tokens with a negative
# advantage whose ratio lies in [0.685, 0.8): without ELC they are clipped and contribute
# nothing; with ELC they keep pushing their probability down. Tokens that fell below 0.685
# are clipped either way (the loss still differs, since a clipped token's value is its bound
# times A, 0.685 A with ELC and 0.8 A without, but their gradient is 0 in both), and every
# other token sees the same bounds. One update of the tiny policy at this learning rate moves
# most ratios far, so the window holds few tokens.
#
# ## Two aggregations
#
# Eq. 1 averages the clipped terms over each trajectory's action tokens, then over the
# trajectories (`seq-mean-token-mean`): every trajectory weighs the same, whatever its length.
# DAPO's `token-mean` averages over all action tokens of the batch at once, so a long
# trajectory weighs more. On the moved policy:

# %%
# NBVAL_CHECK_OUTPUT
lengths = batch["action_mask"].sum(-1)  # [B]
print("action tokens per sequence:", lengths.int().tolist())
print(
    f"weight of one token: seq-mean-token-mean 1/(B * n_i) ranges "
    f"{1 / (len(lengths) * lengths.max()):.5f} to {1 / (len(lengths) * lengths.min()):.5f}; "
    f"token-mean 1/N = {1 / lengths.sum():.5f}"
)
for aggregation in ("seq-mean-token-mean", "token-mean"):
    loss, _, _, _ = loss_and_gradient(moved, cfg.eps_elc, aggregation)
    print(f"{aggregation:20s} loss = {loss:+.2f}")

# %% [markdown]
# The failures that took extra turns (retries) are the longest sequences, so `token-mean`
# gives their tokens, most of them with negative advantages, a larger share of the loss. A
# sequence with no action token at all (a prompt the model answered with nothing) adds 0 to
# both and, in `seq-mean-token-mean`, is left out of the count of sequences.
#
# ## One row per leaf in the loss, each shared token once in the forward
#
# The batch has one row per leaf, and the rows repeat what they share: the prompt is in all 16
# rows, τ*'s first three turns in 7 of them (notebook 03), each probed prefix(m) in every row
# that continues it. The loss needs those rows, since each leaf has its own advantages and ELC
# mask, and a shared token is counted once per leaf that holds it. The forward pass does not
# need them: a token's log-prob depends only on the tokens before it, so each distinct
# root-to-token path needs computing once. The trainer's update (`elpo_min.fast_update`) merges
# the rows into a token tree, lays the tree out depth-first in one packed row, lets each token
# attend to its ancestors only (in depth-first order, the ancestors of a token are the earlier
# positions whose subtree still contains it), gives each token its depth as its position, so
# that it sees exactly the context and the rotary positions it has in its own row, and hands
# each distinct token's log-prob back to every row that holds it.

# %%
# NBVAL_CHECK_OUTPUT
row_lengths = batch["attention_mask"].sum(-1)  # [B]
packed = pack_rows(batch["input_ids"], row_lengths.tolist(), budget=10_000)
print(f"tokens in the {len(row_lengths)} rows: {int(row_lengths.sum())}")
print(f"distinct root-to-token paths: {packed.sizes[0]}, in {len(packed.sizes)} packed row")
print(f"forwarded once each: {packed.sizes[0] / int(row_lengths.sum()):.2f} of the rows' tokens")

# %%
# NBVAL_IGNORE_OUTPUT
# how many rows hold each position of the packed row, drawn for every token of every row
holders = torch.zeros(packed.sizes[0])  # [L]
for b, n in enumerate(row_lengths.tolist()):
    holders[packed.index[b, :n]] += 1
shared = torch.full(batch["input_ids"].shape, float("nan"))  # [B, T]
for b, n in enumerate(row_lengths.tolist()):
    shared[b, :n] = holders[packed.index[b, :n]]
allowed = ancestor_mask(packed.subtree_end)[0, 0, : packed.sizes[0], : packed.sizes[0]]  # [L, L]
fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
image = axes[0].imshow(shared, aspect="auto", interpolation="nearest", cmap="viridis")
axes[0].set(title="the 16 rows: how many rows hold each token", xlabel="position", ylabel="row")
fig.colorbar(image, ax=axes[0])
axes[1].imshow(allowed, cmap="Greys", interpolation="nearest")
axes[1].set(
    title="the packed row: who attends to whom",
    xlabel="key position (depth-first)",
    ylabel="query position",
)
plt.tight_layout()
plt.show()

# %% [markdown]
# On the left, the prompt and τ*'s first turns are held by many rows; on the right, each query
# sees a staircase of its own ancestors: the shared trunk at the start, then only its own
# branch, never a sibling's. The packed update gives the loss the same numbers as the rows, so
# one update on this batch through each path takes the same step (as `make test` checks in
# float64 to 1e-10 on many kinds of tree):

# %%
# NBVAL_CHECK_OUTPUT
runs = {}
for name, forward in (("one row per leaf", ChunkedLogProbs), ("packed", PackedLogProbs)):
    torch.manual_seed(0)
    stepped = copy.deepcopy(model)
    optimizer = torch.optim.AdamW(stepped.parameters(), lr=1e-3)
    runs[name] = policy_update(forward(stepped), optimizer, batch, Config(lr=1e-3))
per_leaf, packed_run = runs.values()
print(f"loss at ratio 1, both: {per_leaf['loss']:+.5f} and {packed_run['loss']:+.5f}")
same = all(abs(per_leaf[k] - packed_run[k]) <= 1e-5 * max(1.0, abs(per_leaf[k])) for k in per_leaf)
print("loss, gradient norm and every statistic equal within 1e-5:", same)

# %% [markdown]
# What the paper leaves open is only how much a shared token should weigh in the loss (here,
# once per leaf, as the rows say; notebook 03); how the forward is computed changes nothing the
# update sees. On the demo's trees the packed update forwards about 0.4 of the rows' tokens and
# takes about half the time (`benchmarks/packed_update.py`, in
# [docs/results.md](../docs/results.md)).
#
# ## Four epochs on the batch, with and without ELC
#
# Finally the effect on what the policy learns from this batch: four epochs from the sampling
# policy, once with ELC and once with ε_elc = 0, and the mean log-prob of the error suffix's
# tokens with A < 0 before and after. The epochs run one `policy_update` at a time (the same
# updates as `ppo_epochs=4`), so that we can count, before each, the error-suffix tokens with
# A < 0 whose ratio lies in ELC's window [0.685, 0.8): the only tokens whose gradient ELC
# changes in that update.

# %%
# NBVAL_CHECK_OUTPUT
suffix = (batch["elc_mask"] > 0) & (batch["advantages"] < 0)  # [B, T]
window = (1 - cfg.eps_low - cfg.eps_elc, 1 - cfg.eps_low)  # [0.685, 0.8)


def suffix_logprobs(policy):
    with torch.no_grad():
        logp = token_logprobs(policy, batch["input_ids"], batch["attention_mask"])
    return logp[suffix]  # [error-suffix tokens with A < 0]


def in_window(policy):
    ratio = (suffix_logprobs(policy) - batch["old_logp"][suffix]).exp()
    return int(((ratio >= window[0]) & (ratio < window[1])).sum())


before = suffix_logprobs(model).mean().item()
print(
    f"error-suffix tokens with A < 0: {int(suffix.sum())}; their mean log-prob before: {before:.2f}"
)
after = {}
for name, eps_elc in (("with ELC (eps_elc = 0.115)", cfg.eps_elc), ("without (eps_elc = 0)", 0.0)):
    torch.manual_seed(0)
    trained = copy.deepcopy(model)
    optimizer = torch.optim.AdamW(trained.parameters(), lr=1e-3)
    counts, clipped = [], []
    for _ in range(4):
        counts.append(in_window(trained))
        stats = policy_update(trained, optimizer, batch, Config(lr=1e-3, eps_elc=eps_elc))
        clipped.append(stats["clip_frac_in_region"])
    after[name] = suffix_logprobs(trained).mean().item()
    print(
        f"{name:27s} after: {after[name]:.1f}; in the window before each epoch: {counts}; "
        f"clipped share of ELC tokens {sum(clipped) / 4:.3f}"
    )
difference = abs(after["with ELC (eps_elc = 0.115)"] - after["without (eps_elc = 0)"])
print("the two runs end within 0.01 nat of each other:", difference < 0.01)

# %% [markdown]
# Both runs push the error suffix's log-prob from −0.18 to about −2.3, and ELC makes no
# visible difference: they end within 0.01 nat of each other. On the CPUs tried, the run with
# ELC even ended a few thousandths of a nat higher, the opposite of what ELC is for; but that is
# a thousandth of the 2.1-nat push, and close to what float rounding alone moves these means
# between CPU kernels (their third decimal differs from one kernel to another, which is why the
# cell prints one decimal and a tolerance, and not the difference itself). The counts say why ELC hardly
# matters here. It changes the gradient only of the tokens in its window: 0, 2, 2 and 1 of the
# 95 error-suffix tokens with A < 0 before the four epochs, 5 token-updates out of 380. At the
# same parameters every other token's gradient term is the same with and without ELC, and the
# shared parameters move all tokens together. Nor do a few changed token gradients steer the
# mean in ELC's direction: AdamW scales every parameter's step by its own gradient history, so
# changing some terms of the gradient reshapes the whole update, and its effect on any one
# mean can go either way.
#
# Does that add up over training? The repository's ablation says no measurable difference on
# this toy: the 6-seed runs of `benchmarks/sample_efficiency.py` (`--arms grpo elpo
# elpo_lambda0 elpo_no_elc elpo_random_anchors --steps 15`, run on the rollout engine that
# keeps its own KV cache, the fast decoder (`train`'s default), and committed in
# `benchmarks/results/efficiency5_rows.json`; notebook 05, the README and
# [docs/results.md](../docs/results.md) cite the same run) end with ELPO and ELPO without ELC
# within noise:

# %%
# NBVAL_CHECK_OUTPUT
rows = json.load(open("../benchmarks/results/efficiency5_rows.json"))
final = {(r["arm"], r["seed"]): r["curve"]["15"] for r in rows}
seeds = sorted({r["seed"] for r in rows})
for arm in ("elpo", "elpo_no_elc"):
    mean, half = mean_ci([final[arm, s] for s in seeds])
    print(f"{arm:12s} pass@1 after 15 steps: {mean:.1%} ± {half:.1%}")
gap, half = mean_ci([100 * (final["elpo", s] - final["elpo_no_elc", s]) for s in seeds])
print(f"ELPO - ELPO without ELC, paired over {len(seeds)} seeds: {gap:+.1f} ± {half:.1f} points")

# %% [markdown]
# The interval includes zero. These runs make two updates per step (128 sequences in
# mini-batches of 64), so few ratios leave the trust region (notebook 05's regime table prints
# the clip fractions of runs that also make two updates per step: under 0.5% of tokens), and
# ELC has few gradients to change.
#
# ## What to try next
# * `Config(elc_scope="subtree")`: ELC also covers failed continuations below the critical node.
# * `Config(elc_unprobed=False)`: leave failures that got no probe alone.
# * A smaller `minibatch_prompts` (or `minibatch_prompts=0` and a smaller `minibatch_size`), or
#   more `ppo_epochs`: more off-policy updates, more clipping.
