"""The MindSpore dataset ``to_mindspore`` returns, and the iterators it hands out."""

from __future__ import annotations

import sys
import threading
import weakref
from types import FrameType
from typing import TYPE_CHECKING

import mindspore.dataset as msds

from adapters.engine._interrupt import armed, deliver_pending_interrupt, disarm, tripped

if TYPE_CHECKING:
    # The mixin is only ever a base beside a MindSpore dataset class (see _chained): typed as one, so its super()
    # calls and MindSpore's attributes are known (MindSpore has no type information: Any).
    from mindspore.dataset import Dataset as _MindSporeDataset
else:
    _MindSporeDataset = object

__all__ = ["TorchLoaderDataset"]


class _Source:
    """What ``GeneratorDataset`` iterates: each ``iter()`` is the next epoch of the torch loader.

    MindSpore deep-copies the dataset tree for every iterator it builds; each copy of the source is
    bound to that iterator's consumer (:meth:`Engine.bind`), so the engine knows whose epochs it is
    asked for. The dataset's own source (and copies made for MindSpore's getters) belong to nobody.
    """

    def __init__(self, engine, consumer=None) -> None:
        self._engine = engine
        self._consumer = consumer

    def __iter__(self):
        return self._engine.rows(self._consumer)

    def bound(self, consumer) -> _Source:
        return type(self)(self._engine, consumer)


class _SizedSource(_Source):
    """A source whose epochs all have the same number of batches (MindSpore reads it as the dataset size)."""

    def __init__(self, engine, length: int, consumer=None) -> None:
        super().__init__(engine, consumer)
        self._length = length

    def __len__(self) -> int:
        return self._length

    def bound(self, consumer) -> _SizedSource:
        return type(self)(self._engine, self._length, consumer)


_ROW_PRESERVING = ("MapDataset", "ProjectDataset", "RenameDataset")  # one output row per source row, in order


def _row_unit(dataset) -> str | None:
    """What every row an iterator of ``dataset`` gives is, counted at the TorchLoaderDataset below it.

    ``"batch"``: one torch batch (a row of the TorchLoaderDataset, or of the batch op of ``adapters.batch``,
    which regroups a sample dataset's rows exactly as torch's batches); ``"sample"``: one row of a sample
    dataset (``adapters.sample_dataset``); None: rows that count neither (batch, filter, take, ...).
    """
    node, regrouped = dataset, False
    while not isinstance(node, TorchLoaderDataset):
        children = getattr(node, "children", None) or []
        if len(children) != 1:
            return None
        if getattr(node, "regroups_torch_batches", False) and not regrouped:
            regrouped = True
        elif type(node).__name__ not in _ROW_PRESERVING:
            return None
        node = children[0]
    unit = getattr(node, "row_unit", "batch")
    if regrouped:
        return "batch" if unit == "sample" else None
    return unit


class _Iterator:
    """Wraps a MindSpore iterator: epochs begun by the consumer, rows counted, original error types.

    Ctrl-C: MindSpore's ``next()`` waits in C++, where a KeyboardInterrupt is not seen until a row
    comes (never, if a torch worker is stuck). While it waits, the pipeline's source watches for
    SIGINT (:mod:`adapters.engine._interrupt`) and ends the epoch; ``next()`` returns, the caller's
    SIGINT handler raises the KeyboardInterrupt, and the pipeline is closed (its processes killed, a
    stuck worker included): its position in torch's stream is lost, so later use raises saying so.
    """

    def __init__(self, inner, consumer, engine) -> None:
        self._inner = inner
        self._consumer = consumer
        self._engine = engine
        self._epoch_started = False
        self._epoch = 0  # this iterator's epoch and row, for the interrupt's message
        self._row = 0
        self._busy = threading.Lock()

    def __iter__(self):
        return self

    def __next__(self):
        if not self._busy.acquire(blocking=False):
            raise RuntimeError(
                "to_mindspore: this iterator is already being read by another thread. A TorchLoaderDataset is one "
                "torch DataLoader stream: reading it from two threads at once would give each thread batches that "
                "match no torch epoch. Read it from one thread, or build one dataset per reader with "
                "to_mindspore(...)."
            )
        try:
            return self._next()
        except KeyboardInterrupt as kbi:
            self._interrupted(kbi)
            raise
        finally:
            self._busy.release()

    def _next_inner(self):
        if self._consumer.counts_rows and self._consumer.began():
            # Wait in Python, as torch's loop does: your signal handlers run and Ctrl-C raises while a torch
            # worker is slow or stuck; MindSpore's next() then returns without waiting on the pipeline.
            self._engine.wait_for_row(self._consumer)
            return next(self._inner)
        if self._consumer.row_ready():
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
        engine = self._engine
        engine.interrupt(engine.waiting_for or f"row {self._row} of epoch {self._epoch} of this iterator")
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

    def _check_current(self) -> None:
        self._engine.check_usable()
        if self._engine.closed:  # (rows MindSpore prefetched before close() are not handed out after it)
            raise RuntimeError(
                "to_mindspore: this dataset was closed (close()); build a new one with to_mindspore(...)"
            )
        why = self._consumer.superseded_by
        if why is not None:
            raise RuntimeError(
                f"to_mindspore: this iterator was superseded by {why} of the same dataset. A TorchLoaderDataset is "
                "one torch DataLoader stream and each new iterator is the next iter(loader), so an older iterator "
                "cannot go on (its batches would match no torch epoch). Use the newest iterator, or build one "
                "dataset per consumer with to_mindspore(...)."
            )

    def _next(self):
        self._check_current()
        if not self._epoch_started:
            self._epoch_started = True
            self._consumer.arrives()
        try:
            row = self._next_inner()
        except StopIteration:
            self._check_current()  # superseded while waiting: its epoch was cut short, never a silent end
            self._epoch += 1
            self._row = 0
            self._epoch_started = False
            self._consumer.saw_end()
            raise
        except RuntimeError as err:
            original = self._engine.original_of(err)
            if original is None:
                self._check_current()  # superseded while waiting: say so, not MindSpore's complaint
                if self._engine.closed:
                    # MindSpore's complaint about the epoch close() ended (read, so that it is not
                    # reported later by another pipeline): say what happened instead.
                    raise RuntimeError(
                        "to_mindspore: this dataset was closed (close()); build a new one with to_mindspore(...)"
                    ) from None
                raise
            raise original from None
        self._row += 1
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


def rebuilt_batches(dataset, num_epochs: int, output_numpy: bool):
    """``iter_batches`` of a dataset with a ``structure``: one iterator over ``num_epochs``, each row rebuilt."""
    if isinstance(num_epochs, bool) or not isinstance(num_epochs, int) or num_epochs < 1:
        raise ValueError(f"iter_batches: num_epochs must be an int >= 1, got {num_epochs!r}")
    return _rebuilt(dataset, num_epochs, output_numpy)


def _rebuilt(dataset, num_epochs: int, output_numpy: bool):
    it = dataset.create_tuple_iterator(num_epochs=num_epochs, output_numpy=output_numpy)
    for _ in range(num_epochs):
        for row in it:
            yield dataset.structure.rebuild(row)


def _iterator(dataset, engine, make, args, kwargs, what: str) -> _Iterator:
    """A consumer-bound MindSpore iterator of ``dataset`` (the TorchLoaderDataset or a dataset chained on it)."""
    engine.check_usable()
    unit = _row_unit(dataset)
    _check_init_step(dataset, unit)
    _check_initial_epoch(engine)
    consumer = engine.new_consumer(counts_rows=unit is not None, what=what)
    consumer.unit = unit
    consumer.skipped = dataset.get_init_step() or 0  # (checked above: inside the first epoch, batch rows)
    root = _root(dataset) if engine.resumes_mid_epoch else None
    with engine.bind(consumer):
        if root is None:
            inner = make(*args, **kwargs)
        else:
            # A state loaded inside an epoch: its first epoch has only the batches after the saved position, so
            # this iterator's tree declares no size to MindSpore (the engine still checks every epoch's count).
            sized, root.source_len = root.source_len, -1
            try:
                inner = make(*args, **kwargs)
            finally:
                root.source_len = sized
    return _Iterator(inner, consumer, engine)


def _root(dataset) -> TorchLoaderDataset | None:
    node = dataset
    while not isinstance(node, TorchLoaderDataset):
        children = getattr(node, "children", None) or []
        if len(children) != 1:
            return None
        node = children[0]
    return node


def _check_init_step(dataset, unit: str | None) -> None:
    """Refuse a ``set_init_step(k)`` this pipeline cannot honour exactly (MindSpore's resume, issue 20).

    MindSpore skips ``k // size`` whole epochs by not running them and then the first ``k % size`` rows of
    the next, which it pulls from the source. Rows pulled are torch's rows, so a skip inside the epoch the
    iterator begins is exact; whole epochs skipped are not: the engine would begin the next torch epoch, not
    the epoch ``k // size`` later that an uninterrupted run would be in — a silent restart.

    Raises:
        ValueError: ``k`` reaches past the first epoch, or the rows are not torch batches.
    """
    init = dataset.get_init_step()
    if not init:
        return
    root = _root(dataset)
    if root is not None and root._engine.resumes_mid_epoch:
        raise ValueError(
            f"to_mindspore: set_init_step({init}) on a dataset resumed from a state saved inside an epoch: the "
            "state already skips to its position. Use one or the other."
        )
    if unit != "batch" or _regrouped(dataset):
        raise ValueError(
            f"to_mindspore: set_init_step({init}) on a {type(dataset).__name__} whose source rows are not its rows "
            "(samples regrouped by a batch op, or a batch/filter/take chain): where MindSpore's skip lands in "
            "torch's stream is not defined. Call it on a to_mindspore(...) dataset or a map/project/rename chain "
            "on one, or skip batches in your loop."
        )
    size = dataset.get_dataset_size()
    if init >= size:
        raise ValueError(
            f"to_mindspore: set_init_step({init}) skips {init // size} whole epoch(s) of {size} batches: MindSpore "
            "would not run them, and this pipeline would begin the next torch epoch instead of the one an "
            "uninterrupted run is in (a silent restart). Exact resume across epochs is not supported yet; "
            f"set_init_step(k) with k < {size} skips batches inside the epoch the iterator begins, exactly."
        )


def _check_initial_epoch(engine) -> None:
    """Refuse ``Model.train(..., initial_epoch=i)`` on a dataset whose next epoch is not torch's epoch ``i``.

    MindSpore skips no data for ``initial_epoch`` (outside sink mode): it only numbers the epochs from ``i``. On a
    dataset that begins at torch's epoch 0 that is a silent restart of the stream (epoch 0's shuffle and seeds
    trained as epoch ``i``); a dataset resumed from a state saved at epoch ``i`` is what it means.

    Raises:
        ValueError: the numbers differ, with what to do.
    """
    initial = _model_train_initial_epoch()
    if initial and initial != engine.next_epoch:
        raise ValueError(
            f"to_mindspore: Model.train(..., initial_epoch={initial}) on a dataset whose next epoch is torch's epoch "
            f"{engine.next_epoch}: MindSpore skips no data for initial_epoch, so the run would silently restart the "
            f"stream there. Resume the dataset itself: to_mindspore(loader, state=state) with the state_dict() saved "
            f"when epoch {initial} began (docs/adapters.md, 'Resuming')."
        )


def _model_train_initial_epoch() -> int | None:
    """``initial_epoch`` of the ``Model.train`` building this iterator, if one is (MindSpore passes it nowhere else)."""
    frame: FrameType | None = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_name == "_train_process" and frame.f_globals.get("__name__") == "mindspore.train.model":
            value = frame.f_locals.get("initial_epoch")
            return value if isinstance(value, int) else None
        frame = frame.f_back
    return None


def _regrouped(dataset) -> bool:
    """Whether a batch op regroups sample rows between ``dataset`` and its source (``adapters.batch``)."""
    node = dataset
    while not isinstance(node, TorchLoaderDataset):
        if getattr(node, "regroups_torch_batches", False):
            return True
        children = getattr(node, "children", None) or []
        if len(children) != 1:
            return True
        node = children[0]
    return getattr(node, "row_unit", "batch") != "batch"


# MindSpore operations whose result is a dataset built on this one: their iterators must give
# errors from the torch side back with their own type too.
_CHAINED_OPS = (
    "map",
    "batch",
    "padded_batch",
    "bucket_batch_by_length",
    "shuffle",
    "repeat",
    "project",
    "rename",
    "take",
    "skip",
    "filter",
    "zip",
    "concat",
    "split",
    "sync_wait",
    "apply",
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


class _ChainedMixin(_MindSporeDataset):
    _torch2ms_engine: weakref.ref  # set by _chained

    def _engine_now(self):
        engine = self._torch2ms_engine()
        if engine is None:
            raise RuntimeError("to_mindspore: the TorchLoaderDataset this pipeline was built on is gone")
        return engine

    def create_tuple_iterator(self, *args, **kwargs):
        return _iterator(
            self,
            self._engine_now(),
            super().create_tuple_iterator,
            args,
            kwargs,
            f"an iterator of a {type(self).__name__} on it",
        )

    def create_dict_iterator(self, *args, **kwargs):
        return _iterator(
            self,
            self._engine_now(),
            super().create_dict_iterator,
            args,
            kwargs,
            f"an iterator of a {type(self).__name__} on it",
        )

    def state_dict(self) -> dict:
        """The stream's position (:meth:`TorchLoaderDataset.state_dict`; the same, taken through this chain)."""
        return self._engine_now().state_dict()

    def load_state_dict(self, state: dict) -> None:
        """Resume the stream below this chain from ``state`` (:meth:`TorchLoaderDataset.load_state_dict`)."""
        self._engine_now().load_state(state)

    def get_dataset_size(self):
        """A chain keeping one row per batch (map, project, rename) has the size of the dataset below it (the
        TorchLoaderDataset's, or that of ``adapters.batch``'s batch op); for others MindSpore computes it from the
        sizes below (it would otherwise run the pipeline, whose source gives its getters one row)."""
        size = _size_below(self)
        return super().get_dataset_size() if size is None else size


# MindSpore counts the rows of these by running the pipeline (a batch op too, when its batch size is a callable)
_SIZE_BY_RUNNING = ("FilterDataset", "BucketBatchByLengthDataset")


def _size_below(dataset) -> int | None:
    """The size of ``dataset`` when a row-preserving chain leads to a dataset that knows it; None: MindSpore's rule.

    Raises:
        TypeError: only running an epoch would tell.
    """
    node = dataset
    while not (isinstance(node, TorchLoaderDataset) or getattr(node, "regroups_torch_batches", False)):
        children = getattr(node, "children", None) or []
        if type(node).__name__ not in _ROW_PRESERVING or len(children) != 1:
            break
        node = children[0]
    else:
        return node.get_dataset_size()
    stack = [dataset]
    while stack:
        node = stack.pop()
        if isinstance(node, TorchLoaderDataset) and node._length is None:
            raise TypeError(
                f"this {type(dataset).__name__} is built on a TorchLoaderDataset whose epochs may differ in length "
                "through operations that do not keep one row per batch: its size is not known before an epoch runs"
            )
        name = type(node).__name__
        if name in _SIZE_BY_RUNNING or (name == "BatchDataset" and node.batch_size_func is not None):
            raise TypeError(
                f"this {type(dataset).__name__} is built on a TorchLoaderDataset through a {name} whose size MindSpore "
                "counts by running an epoch of the pipeline (an epoch of the torch loader's stream): its size is not "
                "known before an epoch runs"
            )
        if not isinstance(node, TorchLoaderDataset):
            stack.extend(getattr(node, "children", None) or [])
    return None


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
    """

    def __init__(self, engine, structure, first_row, length: int | None, torch_len: int | None = None) -> None:
        self._engine = engine
        super().__init__(
            _Source(engine) if length is None else _SizedSource(engine, length),
            column_names=list(structure.names),
            shuffle=False,
            num_parallel_workers=1,
            python_multiprocessing=False,
        )
        self.structure = structure
        self._first_row = first_row
        self._length = length
        self._torch_len = length if length is not None else torch_len  # what torch's len(loader) says

    def create_tuple_iterator(self, *args, **kwargs):
        return _iterator(self, self._engine, super().create_tuple_iterator, args, kwargs, "a newer iterator")

    def create_dict_iterator(self, *args, **kwargs):
        return _iterator(self, self._engine, super().create_dict_iterator, args, kwargs, "a newer iterator")

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
        return rebuilt_batches(self, num_epochs, output_numpy)

    # Answered from the first batch: MindSpore would otherwise run the pipeline (an epoch) to find out.
    def _first(self):
        row = self._first_row if self._first_row is not None else self._engine.first_row_made
        if row is None:
            raise TypeError(
                "this TorchLoaderDataset's columns were declared (to_mindspore(structure=...)): their shapes and "
                "dtypes are known once its first batch was made; iterate first"
            )
        return row

    def output_shapes(self, estimate=False):
        return [list(a.shape) for a in self._first()]

    def get_dataset_size(self):
        """Batches per epoch: ``len(loader)``, as torch's ``len(loader)`` answers it.

        For a sampler whose batch count may change from epoch to epoch (declared to MindSpore without a
        size, see ``to_mindspore(fixed_length=)``) this is torch's estimate too; epochs end where the sampler
        ends them, whatever this says.

        Raises:
            TypeError: the sampler has no ``len()`` (an IterableDataset without one), as torch's ``len(loader)``.
        """
        if self._torch_len is None:
            raise TypeError(
                "this TorchLoaderDataset's sampler has no len() (an IterableDataset without __len__, or an infinite "
                "sampler), so, as torch's len(loader), it has no dataset size"
            )
        return self._torch_len

    def output_types(self):
        return [a.dtype for a in self._first()]

    def close(self) -> None:
        """Stop the pipeline's processes now (they also stop when the dataset is garbage-collected)."""
        self._engine.close()

    def state_dict(self) -> dict:
        """Where the stream is, as a small JSON-ready dict: resume from it with :meth:`load_state_dict`.

        Take it between two batches your loop has received (inside an epoch: the resumed stream continues that
        epoch after the last batch taken) or between two epochs (it begins the next epoch). It holds what torch's
        loader would have at hand there: the loader's random streams and generators at the start of that epoch,
        each worker's streams, the samplers' ``state_dict()`` if they have one; see ``docs/adapters.md``
        ("Resuming") for what is saved, what is guaranteed and what is refused.

        Returns:
            A dict of plain data (``json.dumps`` writes it; ``pickle`` and ``torch.save`` too).

        Raises:
            ValueError: this pipeline cannot save its position (``steps_per_epoch``), saying why.
            RuntimeError: the dataset was closed or interrupted.

        Example:
            >>> import numpy as np, adapters
            >>> data = [np.float32(i) for i in range(6)]
            >>> ds = adapters.to_mindspore(data, batch_size=2, shuffle=True, seed=0)
            >>> it = ds.create_tuple_iterator(output_numpy=True, num_epochs=1)
            >>> first = next(it)[0].tolist(); state = ds.state_dict()
            >>> rest = [r[0].tolist() for r in it]
            >>> again = adapters.to_mindspore(data, batch_size=2, shuffle=True, seed=0, state=state)
            >>> [r[0].tolist() for r in again.create_tuple_iterator(output_numpy=True, num_epochs=1)] == rest
            True
        """
        return self._engine.state_dict()

    def load_state_dict(self, state: dict) -> None:
        """Continue the stream from ``state`` (:meth:`state_dict`), before this dataset's first epoch.

        Args:
            state: a state from a dataset built the same way (the same loader configuration).

        Raises:
            TypeError / ValueError: not a loader state, or one from another configuration (naming what
                differs), or this pipeline cannot resume (``steps_per_epoch``).
            RuntimeError: an epoch has already begun.
        """
        self._engine.load_state(state)

    def __deepcopy__(self, memodict):
        # MindSpore copies the tree when it builds a pipeline; the engine (its processes and epoch
        # position) stays one object. The copy's source asks for epochs as the consumer being bound now.
        if id(self) in memodict:
            return memodict[id(self)]
        new = self.__safe_deepcopy__(
            memodict,
            exclude=("source", "__transfer_dataset__", "_engine", "structure", "_first_row", "_length", "_torch_len"),
        )
        new.source = self.source.bound(self._engine.binding)
        return new


def _ts_op(name):
    def op(self, *args, **kwargs):
        return self._chain(name, *args, **kwargs)

    op.__name__ = name
    # Not MindSpore's docstring: its examples are not ours to run (and doctest would collect them).
    op.__doc__ = (
        f"MindSpore's ``Dataset.{name}``; errors from the torch loader keep their type through it, "
        "and ``output_shapes``/``output_types`` start no epoch."
    )
    return op


for _name in _CHAINED_OPS:
    setattr(TorchLoaderDataset, _name, _ts_op(_name))
