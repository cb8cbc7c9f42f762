"""adapters: torch's DataLoader stream, reproduced bit-for-bit as a MindSpore dataset.

The entry point is :func:`to_mindspore`; :func:`sample_dataset` and :func:`batch` give the MindSpore-native
shape of the same stream (sample rows, MindSpore's batch op with torch's collate). Two layers:

* :mod:`adapters.torch_data` — a numpy ``torch.utils.data`` (torch's CPU :class:`Generator`, its
  samplers, ``default_collate`` / ``default_convert`` producing numpy, worker seeding,
  ``get_worker_info``), usable without torch;
* :mod:`adapters.engine` — the MindSpore engine that runs a loader's main-process side and its
  workers in processes it owns and hands MindSpore the batches in torch's order.
"""

from torch2ms_base import check_environment

check_environment()

from adapters.engine import (  # noqa: E402
    Structure,
    StructureMismatchError,
    TorchLoaderDataset,
    WorkerError,
    batch,
    sample_dataset,
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
from torch2ms_base import RandomStream, register_stream  # noqa: E402
from torch2ms_base import __version__ as __version__  # noqa: E402  (one version for the toolkit)

# The emulated torch generator stands in for torch's own when torch is not installed: it is one
# more global stream (seeded by seed_everything, captured by StreamState, seeded in every emulated
# torch worker as torch's default generator is).
register_stream(
    RandomStream(
        "adapters.default_generator",
        default_generator.manual_seed,
        get_state=default_generator.get_state,
        set_state=default_generator.set_state,
        worker_seed="torch",
    )
)

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
    "batch",
    "default_collate",
    "default_convert",
    "default_generator",
    "generate_state",
    "get_worker_info",
    "sample_dataset",
    "to_mindspore",
    "to_numpy",
]
