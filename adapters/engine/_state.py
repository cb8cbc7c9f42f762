"""What a resumable position of the stream is made of, as plain data: ``TorchLoaderDataset.state_dict()``.

A state names the next batch the stream gives (``epoch``, ``batch``) and holds what torch's loader
would have at hand to make it:

* ``loader``: the loader process (torch's main-process side) at an *anchor*, the start of the epoch
  (or, with one torch iterator over all epochs, of the sampler's pass) that batch belongs to: the
  global random streams, every random generator the loader's objects hold (``loader.generator``, a
  sampler's ``generator``, a numpy ``Generator`` / ``RandomState`` or ``random.Random`` attribute),
  the ``state_dict()`` of a sampler that has one (torchdata's protocol), and torch's base seed;
* ``workers``: each torch worker's streams just before the task it will do next (map-style), or at the
  anchor (IterableDataset: its iterator cannot be saved, so the batches since the anchor are made again);
* ``check``: the samplers' plain attributes after the loop's ``set_epoch`` at the anchor, compared when
  the resumed epoch begins (a sampler whose other state was not saved is refused there, not followed).

Everything is JSON-ready (ints, strings, lists, dicts; arrays and tensors as base64): a state crosses
processes and files without pickle, and loading one never runs code from it.
"""

from __future__ import annotations

import array
import base64
import ctypes
import functools
import random
import struct
import sys
import types
from typing import Any

import numpy as np

from adapters.engine._spec import named_samplers
from adapters.torch_data._torch_generator import mt19937_key_pos
from torch2ms_base._streams import streams

__all__ = [
    "FORMAT",
    "VERSION",
    "capture_loader",
    "capture_streams",
    "check_config",
    "check_owners",
    "check_position",
    "check_attributes",
    "decode",
    "encode",
    "encode_streams",
    "loader_config",
    "plain_attributes",
    "restore_loader",
    "restore_streams",
    "rng_owners",
    "validate",
]

FORMAT = "torch2ms.loader_state"
VERSION = 1
_SCALARS = (bool, int, float, str, type(None))


# ------------------------------------------------------------------ a JSON-ready codec for random states


def encode(value: Any, where: str = "state") -> Any:
    """``value`` (a random state, a sampler's ``state_dict()``) as JSON-ready data; :func:`decode` inverts it.

    Raises:
        TypeError: a value of a type that cannot be written as data, naming where it is.
    """
    if isinstance(value, (*_SCALARS, np.integer, np.floating)):
        return value.item() if isinstance(value, np.generic) else value
    if isinstance(value, (bytes, bytearray)):
        return {"bytes": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, array.array):  # (python's random state, read raw: see capture_streams)
        return encode(tuple(value), where)
    if isinstance(value, np.ndarray):
        return {"ndarray": base64.b64encode(np.ascontiguousarray(value).tobytes()).decode(),
                "dtype": value.dtype.str, "shape": list(value.shape)}  # fmt: skip
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        arr = value.detach().cpu().numpy()
        return {"tensor": encode(arr, where)}
    if isinstance(value, tuple):
        return {"tuple": [encode(v, f"{where}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"to_mindspore: {where} has a non-string key; a loader state holds dicts keyed by str")
        return {"dict": {k: encode(v, f"{where}[{k!r}]") for k, v in value.items()}}
    raise TypeError(
        f"to_mindspore: {where} is a {type(value).__name__}; a loader state holds numbers, strings, bytes, "
        "arrays, tensors and lists / tuples / dicts of them"
    )


def decode(data: Any, where: str = "state") -> Any:
    """The value :func:`encode` wrote (tensors as torch tensors when torch is importable, else numpy arrays).

    Raises:
        ValueError: ``data`` is not what :func:`encode` writes, naming where.
    """
    if isinstance(data, _SCALARS):
        return data
    if isinstance(data, list):
        return [decode(v, f"{where}[{i}]") for i, v in enumerate(data)]
    if isinstance(data, dict) and len(data) >= 1:
        if set(data) == {"bytes"}:
            return base64.b64decode(data["bytes"])
        if set(data) == {"ndarray", "dtype", "shape"}:
            raw = base64.b64decode(data["ndarray"])
            return np.frombuffer(raw, dtype=np.dtype(data["dtype"])).reshape(data["shape"]).copy()
        if set(data) == {"tensor"}:
            arr = decode(data["tensor"], where)
            torch = sys.modules.get("torch")
            return torch.from_numpy(arr) if torch is not None else arr
        if set(data) == {"tuple"} and isinstance(data["tuple"], list):
            return tuple(decode(v, f"{where}[{i}]") for i, v in enumerate(data["tuple"]))
        if set(data) == {"dict"} and isinstance(data["dict"], dict):
            return {k: decode(v, f"{where}[{k!r}]") for k, v in data["dict"].items()}
    raise ValueError(f"to_mindspore: {where} is not an encoded loader-state value (got {type(data).__name__})")


# ------------------------------------------------------------------ random generators held by objects


def _rng_kind(obj) -> str | None:
    from adapters.torch_data._torch_generator import Generator

    if isinstance(obj, Generator):
        return "adapters"
    if isinstance(obj, np.random.Generator):
        return "numpy.Generator"
    if isinstance(obj, np.random.RandomState):
        return "numpy.RandomState"
    if isinstance(obj, random.Random):
        return "random.Random"
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(obj, torch.Generator):
        return "torch"
    return None


def _get_rng(obj, kind: str):
    if kind in ("adapters", "torch"):
        return obj.get_state()
    if kind == "numpy.Generator":
        return obj.bit_generator.state
    if kind == "numpy.RandomState":
        return obj.get_state()
    return obj.getstate()


def _put_rng(obj, attr: str, kind: str, state, where: str) -> None:
    """Give ``obj.attr`` the saved generator state.

    Raises:
        ValueError: this copy has no such generator: the saved run's was made on first use (Hugging Face's
            seeded collators make theirs then, keyed on the process id, and would make it again here), so it
            cannot be put back exactly.
    """
    current = getattr(obj, attr, None)
    if _rng_kind(current) != kind:
        raise ValueError(
            f"to_mindspore: the saved state has a random generator at {where} ({kind}), made after this object was "
            f"built (here it is {type(current).__name__}): one made on first use, perhaps keyed on the process id (as "
            "Hugging Face's seeded collators do), cannot be put back exactly. Resume at an epoch's start with "
            "non-persistent workers (their collators start afresh each epoch, as torch's), or give the object "
            "state_dict() / load_state_dict()."
        )
    _set_rng(current, kind, state)


def _set_rng(obj, kind: str, state) -> None:
    if kind == "torch":
        torch = sys.modules["torch"]
        obj.set_state(state if isinstance(state, torch.Tensor) else torch.from_numpy(np.asarray(state)))
    elif kind == "adapters":
        obj.set_state(np.asarray(state))
    elif kind == "numpy.Generator":
        obj.bit_generator.state = state
    elif kind == "numpy.RandomState":
        obj.set_state(state)
    else:
        obj.setstate(state)


def _attributes(obj) -> dict:
    try:
        return dict(vars(obj))
    except TypeError:  # (an object without __dict__: nothing of it is followed)
        return {}


def rng_objects(spec, owners: list[tuple[str, Any]]) -> list[tuple[str, Any, str]]:
    """``(path, generator, kind)`` for ``loader.generator`` and every generator attribute of ``owners``."""
    out: list[tuple[str, Any, str]] = []
    kind = _rng_kind(spec.generator) if spec.generator is not None else None
    if kind is not None:
        out.append(("generator", spec.generator, kind))
    for path, owner in owners:
        for name, value in _attributes(owner).items():
            kind = _rng_kind(value)
            if kind is not None and value is not spec.generator:
                out.append((f"{path}.{name}", value, kind))
    return out


def _stateful(owners: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    return [
        (path, obj)
        for path, obj in owners
        if callable(getattr(obj, "state_dict", None)) and callable(getattr(obj, "load_state_dict", None))
    ]


# ------------------------------------------------------------------ streams


def rng_owners(spec) -> dict:
    """The user objects whose random generators a torch worker (or, without workers, the loader) carries along:
    the dataset and a ``collate_fn`` object (Hugging Face's seeded collators make ``self.generator`` on first use)."""
    owners = {"dataset": spec.dataset}
    fn = spec.collate_fn
    if hasattr(fn, "__dict__") and not isinstance(fn, (types.FunctionType, types.MethodType, functools.partial)):
        owners["collate_fn"] = fn
    return owners


def capture_streams(owners: dict | None = None, *, raw: bool = False) -> dict:
    """This process's global random streams (and the generator attributes of ``owners``, see :func:`rng_owners`).

    ``raw``: as the streams give them (tensors as numpy arrays), for a message between the pipeline's own
    processes; :func:`encode_streams` writes them as data later (a torch worker sends its streams with every
    batch: encoding there would cost more than reading them).
    """
    out = {s.name: _FAST.get(s.name, s.get_state)() for s in streams() if s.get_state is not None and s.live()}
    for name, value in out.items():
        if isinstance(value, np.ndarray) and value.dtype == np.uint8:
            out[name] = value.tobytes()  # (a generator's byte state: bytes pickle in one copy)
    for owner, obj in (owners or {}).items():
        for name, value in _attributes(obj).items():
            kind = _rng_kind(value)
            if kind is not None:
                out[f"{owner}.{name}"] = {"kind": kind, "state": _get_rng(value, kind)}
    if owners:
        out[_PLAIN] = {owner: _plain(obj) for owner, obj in owners.items()}  # (checked by a resumed worker)
    torch = sys.modules.get("torch")
    if torch is not None:
        out = {k: v.numpy().copy() if isinstance(v, torch.Tensor) else v for k, v in out.items()}
    return out if raw else encode_streams(out)


def _python_state():
    version, internal, gauss = random.getstate()
    return version, array.array("I", internal), gauss  # (pickles as bytes: 625 ints take 15 µs as a tuple)


_LEGACY: dict = {}  # id(numpy's global RandomState) -> its fast reader, or None (use get_state)


def _numpy_state():
    """``np.random.get_state()``, read from the C state in a few µs (it takes about 35 µs; see _legacy_reader)."""
    rs = np.random.mtrand._rand
    reader = _LEGACY.get(id(rs), False)
    if reader is False:
        reader = _LEGACY[id(rs)] = _legacy_reader(rs)
    if reader is None:
        return np.random.get_state()
    has_gauss, gauss = reader
    key, pos = mt19937_key_pos(rs._bit_generator)
    return "MT19937", key.tobytes(), pos, has_gauss.value, gauss.value  # (the key as bytes: see _as_stream_state)


def _legacy_reader(rs):
    """Where numpy's legacy RandomState keeps its cached gaussian (``has_gauss``, ``gauss``), found and checked.

    They are C fields of the object, not exposed to Python. The object's memory is searched for a value set
    through ``set_state``, and the reader is kept only if it reads back exactly what ``get_state`` says in two
    states; the stream is put back as it was. None (``get_state`` is used) if anything does not match.
    """
    bg = rs._bit_generator
    if type(bg).__name__ != "MT19937":
        return None
    saved = rs.get_state()
    size = type(rs).__basicsize__
    probe = 1234.5678125
    try:
        rs.set_state((saved[0], saved[1], saved[2], 1, probe))
        at = ctypes.string_at(id(rs), size).find(struct.pack("d", probe))
        if at < 8:
            return None
        has_gauss, gauss = ctypes.c_int.from_address(id(rs) + at - 8), ctypes.c_double.from_address(id(rs) + at)
        ok = (has_gauss.value, gauss.value) == (1, probe)
        rs.set_state((saved[0], saved[1], saved[2], 0, 0.0))
        ok = ok and (has_gauss.value, gauss.value) == (0, 0.0)
    finally:
        rs.set_state(saved)
    key, pos = mt19937_key_pos(bg)
    ok = ok and (has_gauss.value, gauss.value, pos) == (saved[3], saved[4], saved[2]) and bool((key == saved[1]).all())
    return (has_gauss, gauss) if ok else None


def _torch_state() -> bytes:
    return sys.modules["torch"].random.get_rng_state().numpy().tobytes()


_FAST = {"python.random": _python_state, "numpy.random": _numpy_state, "torch": _torch_state}  # raw, by stream


def _as_stream_state(name: str, value):
    """A state as its stream's ``set_state`` takes it (raw readers give byte strings for arrays)."""
    if name == "torch" and isinstance(value, (bytes, np.ndarray)):
        return sys.modules["torch"].from_numpy(np.frombuffer(bytes(value), dtype=np.uint8).copy())
    if name == "numpy.random" and isinstance(value, tuple) and len(value) == 5 and isinstance(value[1], bytes):
        return (value[0], np.frombuffer(value[1], dtype=np.uint32).copy(), *value[2:])
    return value


def encode_streams(states: dict) -> dict:
    """Raw states (:func:`capture_streams` with ``raw=True``) as data."""
    return {name: encode(value, name) for name, value in states.items()}


def restore_streams(saved: dict, owners: dict | None = None) -> None:
    """Make ``saved`` (from :func:`capture_streams`) this process's streams, and the owners' generators.

    Raises:
        ValueError: a stream of ``saved`` is unknown here, or its owner is not there.
    """
    by_name = {s.name: s for s in streams()}
    for name, data in saved.items():
        if name == _PLAIN:
            continue
        value = decode(data, name)
        owner, _, attr = name.partition(".")
        if owner in (owners or {}) and isinstance(value, dict):
            _put_rng((owners or {})[owner], attr, value["kind"], value["state"], name)
            continue
        stream = by_name.get(name)
        if stream is None or stream.set_state is None:
            raise ValueError(f"to_mindspore: the saved state has the random stream {name!r}, unknown here")
        if not stream.live():
            if stream.module is None:
                raise ValueError(f"to_mindspore: the random stream {name!r} is not live here")
            __import__(stream.module)  # the state was taken where it was live (torch imported by the dataset)
        stream.set_state(_as_stream_state(name, value))


# ------------------------------------------------------------------ the loader process at an anchor


def capture_loader(spec, base_seed: int | None) -> dict:
    """The loader process's state before ``iter(loader)`` of an epoch (or pass): see the module docstring."""
    owners = named_samplers(spec)
    nw0 = spec.num_workers == 0
    return {
        "streams": capture_streams(rng_owners(spec) if nw0 else None),
        "generators": {p: encode(_get_rng(g, k), p) for p, g, k in rng_objects(spec, owners)},
        "state_dicts": {p: encode(obj.state_dict(), f"{p}.state_dict()") for p, obj in _stateful(owners)},
        "base_seed": base_seed,
    }


def restore_loader(spec, saved: dict) -> int | None:
    """Put the loader process where :func:`capture_loader` found it; returns the base seed then in force.

    Raises:
        ValueError: a generator or stateful sampler of the state is not there, naming it.
    """
    owners = named_samplers(spec)
    restore_streams(saved["streams"], rng_owners(spec) if spec.num_workers == 0 else None)
    here = {p: (g, k) for p, g, k in rng_objects(spec, owners)}
    for path, data in saved["generators"].items():
        if path not in here:
            raise ValueError(f"to_mindspore: the saved state has a random generator at {path}; this loader has none")
        g, k = here[path]
        _set_rng(g, k, decode(data, path))
    stateful = dict(_stateful(owners))
    for path, data in saved["state_dicts"].items():
        if path not in stateful:
            raise ValueError(f"to_mindspore: the saved state has {path}.state_dict(); this loader's {path} has none")
        stateful[path].load_state_dict(decode(data, f"{path}.state_dict()"))
    return saved["base_seed"]


def plain_attributes(spec) -> dict:
    """The samplers' plain attributes (and, with ``num_workers=0``, the dataset's), by path.

    Compared when a resumed epoch begins: what no generator or ``state_dict()`` carries must already be the same
    (a sampler's ``epoch``, ``rank``, a dataset's ``mosaic`` flag). Generators and samplers with a
    ``state_dict()`` are left out (they are restored).
    """
    owners = named_samplers(spec)
    stateful = {p for p, _ in _stateful(owners)}
    if spec.num_workers == 0:
        owners.extend(rng_owners(spec).items())
    return {path: plain for path, obj in owners if path not in stateful and (plain := _plain(obj))}


def _plain(obj) -> dict:
    return {
        name: value
        for name, value in _attributes(obj).items()
        if isinstance(value, _SCALARS) and not (isinstance(value, str) and len(value) > 256)
    }


_PLAIN = "plain attributes"  # capture_streams' entry for its owners' plain attributes


def check_owners(saved: dict, owners: dict, where: str) -> None:
    """A resumed torch worker: its dataset / collate_fn copy must hold what the saved run's worker held.

    Its generators were put back; what else its copy holds (a counter ``__getitem__`` moves, a generator keyed on
    the worker's pid as Hugging Face's collators key theirs, a dataset your loop changed after persistent workers
    were forked) is not, and would make other batches: refused here, naming the attribute, never followed.

    Raises:
        ValueError: the first attribute that differs.
    """
    expected = decode(saved.get(_PLAIN, {"dict": {}}), _PLAIN)
    check_attributes(expected, {owner: _plain(obj) for owner, obj in owners.items()}, where)


def check_attributes(saved: dict, now: dict, where: str) -> None:
    """Raise if a plain attribute differs from the saved run at the resumed epoch's start.

    Raises:
        ValueError: naming the attribute, both values, and what to do.
    """
    for path, attrs in saved.items():
        for name, value in attrs.items():
            here = now.get(path, {}).get(name, "<missing>")
            if here != value and not (isinstance(value, float) and isinstance(here, float) and value != value):
                raise ValueError(
                    f"to_mindspore: resuming {where}: {path}.{name} is {here!r} here but was {value!r} in the "
                    "run the state was saved from; its batches would differ. Set it as that run had it before "
                    "iterating (or give that object state_dict() / load_state_dict(), which a state then carries)."
                )


# ------------------------------------------------------------------ the configuration a state belongs to


def loader_config(spec, schedule, *, length: int | None, steps_per_epoch: int | None) -> dict:
    """What must be the same for a state to resume a loader: compared by name on load."""
    try:
        dataset_length: int | None = len(spec.dataset)
    except TypeError:
        dataset_length = None
    return {
        "dataset": type(spec.dataset).__qualname__,
        "dataset_length": dataset_length,
        "kind": spec.kind,
        "batch_size": spec.batch_size,
        "drop_last": spec.drop_last,
        "sampler": type(spec.sampler).__qualname__ if spec.sampler is not None else None,
        "batch_sampler": type(spec.batch_sampler).__qualname__ if spec.batch_sampler is not None else None,
        "num_workers": spec.num_workers,
        "persistent_workers": bool(spec.persistent_workers),
        "prefetch_factor": schedule.prefetch_factor,
        "mode": schedule.mode,
        "steps_per_epoch": steps_per_epoch,
        "batches_per_epoch": length,
    }


def check_config(saved: dict, now: dict) -> None:
    """Refuse a state taken from another loader configuration, naming every difference.

    Raises:
        ValueError: ``"... batch_size: 4 in the state, 8 here; ..."``.
    """
    diffs = [
        f"{key}: {saved.get(key, '<missing>')!r} in the state, {now.get(key, '<missing>')!r} here"
        for key in sorted(set(saved) | set(now))
        if saved.get(key, "<missing>") != now.get(key, "<missing>")
    ]
    if diffs:
        raise ValueError(
            "to_mindspore: this state was saved from another loader configuration (" + "; ".join(diffs) + "); "
            "resume with the loader it was taken from"
        )


_KEYS = {"format", "version", "config", "epoch", "batch", "replay", "loader", "workers", "anchor"}


def validate(state: Any) -> dict:
    """Check the shape of a state before anything of it is used; return it.

    Raises:
        TypeError / ValueError: naming the key that is wrong.
    """
    if not isinstance(state, dict):
        raise TypeError(f"to_mindspore: a loader state is a dict (from state_dict()), got {type(state).__name__}")
    if state.get("format") != FORMAT:
        raise ValueError(f"to_mindspore: not a loader state (format {state.get('format')!r}, expected {FORMAT!r})")
    if state.get("version") != VERSION:
        raise ValueError(f"to_mindspore: loader state version {state.get('version')!r}, this version reads {VERSION}")
    missing = sorted(_KEYS - set(state))
    if missing:
        raise ValueError(f"to_mindspore: the loader state lacks {', '.join(missing)}")
    for key in ("epoch", "batch", "replay"):
        v = state[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"to_mindspore: loader state {key!r} must be an int >= 0, got {v!r}")
    _validate_loader(state["loader"])
    return state


def check_position(state: dict, num_workers: int, continuous: bool) -> tuple[int, int]:
    """The saved position as ``(global batch, global first batch of its anchor's pass)``, its parts checked.

    Raises:
        ValueError: a malformed ``workers`` or ``anchor`` entry, named.
    """
    b, workers, anchor = state["batch"], state["workers"], state["anchor"]
    if workers is not None and (not isinstance(workers, list) or len(workers) != num_workers):
        raise ValueError(
            f"to_mindspore: the state's 'workers' must be a list of {num_workers} stream states, "
            f"got {type(workers).__name__}"
        )
    for w, saved in enumerate(workers or ()):
        if saved is not None and not isinstance(saved, dict):
            raise ValueError(f"to_mindspore: the state's workers[{w}] must be a dict, got {type(saved).__name__}")
        for name, data in (saved or {}).items():
            decode(data, f"workers[{w}][{name!r}]")  # (a malformed entry is named here, not in a worker)
    if not continuous:
        return b, 0
    keys = ("pass", "start", "position")
    if not isinstance(anchor, dict) or not all(isinstance(anchor.get(k), int) for k in keys):
        raise ValueError("to_mindspore: the state's 'anchor' must hold the ints pass, start and position")
    if not 0 <= anchor["start"] <= anchor["position"] or anchor["position"] < b:
        raise ValueError(f"to_mindspore: the state's anchor {anchor!r} does not fit its batch {b}")
    return anchor["position"], anchor["start"]


def _validate_loader(loader: Any) -> None:
    needed = {"streams", "generators", "state_dicts", "base_seed", "check"}
    if not isinstance(loader, dict) or not needed <= set(loader):
        raise ValueError(f"to_mindspore: loader state 'loader' must hold {', '.join(sorted(needed))}")
    for key in ("streams", "generators", "state_dicts"):
        if not isinstance(loader[key], dict):
            raise ValueError(
                f"to_mindspore: loader state 'loader.{key}' must be a dict, got {type(loader[key]).__name__}"
            )
    if "unsaved" in loader:
        raise ValueError(f"to_mindspore: this loader state could not be saved ({loader['unsaved']})")
