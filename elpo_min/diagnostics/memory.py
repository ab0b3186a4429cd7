"""A step's peak memory: the GPU's allocated peak, or on CPU the process's resident peak."""

from __future__ import annotations

import resource

import torch


def reset_peak_memory() -> None:
    """Start a new GPU peak (on CPU the resident peak cannot be reset: it is the process's)."""
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def peak_memory_mb() -> float:
    """The GPU's peak allocated memory since :func:`reset_peak_memory`, or on CPU this process's
    peak resident memory, in MiB."""
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
