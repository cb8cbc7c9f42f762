"""Torch-free stand-ins for the dataset base classes ``to_mindspore`` needs to recognise."""

from __future__ import annotations

from collections.abc import Iterator

__all__ = ["Dataset", "IterableDataset", "InfiniteConstantSampler"]


class Dataset:
    """Map-style dataset base (like ``torch.utils.data.Dataset``): implement ``__getitem__`` and ``__len__``."""

    def __getitem__(self, index):
        raise NotImplementedError("Subclasses of Dataset should implement __getitem__.")


class IterableDataset:
    """Iterable-style dataset base (like ``torch.utils.data.IterableDataset``): implement ``__iter__``.

    Under ``to_mindspore(..., num_workers=N)`` every worker iterates its own copy; use
    :func:`adapters.get_worker_info` (or torch's, when torch is installed) to shard.
    """

    def __iter__(self) -> Iterator:
        raise NotImplementedError("Subclasses of IterableDataset should implement __iter__.")


class InfiniteConstantSampler:
    """Yields ``None`` forever: the sampler torch gives an IterableDataset (indices are unused)."""

    def __iter__(self):
        while True:
            yield None
