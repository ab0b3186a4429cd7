"""The packed update against the per-leaf update it replaces: with the same mini-batches, the
loss, every statistic and every parameter gradient are equal, within 1e-10 in float64 and 1e-5
relative in float32; and the comparison fails when the ancestor mask leaks one token.

The per-leaf reference is the memory-saving head on one row per leaf (ChunkedLogProbs), the
trainer's path before packing; the head itself is held to the core's textbook log-probs in
test_fast_update.py. Ratios are moved off 1 (the recorded log-probs perturbed), so that both
sides of the clip bind; advantages vary along rows and differ between leaves that share tokens.
"""

import copy
import random
import warnings

import pytest
import torch

import elpo_min.fast_update.packed as packed_module
from elpo_min import toy
from elpo_min.bel import BELResult, PromptTree, build_trees
from elpo_min.config import Config
from elpo_min.fast_decoder import FastDecoder
from elpo_min.fast_update import ChunkedLogProbs, PackedLogProbs, pack_rows
from elpo_min.logprobs import token_logprobs
from elpo_min.models import build_tiny_policy, load_policy
from elpo_min.models.loading import add_lora
from elpo_min.rollout import RolloutEngine
from elpo_min.tools import run_arith
from elpo_min.train import grpo_trees, micro_batches, minibatches, policy_update, training_batch
from elpo_min.trajectory import Trajectory, Turn

# one mini-batch, no gradient clipping, no step: the gradient left in .grad is the whole batch's
ONE_PASS = {"minibatch_prompts": 1000, "max_grad_norm": 1e9, "lr": 1e-4}


@pytest.fixture(autouse=True)
def norms_in_the_models_dtype(monkeypatch):
    """Qwen2's RMSNorm computes in float32 whatever the model's dtype. The two forwards sum
    attention in different orders (their rows differ), and in a float64 model those 1e-16
    differences would round differently at that float32 step; the comparison is of packing, not
    of the model's own float32 island, so here the norm runs in the model's dtype."""
    from transformers.models.qwen2 import modeling_qwen2

    def forward(self, hidden_states):
        variance = hidden_states.pow(2).mean(-1, keepdim=True)
        return self.weight * (hidden_states * torch.rsqrt(variance + self.variance_epsilon))

    monkeypatch.setattr(modeling_qwen2.Qwen2RMSNorm, "forward", forward)


@pytest.fixture(scope="module")
def sampled():
    """BEL trees of the shipped policy (probed and unprobed searches) and GRPO groups."""
    model, tok = load_policy()
    engine = RolloutEngine(model, tok, tool=run_arith, decoder=FastDecoder)
    problems = toy.generate_problems(4, seed=11)
    torch.manual_seed(1)
    bel = build_trees(engine, problems, n_total=8, b_max=2)
    grpo = grpo_trees(engine, problems[:2], 6)
    searches = [result for tree in bel for _, result in tree.searches]
    assert any(r.probes for r in searches) and any(not r.probes for r in searches)
    assert any(tree.parents for tree in bel)  # continuations from prefix(m) share tokens
    return tok, bel, grpo


def scripted_traj(problem, prompt, rng, turns, reward, parent=None, m=0):
    """A finished trajectory of random tokens: ``turns`` assistant turns (all but the last with
    a tool output), continuing ``parent.prefix(m)`` when a parent is given."""
    if parent is not None:
        traj = parent.prefix(m)
    else:
        n = len(prompt)
        traj = Trajectory(problem, list(prompt), [0] * n, [0.0] * n, [0.0] * n, n)
    for i in range(turns):
        call = i < turns - 1
        action = [rng.randrange(3, 100) for _ in range(rng.randint(2, 6))]
        output = [rng.randrange(3, 100) for _ in range(rng.randint(1, 3))] if call else []
        start = len(traj.token_ids)
        traj.token_ids += action + output
        traj.action_mask += [1] * len(action) + [0] * len(output)
        traj.logprobs += [-1.0] * len(action) + [0.0] * len(output)
        traj.entropies += [0.5] * (len(action) + len(output))
        end = start + len(action)
        code = "1+1" if call else None
        traj.turns.append(Turn(start, end, end + len(output), code, "2" if call else None))
    traj.reward, traj.success, traj.done = float(reward), bool(reward), True
    return traj


def scripted_trees() -> list[PromptTree]:
    """A tree whose probes all succeed (t_crit = K), and a tree with one leaf."""
    rng = random.Random(0)
    problem = toy.Problem(1, (("+", 1),), id="scripted")
    prompt = [rng.randrange(3, 100) for _ in range(9)]
    tau = scripted_traj(problem, prompt, rng, 4, 0)
    other = scripted_traj(problem, prompt, rng, 3, 1)
    children = [scripted_traj(problem, prompt, rng, 2, 1, tau, 2) for _ in range(2)]
    children += [scripted_traj(problem, prompt, rng, 1, 1, tau, 3)]
    parents = {id(c): (tau, 2) for c in children[:2]} | {id(children[2]): (tau, 3)}
    search = BELResult(4, [(2, [True, True]), (3, [True])], 3)
    probed = PromptTree(problem, [tau, other, *children], parents, [(tau, search)], 5)
    lone = scripted_traj(problem, prompt[:4], rng, 3, 0)
    single = PromptTree(problem, [lone], {}, [(lone, BELResult(1))], 1)
    return [probed, single]


def policy(tok, dtype, lora: bool):
    """A small random policy with the shipped vocabulary, in ``dtype`` (the trees come from the
    shipped policy; what is compared needs no trained weights); with LoRA, an adapter moved off
    zero, so the KL against the adapter-off reference is not 0."""
    model = build_tiny_policy(tok, hidden=32, layers=2, heads=4, seed=0).to(dtype)
    if lora:
        model = add_lora(model, 4, 32, quantized=False)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(0.05 * torch.randn(p.shape, generator=generator, dtype=p.dtype))
    return model


def prepared_batch(trees, cfg, pad_id, model):
    """The trainer's batch with ratios off 1 and advantages that vary along every row."""
    batch, _ = training_batch(trees, cfg, pad_id)
    generator = torch.Generator().manual_seed(1)
    mask = batch["action_mask"]
    with torch.no_grad():
        logp = token_logprobs(model, batch["input_ids"], batch["attention_mask"]).float()
    batch["old_logp"] = (logp + 0.3 * torch.randn(mask.shape, generator=generator)) * mask
    noise = 0.5 * torch.randn(mask.shape, generator=generator)
    batch["advantages"] = (batch["advantages"] + noise) * mask
    return batch


def update(forward_class, model, batch, cfg):
    """One policy_update through ``forward_class``; its stats and the gradient it left."""
    model = copy.deepcopy(model)
    params = [p for p in model.parameters() if p.requires_grad]
    torch.manual_seed(0)
    stats = policy_update(forward_class(model), torch.optim.SGD(params, lr=0.0), batch, cfg)
    return stats, [p.grad.clone() for p in params]


def gaps(trees, tok, cfg, dtype=torch.float64, lora=False) -> tuple[float, float]:
    """The largest relative gap between the two updates' statistics, and between their
    gradients (each measured against the per-leaf value's scale)."""
    model = policy(tok, dtype, lora)
    batch = prepared_batch(trees, cfg, tok.pad_token_id, model)
    per_leaf, per_leaf_grads = update(ChunkedLogProbs, model, batch, cfg)
    packed, packed_grads = update(PackedLogProbs, model, batch, cfg)
    assert per_leaf.keys() == packed.keys()
    stat_gap = max(abs(packed[k] - per_leaf[k]) / max(abs(per_leaf[k]), 1.0) for k in per_leaf)
    grad_gap = max(
        float((a - b).abs().max() / b.abs().max().clamp(min=1e-30))
        for a, b in zip(packed_grads, per_leaf_grads)
    )
    assert any(g.abs().max() > 0 for g in per_leaf_grads)
    return stat_gap, grad_gap


@pytest.mark.parametrize("aggregation", ["seq-mean-token-mean", "token-mean"])
def test_bel_trees_in_float64(sampled, aggregation):
    tok, bel, _ = sampled
    cfg = Config(aggregation=aggregation, **ONE_PASS)
    assert max(gaps(bel, tok, cfg)) < 1e-10


def test_bel_trees_in_float32(sampled):
    tok, bel, _ = sampled
    assert max(gaps(bel, tok, Config(**ONE_PASS), dtype=torch.float32)) < 1e-5


def test_grpo_groups_whose_samples_share_their_openings(sampled):
    tok, _, grpo = sampled
    cfg = Config(algo="grpo", aggregation="token-mean", **ONE_PASS)
    group = grpo[0].trajectories
    rows = [t.token_ids for t in group]
    width = max(len(r) for r in rows)
    packed = pack_rows(
        torch.tensor([r + [0] * (width - len(r)) for r in rows]), [len(r) for r in rows], 10_000
    )
    # independent samples merge beyond their shared prompt, where their openings are the same
    prompt_once = sum(len(r) for r in rows) - group[0].prompt_len * (len(rows) - 1)
    assert sum(packed.sizes) < prompt_once
    assert max(gaps(grpo, tok, cfg)) < 1e-10


def test_a_tree_whose_probes_all_succeed_and_a_tree_with_one_leaf(sampled):
    tok, _, _ = sampled
    assert max(gaps(scripted_trees(), tok, Config(**ONE_PASS))) < 1e-10


def test_lora_with_kl_against_the_adapter_off_reference(sampled):
    tok, bel, _ = sampled
    cfg = Config(kl_coef=0.1, lora_rank=4, **ONE_PASS)
    assert max(gaps(bel[:2], tok, cfg, lora=True)) < 1e-10


@pytest.mark.parametrize("split", [{"micro_batch_size": 3}, {"micro_batch_tokens": 120}])
def test_micro_batches_that_split_a_tree(sampled, split):
    tok, bel, _ = sampled
    cfg = Config(**{**ONE_PASS, "minibatch_prompts": 2, **split})
    batch, _ = training_batch(bel, cfg, tok.pad_token_id)
    torch.manual_seed(0)
    parts = micro_batches(minibatches(batch["prompt"], cfg)[0], batch, cfg)
    prompts = [set(batch["prompt"][p].tolist()) for p in parts]
    # some micro-batch holds only part of a tree's rows
    assert any(len(a & b) for a, b in zip(prompts, prompts[1:]))
    assert max(gaps(bel, tok, cfg)) < 1e-10


def test_the_comparison_fails_when_the_mask_leaks_one_token(sampled, monkeypatch):
    tok, bel, _ = sampled
    real = packed_module.ancestor_mask

    def leaky(subtree_end):
        allowed = real(subtree_end).clone()  # [P, 1, L, L]
        # the first position that is not its predecessor's descendant sees the predecessor
        q = int((subtree_end[0, :-1] <= torch.arange(1, subtree_end.shape[1])).nonzero()[0])
        allowed[0, 0, q + 1, q] = True
        return allowed

    monkeypatch.setattr(packed_module, "ancestor_mask", leaky)
    assert max(gaps(bel[:2], tok, Config(**ONE_PASS))) > 1e-6


def padded(rows: list[list[int]]) -> torch.Tensor:
    width = max(len(r) for r in rows)
    return torch.tensor([r + [0] * (width - len(r)) for r in rows])  # [B, T]


def test_packed_rows_hold_every_leaf_at_its_depth_and_each_token_sees_its_ancestors_only():
    rng = random.Random(3)
    prompt = [rng.randrange(3, 50) for _ in range(6)]
    rows = [prompt + [rng.randrange(3, 50) for _ in range(rng.randint(1, 9))] for _ in range(7)]
    rows.append(rows[2][:8] + [77, 78])  # a branch below a shared turn
    packed = pack_rows(padded(rows), [len(r) for r in rows], budget=40)
    for b, row in enumerate(rows):
        at = packed.index[b, : len(row)]
        p = packed.row[b]
        assert packed.input_ids[p, at].tolist() == row
        assert packed.position_ids[p, at].tolist() == list(range(len(row)))
    allowed = packed_module.ancestor_mask(packed.subtree_end)[:, 0]  # [P, L, L]
    for b, row in enumerate(rows):
        at = packed.index[b, : len(row)].tolist()
        p = packed.row[b]
        for depth, q in enumerate(at):
            seen = set(allowed[p, q].nonzero().flatten().tolist())
            # exactly its own path up to itself
            assert seen == set(at[: depth + 1]), (b, depth)


def test_a_tree_larger_than_the_budget_is_split_below_its_shared_prefix():
    prompt = list(range(3, 8))  # 5 tokens
    rows = [prompt + [10 * k + i for i in range(10)] for k in (1, 2, 3)]  # three branches of 10
    rows.append([90 + i for i in range(30)])  # one leaf longer than the budget
    packed = pack_rows(padded(rows), [len(r) for r in rows], budget=25)
    # the prompt and two branches fill the first row; the third repeats only the prompt
    assert sorted(packed.sizes) == [15, 25, 30]
    assert packed.row[0] == packed.row[1] != packed.row[2] != packed.row[3]


def test_where_packing_does_not_apply_it_warns_once_and_computes_the_per_leaf_rows(sampled):
    tok, bel, _ = sampled
    batch, _ = training_batch(bel[:1], Config(), tok.pad_token_id)
    args = (batch["input_ids"], batch["attention_mask"], batch["action_mask"])
    biased = policy(tok, torch.float64, lora=False)
    head = biased.get_output_embeddings()
    head.bias = torch.nn.Parameter(torch.linspace(-1, 1, head.out_features, dtype=torch.float64))
    with pytest.warns(UserWarning, match="packed update off: its output head has a bias"):
        forward = PackedLogProbs(biased)
    # the memory-saving head cannot take a bias: the textbook pass, bias included
    expected = token_logprobs(biased, *args[:2]) * (args[2] != 0)
    expected[:, 0] = 0
    assert torch.allclose(forward(*args), expected, atol=1e-10)
    flash = policy(tok, torch.float64, lora=False)
    flash.config._attn_implementation = "flash_attention_2"
    with pytest.warns(UserWarning, match=r"its attention \(flash_attention_2\) ignores"):
        forward = PackedLogProbs(flash)
    assert forward.reason and not forward.biased
    # no wanted token: zeros of the log-probs' dtype, from either path
    none = torch.zeros_like(args[2])
    for model in (policy(tok, torch.float64, lora=False), biased):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = PackedLogProbs(model)(*args[:2], none)
        assert got.dtype == torch.float64 and not got.any()
