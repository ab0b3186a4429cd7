"""The shipped policy's held-out pass@1 on the first problems of the test split, eight samples
each: the yardstick notebook 05 sets its one-sample start figures against.

Notebook 05 starts its short runs from one sample on each of the first 50 problems and reads
its checkpoints on four samples of the first 20. One draw of a 50% policy swings by several
points; eight samples per problem, under two seeds, show where the policy really stands on
those same problems.

    python benchmarks/start_figures.py          # about 35 seconds on 2 CPU cores
"""

import torch

from elpo_min.diagnostics import evaluate
from elpo_min.fast_decoder import FastDecoder
from elpo_min.models import load_policy
from elpo_min.rollout import RolloutEngine
from elpo_min.tasks import data_dir, load_problems
from elpo_min.tools import run_arith


def main():
    model, tok = load_policy()
    # the fast decoder draws the plain one's samples (tests/test_fast_decoder.py), sooner
    engine = RolloutEngine(model.eval(), tok, tool=run_arith, decoder=FastDecoder)
    test = load_problems(data_dir() / "toy_test.jsonl")
    print("| problems | samples each | seed | pass@1 |")
    print("|---|---|---|---|")
    for n in (50, 20):
        for seed in (0, 1):
            torch.manual_seed(seed)
            result = evaluate(engine, test[:n], k=8, progress=False)
            print(f"| first {n} | 8 | {seed} | {100 * result['pass@1']:.1f}% |")


if __name__ == "__main__":
    main()
