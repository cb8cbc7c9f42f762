"""Give an in-process pipeline its own copy of the global random streams.

Two torch DataLoaders with ``num_workers=0`` walked in lock step in one process draw their
augmentations from the *same* global streams (python ``random``, numpy's legacy global
``RandomState``, torch's default generator), so each sees what the other left: neither gives the
batches it gives when it runs alone. :func:`own_streams` wraps a pipeline so that each step runs
with that pipeline's own copy of those streams, swapped in before the step and out after it; the
caller's streams are exactly as they were between steps.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

__all__ = ["StreamState", "own_streams"]


class StreamState:
    """The states of the global random streams: python, numpy (legacy global), torch (if imported).

    Example:
        >>> s = StreamState.capture(); a = random.random(); s.restore(); a == random.random()
        True
    """

    def __init__(self, python: Any, numpy: Any, torch: Any) -> None:
        self.python, self.numpy, self.torch = python, numpy, torch

    @classmethod
    def capture(cls) -> StreamState:
        """The current states (torch's only when torch is already imported: nothing is imported here)."""
        torch = sys.modules.get("torch")
        return cls(random.getstate(), np.random.get_state(), torch.random.get_rng_state() if torch else None)

    def restore(self) -> None:
        """Make these the current states."""
        random.setstate(self.python)
        np.random.set_state(self.numpy)
        if self.torch is not None:
            sys.modules["torch"].random.set_rng_state(self.torch)


def own_streams(iterable: Iterable, state: StreamState | None = None) -> Iterator:
    """Iterate ``iterable`` with its own copy of the global random streams.

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
