"""What the training loop changed on the objects the loader process holds, between two epochs.

torch's DataLoader reads its sampler, and with ``num_workers=0`` its dataset and ``collate_fn``, in the
training loop's own process at every ``iter(loader)``: a loop that changes them between epochs
(``dataset.set_epoch(e)``, a curriculum's ``dataset.difficulty = ...``, YOLOv5's ``dataset.indices =
...``, ``sampler.set_epoch(e)``) is seen by the next epoch. The pipeline holds its own copies of these
objects in its loader process (the snapshot taken at ``to_mindspore``), whose state also moves on as
torch's would (their own random generators, counters). :class:`AttributeTracker` reconciles the two
the way torch's single object behaves: when an epoch begins, the attributes the loop changed on its
objects since the previous epoch began are carried into the loader's copies, and nothing else.

What counts as a change: an attribute reassigned, added or deleted; a change inside a value made of
python containers, numbers, strings and numpy arrays (compared by content; arrays above
:data:`HASHED_ARRAY_BYTES` and containers above :data:`MAX_ITEMS` items by identity only); and the same,
recursively, for the attributes of plain objects the dataset holds (its transforms, say), down to
:data:`MAX_DEPTH` levels, lists of such objects included.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from adapters.engine._messages import DELETED

__all__ = ["AttributeTracker", "HASHED_ARRAY_BYTES", "MAX_DEPTH", "MAX_ITEMS"]

MAX_DEPTH = 3  # levels of attributes followed from the tracked object (dataset.transform.p is level 2)
MAX_ITEMS = 100_000  # a container with more items is compared by identity and length only
HASHED_ARRAY_BYTES = 1 << 20  # a larger array is compared by identity and data address only
_MAX_LISTED_OBJECTS = 64  # a list of more plain objects is not walked into

_NOT_PLAIN_MODULES = ("numpy", "torch", "mindspore", "builtins", "multiprocessing", "threading", "_io", "io")


def _is_plain_object(value: Any) -> bool:
    """An instance of a user class whose attributes are worth following (not a function, module, class, array...)."""
    if not hasattr(value, "__dict__") or isinstance(value, type):
        return False
    module = type(value).__module__ or ""  # functions, methods and modules are builtins' types
    return module.split(".")[0] not in _NOT_PLAIN_MODULES


def fingerprint(value: Any) -> Any:
    """A value that changes when ``value``'s content does (for the types listed in the module docstring).

    Example:
        >>> fingerprint([1, "a", None]) == fingerprint([1, "a", None]), fingerprint([1]) == fingerprint([2])
        (True, False)
    """
    t = type(value)
    if value is None or t in (bool, int, str, bytes):
        return value
    if t in (float, complex):
        return (t.__name__, repr(value))  # NaN equals itself here
    if isinstance(value, np.generic):
        return ("np", value.dtype.str, value.tobytes())
    if t is np.ndarray:
        if value.nbytes <= HASHED_ARRAY_BYTES:
            return ("array", value.dtype.str, value.shape, hash(np.ascontiguousarray(value).tobytes()))
        return ("big array", id(value), value.__array_interface__["data"][0], value.dtype.str, value.shape)
    if t in (list, tuple, set, frozenset, dict):
        if len(value) > MAX_ITEMS:
            return ("big", t.__name__, id(value), len(value))
        if t is dict:
            return ("dict", tuple((fingerprint(k), fingerprint(v)) for k, v in value.items()))
        if t in (set, frozenset):
            return (t.__name__, frozenset(fingerprint(v) for v in value))
        return (t.__name__, tuple(fingerprint(v) for v in value))
    return ("object", id(value))  # anything else: the same object or not (its attributes are walked separately)


def _attributes(obj: Any) -> list:
    try:
        return list(vars(obj).items())
    except TypeError:
        return []


def snapshot(obj: Any) -> dict[tuple, tuple]:
    """``{attribute path: (identity, fingerprint)}`` for ``obj``'s attributes, :data:`MAX_DEPTH` levels down."""
    out: dict[tuple, tuple] = {}
    _walk(obj, (), out, 0, {id(obj)})
    return out


def _walk(obj: Any, path: tuple, out: dict, depth: int, seen: set) -> None:
    for name, value in _attributes(obj):
        p = path + (name,)
        out[p] = (id(value), fingerprint(value))
        if depth + 1 >= MAX_DEPTH or id(value) in seen:
            continue
        if _is_plain_object(value):
            seen.add(id(value))
            _walk(value, p, out, depth + 1, seen)
        elif type(value) is list and len(value) <= _MAX_LISTED_OBJECTS and any(map(_is_plain_object, value)):
            for i, item in enumerate(value):
                if _is_plain_object(item) and id(item) not in seen:
                    seen.add(id(item))
                    _walk(item, p + (i,), out, depth + 1, seen)


def _get(obj: Any, path: tuple) -> Any:
    for step in path:
        obj = obj[step] if isinstance(step, int) else getattr(obj, step)
    return obj


class AttributeTracker:
    """Changes the loop makes to some objects between epochs (see the module docstring).

    Args:
        owners: ``{name: object}``; ``name`` is the attribute of the engine's ``LoaderSpec`` that holds the
            same object in the loader process (``"dataset"``, ``"collate_fn"``, ``"sampler"``, ...).

    Example:
        >>> class Data:
        ...     def __init__(self): self.epoch, self.cache = 0, {}
        >>> d = Data(); tracker = AttributeTracker({"dataset": d})
        >>> d.epoch = 3; d.cache["k"] = 1
        >>> [(owner, path, value) for owner, path, value in tracker.changes()]
        [('dataset', ('epoch',), 3), ('dataset', ('cache',), {'k': 1})]
        >>> tracker.changes()
        []
    """

    def __init__(self, owners: dict[str, Any]) -> None:
        self._owners = {name: obj for name, obj in owners.items() if obj is not None}
        self._last = {name: snapshot(obj) for name, obj in self._owners.items()}

    def changes(self) -> list[tuple[str, tuple, Any]]:
        """``[(owner, attribute path, new value or DELETED)]`` since the last call (or construction)."""
        out = []
        for name, obj in self._owners.items():
            new, old = snapshot(obj), self._last[name]
            touched = sorted([p for p in new if old.get(p) != new[p]] + [p for p in old if p not in new], key=len)
            done: set[tuple] = set()
            for p in touched:
                if any(p[:i] in done for i in range(1, len(p))):
                    continue  # the object holding it was replaced: that replacement carries it
                out.append((name, p, DELETED if p not in new else _get(obj, p)))
                done.add(p)
            self._last[name] = new
        return out
