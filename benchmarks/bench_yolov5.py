"""Images per second of ``yolov5_pt`` vs upstream YOLOv5 v7.0 on the same data, hyp, workers and seeds.

Run: ``.venv/bin/python benchmarks/bench_yolov5.py [--images 32] [--img-size 320] [--workers 0 2]
[--epochs 2] [--rounds 3] [--hyp scratch-low]``.

Each side builds its loader with its own ``create_dataloader`` (ours with ``albumentations=False``, which is what
upstream runs under albumentations 2.x) after the same global seeding, and iterates ``--epochs`` epochs; the
timed part is the iteration (workers are started by the constructor on both sides). Runs alternate between
the two sides (which side goes first alternates too), ``--rounds`` times; the best time of each side is
reported. Every batch of every run is compared with upstream's through a sha256 of its bytes (images, labels,
paths, shapes): the script stops with an error if anything differs.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import random
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from yolov5_core import load_hyp, make_synthetic_dataset
from yolov5_pt import create_dataloader
from yolov5_pt.upstream import load_upstream

__all__ = ["main"]


def _digest(batches: list) -> list[str]:
    # One sha256 per batch over image bytes + shape, label bytes + shape, paths and shapes: any difference shows.
    out = []
    for imgs, labels, paths, shapes in batches:
        h = hashlib.sha256()
        for part in (imgs.numpy().tobytes(), str(imgs.shape), labels.numpy().tobytes(), str(labels.shape),
                     repr(paths), repr(shapes)):
            h.update(part if isinstance(part, bytes) else part.encode())
        out.append(h.hexdigest())
    return out


def _run(make, path: str, args, workers: int) -> tuple[float, list]:
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    loader, _ = make(path, args.img_size, args.batch_size, 32, hyp=load_hyp(args.hyp), augment=True,
                     workers=workers, shuffle=True, seed=0)
    start = time.perf_counter()
    batches = [b for _ in range(args.epochs) for b in loader]
    elapsed = time.perf_counter() - start
    del loader
    gc.collect()  # InfiniteDataLoader and its iterator form a cycle: collect it so its workers stop now
    return elapsed, batches


def main(argv: list[str] | None = None) -> None:
    """Print images/s of both sides and the ratio, per worker count, after checking identical outputs."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=32, help="synthetic images in the dataset")
    parser.add_argument("--img-size", type=int, default=320, help="training image size")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="DataLoader worker counts")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs per side; best is reported")
    parser.add_argument("--hyp", default="scratch-low", help="bundled hyp name (scratch-low/med/high)")
    args = parser.parse_args(argv)

    upstream = load_upstream()
    sides = {
        "upstream": upstream.dataloaders.create_dataloader,
        "yolov5_pt": lambda *a, **k: create_dataloader(*a, albumentations=False, **k),
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = str(make_synthetic_dataset(Path(tmp) / "ds", n_images=args.images, seed=0, img_size=(480, 800)).images)
        create_dataloader(path, args.img_size, args.batch_size, 32)  # writes the label cache once, untimed
        n_images = args.images * args.epochs
        print(f"{args.images} images (long side 480-800 px) -> {args.img_size}, batch {args.batch_size}, "
              f"hyp {args.hyp}, {args.epochs} epochs, best of {args.rounds} alternating rounds")
        print(f"{'workers':>7s} {'upstream img/s':>15s} {'yolov5_pt img/s':>16s} {'ratio':>7s}  outputs")
        for workers in args.workers:
            best = {name: float("inf") for name in sides}
            reference = None
            for r in range(args.rounds):
                # Alternate which side goes first, so neither always runs on a warmer (or busier) machine.
                for name, make in sorted(sides.items(), reverse=bool(r % 2)):
                    elapsed, batches = _run(make, path, args, workers)
                    best[name] = min(best[name], elapsed)
                    got = _digest(batches)
                    if reference is None:
                        reference = got
                    elif got != reference:
                        raise SystemExit(f"workers={workers}: {name}'s batches differ from upstream's")
            rate = {name: n_images / t for name, t in best.items()}
            print(f"{workers:7d} {rate['upstream']:15.1f} {rate['yolov5_pt']:16.1f} "
                  f"{rate['yolov5_pt'] / rate['upstream']:7.3f}  identical ({len(reference)} batches)")


if __name__ == "__main__":
    main()
