"""The two MindSpore shapes of a torch loader vs torch's DataLoader, in the same run, every batch checked.

Run: ``.venv/bin/python benchmarks/bench_batch_maps.py [--quick] [--images N] [--rounds R] [--data-dir DIR]``.

The image loader of ``bench_engine.py`` (``--images`` JPEGs 256x256; ``__getitem__`` = ``cv2.imread``, random
224 crop + flip from numpy's global stream, HWC->CHW, float32 normalisation, int label; batch 32, shuffle,
seeded generator), at num_workers 0 and 2, 2 epochs, images/s timed from building the loader (and the
MindSpore dataset) to the last batch as numpy. Sides, alternating order each round, each worker count in a
fresh interpreter:

* ``torch``: ``torch.utils.data.DataLoader``;
* ``to_mindspore``: ``adapters.to_mindspore(loader)``, each row one batch collated in the worker;
* ``batch_map``: ``adapters.batch(adapters.sample_dataset(loader), loader)``: sample rows, MindSpore's batch op
  with ``per_batch_map`` = torch's ``default_collate`` (mirrored in numpy), in MindSpore's threads;
* ``native``: the pipeline a MindSpore user writes: the dataset returns the HWC uint8 crop, and
  ``vision.Normalize`` + ``vision.HWC2CHW`` run as a per-sample ``.map()`` between ``sample_dataset`` and
  ``batch`` (torch's reference does the same normalisation in ``__getitem__``).

Checks: one untimed run per side and worker count keeps every batch, compared whole with torch's (dtype and
bytes; ``native``: labels bytes, images within float32 tolerance of torch's normalisation); the timed runs
keep a fingerprint of every batch (dtype, shape, every 4099th element) compared with torch's.

The machine's other load is not controlled (a shared 2-core box is noisy): rerun when a figure looks off.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _bench_util import print_table, seed_all, to_numpy_tree  # noqa: E402
from bench_engine import (  # noqa: E402
    MEAN,
    STD,
    JpegDataset,
    check_fingerprints,
    check_same,
    fingerprint,
    leaves,
    make_jpegs,
)

cv2.setNumThreads(0)
SIDES = ("torch", "to_mindspore", "batch_map", "native")
# vision.Normalize's mean / std, per channel of the HWC crop (bench_engine normalises by the same, in CHW)
NATIVE_MEAN = MEAN.ravel().tolist()
NATIVE_STD = STD.ravel().tolist()


class JpegCrops(JpegDataset):
    """``JpegDataset`` without its normalisation: the HWC uint8 crop (the same draws), and the label."""

    def __getitem__(self, i: int):
        img = cv2.imread(self.paths[i], cv2.IMREAD_COLOR)
        h, w = img.shape[:2]
        y, x = np.random.randint(0, h - self.crop + 1), np.random.randint(0, w - self.crop + 1)
        img = img[y : y + self.crop, x : x + self.crop]
        if np.random.rand() < 0.5:
            img = img[:, ::-1]
        return np.ascontiguousarray(img), i % 10


def loader(args, workers: int, dataset_cls=JpegDataset):
    import torch
    from torch.utils.data import DataLoader

    return DataLoader(dataset_cls(make_jpegs(args.data_dir, args.images)), batch_size=32, shuffle=True,
                      num_workers=workers, generator=torch.Generator().manual_seed(0))  # fmt: skip


def build(side: str, args, workers: int):
    """``(batches of one epoch, as numpy trees)`` factory for ``side``; the build is part of the timing."""
    import adapters

    if side == "torch":
        torch_loader = loader(args, workers)
        return lambda: (to_numpy_tree(b) for b in torch_loader)
    if side == "to_mindspore":
        ds = adapters.to_mindspore(loader(args, workers))
    elif side == "batch_map":
        src = loader(args, workers)
        ds = adapters.batch(adapters.sample_dataset(src), src)
    else:
        import mindspore.dataset.vision as vision

        src = loader(args, workers, JpegCrops)
        samples = adapters.sample_dataset(src).map(
            operations=[vision.Normalize(NATIVE_MEAN, NATIVE_STD), vision.HWC2CHW()], input_columns=["0"]
        )
        ds = adapters.batch(samples, src)
    it = ds.create_tuple_iterator(num_epochs=args.epochs, output_numpy=True)
    return lambda: (ds.structure.rebuild(row) for row in it)


def run_side(side: str, args, workers: int, keep: str):
    seed_all(0)
    start = time.perf_counter()
    epoch = build(side, args, workers)
    kept = []
    for _ in range(args.epochs):
        for b in epoch():
            kept.append(b if keep == "batches" else fingerprint(b))
            del b
    return time.perf_counter() - start, kept


def check_native(actual: list, expected: list, workers: int) -> None:
    """Labels bit-identical; images within float32 tolerance of torch's normalisation (another formula)."""
    what = f"native num_workers={workers}"
    assert len(actual) == len(expected), f"{what}: {len(actual)} batches vs torch's {len(expected)}"
    worst = 0.0
    for k, (a, e) in enumerate(zip(actual, expected, strict=True)):
        (ia, la), (ie, le) = leaves(a), leaves(e)
        assert la.dtype == le.dtype and np.array_equal(la, le), f"{what}: batch {k} labels differ"
        assert ia.dtype == ie.dtype and ia.shape == ie.shape, f"{what}: batch {k} images {ia.shape} vs {ie.shape}"
        worst = max(worst, float(np.max(np.abs(ia - ie))))
        assert np.allclose(ia, ie, rtol=1e-5, atol=1e-5), f"{what}: batch {k} images differ beyond float32 tolerance"
    print(f"  native, num_workers={workers}: images within {worst:.2e} of torch's normalisation", flush=True)


def section(args) -> dict:
    make_jpegs(args.data_dir, args.images)
    w = args.workers
    full = {side: run_side(side, args, w, "batches")[1] for side in SIDES}
    for side in ("to_mindspore", "batch_map"):
        check_same(full[side], full["torch"], f"{side} num_workers={w}, untimed run")
    check_native(full["native"], full["torch"], w)
    reference = [fingerprint(b) for b in full["torch"]]
    images = sum(len(b[1]) for b in full["torch"])
    del full
    gc.collect()
    rows = []
    for r in range(args.rounds):
        res = {}
        order = SIDES if r % 2 == 0 else tuple(reversed(SIDES))
        for side in order:
            t, kept = run_side(side, args, w, "fingerprints")
            if side != "native":
                check_fingerprints(kept, reference, f"{side} num_workers={w} round {r + 1}")
            res[side] = images / t
            del kept
            gc.collect()
        rows.append([w, r + 1, *(f"{res[s]:.1f}" for s in SIDES),
                     *(f"{res[s] / res['torch']:.3f}" for s in SIDES[1:])])  # fmt: skip
    return {"rows": rows}


def child(args, workers: int) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    cmd = [sys.executable, os.path.abspath(__file__), "--child", "--workers", str(workers), "--result", out,
           "--data-dir", args.data_dir, "--images", str(args.images), "--rounds", str(args.rounds),
           "--epochs", str(args.epochs)]  # fmt: skip
    try:
        subprocess.run(cmd, check=True)
        with open(out) as f:
            return json.load(f)
    finally:
        os.unlink(out)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    p.add_argument("--data-dir", default=tempfile.gettempdir(), help="where the JPEGs are cached")
    p.add_argument("--images", type=int, default=None, help="JPEGs in the image loader (default 1024, quick 128)")
    p.add_argument("--rounds", type=int, default=2, help="rounds per worker count, sides alternating")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--workers", type=int, help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.images = args.images or (128 if args.quick else 1024)
    if args.child:
        with open(args.result, "w") as f:
            json.dump(section(args), f)
        return
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; {args.images} JPEGs 256->224, batch 32, "
          f"shuffle, {args.epochs} epochs; images/s")  # fmt: skip
    t0 = time.perf_counter()
    rows = []
    for w in (0, 2):
        rows += child(args, w)["rows"]
    print_table(["num_workers", "round", *SIDES, *(f"{s}/torch" for s in SIDES[1:])], rows)
    print(
        "to_mindspore and batch_map: every batch identical to torch's (untimed run: whole columns; timed runs: "
        "fingerprints); native: labels identical, images within float32 tolerance"
    )
    print(f"total {time.perf_counter() - t0:.0f} s, load average now {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
