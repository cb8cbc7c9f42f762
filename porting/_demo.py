"""The main job: a YOLOv5 v7.0 training data pipeline run side by side in PyTorch and MindSpore.

1. Writes the embedded synthetic YOLO dataset (JPEG scenes with exact labels) — no download.
2. Builds the reference PyTorch pipeline, ``yolov5_pt.create_dataloader`` (mosaic, HSV, flips,
   random_perspective; an InfiniteDataLoader with worker processes), as a YOLOv5 training run does.
3. Builds the MindSpore pipeline from the same dataset with ``adapters.to_mindspore(..., infinite=True)``.
4. Compares both, epoch after epoch, tensor by tensor, with ``porting.compare_pipelines``; when upstream
   ultralytics YOLOv5 (``yolov5==7.0.14``) is installed, also compares ``yolov5_pt`` with upstream itself.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

__all__ = ["run_demo"]

_GENERATOR_BASE = 6148914691236517205  # upstream create_dataloader: manual_seed(this + seed + RANK)


def _epochs(loader, epochs):
    for _ in range(epochs):
        yield from loader


def run_demo(args: argparse.Namespace) -> int:
    """Run the side-by-side demo; return 0 when every batch matched bit for bit, else 1."""
    import torch

    import adapters
    from porting import compare_pipelines, seed_everything
    from porting._streams import StreamState, own_streams
    from yolov5_core import load_hyp, make_synthetic_dataset
    from yolov5_pt import LoadImagesAndLabels, create_dataloader, seed_worker

    out = Path(args.out)
    data_dir = out / "data"
    shutil.rmtree(data_dir, ignore_errors=True)
    t0 = time.perf_counter()
    data = make_synthetic_dataset(data_dir, n_images=args.images, seed=args.seed)
    print(f"[1/4] synthetic YOLO dataset: {data.n_clean} images, {data.n_objects} objects -> {data.images} "
          f"({time.perf_counter() - t0:.1f} s)")

    seed_everything(args.seed)
    hyp = load_hyp("scratch-low")
    loader, dataset = create_dataloader(
        str(data.images), args.imgsz, args.batch, 32, hyp=hyp, augment=True, workers=args.workers,
        shuffle=True, seed=args.seed, prefix="yolov5_pt: ",
    )
    print(f"[2/4] PyTorch: yolov5_pt.create_dataloader -> {type(loader).__name__}, {loader.num_workers} workers, "
          f"{len(loader)} batches/epoch, mosaic {hyp['mosaic']}, fliplr {hyp['fliplr']}")

    generator = torch.Generator()
    generator.manual_seed(_GENERATOR_BASE + args.seed - 1)  # RANK = -1 outside DDP, as upstream
    ds = adapters.to_mindspore(
        dataset, batch_size=loader.batch_size, shuffle=True, num_workers=loader.num_workers,
        collate_fn=LoadImagesAndLabels.collate_fn, worker_init_fn=seed_worker, generator=generator, infinite=True,
        # shapes: one entry per image (None under mosaic), carried as a packed column
        column_names=["img", "labels", "paths", "shapes"],
    )
    print(f"[3/4] MindSpore: adapters.to_mindspore -> {type(ds).__name__} columns {list(ds.structure.names)}")

    names = ["img", "labels", "paths", "shapes"]
    report = compare_pipelines(ds, loader, num_epochs=args.epochs, column_names=names, progress=False)
    print(f"[4/4] MindSpore vs PyTorch over {args.epochs} epochs:\n{report}")
    ok = report.ok

    try:
        from yolov5_pt.upstream import load_upstream

        upstream = load_upstream()
    except ImportError as exc:
        print(f"      (upstream YOLOv5 not compared: {exc})")
    else:
        seed_everything(args.seed)
        up_loader, _ = upstream.dataloaders.create_dataloader(
            str(data.images), args.imgsz, args.batch, 32, hyp=hyp, augment=True, workers=args.workers,
            shuffle=True, seed=args.seed, prefix="upstream: ",
        )
        up_streams = StreamState.capture()
        seed_everything(args.seed)
        # Upstream's albumentations stage silently disables itself under albumentations 2.x (the
        # validation error it prints above); ours runs. Compare like with like: off on our side too.
        pt_loader, _ = create_dataloader(
            str(data.images), args.imgsz, args.batch, 32, hyp=hyp, augment=True, workers=args.workers,
            shuffle=True, seed=args.seed, prefix="yolov5_pt: ", albumentations=False,
        )
        pt_streams = StreamState.capture()
        # Both run in this process's global random streams when workers=0: each gets its own copy,
        # so each gives what it gives alone.
        up_report = compare_pipelines(
            own_streams(_epochs(pt_loader, args.epochs), pt_streams),
            own_streams(_epochs(up_loader, args.epochs), up_streams),
            column_names=names, progress=False,
        )
        print(f"      yolov5_pt (albumentations off) vs upstream YOLOv5 {upstream.version} over {args.epochs} "
              f"epochs:\n{up_report}")
        ok = ok and up_report.ok
    # Every report above is exact (rtol = atol = 0, dtypes checked) and non-empty, so ok means bit for bit.
    print("RESULT:", "bit-identical" if ok and report.verdict == "bit-identical" else "MISMATCH (see above)")
    return 0 if ok else 1
