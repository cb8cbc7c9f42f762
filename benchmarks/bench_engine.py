"""The ``to_mindspore`` engine vs torch's DataLoader, in the same run, every output checked.

Run: ``.venv/bin/python benchmarks/bench_engine.py [--quick] [--sections throughput step memory construct
first] [--data-dir DIR]``. Each section runs in a fresh ``sys.executable`` subprocess (the memory section: one
per side), so MindSpore and torch worker pools never share a process. Five sections:

1. throughput: an image-classification loader over ``--images`` JPEGs (256x256, made once with
   ``cv2.imencode`` from a seeded numpy RNG, cached in ``--data-dir``); ``__getitem__`` = ``cv2.imread``,
   random 224 crop + random horizontal flip from numpy's GLOBAL RNG, HWC->CHW, float32 normalisation,
   int label; ``DataLoader(batch_size=32, shuffle=True, generator=Generator().manual_seed(0))`` at
   num_workers 0 and 2. Images/s over 2 epochs, timed from building the loader (MindSpore side: plus
   ``to_mindspore``) to the last batch converted to numpy. Rounds alternate sides (``--rounds``); all
   reported. The timed runs drop each batch once taken, as a training loop does (a loop that kept every
   batch would keep all its shared memory busy); they keep a fingerprint of every batch (dtype, shape and
   every 4099th element of each column), compared with torch's. One untimed run of each side keeps every
   batch, compared whole (dtype + ``np.array_equal`` per column). Target: to_mindspore/torch >= 1.0.
2. step: the same loader in a training loop whose step takes ``--step-ms`` per batch on an accelerator
   (modelled as the host thread waiting: ``time.sleep``); images/s of the whole loop, same checks.
3. memory: an in-RAM dataset (``--mem-mb`` MB, one uint8 array, 64 KiB per sample), batch 16,
   num_workers 2; peak of RSS / PSS / USS summed over the process and all its children (psutil, sampled
   every 20 ms by a thread) during building the loader (+ ``to_mindspore``) and one epoch; each side in its
   own subprocess; the epochs' sha256 digests must match. PSS is the fair one (RSS counts shared
   copy-on-write pages once per process). Target: to_mindspore/torch PSS peak <= ~1.0.
4. construct: ``to_mindspore(dataset of 1e6 path strings, batch_size=32, shuffle=True, num_workers=2)``
   (the files are never opened; ``__getitem__`` returns a small array); seconds for the call, torch's
   ``DataLoader(...)`` for reference; the first batch of both is compared. Target: <= 0.2 s.
5. first: time to first batch of the image loader at num_workers 0 and 2, from ``iter(loader)`` (torch) /
   the ``to_mindspore(loader)`` call (MindSpore, through ``create_tuple_iterator``) to the first batch as
   numpy; after a warm-up of both runtimes; two rounds alternating. Target: <= torch + 0.2 s.

The machine's other load is not controlled (a shared 2-core box is noisy): rerun when a figure looks off.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import functools  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _bench_util import batch_digest, print_table, seed_all, to_numpy_tree, tree_memory  # noqa: E402

cv2.setNumThreads(0)
MEAN = np.array([0.485, 0.456, 0.406], np.float32).reshape(3, 1, 1) * 255
STD = np.array([0.229, 0.224, 0.225], np.float32).reshape(3, 1, 1) * 255


class JpegDataset:
    """cv2.imread + random 224 crop + random flip (numpy global RNG) + CHW float32 normalised; (image, label)."""

    def __init__(self, paths: list[str], crop: int = 224):
        self.paths, self.crop = paths, crop

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        img = cv2.imread(self.paths[i], cv2.IMREAD_COLOR)
        h, w = img.shape[:2]
        y, x = np.random.randint(0, h - self.crop + 1), np.random.randint(0, w - self.crop + 1)
        img = img[y : y + self.crop, x : x + self.crop]
        if np.random.rand() < 0.5:
            img = img[:, ::-1]
        chw = img.transpose(2, 0, 1).astype(np.float32)
        return (chw - MEAN) / STD, i % 10


class RamDataset:
    """One big uint8 array in RAM, one row (``sample_bytes``) per sample."""

    def __init__(self, n: int, sample_bytes: int = 65536):
        self.data = np.random.default_rng(0).integers(0, 256, (n, sample_bytes), dtype=np.uint8)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int):
        return self.data[i], i


class PathDataset:
    """A list of path strings that are never opened; ``__getitem__`` returns a small array."""

    def __init__(self, n: int):
        self.paths = [f"/data/train/class_{i % 1000:04d}/img_{i:08d}.jpg" for i in range(n)]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        return np.array([i, len(self.paths[i])], np.int64)


def make_jpegs(data_dir: str, n: int, size: int = 256) -> list[str]:
    """``n`` deterministic JPEGs (smooth colour field + noise from ``default_rng(k)``), made once."""
    folder = os.path.join(data_dir, f"bench_engine_jpeg_{size}")
    os.makedirs(folder, exist_ok=True)
    paths = [os.path.join(folder, f"{k:05d}.jpg") for k in range(n)]
    for k, path in enumerate(paths):
        if os.path.exists(path):
            continue
        rng = np.random.default_rng(k)
        base = cv2.resize(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), (size, size), interpolation=cv2.INTER_CUBIC)
        img = np.clip(base.astype(np.int16) + rng.integers(-20, 21, base.shape), 0, 255).astype(np.uint8)
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])
        assert ok
        with open(path + ".tmp", "wb") as f:
            f.write(buf.tobytes())
        os.replace(path + ".tmp", path)
    return paths


def leaves(tree) -> list:
    if isinstance(tree, (dict, list, tuple)):
        return [x for v in (tree.values() if isinstance(tree, dict) else tree) for x in leaves(v)]
    return [np.asarray(tree)]


def check_same(actual: list, expected: list, what: str) -> None:
    """Every batch, every column: same count, dtype, shape and values."""
    assert len(actual) == len(expected), f"{what}: {len(actual)} batches vs torch's {len(expected)}"
    for k, (a, e) in enumerate(zip(actual, expected, strict=True)):
        la, le = leaves(a), leaves(e)
        assert len(la) == len(le), f"{what}: batch {k} has {len(la)} columns vs {len(le)}"
        for c, (x, y) in enumerate(zip(la, le, strict=True)):
            assert x.dtype == y.dtype and np.array_equal(x, y), f"{what}: batch {k} column {c} differs"


def image_loader(args, workers: int):
    import torch
    from torch.utils.data import DataLoader

    return DataLoader(JpegDataset(make_jpegs(args.data_dir, args.images)),  # type: ignore[arg-type]
                      batch_size=32, shuffle=True,
                      num_workers=workers, generator=torch.Generator().manual_seed(0))  # fmt: skip


def fingerprint(batch) -> list:
    """dtype, shape and every 4099th element of each column: cheap, and any other sample order shows."""
    return [(x.dtype.str, x.shape, x.ravel()[::4099].copy()) for x in leaves(batch)]


def check_fingerprints(actual: list, expected: list, what: str) -> None:
    assert len(actual) == len(expected), f"{what}: {len(actual)} batches vs torch's {len(expected)}"
    for k, (a, e) in enumerate(zip(actual, expected, strict=True)):
        for c, ((da, sa, xa), (de, se, xe)) in enumerate(zip(a, e, strict=True)):
            assert da == de and sa == se and np.array_equal(xa, xe), f"{what}: batch {k} column {c} differs"


def run_side(side: str, make, epochs: int, keep: str = "batches", step_s: float = 0.0):
    """Seed, build, iterate ``epochs`` epochs (``step_s`` of waiting per batch: the accelerator's step);
    returns (seconds incl. build, first-batch s, kept per batch: "batches", "digests" or "fingerprints")."""
    import adapters

    seed_all(0)
    kept, first = [], None
    start = time.perf_counter()
    loader = make()
    if side == "torch":
        batches = (to_numpy_tree(b) for _ in range(epochs) for b in loader)
    else:
        ds = adapters.to_mindspore(loader)
        it = ds.create_tuple_iterator(num_epochs=epochs, output_numpy=True)
        batches = (ds.structure.rebuild(row) for _ in range(epochs) for row in it)
    for b in batches:
        first = first or time.perf_counter() - start
        kept.append(b if keep == "batches" else batch_digest(b) if keep == "digests" else fingerprint(b))
        del b
        if step_s:
            time.sleep(step_s)
    return time.perf_counter() - start, first, kept


# ------------------------------------------------------------------------------------------ sections


def section_throughput(args, step_s: float = 0.0) -> dict:
    make_jpegs(args.data_dir, args.images)
    rows = []
    for w in (0, 2):
        # Untimed: every batch of both sides, compared whole; torch's fingerprints are the reference.
        full = {side: run_side(side, functools.partial(image_loader, args, w), epochs=2)[2] for side in ("torch", "ms")}
        check_same(full["ms"], full["torch"], f"num_workers={w}, untimed run")
        reference = [fingerprint(b) for b in full["torch"]]
        images = sum(len(b[1]) for b in full["torch"])
        del full
        gc.collect()
        for r in range(args.rounds):
            res = {}
            for side in ("torch", "ms") if r % 2 == 0 else ("ms", "torch"):
                t, _, kept = run_side(side, functools.partial(image_loader, args, w), epochs=2, keep="fingerprints",
                                      step_s=step_s)  # fmt: skip
                check_fingerprints(kept, reference, f"{side} num_workers={w} round {r + 1}")
                res[side] = images / t
                del kept
                gc.collect()
            rows.append([w, r + 1, f"{res['torch']:.1f}", f"{res['ms']:.1f}", f"{res['ms'] / res['torch']:.3f}"])
    return {"rows": rows}


def section_step(args) -> dict:
    return section_throughput(args, step_s=args.step_ms / 1000)


def section_memory(args) -> dict:
    import torch
    from torch.utils.data import DataLoader

    import adapters  # noqa: F401  (imported on both sides: same baseline)

    dataset = RamDataset(args.mem_mb * 2**20 // 65536)
    gc.collect()
    base, stop = tree_memory(), threading.Event()
    peak = list(base)

    def sample():
        while not stop.is_set():
            for k, v in enumerate(tree_memory()):
                peak[k] = max(peak[k], v)
            time.sleep(0.02)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()

    def make():
        return DataLoader(
            dataset,  # type: ignore[arg-type]  # a map-style source, not a torch Dataset subclass
            batch_size=16,
            shuffle=True,
            num_workers=2,
            generator=torch.Generator().manual_seed(0),
        )

    t, _, digests = run_side(args.side, make, epochs=1, keep="digests")
    stop.set()
    thread.join()
    return {"base": base, "peak": peak, "seconds": t, "digests": digests}


def section_construct(args) -> dict:
    import torch
    from torch.utils.data import DataLoader

    import adapters

    dataset, times = PathDataset(args.paths), {}
    builders: tuple[tuple[str, Any], ...] = (("torch", DataLoader), ("ms", adapters.to_mindspore))
    for side, build in builders:
        seed_all(0)
        t0 = time.perf_counter()
        obj = build(dataset, batch_size=32, shuffle=True, num_workers=2, generator=torch.Generator().manual_seed(0))
        times[side] = time.perf_counter() - t0
        if side == "torch":  # its first batch, the reference (to_mindspore copies what it needs)
            seed_all(0)
            expected = to_numpy_tree(next(iter(obj)))
    it = obj.create_tuple_iterator(num_epochs=1, output_numpy=True)
    check_same([obj.structure.rebuild(next(it))], [expected], "construct: first batch")
    del it, obj
    return times


def first_batch(side: str, loader):
    import adapters

    start = time.perf_counter()
    if side == "torch":
        batch = to_numpy_tree(next(iter(loader)))
    else:
        ds = adapters.to_mindspore(loader)
        it = ds.create_tuple_iterator(num_epochs=1, output_numpy=True)
        batch = ds.structure.rebuild(next(it))
    return time.perf_counter() - start, batch


def section_first(args) -> dict:
    make_jpegs(args.data_dir, args.images)
    for side in ("torch", "ms"):  # warm-up: MindSpore runtime, a fork on each side, cv2, page cache
        for w in (0, 2):
            seed_all(0)
            first_batch(side, image_loader(args, w))
    rows = []
    for w in (0, 2):
        for r in range(2):
            res = {}
            for side in ("torch", "ms") if r == 0 else ("ms", "torch"):
                seed_all(0)
                loader = image_loader(args, w)
                res[side] = first_batch(side, loader)
                del loader
                gc.collect()
            check_same([res["ms"][1]], [res["torch"][1]], f"first batch num_workers={w}")
            tt, tm = res["torch"][0], res["ms"][0]
            rows.append([w, r + 1, f"{tt:.3f}", f"{tm:.3f}", f"{tm - tt:+.3f}"])
    return {"rows": rows}


SECTIONS = dict(
    throughput=section_throughput,
    step=section_step,
    memory=section_memory,
    construct=section_construct,
    first=section_first,
)


# ------------------------------------------------------------------------------------------ driver


def child(args, section: str, side: str | None = None) -> dict:
    """Run one section in a fresh interpreter; its result comes back as JSON through a temp file."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--section",
        section,
        "--result",
        out,
        "--data-dir",
        args.data_dir,
        "--images",
        str(args.images),
        "--mem-mb",
        str(args.mem_mb),
        "--paths",
        str(args.paths),
        "--rounds",
        str(args.rounds),
        "--step-ms",
        str(args.step_ms),
    ]
    cmd += ["--side", side] if side else []
    try:
        subprocess.run(cmd, check=True)
        with open(out) as f:
            return json.load(f)
    finally:
        os.unlink(out)


def main(argv: list[str] | None = None) -> None:  # noqa: C901 - a benchmark's options and sections, one after the other
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes (a smoke run, < 2 minutes)")
    p.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=list(SECTIONS))
    p.add_argument("--data-dir", default=tempfile.gettempdir(), help="where the JPEGs are cached")
    p.add_argument("--images", type=int, default=None, help="JPEGs in the image loader (default 1024, quick 128)")
    p.add_argument("--rounds", type=int, default=2, help="throughput rounds per worker count, sides alternating")
    p.add_argument("--step-ms", type=float, default=40.0, help="the accelerator's step per batch in the step section")
    p.add_argument("--mem-mb", type=int, default=None, help="in-RAM dataset size, MiB (default 300, quick 64)")
    p.add_argument("--paths", type=int, default=1_000_000, help="paths in the construction dataset")
    p.add_argument("--section", choices=list(SECTIONS), help=argparse.SUPPRESS)
    p.add_argument("--side", choices=["torch", "ms"], help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.images = args.images or (128 if args.quick else 1024)
    args.mem_mb = args.mem_mb or (64 if args.quick else 300)

    if args.section:  # child process
        result = SECTIONS[args.section](args)
        with open(args.result, "w") as f:
            json.dump(result, f)
        return

    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; images {args.images}, "
          f"memory dataset {args.mem_mb} MiB, construction dataset {args.paths} paths")  # fmt: skip
    t_start = time.perf_counter()
    summary = []
    if "throughput" in args.sections:
        res = child(args, "throughput")
        print(f"\n== 1. throughput: {args.images} JPEGs 256->224, batch 32, shuffle, 2 epochs; images/s ==")
        print_table(["num_workers", "round", "torch", "to_mindspore", "ms/torch"], res["rows"])
        print("every batch identical to torch's (untimed run: whole columns; timed runs: fingerprints)")
        for w in (0, 2):
            ratios = "/".join(r[4] for r in res["rows"] if r[0] == w)
            summary.append(["throughput ms/torch", f"num_workers={w}", ratios, ">= 1.0"])
    if "step" in args.sections:
        res = child(args, "step")
        print(
            f"\n== 2. training loop with a {args.step_ms:g} ms accelerator step per batch (the host waits); "
            f"{args.images} JPEGs, 2 epochs; images/s =="
        )
        print_table(["num_workers", "round", "torch", "to_mindspore", "ms/torch"], res["rows"])
        print("every batch identical to torch's (untimed run: whole columns; timed runs: fingerprints)")
        for w in (0, 2):
            ratios = "/".join(r[4] for r in res["rows"] if r[0] == w)
            summary.append([f"loop with {args.step_ms:g} ms step ms/torch", f"num_workers={w}", ratios, ""])
    if "memory" in args.sections:
        mem = {side: child(args, "memory", side) for side in ("torch", "ms")}
        assert mem["ms"]["digests"] == mem["torch"]["digests"], "memory: to_mindspore's batches differ from torch's"
        print(f"\n== 3. memory: {args.mem_mb} MiB in RAM, 64 KiB samples, batch 16, num_workers 2, 1 epoch; "
              "MiB summed over process + children ==")  # fmt: skip
        rows = []
        for side in ("torch", "ms"):
            base, peak = mem[side]["base"], mem[side]["peak"]
            rows.append([side, peak[3], *(f"{peak[k] / 2**20:.0f} (+{(peak[k] - base[k]) / 2**20:.0f})"
                                          for k in range(3)), f"{mem[side]['seconds']:.2f}"])  # fmt: skip
        pt, pm = mem["torch"]["peak"], mem["ms"]["peak"]
        rows.append(["ms/torch", "", *(f"{pm[k] / pt[k]:.3f}" for k in range(3)), ""])
        print_table(["side", "max procs", "peak RSS (+over base)", "peak PSS", "peak USS", "seconds"], rows)
        print(f"{len(mem['ms']['digests'])} batches identical (sha256); base = after imports + dataset build")
        summary.append(["memory peak ms/torch", "PSS / RSS", f"{pm[1] / pt[1]:.3f} / {pm[0] / pt[0]:.3f}", "<= ~1.0"])
    if "construct" in args.sections:
        res = child(args, "construct")
        print(f"\n== 4. construction: {args.paths} paths, batch 32, shuffle, num_workers 2 ==")
        print_table(["", "seconds"], [["torch DataLoader(...)", f"{res['torch']:.4f}"],
                                      ["to_mindspore(dataset, ...)", f"{res['ms']:.4f}"]])  # fmt: skip
        summary.append(["construction s", f"{args.paths} paths", f"{res['ms']:.3f}", "<= 0.2"])
    if "first" in args.sections:
        res = child(args, "first")
        print("\n== 5. time to first batch (image loader), seconds, after warm-up ==")
        print_table(["num_workers", "round", "torch", "to_mindspore", "ms - torch"], res["rows"])
        for w in (0, 2):
            diffs = "/".join(r[4] for r in res["rows"] if r[0] == w)
            summary.append(["first batch ms - torch s", f"num_workers={w}", diffs, "<= +0.2"])
    print("\n== summary (rounds separated by /) ==")
    print_table(["measure", "case", "value", "target"], summary)
    print(f"total {time.perf_counter() - t_start:.0f} s, load average now {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
