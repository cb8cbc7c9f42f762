"""Flatten a collated batch into named numpy columns, and rebuild the identical nested batch from them.

A MindSpore ``GeneratorDataset`` row is a flat tuple of numpy arrays, one per column; a torch batch is any
nesting of dicts, lists, tuples and namedtuples. :class:`Structure` is the bridge: inferred from the first
batch, it names the columns, checks that every later batch has the same nesting, and turns a row back into
the batch the torch code expects.

Column names (unless ``column_names`` is given):

- the path to the leaf, joined with ``"."``: dict keys as they are, list/tuple positions as ``"0"``,
  ``"1"``, ..., namedtuple fields by name: ``{"img": a, "meta": {"size": b}}`` → ``"img"``, ``"meta.size"``;
  ``(a, [b, c])`` → ``"0"``, ``"1.0"``, ``"1.1"``;
- a batch that is a single leaf is the column ``"0"``;
- dict keys must be non-empty ``str`` and the names must not collide (``{"a.b": x, "a": {"b": y}}``):
  both are errors that name the key; give ``column_names`` to name the columns yourself.

Leaves and how they come back:

- ``np.ndarray`` (and torch tensors, converted): the array itself;
- python ``bool`` / ``int`` / ``float`` (``batch_size=None`` leaves them, as ``default_convert``): a 0-d
  bool / int64 / float64 array (default_collate's dtypes), rebuilt as the python number;
- numpy scalars: a 0-d array of their dtype, rebuilt as the numpy scalar;
- ``str`` / ``bytes``: a 0-d ``<U`` / ``S`` array, rebuilt as ``str`` / ``bytes``;
- a non-empty list or tuple made only of ``str`` (or only of ``bytes``), as default_collate leaves them:
  one 1-d ``<U`` / ``S`` column, rebuilt as the same list or tuple;
- **packed columns**, for what no plain column holds (a set, a complex number, an object of yours, an
  object-dtype array, a string ending in NUL) and for what may vary from batch to batch: a ``None`` (YOLOv5's
  ``shapes`` under mosaic), and, with a custom ``collate_fn``, a per-sample sequence — a list or tuple with one
  item per sample of the batch (``pseudo_collate``'s lists, detection targets, NLP ``lengths``, YOLOv5's
  ``shapes``), unless it is a tuple of fields batched over the samples (an array whose first dimension is the
  batch, beside other kinds).
  The value is pickled into a 1-d ``uint8`` column, signed with a key of this process, and rebuilt exactly —
  later batches may hold any number of items of any kinds there (a short batch mid-epoch, a bucketing
  sampler, ``None`` in one batch and a tuple in the next). A packed column whose bytes were changed is
  refused, never unpickled.

numpy's fixed-width strings drop trailing NUL characters, so a string ending in ``"\\0"`` is packed rather
than changed. Dict key order is taken from the first batch; later batches may list the same keys in another
order.
"""

from __future__ import annotations

import collections.abc
import copy
import dataclasses
import hashlib
import hmac
import io
import pickle
import secrets
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from adapters.engine._transport import found_by_name
from adapters.torch_data._collate import _is_tensor, to_numpy

__all__ = ["Structure", "StructureMismatchError", "flatten", "unflatten"]

_ROOT_NAME = "0"
_KEY = secrets.token_bytes(32)  # signs packed columns: only bytes made by this process (or its forks) are unpickled
_MAC = 32


class StructureMismatchError(ValueError):
    """A later batch is nested differently from the batch the :class:`Structure` was inferred from."""


# --------------------------------------------------------------------------- nodes


@dataclasses.dataclass(frozen=True)
class _Leaf:
    kind: str  # "array" | "number" | "numpy_scalar" | "str" | "bytes" | "strings"
    container: type | None = None  # list or tuple, for "strings"
    item: type | None = None  # str or bytes, for "strings"

    def describe(self) -> str:
        if self.kind == "strings":
            # (a "strings" leaf always has both: _leaf_of sets them)
            assert self.container is not None and self.item is not None
            return f"a {self.container.__name__} of {self.item.__name__}"
        if self.kind == "packed":
            if self.container is None:
                return "any value (packed column)"
            return f"a {self.container.__name__} (packed column)"
        return {"array": "an array", "number": "a python number", "numpy_scalar": "a numpy scalar"}.get(
            self.kind, f"a {self.kind}"
        )


@dataclasses.dataclass(frozen=True)
class _Sequence:
    cls: type[Any]  # list, tuple or a namedtuple class (its fields are its own: instances typed Any)
    children: tuple

    def describe(self) -> str:
        return f"a {self.cls.__name__} of {len(self.children)} items"


@dataclasses.dataclass(frozen=True)
class _Mapping:
    cls: type[collections.abc.Mapping]
    keys: tuple
    children: tuple
    # An emptied copy of the first batch's mapping, for mutable mappings other than dict: copying it keeps what
    # the type carries besides its items (defaultdict's default_factory). Data, not a closure: it pickles.
    template: Any = dataclasses.field(default=None, compare=False)

    def describe(self) -> str:
        return f"a {self.cls.__name__} with keys {list(self.keys)!r}"

    def build(self, items: dict) -> Any:
        if self.cls is dict:
            return items
        if self.template is not None:
            out = copy.copy(self.template)
            out.update(items)
            return out
        # The batch's own mapping class, checked by _mapping_node to rebuild from a dict (as torch's
        # default_collate does); mypy only sees the abstract Mapping, which takes no argument.
        return self.cls(items)  # type: ignore[call-arg]


def _is_namedtuple(x: Any) -> bool:
    return isinstance(x, tuple) and hasattr(x, "_fields")


def _render(path: tuple) -> str:
    """``(("key", "meta"), ("index", 0), ("field", "x"))`` → ``['meta'][0].x``."""
    parts = (f"[{p!r}]" if kind == "key" else f"[{p}]" if kind == "index" else f".{p}" for kind, p in path)
    return "".join(parts) or "<top level>"


def _mapping_node(m: collections.abc.Mapping, children: tuple, path: tuple) -> _Mapping:
    """The node for ``m``, after checking that it rebuilds ``type(m)`` with the same keys."""
    node = _Mapping(type(m), tuple(m), children)
    try:
        if type(m) is not dict and isinstance(m, collections.abc.MutableMapping):
            template = copy.copy(m)
            template.clear()
            node = dataclasses.replace(node, template=template)
        rebuilt = node.build(dict(m))
        ok = type(rebuilt) is type(m) and list(rebuilt) == list(m)
    except Exception:
        ok = False
    if not ok:
        raise TypeError(
            f"flatten: cannot rebuild the {type(m).__qualname__} at {_render(path)} from its items (tried a "
            "copy updated with them, or the type called with a dict); use a dict or a MutableMapping"
        )
    return node


# --------------------------------------------------------------------------- leaves


def _leaf_of(obj: Any) -> _Leaf | None:
    """The leaf kind of ``obj``, or None when it is a container."""
    if isinstance(obj, np.ndarray) or _is_tensor(obj):
        return _Leaf("array")
    if isinstance(obj, (str, bytes)):  # before np.generic: np.str_ is rebuilt as str
        return _Leaf("str" if isinstance(obj, str) else "bytes")
    if isinstance(obj, np.generic):
        return _Leaf("numpy_scalar")
    if isinstance(obj, (bool, int, float)):
        return _Leaf("number")
    if type(obj) in (list, tuple) and obj:
        for item in (str, bytes):
            if all(isinstance(s, item) for s in obj):
                return _Leaf("strings", type(obj), item)
    return None


def _no_trailing_nul(values: Sequence, item: type, path: tuple) -> None:
    nul = "\0" if item is str else b"\0"
    bad = next((i for i, s in enumerate(values) if s.endswith(nul)), None)
    if bad is not None:
        raise ValueError(
            f"flatten: {values[bad]!r} at {_render(path)} (item {bad}) ends in a NUL character, which numpy's "
            f"fixed-width {item.__name__} arrays drop; it cannot be stored as a column unchanged"
        )


_PACKED = _Leaf("packed", list)
_PACKED_TUPLE = _Leaf("packed", tuple)
_PACKED_ANY = _Leaf("packed", None)


def _sign(data: bytes) -> bytes:
    return hmac.new(_KEY, data, hashlib.sha256).digest()


# Classes made inside a function (torch yields their instances at num_workers=0) cannot be pickled by name: a
# packed column refers to them by identity, within this process and its forks (where the same class lives).
_CLASSES: dict[int, type] = {}


class _PackPickler(pickle.Pickler):
    def reducer_override(self, obj):
        if isinstance(obj, type) and not found_by_name(obj):
            _CLASSES[id(obj)] = obj
            return _packed_class, (id(obj),)
        return NotImplemented


def _packed_class(ident: int) -> type:
    cls = _CLASSES.get(ident)
    if cls is None:  # (signed bytes of another process tree)
        raise ValueError("unflatten: a packed column refers to a class made inside a function in another process")
    return cls


def _pack(obj: Any) -> bytes:
    out = io.BytesIO()
    _PackPickler(out, protocol=5).dump(obj)
    return out.getvalue()


def _packed_array(obj: Any, path: tuple) -> np.ndarray:
    try:
        data = _pack(obj)
    except Exception as exc:
        raise TypeError(f"flatten: the value at {_render(path)} cannot be packed: {exc}") from None
    return np.frombuffer(_sign(data) + data, dtype=np.uint8)


def _array_column(obj: Any, path: tuple) -> np.ndarray:
    arr = obj if isinstance(obj, np.ndarray) else to_numpy(obj)
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"flatten: expected an array or a tensor at {_render(path)}, got {type(obj)!r}")
    if arr.dtype.kind not in "biufUS":
        raise TypeError(
            f"flatten: the array at {_render(path)} has dtype {arr.dtype}, which cannot be a MindSpore column "
            "(only bool, integer, float, str and bytes arrays can)"
        )
    return arr


def _leaf_array(obj: Any, leaf: _Leaf, path: tuple) -> np.ndarray:
    kind = leaf.kind
    if kind == "packed":
        return _packed_array(obj, path)
    if kind == "array":
        return _array_column(obj, path)
    if kind == "number":
        dtype = np.bool_ if isinstance(obj, bool) else np.int64 if isinstance(obj, int) else np.float64
        try:
            return np.array(obj, dtype=dtype)
        except OverflowError:
            raise OverflowError(f"flatten: the python int {obj} at {_render(path)} does not fit int64") from None
    if kind == "numpy_scalar":
        if obj.dtype.kind not in "biuf":
            raise TypeError(f"flatten: a numpy {obj.dtype} scalar at {_render(path)} cannot be a MindSpore column")
        return np.asarray(obj)
    if kind in ("str", "bytes"):
        _no_trailing_nul([obj], type(obj) if kind == "bytes" else str, path)
        return np.array(str(obj) if kind == "str" else bytes(obj))
    assert leaf.item is not None  # the kind left is "strings", whose item _leaf_of always sets
    _no_trailing_nul(obj, leaf.item, path)
    return np.array([leaf.item(s) for s in obj])


def _unpack(arr: np.ndarray, name: str) -> Any:
    """The value of a packed column, once its signature shows this process (or a fork) made it."""
    if arr.dtype != np.uint8 or arr.ndim != 1:
        raise ValueError(f"unflatten: column {name!r} is packed, so it must be 1-d uint8; got {arr.dtype} {arr.shape}")
    raw = arr.tobytes()
    mac, data = raw[:_MAC], raw[_MAC:]
    if len(raw) < _MAC or not hmac.compare_digest(mac, _sign(data)):
        raise ValueError(
            f"unflatten: packed column {name!r} was not made by this pipeline in this process (its bytes were "
            "changed, e.g. by a map on it, or it comes from another process): it is refused, never unpickled"
        )
    return pickle.loads(data)


def _leaf_value(arr: Any, leaf: _Leaf, name: str) -> Any:
    if leaf.kind == "array" and hasattr(arr, "asnumpy"):
        return arr  # a MindSpore Tensor stays one: rebuild keeps the leaves the iterator gave
    if not isinstance(arr, np.ndarray):
        arr = arr.asnumpy() if hasattr(arr, "asnumpy") else arr  # MindSpore Tensor
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"unflatten: column {name!r} is a {type(arr)!r}, expected a numpy array")
    kind = leaf.kind
    if kind == "array":
        return arr
    if kind == "packed":
        return _unpack(arr, name)
    expected = {"strings": 1}.get(kind, 0)
    string_kind = {"str": "U", "bytes": "S", "strings": "U" if leaf.item is str else "S"}.get(kind)
    if arr.ndim != expected or arr.dtype.kind not in (string_kind or "biufc"):
        raise ValueError(
            f"unflatten: column {name!r} holds {leaf.describe()}, so it must be a {expected}-d "
            f"{'string' if string_kind else 'numeric'} array; got shape {arr.shape} dtype {arr.dtype}"
        )
    if kind == "numpy_scalar":
        return arr[()]
    if kind == "strings":
        assert leaf.container is not None  # (a "strings" leaf always has one: _leaf_of sets it)
        return leaf.container(arr.tolist())
    return arr.item()


# --------------------------------------------------------------------------- walking


def _per_sample(obj: Any, samples: int | None) -> bool:
    """A list or tuple with one item per sample (what a custom collate returns per sample).

    As many items as the batch has samples, of any kinds (``None`` among tuples included); not a tuple of
    fields batched over the samples — an array whose first dimension is the batch, beside items of other
    kinds (``(images, labels, paths)``). Items that are all arrays of one dtype and rank are per-sample
    whatever their sizes (``pseudo_collate``'s images): packing them is exact either way, while splitting a
    per-sample list into columns would break at the next batch of another size.
    """
    if samples is None or type(obj) not in (list, tuple) or len(obj) != samples or not obj:
        return False
    arrays = [to_numpy(v) if _is_tensor(v) else v for v in obj if isinstance(v, np.ndarray) or _is_tensor(v)]
    if not any(a.ndim >= 1 and a.shape[0] == samples for a in arrays):
        return True
    return len(arrays) == len(obj) and len({(a.dtype, a.ndim) for a in arrays}) == 1


def _infer(obj: Any, path: tuple, out: list, pack: int | None = None, nested: bool = False) -> Any:
    if obj is None or (nested and path and type(obj) in (list, tuple)):
        # None here may be anything in the next batch (YOLOv5's shapes); so may a list or tuple inside a
        # sample (``nested``: its boxes, its lengths, YOLOv5's shapes): carried packed
        out.append((path, _leaf_array(obj, _PACKED_ANY, path)))
        return _PACKED_ANY
    leaf = _leaf_of(obj)
    if leaf is None and _per_sample(obj, pack):
        leaf = _PACKED if type(obj) is list else _PACKED_TUPLE
    if leaf is not None:
        try:
            out.append((path, _leaf_array(obj, leaf, path)))
        except (TypeError, ValueError):  # no MindSpore column holds it as it is (object dtype, a NUL-ended str)
            out.append((path, _leaf_array(obj, _PACKED_ANY, path)))
            return _PACKED_ANY
        return leaf
    if isinstance(obj, collections.abc.Mapping):
        children = tuple(_infer(obj[k], path + (("key", k),), out, pack, nested) for k in obj)
        return _mapping_node(obj, children, path)
    if _is_namedtuple(obj):
        return _Sequence(
            type(obj),
            tuple(_infer(v, path + (("field", f),), out, pack, nested) for f, v in zip(obj._fields, obj, strict=True)),
        )
    if type(obj) in (list, tuple):
        return _Sequence(
            type(obj), tuple(_infer(v, path + (("index", i),), out, pack, nested) for i, v in enumerate(obj))
        )
    # Anything else a collate_fn returns (a set, a complex number, an object of the user's): carried packed.
    out.append((path, _leaf_array(obj, _PACKED_ANY, path)))
    return _PACKED_ANY


def _mismatch(batch_index: int | None, path: tuple, node: Any, got: str) -> StructureMismatchError:
    which = "this batch" if batch_index is None else f"batch {batch_index}"
    return StructureMismatchError(
        f"{which} is not nested like the first batch at {_render(path)} (columns {_prefix(path)!r}...): "
        f"expected {node.describe()}, got {got}"
    )


def _prefix(path: tuple) -> str:
    return ".".join(str(p) for _, p in path) or "<all>"


def _describe(obj: Any) -> str:
    if obj is None:
        return "None"
    leaf = _leaf_of(obj)
    if leaf is not None:
        return leaf.describe()
    if isinstance(obj, collections.abc.Mapping):
        return f"a {type(obj).__name__} with keys {list(obj)!r}"
    if isinstance(obj, (list, tuple)):
        return f"a {type(obj).__name__} of {len(obj)} items"
    return repr(type(obj))


def _extract(obj: Any, node: Any, path: tuple, out: list, batch_index: int | None) -> None:
    if isinstance(node, _Leaf) and node.kind == "packed":
        if node.container is not None and type(obj) is not node.container:
            raise _mismatch(batch_index, path, node, _describe(obj))
        out.append(_leaf_array(obj, node, path))
    elif obj is None:
        raise _mismatch(batch_index, path, node, "None")
    elif isinstance(node, _Leaf):
        leaf = _leaf_of(obj)
        if leaf != node:
            raise _mismatch(batch_index, path, node, _describe(obj))
        out.append(_leaf_array(obj, leaf, path))
    elif isinstance(node, _Mapping):
        _extract_mapping(obj, node, path, out, batch_index)
    else:
        _extract_sequence(obj, node, path, out, batch_index)


def _extract_mapping(obj: Any, node: _Mapping, path: tuple, out: list, batch_index: int | None) -> None:
    if type(obj) is not node.cls:
        raise _mismatch(batch_index, path, node, _describe(obj))
    if obj.keys() != set(node.keys):
        new = [k for k in obj if k not in node.keys]
        missing = [k for k in node.keys if k not in obj]
        raise _mismatch(batch_index, path, node, f"{_describe(obj)} (new keys {new!r}, missing keys {missing!r})")
    for k, child in zip(node.keys, node.children, strict=True):
        _extract(obj[k], child, path + (("key", k),), out, batch_index)


def _extract_sequence(obj: Any, node: _Sequence, path: tuple, out: list, batch_index: int | None) -> None:
    if type(obj) is not node.cls or len(obj) != len(node.children) or _leaf_of(obj) is not None:
        raise _mismatch(batch_index, path, node, _describe(obj))
    steps = [("field", f) for f in obj._fields] if _is_namedtuple(obj) else [("index", i) for i in range(len(obj))]
    for step, v, child in zip(steps, obj, node.children, strict=True):
        _extract(v, child, path + (step,), out, batch_index)


def _rebuild(node: Any, columns: Iterator, names: Iterator) -> Any:
    if isinstance(node, _Leaf):
        return _leaf_value(next(columns), node, next(names))
    values = [_rebuild(child, columns, names) for child in node.children]
    if isinstance(node, _Mapping):
        return node.build(dict(zip(node.keys, values, strict=True)))
    return node.cls(*values) if _is_namedtuple_type(node.cls) else node.cls(values)


def _is_namedtuple_type(cls: type) -> bool:
    return issubclass(cls, tuple) and hasattr(cls, "_fields")


# --------------------------------------------------------------------------- naming


def _auto_names(paths: list[tuple], root_is_leaf: bool) -> tuple[str, ...]:
    if root_is_leaf:
        return (_ROOT_NAME,)
    names = []
    for path in paths:
        for kind, p in path:
            if kind != "key":
                continue
            if not isinstance(p, str):
                raise TypeError(
                    f"flatten: the dict key {p!r} ({type(p).__name__}) at {_render(path)} cannot name a column: "
                    "column names are built from str keys; pass column_names=[...] to name the columns yourself"
                )
            if p == "":
                raise ValueError(
                    f"flatten: the empty dict key at {_render(path)} cannot name a column; pass column_names"
                )
        names.append(".".join(str(p) for _, p in path))
    seen: dict[str, tuple] = {}
    for name, path in zip(names, paths, strict=True):
        if name in seen:
            raise ValueError(
                f"flatten: the leaves at {_render(seen[name])} and {_render(path)} would both be column {name!r} "
                "(a key contains '.'); rename the key or pass column_names=[...]"
            )
        seen[name] = path
    return tuple(names)


def _checked_names(column_names: Sequence[str], auto: list[str]) -> tuple[str, ...]:
    names = list(column_names)
    if len(names) != len(auto):
        raise ValueError(
            f"column_names has {len(names)} names {names!r}, but the batch has {len(auto)} leaves: {auto!r}"
        )
    bad = [n for n in names if not isinstance(n, str) or not n]
    if bad:
        raise TypeError(f"column_names must be non-empty str; got {bad!r} in {names!r}")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"column_names must be unique; {dup!r} repeat in {names!r}")
    return tuple(names)


# --------------------------------------------------------------------------- public


@dataclasses.dataclass(frozen=True)
class Structure:
    """How a batch is nested, and the name of the column each leaf becomes.

    Attributes:
        names: the column names, in column order.
        paths: for each column, where its leaf sits in the batch (``['meta']['size']``), for messages.
    """

    root: Any = dataclasses.field(repr=False)
    names: tuple[str, ...]
    paths: tuple[str, ...] = dataclasses.field(repr=False)

    @classmethod
    def infer(
        cls, batch: Any, column_names: Sequence[str] | None = None, *, pack_lists_of: int | None = None
    ) -> Structure:
        """Infer the structure of ``batch`` (see the module docstring for names and leaves).

        Args:
            batch: one collated batch.
            column_names: names for the columns, in leaf order; default: derived from the nesting.
            pack_lists_of: python lists of exactly this many items (one per sample, as custom collates
                return: NLP ``lengths``, detection ``targets``, mmengine's ``pseudo_collate``) become one
                packed column each, so later batches may hold any number of items (a short last batch, a
                bucketing sampler); ``rebuild`` gives the list back exactly.

        Returns:
            The structure.

        Raises:
            TypeError: an unsupported value (None, a set, an object array, ...) or a non-str dict key, naming its path.
            ValueError: colliding or empty names, strings ending in NUL, or ``column_names`` of the wrong length.

        Example:
            >>> Structure.infer({"img": np.zeros(2), "meta": (1, "a")}).names
            ('img', 'meta.0', 'meta.1')
        """
        return _infer_with_columns(batch, column_names, pack_lists_of)[0]

    def __len__(self) -> int:
        return len(self.names)

    def flatten(self, batch: Any, batch_index: int | None = None) -> list[tuple[str, np.ndarray]]:
        """The columns of ``batch``, checking that it is nested like the batch this structure came from.

        Args:
            batch: a collated batch.
            batch_index: its position in the stream, only for the error message.

        Returns:
            ``[(name, array), ...]`` in column order.

        Raises:
            StructureMismatchError: (a ValueError) naming the batch index, the path and the column prefix,
                what was expected and what was found (new or missing keys, another length or type).

        Example:
            >>> s = Structure.infer({"x": np.zeros(1)})
            >>> s.flatten({"x": np.ones(1)})
            [('x', array([1.]))]
        """
        return list(zip(self.names, self.to_row(batch, batch_index), strict=True))

    def to_row(self, batch: Any, batch_index: int | None = None) -> tuple[np.ndarray, ...]:
        """The arrays of :meth:`flatten` without their names: one ``GeneratorDataset`` row.

        Example:
            >>> Structure.infer([np.zeros(1), 2]).to_row([np.ones(1), 3])
            (array([1.]), array(3))
        """
        arrays: list[np.ndarray] = []
        _extract(batch, self.root, (), arrays, batch_index)
        return tuple(arrays)

    def rebuild(self, columns: Sequence[Any] | collections.abc.Mapping) -> Any:
        """The nested batch back from its columns (see :func:`unflatten`)."""
        return unflatten(columns, self)


def _infer_with_columns(
    batch: Any, column_names: Sequence[str] | None, pack: int | None = None, nested: bool = False
) -> tuple[Structure, list[np.ndarray]]:
    found: list[tuple[tuple, np.ndarray]] = []
    root = _infer(batch, (), found, pack, nested)
    paths = [p for p, _ in found]
    if column_names is None:
        names = _auto_names(paths, isinstance(root, _Leaf))
    else:
        auto = [_render(p) for p in paths]
        names = _checked_names(column_names, auto)
    return Structure(root, names, tuple(_render(p) for p in paths)), [a for _, a in found]


def flatten(
    batch: Any,
    structure: Structure | None = None,
    *,
    column_names: Sequence[str] | None = None,
    batch_index: int | None = None,
) -> tuple[list[tuple[str, np.ndarray]], Structure]:
    """Flatten a collated batch into named numpy columns.

    Args:
        batch: a collated batch: arrays/tensors/numbers/strings nested in dicts, lists, tuples, namedtuples.
        structure: the structure of earlier batches; ``batch`` must match it. Default: infer it from ``batch``.
        column_names: names for the columns when inferring (in leaf order); not allowed with ``structure``.
        batch_index: the batch's position in the stream, named in a mismatch error.

    Returns:
        ``([(name, array), ...], structure)``.

    Raises:
        StructureMismatchError: ``batch`` is nested differently from ``structure``.
        TypeError, ValueError: see :meth:`Structure.infer`.

    Example:
        >>> cols, s = flatten({"img": np.zeros((2, 3)), "meta": {"size": np.array([3, 3])}})
        >>> [name for name, _ in cols]
        ['img', 'meta.size']
        >>> cols, _ = flatten({"img": np.ones((1, 3)), "meta": {"size": np.array([3])}}, s, batch_index=1)
    """
    if structure is None:
        structure, arrays = _infer_with_columns(batch, column_names)
        return list(zip(structure.names, arrays, strict=True)), structure
    if column_names is not None:
        raise ValueError("flatten: column_names only applies when the structure is inferred (structure=None)")
    return structure.flatten(batch, batch_index), structure


def unflatten(columns: Sequence[Any] | collections.abc.Mapping, structure: Structure) -> Any:
    """Rebuild the nested batch from its columns: the inverse of :func:`flatten`.

    Args:
        columns: the arrays in column order, or ``(name, array)`` pairs, or a ``{name: array}`` mapping
            (as MindSpore's dict iterator gives); MindSpore Tensors are accepted (``.asnumpy()``).
        structure: the structure from :func:`flatten`.

    Returns:
        The batch: same containers (dict types, lists vs tuples, namedtuple classes), arrays as given (numpy
        arrays or MindSpore Tensors), python numbers, numpy scalars, str and bytes rebuilt from their 0-d/1-d
        columns.

    Raises:
        ValueError: wrong number of columns, names that differ from the structure's, or a column whose shape
            or dtype cannot hold its leaf (e.g. a 2-d array where a python number was).

    Example:
        >>> cols, s = flatten([np.zeros(2), ("a", "b"), 3])
        >>> unflatten([a for _, a in cols], s)
        [array([0., 0.]), ('a', 'b'), 3]
    """
    names = structure.names
    if isinstance(columns, collections.abc.Mapping):
        if set(columns) != set(names):
            raise ValueError(f"unflatten: got columns {sorted(columns)!r}, the structure has {list(names)!r}")
        arrays = [columns[n] for n in names]
    else:
        items = list(columns)
        pairs = [c for c in items if isinstance(c, tuple) and len(c) == 2 and isinstance(c[0], str)]
        if items and len(pairs) == len(items):
            given = [n for n, _ in pairs]
            if given != list(names):
                raise ValueError(f"unflatten: got columns {given!r}, the structure has {list(names)!r}")
            items = [a for _, a in pairs]
        if len(items) != len(names):
            raise ValueError(f"unflatten: got {len(items)} columns, the structure has {len(names)}: {list(names)!r}")
        arrays = items
    return _rebuild(structure.root, iter(arrays), iter(names))
