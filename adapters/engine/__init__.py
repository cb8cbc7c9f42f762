"""The MindSpore engine: a torch DataLoader's stream, replayed in processes the pipeline owns.

:func:`to_mindspore` is the user's entry point. Packages that build their own MindSpore dataset on
the engine (``yolov5_ms``) use :func:`build_engine` (start the processes for a resolved
:class:`LoaderSpec`, get epoch 0's first batch) and :class:`TorchLoaderDataset`; :class:`Schedule`
is torch's dispatch rule (which worker, which seed, which indices) in one place. :func:`sample_dataset` and
:func:`batch` are the MindSpore-native shape: sample rows, then MindSpore's batch op with torch's collate.
"""

from adapters.engine._columns import Structure, StructureMismatchError
from adapters.engine._errors import WorkerError
from adapters.engine._pipeline import TorchLoaderDataset
from adapters.engine._samples import batch, sample_dataset
from adapters.engine._schedule import Schedule
from adapters.engine._spec import LoaderSpec, spec_from_dataset, spec_from_loader
from adapters.engine._to_mindspore import build_engine, reachable_samplers, to_mindspore

__all__ = [
    "LoaderSpec",
    "Schedule",
    "Structure",
    "StructureMismatchError",
    "TorchLoaderDataset",
    "WorkerError",
    "batch",
    "build_engine",
    "reachable_samplers",
    "sample_dataset",
    "spec_from_dataset",
    "spec_from_loader",
    "to_mindspore",
]
