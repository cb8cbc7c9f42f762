"""``adapters.to_mindspore(loader)`` vs torch's real DataLoader, measured and verified in the same run.

Run: ``.venv/bin/python benchmarks/bench_adapters.py [--quick] [--workers 0 1 2 4] [--rounds 2] [--profile]``
(``--help`` lists the sizes). Three parts:

1. heavy samples (a YOLOv5-like mosaic + perspective warp + filters on 640x640x3 uint8, ~30 ms per
   sample, random parameters from python ``random`` and numpy's global RandomState): batches/s of
   ``to_mindspore(loader)`` ÷ batches/s of the torch DataLoader at the same ``num_workers``; every batch of
   every timed run is compared byte for byte with torch's (``porting.assert_equivalent``, rtol=atol=0).
2. trivial samples (one small float32 array each, batch 32): time of a plain python loop
   (``__getitem__`` + ``np.stack``) ÷ the adapter's time, with torch's DataLoader and a bare MindSpore
   ``GeneratorDataset(shuffle=False).batch(32)`` for reference. ``--profile`` adds a cProfile of the
   adapter's num_workers=0 source run directly in the main thread.
3. memory: one MindSpore iterator over ``--mem-epochs`` epochs with ``num_workers=2``; RSS and PSS of the
   main process plus all its children after each epoch; each batch's sha256 is checked against torch's.

What is timed: from the loader's iterator creation (torch: ``iter(loader)`` each epoch, which forks
non-persistent workers each epoch; MindSpore: ``create_tuple_iterator(num_epochs=E)``, which launches the
pipeline and forks its workers once) to the last batch of the last epoch, including converting each batch
to numpy (torch: ``Tensor.numpy()``; MindSpore: ``structure.rebuild(row)``) and keeping it. Not timed:
building the loader and ``to_mindspore(loader)`` (which builds one probe batch to learn the columns; shown
separately as "setup"), the comparisons. Before anything is timed, MindSpore's runtime, a worker fork on
each side and the augmentation code are warmed up. Runs alternate sides (the side that goes first
alternates too); the best of ``--rounds`` is reported. The machine's other load is not controlled: rerun
and compare when a figure looks off.
"""

from __future__ import annotations

import os

# Same thread settings on both sides: numpy/BLAS single-threaded; cv2 as YOLOv5 sets it (no cv2 pool).
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import cProfile  # noqa: E402
import functools  # noqa: E402
import gc  # noqa: E402
import io  # noqa: E402
import multiprocessing  # noqa: E402
import platform  # noqa: E402
import pstats  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import cv2  # noqa: E402
import mindspore  # noqa: E402
import mindspore.dataset as msds  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

import adapters  # noqa: E402
from porting import assert_equivalent  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _bench_util import batch_digest, print_table, seed_all, to_numpy_tree, tree_memory  # noqa: E402

__all__ = ["HeavyDataset", "TinyDataset", "main"]

cv2.setNumThreads(0)


class HeavyDataset:
    """YOLOv5-style mosaic augmentation, ~30 ms per 640 sample on one core.

    Draws, in this order per sample, from python ``random`` (mosaic centre, 3 partner images, 4 scales,
    rotation, scale, translation, perspective, flip) and numpy's global RandomState (bilateral sigma,
    median/blur kernel choices, HSV gains). Returns ``(image uint8 [3, s, s], boxes float32 [4, 5])``.

    Args:
        n: number of samples.
        size: output side ``s`` (the mosaic canvas is ``2s x 2s``).
        pool: number of distinct source images (made once from ``np.random.default_rng(k)``).
    """

    def __init__(self, n: int, size: int = 640, pool: int = 8):
        self.n = n
        self.size = size
        h, w = size * 3 // 4, size
        self.images = [np.random.default_rng(k).integers(0, 256, (h, w, 3), dtype=np.uint8) for k in range(pool)]

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        s, pool = self.size, len(self.images)
        xc, yc = (int(random.uniform(s // 2, 3 * s // 2)) for _ in range(2))
        canvas = np.full((2 * s, 2 * s, 3), 114, np.uint8)
        boxes = np.zeros((4, 5), np.float32)
        for j, idx in enumerate([i] + [random.randrange(pool) for _ in range(3)]):
            img: np.ndarray = self.images[idx % pool]
            r = s / max(img.shape[:2]) * random.uniform(0.8, 1.2)
            img = cv2.resize(img, None, fx=r, fy=r, interpolation=cv2.INTER_LINEAR)
            h, w = img.shape[:2]
            if j == 0:
                x1, y1, x2, y2 = max(xc - w, 0), max(yc - h, 0), xc, yc
            elif j == 1:
                x1, y1, x2, y2 = xc, max(yc - h, 0), min(xc + w, 2 * s), yc
            elif j == 2:
                x1, y1, x2, y2 = max(xc - w, 0), yc, xc, min(2 * s, yc + h)
            else:
                x1, y1, x2, y2 = xc, yc, min(xc + w, 2 * s), min(2 * s, yc + h)
            canvas[y1:y2, x1:x2] = img[: y2 - y1, : x2 - x1]
            boxes[j] = (idx % pool, x1, y1, x2, y2)
        m = np.eye(3)
        m[:2] = cv2.getRotationMatrix2D((s, s), random.uniform(-10, 10), random.uniform(0.5, 1.5))
        m[:2, 2] += (random.uniform(0.4, 0.6) * s - s, random.uniform(0.4, 0.6) * s - s)
        m[2, :2] = (random.uniform(-2e-4, 2e-4), random.uniform(-2e-4, 2e-4))
        out = cv2.warpPerspective(canvas, m, (s, s), flags=cv2.INTER_CUBIC, borderValue=(114, 114, 114))
        out = cv2.bilateralFilter(out, 5, float(np.random.uniform(20, 80)), float(np.random.uniform(20, 80)))
        out = cv2.medianBlur(out, 2 * int(np.random.randint(1, 3)) + 1)
        out = cv2.GaussianBlur(out, (5, 5), float(np.random.uniform(0.5, 2.0)))
        gains = np.random.uniform(-1, 1, 3) * [0.015, 0.7, 0.4] + 1
        x = np.arange(256, dtype=np.float32)
        channels = cv2.split(cv2.cvtColor(out, cv2.COLOR_BGR2HSV))
        hsv = cv2.merge(
            [cv2.LUT(c, np.clip(x * g, 0, 255).astype(np.uint8)) for c, g in zip(channels, gains, strict=True)]
        )
        out = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
        if random.random() < 0.5:
            out = out[:, ::-1]
            boxes[:, [1, 3]] = 2 * s - boxes[:, [3, 1]]
        return np.ascontiguousarray(out.transpose(2, 0, 1)), boxes


class TinyDataset:
    """``n`` samples, each a float32 array of ``width`` values (``i, i+1, ...``): almost no work per sample."""

    def __init__(self, n: int, width: int = 8):
        self.n = n
        self.width = width
        self._ramp = np.arange(width, dtype=np.float32)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> np.ndarray:
        return self._ramp + np.float32(i)


# ------------------------------------------------------------------------------------------ runners


def _main_cpu() -> float:
    """CPU seconds (user + system) of this process, all its threads; children excluded."""
    t = os.times()
    return t.user + t.system


def _torch_run(make_loader, epochs: int, seed: int, keep: str):
    """Seed, build torch's loader, iterate ``epochs`` epochs; returns (seconds, first-batch s, kept, main CPU s)."""
    seed_all(seed)
    loader = make_loader()
    kept = []
    cpu0 = _main_cpu()
    start = time.perf_counter()
    first = None
    for _ in range(epochs):
        for batch in loader:
            batch = to_numpy_tree(batch)
            first = first or time.perf_counter() - start
            kept.append(batch if keep == "batches" else batch_digest(batch) if keep == "digests" else None)
    elapsed = time.perf_counter() - start
    cpu = _main_cpu() - cpu0
    del loader
    gc.collect()
    return elapsed, first, kept, cpu


def _adapter_run(make_loader, epochs: int, seed: int, keep: str):
    """Seed, build the same loader, ``to_mindspore`` it, iterate; returns (seconds, first, kept, main CPU, setup)."""
    seed_all(seed)
    loader = make_loader()
    t0 = time.perf_counter()
    ds = adapters.to_mindspore(loader)
    setup = time.perf_counter() - t0
    kept = []
    cpu0 = _main_cpu()
    start = time.perf_counter()
    first = None
    it = ds.create_tuple_iterator(num_epochs=epochs, output_numpy=True)
    for _ in range(epochs):
        for row in it:
            batch = ds.structure.rebuild(row)
            first = first or time.perf_counter() - start
            kept.append(batch if keep == "batches" else batch_digest(batch) if keep == "digests" else None)
    elapsed = time.perf_counter() - start
    cpu = _main_cpu() - cpu0
    del it, ds, loader
    gc.collect()
    return elapsed, first, kept, cpu, setup


def _warm_up(size: int) -> None:
    """MindSpore runtime + a multiprocess pipeline, a torch worker fork, and the cv2 code paths."""
    ds = HeavyDataset(4, size=min(size, 128))
    for i in range(len(ds)):
        ds[i]
    HeavyDataset(1, size=size)[0]

    def make():
        return DataLoader(TinyDataset(64), batch_size=8, num_workers=2)  # type: ignore[arg-type]  # a map-style source, not a torch Dataset subclass

    _torch_run(make, 1, 0, keep="none")
    _adapter_run(make, 1, 0, keep="none")
    bare = msds.GeneratorDataset(TinyDataset(64), column_names=["x"], shuffle=False).batch(8)
    for _ in bare.create_tuple_iterator(num_epochs=1, output_numpy=True):
        pass


# ------------------------------------------------------------------------------------------ part 1


def bench_heavy(args) -> list[float]:
    """Part 1: throughput ratio adapter/torch per ``num_workers``, every batch verified; returns the ratios."""
    print(f"\n== 1. heavy samples: {args.heavy_samples} x {args.heavy_size}x{args.heavy_size}x3 uint8 mosaic, "
          f"batch {args.heavy_batch}, shuffle=True, {args.heavy_epochs} epochs, best of {args.rounds} ==")  # fmt: skip
    probe = HeavyDataset(8, size=args.heavy_size)
    t0 = time.perf_counter()
    for i in range(8):
        probe[i]
    per_sample = (time.perf_counter() - t0) / 8
    print(f"per-sample work in the main process: {per_sample * 1e3:.1f} ms")
    rows, ratios = [], []
    for workers in args.workers:

        def make(workers=workers):
            return DataLoader(
                HeavyDataset(args.heavy_samples, size=args.heavy_size),  # type: ignore[arg-type]
                batch_size=args.heavy_batch,
                shuffle=True,
                num_workers=workers,
                generator=torch.Generator().manual_seed(args.seed),
            )

        times: dict[str, list[float]] = {"torch": [], "adapter": []}
        best: dict[str, tuple[Any, ...]] = {}
        for r in range(args.rounds):
            order = ("torch", "adapter") if r % 2 == 0 else ("adapter", "torch")
            results = {}
            for side in order:
                run = _torch_run if side == "torch" else _adapter_run
                results[side] = run(make, args.heavy_epochs, args.seed, keep="batches")
            expected, actual = results["torch"][2], results["adapter"][2]
            # Byte-for-byte, every batch of this round: dtypes, shapes and values (rtol=atol=0).
            assert len(actual) == len(expected), (len(actual), len(expected))
            assert_equivalent(actual, expected, rtol=0, atol=0)
            nbatches = len(expected)
            for side, res in results.items():
                times[side].append(res[0])
                if side not in best or res[0] < best[side][0]:
                    best[side] = tuple(None if i == 2 else v for i, v in enumerate(res))
            del results, expected, actual
            gc.collect()
        (tt, ft, _, ct), (ta, fa, _, ca, setup) = best["torch"], best["adapter"]
        ratio = tt / ta
        ratios.append(ratio)
        spread = {k: (max(v) - min(v)) / min(v) * 100 for k, v in times.items()}
        rows.append([
            workers, max(workers, 1), nbatches, f"{nbatches / tt:.2f}",
            f"{nbatches / ta:.2f}", f"{ratio:.3f}", f"{spread['torch']:.0f}/{spread['adapter']:.0f}",
            f"{ft:.2f}/{fa:.2f}", f"{ct / nbatches * 1e3:.0f}/{ca / nbatches * 1e3:.0f}", f"{setup:.2f}", "identical",
        ])  # fmt: skip
    print_table(["num_workers", "worker procs", "batches", "torch b/s", "adapter b/s", "adapter/torch",
                 "spread % t/a", "1st batch s t/a", "main CPU ms/batch t/a", "setup s", "outputs"], rows)  # fmt: skip
    print(
        "adapter/torch = throughput ratio of the best runs (target >= 1.0); t/a = torch/adapter. MS procs = "
        "MindSpore worker processes (1 = a thread of the main process). spread = (slowest - fastest) / fastest "
        "over the rounds: differences below it are noise. 1st batch = time to the first batch (incl. pipeline "
        "start / fork). main CPU = CPU time of the main process (all threads, workers excluded) per batch. "
        "setup s = to_mindspore(loader) itself (builds one probe batch), not in the throughput."
    )
    return ratios


# ------------------------------------------------------------------------------------------ part 2


def _plain_loop(ds: TinyDataset, batch: int, epochs: int):
    start = time.perf_counter()
    out = []
    n = len(ds)
    for _ in range(epochs):
        for s in range(0, n, batch):
            out.append(np.stack([ds[i] for i in range(s, min(s + batch, n))]))
    return time.perf_counter() - start, out


def _bare_generator(ds: TinyDataset, batch: int, epochs: int):
    gen = msds.GeneratorDataset(ds, column_names=["x"], shuffle=False).batch(batch)
    start = time.perf_counter()
    it = gen.create_tuple_iterator(num_epochs=epochs, output_numpy=True)
    out = [row[0] for _ in range(epochs) for row in it]
    return time.perf_counter() - start, out


def _ready_batches(batches: list, epochs: int):
    """MindSpore's floor: a GeneratorDataset whose source yields already-collated batches (one row each)."""
    gen = msds.GeneratorDataset(_Replay(batches), column_names=["x"], shuffle=False)
    start = time.perf_counter()
    it = gen.create_tuple_iterator(num_epochs=epochs, output_numpy=True)
    out = [row[0] for _ in range(epochs) for row in it]
    return time.perf_counter() - start, out


class _Replay:
    def __init__(self, batches: list):
        self.batches = batches

    def __iter__(self):
        return ((b,) for b in self.batches)


def _timed(run, make, epochs: int):
    """``(seconds, batches)`` of ``run(make, epochs)`` (``_torch_run`` or ``_adapter_run``), keeping the batches."""
    return run(make, epochs, 0, "batches")[:3:2]


def bench_trivial(args) -> float:
    """Part 2: per-batch cost of each way to batch trivial samples; returns plain loop time / adapter time."""
    n, b, e = args.tiny_samples, args.tiny_batch, args.tiny_epochs
    nb = e * -(-n // b)
    print(f"\n== 2. trivial samples: {n} x float32[8], batch {b}, shuffle=False, {e} epochs "
          f"({nb} batches), best of {args.rounds} ==")  # fmt: skip
    ds = TinyDataset(n)

    def loader(workers):
        return lambda: DataLoader(ds, batch_size=b, shuffle=False, num_workers=workers)  # type: ignore[arg-type]  # a map-style source, not a torch Dataset subclass

    cases = [("plain loop: __getitem__ + np.stack", lambda: _plain_loop(ds, b, e))]
    for w in args.tiny_workers:
        cases.append((f"torch DataLoader, num_workers={w}", functools.partial(_timed, _torch_run, loader(w), e)))
        cases.append((f"to_mindspore(loader), num_workers={w}", functools.partial(_timed, _adapter_run, loader(w), e)))
    cases.append(("MindSpore GeneratorDataset(shuffle=False).batch", lambda: _bare_generator(ds, b, e)))
    one_epoch = _plain_loop(ds, b, 1)[1]
    cases.append(("MindSpore floor: GeneratorDataset of ready batches", lambda: _ready_batches(one_epoch, e)))
    # (No "adapter source alone" case: the source begins an epoch only for a MindSpore iterator that asks for it,
    # the consumer rule, so it cannot be walked without MindSpore.)
    best = {name: float("inf") for name, _ in cases}
    reference = None
    for r in range(args.rounds):
        # Round 0 runs the plain loop first: its batches are what every other output is checked against.
        for name, fn in cases if r % 2 == 0 else cases[::-1]:
            t, out = fn()
            if reference is None:
                reference = out
            assert_equivalent(out, reference, rtol=0, atol=0)
            best[name] = min(best[name], t)
            del out
    plain = best[cases[0][0]]
    rows = [[name, f"{t:.3f}", f"{t / nb * 1e6:.1f}", f"{t / (nb * b) * 1e6:.2f}", f"{plain / t:.3f}"]
            for name, t in best.items()]  # fmt: skip
    print_table(["", "seconds", "us/batch", "us/sample", "plain/this"], rows)
    adapter0 = best.get("to_mindspore(loader), num_workers=0", float("nan"))
    ratio = plain / adapter0
    print(
        f"all outputs identical to the plain loop's. plain loop / adapter(num_workers=0) = {ratio:.3f} (target >= 0.8)"
    )
    if args.profile:
        _profile_source(loader(0), e)
    return ratio


def _profile_source(make_loader, epochs: int) -> None:
    ds = adapters.to_mindspore(make_loader())
    source = ds._batch_source
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(epochs):
        for _row in source:
            pass
    prof.disable()
    for key in ("tottime", "cumulative"):
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats(key).print_stats(18)
        text = buf.getvalue()
        print(f"\n-- cProfile of the adapter's num_workers=0 source (main thread, no MindSpore), by {key} --")
        print(text[text.find("   ncalls") :].rstrip())


# ------------------------------------------------------------------------------------------ part 3


def bench_memory(args) -> float:
    """Part 3: memory after each epoch of one ``num_workers=2`` iterator; returns RSS growth % after epoch 2."""
    e, w = args.mem_epochs, 2
    print(f"\n== 3. memory: {args.mem_samples} x {args.mem_size}x{args.mem_size} mosaic samples, batch "
          f"{args.heavy_batch}, num_workers={w}, {e} epochs in one MindSpore iterator ==")  # fmt: skip

    def make():
        return DataLoader(
            HeavyDataset(args.mem_samples, size=args.mem_size),  # type: ignore[arg-type]
            batch_size=args.heavy_batch,
            shuffle=True,
            num_workers=w,
            generator=torch.Generator().manual_seed(args.seed),
        )

    expected = _torch_run(make, e, args.seed, keep="digests")[2]
    reference = _torch_memory(args, e)
    seed_all(args.seed)
    ds = adapters.to_mindspore(make())
    it = ds.create_tuple_iterator(num_epochs=e, output_numpy=True)
    digests, samples = [], []
    for _ in range(e):
        for row in it:
            digests.append(batch_digest(ds.structure.rebuild(row)))
        gc.collect()
        samples.append(tree_memory())
    assert digests == expected, "to_mindspore's batches differ from torch's (sha256 per batch)"
    rows = []
    for epoch, (mine, ref) in enumerate(zip(samples, reference, strict=True), 1):
        if epoch <= 3 or epoch % 5 == 0 or epoch == e:
            rows.append([epoch, mine[3], *(f"{v / 2**20:.1f}" for v in mine[:3]),
                         ref[3], *(f"{v / 2**20:.1f}" for v in ref[:3])])  # fmt: skip
    print(
        "sums over the main process and all its children, MiB; torch reference: the same loader with "
        "persistent_workers=True (non-persistent torch workers are gone between epochs)"
    )
    print_table(["after epoch", "procs", "RSS", "PSS", "USS", "torch procs", "torch RSS", "torch PSS", "torch USS"],
                rows)  # fmt: skip
    start = 1 if e >= 2 else 0

    def growth(series, field):
        return (series[-1][field] - series[start][field]) / series[start][field] * 100

    growth_rss = growth(samples, 0)
    print(f"growth from epoch {start + 1} to epoch {e}: adapter RSS {growth_rss:+.2f} % (target < 5 %), "
          f"PSS {growth(samples, 1):+.2f} %, USS {growth(samples, 2):+.2f} %; torch reference RSS "
          f"{growth(reference, 0):+.2f} %, PSS {growth(reference, 1):+.2f} %, USS {growth(reference, 2):+.2f} %. "
          f"All {len(digests)} batches identical to torch's (sha256).")  # fmt: skip
    del it, ds
    gc.collect()
    return growth_rss


def _torch_memory(args, epochs: int) -> list[tuple[int, int, int, int]]:
    """Reference: the same measurement for torch's DataLoader with persistent workers (2)."""
    seed_all(args.seed)
    loader: DataLoader = DataLoader(HeavyDataset(args.mem_samples, size=args.mem_size),  # type: ignore[arg-type]
                        batch_size=args.heavy_batch,
                        shuffle=True, num_workers=2, persistent_workers=True,
                        generator=torch.Generator().manual_seed(args.seed))  # fmt: skip
    samples = []
    for _ in range(epochs):
        for batch in loader:
            batch_digest(to_numpy_tree(batch))
        gc.collect()
        samples.append(tree_memory())
    del loader
    gc.collect()
    return samples


# ------------------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> None:
    """Run the three parts and print a summary of the ratios."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes, one round (a smoke run, ~1 minute)")
    p.add_argument("--parts", nargs="+", default=["heavy", "trivial", "memory"],
                   choices=["heavy", "trivial", "memory"])  # fmt: skip
    p.add_argument("--workers", type=int, nargs="+", default=None, help="num_workers for part 1 (default 0 1 2 4)")
    p.add_argument("--rounds", type=int, default=None, help="best of this many runs per side (default 2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--heavy-samples", type=int, default=None, help="default 96")
    p.add_argument("--heavy-size", type=int, default=640)
    p.add_argument("--heavy-batch", type=int, default=8)
    p.add_argument("--heavy-epochs", type=int, default=None, help="default 2")
    p.add_argument("--tiny-samples", type=int, default=None, help="default 16000")
    p.add_argument("--tiny-batch", type=int, default=32)
    p.add_argument("--tiny-epochs", type=int, default=None, help="default 3")
    p.add_argument("--tiny-workers", type=int, nargs="+", default=[0, 2])
    p.add_argument("--mem-samples", type=int, default=None, help="default 64")
    p.add_argument("--mem-size", type=int, default=256)
    p.add_argument("--mem-epochs", type=int, default=20)
    p.add_argument("--profile", action="store_true", help="cProfile the adapter's num_workers=0 source (part 2)")
    args = p.parse_args(argv)
    quick = args.quick
    defaults = dict(workers=[0, 2] if quick else [0, 1, 2, 4], rounds=1 if quick else 2,
                    heavy_samples=24 if quick else 96, heavy_epochs=2, tiny_samples=4000 if quick else 16000,
                    tiny_epochs=2 if quick else 3, mem_samples=32 if quick else 64)  # fmt: skip
    for k, v in defaults.items():
        if getattr(args, k) is None:
            setattr(args, k, v)

    cpus = multiprocessing.cpu_count()
    load = os.getloadavg()
    print(f"python {platform.python_version()}, torch {torch.__version__}, mindspore {mindspore.__version__}, "
          f"numpy {np.__version__}, cv2 {cv2.__version__}; {cpus} CPUs, load average {load[0]:.2f}; "
          f"cv2 threads {cv2.getNumThreads()}, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}")  # fmt: skip
    t0 = time.perf_counter()
    _warm_up(args.heavy_size)
    print(f"warm-up (MindSpore runtime, worker forks, cv2): {time.perf_counter() - t0:.1f} s")
    summary = []
    if "heavy" in args.parts:
        ratios = bench_heavy(args)
        summary += [f"heavy, num_workers={w}: adapter/torch throughput {r:.3f} (target >= 1.0)"
                    for w, r in zip(args.workers, ratios, strict=True)]  # fmt: skip
    if "trivial" in args.parts:
        summary.append(f"trivial: plain loop / adapter time {bench_trivial(args):.3f} (target >= 0.8)")
    if "memory" in args.parts:
        summary.append(f"memory: RSS growth epoch 2 -> {args.mem_epochs}: {bench_memory(args):+.2f} % (target < 5 %)")
    print("\n== summary ==")
    for line in summary:
        print(line)
    print(f"total {time.perf_counter() - t0:.0f} s, load average now {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
