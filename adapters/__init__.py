"""adapters: torch's DataLoader stream, reproduced bit-for-bit as a MindSpore dataset.

The entry point is :func:`to_mindspore`. Two layers:

* :mod:`adapters.torch_data` — a numpy ``torch.utils.data`` (torch's CPU :class:`Generator`, its
  samplers, ``default_collate`` / ``default_convert`` producing numpy, worker seeding,
  ``get_worker_info``), usable without torch;
* :mod:`adapters.engine` — the MindSpore engine that runs a loader's main-process side and its
  workers in processes it owns and hands MindSpore the batches in torch's order.
"""

from porting._environment import check_environment

check_environment()

from adapters.engine import (  # noqa: E402
    Structure,
    StructureMismatchError,
    TorchLoaderDataset,
    WorkerError,
    to_mindspore,
)
from adapters.torch_data import (  # noqa: E402
    BatchSampler,
    Dataset,
    DistributedSampler,
    Generator,
    IterableDataset,
    RandomSampler,
    Sampler,
    SequentialSampler,
    SubsetRandomSampler,
    WeightedRandomSampler,
    WorkerInfo,
    default_collate,
    default_convert,
    default_generator,
    generate_state,
    get_worker_info,
    to_numpy,
)

from porting._seed import register_stream  # noqa: E402
from porting._version import __version__  # noqa: E402  (one version for the toolkit)

# porting.seed_everything seeds the emulated torch generator too (it stands in for torch's own
# when torch is not installed); porting itself never imports adapters.
register_stream("adapters.default_generator", default_generator.manual_seed)

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
    "to_mindspore",
    "to_numpy",
]
