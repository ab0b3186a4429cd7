"""The "BEL with random anchors" ablation: ``python -m elpo_min`` with BEL's anchors drawn at random.

BEL probes the midpoint of the interval [L, R] that still holds the first irrecoverable
step. This arm keeps everything else (the same failed trajectory tau*, the same update
rule L = m + 1 / R = m, the same X_m continuations and budget) but draws each anchor m
uniformly from [L, R - 1], seeded by ``--seed``: localization guided by chance rather
than bisection. Anything ELPO gains from *where* it branches should shrink here.

    python benchmarks/random_anchors.py train --algo elpo --seed 0 --out_dir runs/random_anchors
"""

import random
import sys

from elpo_min import bel
from elpo_min.__main__ import main

RNG = random.Random(0)  # reseeded from --seed below


def random_anchor_search(num_steps, budget, n_suffix=2):
    """:func:`elpo_min.bel.search_steps` with each anchor uniform in [L, R - 1]."""
    result, left, right = bel.BELResult(t_crit=1), 1, num_steps
    while left < right and result.spent < budget:
        m = RNG.randint(left, right - 1)
        n = min(n_suffix(m) if callable(n_suffix) else n_suffix, budget - result.spent)
        outcomes = [bool(o) for o in (yield m, n)]
        result.spent += n
        result.probes.append((m, outcomes))
        left, right = (m + 1, right) if any(outcomes) else (left, m)
    result.t_crit = left if num_steps >= 1 else 1
    return result


if __name__ == "__main__":
    RNG.seed(int(sys.argv[sys.argv.index("--seed") + 1]) if "--seed" in sys.argv else 0)
    bel.search_steps = random_anchor_search  # prompt_program looks it up at call time
    main(sys.argv[1:])
