"""elpo_min: a small, readable reference implementation of ELPO (arXiv 2602.09598).

The top level of the package is the core, in reading order: ``toy``, ``trajectory``, ``rollout``,
``bel``, ``advantages``, ``logprobs``, ``loss``, ``runtime``, ``train``, ``config``. The machinery
lives in subpackages that import the core, never the reverse; ``launch`` wires them together.
The paper's interfaces are importable from here::

    from elpo_min import Node, hierarchical_advantages, suffix_count, \\
        binary_error_localization, clipped_policy_loss
"""

from .advantages import Node, build_tree, hierarchical_advantages
from .bel import BELResult, binary_error_localization, build_trees, entropy_gap, suffix_count
from .config import Config
from .loss import clip_bounds, clipped_policy_loss
from .rollout import PlainDecoder, RolloutEngine
from .trajectory import Trajectory, TurnFormat
