"""The packed update against the per-leaf update, side by side on the same batches.

Two settings, each with the per-leaf rows (``ChunkedLogProbs``, the trainer's path before
packing) and the packed rows (``PackedLogProbs``) on the same batch, with the same mini- and
micro-batches and the same seed:

1. **the demo's trees**: the shipped tiny policy, the demo's config (8 prompts x N_total 16,
   mini-batches of 4 prompts' trees, rows of up to 768 tokens, one epoch), BEL's trees for
   the demo's first step;
2. **a chat model's proportions**: SmolLM2-135M's widths and vocabulary (hidden 576, 9 heads,
   3 KV heads, 49,152 tokens; random weights) with ``--layers`` of its 30 layers (4 by
   default, to fit a CPU run: both updates scale alike with depth), and one prompt's BEL tree
   (N_total 16, 3-5 tool steps; one mini-batch, rows of up to 2,048 tokens) with the lengths
   of the fenced TIR format on GSM8K-style problems: a prompt of 130-200 tokens (template,
   system prompt, question), assistant turns of 40-120 tokens, tool outputs of 8-20, an
   answer turn of 20-50. The tree comes from the real BEL loop
   (``elpo_min.bel.build_trees``) driven by a scripted policy whose failures have a fatal
   step, so its branching is BEL's own.

For each: tokens forwarded (per-leaf: the rows' tokens; packed: the distinct root-to-token
paths), the update's wall time (the demo's: the median of ``--repeats`` interleaved runs; the
chat model's: one run each; one thread), and its peak memory (each update in a fresh process:
the growth of its peak resident memory during the update). The last two lines are the demo's
``token ratio`` (distinct / per-leaf tokens) and ``time ratio`` (packed / per-leaf time).

    python benchmarks/packed_update.py          # about 4 minutes on 2 CPU cores
"""

import argparse
import dataclasses
import json
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from elpo_min.bel import build_trees
from elpo_min.config import Config
from elpo_min.fast_update import pack_rows
from elpo_min.launch.build import training_forward
from elpo_min.train import BEL_ARGS, minibatches, policy_update, training_batch
from elpo_min.trajectory import Trajectory, Turn

# the two training forwards, by the config value that selects them
FORWARDS = {"per-leaf": "chunked", "packed": "packed"}
# the lengths of a fenced-TIR trajectory on a GSM8K-style problem, in tokens (low, high)
CHAT_LENGTHS = {"prompt": (130, 200), "turn": (40, 120), "output": (8, 20), "answer": (20, 50)}


class ScriptedTrajectory(Trajectory):
    """A trajectory whose prefixes remember it, so the scripted policy knows a probe's parent."""

    def prefix(self, m: int) -> Trajectory:
        out = super().prefix(m)
        self.policy.parents[id(out)] = (self, m)
        return out


class ScriptedPolicy:
    """Trajectories of random tokens with the lengths of ``lengths`` and BEL's success model:
    a full trajectory of 3-5 tool steps fails with probability ``p_fail``, at a fatal step; a
    continuation from prefix(m) fails if m is at or past its parent's fatal step, else succeeds
    with probability 0.6. It offers what ``build_trees`` drives: ``start`` and ``rollout``.
    """

    def __init__(self, vocab: int, lengths: dict, seed: int = 0, p_fail: float = 0.6):
        self.vocab, self.lengths, self.p_fail = vocab, lengths, p_fail
        self.rng = random.Random(seed)
        self.prompts = {}
        # id(prefix) -> (parent, m)
        self.parents = {}

    def tokens(self, kind: str) -> list[int]:
        n = self.rng.randint(*self.lengths[kind])
        return [self.rng.randrange(3, self.vocab) for _ in range(n)]

    def start(self, problem) -> Trajectory:
        ids = self.prompts.setdefault(problem, self.tokens("prompt"))
        n = len(ids)
        traj = ScriptedTrajectory(problem, list(ids), [0] * n, [0.0] * n, [0.0] * n, n)
        traj.policy = self
        return traj

    def finish(self, traj: Trajectory, steps: int) -> Trajectory:
        """Tool steps until ``steps``, then the answer turn."""
        while traj.num_steps < steps:
            action, output = self.tokens("turn"), self.tokens("output")
            start = len(traj.token_ids)
            self.append(traj, action, output)
            end = start + len(action)
            traj.turns.append(Turn(start, end, end + len(output), code="x", output="y"))
        answer = self.tokens("answer")
        start = len(traj.token_ids)
        self.append(traj, answer, [])
        traj.turns.append(Turn(start, start + len(answer), start + len(answer), answer="a"))
        traj.done = True
        return traj

    def append(self, traj, action, output) -> None:
        traj.token_ids += action + output
        traj.action_mask += [1] * len(action) + [0] * len(output)
        traj.logprobs += [-1.0] * len(action) + [0.0] * len(output)
        traj.entropies += [self.rng.random() for _ in action] + [0.0] * len(output)

    def sample(self, seed: Trajectory) -> Trajectory:
        if seed.turns:
            # a probe: its parent's fatal step decides
            parent, m = self.parents[id(seed)]
            traj = self.finish(seed, parent.num_steps)
            lost = parent.fatal is not None and parent.fatal <= m
            traj.fatal = parent.fatal if lost or self.rng.random() >= 0.6 else None
        else:
            traj = self.finish(self.start(seed.problem), self.rng.randint(3, 5))
            failed = self.rng.random() < self.p_fail
            traj.fatal = self.rng.randint(1, traj.num_steps) if failed else None
        traj.reward = float(traj.fatal is None)
        traj.success = traj.fatal is None
        return traj

    def rollout(self, seeds, counts):
        # each probe starts from its own copy of the prefix
        copies = [[seed.prefix(seed.num_steps) for _ in range(n)] for seed, n in zip(seeds, counts)]
        for seed, group in zip(seeds, copies):
            for traj in group:
                self.parents[id(traj)] = self.parents.get(id(seed), (None, 0))
        return [[self.sample(traj) for traj in group] for group in copies]


def bel_shaped_trees(vocab: int, prompts: int, lengths: dict = CHAT_LENGTHS, seed: int = 0):
    """BEL's trees (Algorithm 1, the defaults' N_total 16) for ``prompts`` problems of a
    scripted policy."""
    cfg = Config()
    policy = ScriptedPolicy(vocab, lengths, seed)
    return build_trees(policy, list(range(prompts)), **{k: getattr(cfg, k) for k in BEL_ARGS})


def token_counts(batch: dict, cfg: Config) -> dict:
    """Tokens forwarded by each path over one epoch's mini-batches (seed 0)."""
    torch.manual_seed(0)
    per_leaf = packed = 0
    for idx in minibatches(batch["prompt"], cfg):
        lengths = batch["attention_mask"][idx].sum(-1)
        per_leaf += int(lengths.sum())
        packed += sum(pack_rows(batch["input_ids"][idx], lengths.tolist(), cfg.pack_tokens).sizes)
    return {"per-leaf": per_leaf, "packed": packed}


def one_update(model, batch: dict, cfg: Config, forward: str) -> float:
    """Seconds of one ``policy_update`` through ``forward`` on a copy of ``model``."""
    import copy

    model = copy.deepcopy(model)
    params = [p for p in model.parameters() if p.requires_grad]
    torch.manual_seed(0)
    start = time.perf_counter()
    # the forward the trainer builds from the setting's config (its chunk and row budget)
    step_forward = training_forward(dataclasses.replace(cfg, logprobs=FORWARDS[forward]))(model)
    policy_update(step_forward, torch.optim.AdamW(params), batch, cfg)
    return time.perf_counter() - start


def peak_memory_mb(setting: str, forward: str, saved: Path, layers: int, rows: int) -> float:
    """The update's peak resident memory above what the process held before it, measured in a
    fresh process: the kernel's peak (VmHWM) is reset to the current size (``clear_refs``)
    right before the update, so the setup's own peak does not count."""
    code = (
        "import sys, torch; sys.path.insert(0, 'benchmarks');"
        "import packed_update as p; torch.set_num_threads(1);"
        f"model, batch, cfg = p.setting({setting!r}, {str(saved)!r}, {layers}, {rows});"
        "status = lambda: open('/proc/self/status').read().split('\\n');"
        "rss = lambda key: int(next(x for x in status() if x.startswith(key)).split()[1]);"
        "open('/proc/self/clear_refs', 'w').write('5');"
        "before = rss('VmRSS');"
        f"p.one_update(model, batch, cfg, {forward!r});"
        "print((rss('VmHWM') - before) / 1024)"
    )
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=True
    )
    return float(done.stdout.split()[-1])


def setting(name: str, saved: str, layers: int = 4, rows: int = 0):
    """``(model, batch, cfg)`` of a setting; its batch is built once and saved to ``saved``.
    ``rows``: the demo's longest packed row, in tokens (0: the config's)."""
    from elpo_min.models import load_policy

    # the demo's config; the chat model's mini-batches are one prompt's tree, as the recipes'
    cfg = Config() if name == "demo" else Config(minibatch_prompts=1, pack_tokens=2048)
    if name == "demo" and rows:
        cfg = dataclasses.replace(cfg, pack_tokens=rows)
    if name == "demo":
        model, tok = load_policy()
    else:
        from transformers import LlamaConfig, LlamaForCausalLM

        torch.manual_seed(0)
        shape = LlamaConfig(
            vocab_size=49_152,
            hidden_size=576,
            intermediate_size=1536,
            num_hidden_layers=layers,
            num_attention_heads=9,
            num_key_value_heads=3,
            tie_word_embeddings=True,
            max_position_embeddings=8192,
        )
        model = LlamaForCausalLM(shape)
    if not Path(saved).exists():
        if name == "demo":
            from elpo_min.fast_decoder import FastDecoder
            from elpo_min.rollout import RolloutEngine
            from elpo_min.runtime import Runtime
            from elpo_min.tasks import load_task
            from elpo_min.tools import run_arith
            from elpo_min.train import step_prompts

            task = load_task("toy")
            engine = RolloutEngine(model.eval(), tok, tool=run_arith, decoder=FastDecoder)
            torch.manual_seed(cfg.seed)
            problems = step_prompts(task.train, 0, cfg, Runtime())
            trees = build_trees(engine, problems, **{k: getattr(cfg, k) for k in BEL_ARGS})
            pad = tok.pad_token_id
        else:
            trees = bel_shaped_trees(49_152, prompts=1)
            pad = 0
        batch, _ = training_batch(trees, cfg, pad)
        torch.save(batch, saved)
    return model, torch.load(saved), cfg


def measure(name: str, saved: Path, layers: int, repeats: int, rows: int) -> dict:
    model, batch, cfg = setting(name, str(saved), layers, rows)
    seconds = {forward: [] for forward in FORWARDS}
    # the chat model's update takes a minute: once each
    for _ in range(repeats if name == "demo" else 1):
        # interleaved, so that other work on the machine slows both alike
        for forward in FORWARDS:
            seconds[forward].append(one_update(model, batch, cfg, forward))
    row = {
        "setting": name,
        "sequences": len(batch["input_ids"]),
        "tokens": token_counts(batch, cfg),
        "update_s": {f: statistics.median(s) for f, s in seconds.items()},
        "pack_tokens": cfg.pack_tokens,
        "peak_mb": {f: peak_memory_mb(name, f, saved, layers, rows) for f in FORWARDS},
    }
    print(row, flush=True)
    return row


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--layers", type=int, default=4, help="of the 135M shape's 30")
    ap.add_argument("--settings", default="demo,chat")
    ap.add_argument("--demo-rows", type=int, default=0, help="the demo's row budget (0: 768)")
    ap.add_argument("--out", default="benchmarks/results/packed_update_cpu.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.settings.split(","):
            saved = Path(tmp) / f"{name}.pt"
            rows.append(measure(name, saved, args.layers, args.repeats, args.demo_rows))
    result = {
        "machine": platform.processor() or platform.machine(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__,
        "command": "python benchmarks/packed_update.py " + " ".join(sys.argv[1:]),
        "rows": rows,
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    header = ["setting", "sequences", "tokens: per-leaf", "distinct", "update: per-leaf"]
    header += ["packed", "peak MB: per-leaf", "packed"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        t, s, m = r["tokens"], r["update_s"], r["peak_mb"]
        cells = [r["setting"], r["sequences"], f"{t['per-leaf']:,}", f"{t['packed']:,}"]
        cells += [f"{s['per-leaf']:.2f} s", f"{s['packed']:.2f} s"]
        cells += [f"{m['per-leaf']:.0f}", f"{m['packed']:.0f}"]
        print("| " + " | ".join(str(c) for c in cells) + " |")
    demo = next((r for r in rows if r["setting"] == "demo"), None)
    if demo:
        print(f"token ratio {demo['tokens']['packed'] / demo['tokens']['per-leaf']:.2f}")
        print(f"time ratio {demo['update_s']['packed'] / demo['update_s']['per-leaf']:.2f}")


if __name__ == "__main__":
    main()
