"""Load and leaks, kept measured: many epochs, many pipelines, several at once.

* 20 epochs of one pipeline: the caller's RSS, open descriptors and child processes stay flat;
* 30 pipelines built, used and dropped: no descriptor, memfd or /dev/shm file left, no process left;
* three pipelines interleaved in one thread, and one per thread: each bit-identical to its torch loader.

The long sweeps are ``-m slow``; one short round of each runs by default.
"""

from __future__ import annotations

import gc
import os
import threading
import time

import numpy as np
import psutil
import pytest
import torch
from torch.utils.data import DataLoader

import adapters
from porting import assert_equivalent
from tests.adapters._torch_side import RandomAugDataset, to_numpy_tree


def _memfds(pid: int) -> int:
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            n += "memfd:" in os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            pass
    return n


def _alive_children() -> int:
    n = 0
    for child in psutil.Process().children(recursive=True):
        try:
            n += child.status() != psutil.STATUS_ZOMBIE  # (multiprocessing reaps its own at its next start)
        except psutil.NoSuchProcess:
            pass
    return n


def _state():
    me = psutil.Process()
    gc.collect()
    return {
        "fds": me.num_fds(),
        "memfds": _memfds(me.pid),
        "children": _alive_children(),
        "shm": len(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else 0,
    }


def _warm_up():
    """One pipeline first: what lives as long as the process (MindSpore's engine, the Ctrl-C pipe) is made then."""
    for num_workers in (0, 1, 2):
        ds = adapters.to_mindspore(_loader(num_workers, 0))
        it = ds.create_tuple_iterator(output_numpy=True)
        next(it)
        del it, ds
    _settled({"fds": 0, "memfds": 0, "children": 0, "shm": 0}, within=3.0)


def _settled(before, within=8.0):
    deadline = time.monotonic() + within
    while True:
        now = _state()
        if all(now[k] <= before[k] for k in ("fds", "memfds", "children", "shm")) or time.monotonic() > deadline:
            return now
        time.sleep(0.2)


def _loader(num_workers, seed):
    return DataLoader(
        RandomAugDataset(24),
        batch_size=4,
        shuffle=True,
        num_workers=num_workers,
        generator=torch.Generator().manual_seed(seed),
    )


def _epochs_of_one_pipeline(epochs, num_workers):
    ds = adapters.to_mindspore(_loader(num_workers, 0))
    rss = []
    for _ in range(epochs):
        for _row in ds.create_tuple_iterator(output_numpy=True):
            pass
        gc.collect()
        rss.append(psutil.Process().memory_info().rss)
    ds.close()
    return rss


@pytest.mark.parametrize("num_workers", [0, 2])
def test_many_epochs_keep_memory_and_descriptors_flat(num_workers):
    _warm_up()
    before = _state()
    rss = _epochs_of_one_pipeline(6, num_workers)
    assert max(rss[2:]) - rss[2] < 24 << 20, rss  # after warm-up: no growth beyond noise
    after = _settled(before)
    assert all(after[k] <= before[k] for k in after), (before, after)


@pytest.mark.slow
@pytest.mark.parametrize("num_workers", [0, 2])
def test_twenty_epochs_keep_memory_and_descriptors_flat(num_workers):
    _warm_up()
    before = _state()
    rss = _epochs_of_one_pipeline(20, num_workers)
    assert max(rss[3:]) - rss[3] < 24 << 20, rss
    after = _settled(before)
    assert all(after[k] <= before[k] for k in after), (before, after)


def _build_and_drop(count):
    _warm_up()
    before = _state()
    for k in range(count):
        ds = adapters.to_mindspore(_loader(k % 3, k))
        it = ds.create_tuple_iterator(output_numpy=True)
        next(it)
        del it, ds  # dropped mid-epoch, not closed: the finaliser stops its processes
    after = _settled(before)
    assert all(after[k] <= before[k] for k in after), (before, after)


def test_pipelines_built_and_dropped_leave_nothing():
    _build_and_drop(6)


@pytest.mark.slow
def test_thirty_pipelines_built_and_dropped_leave_nothing():
    _build_and_drop(30)


def _expected(num_workers, seed):
    loader = _loader(num_workers, seed)
    return [[to_numpy_tree(b) for b in loader] for _ in range(2)]


def test_three_pipelines_interleaved_in_one_thread_are_each_torchs():
    # num_workers=0 draws from the global streams: the expected runs each start from the same state as their port
    from torch2ms_base import StreamState

    configs = [(0, 1), (2, 2), (1, 3)]
    start = StreamState.capture()
    expected = [_expected(n, s) for n, s in configs]
    start.restore()
    datasets: list = []
    got: list = []
    for n, s in configs:  # each snapshot taken after the previous one's would-be torch run drew its streams
        datasets.append(adapters.to_mindspore(_loader(n, s)))
        _expected(n, s)
    iters = [ds.create_tuple_iterator(num_epochs=2, output_numpy=True) for ds in datasets]
    got = [[[], []] for _ in configs]
    for epoch in range(2):
        done = [False] * len(iters)
        while not all(done):
            for i, it in enumerate(iters):
                if done[i]:
                    continue
                try:
                    got[i][epoch].append(datasets[i].structure.rebuild(next(it)))
                except StopIteration:
                    done[i] = True
    for ds in datasets:
        ds.close()
    assert_equivalent(got, expected, rtol=0, atol=0)


def test_one_pipeline_per_thread_are_each_torchs():
    configs = [(2, 4), (1, 5), (3, 6)]  # with workers: the global streams are not read, only the generators
    expected = [_expected(n, s) for n, s in configs]
    datasets = [adapters.to_mindspore(_loader(n, s)) for n, s in configs]
    got: list = [None] * len(configs)

    def run(i):
        it = datasets[i].create_tuple_iterator(num_epochs=2, output_numpy=True)
        got[i] = [[datasets[i].structure.rebuild(r) for r in it] for _ in range(2)]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(configs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for ds in datasets:
        ds.close()
    assert all(g is not None for g in got)
    assert_equivalent(got, expected, rtol=0, atol=0)
    assert all(np.asarray(g[0][0]["np"]).size for g in got)
