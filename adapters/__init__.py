"""adapters: torch's DataLoader stream, reproduced bit-for-bit as a MindSpore dataset.

The entry point is :func:`to_mindspore`. The rest of the surface mirrors ``torch.utils.data``
without needing torch: a numpy emulation of torch's CPU :class:`Generator`, torch's samplers,
``default_collate`` / ``default_convert`` producing numpy, and ``get_worker_info``.
"""

from porting._environment import check_environment

check_environment()

from adapters._collate import default_collate, default_convert, to_numpy  # noqa: E402
from adapters._columns import Structure, StructureMismatchError  # noqa: E402
from adapters._datasets import Dataset, IterableDataset  # noqa: E402
from adapters._errors import WorkerError  # noqa: E402
from adapters._pipeline import TorchLoaderDataset  # noqa: E402
from adapters._samplers import (  # noqa: E402
    BatchSampler,
    DistributedSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    SubsetRandomSampler,
    WeightedRandomSampler,
)
from adapters._to_mindspore import mindspore_worker_count, to_mindspore  # noqa: E402
from adapters._torch_generator import Generator, default_generator  # noqa: E402
from adapters._worker_info import get_worker_info  # noqa: E402
from adapters._worker_seeding import WorkerInfo, generate_state  # noqa: E402

__all__ = [
    "BatchSampler",
    "Dataset",
    "DistributedSampler",
    "Generator",
    "IterableDataset",
    "RandomSampler",
    "Sampler",
    "SequentialSampler",
    "Structure",
    "StructureMismatchError",
    "SubsetRandomSampler",
    "TorchLoaderDataset",
    "WeightedRandomSampler",
    "WorkerError",
    "WorkerInfo",
    "default_collate",
    "default_convert",
    "default_generator",
    "generate_state",
    "get_worker_info",
    "mindspore_worker_count",
    "to_mindspore",
    "to_numpy",
]
