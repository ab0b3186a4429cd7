"""The "BEL with random anchors" ablation: ``python -m elpo_min`` with random BEL anchors.

BEL probes the midpoint of the interval [L, R] that still holds the first irrecoverable
step. This arm keeps everything else (the same failed trajectory tau*, the same update
rule L = m + 1 / R = m, the same X_m continuations and budget) but draws each anchor m
uniformly from [L, R - 1], seeded by ``--seed``: localization guided by chance rather
than bisection. Anything ELPO gains from *where* it branches should shrink here.

    python benchmarks/random_anchors.py train --algo elpo --seed 0 --out_dir runs/random_anchors
"""

import functools
import random
import sys

from elpo_min import bel
from elpo_min.__main__ import main

if __name__ == "__main__":
    rng = random.Random(int(sys.argv[sys.argv.index("--seed") + 1]) if "--seed" in sys.argv else 0)
    # prompt_program looks search_steps up at call time
    bel.search_steps = functools.partial(
        bel.search_steps, anchor=lambda lo, hi: rng.randint(lo, hi - 1)
    )
    main(sys.argv[1:])
