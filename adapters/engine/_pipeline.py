"""The MindSpore dataset ``to_mindspore`` returns, and the iterators it hands out."""

from __future__ import annotations

import mindspore.dataset as msds

from adapters.engine._errors import unwrap_exception

__all__ = ["TorchLoaderDataset"]


class _Source:
    """What ``GeneratorDataset`` iterates: each ``iter()`` is the next epoch of the torch loader."""

    def __init__(self, engine) -> None:
        self._engine = engine

    def __iter__(self):
        return self._engine.rows()


class _SizedSource(_Source):
    """A source whose epochs all have the same number of batches (MindSpore reads it as the dataset size)."""

    def __init__(self, engine, length: int) -> None:
        super().__init__(engine)
        self._length = length

    def __len__(self) -> int:
        return self._length


class _Iterator:
    """Wraps a MindSpore iterator: tells the engine how far the loop got; original error types."""

    def __init__(self, inner, consumer, owner: "TorchLoaderDataset") -> None:
        self._inner = inner
        self._consumer = consumer
        self._owner = owner

    def __iter__(self):
        return self

    def __next__(self):
        try:
            row = next(self._inner)
        except StopIteration:
            self._consumer.saw_end()
            self._owner.epochs_completed += 1
            raise
        except RuntimeError as err:
            original = unwrap_exception(err)
            if original is None:
                raise
            raise original from None
        self._consumer.took_row()
        return row

    def stop(self) -> None:
        """Stop this iterator (MindSpore's ``stop``); the engine then knows where the loop stopped."""
        self._consumer.close()
        stop = getattr(self._inner, "stop", None)
        if stop is not None:
            stop()

    def __del__(self):
        consumer = self.__dict__.get("_consumer")
        if consumer is not None:
            consumer.close()

    def __getattr__(self, name):
        return getattr(self._inner, name)


class TorchLoaderDataset(msds.GeneratorDataset):
    """A GeneratorDataset whose rows are the batches a torch DataLoader would produce.

    Made by :func:`adapters.to_mindspore`. Use it as any MindSpore dataset; each epoch is the next
    epoch of the torch loader (a new iterator continues after the epochs already consumed; an
    iterator left mid-epoch continues exactly as torch's next ``iter(loader)`` would).

    Attributes:
        structure: how to rebuild a row into the nested batch torch would have returned
            (``structure.rebuild(row)``).
        epochs_completed: epochs fully consumed through iterators of this dataset.
    """

    def __init__(self, engine, structure, first_row, length: int | None) -> None:
        self._engine = engine
        super().__init__(
            _Source(engine) if length is None else _SizedSource(engine, length),
            column_names=list(structure.names),
            shuffle=False,
            num_parallel_workers=1,
            python_multiprocessing=False,
        )
        self.structure = structure
        self.epochs_completed = 0
        self._first_row = first_row
        self._length = length

    def _wrap(self, make, args, kwargs):
        consumer = self._engine.new_consumer()
        return _Iterator(make(*args, **kwargs), consumer, self)

    def create_tuple_iterator(self, *args, **kwargs):
        return self._wrap(super().create_tuple_iterator, args, kwargs)

    def create_dict_iterator(self, *args, **kwargs):
        return self._wrap(super().create_dict_iterator, args, kwargs)

    # Answered from the first batch: MindSpore would otherwise run the pipeline (an epoch) to find out.
    def output_shapes(self, estimate=False):
        return [list(a.shape) for a in self._first_row]

    def get_dataset_size(self):
        if self._length is None:
            raise TypeError(
                "this TorchLoaderDataset's epochs have no fixed number of batches (an IterableDataset, or "
                "fixed_length=False), so it has no dataset size; MindSpore would run an epoch to count it"
            )
        return self._length

    def output_types(self):
        return [a.dtype for a in self._first_row]

    def close(self) -> None:
        """Stop the pipeline's processes now (they also stop when the dataset is garbage-collected)."""
        self._engine.close()

    def __deepcopy__(self, memodict):
        # MindSpore copies the tree when it builds a pipeline; the engine (its processes and epoch
        # position) stays one object, as the source does.
        if id(self) in memodict:
            return memodict[id(self)]
        return self.__safe_deepcopy__(
            memodict, exclude=("source", "__transfer_dataset__", "_engine", "structure", "_first_row", "_length")
        )
