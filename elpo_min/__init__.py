"""elpo_min: a small, readable reference implementation of ELPO (arXiv 2602.09598).

The SPEC section 4 interfaces live at the top level::

    from elpo_min import Node, hierarchical_advantages, suffix_count, \
        binary_error_localization, clipped_policy_loss
"""

from .advantages import Node, build_tree, hierarchical_advantages
from .bel import BELResult, binary_error_localization, build_trees, entropy_gap, suffix_count
from .config import Config
from .loss import clip_bounds, clipped_policy_loss
from .rollout import RolloutEngine, Trajectory, TurnFormat
from .sandbox import run_python

__all__ = ["BELResult", "Config", "Node", "RolloutEngine", "Trajectory", "TurnFormat", "binary_error_localization",
           "build_tree", "build_trees", "clip_bounds", "clipped_policy_loss", "entropy_gap",
           "hierarchical_advantages", "run_python", "suffix_count"]
