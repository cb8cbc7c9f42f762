"""A numpy ``torch.utils.data``: torch's DataLoader rules, bit for bit, without torch.

torch's CPU :class:`Generator` (MT19937, seeding, ``randperm``, ``randint``, ``multinomial``, ...),
its samplers, ``default_collate`` / ``default_convert`` producing numpy with torch's dtype rules,
the per-worker seeding rule (:func:`worker_seeds`, :func:`generate_state`), the base seed draw,
``WorkerInfo`` / ``get_worker_info`` and the fetchers. Nothing here imports MindSpore, and torch
only when it is already imported.
"""

from adapters.torch_data._collate import default_collate, default_convert, to_numpy
from adapters.torch_data._datasets import Dataset, IterableDataset
from adapters.torch_data._samplers import (
    BatchSampler,
    DistributedSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    SubsetRandomSampler,
    WeightedRandomSampler,
)
from adapters.torch_data._torch_generator import Generator, default_generator
from adapters.torch_data._worker_info import get_worker_info
from adapters.torch_data._worker_seeding import WorkerInfo, WorkerSeeds, draw_base_seed, generate_state, worker_seeds

__all__ = [
    "BatchSampler",
    "Dataset",
    "DistributedSampler",
    "Generator",
    "IterableDataset",
    "RandomSampler",
    "Sampler",
    "SequentialSampler",
    "SubsetRandomSampler",
    "WeightedRandomSampler",
    "WorkerInfo",
    "WorkerSeeds",
    "default_collate",
    "default_convert",
    "default_generator",
    "draw_base_seed",
    "generate_state",
    "get_worker_info",
    "to_numpy",
    "worker_seeds",
]
