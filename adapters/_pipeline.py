"""The MindSpore dataset ``to_mindspore`` returns, and the iterators it hands out."""

from __future__ import annotations

import contextlib

import mindspore.dataset as msds

from adapters._errors import unwrap_exception

__all__ = ["TorchLoaderDataset"]


class _Iterator:
    """Wraps a MindSpore iterator: re-raises worker errors with their original type; counts epochs."""

    def __init__(self, inner, owner: "TorchLoaderDataset"):
        self._inner = inner
        self._owner = owner

    def __iter__(self):
        return self

    def __next__(self):
        watch = getattr(self._owner._batch_source, "death_watch", None)
        try:
            with contextlib.nullcontext() if watch is None else watch.armed(self._terminate):
                return next(self._inner)
        except StopIteration:
            self._owner.epochs_completed += 1
            raise
        except RuntimeError as err:
            original = unwrap_exception(err)
            if original is None:
                raise
            raise original from None

    def _terminate(self):
        # Called from the watchdog thread: ask MindSpore's result-collecting thread to stop waiting
        # for the dead worker (an Event, safe across threads), which unblocks the main thread.
        stack = [getattr(self._inner, "dataset", None)]
        while stack:
            node = stack.pop()
            if node is None:
                continue
            sample_fn = getattr(node, "sample_fn", None)
            if sample_fn is not None and getattr(sample_fn, "eof", None) is not None:
                sample_fn.eof.set()
            stack.extend(getattr(node, "children", []) or [])

    def __getattr__(self, name):
        return getattr(self._inner, name)


class TorchLoaderDataset(msds.GeneratorDataset):
    """A GeneratorDataset whose rows are the batches a torch DataLoader would produce.

    Made by :func:`adapters.to_mindspore`. Use it as any MindSpore dataset; each epoch is the next
    epoch of the torch loader (a new iterator continues after the epochs already completed).

    Attributes:
        structure: how to rebuild a row into the nested batch torch would have returned
            (``structure.rebuild(row)``).
        epochs_completed: epochs fully consumed through iterators of this dataset.
    """

    def __init__(self, source, column_names, structure, *, num_parallel_workers: int, python_multiprocessing: bool):
        super().__init__(
            source,
            column_names=column_names,
            shuffle=False,  # random-access sources are shuffled by default in MindSpore
            num_parallel_workers=num_parallel_workers,
            python_multiprocessing=python_multiprocessing,
        )
        self._batch_source = source
        self.structure = structure
        self.epochs_completed = 0

    def _fresh(self):
        # Workers fork when the iterator is created: tell the source where to start before that.
        self._batch_source.reset(self.epochs_completed)

    def create_tuple_iterator(self, *args, **kwargs):
        self._fresh()
        return _Iterator(super().create_tuple_iterator(*args, **kwargs), self)

    def create_dict_iterator(self, *args, **kwargs):
        self._fresh()
        return _Iterator(super().create_dict_iterator(*args, **kwargs), self)
