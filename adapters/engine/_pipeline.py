"""The MindSpore dataset ``to_mindspore`` returns, and the iterators it hands out."""

from __future__ import annotations

import weakref

import mindspore.dataset as msds

from adapters.engine._errors import unwrap_exception
from adapters.engine._interrupt import armed, deliver_pending_interrupt, disarm, tripped

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
    """Wraps a MindSpore iterator: original error types; for the dataset's own iterators, how far the loop got.

    Ctrl-C: MindSpore's ``next()`` waits in C++, where a KeyboardInterrupt is not seen until a row
    comes (never, if a torch worker is stuck). While it waits, the pipeline's source watches for
    SIGINT (:mod:`adapters.engine._interrupt`) and ends the epoch; ``next()`` returns, the caller's
    SIGINT handler raises the KeyboardInterrupt, and the pipeline is closed (its processes killed, a
    stuck worker included): its position in torch's stream is lost, so later use raises saying so.
    """

    def __init__(self, inner, consumer=None, owner: "TorchLoaderDataset | None" = None, engine=None) -> None:
        self._inner = inner
        self._consumer = consumer
        self._owner = owner
        self._engine = engine
        self._epoch_started = False
        self._epoch = 0  # this iterator's epoch and row, for the interrupt's message
        self._row = 0

    def __iter__(self):
        return self

    def __next__(self):
        try:
            return self._next()
        except KeyboardInterrupt as kbi:
            self._interrupted(kbi)
            raise

    def _next_inner(self):
        if self._consumer is not None and self._consumer.row_ready():
            return next(self._inner)  # a row is waiting in MindSpore: nothing to watch for
        with armed():
            try:
                return next(self._inner)
            except BaseException as exc:
                # (No reference to the exception outlives this block: its traceback holds MindSpore's
                # iterator, which must not wait for the cyclic collector — a process forked meanwhile,
                # a torch worker, would finalise it.)
                if isinstance(exc, KeyboardInterrupt) or not tripped():
                    raise
        # The source ended the epoch for a SIGINT: its KeyboardInterrupt, not MindSpore's error about
        # an epoch that ended early.
        deliver_pending_interrupt()

    def _interrupted(self, kbi: KeyboardInterrupt) -> None:
        disarm(drain=True)  # in case the interrupt landed before the wake-up fd was put back
        kbi.__suppress_context__ = True  # not "during handling of" MindSpore's error for the ended epoch
        where = f"row {self._row} of epoch {self._epoch} of this iterator"
        engine = self._engine
        if engine is None:
            return
        engine.interrupt(where)
        stop = getattr(self._inner, "stop", None)
        if stop is not None:  # MindSpore starts no further epoch of the stopped pipeline
            try:
                stop()
            except Exception:
                pass
        engine.close()
        kbi.add_note(
            f"to_mindspore: interrupted while waiting for {engine.interrupted}; this dataset's pipeline is "
            "stopped and its processes are gone (a worker stuck in user code too). Build a new dataset with "
            "to_mindspore(...) to start again."
        )

    def _next(self):
        if self._engine is not None:
            self._engine.check_usable()
        if self._consumer is not None and not self._epoch_started:
            self._epoch_started = True
            self._consumer.arrives()
        try:
            row = self._next_inner()
        except StopIteration:
            self._epoch += 1
            self._row = 0
            if self._consumer is not None:
                self._epoch_started = False
                self._consumer.saw_end()
                self._owner.epochs_completed += 1
            raise
        except RuntimeError as err:
            original = unwrap_exception(err)
            if original is None:
                if self._engine is not None and self._engine.closed:
                    # MindSpore's complaint about the epoch close() ended (read, so that it is not
                    # reported later by another pipeline): say what happened instead.
                    raise RuntimeError("to_mindspore: this dataset was closed (close()); build a new one "
                                       "with to_mindspore(...)") from None
                raise
            raise original from None
        self._row += 1
        if self._consumer is not None:
            self._consumer.took_row()
        return row

    def stop(self) -> None:
        """Stop this iterator (MindSpore's ``stop``); the engine then knows where the loop stopped."""
        if self._consumer is not None:
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


# MindSpore operations whose result is a dataset built on this one: their iterators must give
# errors from the torch side back with their own type too.
_CHAINED_OPS = (
    "map", "batch", "padded_batch", "bucket_batch_by_length", "shuffle", "repeat", "project", "rename", "take",
    "skip", "filter", "zip", "concat", "split", "sync_wait", "apply",
)
_CHAINED_CLASSES: dict[type, type] = {}


def _chained(result, engine):
    """Give a dataset derived from a TorchLoaderDataset iterators that re-raise original errors."""
    if isinstance(result, (list, tuple)):  # split()
        return type(result)(_chained(r, engine) for r in result)
    if not hasattr(result, "create_tuple_iterator") or isinstance(result, TorchLoaderDataset):
        return result
    base = type(result)
    cls = _CHAINED_CLASSES.get(base)
    if cls is None:
        cls = type(base.__name__, (_ChainedMixin, base), {"__module__": base.__module__})
        _CHAINED_CLASSES[base] = cls
    result.__class__ = cls
    # A weak reference: MindSpore deep-copies dataset trees, and copy treats weakrefs as atoms.
    result._torch2ms_engine = weakref.ref(engine)
    return result


class _ChainedMixin:
    def _detach(self):
        engine = self._torch2ms_engine()
        if engine is not None:
            engine.detach_consumers()

    def _engine_now(self):
        engine = self._torch2ms_engine()
        if engine is not None:
            engine.check_usable()
        return engine

    def create_tuple_iterator(self, *args, **kwargs):
        engine = self._engine_now()
        self._detach()
        return _Iterator(super().create_tuple_iterator(*args, **kwargs), engine=engine)

    def create_dict_iterator(self, *args, **kwargs):
        engine = self._engine_now()
        self._detach()
        return _Iterator(super().create_dict_iterator(*args, **kwargs), engine=engine)

    # MindSpore answers these by running the pipeline for one row: it gets epoch 0's first batch
    # again, and no epoch of the torch loader is started or consumed.
    def output_shapes(self, *args, **kwargs):
        with self._torch2ms_engine().peeking():
            return super().output_shapes(*args, **kwargs)

    def output_types(self, *args, **kwargs):
        with self._torch2ms_engine().peeking():
            return super().output_types(*args, **kwargs)


def _chaining(name):
    def op(self, *args, **kwargs):
        return _chained(getattr(super(_ChainedMixin, self), name)(*args, **kwargs), self._torch2ms_engine())

    op.__name__ = name
    return op


for _name in _CHAINED_OPS:
    setattr(_ChainedMixin, _name, _chaining(_name))


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
        self._engine.check_usable()
        consumer = self._engine.new_consumer()
        return _Iterator(make(*args, **kwargs), consumer, self, self._engine)

    def create_tuple_iterator(self, *args, **kwargs):
        return self._wrap(super().create_tuple_iterator, args, kwargs)

    def create_dict_iterator(self, *args, **kwargs):
        return self._wrap(super().create_dict_iterator, args, kwargs)

    def _chain(self, name, *args, **kwargs):
        return _chained(getattr(super(), name)(*args, **kwargs), self._engine)

    def iter_batches(self, num_epochs: int = 1, *, output_numpy: bool = False):
        """Torch's nested batches, epoch after epoch: what ``for batch in loader`` gives, per epoch.

        One MindSpore iterator over all ``num_epochs`` epochs, each row rebuilt with
        :attr:`structure` (dicts as dicts, tuples as tuples, per-sample lists as lists, numbers as
        numbers). Breaking out early is a partial epoch, continued as torch's next
        ``iter(loader)`` would.

        Args:
            num_epochs: epochs to walk (the next ``num_epochs`` epochs of the torch loader).
            output_numpy: numpy arrays as leaves instead of MindSpore Tensors.

        Returns:
            A generator of batches.

        Raises:
            ValueError: ``num_epochs`` is not an int >= 1.

        Example:
            >>> import numpy as np, adapters
            >>> ds = adapters.to_mindspore([{"x": np.float32(i)} for i in range(4)], batch_size=2)
            >>> [b["x"].tolist() for b in ds.iter_batches(2, output_numpy=True)]
            [[0.0, 1.0], [2.0, 3.0], [0.0, 1.0], [2.0, 3.0]]
        """
        if isinstance(num_epochs, bool) or not isinstance(num_epochs, int) or num_epochs < 1:
            raise ValueError(f"iter_batches: num_epochs must be an int >= 1, got {num_epochs!r}")
        return self._batches(num_epochs, output_numpy)

    def _batches(self, num_epochs: int, output_numpy: bool):
        it = self.create_tuple_iterator(num_epochs=num_epochs, output_numpy=output_numpy)
        for _ in range(num_epochs):
            for row in it:
                yield self.structure.rebuild(row)

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


def _ts_op(name):
    def op(self, *args, **kwargs):
        return self._chain(name, *args, **kwargs)

    op.__name__ = name
    # Not MindSpore's docstring: its examples are not ours to run (and doctest would collect them).
    op.__doc__ = (f"MindSpore's ``Dataset.{name}``; errors from the torch loader keep their type through it, "
                  "and ``output_shapes``/``output_types`` start no epoch.")
    return op


for _name in _CHAINED_OPS:
    setattr(TorchLoaderDataset, _name, _ts_op(_name))
