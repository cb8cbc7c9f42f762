"""``default_collate`` / ``default_convert`` with torch 2.13's rules, producing numpy, with errors that say where.

The rules are those of ``torch/utils/data/_utils/collate.py`` (torch 2.13), including ``torch.tensor`` /
``torch.as_tensor``'s dtype inference and ``torch.stack``'s type promotion; where torch gives a tensor we give
the numpy array with the same dtype, shape and bits. Where torch raises we raise the same exception type, with
a message that also names the batch element and the path inside the sample (``['boxes'][1]``).

Deliberate differences (each one is a case where torch is wrong or silent, never a different result):

- bfloat16 (and other dtypes numpy has no equivalent for) raise ``TypeError``: the batch cannot be numpy.
- namedtuples of different lengths in one batch raise ``RuntimeError``; torch's ``zip`` silently drops the
  extra fields.
- a list of numpy ``uint64`` scalars is collated to uint64; torch 2.13 raises ``TypeError: an integer is
  required`` for every such list (its scalar unpacking is signed-only), though it takes 0-d uint64 arrays.
- NaN bits (never values) after widening float16 (e.g. float16 and float32 arrays in one leaf): torch's CPU
  cast gives different NaN bits for short and long arrays; we keep numpy's.
- inside a list that ``torch.as_tensor`` would turn into a tensor (``[np.zeros(2), [1.0, 2.0]]``), only
  numbers are accepted, not arrays or tensors.

torch is never imported here: a torch tensor can only exist once torch is imported, so tensors are detected
through ``sys.modules``; the module works with torch uninstalled. ``torch.get_default_dtype()`` (which sets the
dtype of python floats inferred next to ints, e.g. ``[1, 2.5]`` → float32) is honoured when torch is imported.
"""

from __future__ import annotations

import collections.abc
import copy
import operator
import re
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["default_collate", "default_convert", "to_numpy"]

# Same text and pattern as torch's ``default_collate_err_msg_format`` / ``np_str_obj_array_pattern``.
_ERR_FORMAT = "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found {}"
_STR_OBJ_ARRAY = re.compile(r"[SaUO]")

# The numpy dtypes torch.as_tensor accepts, in the order its error message lists them.
_SUPPORTED = tuple(
    np.dtype(name)
    for name in (
        "float64",
        "float32",
        "float16",
        "complex64",
        "complex128",
        "int64",
        "int32",
        "int16",
        "int8",
        "uint64",
        "uint32",
        "uint16",
        "uint8",
        "bool",
    )
)
_SUPPORTED_SET = frozenset(_SUPPORTED)
_SUPPORTED_TEXT = ", ".join(d.name for d in _SUPPORTED[:-1]) + ", and bool"
_NUMPY_OF_TORCH = {f"torch.{d.name}": d for d in _SUPPORTED}
# torch promotes uint16/32/64 only with themselves and with floating types.
_BAREBONES_UNSIGNED = frozenset(np.dtype(n) for n in ("uint16", "uint32", "uint64"))
_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}
_INT64 = np.dtype("int64")
_BOOL = np.dtype("bool")
_FLOAT64 = np.dtype("float64")
_SPARSE_LAYOUTS = ("torch.sparse_coo", "torch.sparse_csr", "torch.sparse_bsr", "torch.sparse_csc", "torch.sparse_bsc")


# --------------------------------------------------------------------------- where things are


def _render(path: tuple) -> str:
    """``(('key', 'boxes'), ('index', 1), ('field', 'x'))`` → ``['boxes'][1].x``."""
    return "".join(f"[{p!r}]" if kind == "key" else f"[{p}]" if kind == "index" else f".{p}" for kind, p in path)


def _where(index: int | None, path: tuple) -> str:
    inside = f"at {_render(path)}" if path else "at the top level of the sample"
    return inside if index is None else f"batch element {index}, {inside}"


def _reraise(exc: BaseException, message: str) -> BaseException:
    """A copy of ``exc`` (same type) carrying ``message``; ``exc`` itself when its type needs other arguments."""
    try:
        return type(exc)(message)
    except Exception:  # e.g. UnicodeDecodeError wants 5 arguments: keep the original
        return exc


# --------------------------------------------------------------------------- torch interop (lazy)


def _is_tensor(x: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _numpy_dtype_of_tensor(dtype: Any, where: str) -> np.dtype:
    found = _NUMPY_OF_TORCH.get(str(dtype))
    if found is None:
        raise TypeError(
            f"a {dtype} tensor ({where}) has no numpy equivalent (numpy has no bfloat16, "
            "complex32, float8 or quantized dtypes), so it cannot become a numpy/MindSpore column; convert it "
            "in the dataset or collate_fn, e.g. tensor.float() (exact for bfloat16 and float16)"
        )
    return found


def _tensor_to_numpy(t: Any, where: str) -> np.ndarray:
    _numpy_dtype_of_tensor(t.dtype, where)
    # force=True detaches, copies to the CPU and resolves conj/neg views, so any tensor a batch may hold converts
    return t.numpy(force=True)


def _default_float_dtype() -> tuple[np.dtype, np.dtype | None]:
    """(dtype of an inferred python float, of an inferred python complex), from torch's default dtype."""
    torch = sys.modules.get("torch")
    name = "torch.float32" if torch is None else str(torch.get_default_dtype())
    pairs = {
        "torch.float32": ("float32", "complex64"),
        "torch.float64": ("float64", "complex128"),
        "torch.float16": ("float16", None),
    }
    if name not in pairs:
        raise TypeError(
            f"torch.get_default_dtype() is {name}, which numpy cannot represent; python floats in a batch "
            "would become that dtype. Use torch.set_default_dtype(torch.float32) or float64."
        )
    real, cplx = pairs[name]
    return np.dtype(real), None if cplx is None else np.dtype(cplx)


# --------------------------------------------------------------------------- dtypes


def _promote(a: np.dtype, b: np.dtype) -> np.dtype:
    """``torch.promote_types`` on numpy dtypes (what torch.stack and torch.tensor use).

    Raises:
        RuntimeError: uint16/32/64 with anything but themselves or a floating dtype, as torch.
    """
    if a == b:
        return a
    if a in _BAREBONES_UNSIGNED or b in _BAREBONES_UNSIGNED:
        if a.kind == "f":
            return a
        if b.kind == "f":
            return b
        raise RuntimeError(
            f"Promotion for uint16, uint32, uint64 types is not supported, attempted to promote {a} and {b}"
        )
    ca, cb = _CATEGORY[a.kind], _CATEGORY[b.kind]
    # Unlike numpy (int64 + float32 → float64), torch keeps the dtype of the higher category as it is.
    if ca != cb and not (ca >= 2 and cb >= 2):
        return a if ca > cb else b
    return np.promote_types(a, b)


def _result_dtype(dtypes: list[np.dtype], where: str) -> np.dtype:
    # Left to right over every element, as torch: with uint16 in the mix the order decides whether promotion
    # fails, and a dtype accepted early can fail later (uint16, float16, complex64, uint16).
    result = dtypes[0]
    for d in dtypes[1:]:
        if d == result:
            continue
        try:
            result = _promote(result, d)
        except RuntimeError as exc:
            raise RuntimeError(f"default_collate: {exc} ({where})") from None
    return result


def _checked_dtype(dtype: np.dtype, where: str) -> np.dtype:
    if dtype not in _SUPPORTED_SET and dtype.newbyteorder("=") not in _SUPPORTED_SET:
        raise TypeError(
            f"default_collate: can't convert np.ndarray of type numpy.{dtype.type.__name__} ({where}). "
            f"The only supported types are: {_SUPPORTED_TEXT}."
        )
    return dtype


def _checked_array(a: np.ndarray, where: str) -> np.ndarray:
    """The checks ``torch.as_tensor`` makes on an array (dtype, byte order, strides)."""
    _checked_dtype(a.dtype, where)
    if not a.dtype.isnative:
        raise ValueError(
            f"default_collate: the array at {where} is {a.dtype.str} (non-native byte order), which torch "
            "rejects ('Conversion between byte orders is currently not supported'); "
            "use a.astype(a.dtype.newbyteorder('='))"
        )
    if any(s < 0 for s in a.strides):
        raise ValueError(
            f"default_collate: the array at {where} has a negative stride (e.g. from a[::-1]), which torch "
            "rejects ('tensors with negative strides are not currently supported'); use np.ascontiguousarray(a)"
        )
    return np.asarray(a)  # memmap / matrix → plain ndarray, as torch.as_tensor drops the subclass


# --------------------------------------------------------------------------- numbers (torch.tensor(list))


def _everywhere(where: str) -> Callable[[int], str]:
    """A ``where_of`` naming every item of a nested list by its outer item's ``where``."""
    return lambda _: where


def _infer_dtype(items: Any, where_of: Callable[[int], str], arrays_ok: bool) -> np.dtype:
    """torch's ``infer_scalar_type`` over a list: promote left to right, stop early at complex128 (as torch)."""
    result = None
    for i, x in enumerate(items):
        where = where_of(i)
        if isinstance(x, collections.abc.Sequence) and not isinstance(x, (str, bytes)):
            d = _infer_dtype(x, _everywhere(where), arrays_ok)
        elif not arrays_ok and (isinstance(x, np.ndarray) or _is_tensor(x)):
            raise TypeError(f"default_collate: arrays or tensors nested in a list are not supported ({where})")
        else:
            d = _scalar_dtype(x, where)
        if result is None:
            result = d
        else:
            try:
                result = _promote(result, d)
            except RuntimeError as exc:
                raise RuntimeError(f"default_collate: {exc} ({where})") from None
        if result == np.complex128:
            break  # torch stops looking here, so a later None or str is only caught when the values are stored
    return _default_float_dtype()[0] if result is None else result


def _scalar_dtype(x: Any, where: str) -> np.dtype:  # noqa: C901 - torch's infer_scalar_type: a flat type dispatch
    """torch's ``infer_scalar_type`` for one number (or array, or tensor) inside a list."""
    if isinstance(x, np.generic):  # before float: np.float64 is a python float but keeps its dtype
        if isinstance(x, (np.bool_, np.number)):
            return _checked_dtype(x.dtype, where)
        raise TypeError(f"default_collate: can't convert np.ndarray of type numpy.{type(x).__name__} ({where})")
    if isinstance(x, np.ndarray):
        if _STR_OBJ_ARRAY.search(x.dtype.str):
            raise TypeError(f"{_ERR_FORMAT.format(x.dtype)} ({where})")
        return _checked_dtype(x.dtype, where)
    if isinstance(x, bool):
        return _BOOL
    if isinstance(x, int):
        return _INT64
    if isinstance(x, float):
        return _default_float_dtype()[0]
    if isinstance(x, complex):
        cplx = _default_float_dtype()[1]
        if cplx is None:
            raise TypeError(f"default_collate: python complex at {where} would become complex32, which numpy lacks")
        return cplx
    if _is_tensor(x):
        return _numpy_dtype_of_tensor(x.dtype, where)
    if isinstance(x, (str, bytes)):
        raise TypeError(f"{_ERR_FORMAT.format(type(x))} ({where}; expected a number like batch element 0)")
    raise RuntimeError(f"{_ERR_FORMAT.format(type(x))} ({where}; torch: 'Could not infer dtype of {type(x).__name__}')")


def _as_python_number(x: Any, kind: str) -> Any:
    """What torch's ``store_scalar`` unpacks from ``x`` for a tensor of this dtype kind."""
    if kind == "b":
        # torch unpacks through __index__ unless x is a bool: numpy bool arrays refuse __index__, as in torch
        return bool(x) if isinstance(x, (bool, np.bool_)) else bool(operator.index(x))
    if kind in "iu":
        return operator.index(x)
    if isinstance(x, (str, bytes)):  # float("1.5") parses; torch refuses strings
        raise TypeError(f"must be real number, not {type(x).__name__}")
    return float(x) if kind == "f" else complex(x)


def _numbers_to_array(batch: Any, dtype: np.dtype, path: tuple, first: int = 0) -> np.ndarray:
    """``torch.tensor(batch, dtype=dtype)`` for a flat list of numbers; ``batch[0]`` is batch element ``first``."""
    kind = dtype.kind
    info = np.iinfo(dtype) if kind in "iu" else None
    values = []
    for i, x in enumerate(batch, first):
        try:
            v = _as_python_number(x, kind)
        except (TypeError, ValueError, OverflowError) as exc:
            raise _reraise(exc, f"default_collate: {exc} ({_where(i, path)}; the leaf's dtype is {dtype})") from exc
        if info is not None and not info.min <= v <= info.max:  # checked in order: torch stops at the first
            raise ValueError(
                f"default_collate: Overflow when unpacking long long: {v} does not fit {dtype} ({_where(i, path)})"
            )
        values.append(v)
    if kind in "fc":
        # torch converts every number to double (or complex double) first, then casts: an int above 2**53
        # rounds twice, exactly as here.
        with np.errstate(over="ignore"):  # torch overflows to inf silently (e.g. 1e6 in a float16 leaf)
            return np.array(values, dtype=_FLOAT64 if kind == "f" else np.complex128).astype(dtype, copy=False)
    return np.array(values, dtype=dtype)


# Leaves made of one exact type whose dtype needs no inference: np.array gives torch's result directly.
_UNIFORM_DTYPES = {bool: _BOOL, int: _INT64, float: _FLOAT64}


def _collate_numbers(batch: Any, path: tuple, dtype: np.dtype | None) -> np.ndarray:
    """``torch.tensor(batch)`` (dtype inferred and promoted) or ``torch.tensor(batch, dtype=dtype)``."""
    first = type(batch[0])
    if all(type(x) is first for x in batch):  # the common case, without a python call per element
        uniform = _UNIFORM_DTYPES.get(first)
        if uniform is None and issubclass(first, (np.bool_, np.number)) and np.dtype(first) in _SUPPORTED_SET:
            uniform = np.dtype(first)
        if uniform is not None and (dtype is None or dtype == uniform):
            try:
                return np.array(batch, dtype=uniform)
            except OverflowError:
                pass  # an int beyond int64: the general path below names it
    if dtype is None:
        dtype = _infer_dtype(batch, lambda i: _where(i, path), arrays_ok=True)
    return _numbers_to_array(batch, dtype, path)


# --------------------------------------------------------------------------- arrays (torch.as_tensor + stack)


def _as_array(x: Any, i: int, path: tuple) -> np.ndarray:
    """``torch.as_tensor(x)`` as a numpy array."""
    where = _where(i, path)
    if isinstance(x, np.ndarray):
        if _STR_OBJ_ARRAY.search(x.dtype.str):
            raise TypeError(f"{_ERR_FORMAT.format(x.dtype)} ({where})")
        return _checked_array(x, where)
    if _is_tensor(x):
        return _tensor_to_numpy(x, where)
    if isinstance(x, (str, bytes)):
        raise TypeError(f"{_ERR_FORMAT.format(type(x))} ({where}; expected an array like batch element 0)")
    if isinstance(x, collections.abc.Sequence):
        dtype = _infer_dtype(x, lambda _: where, arrays_ok=False)
        try:
            if dtype.kind in "fc":
                wide = _FLOAT64 if dtype.kind == "f" else np.complex128
                with np.errstate(over="ignore"):
                    return np.array(x, dtype=wide).astype(dtype, copy=False)
            return np.array(x, dtype=dtype)
        except OverflowError as exc:
            raise ValueError(f"default_collate: Overflow when unpacking long long ({where}): {exc}") from None
        except ValueError as exc:
            raise ValueError(f"default_collate: the list at {where} is ragged ({exc})") from None
    dtype = _scalar_dtype(x, where)
    return _numbers_to_array([x], dtype, path, first=i).reshape(())  # 0-d, as torch.as_tensor(number)


def _half_nans_like_torch(a: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``a`` (float16) cast to float32 / float64 with NaNs as torch's CPU cast makes them.

    numpy keeps a NaN's sign and payload, shifted; torch makes every float16 NaN ``0x7fffffff`` in float32,
    and sets the quiet bit of its float64 (found by hypothesis: ``[np.float16 NaN, 0.0]`` collated).
    """
    out = a.astype(dtype)
    nan = np.isnan(a)
    if dtype == np.float32:
        out.view(np.uint32)[nan] = 0x7FFFFFFF
    else:
        out.view(np.uint64)[nan] |= np.uint64(1 << 51)
    return out


def _stack(arrays: list[np.ndarray], path: tuple) -> np.ndarray:
    """``torch.stack(arrays)``: one ``np.stack`` into the dtype torch's promotion picks."""
    dtype = _result_dtype([a.dtype for a in arrays], _where(None, path))
    if dtype in (np.float32, np.float64):
        arrays = [_half_nans_like_torch(a, dtype) if a.dtype == np.float16 else a for a in arrays]
    try:
        # Into a C-ordered array, as torch.stack's result always is (np.stack would keep the inputs'
        # memory order, e.g. that of transposed HWC→CHW images).
        out = np.empty((len(arrays),) + arrays[0].shape, dtype=dtype)
        with np.errstate(over="ignore", invalid="ignore"):  # int64 → float16 overflows to inf, silently in torch
            return np.stack(arrays, out=out, casting="unsafe")
    except ValueError:
        first = arrays[0].shape
        bad = next((j for j, a in enumerate(arrays) if a.shape != first), None)
        if bad is None:
            raise
        raise RuntimeError(
            f"stack expects each tensor to be equal size, but got {list(first)} at entry 0 and "
            f"{list(arrays[bad].shape)} at entry {bad} (default_collate: {_where(bad, path)})"
        ) from None


def _collate_tensors(batch: Any, path: tuple) -> np.ndarray:
    torch = sys.modules["torch"]
    elem = batch[0]
    if elem.is_nested:
        raise RuntimeError(
            "Batches of nested tensors are not currently supported by the default collate_fn; please provide "
            f"a custom collate_fn to handle them appropriately. ({_where(0, path)})"
        )
    if str(elem.layout) in _SPARSE_LAYOUTS:
        raise RuntimeError(
            "Batches of sparse tensors are not currently supported by the default collate_fn; please provide "
            f"a custom collate_fn to handle them appropriately. ({_where(0, path)})"
        )
    try:
        out = torch.stack(list(batch), 0)  # torch's own promotion and checks: nothing to re-derive
    except (TypeError, RuntimeError) as exc:
        raise _reraise(exc, f"{exc} (default_collate: {_where(None, path)})") from exc
    return _tensor_to_numpy(out, _where(None, path))


# --------------------------------------------------------------------------- containers


def _like_mapping(elem: collections.abc.Mapping, values: dict) -> collections.abc.Mapping:
    """Same output type as torch: a copy of ``elem`` updated, else ``type(elem)(values)``, else a dict."""
    try:
        if isinstance(elem, collections.abc.MutableMapping):
            clone = copy.copy(elem)
            clone.update(values)
            return clone
        # elem's own class, as torch's collate calls it (a TypeError falls back to a dict); mypy sees the abstract
        # Mapping, which takes no argument
        return type(elem)(values)  # type: ignore[call-arg]
    except TypeError:
        return values


def _like_sequence(elem: collections.abc.Sequence, values: list) -> Any:
    """Same output type as torch for a non-tuple sequence (list stays list, range → list, ...)."""
    try:
        if isinstance(elem, collections.abc.MutableSequence):
            clone = copy.copy(elem)
            for i, v in enumerate(values):
                clone[i] = v
            return clone
        # elem's own class, as torch's collate calls it (a TypeError falls back to the list); mypy sees the
        # abstract Sequence, which takes no argument
        return type(elem)(values)  # type: ignore[call-arg]
    except TypeError:
        return values


def _is_namedtuple(x: Any) -> bool:
    return isinstance(x, tuple) and hasattr(x, "_fields")


def _values_for_key(batch: Any, key: Any, path: tuple) -> list:
    try:
        return [d[key] for d in batch]
    except Exception as exc:
        bad = next((i for i, d in enumerate(batch) if not _has_key(d, key)), None)
        if bad is None:  # __getitem__ failed once but not on retry: nothing better to say than its own error
            raise
        got = f"keys {list(batch[bad])!r}" if isinstance(batch[bad], collections.abc.Mapping) else type(batch[bad])
        raise _reraise(
            exc,
            f"default_collate: batch element {bad} has no key {key!r} at {_render(path) or 'the top level'} "
            f"(batch element 0 has keys {list(batch[0])!r}; batch element {bad} has {got})",
        ) from exc


def _has_key(d: Any, key: Any) -> bool:
    try:
        d[key]
    except Exception:
        return False
    return True


def _check_lengths(batch: Any, path: tuple, what: str) -> int:
    size = len(batch[0])
    for i, d in enumerate(batch):
        try:
            n = len(d)
        except TypeError:
            raise TypeError(
                f"default_collate: batch element {i} at {_render(path) or 'the top level'} is "
                f"{type(d).__name__} (object has no len()), but batch element 0 is a {what} of length {size}"
            ) from None
        if n != size:
            raise RuntimeError(
                f"each element in list of batch should be of equal size; got length {size} at batch element 0 "
                f"and length {n} at batch element {i} (default_collate: {_where(i, path)})"
            )
    return size


def _collate(batch: Any, path: tuple) -> Any:  # noqa: C901 - default_collate's flat type dispatch
    try:
        elem = batch[0]
    except IndexError:
        raise IndexError(f"default_collate: got an empty batch ({_where(None, path)})") from None
    if _is_tensor(elem):
        return _collate_tensors(batch, path)
    if isinstance(elem, np.ndarray):
        if _STR_OBJ_ARRAY.search(elem.dtype.str):
            raise TypeError(f"{_ERR_FORMAT.format(elem.dtype)} ({_where(0, path)})")
        if all(type(x) is np.ndarray and x.dtype == elem.dtype for x in batch) and elem.dtype in _SUPPORTED_SET:
            # the common case: one dtype, nothing to convert; only the strides need a look per element
            if all(s >= 0 for x in batch for s in x.strides):
                try:  # same dtype in and out: no promotion or cast to look at
                    return np.stack(batch)
                except ValueError:
                    return _stack(batch, path)  # for torch's message naming both shapes
        return _stack([_as_array(x, i, path) for i, x in enumerate(batch)], path)
    if isinstance(elem, (np.bool_, np.number)):
        return _collate_numbers(batch, path, None)  # torch.as_tensor(batch)
    if isinstance(elem, float):
        return _collate_numbers(batch, path, _FLOAT64)  # torch.tensor(batch, dtype=torch.float64)
    if isinstance(elem, int):
        return _collate_numbers(batch, path, None)  # torch.tensor(batch): bool → bool, int → int64
    if isinstance(elem, (str, bytes)):
        return batch  # as torch: the very list (or tuple, when it came through zip) it was given
    if isinstance(elem, collections.abc.Mapping):
        values = {k: _collate(_values_for_key(batch, k, path), path + (("key", k),)) for k in elem}
        return _like_mapping(elem, values)
    if _is_namedtuple(elem):
        # torch zips without checking lengths and silently drops extra fields; we refuse instead.
        _check_lengths(batch, path, type(elem).__name__)
        fields = elem._fields
        columns = zip(*batch, strict=True)  # (lengths checked above)
        return type(elem)(*(_collate(s, path + (("field", f),)) for f, s in zip(fields, columns, strict=True)))
    if isinstance(elem, collections.abc.Sequence):
        _check_lengths(batch, path, type(elem).__name__)
        collated = [_collate(s, path + (("index", i),)) for i, s in enumerate(zip(*batch, strict=True))]
        return collated if isinstance(elem, tuple) else _like_sequence(elem, collated)
    raise TypeError(f"{_ERR_FORMAT.format(type(elem))} ({_where(0, path)})")


def default_collate(batch: Any) -> Any:
    """Collate a list of samples into a batch exactly as ``torch.utils.data.default_collate``, in numpy.

    Numbers and arrays become one stacked ``np.ndarray`` per leaf (int → int64, float → float64, bool → bool,
    numpy scalars and arrays keep their dtype, mixed dtypes promote as torch does); torch tensors are stacked
    by torch and returned as numpy. str/bytes leaves stay the list (or tuple) of strings; tuples become lists;
    namedtuples and mapping types are kept; dict keys come from the first sample (extra keys in later samples
    are dropped, as torch does).

    Args:
        batch: a sequence of samples, as a DataLoader hands it to its ``collate_fn``.

    Returns:
        The collated batch, with ``np.ndarray`` where torch would give a ``torch.Tensor``.

    Raises:
        TypeError: an element torch cannot collate (None, complex, strings or objects in an array leaf,
            bfloat16 tensors, ...); the message names the batch element and the path in the sample.
        RuntimeError: shapes differ ("stack expects each tensor to be equal size, but got [3, 4] at entry 0
            and [3, 5] at entry 2 ...") or sequences of different lengths.
        KeyError: a later sample lacks a key of the first.
        ValueError: an int too large for int64, a non-native byte order or a negative stride (torch rejects both).
        IndexError: an empty batch.

    Example:
        >>> out = default_collate([{"x": np.zeros(2, np.float32), "y": 1}, {"x": np.ones(2, np.float32), "y": 2}])
        >>> out["x"].shape, out["x"].dtype, out["y"]
        ((2, 2), dtype('float32'), array([1, 2]))
    """
    return _collate(batch, ())


# --------------------------------------------------------------------------- default_convert, to_numpy


def _convert(data: Any, path: tuple) -> Any:
    where = _where(None, path)
    if _is_tensor(data):
        return _tensor_to_numpy(data, where)
    t = type(data)
    if t.__module__ == "numpy" and t.__name__ not in ("str_", "string_"):  # torch's own test, kept verbatim
        if isinstance(data, np.ndarray):
            # string and object arrays are left as they are; everything else goes through torch.as_tensor
            return data if _STR_OBJ_ARRAY.search(data.dtype.str) else _checked_array(data, where)
        if isinstance(data, (np.bool_, np.number)):
            _checked_dtype(data.dtype, where)
            return np.asarray(data)
        raise TypeError(
            f"default_convert: torch.as_tensor cannot convert a numpy.{t.__name__} ({where}); "
            f"supported numpy types: {_SUPPORTED_TEXT}"
        )
    if isinstance(data, collections.abc.Mapping):
        return _like_mapping(data, {k: _convert(data[k], path + (("key", k),)) for k in data})
    if _is_namedtuple(data):
        return t(*(_convert(d, path + (("field", f),)) for f, d in zip(data._fields, data, strict=True)))
    if isinstance(data, tuple):
        return [_convert(d, path + (("index", i),)) for i, d in enumerate(data)]
    if isinstance(data, collections.abc.Sequence) and not isinstance(data, (str, bytes)):
        return _like_sequence(data, [_convert(d, path + (("index", i),)) for i, d in enumerate(data)])
    return data


def default_convert(data: Any) -> Any:
    """Convert one sample as ``torch.utils.data.default_convert`` does (DataLoader with ``batch_size=None``).

    numpy arrays and scalars become ``np.ndarray`` (0-d for scalars; arrays are returned without a copy, as
    torch.as_tensor shares memory), torch tensors become numpy, tuples become lists, and python numbers,
    strings and anything else are left untouched.

    Args:
        data: one sample.

    Returns:
        The converted sample.

    Raises:
        TypeError: a numpy dtype torch cannot convert (longdouble, datetime64, numpy.bytes_ scalars, ...) or a
            bfloat16 tensor, naming where it is.
        ValueError: a numpy array torch.as_tensor refuses (negative strides, non-native byte order).

    Example:
        >>> default_convert((np.float32(1.5), "a", 2))
        [array(1.5, dtype=float32), 'a', 2]
    """
    return _convert(data, ())


_NUMBER_TYPES = (np.ndarray, np.generic, bool, int, float, complex, str, bytes)


def _to_numpy(obj: Any, path: tuple) -> Any:
    if _is_tensor(obj):
        return _tensor_to_numpy(obj, _where(None, path))
    if isinstance(obj, _NUMBER_TYPES):
        return obj
    if isinstance(obj, collections.abc.Mapping):
        return _like_mapping(obj, {k: _to_numpy(v, path + (("key", k),)) for k, v in obj.items()})
    if _is_namedtuple(obj):
        return type(obj)(*(_to_numpy(v, path + (("field", f),)) for f, v in zip(obj._fields, obj, strict=True)))
    if type(obj) in (list, tuple):
        return type(obj)(_to_numpy(v, path + (("index", i),)) for i, v in enumerate(obj))
    raise TypeError(
        "to_numpy: a collate_fn's output may contain only tensors, numpy arrays and scalars, numbers, str, "
        f"bytes, mappings, lists, tuples and namedtuples; found {type(obj)!r} {_where(None, path)}"
    )


def to_numpy(obj: Any) -> Any:
    """Replace every torch tensor in a custom ``collate_fn``'s output by its numpy array, keeping the structure.

    Tuples stay tuples, lists lists, namedtuples and mapping types are kept; numpy arrays, numpy scalars,
    python numbers, str and bytes pass through unchanged.

    Args:
        obj: the collated batch.

    Returns:
        The same structure with numpy arrays where there were tensors.

    Raises:
        TypeError: something that is not one of the types above (None, sets, custom objects, ...) or a tensor
            numpy cannot hold (bfloat16), naming its path (``['meta'][0]``).

    Example:
        >>> to_numpy({"img": np.zeros(1), "ids": (1, 2)})
        {'img': array([0.]), 'ids': (1, 2)}
    """
    return _to_numpy(obj, ())
