"""``compare_pipelines``: walk two batch streams in lock step and report every difference, batch by batch."""

from __future__ import annotations

import collections.abc
import dataclasses
import gc
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from porting.harness._arrays import is_worse
from porting.harness._compare import Mismatch, compare, not_identical_words
from porting.harness._format import format_path
from porting.harness._tolerances import resolve_tolerances
from torch2ms_base._report import Report

__all__ = [
    "BatchMismatch",
    "PipelineReport",
    "assert_pipelines_equivalent",
    "batch_location",
    "compare_pipelines",
    "dataset_rows",
    "loader_epochs",
]

_END = object()


def batch_location(batch: int, batches_per_epoch: int | None = None, column: Any = None) -> str:
    """``batch 7`` or, with ``batches_per_epoch=4``, ``epoch 1 / batch 3``; then `` / column 'img'``.

    Example:
        >>> batch_location(7, 4, "img")
        "epoch 1 / batch 3 / column 'img'"
    """
    head = (
        f"epoch {batch // batches_per_epoch} / batch {batch % batches_per_epoch}"
        if batches_per_epoch
        else f"batch {batch}"
    )
    return head if column is None else f"{head} / column {column!r}"


@dataclasses.dataclass(frozen=True)
class BatchMismatch:
    """A :class:`~porting.Mismatch` inside one batch.

    Attributes:
        batch: 0-based batch number over the whole walk.
        column: column label (dict key, ``column_names`` entry or position); ``None`` when the
            difference concerns the whole batch (keys, length, type).
        mismatch: the difference; its ``path`` starts below the column.
        batches_per_epoch: when known, locations name the epoch and the batch within it.
    """

    batch: int
    column: Any
    mismatch: Mismatch
    batches_per_epoch: int | None = None

    @property
    def location(self) -> str:
        """``epoch 1 / batch 3 / column 'img' / [0, 2, 5, 1]`` (epoch when ``batches_per_epoch`` is
        known; nested path and element index when there are)."""
        parts = [batch_location(self.batch, self.batches_per_epoch, self.column)]
        if self.mismatch.path:
            parts.append(format_path(self.mismatch.path))
        if self.mismatch.abs_index:
            parts.append(str(list(self.mismatch.abs_index)))
        return " / ".join(parts)

    def __str__(self) -> str:
        return f"{self.mismatch.message}\n\nThe failure occurred for {self.location}"


@dataclasses.dataclass(frozen=True)
class PipelineReport(Report):
    """What :func:`compare_pipelines` found.

    Attributes:
        batches: batch pairs compared.
        mismatches: every difference, batch by batch.
        count_mismatch: which pipeline ran out first and where, or ``None``.
        stopped_early: why comparison stopped before the end (``max_mismatches``), or ``None``.
        tensors, elements, bytes: totals over all batches (bytes of pipeline ``a``'s tensors).
        worst_abs_diff, worst_abs_location: largest ``|a - b|`` over everything compared, and where.
        worst_rel_diff, worst_rel_location: the same, relative to ``|b|``.
        seconds: wall time of the walk, including producing the batches.
        seconds_a, seconds_b: the part of it spent waiting for each pipeline's next batch.
        rtol, atol: the tolerances used (``None``: torch's per-dtype defaults).
        equal_nan, check_dtype: the other comparison options used.
        signed_zeros, nan_payloads: float elements that matched but are not bit-identical (``-0.0`` vs
            ``0.0``; NaN on both sides with different bits, under ``equal_nan``).
        not_identical_location: where the first of those is, or ``None``.
    """

    batches: int = 0
    mismatches: tuple[BatchMismatch, ...] = ()
    count_mismatch: str | None = None
    stopped_early: str | None = None
    tensors: int = 0
    elements: int = 0
    bytes: int = 0
    worst_abs_diff: float | int = 0
    worst_abs_location: str | None = None
    worst_rel_diff: float = 0.0
    worst_rel_location: str | None = None
    seconds: float = 0.0
    seconds_a: float = 0.0
    seconds_b: float = 0.0
    rtol: float | None = 0.0
    atol: float | None = 0.0
    equal_nan: bool = False
    check_dtype: bool = True
    signed_zeros: int = 0
    nan_payloads: int = 0
    not_identical_location: str | None = None

    @property
    def ok(self) -> bool:
        """True when every batch matched and both pipelines had the same number of batches."""
        return not self.mismatches and self.count_mismatch is None

    @property
    def exact(self) -> bool:
        """True when the comparison was exact: ``rtol = atol = 0`` and dtypes checked."""
        return self.rtol == 0 and self.atol == 0 and self.check_dtype

    @property
    def tolerance(self) -> str:
        """The tolerance in words: ``exact``, ``rtol=..., atol=...`` or torch's per-dtype defaults."""
        if self.rtol is None:
            return "torch's per-dtype default tolerances (float32: rtol 1.3e-06, atol 1e-05)"
        if self.exact:
            return "exact (rtol=0, atol=0, dtypes checked" + (", NaN equal to NaN)" if self.equal_nan else ")")
        return f"rtol={self.rtol:g}, atol={self.atol:g}" + ("" if self.check_dtype else ", dtypes not checked")

    @property
    def identical(self) -> bool:
        """Bit-identical: an exact comparison of at least one batch that matched, every float in its bits too."""
        return self.ok and self.exact and self.batches > 0 and not (self.signed_zeros or self.nan_payloads)

    @property
    def verdict(self) -> str:
        """``bit-identical`` (only from an exact comparison of at least one batch whose bits all match),
        ``equal, not bit-identical (N elements differ only in the sign of zero, ...)`` (exact, values equal),
        ``equivalent within <tolerance>``, ``nothing compared`` or ``DIFFER``."""
        if not self.ok:
            return "DIFFER"
        if not self.batches:
            return "nothing compared"
        if not self.exact:
            return f"equivalent within {self.tolerance}"
        if self.signed_zeros or self.nan_payloads:
            return f"equal, not bit-identical ({not_identical_words(self.signed_zeros, self.nan_payloads)})"
        return "bit-identical"

    def summary(self) -> str:
        """A few lines: verdict, counts, worst difference and where."""
        bad = len({m.batch for m in self.mismatches})
        lines = [
            f"pipelines {self.verdict}: {self.batches} batches compared, "
            f"{bad} with mismatches ({len(self.mismatches)} mismatches); {self.tensors} tensors, "
            f"{self.elements} elements, {self.bytes} bytes in {self.seconds:.2f} s",
            f"tolerance: {self.tolerance}",
        ]
        if self.not_identical_location is not None:
            lines.append(
                f"equal but not bit-identical: {self.signed_zeros + self.nan_payloads} element(s), the first "
                f"at {self.not_identical_location}"
            )
        if self.worst_abs_location is None:
            lines.append("worst difference: none (all equal)")
        else:
            lines.append(f"worst absolute difference: {self.worst_abs_diff} at {self.worst_abs_location}")
            lines.append(f"worst relative difference: {self.worst_rel_diff} at {self.worst_rel_location}")
        if self.count_mismatch:
            lines.append(f"batch count mismatch: {self.count_mismatch}")
        if self.stopped_early:
            lines.append(f"stopped early: {self.stopped_early}")
        return "\n".join(lines)

    def failure_text(self, max_shown: int | None = 10) -> str:
        """The summary followed by the mismatches in full.

        Args:
            max_shown: mismatches written in full (``None``: all); the rest are counted in a
                closing ``... and N more`` line.
        """
        shown = self.mismatches if max_shown is None else self.mismatches[:max_shown]
        parts = [self.summary()] + [f"[{i + 1}/{len(self.mismatches)}] {m}" for i, m in enumerate(shown)]
        if len(self.mismatches) > len(shown):
            parts.append(
                f"... and {len(self.mismatches) - len(shown)} more mismatch(es) not shown "
                "(report.mismatches has them all)"
            )
        return "\n\n".join(parts)

    def assert_ok(self) -> None:
        """Raise ``AssertionError`` with :meth:`failure_text` unless :attr:`ok`."""
        __tracebackhide__ = True
        if not self.ok:
            raise AssertionError(self.failure_text())

    def __str__(self) -> str:
        return self.summary() if self.ok else self.failure_text()


def _columns(batch: Any, column_names: Sequence[str] | None, number: int) -> Any:
    """Return a function path[0] -> column label for this batch, or None for a batch without columns."""
    if isinstance(batch, collections.abc.Mapping):
        return lambda key: key
    if isinstance(batch, collections.abc.Sequence) and not isinstance(batch, (str, bytes)):
        if column_names is None:
            return lambda i: i
        if len(column_names) != len(batch):
            raise ValueError(
                f"column_names has {len(column_names)} names {list(column_names)!r} but batch {number} of "
                f"pipeline b has {len(batch)} columns"
            )
        return lambda i: column_names[i]
    return None


def _epochs(obj: Any, num_epochs: int | None, side: str) -> Iterable:
    """The batches of ``obj`` over ``num_epochs`` epochs, whatever kind of pipeline it is."""
    if num_epochs is not None and (isinstance(num_epochs, bool) or not isinstance(num_epochs, int) or num_epochs < 1):
        raise ValueError(f"num_epochs must be an int >= 1 or None, got {num_epochs!r}")
    epochs = 1 if num_epochs is None else num_epochs
    if callable(getattr(obj, "iter_batches", None)):  # adapters.TorchLoaderDataset: torch's nested batches
        return obj.iter_batches(epochs, output_numpy=True)
    if callable(getattr(obj, "create_tuple_iterator", None)):  # any other MindSpore dataset: rows of columns
        return dataset_rows(obj, epochs)
    if num_epochs is None:
        return obj
    # Not `iter(obj) is obj`: iter() on a DataLoader starts an epoch (draws its seeds from torch's stream).
    if isinstance(obj, collections.abc.Iterator):
        if num_epochs == 1:
            return obj
        raise ValueError(
            f"pipeline {side} is an iterator ({type(obj).__name__}), which can be walked only once; "
            f"num_epochs={num_epochs} needs a re-iterable pipeline (a DataLoader, a dataset, a list)"
        )
    return loader_epochs(obj, epochs)


def loader_epochs(loader: Iterable, epochs: int, before_epoch: Callable[[int], None] | None = None):
    """``for epoch in range(epochs): for batch in loader`` — a torch training loop's walk, as one generator.

    Args:
        loader: a re-iterable pipeline (a torch DataLoader, a list of batches, ...).
        epochs: epochs to walk (one ``iter(loader)`` each).
        before_epoch: called with the epoch number before its ``iter()`` (e.g. ``sampler.set_epoch``).

    Example:
        >>> list(loader_epochs([1, 2], 2))
        [1, 2, 1, 2]
    """
    for epoch in range(epochs):
        if before_epoch is not None:
            before_epoch(epoch)
        # torch forks its workers at iter(): a forked worker may run the cyclic collector on garbage
        # it inherited (an earlier MindSpore iterator) and finalise it there; collect it here first.
        gc.collect()
        yield from loader


def dataset_rows(ds: Any, epochs: int):
    """The rows (lists of numpy columns) of a MindSpore dataset over ``epochs``, one iterator for all."""
    it = ds.create_tuple_iterator(num_epochs=epochs, output_numpy=True)
    for _ in range(epochs):
        yield from it


class _Timed:
    """An iterator that adds up the time spent producing its items."""

    def __init__(self, iterable: Iterable) -> None:
        self.it, self.seconds = iter(iterable), 0.0

    def next(self) -> Any:
        start = time.perf_counter()
        try:
            return next(self.it, _END)
        finally:
            self.seconds += time.perf_counter() - start


def _check_limits(max_batches: int | None, max_mismatches: int | None, tolerance: str) -> None:
    for name, value in (("max_batches", max_batches), ("max_mismatches", max_mismatches)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ValueError(f"{name} must be an int >= 0 or None, got {value!r}")
    if tolerance not in ("exact", "default"):
        raise ValueError(f"tolerance must be 'exact' or 'default', got {tolerance!r}")


@dataclasses.dataclass
class _Tally:
    """compare_pipelines' running totals over the batches compared so far."""

    batches_per_epoch: int | None
    mismatches: list[BatchMismatch] = dataclasses.field(default_factory=list)
    tensors: int = 0
    elements: int = 0
    nbytes: int = 0
    worst_abs: tuple = (0, None)
    worst_rel: tuple = (0.0, None)
    signed_zeros: int = 0
    nan_payloads: int = 0
    not_identical: str | None = None

    def _where(self, n: int, path: tuple, label: Any, index: Any = None, mismatch: Mismatch | None = None):
        """Batch ``n``'s location of ``path`` (its first element named by ``label``, when batches have columns)."""
        column, rest = (label(path[0]), path[1:]) if label and path else (None, path)
        if mismatch is not None:
            return BatchMismatch(n, column, dataclasses.replace(mismatch, path=rest), self.batches_per_epoch)
        return BatchMismatch(
            n, column, Mismatch(path=rest, kind="", message="", abs_index=index), self.batches_per_epoch
        )

    def add(self, n: int, result: Any, label: Any) -> None:
        """Count batch ``n``'s comparison ``result``."""
        self.mismatches += [self._where(n, m.path, label, mismatch=m) for m in result.mismatches]
        self.tensors += result.tensors
        self.elements += result.elements
        self.nbytes += result.bytes
        if (result.signed_zeros or result.nan_payloads) and self.not_identical is None:
            self.not_identical = self._where(n, result.not_identical_path, label, result.not_identical_index).location
        self.signed_zeros += result.signed_zeros
        self.nan_payloads += result.nan_payloads
        for attr in ("abs", "rel"):
            current = getattr(self, f"worst_{attr}")
            value, path = getattr(result, f"worst_{attr}_diff"), getattr(result, f"worst_{attr}_path")
            if path is not None and (current[1] is None or is_worse(value, current[0])):
                where = self._where(n, path, label, getattr(result, f"worst_{attr}_index"))
                setattr(self, f"worst_{attr}", (value, where.location))


def compare_pipelines(
    a: Any,
    b: Any,
    *,
    num_epochs: int | None = None,
    max_batches: int | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    tolerance: str = "exact",
    equal_nan: bool = False,
    check_dtype: bool = True,
    column_names: Sequence[str] | None = None,
    progress: bool = True,
    total: int | None = None,
    max_mismatches: int | None = None,
    allow_empty: bool = False,
    batches_per_epoch: int | None = None,
    first_batch: int = 0,
) -> PipelineReport:
    """Walk two pipelines in lock step and compare each pair of batches with :func:`~porting.compare`.

    ``a`` plays ``actual`` and ``b`` ``expected`` (e.g. a MindSpore dataset vs a torch DataLoader).
    Batches may be dicts (columns by key), lists/tuples (columns by position, or named by
    ``column_names``) or single tensors; only one batch per side is held at a time.

    The default is an **exact** comparison (``rtol = atol = 0``, dtypes checked): data pipelines
    compute the same thing on both sides, so only an exact match earns the verdict
    ``bit-identical``. Pass ``rtol`` and ``atol`` for "equivalent within" a tolerance, or
    ``tolerance="default"`` for torch's per-dtype defaults (``assert_close``'s table).

    Args:
        a: the pipeline under test: an ``adapters.TorchLoaderDataset`` (walked with
            ``iter_batches``, so batches are nested like torch's), any other MindSpore dataset
            (rows as lists of columns), a DataLoader, or any iterable of batches.
        b: the reference pipeline (a torch ``DataLoader``...), same kinds.
        num_epochs: epochs to walk on each side: a dataset or DataLoader is iterated once per epoch
            (``iter()`` each time, as a training loop does); ``None`` walks an iterable as it is and a
            dataset for one epoch.
        max_batches: compare at most this many batches (then neither side is read further).
        rtol: relative tolerance; give both or neither (torch's rule).
        atol: absolute tolerance.
        tolerance: without ``rtol``/``atol``: ``"exact"`` (default) or ``"default"`` (torch's
            per-dtype tolerances).
        equal_nan: whether NaN matches NaN.
        check_dtype: require equal dtype names.
        column_names: names for the positions of list/tuple batches (dict batches use their keys).
        progress: show a tqdm progress bar (on stderr).
        total: expected number of batches, for the bar only (``len()`` is not called: on a
            MindSpore dataset it may run the pipeline).
        max_mismatches: stop once this many mismatches were found (said in the report).
        allow_empty: accept two pipelines that both yield no batch (otherwise an error: an empty
            comparison proves nothing).
        batches_per_epoch: epochs' length, when fixed: locations then read ``epoch 1 / batch 3 / ...``.
        first_batch: the number of the first batch compared, for locations (a walk that starts part-way,
            e.g. a resumed run's).

    Returns:
        A :class:`PipelineReport`; ``report.verdict`` in words, ``report.assert_ok()`` raises with
        the full text.

    Raises:
        ValueError: bad tolerances (only one of ``rtol``/``atol``, an unknown ``tolerance``),
            ``num_epochs``/``max_batches``/``max_mismatches`` out of range,
            ``column_names`` not matching a batch's number of columns, an iterator given with
            ``num_epochs > 1``, or both pipelines empty without ``allow_empty``.
        TypeError: a batch holds an unsupported object (named with batch, column and path).

    Example:
        >>> import numpy as np
        >>> r = compare_pipelines([[np.ones(2)]], [[np.ones(2)]], column_names=["x"], progress=False)
        >>> r.ok, r.batches, r.verdict
        (True, 1, 'bit-identical')
        >>> compare_pipelines([[np.float32(1)]], [[np.float32(1 + 2**-23)]], rtol=1e-6, atol=0,
        ...                   progress=False).verdict
        'equivalent within rtol=1e-06, atol=0'
    """
    _check_limits(max_batches, max_mismatches, tolerance)
    if resolve_tolerances(rtol, atol) is None and tolerance == "exact":  # fails before any pipeline starts
        rtol = atol = 0.0
    from tqdm import tqdm  # a declared dependency; imported here to keep `import porting` light

    options: dict[str, Any] = dict(rtol=rtol, atol=atol, equal_nan=equal_nan, check_dtype=check_dtype)
    tally = _Tally(batches_per_epoch)
    mismatches = tally.mismatches
    n = 0
    count_mismatch = stopped = None
    start = time.perf_counter()
    it_a, it_b = _Timed(_epochs(a, num_epochs, "a")), _Timed(_epochs(b, num_epochs, "b"))
    with tqdm(total=max_batches if total is None else total, disable=not progress, unit="batch",
              desc="compare_pipelines") as bar:  # fmt: skip
        while max_batches is None or n < max_batches:
            batch_a, batch_b = it_a.next(), it_b.next()
            if batch_a is _END or batch_b is _END:
                if batch_a is not batch_b:
                    short, other = ("a", "b") if batch_a is _END else ("b", "a")
                    count_mismatch = (
                        f"pipeline {short} ran out after {n} batches while pipeline {other} still yielded batch {n}"
                    )
                break
            label = _columns(batch_b, column_names, n)
            try:
                result = compare(batch_a, batch_b, **options)
            except TypeError as exc:
                raise TypeError(f"batch {n}: {exc}") from exc
            tally.add(first_batch + n, result, label)
            n += 1
            bar.update(1)
            if result.mismatches:
                bar.set_postfix(mismatches=len(mismatches), refresh=False)
            if max_mismatches is not None and len(mismatches) >= max_mismatches:
                stopped = f"max_mismatches={max_mismatches} reached after batch {n - 1}; later batches not compared"
                break
    if n == 0 and count_mismatch is None and not allow_empty and max_batches != 0:
        raise ValueError(
            "compare_pipelines: both pipelines yielded no batch, so nothing was compared (an empty comparison "
            "proves nothing); check the loaders' length and num_epochs, or pass allow_empty=True"
        )
    return PipelineReport(
        batches=n,
        mismatches=tuple(mismatches),
        count_mismatch=count_mismatch,
        stopped_early=stopped,
        tensors=tally.tensors,
        elements=tally.elements,
        bytes=tally.nbytes,
        worst_abs_diff=tally.worst_abs[0],
        worst_abs_location=tally.worst_abs[1],
        worst_rel_diff=tally.worst_rel[0],
        worst_rel_location=tally.worst_rel[1],
        seconds=time.perf_counter() - start,
        seconds_a=it_a.seconds,
        seconds_b=it_b.seconds,
        rtol=None if rtol is None else float(rtol),
        atol=None if atol is None else float(atol),
        equal_nan=bool(equal_nan),
        check_dtype=bool(check_dtype),
        signed_zeros=tally.signed_zeros,
        nan_payloads=tally.nan_payloads,
        not_identical_location=tally.not_identical,
    )


def assert_pipelines_equivalent(a: Iterable, b: Iterable, **kwargs: Any) -> PipelineReport:
    """:func:`compare_pipelines`, raising ``AssertionError`` with the full report on any difference.

    Args:
        a: the pipeline under test.
        b: the reference pipeline.
        **kwargs: as for :func:`compare_pipelines`.

    Returns:
        The report, when the pipelines are equivalent.

    Raises:
        AssertionError: any mismatch or a different number of batches.

    Example:
        >>> assert_pipelines_equivalent([{"x": 1}], [{"x": 1}], progress=False).batches
        1
    """
    __tracebackhide__ = True
    report = compare_pipelines(a, b, **kwargs)
    report.assert_ok()
    return report
