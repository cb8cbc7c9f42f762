"""Capture, restore and seed the global random streams a dataset may draw from.

The streams are: python ``random``, numpy's global ``RandomState``, torch's default CPU
generator (only when torch is imported) and :data:`adapters.default_generator` (the numpy
emulation of torch's generator that stands in for it when torch is not installed).
"""

from __future__ import annotations

import dataclasses
import random
import sys
from typing import Any

import numpy as np

from adapters.torch_data import _torch_generator
from adapters.torch_data._worker_seeding import worker_seeds

__all__ = ["StreamState", "capture_streams", "restore_streams", "seed_streams_like_torch_worker"]


def _torch():
    # Only a torch that is already imported can be drawn from: never import it here.
    return sys.modules.get("torch")


@dataclasses.dataclass
class StreamState:
    """A snapshot of every global stream (``None`` where a stream is absent)."""

    python: Any
    numpy: Any
    torch: Any
    emulated: Any


def capture_streams() -> StreamState:
    """Snapshot python ``random``, numpy, torch (if imported) and the emulated torch generator."""
    torch = _torch()
    return StreamState(
        python=random.getstate(),
        numpy=np.random.get_state(),
        torch=None if torch is None else torch.get_rng_state(),
        emulated=_torch_generator.default_generator.get_state(),
    )


def restore_streams(state: StreamState) -> None:
    """Put every stream back to ``state`` (streams absent from the snapshot are left alone)."""
    random.setstate(state.python)
    np.random.set_state(state.numpy)
    torch = _torch()
    if torch is not None and state.torch is not None:
        torch.set_rng_state(state.torch)
    _torch_generator.default_generator.set_state(state.emulated)


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
