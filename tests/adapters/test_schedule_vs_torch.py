"""adapters.engine.Schedule against torch's own dispatch (``_try_put_index``), recorded from a real DataLoader.

For each task torch's iterator puts on a worker queue we record the worker, the index batch, and how many
batches the loop had taken by then; Schedule must say the same: which worker (``worker_of``, ``WorkerCycle``),
and how far ahead torch has dispatched (``dispatched``, ``max_outstanding``) — workers 1-4, prefetch_factor 1-4,
map-style and iterable, one epoch per iterator and one iterator over several epochs (YOLOv5's
InfiniteDataLoader).
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info
from torch.utils.data import dataloader as torch_dataloader

from adapters.engine import Schedule
from adapters.engine._schedule import WorkerCycle


@contextlib.contextmanager
def recorded_puts():
    """Record ``(taken, worker, index, active workers)`` for every task torch's iterator dispatches."""
    puts, taken = [], [0]
    cls = torch_dataloader._MultiProcessingDataLoaderIter
    put, next_index = cls._try_put_index, cls._next_index
    last_index = []

    def spy_next_index(self):
        index = next_index(self)
        last_index.append(index)
        return index

    def spy_put(self):
        before = self._send_idx
        active = tuple(i for i, alive in enumerate(self._workers_status) if alive)
        put(self)
        if self._send_idx > before:
            puts.append((taken[0], self._task_info[self._send_idx - 1][0], last_index[-1], active))

    # (spies on torch's own iterator class, put back below)
    cls._try_put_index, cls._next_index = spy_put, spy_next_index  # type: ignore[method-assign]
    try:
        yield puts, taken
    finally:
        cls._try_put_index, cls._next_index = put, next_index  # type: ignore[method-assign]


def _walk(loader, epochs, taken, puts=None):
    """Iterate; returns, per epoch, how many tasks torch had dispatched when each batch was handed out."""
    marks: list[list] = []
    for _ in range(epochs):
        marks.append([])
        for _batch in loader:
            taken[0] += 1
            if puts is not None:
                marks[-1].append(len(puts))
    return marks


class _Repeat:
    """YOLOv5's / timm's ``_RepeatSampler``."""

    def __init__(self, sampler):
        self.sampler = sampler

    def __iter__(self):
        while True:
            yield from iter(self.sampler)


class _OneIterator(DataLoader):
    """YOLOv5's InfiniteDataLoader: one iterator over all epochs."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        object.__setattr__(self, "batch_sampler", _Repeat(self.batch_sampler))
        self.iterator = super().__iter__()

    def __len__(self):
        return len(self.batch_sampler.sampler)

    def __iter__(self):
        for _ in range(len(self)):
            yield next(self.iterator)


@pytest.mark.parametrize("prefetch", [1, 2, 3, 4])
@pytest.mark.parametrize("num_workers", [1, 2, 3, 4])
@pytest.mark.parametrize("mode", ["epochs", "repeat"])
def test_map_style_dispatch_matches_torch(mode, num_workers, prefetch):
    data: Any = [np.float32(i) for i in range(22)]  # a list: a map-style source (torch's stubs want a Dataset)
    kwargs = dict(
        batch_size=3,
        shuffle=True,
        num_workers=num_workers,
        prefetch_factor=prefetch,
        generator=torch.Generator().manual_seed(0),
        persistent_workers=mode == "repeat",
    )
    epochs = 3
    with recorded_puts() as (puts, taken):
        loader = _OneIterator(data, **kwargs) if mode == "repeat" else DataLoader(data, **kwargs)
        marks = _walk(loader, epochs, taken, puts)
    sched = Schedule(num_workers, persistent=mode == "repeat", mode=mode, prefetch_factor=prefetch)
    per_epoch = len(loader)
    if mode == "repeat":  # one iterator: global task number k, the cycle goes on across epochs
        assert [w for _, w, _, _ in puts] == [sched.worker_of(start=0, k=k) for k in range(len(puts))]
        # across epoch boundaries it stays prefetch * workers tasks ahead of the loop (the sampler never ends)
        flat = [made for epoch in marks for made in epoch]
        assert flat == [sched.max_outstanding + c for c in range(1, len(flat) + 1)]
    else:  # one iterator per epoch: the cycle restarts at worker 0; dispatched() says how far ahead it runs
        assert len(puts) == epochs * per_epoch
        for e in range(epochs):
            epoch = puts[e * per_epoch : (e + 1) * per_epoch]
            assert [w for _, w, _, _ in epoch] == [sched.worker_of(start=0, k=k) for k in range(per_epoch)]
            for consumed, made in enumerate(marks[e], start=1):  # tasks dispatched when batch `consumed` came
                drawn = sched.dispatched(consumed=consumed, total=per_epoch, finished=False)
                assert made - e * per_epoch == min(drawn, per_epoch)  # (a draw beyond is the sampler's end)


class _UnevenShards(IterableDataset):
    """Worker w yields 2 + 2 * w items: shards end one after another."""

    def __iter__(self):
        info = get_worker_info()
        w = 0 if info is None else info.id
        yield from (np.float32(100 * w + i) for i in range(2 + 2 * w))


@pytest.mark.parametrize("prefetch", [1, 2, 4])
@pytest.mark.parametrize("num_workers", [1, 2, 3, 4])
def test_iterable_dispatch_matches_torch(num_workers, prefetch):
    with recorded_puts() as (puts, taken):
        loader = DataLoader(_UnevenShards(), batch_size=2, num_workers=num_workers, prefetch_factor=prefetch)
        _walk(loader, 1, taken)
    cycle = WorkerCycle(num_workers)
    for _, w, _, active in puts:  # torch skips the workers it has seen end; WorkerCycle given the same stops
        for gone in set(range(num_workers)) - set(active):
            cycle.stop(gone)
        assert next(cycle) == w
    assert len({w for _, w, _, _ in puts}) == num_workers
