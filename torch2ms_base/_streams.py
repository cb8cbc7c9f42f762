"""The one list of global random streams, and what is done with it: seed, capture, restore.

Every place that touches "all the random streams" reads :func:`streams`: ``seed_everything`` seeds
them, :class:`StreamState` captures and restores them (``own_streams``), and the adapters engine
seeds them in each emulated torch worker as torch's ``_worker_loop`` does. Packages that own a
stream add it with :func:`register_stream` (``adapters`` registers its numpy emulation of torch's
default generator), so no list is ever written twice.
"""

from __future__ import annotations

import dataclasses
import random
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

__all__ = ["RandomStream", "StreamState", "StreamUnavailable", "own_streams", "register_stream", "streams"]


class StreamUnavailable(Exception):
    """Raised by a stream's ``seed`` when it cannot be seeded here (the reason is the message)."""


@dataclasses.dataclass(frozen=True)
class RandomStream:
    """One global random stream.

    Attributes:
        name: how reports name it (``"numpy.random"``).
        seed: seeds it; for a stream that needs a package, imports it if it can (``StreamUnavailable``
            with the reason if not).
        module: the module whose import makes the stream exist in a process (``None``: always there).
            Capturing and worker seeding never import it: they only touch streams already live.
        get_state / set_state: capture and restore (``None``: not captured, e.g. a seed-only setting).
        worker_seed: which of torch's per-worker seeds it gets in a DataLoader worker (``"python"``,
            ``"torch"`` or ``"numpy"``, the fields of ``adapters.torch_data.WorkerSeeds``); ``None``: torch
            does not reseed it in workers.
    """

    name: str
    seed: Callable[[Any], object]  # what it returns is ignored (torch's manual_seed returns the generator)
    module: str | None = None
    get_state: Callable[[], Any] | None = None
    set_state: Callable[[Any], object] | None = None
    worker_seed: str | None = None

    def live(self) -> bool:
        """Whether the stream exists in this process now (its module is imported)."""
        return self.module is None or self.module in sys.modules


def _import(name: str):
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError as exc:  # not installed, or blocked on purpose
        raise StreamUnavailable(f"{name} is not importable ({exc.__class__.__name__}: {exc})") from None


def _seed_mindspore(seed: int) -> None:
    _import("mindspore").set_seed(seed)  # also reseeds numpy's global stream: numpy is seeded later


def _seed_mindspore_dataset(seed: int) -> None:
    _import("mindspore.dataset").config.set_seed(seed)  # also reseeds python and numpy: seeded later


def _seed_torch(seed: int) -> None:
    _import("torch").manual_seed(seed)  # CPU, and every CUDA device when CUDA is initialised


def _seed_torch_cuda(seed: int) -> None:
    torch = _import("torch")
    if not torch.cuda.is_available():
        raise StreamUnavailable("CUDA is not available")
    torch.cuda.manual_seed_all(seed)


def _torch_get():
    return sys.modules["torch"].random.get_rng_state()


def _torch_set(state) -> None:
    sys.modules["torch"].random.set_rng_state(state)


# Seeding order matters: MindSpore's seeding reseeds python and numpy, so those two come last, and
# streams registered by other packages go in before them.
_FRAMEWORKS = [
    RandomStream("mindspore", _seed_mindspore, module="mindspore"),
    RandomStream("mindspore.dataset", _seed_mindspore_dataset, module="mindspore.dataset"),
    RandomStream("torch", _seed_torch, module="torch", get_state=_torch_get, set_state=_torch_set, worker_seed="torch"),
    RandomStream("torch.cuda", _seed_torch_cuda, module="torch"),
]
_REGISTERED: list[RandomStream] = []
_PYTHON_NUMPY = [
    RandomStream(
        "python.random", random.seed, get_state=random.getstate, set_state=random.setstate, worker_seed="python"
    ),
    RandomStream(
        "numpy.random",
        np.random.seed,
        get_state=np.random.get_state,
        set_state=np.random.set_state,
        worker_seed="numpy",
    ),
]
_last_seed: int | None = None  # what seed_everything last seeded with (a late registration gets it too)


def streams() -> list[RandomStream]:
    """Every known stream, in seeding order.

    Example:
        >>> [s.name for s in streams()][-2:]
        ['python.random', 'numpy.random']
    """
    return _FRAMEWORKS + _REGISTERED + _PYTHON_NUMPY


def register_stream(stream: RandomStream) -> None:
    """Add a stream owned by another package (replacing one of the same name).

    A stream registered after ``seed_everything`` ran is seeded at once with that seed, so the
    order of imports does not matter.

    Example:
        >>> register_stream(RandomStream("example.stream", lambda seed: None))
        >>> "example.stream" in [s.name for s in streams()]
        True
    """
    _REGISTERED[:] = [s for s in _REGISTERED if s.name != stream.name] + [stream]
    if _last_seed is not None:
        stream.seed(_last_seed)


def note_seeded(seed: int) -> None:
    """Record the seed ``seed_everything`` used (for streams registered later)."""
    global _last_seed
    _last_seed = seed


class StreamState:
    """The states of every live, capturable stream (:func:`streams`), by name.

    Example:
        >>> s = StreamState.capture(); a = random.random(); s.restore(); a == random.random()
        True
    """

    def __init__(self, states: dict[str, Any]) -> None:
        self.states = states

    @classmethod
    def capture(cls) -> StreamState:
        """The current states (a stream whose package is not imported is not captured: nothing is imported)."""
        return cls({s.name: s.get_state() for s in streams() if s.get_state is not None and s.live()})

    def restore(self) -> None:
        """Make these the current states."""
        by_name = {s.name: s for s in streams()}
        for name, state in self.states.items():
            set_state = by_name[name].set_state
            if set_state is None:  # capture() takes what it can restore: a registry entry with get_state only
                raise RuntimeError(f"stream {name!r} has a get_state but no set_state: it cannot be restored")
            set_state(state)

    def __getitem__(self, name: str) -> Any:
        return self.states[name]


def own_streams(iterable: Iterable, state: StreamState | None = None) -> Iterator:
    """Iterate ``iterable`` with its own copy of the global random streams.

    Two torch DataLoaders with ``num_workers=0`` walked in lock step in one process draw their
    augmentations from the *same* global streams, so each sees what the other left: neither gives the
    batches it gives when it runs alone. Here each step runs with the pipeline's own copy of the
    streams, swapped in before the step and out after it.

    Args:
        iterable: the pipeline (e.g. a torch DataLoader with ``num_workers=0``, walked over epochs).
        state: the streams it starts from (default: the current ones, captured now).

    Returns:
        An iterator over the same items; ``iter()`` and every ``next()`` of ``iterable`` run with
        the pipeline's streams, and the caller's streams are put back after each.

    Example:
        >>> random.seed(0); mine = own_streams(iter(lambda: random.random(), None))
        >>> random.seed(0); first = next(mine); random.random() == first  # the caller's stream untouched
        True
    """
    own = state or StreamState.capture()
    return _walk(iterable, own)


def _walk(iterable: Iterable, own: StreamState):
    it = None
    while True:
        caller = StreamState.capture()
        own.restore()
        try:
            if it is None:
                it = iter(iterable)
            item = next(it)
        except StopIteration:
            return
        finally:
            own = StreamState.capture()  # where the pipeline left its streams, for its next step
            caller.restore()
        yield item
