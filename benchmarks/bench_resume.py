"""Exact resume: time to the first resumed batch, against the uninterrupted run and against replaying torch.

Run: ``.venv/bin/python benchmarks/bench_resume.py [--images 640] [--batch-size 32] [--workers 0 2]``.

The loader is bench_engine's image-classification loader (cv2.imread, random crop and flip from numpy's global
RNG; ``shuffle=True`` with a seeded generator). For each ``num_workers`` and each position in epoch 1 (its start,
middle and last batch), a first run takes ``state_dict()`` there (untimed); then, timed from the call:

* **resumed**: ``to_mindspore(loader, state=state)`` and the first batch of a new iterator (building the loader,
  starting the pipeline's processes and, without workers, making the batches of the epoch before the position
  again: an iterator in the loader process cannot be saved);
* **uninterrupted**: the same run's time per batch (epoch 1 of an uninterrupted run, mean) and its time to the
  first batch of a fresh ``to_mindspore`` (construction included), for scale;
* **torch, replayed**: torch's DataLoader has no state to load; the cheapest exact torch alternative is to build
  it again with the same seeds and walk it to the position (epoch 0 to its end, epoch 1 to the batch).

Every resumed first batch is compared with the uninterrupted run's batch at that position (dtype, shape, bytes).
The machine's other load is not controlled: rerun when a figure looks off.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import timeit  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _bench_util import print_table, seed_all, to_numpy_tree  # noqa: E402
from bench_engine import JpegDataset, make_jpegs  # noqa: E402


def loader(paths, batch_size: int, workers: int):
    import torch
    from torch.utils.data import DataLoader

    return DataLoader(JpegDataset(paths), batch_size=batch_size,  # type: ignore[arg-type]  # a map-style source
                      shuffle=True, num_workers=workers,
                      generator=torch.Generator().manual_seed(0))  # fmt: skip


def first_row(ds):
    it = ds.create_tuple_iterator(output_numpy=True, num_epochs=1)
    return ds.structure.rebuild(next(it)), it


def same(a, b) -> bool:
    return all(x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def measure(paths, batch_size: int, workers: int) -> list:
    import adapters

    per_epoch = len(paths) // batch_size + (len(paths) % batch_size > 0)
    seed_all(0)
    ds = adapters.to_mindspore(loader(paths, batch_size, workers))
    epoch0 = [ds.structure.rebuild(r) for r in ds.create_tuple_iterator(output_numpy=True, num_epochs=1)]
    t0 = time.perf_counter()
    epoch1 = [ds.structure.rebuild(r) for r in ds.create_tuple_iterator(output_numpy=True, num_epochs=1)]
    per_batch = (time.perf_counter() - t0) / len(epoch1)
    ds.close()
    del epoch0
    seed_all(0)
    t0 = time.perf_counter()
    fresh = adapters.to_mindspore(loader(paths, batch_size, workers))
    first_row(fresh)
    fresh_first = time.perf_counter() - t0
    fresh.close()
    rows = []
    for name, b in (("start", 0), ("middle", per_epoch // 2), ("last batch", per_epoch - 1)):
        seed_all(0)
        ds = adapters.to_mindspore(loader(paths, batch_size, workers))
        for _ in ds.create_tuple_iterator(output_numpy=True, num_epochs=1):
            pass
        it = ds.create_tuple_iterator(output_numpy=True, num_epochs=1)
        for _ in range(b):
            next(it)
        state = ds.state_dict()
        del it
        ds.close()
        seed_all(1)
        t0 = time.perf_counter()
        resumed = adapters.to_mindspore(loader(paths, batch_size, workers), state=state)
        batch, _ = first_row(resumed)
        t_resumed = time.perf_counter() - t0
        resumed.close()
        assert same(batch, epoch1[b]), f"the resumed batch {b} of epoch 1 differs from the uninterrupted run's"
        seed_all(0)
        t0 = time.perf_counter()
        torch_loader = loader(paths, batch_size, workers)
        for _ in torch_loader:
            pass
        for k, tb in enumerate(torch_loader):
            if k == b:
                replayed = to_numpy_tree(tb)
                break
        t_torch = time.perf_counter() - t0
        assert same(replayed, epoch1[b]), "torch's replayed batch differs from the port's"
        rows.append([workers, f"epoch 1, {name} (batch {b} of {per_epoch})", f"{t_resumed:.2f}",
                     f"{per_batch * 1000:.1f}", f"{t_resumed / per_batch:.1f}", f"{fresh_first:.2f}",
                     f"{t_torch:.2f}", f"{t_resumed / t_torch:.2f}", f"{state['replay']}"])  # fmt: skip
    return rows


def capture_cost() -> float:
    """What a worker adds to every batch: its streams read and pickled with the batch."""
    import pickle

    import torch  # noqa: F401  (a worker of this loader has torch's stream live)

    from adapters.engine._state import capture_streams

    n = 5000
    return timeit.timeit(lambda: pickle.dumps(capture_streams(raw=True), protocol=5), number=n) / n


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=640)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    p.add_argument("--data-dir", default=os.path.join(tempfile.gettempdir(), "torch2ms_bench"))
    args = p.parse_args(argv)
    paths = make_jpegs(args.data_dir, args.images)
    rows = []
    for w in args.workers:
        rows += measure(paths, args.batch_size, w)
    print_table(["workers", "resumed at", "resumed: first batch s", "uninterrupted ms/batch", "first / per-batch",
                 "fresh start: first batch s", "torch replay to it s", "resumed / torch replay",
                 "batches made again"], rows)  # fmt: skip
    cost = capture_cost()
    print(f"\nworker streams kept per batch (map-style, with workers): {cost * 1e6:.0f} us a batch")


if __name__ == "__main__":
    main()
