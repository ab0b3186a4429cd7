"""Measurements around training: evaluation, BEL's localization, where credit goes, figures.

* ``metrics``: pass@k, maj@k, tool calls, failures by cause (:func:`evaluate`).
* ``bel_report``: BEL's t_crit against Monte-Carlo and oracle references, sibling ranking.
* ``credit``: the toy's step labels (sound / fatal / after) and what an advantage rule does
  with them; :func:`toy_step_metrics` is the hook the trainer calls on the toy.
* ``plots``: learning curves from ``metrics.jsonl``; ``render``: a trajectory as text.
* ``stats``: a mean over seeds with its 95% t-interval (:func:`mean_ci`).

It sits outside the core because none of it changes what is trained: the trainer only calls an
optional ``step_metrics`` hook, and the launcher installs this one for the toy.
"""

from .bel_report import bel_report, mc_first_dead_step, pair_counts, ranking_quality
from .credit import credit_metrics, oracle_hits, toy_step_metrics, turn_labels
from .metrics import evaluate, maj_at_k, pass_at_k
from .plots import plot_learning_curve, read_log
from .render import render_trajectory
from .stats import mean_ci
