"""Seed the global random streams a dataset may draw from, as torch seeds a worker's.

The streams are the toolkit's one list (``torch2ms_base.streams``): python ``random``, numpy's
global ``RandomState``, torch's default CPU generator (only when torch is imported) and
:data:`adapters.default_generator` (the numpy emulation of torch's generator that stands in for it
when torch is not installed; registered by ``adapters``).
"""

from __future__ import annotations

from adapters.torch_data._worker_seeding import worker_seeds
from torch2ms_base._streams import streams

__all__ = ["seed_streams_like_torch_worker"]


def seed_streams_like_torch_worker(base_seed: int, worker_id: int) -> int:
    """Seed the global streams exactly as torch's ``_worker_loop`` does for worker ``worker_id``.

    torch: ``seed = base_seed + worker_id``; ``random.seed(seed)``; ``torch.manual_seed(seed)``;
    ``np.random.seed(_generate_state(base_seed, worker_id))``. Every stream of the list that torch
    reseeds in a worker and that is live here gets its seed (torch is never imported for it); the
    emulated generator gets torch's.

    Returns:
        The worker seed (what ``get_worker_info().seed`` reports).
    """
    seeds = worker_seeds(base_seed, worker_id)
    for stream in streams():
        if stream.worker_seed is not None and stream.live():
            stream.seed(getattr(seeds, stream.worker_seed))
    return seeds.torch
