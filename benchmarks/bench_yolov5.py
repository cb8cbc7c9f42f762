"""Images per second of ``yolov5_ms`` and ``yolov5_pt`` vs upstream YOLOv5 v7.0, same data, hyp, workers and seeds.

Run (the issue's setting): ``.venv/bin/python benchmarks/bench_yolov5.py --images 64 --img-size 640
--batch-size 16 --workers 2 --mixup 0.5`` (defaults are smaller: ``--images 32 --img-size 320 --batch-size 8
--workers 0 2``; also ``--epochs 2 --rounds 3 --hyp scratch-low --sides upstream yolov5_pt yolov5_ms``).

Each side builds its loader with its own ``create_dataloader`` (ours with ``albumentations=False``, which is what
upstream runs under albumentations 2.x) after the same global seeding, and iterates ``--epochs`` epochs:
upstream and ``yolov5_pt`` through torch's DataLoader, ``yolov5_ms`` as a MindSpore pipeline (one iterator over
all epochs, rows rebuilt to ``(img, labels, paths, shapes)``). Timed: from the ``create_dataloader`` call to the
last batch (``img/s`` = all images / that time: worker start-up and prefetching count, as in training), and up to
the first batch (``first s``). ``eff`` is the pipeline efficiency: img/s / (busy cores / single-thread seconds
per sample), the single-thread cost measured on the dataset's own ``__getitem__`` in this process (busy cores:
``min(workers, CPUs)``, 1 without workers). Runs alternate between the sides (the order rotates), ``--rounds``
times; the best time of each side is reported. Every batch of every run is compared with the first side's
through a sha256 of its bytes (images, labels, paths, shapes): the script stops with an error if anything
differs.

``--first-batch N`` instead times construction to the first batch on N small images whose label cache exists
(the issue's 10 000-image case), per side, best of ``--rounds``.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import os
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
        imgs, labels = np.asarray(imgs), np.asarray(labels)
        h = hashlib.sha256()
        for part in (
            imgs.tobytes(),
            str(imgs.shape),
            labels.tobytes(),
            str(labels.shape),
            repr(tuple(paths)),
            repr(tuple(shapes)),
        ):
            h.update(part if isinstance(part, bytes) else part.encode())
        out.append(h.hexdigest())
    return out


def _torch_side(make):
    def run(path: str, args, hyp: dict, workers: int, first_only: bool = False):
        t0 = time.perf_counter()
        loader, _ = make(
            path, args.img_size, args.batch_size, 32, hyp=hyp, augment=True, workers=workers, shuffle=True, seed=0
        )
        it = iter(loader)
        batches = [next(it)]
        first = time.perf_counter() - t0
        if first_only:
            del it, loader
            gc.collect()
            return first
        batches += list(it)
        for _ in range(args.epochs - 1):
            batches += list(loader)
        elapsed = time.perf_counter() - t0
        del it, loader
        gc.collect()  # InfiniteDataLoader and its iterator form a cycle: collect it so its workers stop now
        return first, elapsed, len(batches[0][0]), batches

    return run


def _ms_side(path: str, args, hyp: dict, workers: int, first_only: bool = False):
    import yolov5_ms

    t0 = time.perf_counter()
    pipeline, _ = yolov5_ms.create_dataloader(
        path,
        args.img_size,
        args.batch_size,
        32,
        hyp=hyp,
        augment=True,
        workers=workers,
        shuffle=True,
        seed=0,
        albumentations=False,
    )
    it = pipeline.create_tuple_iterator(num_epochs=args.epochs, output_numpy=True)
    rebuild = pipeline.structure.rebuild
    batches = [rebuild(next(it))]
    first = time.perf_counter() - t0
    if first_only:
        it.stop()
        del it, pipeline
        gc.collect()
        return first
    batches += [rebuild(row) for row in it]
    for _ in range(args.epochs - 1):
        batches += [rebuild(row) for row in it]
    elapsed = time.perf_counter() - t0
    del it, pipeline
    gc.collect()
    return first, elapsed, len(batches[0][0]), batches


def _single_thread_seconds(path: str, args, hyp: dict, samples: int = 32) -> float:
    """Seconds per training sample of the core ``__getitem__`` in this thread (the work a worker does)."""
    from yolov5_core import YoloDatasetCore

    ds = YoloDatasetCore(path, args.img_size, args.batch_size, augment=True, hyp=hyp, albumentations=False)
    random.seed(1)
    np.random.seed(1)
    ds[0]  # warm caches (imports, first file reads)
    start = time.perf_counter()
    for i in range(samples):
        ds[i % len(ds)]
    return (time.perf_counter() - start) / samples


def _first_batch(args, hyp: dict, runners: dict, sides: list) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        path = str(
            make_synthetic_dataset(Path(tmp) / "ds", n_images=args.first_batch, seed=0, img_size=(128, 192)).images
        )
        create_dataloader(path, args.img_size, args.batch_size, 32)  # the label cache, untimed
        print(
            f"{args.first_batch} images (long side 128-192 px, labels cached, made in "
            f"{time.perf_counter() - t:.0f} s) -> {args.img_size}, batch {args.batch_size}, "
            f"best of {args.rounds} rounds"
        )
        for workers in args.workers:
            first = {name: float("inf") for name in sides}
            for r in range(args.rounds):
                for name in sides[r % len(sides) :] + sides[: r % len(sides)]:
                    random.seed(0)
                    np.random.seed(0)
                    torch.manual_seed(0)
                    first[name] = min(first[name], runners[name](path, args, hyp, workers, first_only=True))
            cells = "  ".join(f"{n} {first[n]:.2f} s" for n in sides)
            ratio = "".join(
                f"  {n}/upstream {first[n] / first['upstream']:.3f}"
                for n in sides
                if n != "upstream" and "upstream" in sides
            )
            print(f"workers {workers}: time to first batch  {cells}{ratio}")


def main(argv: list[str] | None = None) -> None:
    """Print images/s of each side and the ratios to upstream, per worker count, after checking identical outputs."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--images", type=int, default=32, help="synthetic images in the dataset")
    parser.add_argument("--img-size", type=int, default=320, help="training image size")
    parser.add_argument("--batch-size", type=int, default=8, help="batch size")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="DataLoader worker counts")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs per side; best is reported")
    parser.add_argument("--hyp", default="scratch-low", help="bundled hyp name (scratch-low/med/high)")
    parser.add_argument("--mixup", type=float, default=None, help="override the hyp's mixup probability")
    parser.add_argument(
        "--sides",
        nargs="+",
        default=["upstream", "yolov5_pt", "yolov5_ms"],
        choices=["upstream", "yolov5_pt", "yolov5_ms"],
        help="pipelines to time",
    )
    parser.add_argument(
        "--first-batch",
        type=int,
        default=None,
        metavar="N",
        help="time only construction to the first batch, on N small images (e.g. 10000)",
    )
    args = parser.parse_args(argv)

    hyp = load_hyp(args.hyp)
    if args.mixup is not None:
        hyp["mixup"] = args.mixup
    upstream = load_upstream() if "upstream" in args.sides else None
    runners = {
        "upstream": _torch_side(upstream.dataloaders.create_dataloader) if upstream else None,
        "yolov5_pt": _torch_side(lambda *a, **k: create_dataloader(*a, albumentations=False, **k)),
        "yolov5_ms": _ms_side,
    }
    sides = list(dict.fromkeys(args.sides))
    if args.first_batch:
        _first_batch(args, hyp, runners, sides)
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = str(make_synthetic_dataset(Path(tmp) / "ds", n_images=args.images, seed=0, img_size=(480, 800)).images)
        create_dataloader(path, args.img_size, args.batch_size, 32)  # writes the label cache once, untimed
        print(
            f"{args.images} images (long side 480-800 px) -> {args.img_size}, batch {args.batch_size}, hyp {args.hyp}"
            f" (mixup {hyp['mixup']}), {args.epochs} epochs, best of {args.rounds} rounds, {os.cpu_count()} CPUs"
        )
        per_sample = _single_thread_seconds(path, args, hyp)
        print(f"single-thread cost of a sample: {per_sample * 1000:.1f} ms ({1 / per_sample:.1f} img/s per core)")
        head = "".join(f" {name + ' img/s':>16s} {'first s':>8s} {'eff':>5s}" for name in sides)
        ratios = "".join(f" {name + '/up':>13s}" for name in sides if name != "upstream") if "upstream" in sides else ""
        print(f"{'workers':>7s}{head}{ratios}  outputs")
        for workers in args.workers:
            best = {name: float("inf") for name in sides}
            first = {name: float("inf") for name in sides}
            reference = None
            for r in range(args.rounds):
                order = sides[r % len(sides) :] + sides[: r % len(sides)]  # rotate who goes first
                for name in order:
                    random.seed(0)
                    np.random.seed(0)
                    torch.manual_seed(0)
                    t_first, elapsed, _, batches = runners[name](path, args, hyp, workers)
                    n_images = sum(len(b[2]) for b in batches)
                    best[name] = min(best[name], elapsed / n_images)
                    first[name] = min(first[name], t_first)
                    got = _digest(batches)
                    if reference is None:
                        reference = (name, got)
                    elif got != reference[1]:
                        raise SystemExit(f"workers={workers}: {name}'s batches differ from {reference[0]}'s")
            rate = {name: 1 / t for name, t in best.items()}
            ideal = max(1, min(workers, os.cpu_count() or 1)) / per_sample
            cells = "".join(f" {rate[n]:16.1f} {first[n]:8.2f} {rate[n] / ideal:5.2f}" for n in sides)
            if "upstream" in sides:
                cells += "".join(f" {rate[n] / rate['upstream']:13.3f}" for n in sides if n != "upstream")
            assert reference is not None  # every side ran above
            print(f"{workers:7d}{cells}  identical ({len(reference[1])} batches)")


if __name__ == "__main__":
    main()
