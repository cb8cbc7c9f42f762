"""``compare`` / ``assert_equivalent``: one walk over two nested structures of tensors, in any framework mix.

Semantics (``torch.testing.assert_close`` where torch has a rule):

* Containers: any ``Mapping`` with any ``Mapping`` (same key set; missing/extra keys are listed, the
  common keys are still compared), any ``Sequence`` with any ``Sequence`` (list, tuple, namedtuple
  mix freely, as in torch; lengths must match). str/bytes are leaves, not sequences.
* Tensor-likes: torch tensors, mindspore Tensors, numpy arrays and numpy scalars compare with each
  other in any mix; they are converted to numpy first (torch ``.detach().cpu().numpy()``, bf16 via
  float32; mindspore ``.asnumpy()``). Shape must match. With ``check_dtype`` the dtypes must have the
  same name (``torch.float32`` == ``numpy.float32`` == ``mindspore.float32``); without it both are
  promoted like ``torch.promote_types``. numpy scalars keep their dtype (torch turns them into
  python numbers; a float32-vs-float64 drift is exactly what a port must catch).
* Python numbers with python numbers: as torch's ``NumberPair``: with ``check_dtype`` their types
  (bool/int/float/complex) must be the same; tolerances from int64/float64/complex128.
* A python number with a tensor-like (torch has no rule, it raises TypeError): the number becomes a
  0-d array of torch's dtype for its type (bool, int64, float64, complex128), then the tensor rules
  apply: the other side must be 0-d, and with ``check_dtype`` of that dtype.
* Strings/bytes compare exactly; a numpy string array matches a list of str element by element.
* None matches only None.

Values: equal, or ``|actual - expected| <= atol + rtol * |expected|`` (``torch.isclose``, computed op
for op like torch, so float16/bfloat16 decisions match torch's bit for bit). NaN matches NaN only
with ``equal_nan``; inf matches only inf of the same sign. Default ``(rtol, atol)`` per dtype, the
loosest of the two sides (torch's table):

=============  ==========  ==========
dtype          rtol        atol
=============  ==========  ==========
float16        1e-3        1e-5
bfloat16       1.6e-2      1e-5
float32        1.3e-6      1e-5
float64        1e-7        1e-7
complex32      1e-3        1e-5
complex64      1.3e-6      1e-5
complex128     1e-7        1e-7
other          0           0
=============  ==========  ==========

Integers and bools are therefore exact by default; caller-given tolerances apply to every numeric
dtype (as in torch), with ``|a - e|`` taken exactly (torch takes it in the input dtype and wraps
around for uint8, and in int64 for 64-bit extremes). uint64 meeting a signed integer dtype (with
``check_dtype=False``) is a dtype mismatch: no integer dtype holds both, and torch's int64 upcast
would call ``2**64 - 1`` and ``-1`` equal.

Equal is not always identical: ``-0.0 == 0.0``, and NaN payloads differ under ``equal_nan``. Such
elements pass (as in torch) and are counted in ``signed_zeros`` / ``nan_payloads``, so that a report
says "bit-identical" only when the bits are.
"""

from __future__ import annotations

import cmath
import dataclasses
import math
import struct
from typing import Any, TypeGuard

import numpy as np

from porting.harness._arrays import diff_arrays, is_worse
from porting.harness._dtypes import promote, storage_rounder
from porting.harness._format import (
    attribute_message,
    format_location,
    format_path,
    keys_message,
    length_message,
    scalar_message,
    text_array_message,
    text_message,
    values_message,
)
from porting.harness._leaves import MAPPING, SEQUENCE, Leaf, classify, number_as_array
from porting.harness._tolerances import default_tolerances, resolve_tolerances
from torch2ms_base._report import Report

__all__ = ["Mismatch", "Comparison", "compare", "assert_equivalent"]


@dataclasses.dataclass(frozen=True)
class Mismatch:
    """One difference found by :func:`compare`.

    Attributes:
        path: keys / indices from the root to the item (torch's ``id``), e.g. ``('targets', 3)``.
        kind: one of ``type``, ``keys``, ``length``, ``shape``, ``dtype``, ``values``, ``string``, ``none``.
        message: the assert_close-style text (without the location line).
        mismatched, numel: mismatching / total elements (``values`` and ``string`` arrays).
        abs_diff, abs_index, rel_diff, rel_index: greatest differences among the mismatching
            elements and where (index ``()`` for 0-d; for string arrays ``abs_index`` is the first
            mismatching element).
        rtol, atol: the tolerances that applied.
        missing_keys, extra_keys: for ``keys``: keys only in ``expected`` / only in ``actual``.
    """

    path: tuple
    kind: str
    message: str
    mismatched: int | None = None
    numel: int | None = None
    abs_diff: float | int | None = None
    abs_index: tuple[int, ...] | None = None
    rel_diff: float | None = None
    rel_index: tuple[int, ...] | None = None
    rtol: float | None = None
    atol: float | None = None
    missing_keys: tuple = ()
    extra_keys: tuple = ()

    @property
    def where(self) -> str:
        """The path as torch prints it: ``['targets'][3]`` (empty at the top level)."""
        return format_path(self.path)

    @property
    def location(self) -> str:
        """Path and element index: ``['img'] / [0, 2, 5, 1]``."""
        return format_location(self.path, self.abs_index)

    def __str__(self) -> str:
        return self.message + (f"\n\nThe failure occurred for item {self.where}" if self.path else "")


@dataclasses.dataclass(frozen=True)
class Comparison(Report):
    """What :func:`compare` found.

    Attributes:
        mismatches: every difference, in walk order (empty when equivalent).
        tensors: tensor-likes compared (torch / mindspore / numpy arrays and numpy scalars).
        elements: their elements plus python numbers compared.
        bytes: bytes of the ``actual`` side's tensor-likes (as numpy arrays) that were compared.
        worst_abs_diff, worst_abs_path, worst_abs_index: largest ``|actual - expected|`` over all
            compared elements (including those within tolerance), and where; path ``None`` if all equal.
        worst_rel_diff, worst_rel_path, worst_rel_index: the same for ``|actual - expected| / |expected|``.
        signed_zeros, nan_payloads: float elements that passed but are not bit-identical: equal values
            of different sign (``-0.0`` / ``0.0``), or NaN on both sides with different bits (``equal_nan``).
        not_identical_path, not_identical_index: where the first of those is (path ``None`` if none).
    """

    mismatches: tuple[Mismatch, ...] = ()
    tensors: int = 0
    elements: int = 0
    bytes: int = 0
    worst_abs_diff: float | int = 0
    worst_abs_path: tuple | None = None
    worst_abs_index: tuple[int, ...] | None = None
    worst_rel_diff: float = 0.0
    worst_rel_path: tuple | None = None
    worst_rel_index: tuple[int, ...] | None = None
    signed_zeros: int = 0
    nan_payloads: int = 0
    not_identical_path: tuple | None = None
    not_identical_index: tuple[int, ...] | None = None

    @property
    def ok(self) -> bool:
        """True when no mismatch was found."""
        return not self.mismatches

    @property
    def identical(self) -> bool:
        """No mismatch and no element that differs only in the sign of zero or its NaN payload."""
        return self.ok and not (self.signed_zeros or self.nan_payloads)

    @property
    def verdict(self) -> str:
        """``equivalent`` (every compared element within the tolerance) or ``MISMATCH``."""
        return "equivalent" if self.ok else f"MISMATCH ({len(self.mismatches)})"

    def summary(self) -> str:
        """One line: what was compared and the worst difference seen."""
        line = f"compared {self.tensors} tensors ({self.elements} elements, {self.bytes} bytes)"
        if self.signed_zeros or self.nan_payloads:
            line += (
                f"; {self.signed_zeros + self.nan_payloads} element(s) equal but not bit-identical "
                f"({not_identical_words(self.signed_zeros, self.nan_payloads)}), the first at "
                f"{format_location(self.not_identical_path, self.not_identical_index) or 'the top level'}"
            )
        if self.worst_abs_path is None:
            return line + "; all equal"
        return (
            f"{line}; worst absolute difference {self.worst_abs_diff} at "
            f"{format_location(self.worst_abs_path, self.worst_abs_index) or 'the top level'}, "
            f"worst relative difference {self.worst_rel_diff} at "
            f"{format_location(self.worst_rel_path, self.worst_rel_index) or 'the top level'}"
        )

    def failure_text(self, max_shown: int | None = 20) -> str:
        """The failure text: the first mismatch as assert_close words it, then the others.

        Args:
            max_shown: mismatches written in full (``None``: all); the rest are counted in a
                closing ``... and N more mismatch(es)`` line.
        """
        if self.ok:
            return ""
        shown = self.mismatches if max_shown is None else self.mismatches[: max(1, max_shown)]
        text = str(shown[0])
        if len(shown) > 1:
            rest = "\n\n".join(str(m) for m in shown[1:])
            text += f"\n\n--- {len(self.mismatches) - 1} more mismatch(es) ---\n\n{rest}"
        if len(self.mismatches) > len(shown):
            text += f"\n\n... and {len(self.mismatches) - len(shown)} more mismatch(es) not shown"
        return text

    def assert_ok(self) -> None:
        """Raise ``AssertionError`` with :meth:`failure_text` if anything mismatched."""
        __tracebackhide__ = True
        if not self.ok:
            raise AssertionError(self.failure_text())

    def __str__(self) -> str:
        return self.summary() if self.ok else self.failure_text()


def not_identical_words(signed_zeros: int, nan_payloads: int) -> str:
    """``1 element differs only in the sign of zero, 2 only in their NaN payload`` (empty parts left out).

    Example:
        >>> not_identical_words(2, 1)
        '2 elements differ only in the sign of zero, 1 only in its NaN payload'
    """
    parts, subject = [], True
    for count, what in ((signed_zeros, "the sign of zero"), (nan_payloads, "NaN payload")):
        if not count:
            continue
        noun = ("element differs" if count == 1 else "elements differ") if subject else ""
        if what == "NaN payload":
            what = f"{'its' if count == 1 else 'their'} NaN payload"
        parts.append(f"{count} {noun} only in {what}".replace("  ", " "))
        subject = False
    return ", ".join(parts)


def _float_bits(x: float | complex) -> bytes:
    if isinstance(x, complex):
        return struct.pack("<dd", x.real, x.imag)
    return struct.pack("<d", x)


def _nan_hint(count: int) -> str:
    # NaN != NaN is the IEEE rule and torch's default; a port that produces NaN in the same places
    # usually wants to know that this alone is the difference.
    return f"\n{count} element(s) are NaN on both sides at the same index; NaN equals NaN only with equal_nan=True"


def _is_text_array(leaf: Any) -> TypeGuard[Leaf]:
    return isinstance(leaf, Leaf) and leaf.kind == "array" and leaf.value.dtype.kind in "US"


class _Walker:
    """Walks two structures once, collecting mismatches and counters."""

    def __init__(self, *, rtol: float | None, atol: float | None, equal_nan: bool, check_dtype: bool) -> None:
        self.tolerances = resolve_tolerances(rtol, atol)
        self.equal_nan = bool(equal_nan)
        self.check_dtype = bool(check_dtype)
        self.mismatches: list[Mismatch] = []
        self.tensors = self.elements = self.bytes = 0
        self.worst_abs: tuple = (0, None, None)
        self.worst_rel: tuple = (0.0, None, None)
        self.signed_zeros = self.nan_payloads = 0
        self.not_identical: tuple = (None, None)

    def _note_not_identical(self, zeros: int, nans: int, path: tuple, index: tuple | None) -> None:
        if (zeros or nans) and not (self.signed_zeros or self.nan_payloads):
            self.not_identical = (path, index)
        self.signed_zeros += zeros
        self.nan_payloads += nans

    def result(self) -> Comparison:
        return Comparison(
            mismatches=tuple(self.mismatches),
            tensors=self.tensors,
            elements=self.elements,
            bytes=self.bytes,
            worst_abs_diff=self.worst_abs[0],
            worst_abs_path=self.worst_abs[1],
            worst_abs_index=self.worst_abs[2],
            worst_rel_diff=self.worst_rel[0],
            worst_rel_path=self.worst_rel[1],
            worst_rel_index=self.worst_rel[2],
            signed_zeros=self.signed_zeros,
            nan_payloads=self.nan_payloads,
            not_identical_path=self.not_identical[0],
            not_identical_index=self.not_identical[1],
        )

    def _note_worst(self, abs_diff: Any, abs_index: Any, rel_diff: Any, rel_index: Any, path: tuple) -> None:
        if abs_diff and (self.worst_abs[1] is None or is_worse(abs_diff, self.worst_abs[0])):
            self.worst_abs = (abs_diff, path, abs_index)
        if rel_diff and (self.worst_rel[1] is None or is_worse(rel_diff, self.worst_rel[0])):
            self.worst_rel = (rel_diff, path, rel_index)

    def _fail(self, path: tuple, kind: str, message: str, **figures: Any) -> None:
        self.mismatches.append(Mismatch(path=path, kind=kind, message=message, **figures))

    def walk(self, actual: Any, expected: Any, path: tuple) -> None:
        where = f"item {format_path(path)}" if path else "the top level"
        a, e = classify(actual, where), classify(expected, where)
        # A numpy string array meets a list of str (what torch's collate makes of strings) element-wise.
        if _is_text_array(a) and a.value.ndim and e == SEQUENCE:
            actual, a = a.value.tolist(), SEQUENCE
        if _is_text_array(e) and e.value.ndim and a == SEQUENCE:
            expected, e = e.value.tolist(), SEQUENCE
        if a == MAPPING and e == MAPPING:
            self._mapping(actual, expected, path)
        elif a == SEQUENCE and e == SEQUENCE:
            self._sequence(actual, expected, path)
        elif isinstance(a, Leaf) and isinstance(e, Leaf):
            self._leaf(a, e, actual, expected, path)
        else:
            self._fail(path, "type", f"The types do not match: {type(actual)} != {type(expected)}.")

    def _mapping(self, actual: Any, expected: Any, path: tuple) -> None:
        a_keys, e_keys = set(actual.keys()), set(expected.keys())
        if a_keys != e_keys:
            missing, extra = e_keys - a_keys, a_keys - e_keys
            self._fail(
                path,
                "keys",
                keys_message(missing, extra),
                missing_keys=tuple(k for k in expected if k in missing),
                extra_keys=tuple(k for k in actual if k in extra),
            )
        for key in actual:  # the actual mapping's order: a dataset's column order
            if key in e_keys:
                self.walk(actual[key], expected[key], (*path, key))

    def _sequence(self, actual: Any, expected: Any, path: tuple) -> None:
        if len(actual) != len(expected):
            # No element-wise walk: which items correspond is unknown once one is missing.
            self._fail(path, "length", length_message(len(actual), len(expected)))
            return
        for i, (x, y) in enumerate(zip(actual, expected, strict=True)):
            self.walk(x, y, (*path, i))

    def _leaf(self, a: Leaf, e: Leaf, actual: Any, expected: Any, path: tuple) -> None:
        # 0-d string arrays are strings.
        if _is_text_array(a) and not a.value.ndim:
            a = Leaf("str" if a.value.dtype.kind == "U" else "bytes", a.value.item())
        if _is_text_array(e) and not e.value.ndim:
            e = Leaf("str" if e.value.dtype.kind == "U" else "bytes", e.value.item())
        if a.kind == "none" or e.kind == "none":
            if a.kind != e.kind:
                self._fail(path, "none", f"None mismatch: {a.value!r} is not {e.value!r}")
        elif a.kind in ("str", "bytes") or e.kind in ("str", "bytes"):
            if a.kind != e.kind:
                self._fail(path, "type", f"The types do not match: {type(actual)} != {type(expected)}.")
            elif a.value != e.value:
                self._fail(path, "string", text_message(a.value, e.value))
        elif a.kind == "number" and e.kind == "number":
            self._numbers(a.value, e.value, path)
        else:
            where = f"item {format_path(path)}" if path else "the top level"
            a = number_as_array(a, where) if a.kind == "number" else a
            e = number_as_array(e, where) if e.kind == "number" else e
            self._arrays(a, e, path)

    def _numbers(self, a: Any, e: Any, path: tuple) -> None:
        self.elements += 1
        if isinstance(a, bool) and isinstance(e, bool):  # torch's BooleanPair
            if a is not e:
                rel = math.inf if not e else 1.0
                self._note_worst(1, (), rel, (), path)
                figures = dict(abs_diff=1, abs_index=(), rel_diff=rel, rel_index=(), rtol=0.0, atol=0.0)
                self._fail(path, "values", f"Booleans mismatch: {a} is not {e}", mismatched=1, numel=1, **figures)
            return
        if self.check_dtype and type(a) is not type(e):
            self._fail(path, "dtype", f"The (d)types do not match: {type(a)} != {type(e)}.")
            return
        dtypes = [{int: "int64", float: "float64", complex: "complex128"}.get(type(x), "bool") for x in (a, e)]
        rtol, atol = self.tolerances or default_tolerances(*dtypes)
        both_nan = (
            self.equal_nan
            and isinstance(a, (float, complex))
            and isinstance(e, (float, complex))
            and cmath.isnan(a)
            and cmath.isnan(e)
        )
        if a == e or both_nan:
            if (
                isinstance(a, (float, complex))
                and isinstance(e, (float, complex))
                and type(a) is type(e)
                and _float_bits(a) != _float_bits(e)
            ):
                self._note_not_identical(0 if both_nan else 1, 1 if both_nan else 0, path, ())
            return
        abs_diff = abs(a - e)
        rel_diff = math.inf if e == 0 else abs_diff / abs(e)
        self._note_worst(abs_diff, (), rel_diff, (), path)
        if cmath.isfinite(abs_diff) and abs_diff <= atol + rtol * abs(e):
            return
        message = scalar_message(a, e, abs_diff=abs_diff, rel_diff=rel_diff, rtol=rtol, atol=atol)
        if cmath.isnan(a) and cmath.isnan(e):
            message += _nan_hint(1)
        figures = dict(abs_diff=abs_diff, abs_index=(), rel_diff=rel_diff, rel_index=(), rtol=rtol, atol=atol)
        self._fail(path, "values", message, mismatched=1, numel=1, **figures)

    def _arrays(self, a: Leaf, e: Leaf, path: tuple) -> None:
        x, y = a.value, e.value
        self.tensors += 1
        self.elements += int(x.size)
        self.bytes += int(x.nbytes)
        if x.shape != y.shape:
            self._fail(path, "shape", attribute_message("shape", tuple(x.shape), tuple(y.shape)))
            return
        text_a, text_b = x.dtype.kind in "US", y.dtype.kind in "US"
        if text_a or text_b:
            if not (text_a and text_b) or (self.check_dtype and x.dtype.kind != y.dtype.kind):
                self._fail(path, "dtype", attribute_message("dtype", a.describe_dtype(), e.describe_dtype()))
            else:
                self._text_arrays(x, y, path)
            return
        if self.check_dtype and a.dtype != e.dtype:
            self._fail(path, "dtype", attribute_message("dtype", a.describe_dtype(), e.describe_dtype()))
            return
        if a.dtype != e.dtype and {x.dtype.kind, y.dtype.kind} == {"u", "i"} and "uint64" in (a.dtype, e.dtype):
            self._fail(path, "dtype", attribute_message("dtype", a.describe_dtype(), e.describe_dtype())
                       + " With check_dtype=False they would be promoted, but no integer dtype holds both uint64 and a "
                         "signed integer dtype exactly (torch's int64 upcast wraps values above 2**63 - 1); cast one "
                         "side yourself.")  # fmt: skip
            return
        rtol, atol = self.tolerances or default_tolerances(a.dtype, e.dtype)
        common = promote(a.dtype, e.dtype)
        x, y = _cast(x, a.dtype, common), _cast(y, e.dtype, common)
        diff = diff_arrays(x, y, rtol=rtol, atol=atol, equal_nan=self.equal_nan, dtype=common)
        self._note_worst(diff.worst_abs, diff.worst_abs_index, diff.worst_rel, diff.worst_rel_index, path)
        if not diff.mismatched:
            self._note_not_identical(diff.signed_zeros, diff.nan_payloads, path, diff.not_identical_index)
            return
        if x.ndim == 0:  # torch words 0-d tensors as scalars, figures from .item()
            ai, ei = x.item(), y.item()
            abs_diff = abs(ai - ei)
            rel_diff = math.inf if ei == 0 else abs_diff / abs(ei)
            message = scalar_message(ai, ei, abs_diff=abs_diff, rel_diff=rel_diff, rtol=rtol, atol=atol)
        else:
            abs_diff, rel_diff = diff.abs_diff, diff.rel_diff
            message = values_message(
                mismatched=diff.mismatched,
                numel=diff.numel,
                rtol=rtol,
                atol=atol,
                abs_diff=abs_diff,
                abs_index=diff.abs_index,
                rel_diff=rel_diff,
                rel_index=diff.rel_index,
            )
        if not self.equal_nan and x.dtype.kind in "fc":
            shared = int(np.count_nonzero(np.isnan(x) & np.isnan(y)))
            if shared:
                message += _nan_hint(shared)
        self._fail(
            path,
            "values",
            message,
            mismatched=diff.mismatched,
            numel=diff.numel,
            abs_diff=abs_diff,
            abs_index=diff.abs_index,
            rel_diff=rel_diff,
            rel_index=diff.rel_index,
            rtol=rtol,
            atol=atol,
        )

    def _text_arrays(self, x: np.ndarray, y: np.ndarray, path: tuple) -> None:
        equal = np.equal(x, y) if x.dtype.kind == y.dtype.kind else np.zeros(x.shape, dtype=bool)
        if equal.all():
            return
        first = tuple(int(i) for i in np.unravel_index(int(np.argmin(equal)), x.shape))
        mismatched = int(equal.size - np.count_nonzero(equal))
        message = text_array_message(mismatched, int(equal.size), first, x[first].item(), y[first].item())
        self._fail(path, "string", message, mismatched=mismatched, numel=int(equal.size), abs_index=first)


def _cast(x: np.ndarray, dtype: str, common: str) -> np.ndarray:
    if dtype == common:
        return x
    if common == "bfloat16":  # an integer/bool side meeting bfloat16: round its values like torch's .to()
        return storage_rounder("bfloat16")(x.astype(np.float32))
    return x.astype(common)


def compare(
    actual: Any,
    expected: Any,
    *,
    rtol: float | None = None,
    atol: float | None = None,
    equal_nan: bool = False,
    check_dtype: bool = True,
) -> Comparison:
    """Compare two nested structures of tensors / arrays / numbers / strings and report every difference.

    See the module docstring for the rules (torch.testing.assert_close's, extended to mixed
    frameworks) and the default tolerance table. Nothing is imported for torch or mindspore
    unless such objects are present.

    Args:
        actual: the value under test (e.g. the MindSpore side).
        expected: the reference value (e.g. the PyTorch side).
        rtol: relative tolerance; give both ``rtol`` and ``atol`` or neither (per-dtype defaults).
        atol: absolute tolerance.
        equal_nan: whether NaN matches NaN.
        check_dtype: require equal dtype names; if False, promote like ``torch.promote_types``.

    Returns:
        A :class:`Comparison` (``.ok``, ``.mismatches``, counters, worst difference and where).

    Raises:
        ValueError: only one of ``rtol``/``atol`` given, or a negative / non-finite one.
        TypeError: an unsupported object (named with its path and type).

    Example:
        >>> import numpy as np
        >>> r = compare({"x": np.ones(3)}, {"x": np.array([1.0, 1.0, 2.0])})
        >>> r.ok, r.mismatches[0].path, r.mismatches[0].abs_index
        (False, ('x',), (2,))
    """
    walker = _Walker(rtol=rtol, atol=atol, equal_nan=equal_nan, check_dtype=check_dtype)
    walker.walk(actual, expected, ())
    return walker.result()


def assert_equivalent(
    actual: Any,
    expected: Any,
    *,
    rtol: float | None = None,
    atol: float | None = None,
    equal_nan: bool = False,
    check_dtype: bool = True,
) -> None:
    """Raise ``AssertionError`` if ``actual`` and ``expected`` differ; a thin layer over :func:`compare`.

    The text reads like ``torch.testing.assert_close``'s (first mismatch, then ``The failure occurred
    for item [...]``), followed by every further mismatch.

    Args:
        actual: the value under test.
        expected: the reference value.
        rtol: relative tolerance (with ``atol``, or neither).
        atol: absolute tolerance.
        equal_nan: whether NaN matches NaN.
        check_dtype: require equal dtype names.

    Raises:
        AssertionError: on any difference.
        ValueError: bad tolerances.
        TypeError: an unsupported object (named with its path and type).

    Example:
        >>> import numpy as np
        >>> assert_equivalent([np.float32(1.0), "a"], [np.float32(1.0), "a"])
    """
    __tracebackhide__ = True
    compare(actual, expected, rtol=rtol, atol=atol, equal_nan=equal_nan, check_dtype=check_dtype).assert_ok()
