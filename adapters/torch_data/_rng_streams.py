"""Seed the global random streams a dataset may draw from, as torch seeds a worker's.

The streams are: python ``random``, numpy's global ``RandomState``, torch's default CPU
generator (only when torch is imported) and :data:`adapters.default_generator` (the numpy
emulation of torch's generator that stands in for it when torch is not installed).
"""

from __future__ import annotations

import random
import sys

import numpy as np

from adapters.torch_data import _torch_generator
from adapters.torch_data._worker_seeding import worker_seeds

__all__ = ["seed_streams_like_torch_worker"]


def _torch():
    # Only a torch that is already imported can be drawn from: never import it here.
    return sys.modules.get("torch")


def seed_streams_like_torch_worker(base_seed: int, worker_id: int) -> int:
    """Seed the global streams exactly as torch's ``_worker_loop`` does for worker ``worker_id``.

    torch: ``seed = base_seed + worker_id``; ``random.seed(seed)``; ``torch.manual_seed(seed)``;
    ``np.random.seed(_generate_state(base_seed, worker_id))``. The emulated generator gets
    ``seed`` too, so torch-free datasets that draw from it behave as under torch.

    Returns:
        The worker seed (what ``get_worker_info().seed`` reports).
    """
    seeds = worker_seeds(base_seed, worker_id)
    random.seed(seeds.python)
    torch = _torch()
    if torch is not None:
        torch.manual_seed(seeds.torch)
    _torch_generator.default_generator.manual_seed(seeds.torch)
    np.random.seed(seeds.numpy)
    return seeds.torch
