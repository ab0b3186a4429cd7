"""The fast decoder: the engine room behind :class:`~elpo_min.rollout.RolloutEngine` on long runs.

It keeps a fixed-shape KV cache (``kv_slots``) across the tool calls of a rollout, prefills each
shared prefix once and branches it, folds grouped query heads for single-token attention
(``attention``), and on a GPU replays each decode step as one CUDA graph (``decoder``).

It sits outside the core because none of it is ELPO: it is how to sample the same tokens with
less work. The core's :class:`~elpo_min.rollout.PlainDecoder` is its reference, and a test holds
the two to the same log-probs and entropies.
"""

from .decoder import FastDecoder
from .kv_slots import KVSlots
