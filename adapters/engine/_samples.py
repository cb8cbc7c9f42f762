"""The MindSpore-native shape: sample rows, then MindSpore's batch op with torch's collate as ``per_batch_map``.

:func:`sample_dataset` runs the same engine as ``to_mindspore``: the loader's sampler and batch sampler,
its workers and their seeding, each torch batch fetched by the worker torch would give it to. Only the
collate changes: in the worker, the loader's ``collate_fn`` still runs (it may draw from the worker's random
streams or change the samples' state, and the next samples depend on that), but what travels is the list of
samples as the dataset returned them (copied before the collate could change them in place) and, for a
collate that draws from the random streams, their states before it ran. The engine hands each batch to
MindSpore as its sample rows, in order; :func:`batch` regroups them with MindSpore's own ``batch`` op, whose
``per_batch_map`` is torch's collate (``default_collate`` mirrored, or the loader's ``collate_fn``). A
MindSpore ``.map()`` between the two calls changes the samples the collate sees, and nothing else.

Counting: an iterator of the sample dataset (or of map / project / rename on it) counts samples; one of the
dataset :func:`batch` returns (and of map / project / rename on either side of it) counts torch batches,
since MindSpore's batch op groups exactly the samples of one torch batch per row. Both leave epochs early
exactly as torch's loop would (a sample iterator at a batch boundary only).
"""

from __future__ import annotations

import collections.abc
import copy
import dataclasses
import hmac
import inspect
import os
import pickle
import weakref
from typing import TYPE_CHECKING, Any

import numpy as np

from adapters.engine import _processes
from adapters.engine._columns import (
    _MAC,
    Structure,
    StructureMismatchError,
    _infer_with_columns,
    _is_namedtuple,
    _is_namedtuple_type,
    _leaf_of,
    _leaf_value,
    _Mapping,
    _pack,
    _Sequence,
    _sign,
)
from adapters.engine._engine import _POLL, Engine, _Abandoned
from adapters.engine._errors import wrap_exception
from adapters.engine._pipeline import TorchLoaderDataset, rebuilt_batches
from adapters.engine._spec import LoaderSpec, spec_from_dataset, spec_from_loader
from adapters.engine._to_mindspore import _epoch_length, _is_torch_loader, build_engine, resolve
from adapters.engine._transport import numpy_tree
from adapters.torch_data._collate import _is_tensor, to_numpy
from torch2ms_base._streams import StreamState

if TYPE_CHECKING:
    # _TorchBatches is only ever a base beside the chained MindSpore BatchDataset adapters.batch makes (see
    # _as_torch_batches): typed as one, so MindSpore's attributes and the chain's _engine_now are known.
    from adapters.engine._pipeline import _ChainedMixin as _ChainedBatchDataset
else:
    _ChainedBatchDataset = object

__all__ = ["sample_dataset", "batch", "SampleEngine", "TorchSampleDataset", "STATE_COLUMN"]

STATE_COLUMN = "_collate_state"  # sample rows' column carrying the worker's random streams before its collate
_EMPTY = np.zeros(0, np.uint8)
_USE_TO_MINDSPORE = "use adapters.to_mindspore(...) (each row one whole batch, collated in the worker) instead"


# ------------------------------------------------------------------------------------------------ in the worker


class _SampleBatch:
    """What a torch worker sends for one batch in this shape (not a tuple: ``numpy_tree`` leaves it whole).

    Attributes:
        samples: the dataset's samples, torch tensors at column positions made numpy; lists and tuples inside
            a sample (packed columns) as they were.
        states: signed pickle of every random stream's state before the collate ran (custom collates), or None.
        drew: names of the streams the collate drew from.
        first: epoch 0's first batch only (the probe): ``(collated batch, which sample columns were tensors)``.
    """

    __slots__ = ("samples", "states", "drew", "first")

    def __init__(self, samples, states, drew, first) -> None:
        self.samples, self.states, self.drew, self.first = samples, states, drew, first

    def __reduce__(self):
        return _SampleBatch, (self.samples, self.states, self.drew, self.first)


def _column_leaves(sample, top: bool = True):
    """The values that become a sample's columns, in column order (the walk of ``Structure`` with nested packing)."""
    if sample is None or (not top and type(sample) in (list, tuple)) or _leaf_of(sample) is not None:
        yield sample
    elif isinstance(sample, collections.abc.Mapping):
        for k in sample:
            yield from _column_leaves(sample[k], False)
    elif _is_namedtuple(sample) or type(sample) in (list, tuple):
        for v in sample:
            yield from _column_leaves(v, False)
    else:
        yield sample  # not a column: Structure names it in its error


def _tensors_to_numpy(sample, top: bool = True):
    """``sample`` with the torch tensors that become columns made numpy (packed lists keep theirs)."""
    if _is_tensor(sample):
        try:
            return to_numpy(sample)
        except TypeError:
            return sample  # (no numpy dtype for it, bfloat16: a packed column carries the tensor)
    if sample is None or (not top and type(sample) in (list, tuple)) or _leaf_of(sample) is not None:
        return sample
    if isinstance(sample, collections.abc.Mapping):
        items = {k: _tensors_to_numpy(v, False) for k, v in sample.items()}
        if type(sample) is dict:
            return items
        if isinstance(sample, collections.abc.MutableMapping):
            out = copy.copy(sample)  # keeps what the type carries besides its items (defaultdict's factory)
            out.update(items)
            return out
        # sample's own class, as torch's collate rebuilds it; mypy sees the abstract Mapping (no argument)
        return type(sample)(items)  # type: ignore[call-arg]
    if _is_namedtuple(sample):
        return type(sample)(*(_tensors_to_numpy(v, False) for v in sample))
    if type(sample) in (list, tuple):
        return type(sample)(_tensors_to_numpy(v, False) for v in sample)
    return sample


def _stream_states() -> dict:
    return StreamState.capture().states


def _same_state(a, b) -> bool:
    """Whether two captures of one stream's state are equal (torch's: by its bytes, not its pickle, which
    names the storage by its address)."""
    if _is_tensor(a) and _is_tensor(b):
        return a.numpy().tobytes() == b.numpy().tobytes()
    return pickle.dumps(a, protocol=5) == pickle.dumps(b, protocol=5)


class SampleCollate:
    """The engine's ``collate_fn`` in this shape: torch's collate runs in the worker, the samples travel.

    Args:
        collate_fn: the loader's collate (``adapters.default_collate`` for torch's default).
        default: it is the default collate (pure: it need not run in the worker, except for the probe).
    """

    def __init__(self, collate_fn, default: bool) -> None:
        self.collate_fn = collate_fn
        self.default = default

    def __call__(self, data):
        probing = _processes.probing
        if not isinstance(data, (list, tuple)):
            raise TypeError(
                f"sample_dataset: the dataset's __getitems__ returned a {type(data).__name__}, not a list of samples, "
                f"so the samples of a batch cannot be told apart; {_USE_TO_MINDSPORE}"
            )
        data = list(data)
        if self.default:
            first: tuple[Any, list[bool] | None] | None = (numpy_tree(self.collate_fn(data)), None) if probing else None
            return _SampleBatch([numpy_tree(s) for s in data], None, (), first)
        tensors = [_is_tensor(v) for v in _column_leaves(data[0])] if probing and data else None
        # The collate may change the samples in place (YOLOv5's writes each label's image index): what
        # travels is what the dataset returned.
        try:
            samples = [_tensors_to_numpy(s) for s in copy.deepcopy(data)]
            if probing:
                _pack(samples)  # what cannot travel as rows is refused at construction, saying why
        except Exception as exc:
            raise TypeError(
                f"sample_dataset: a sample cannot travel as a MindSpore row ({type(exc).__name__}: {exc}); a collate "
                f"that needs such objects whole can run only in torch's worker: {_USE_TO_MINDSPORE}"
            ) from None
        before = _stream_states()
        out = self.collate_fn(data)
        after = _stream_states()
        drew = tuple(name for name, state in before.items() if name not in after or not _same_state(state, after[name]))
        raw = pickle.dumps(before, protocol=5)
        first = (numpy_tree(out), tensors) if probing else None
        return _SampleBatch(samples, np.frombuffer(_sign(raw) + raw, np.uint8), drew, first)


def _unsigned(blob: np.ndarray) -> dict:
    raw = np.asarray(blob, np.uint8).tobytes()
    mac, data = raw[:_MAC], raw[_MAC:]
    if len(raw) < _MAC or not hmac.compare_digest(mac, _sign(data)):
        raise ValueError(
            f"batch: column {STATE_COLUMN!r} was not made by this pipeline in this process (its bytes were changed, "
            "e.g. by a map on it): it is refused, never unpickled"
        )
    return pickle.loads(data)


# ------------------------------------------------------------------------------------------------ rows


class SampleStructure:
    """How a sample row is made and read back: :class:`~adapters.Structure` of one sample, plus the state column.

    Attributes:
        names: the column names (the sample's leaves, then ``_collate_state`` when the collate draws from the
            random streams).
        sample: the :class:`~adapters.Structure` of one sample.
    """

    def __init__(self, sample: Structure, state_column: bool, tensors=None) -> None:
        self.sample = sample
        self.state_column = state_column
        self.names = tuple(sample.names) + ((STATE_COLUMN,) if state_column else ())
        self.paths = tuple(sample.paths) + (("<the worker's random streams>",) if state_column else ())
        self.tensors = tuple(tensors) if tensors is not None else (False,) * len(sample.names)

    def __len__(self) -> int:
        return len(self.names)

    def to_row(self, batch: _SampleBatch, k: int | None = None) -> tuple:
        """The rows of one torch batch: one per sample (the engine hands them to MindSpore in order)."""
        if batch.drew and not self.state_column:
            at = "a batch" if k is None else f"batch {k}"
            raise RuntimeError(
                f"sample_dataset: collate_fn drew from {', '.join(batch.drew)} while collating {at} in its torch "
                "worker, but not while collating epoch 0's first batch, so the sample rows carry no state of the "
                f"worker's random streams and MindSpore's batch op cannot replay those draws; {_USE_TO_MINDSPORE}"
            )
        rows = []
        for i, sample in enumerate(batch.samples):
            try:
                row = self.sample.to_row(sample, None)
            except StructureMismatchError as exc:
                where = f"sample {i} of torch batch {'?' if k is None else k}"
                msg = str(exc).replace(
                    "this batch is not nested like the first batch", "it is not nested like the first sample of epoch 0"
                )
                raise StructureMismatchError(f"sample_dataset: {where}: {msg}") from None
            if self.state_column:
                row += (batch.states if i == 0 else _EMPTY,)
            rows.append(row)
        return tuple(rows)

    def filler_row(self, batch: _SampleBatch) -> tuple:
        row = self.sample.to_row(batch.samples[0], None)
        return row + ((_EMPTY,) if self.state_column else ())

    def rebuild(self, row, *, for_collate: bool = False):
        """The sample back from its row (``for_collate``: torch tensors where the dataset gave tensors, writable arrays,
        and a number column a map gave another dtype as a numpy scalar of that dtype)."""
        values = [row[n] for n in self.names] if isinstance(row, collections.abc.Mapping) else list(row)
        if len(values) != len(self.names):
            raise ValueError(
                f"sample_dataset: got {len(values)} columns, the sample rows have {len(self.names)}: "
                f"{list(self.names)!r}"
            )
        # strict=False: values ends with the state column (when there is one), which is not the sample's
        leaves = iter(zip(values, self.sample.names, self.tensors, strict=False))
        return _rebuild(self.sample.root, leaves, for_collate)


_DEFAULT_NUMBER_DTYPES = (np.dtype(np.bool_), np.dtype(np.int64), np.dtype(np.float64))


def _rebuild(node, leaves, for_collate: bool):
    if isinstance(node, (_Mapping, _Sequence)):
        values = [_rebuild(child, leaves, for_collate) for child in node.children]
        if isinstance(node, _Mapping):
            return node.build(dict(zip(node.keys, values, strict=True)))
        return node.cls(*values) if _is_namedtuple_type(node.cls) else node.cls(values)
    arr, name, tensor = next(leaves)
    if hasattr(arr, "asnumpy"):
        arr = arr.asnumpy()
    if for_collate and isinstance(arr, np.ndarray) and node.kind != "packed":
        # What a map made of a column reaches the collate as it is: a number cast to another dtype as a numpy
        # scalar of that dtype, a value made an array as that array.
        kind = node.kind
        if kind == "number" and arr.ndim == 0 and arr.dtype in _DEFAULT_NUMBER_DTYPES:
            return arr.item()
        if kind in ("number", "numpy_scalar") and arr.ndim == 0 and arr.dtype.kind in "biufc":
            return arr[()]
        strings = kind in ("str", "bytes", "strings")
        if kind == "array" or (not strings and arr.ndim > 0) or (strings and arr.dtype.kind not in "US"):
            if not arr.flags.writeable:
                arr = arr.copy()  # a collate may write into its samples (YOLOv5's labels)
            if tensor and kind == "array":
                import torch

                return torch.from_numpy(arr)
            return arr
    return _leaf_value(arr, node, name)


# ------------------------------------------------------------------------------------------------ the engine


class SampleEngine(Engine):
    """The engine handing each torch batch to MindSpore as its sample rows (``structure``: a :class:`SampleStructure`).

    Counts: ``epoch.produced`` / ``consumed`` stay torch batches (what torch's dispatch, a partial epoch and the
    epoch length are about); ``epoch.rows`` / ``rows_consumed`` count samples; ``epoch.sizes`` the samples of
    each batch handed, which MindSpore's batch op asks for (:meth:`batch_size_for`).
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.row_length: int | None = None  # sample rows in every epoch (the source's size), if known
        self.uniform: int | None = None  # every batch but an epoch's last has this many samples (int batch size)
        self._recent: dict = {}  # epoch number -> _Epoch, the last few

    def state_dict(self) -> dict:
        raise ValueError(
            "state_dict() of a sample dataset (adapters.sample_dataset, batch maps) is not supported: its rows are "
            "samples regrouped by MindSpore, whose position inside a batch cannot be saved yet. Resume a batch-level "
            "dataset (adapters.to_mindspore) instead."
        )

    def load_state(self, state: dict) -> None:
        self.state_dict()  # (the same refusal)

    def _open_epoch(self, consumer):
        epoch = super()._open_epoch(consumer)
        with self._cv:
            self._recent[epoch.number] = epoch
            for number in [n for n in self._recent if n < epoch.number - 4]:
                del self._recent[number]
            self._cv.notify_all()
        return epoch

    def _yield(self, epoch, group, *, check_abort: bool = True):
        n = len(group)
        k = len(epoch.sizes)
        if n == 0:
            raise ValueError(
                f"sample_dataset: batch {k} of epoch {epoch.number} has no samples; MindSpore's batch op cannot "
                f"make an empty batch: {_USE_TO_MINDSPORE}"
            )
        if self.uniform is not None and epoch.sizes and epoch.sizes[-1] != self.uniform:
            raise RuntimeError(
                f"sample_dataset: batch {k - 1} of epoch {epoch.number} has {epoch.sizes[-1]} samples and is not the "
                f"last, but adapters.batch regroups the samples by batch_size={self.uniform} (the loader's "
                "BatchSampler)"
            )
        with self._cv:
            epoch.sizes.append(n)
            self._cv.notify_all()  # (MindSpore's batch op waiting for this batch's size)
        for i, row in enumerate(group):
            with self._cv:
                epoch.rows += 1
                if i == n - 1:
                    epoch.produced += 1
                self._cv.notify_all()
            self._io.release()
            try:
                yield row
            finally:
                self._io.acquire()
            if check_abort and epoch.aborted:
                raise _Abandoned

    def _row_waiting(self, epoch, consumer) -> bool:
        if consumer.unit == "sample":
            return epoch.rows > epoch.rows_consumed
        return epoch.produced > epoch.consumed

    def _took_row(self, epoch, consumer) -> None:
        if consumer.unit != "sample":
            epoch.consumed += 1
            return
        epoch.rows_consumed += 1
        k = epoch.consumed
        if k < len(epoch.sizes) and epoch.rows_consumed == epoch.bound + epoch.sizes[k]:
            epoch.bound += epoch.sizes[k]
            epoch.consumed += 1  # a whole torch batch taken

    def _close(self, prev) -> None:
        if not prev.finished:
            unit = prev.consumer.unit
            if unit is None and prev.rows > 0:
                prev.closed = True
                raise RuntimeError(
                    f"sample_dataset: epoch {prev.number} was left after {prev.rows} of its samples had been "
                    "produced, by an iterator of a pipeline that does not keep one row per sample or per torch batch "
                    "(MindSpore's own batch, filter, take, skip, shuffle, zip, concat, repeat). How many samples the "
                    "loop used is unknown, so the next epoch cannot be given exactly. Consume whole epochs through "
                    "such pipelines, or break out of iterators of this dataset, of adapters.batch(...) on it, or of "
                    "map / project / rename on either (their rows are counted)."
                )
            if unit == "sample" and prev.rows_consumed != prev.bound:
                k = prev.consumed
                prev.closed = True
                raise RuntimeError(
                    f"sample_dataset: epoch {prev.number} was left after {prev.rows_consumed} samples, inside torch "
                    f"batch {k} (its samples {prev.bound}-{prev.bound + prev.sizes[k] - 1}). torch's loop takes whole "
                    "batches, so where the next epoch starts is not defined. Leave a sample iterator at a batch "
                    "boundary, or iterate the dataset adapters.batch(...) returns."
                )
        super()._close(prev)

    def rows(self, consumer):
        if consumer is None:  # a copy MindSpore made for a getter: epoch 0's first batch, no epoch begins
            if self._has_first:
                yield from self.structure.to_row(self._first, 0)
            return
        yield from super().rows(consumer)

    def _filler(self, consumer, epoch):
        # (Engine._filler's rule, in sample rows: a tree nobody may read from never ends an epoch short)
        readable = not (consumer.closed or self._closed or self.interrupted is not None)
        if self.row_length is None or not self._has_first or readable:
            return
        row = self.structure.filler_row(self._first)
        for _ in range(0 if epoch is None else epoch.rows, self.row_length):
            yield row

    def batch_size_for(self, consumer, epoch_in_tree: int, k: int) -> int:
        """Samples in batch ``k`` of the ``epoch_in_tree``-th epoch ``consumer``'s tree iterates (1 when none comes).

        MindSpore's batch op asks before it takes the batch's rows; the answer waits for the engine to hand out
        that batch. An iterator given up (superseded, closed) gets 1 at once: its rows are never read.
        """
        with self._cv:
            while True:
                if consumer is None:
                    return len(self._first.samples) if k == 0 and self._has_first else 1
                if consumer.closed or self._closed or self.interrupted is not None:
                    return 1
                if epoch_in_tree < len(consumer.epochs):
                    number = consumer.epochs[epoch_in_tree]
                    epoch = self._recent.get(number)
                    if epoch is None and self._recent and number < min(self._recent):
                        return 1
                    if epoch is not None:
                        if k < len(epoch.sizes):
                            return epoch.sizes[k]
                        if epoch.ended or epoch.exhausted or epoch.aborted:
                            return 1
                self._cv.wait(_POLL)


# ------------------------------------------------------------------------------------------------ datasets


@dataclasses.dataclass
class _Info:
    """What adapters.batch needs from the sample dataset."""

    spec: LoaderSpec  # the loader's (its own collate_fn)
    collated: object  # epoch 0's first batch as torch's collate made it (numpy leaves)
    plain_batch_size: int | None  # a plain BatchSampler's batch_size (MindSpore's int batch size), else None
    torch_len: int | None  # what torch's len(loader) says (the batch dataset's size), if anything


class TorchSampleDataset(TorchLoaderDataset):
    """A GeneratorDataset whose rows are the samples of a torch DataLoader's batches, in torch's order.

    Made by :func:`adapters.sample_dataset`; regroup it into torch's batches with :func:`adapters.batch`.

    Attributes:
        structure: a :class:`SampleStructure`: ``structure.rebuild(row)`` gives the sample back.
    """

    row_unit = "sample"

    def __init__(self, engine, structure, first_row, length, info: _Info) -> None:
        super().__init__(engine, structure, first_row, length)
        self._info = info

    def iter_batches(self, num_epochs: int = 1, *, output_numpy: bool = False):
        """Not for sample rows: :func:`adapters.batch` regroups them into torch's batches (its ``iter_batches``)."""
        raise TypeError(
            "iter_batches: this dataset's rows are samples; adapters.batch(samples, loader) regroups "
            "them into torch's batches (use its iter_batches), or use iter_samples()"
        )

    def iter_samples(self, num_epochs: int = 1, *, output_numpy: bool = False):
        """The samples, epoch after epoch, as the dataset returned them (numpy arrays for torch tensors).

        Args:
            num_epochs: epochs to walk.
            output_numpy: numpy arrays as leaves instead of MindSpore Tensors.

        Returns:
            A generator of samples.

        Example:
            >>> import adapters
            >>> ds = adapters.sample_dataset([{"x": i} for i in range(4)], batch_size=2, shuffle=True, seed=0)
            >>> [s["x"] for s in ds.iter_samples(output_numpy=True)]  # torch's batches: [1, 0], [3, 2]
            [1, 0, 3, 2]
        """
        if isinstance(num_epochs, bool) or not isinstance(num_epochs, int) or num_epochs < 1:
            raise ValueError(f"iter_samples: num_epochs must be an int >= 1, got {num_epochs!r}")
        return self._samples(num_epochs, output_numpy)

    def _samples(self, num_epochs: int, output_numpy: bool):
        it = self.create_tuple_iterator(num_epochs=num_epochs, output_numpy=output_numpy)
        for _ in range(num_epochs):
            for row in it:
                yield self.structure.rebuild(row)

    def get_dataset_size(self):
        if self._length is None:
            raise TypeError(
                "this sample dataset's epochs have no fixed number of samples (a batch sampler other than "
                "torch's BatchSampler, an IterableDataset, or fixed_length=False), so it has no dataset size; "
                "adapters.batch(...) on it has one if the loader's batch count is fixed"
            )
        return self._length

    def __deepcopy__(self, memodict):
        if id(self) in memodict:
            return memodict[id(self)]
        new = self.__safe_deepcopy__(
            memodict,
            exclude=(
                "source",
                "__transfer_dataset__",
                "_engine",
                "structure",
                "_first_row",
                "_length",
                "_torch_len",
                "_info",
            ),
        )
        new.source = self.source.bound(self._engine.binding)
        return new


class BatchSizes:
    """MindSpore's ``batch_size`` callable: the samples of each torch batch, as the engine hands them out.

    One per iterator's tree (bound to its consumer when MindSpore copies the tree); the dataset's own
    belongs to nobody (getters: epoch 0's first batch).
    """

    def __init__(self, engine, consumer=None) -> None:
        self._engine = weakref.ref(engine)
        self._consumer = consumer

    def __call__(self, batch_info):
        engine = self._engine()
        if engine is None:
            return 1
        return engine.batch_size_for(self._consumer, batch_info.get_epoch_num(), batch_info.get_batch_num())

    def bound(self, consumer) -> BatchSizes:
        engine = self._engine()
        return BatchSizes(engine, consumer) if engine is not None else self


class PerBatchMap:
    """MindSpore's ``per_batch_map``: torch's collate of one batch's samples, as batch columns.

    Each call rebuilds the samples from their columns (torch tensors where the dataset gave tensors), runs the
    collate and flattens its batch. With a state column (a collate that draws from the random streams in torch's
    worker), it runs with the worker's streams as they were before that batch's collate: only in a process of
    MindSpore's (``python_multiprocessing=True``), never in yours.
    """

    def __init__(self, engine, rows: SampleStructure, structure: Structure, collate_fn, inputs: int) -> None:
        self._engine = weakref.ref(engine)
        self._owner = os.getpid()
        self.rows = rows
        self.structure = structure
        self.collate_fn = collate_fn
        params = [inspect.Parameter(f"column_{i}", inspect.Parameter.POSITIONAL_ONLY) for i in range(inputs)]
        params.append(inspect.Parameter("batch_info", inspect.Parameter.POSITIONAL_ONLY))
        self.__signature__ = inspect.Signature(params)  # MindSpore checks: one argument per input column + BatchInfo

    def __call__(self, *args):
        *columns, info = args
        try:
            return self._collate(columns)
        except Exception as exc:
            where = (
                f"collate_fn in MindSpore's batch op (batch {info.get_batch_num()} of epoch "
                f"{info.get_epoch_num()} of this iterator)"
            )
            err = wrap_exception(exc, where)
            engine = self._engine()
            if engine is not None and os.getpid() == self._owner:
                engine.raise_into_mindspore(err)  # the iterator re-raises the original, with its type
            raise err from None

    def _collate(self, columns):
        n = len(columns[0])
        if self.rows.state_column:
            columns, blob = columns[:-1], columns[-1][0]
        samples = [
            self.rows.rebuild([c[i] for c in columns] + ([_EMPTY] if self.rows.state_column else []), for_collate=True)
            for i in range(n)
        ]
        states = _unsigned(blob) if self.rows.state_column and np.asarray(blob).size else None
        if states is None:
            out = self.collate_fn(samples)
        else:
            if os.getpid() == self._owner:
                raise RuntimeError(
                    "batch: a collate that draws from the random streams runs only in MindSpore's "
                    "processes (python_multiprocessing=True), never in yours"
                )
            saved = StreamState.capture()
            StreamState(states).restore()
            try:
                out = self.collate_fn(samples)
            finally:
                saved.restore()
        return self.structure.to_row(numpy_tree(out), None)


class _TorchBatches(_ChainedBatchDataset):
    """What :func:`batch` adds to MindSpore's BatchDataset: torch's batch structure, sizes, iter_batches."""

    regroups_torch_batches = True  # its rows are torch batches (adapters.engine._pipeline._row_unit)
    # set by _as_torch_batches
    structure: Structure
    _first_row: tuple
    _keep: TorchSampleDataset  # the sample dataset: its engine lives as long as this pipeline

    def iter_batches(self, num_epochs: int = 1, *, output_numpy: bool = False):
        """Torch's nested batches, epoch after epoch: what ``for batch in loader`` gives, per epoch.

        Args:
            num_epochs: epochs to walk (the next ``num_epochs`` epochs of the torch loader).
            output_numpy: numpy arrays as leaves instead of MindSpore Tensors.

        Returns:
            A generator of batches.

        Example:
            >>> import numpy as np, adapters
            >>> data = [{"x": np.float32(i)} for i in range(4)]
            >>> ds = adapters.batch(adapters.sample_dataset(data, batch_size=2), data, batch_size=2)
            >>> [b["x"].tolist() for b in ds.iter_batches(2, output_numpy=True)]
            [[0.0, 1.0], [2.0, 3.0], [0.0, 1.0], [2.0, 3.0]]
        """
        return rebuilt_batches(self, num_epochs, output_numpy)

    def output_shapes(self, estimate=False):
        return [list(a.shape) for a in self._first_row]

    def output_types(self):
        return [a.dtype for a in self._first_row]

    def get_dataset_size(self):
        """torch's ``len(loader)``, as the batch dataset of ``to_mindspore`` answers it.

        Raises:
            TypeError: the sampler has no ``len()`` (an IterableDataset without one), as torch's ``len(loader)``.
        """
        length = self._keep._info.torch_len
        if length is None:
            raise TypeError(
                "this dataset's sampler has no len() (an IterableDataset without __len__, or an infinite sampler), "
                "so, as torch's len(loader), it has no dataset size"
            )
        return length

    def close(self) -> None:
        """Stop the pipeline's processes now (they also stop when the sample dataset is garbage-collected)."""
        self._engine_now().close()

    def state_dict(self) -> dict:
        """Not supported for batch maps yet (raises ``ValueError`` with the reason; see ``SampleEngine``)."""
        return self._engine_now().state_dict()

    def load_state_dict(self, state: dict) -> None:
        """Not supported for batch maps yet (raises ``ValueError`` with the reason)."""
        self._engine_now().load_state(state)

    def __deepcopy__(self, memodict):
        if id(self) in memodict:
            return memodict[id(self)]
        new = self.__safe_deepcopy__(
            memodict,
            exclude=("per_batch_map", "batch_size_func", "__transfer_dataset__", "structure", "_first_row", "_keep"),
        )
        if isinstance(self.batch_size_func, BatchSizes):  # each iterator's tree asks for its own epochs' sizes
            new.batch_size_func = self.batch_size_func.bound(self._engine_now().binding)
        return new


_BATCH_CLASSES: dict[type, type] = {}


def _as_torch_batches(dataset, structure: Structure, first_row, keep) -> object:
    base = type(dataset)
    cls = _BATCH_CLASSES.get(base)
    if cls is None:
        cls = type(base.__name__, (_TorchBatches, base), {"__module__": base.__module__})
        _BATCH_CLASSES[base] = cls
    dataset.__class__ = cls
    dataset.structure = structure
    dataset._first_row = first_row
    dataset._keep = keep  # the sample dataset: its engine lives as long as this pipeline
    return dataset


# ------------------------------------------------------------------------------------------------ entry points


def _is_plain_batch_sampler(batch_sampler) -> bool:
    from adapters.engine._spec import torch_or_none
    from adapters.torch_data import _samplers

    torch = torch_or_none()
    kinds = (_samplers.BatchSampler,) + ((torch.utils.data.BatchSampler,) if torch is not None else ())
    return type(batch_sampler) in kinds


def _rows_per_epoch(spec, mode: str, steps: int | None, length: int | None) -> int | None:
    """Samples every epoch hands out, when MindSpore's batch op can regroup them by one int batch size."""
    bs = spec.batch_sampler
    if length is None or spec.kind != "map" or not _is_plain_batch_sampler(bs) or mode == "repeat":
        # (repeat: after a partial epoch, an epoch's batches straddle two passes of the sampler, the short last
        # batch of one pass in the middle: MindSpore must be told each batch's size)
        return None
    size, drop = bs.batch_size, bs.drop_last
    if mode == "steps":
        return steps * size
    try:
        n = len(bs.sampler)
    except TypeError:
        return None
    return n // size * size if drop else n


def sample_dataset(
    loader_or_dataset,
    *,
    column_names=None,
    seed: int | None = None,
    set_epoch=True,
    infinite: bool | str = False,
    steps_per_epoch: int | None = None,
    fixed_length: bool | None = None,
    **dataloader_kwargs,
):
    """A torch DataLoader's samples as a MindSpore dataset: one row per sample, in torch's order.

    The same engine as :func:`adapters.to_mindspore`, the same rules (the consumer drives epochs; workers,
    their seeding and ``worker_init_fn`` as torch's; every loop shape): each sample is what torch's worker
    would have produced, epoch after epoch. The loader's ``collate_fn`` still runs in the worker (what it
    draws from the random streams, or changes, is what torch's worker does), but the rows are the samples it
    was given. Regroup them into torch's batches with :func:`adapters.batch`, after any per-sample
    ``.map()`` of your own.

    Columns: a sample's leaves, named as :class:`adapters.Structure` names a batch's (``"img"``,
    ``"meta.size"``; a tuple's positions ``"0"``, ``"1"``...); a ``None``, and any list or tuple inside a
    sample (its boxes, lengths, YOLOv5's ``shapes``), is one packed column (any value, any length, from one
    sample to the next). A collate that draws from the random streams in epoch 0's first batch (YOLOv5's
    ``collate_fn4``) adds the column ``_collate_state``: the worker's streams before each batch's collate, on
    the batch's first sample.

    Args:
        loader_or_dataset: a ``torch.utils.data.DataLoader``, or a dataset plus DataLoader keyword arguments.
        column_names: names for the sample's leaves (default: inferred).
        seed, set_epoch, infinite, steps_per_epoch, fixed_length: as :func:`adapters.to_mindspore`.
        **dataloader_kwargs: ``torch.utils.data.DataLoader``'s keyword arguments (not with a DataLoader).

    Returns:
        A ``TorchSampleDataset`` (a ``mindspore.dataset.GeneratorDataset``); ``structure.rebuild(row)`` gives
        the sample back.

    Raises:
        TypeError / ValueError: as :func:`adapters.to_mindspore`; and what cannot be carried as sample rows,
            saying so and to use ``to_mindspore``: a loader that does not batch (``batch_size=None``: its
            items are its batches, an IterableDataset yielding batches included), samples that are not made of
            arrays, numbers, strings, dicts, lists and tuples.

    Example:
        >>> import adapters
        >>> ds = adapters.sample_dataset(list(range(10)), batch_size=4, shuffle=True, seed=0)
        >>> [int(row[0]) for row in ds.create_tuple_iterator(output_numpy=True, num_epochs=1)]
        [3, 7, 5, 2, 0, 8, 1, 6, 9, 4]
    """
    if column_names is not None and (isinstance(column_names, str) or not hasattr(column_names, "__iter__")):
        raise TypeError(f"sample_dataset: column_names must be a list of str, got {column_names!r}")
    spec, mode, infinite, length = resolve(
        loader_or_dataset, seed, infinite, steps_per_epoch, fixed_length, None, dict(dataloader_kwargs)
    )
    if spec.batch_sampler is None:
        raise ValueError(
            "sample_dataset: this loader does not batch samples (batch_size=None): each item the dataset yields is a "
            f"whole batch already (an IterableDataset yielding batches, say), so there are no samples to regroup; "
            f"{_USE_TO_MINDSPORE}"
        )
    sample_spec = dataclasses.replace(spec, collate_fn=SampleCollate(spec.collate_fn, spec.default_collate))
    engine, first = build_engine(
        sample_spec,
        set_epoch=set_epoch,
        mode=mode,
        steps_per_epoch=steps_per_epoch,
        length=length,
        workers_at_construction=infinite is True,
        engine_class=SampleEngine,
    )
    try:
        collated, tensors = first.first
        try:
            structure, _ = _infer_with_columns(first.samples[0], column_names, None, nested=True)
        except TypeError as exc:
            raise TypeError(
                f"sample_dataset: {exc}. Sample rows are MindSpore columns, so a sample (and what the collate needs "
                f"from it) must be made of those; {_USE_TO_MINDSPORE}"
            ) from None
        state_column = not spec.default_collate and bool(first.drew)
        if STATE_COLUMN in structure.names and state_column:
            raise ValueError(
                f"sample_dataset: a sample leaf is named {STATE_COLUMN!r}, the column this shape adds; "
                "pass column_names to rename it"
            )
        rows = SampleStructure(structure, state_column, tensors)
        engine.structure = rows
        group = rows.to_row(first, 0)  # every sample of the first batch: a mismatch is refused now
        engine.row_length = _rows_per_epoch(spec, mode, steps_per_epoch, length)
        if engine.row_length is not None:
            engine.uniform = spec.batch_sampler.batch_size
        plain = spec.batch_sampler.batch_size if engine.row_length is not None else None
        info = _Info(spec, collated, plain, _epoch_length(spec, mode, steps_per_epoch))
        return TorchSampleDataset(engine, rows, group[0], engine.row_length, info)
    except BaseException:
        engine.close()
        raise


def _sample_root(samples) -> TorchSampleDataset:
    node = samples
    while not isinstance(node, TorchLoaderDataset):
        children = getattr(node, "children", None) or []
        if len(children) != 1 or type(node).__name__ not in ("MapDataset", "ProjectDataset", "RenameDataset"):
            break
        node = children[0]
    if not isinstance(node, TorchSampleDataset):
        raise TypeError(
            "batch: samples must be what adapters.sample_dataset(...) returned, or map / project / rename on it "
            f"(each row one sample); got a {type(samples).__name__} built on a {type(node).__name__}"
        )
    return node


def _check_same_loader(ours, given, where: str) -> None:
    """The loader given to batch() must be the one the samples come from (its collate, batch sizes)."""
    checks = [
        ("dataset", ours.dataset is given.dataset),
        ("collate_fn", ours.collate_fn is given.collate_fn or (ours.default_collate and given.default_collate)),
        ("batch_size", ours.batch_size == given.batch_size),
        ("drop_last", ours.drop_last == given.drop_last),
        ("batch_sampler", type(ours.batch_sampler) is type(given.batch_sampler)),
    ]
    wrong = [name for name, ok in checks if not ok]
    if wrong:
        raise ValueError(
            f"batch: {where} is not the loader the samples come from: its {' and '.join(wrong)} "
            f"{'is' if len(wrong) == 1 else 'are'} not the same. Pass the same DataLoader, or the same dataset and "
            "DataLoader keyword arguments (the same dataset and collate_fn objects), to sample_dataset and batch"
        )


def batch(
    samples,
    loader_or_dataset,
    *,
    column_names=None,
    pack_lists_of: int | None = None,
    num_parallel_workers: int | None = None,
    python_multiprocessing: bool | None = None,
    seed: int | None = None,
    **dataloader_kwargs,
):
    """Regroup a sample dataset into torch's batches with MindSpore's ``batch`` op and torch's collate.

    ``samples.batch(...)``: MindSpore's batch op, each row one torch batch — the samples torch's batch sampler
    grouped (an int ``batch_size`` for torch's ``BatchSampler``, ``drop_remainder`` from ``drop_last``; a
    callable of ``BatchInfo`` giving each batch's size for any other batch sampler or an IterableDataset), and
    ``per_batch_map`` = torch's collate: ``default_collate`` mirrored in numpy, or the loader's ``collate_fn``
    (given torch tensors where the dataset returned tensors; its output made numpy). Without a ``.map()`` in
    between, the batches are bit-identical to torch's DataLoader's.

    ``per_batch_map`` runs in MindSpore's threads (``python_multiprocessing=False``), one at a time for a custom
    collate, as a torch worker runs its collates; a collate that drew from the random streams in epoch 0's first
    batch (YOLOv5's ``collate_fn4``) runs in MindSpore's processes instead (``python_multiprocessing=True``),
    each call with the streams torch's worker had before that batch's collate — in any order, in any process.

    Args:
        samples: what :func:`adapters.sample_dataset` returned, or map / project / rename on it (every sample
            column still there, under its name).
        loader_or_dataset: the same loader (or dataset plus DataLoader keyword arguments) as for ``samples``.
        column_names: names for the batch's leaves (default: inferred, as ``to_mindspore``'s).
        pack_lists_of: as :func:`adapters.to_mindspore` (YOLOv5's ``collate_fn4``: ``batch_size // 4``).
        num_parallel_workers: MindSpore's (default: MindSpore's for ``default_collate``, 1 for a custom collate in
            threads, the loader's ``num_workers`` in processes, at most one per CPU).
        python_multiprocessing: MindSpore's (default: as above; ``False`` is refused for a collate that draws).
        seed: accepted as for ``sample_dataset`` (the order comes from ``samples``).
        **dataloader_kwargs: the DataLoader keyword arguments given to ``sample_dataset`` (not with a DataLoader).

    Returns:
        A ``mindspore.dataset.BatchDataset`` with ``structure`` (``structure.rebuild(row)`` gives torch's nested
        batch), ``iter_batches``, ``get_dataset_size`` (the loader's batch count) and ``close``.

    Raises:
        TypeError / ValueError: ``samples`` is not a sample dataset, the loader is not the one the samples come
            from, sample columns were removed or added by a map, or ``python_multiprocessing=False`` for a
            collate that draws from the random streams.

    Example:
        >>> import adapters
        >>> data = list(range(10))
        >>> samples = adapters.sample_dataset(data, batch_size=4, shuffle=True, seed=0)
        >>> batches = adapters.batch(samples, data, batch_size=4, shuffle=True, seed=0)
        >>> [b.tolist() for b in batches.iter_batches(output_numpy=True)]
        [[3, 7, 5, 2], [0, 8, 1, 6], [9, 4]]
    """
    root = _sample_root(samples)
    engine, rows, info = root._engine, root.structure, root._info
    if _is_torch_loader(loader_or_dataset):
        if dataloader_kwargs or seed is not None:
            raise TypeError(
                "batch(samples, loader): DataLoader options come from the loader; got extra keyword "
                f"arguments {sorted(dataloader_kwargs) + (['seed'] if seed is not None else [])}"
            )
        given = spec_from_loader(loader_or_dataset)
    else:
        given = spec_from_dataset(loader_or_dataset, **dataloader_kwargs)
    _check_same_loader(info.spec, given, f"the {type(loader_or_dataset).__name__} given")
    have = list(samples.get_col_names())
    missing = [n for n in rows.names if n not in have]
    extra = [n for n in have if n not in rows.names]
    if missing or extra:
        raise ValueError(
            f"batch: the sample rows must keep their columns {list(rows.names)!r} (torch's collate rebuilds each "
            f"sample from them); missing {missing!r}, new {extra!r}. Map columns in place "
            "(output_columns = input_columns)"
        )
    spec = info.spec
    draws = rows.state_column
    if python_multiprocessing is False and draws:
        raise ValueError(
            "batch: the loader's collate_fn draws from the random streams in torch's worker (it did in epoch 0's "
            "first batch), so MindSpore's batch op must replay each batch's draws with the worker's streams, which "
            "happens only in MindSpore's processes: leave python_multiprocessing unset (or True)"
        )
    multiprocessing = draws if python_multiprocessing is None else python_multiprocessing
    if num_parallel_workers is None and not spec.default_collate:
        # (MindSpore allows at most one worker per CPU)
        num_parallel_workers = max(1, min(spec.num_workers, os.cpu_count() or 1)) if multiprocessing else 1
    pack = pack_lists_of if pack_lists_of is not None else None if spec.default_collate else engine.first_samples
    if pack_lists_of is not None and (
        isinstance(pack_lists_of, bool) or not isinstance(pack_lists_of, int) or pack_lists_of < 1
    ):
        raise ValueError(f"batch: pack_lists_of must be a positive int or None, got {pack_lists_of!r}")
    structure = Structure.infer(info.collated, column_names, pack_lists_of=pack)
    first_row = structure.to_row(info.collated, 0)
    per_batch_map = PerBatchMap(engine, rows, structure, spec.collate_fn, len(rows.names))
    size: int | BatchSizes
    if info.plain_batch_size is not None:
        size = info.plain_batch_size
    else:
        size = BatchSizes(engine)
    result = samples.batch(
        size,
        drop_remainder=bool(spec.drop_last),
        num_parallel_workers=num_parallel_workers,
        per_batch_map=per_batch_map,
        input_columns=list(rows.names),
        output_columns=list(structure.names),
        python_multiprocessing=multiprocessing,
    )
    return _as_torch_batches(result, structure, first_row, root)
