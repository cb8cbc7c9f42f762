"""``compare_pipelines``: walk two batch streams in lock step and report every difference, batch by batch."""

from __future__ import annotations

import collections.abc
import dataclasses
import time
from collections.abc import Iterable, Sequence
from typing import Any

from porting._arrays import is_worse
from porting._compare import Mismatch, compare
from porting._format import format_path

__all__ = ["BatchMismatch", "PipelineReport", "compare_pipelines", "assert_pipelines_equivalent"]

_END = object()


@dataclasses.dataclass(frozen=True)
class BatchMismatch:
    """A :class:`~porting.Mismatch` inside one batch.

    Attributes:
        batch: 0-based batch number.
        column: column label (dict key, ``column_names`` entry or position); ``None`` when the
            difference concerns the whole batch (keys, length, type).
        mismatch: the difference; its ``path`` starts below the column.
    """

    batch: int
    column: Any
    mismatch: Mismatch

    @property
    def location(self) -> str:
        """``batch 3 / column 'img' / [0, 2, 5, 1]`` (nested path and element index when there are)."""
        parts = [f"batch {self.batch}"]
        if self.column is not None:
            parts.append(f"column {self.column!r}")
        if self.mismatch.path:
            parts.append(format_path(self.mismatch.path))
        if self.mismatch.abs_index:
            parts.append(str(list(self.mismatch.abs_index)))
        return " / ".join(parts)

    def __str__(self) -> str:
        return f"{self.mismatch.message}\n\nThe failure occurred for {self.location}"


@dataclasses.dataclass(frozen=True)
class PipelineReport:
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

    @property
    def ok(self) -> bool:
        """True when every batch matched and both pipelines had the same number of batches."""
        return not self.mismatches and self.count_mismatch is None

    def summary(self) -> str:
        """A few lines: verdict, counts, worst difference and where."""
        bad = len({m.batch for m in self.mismatches})
        lines = [
            f"pipelines {'equivalent' if self.ok else 'DIFFER'}: {self.batches} batches compared, "
            f"{bad} with mismatches ({len(self.mismatches)} mismatches); {self.tensors} tensors, "
            f"{self.elements} elements, {self.bytes} bytes in {self.seconds:.2f} s",
        ]
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

    def failure_text(self) -> str:
        """The summary followed by every mismatch in full."""
        parts = [self.summary()] + [f"[{i + 1}/{len(self.mismatches)}] {m}" for i, m in enumerate(self.mismatches)]
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


def compare_pipelines(
    a: Iterable,
    b: Iterable,
    *,
    max_batches: int | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    equal_nan: bool = False,
    check_dtype: bool = True,
    column_names: Sequence[str] | None = None,
    progress: bool = True,
    total: int | None = None,
    max_mismatches: int | None = None,
) -> PipelineReport:
    """Walk two iterables of batches in lock step and compare each pair with :func:`~porting.compare`.

    ``a`` plays ``actual`` and ``b`` ``expected`` (e.g. a MindSpore iterator vs a torch DataLoader).
    Batches may be dicts (columns by key), lists/tuples (columns by position, or named by
    ``column_names``) or single tensors; only one batch per side is held at a time.

    Args:
        a: the pipeline under test (a MindSpore ``create_tuple_iterator()``/``create_dict_iterator()``...).
        b: the reference pipeline (a torch DataLoader...).
        max_batches: compare at most this many batches (then neither side is read further).
        rtol: relative tolerance (with ``atol``, or neither for per-dtype defaults).
        atol: absolute tolerance.
        equal_nan: whether NaN matches NaN.
        check_dtype: require equal dtype names.
        column_names: names for the positions of list/tuple batches (dict batches use their keys).
        progress: show a tqdm progress bar (on stderr).
        total: expected number of batches, for the bar only (``len()`` is not called: on a
            MindSpore dataset it may run the pipeline).
        max_mismatches: stop once this many mismatches were found (said in the report).

    Returns:
        A :class:`PipelineReport`; ``report.assert_ok()`` raises with the full text.

    Raises:
        ValueError: bad tolerances, ``max_batches``/``max_mismatches`` < 0, or ``column_names`` not
            matching a batch's number of columns.
        TypeError: a batch holds an unsupported object (named with batch, column and path).

    Example:
        >>> import numpy as np
        >>> r = compare_pipelines([[np.ones(2)]], [[np.ones(2)]], column_names=["x"], progress=False)
        >>> r.ok, r.batches
        (True, 1)
    """
    for name, value in (("max_batches", max_batches), ("max_mismatches", max_mismatches)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ValueError(f"{name} must be an int >= 0 or None, got {value!r}")
    from tqdm import tqdm  # a declared dependency; imported here to keep `import porting` light

    options = dict(rtol=rtol, atol=atol, equal_nan=equal_nan, check_dtype=check_dtype)
    mismatches: list[BatchMismatch] = []
    tensors = elements = nbytes = n = 0
    worst_abs: tuple = (0, None)
    worst_rel: tuple = (0.0, None)
    count_mismatch = stopped = None
    start = time.perf_counter()
    it_a, it_b = iter(a), iter(b)
    with tqdm(total=max_batches if total is None else total, disable=not progress, unit="batch",
              desc="compare_pipelines") as bar:  # fmt: skip
        while max_batches is None or n < max_batches:
            batch_a, batch_b = next(it_a, _END), next(it_b, _END)
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
            for m in result.mismatches:
                column, rest = (label(m.path[0]), m.path[1:]) if label and m.path else (None, m.path)
                mismatches.append(BatchMismatch(n, column, dataclasses.replace(m, path=rest)))
            tensors, elements, nbytes = tensors + result.tensors, elements + result.elements, nbytes + result.bytes
            for attr, current in (("abs", worst_abs), ("rel", worst_rel)):
                value, path = getattr(result, f"worst_{attr}_diff"), getattr(result, f"worst_{attr}_path")
                if path is not None and (current[1] is None or is_worse(value, current[0])):
                    index = getattr(result, f"worst_{attr}_index")
                    column, rest = (label(path[0]), path[1:]) if label and path else (None, path)
                    where = BatchMismatch(n, column, Mismatch(path=rest, kind="", message="", abs_index=index))
                    if attr == "abs":
                        worst_abs = (value, where.location)
                    else:
                        worst_rel = (value, where.location)
            n += 1
            bar.update(1)
            if result.mismatches:
                bar.set_postfix(mismatches=len(mismatches), refresh=False)
            if max_mismatches is not None and len(mismatches) >= max_mismatches:
                stopped = f"max_mismatches={max_mismatches} reached after batch {n - 1}; later batches not compared"
                break
    return PipelineReport(
        batches=n,
        mismatches=tuple(mismatches),
        count_mismatch=count_mismatch,
        stopped_early=stopped,
        tensors=tensors,
        elements=elements,
        bytes=nbytes,
        worst_abs_diff=worst_abs[0],
        worst_abs_location=worst_abs[1],
        worst_rel_diff=worst_rel[0],
        worst_rel_location=worst_rel[1],
        seconds=time.perf_counter() - start,
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
