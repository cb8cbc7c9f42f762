"""Turn one compared object into a container tag or a numpy-backed leaf, without importing frameworks.

torch and mindspore are never imported here: an object can only be a torch (mindspore) tensor if
one of its classes was defined in that package, and then the package is already in ``sys.modules``.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import sys
from typing import Any

import numpy as np

__all__ = ["Leaf", "MAPPING", "SEQUENCE", "classify", "number_as_array", "framework_of"]

MAPPING = "mapping"
SEQUENCE = "sequence"

# numpy kinds with numeric semantics; "U"/"S" are string arrays (compared exactly).
_NUMERIC_KINDS = frozenset("biufc")
_STRING_KINDS = frozenset("US")
# torch's dtypes for python numbers (torch.testing.NumberPair._TYPE_TO_DTYPE).
_PYTHON_NUMBER_DTYPES = {bool: "bool", int: "int64", float: "float64", complex: "complex128"}


@dataclasses.dataclass(frozen=True, slots=True)
class Leaf:
    """One comparable value.

    Attributes:
        kind: ``"array"`` (tensor / ndarray / numpy scalar, ``value`` is an ndarray), ``"number"``
            (python bool/int/float/complex), ``"str"``, ``"bytes"`` or ``"none"``.
        value: the numpy array, or the python object itself.
        dtype: dtype name without framework prefix (``"float32"``, ``"bfloat16"``; python numbers:
            ``"int"``/``"float"``/...); bfloat16 keeps its name though ``value`` holds float32.
        origin: ``"torch"``, ``"mindspore"``, ``"numpy"`` or ``"python"``.
    """

    kind: str
    value: Any
    dtype: str = ""
    origin: str = "python"

    def describe_dtype(self) -> str:
        """How the dtype reads in messages: ``torch.float32``, ``numpy.uint8``, ``python float``."""
        if self.origin != "python":
            return f"{self.origin}.{self.dtype}"
        return f"python number ({self.dtype})" if self.kind == "array" else f"python {self.dtype}"


def framework_of(obj: Any) -> str | None:
    """Return ``"torch"`` / ``"mindspore"`` if one of ``obj``'s classes comes from that package."""
    for cls in type(obj).__mro__:
        root = cls.__module__.partition(".")[0]
        if root in ("torch", "mindspore"):
            return root
    return None


def _from_torch(obj: Any, path: str) -> Leaf:
    torch = sys.modules["torch"]
    if not isinstance(obj, torch.Tensor):
        raise TypeError(f"unsupported type {type(obj)!r} at {path}: expected a torch.Tensor, not another torch object")
    if obj.layout != torch.strided:
        raise TypeError(f"unsupported torch layout {obj.layout} at {path}: call .to_dense() first")
    if obj.is_quantized:
        raise TypeError(f"unsupported quantized torch tensor at {path}: call .dequantize() first")
    dtype = str(obj.dtype).removeprefix("torch.")
    t = obj.detach().cpu().resolve_conj().resolve_neg()
    if t.dtype == torch.bfloat16 or (t.dtype.is_floating_point and t.dtype.itemsize == 1):
        t = t.float()  # numpy has no bfloat16/float8: float32 holds every such value exactly
    elif t.dtype == torch.complex32:
        t = t.to(torch.complex64)
    return Leaf("array", t.numpy(), dtype, "torch")


def _from_mindspore(obj: Any, path: str) -> Leaf:
    ms = sys.modules["mindspore"]
    if not isinstance(obj, ms.Tensor):
        raise TypeError(
            f"unsupported type {type(obj)!r} at {path}: expected a mindspore.Tensor, not another mindspore object"
        )
    return _from_numpy(obj.asnumpy(), path, "mindspore")


def _from_numpy(arr: np.ndarray, path: str, origin: str = "numpy") -> Leaf:
    name = arr.dtype.name
    if name == "bfloat16":  # mindspore's own numpy bfloat16 (kind "V"); numpy itself has none
        return Leaf("array", arr.astype(np.float32), name, origin)
    if arr.dtype.kind in _NUMERIC_KINDS or arr.dtype.kind in _STRING_KINDS:
        return Leaf("array", arr, name, origin)
    raise TypeError(
        f"unsupported {origin} dtype {arr.dtype!r} at {path}: expected bool, integer, float, complex or string"
    )


def classify(obj: Any, path: str) -> str | Leaf:  # noqa: C901 - one flat type dispatch, its order the rule
    """Say whether ``obj`` is a mapping, a sequence, or a leaf (returned converted to numpy).

    Args:
        obj: any value from the compared structure.
        path: where ``obj`` is, for the error message.

    Returns:
        ``MAPPING``, ``SEQUENCE`` or a :class:`Leaf`.

    Raises:
        TypeError: ``obj`` is of an unsupported type (named with ``path``).

    Example:
        >>> classify(np.float32(1), "[0]").dtype
        'float32'
    """
    if obj is None:
        return Leaf("none", None)
    if isinstance(obj, np.ndarray):
        return _from_numpy(obj, path)
    if isinstance(obj, np.generic):  # before str/float: np.str_ and np.float64 subclass them
        if isinstance(obj, (np.str_, np.bytes_)):
            return Leaf("str" if isinstance(obj, np.str_) else "bytes", obj.item())
        return _from_numpy(np.asarray(obj), path)
    if isinstance(obj, str):
        return Leaf("str", obj)
    if isinstance(obj, (bytes, bytearray)):
        return Leaf("bytes", bytes(obj))
    number_types: tuple[type, ...] = (bool, int, float, complex)  # bool first: it is an int too
    for py_type in number_types:
        if isinstance(obj, py_type):
            return Leaf("number", py_type(obj), py_type.__name__)
    framework = framework_of(obj)
    if framework == "torch":
        return _from_torch(obj, path)
    if framework == "mindspore":
        return _from_mindspore(obj, path)
    if isinstance(obj, collections.abc.Mapping):
        return MAPPING
    if isinstance(obj, collections.abc.Sequence):
        return SEQUENCE
    raise TypeError(
        f"unsupported type {type(obj).__module__}.{type(obj).__qualname__} at {path}: expected a torch/mindspore "
        "Tensor, numpy array or scalar, python number, str, bytes, None, or a dict/list/tuple of those"
    )


def number_as_array(leaf: Leaf, path: str) -> Leaf:
    """Turn a python-number leaf into a 0-d array leaf with torch's dtype for its type.

    Raises:
        TypeError: an int that does not fit int64 (named with ``path``).

    Example:
        >>> number_as_array(Leaf("number", 1.5, "float"), "[0]").dtype
        'float64'
    """
    py_type = type(leaf.value)
    dtype = _PYTHON_NUMBER_DTYPES[py_type]
    try:
        arr = np.asarray(leaf.value, dtype=dtype)
    except OverflowError:
        raise TypeError(f"python int {leaf.value} at {path} does not fit int64, so it cannot meet an array") from None
    return Leaf("array", arr, dtype, "python")
