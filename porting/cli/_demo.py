"""The main job: the YOLOv5 v7.0 training data pipeline in PyTorch and native MindSpore, side by side.

1. The data: the embedded synthetic YOLO dataset (JPEG scenes with exact labels, no download), or
   ``--data`` (a YOLOv5 images folder or list file).
2. ``yolov5_pt.create_dataloader`` (the PyTorch reference, bit-identical to upstream v7.0: mosaic,
   HSV, flips, random_perspective, albumentations; an ``InfiniteDataLoader`` with workers) and
   ``yolov5_ms.create_dataloader`` (native MindSpore, no torch), built with the same seed.
3. Every batch of every epoch compared tensor by tensor, exactly, with ``porting.compare_pipelines``;
   also ``adapters.to_mindspore(yolov5_pt's dataset)`` against ``yolov5_pt`` and, when upstream
   ultralytics YOLOv5 (``yolov5==7.0.14``) is installed, ``yolov5_pt`` against upstream itself.
4. Images/s of each side measured alone, and the report folder: ``report.md``, ``report.html`` and
   PNG pictures of the first batches (boxes and class ids drawn) side by side with a difference map.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import time
from pathlib import Path
from typing import Any

from porting.cli._exit import ExitCode

__all__ = ["DemoError", "run_demo"]

_SHOWN_BATCHES = 2


class DemoError(Exception):
    """A one-line problem with the demo's input (data folder, hyp, options): exit status 2."""


@dataclasses.dataclass
class _Comparison:
    title: str
    report: Any  # PipelineReport


# --------------------------------------------------------------------------- building


_SYNTHETIC_MARK = ".torch2ms-synthetic"


def _data(args: argparse.Namespace, out: Path):
    """The image source and a description; a one-line DemoError for a missing or empty source."""
    from yolov5_core import list_image_files, make_synthetic_dataset

    if args.data is None:
        t0 = time.perf_counter()
        folder = out / "data"
        if folder.exists():
            # Made again each run (another --images or --seed must not find stale files); only a folder
            # this command made is removed: --out may well be a YOLOv5 checkout with a data/ of its own.
            if not (folder / _SYNTHETIC_MARK).exists():
                raise DemoError(f"--out {args.out}: {folder} exists and was not made by this command; "
                                "choose another --out")  # fmt: skip
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        (folder / _SYNTHETIC_MARK).write_text("made by torch2ms demo; removed and made again by each run\n")
        data = make_synthetic_dataset(folder, n_images=args.images, seed=args.seed)
        return str(data.images), (f"embedded synthetic YOLO dataset: {data.n_clean} images, {data.n_objects} "
                                  f"objects -> {data.images} ({time.perf_counter() - t0:.1f} s)")  # fmt: skip
    source = Path(args.data)
    if not source.exists():
        raise DemoError(f"--data {args.data}: no such folder or list file")
    try:
        files = list_image_files(str(source))
    except FileNotFoundError:
        raise DemoError(f"--data {args.data}: no images found (YOLOv5 image formats, searched recursively)") from None
    return str(source), f"{source}: {len(files)} images"


def _loaders(args: argparse.Namespace, source: str, hyp: dict, which: str, **extra):
    """Seed everything and build one side, as a YOLOv5 training run does."""
    from torch2ms_base._seed import seed_everything

    seed_everything(args.seed)
    common = dict(hyp=hyp, augment=True, workers=args.workers, shuffle=True, seed=args.seed, prefix=f"{which}: ")
    if which == "yolov5_pt":
        from yolov5_pt import create_dataloader
    elif which == "yolov5_ms":
        from yolov5_ms import create_dataloader
    else:
        from yolov5_pt.upstream import load_upstream

        create_dataloader = load_upstream().dataloaders.create_dataloader
    return create_dataloader(source, args.imgsz, args.batch, 32, **common, **extra)


def _to_mindspore_of_pt(args: argparse.Namespace, source: str, hyp: dict):
    """The third pipeline: yolov5_pt's own dataset through ``adapters.to_mindspore`` (InfiniteDataLoader)."""
    import torch

    import adapters
    from yolov5_core import loader_recipe
    from yolov5_pt import LoadImagesAndLabels, seed_worker

    loader, dataset = _loaders(args, source, hyp, "yolov5_pt")
    recipe = loader_recipe(len(dataset), args.batch, workers=args.workers, shuffle=True, seed=args.seed)
    generator = torch.Generator()
    generator.manual_seed(recipe.generator_seed)  # upstream's create_dataloader seeds its generator so
    return loader, adapters.to_mindspore(
        dataset, batch_size=recipe.batch_size, shuffle=recipe.shuffle, num_workers=recipe.num_workers,
        collate_fn=LoadImagesAndLabels.collate_fn, worker_init_fn=seed_worker, generator=generator,
        infinite=recipe.infinite, column_names=["img", "labels", "paths", "shapes"],
    )  # fmt: skip


class _Keep:
    """Pass batches through, keeping the images and labels of the first few (for the pictures)."""

    def __init__(self, batches, count: int) -> None:
        self.batches, self.count, self.kept = batches, count, []

    def __iter__(self):
        from adapters import to_numpy

        for batch in self.batches:
            if len(self.kept) < self.count:
                self.kept.append((to_numpy(batch[0]), to_numpy(batch[1])))
            yield batch


def _images_per_second(batches, epochs_images: int) -> float:
    start = time.perf_counter()
    for _ in batches:
        pass
    return epochs_images / (time.perf_counter() - start)


# --------------------------------------------------------------------------- the job


def run_demo(args: argparse.Namespace) -> int:
    """Run the side-by-side job; return 0 when every comparison was bit-identical, 1 on any mismatch, 2 on bad input."""
    try:
        return _run(args)
    except DemoError as exc:
        print(f"torch2ms {args.command}: error: {exc}")
        return ExitCode.USAGE


def _run(args: argparse.Namespace) -> int:
    from porting.harness._pipelines import compare_pipelines, dataset_rows, loader_epochs
    from torch2ms_base._streams import StreamState, own_streams
    from yolov5_core import list_image_files, load_hyp
    from yolov5_ms import COLUMNS

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    source, described = _data(args, out)
    print(f"[1/5] data: {described}")
    try:
        hyp = load_hyp(args.hyp)
    except FileNotFoundError as exc:
        raise DemoError(f"--hyp {args.hyp}: {str(exc).splitlines()[0]}") from None

    try:
        pt_loader, pt_dataset = _loaders(args, source, hyp, "yolov5_pt")
        ms_ds, ms_dataset = _loaders(args, source, hyp, "yolov5_ms")
    except (FileNotFoundError, ValueError, KeyError) as exc:
        raise DemoError(str(exc).splitlines()[0]) from None
    listed = list_image_files(source)
    unreadable = sorted(set(listed) - set(pt_dataset.im_files))
    if unreadable:
        names = ", ".join(Path(f).name for f in unreadable[:10]) + (" ..." if len(unreadable) > 10 else "")
        print(f"      {len(unreadable)} corrupt image(s) skipped, unreadable or with a bad label file (as upstream does): {names}")
    per_epoch = len(pt_loader)
    print(f"[2/5] yolov5_pt: {type(pt_loader).__name__}, {pt_loader.num_workers} workers, {per_epoch} batches/epoch, "
          f"{len(pt_dataset)} images; yolov5_ms: {type(ms_ds).__name__}, columns {list(ms_ds.structure.names)}")

    kept_pt, kept_ms = _Keep(loader_epochs(pt_loader, args.epochs), _SHOWN_BATCHES), _Keep(
        ms_ds.iter_batches(args.epochs, output_numpy=True), _SHOWN_BATCHES)
    options = dict(column_names=list(COLUMNS), batches_per_epoch=per_epoch, total=per_epoch * args.epochs)
    print(f"[3/5] comparing yolov5_ms with yolov5_pt over {args.epochs} epochs, every batch, exactly:")
    comparisons = [_Comparison("yolov5_ms vs yolov5_pt", compare_pipelines(kept_ms, kept_pt, progress=True, **options))]
    ms_ds.close()

    pt_loader, port = _to_mindspore_of_pt(args, source, hyp)
    comparisons.append(_Comparison("adapters.to_mindspore(yolov5_pt) vs yolov5_pt", compare_pipelines(
        port, pt_loader, num_epochs=args.epochs, progress=False, **options)))  # fmt: skip
    port.close()
    upstream_note = None
    try:
        from yolov5_pt.upstream import load_upstream

        upstream = load_upstream()
    except ImportError as exc:
        upstream_note = f"upstream YOLOv5 not compared: {exc}"
    else:
        up_loader, _ = _loaders(args, source, hyp, "upstream")
        up_streams = StreamState.capture()
        # Upstream's albumentations stage silently disables itself under albumentations 2.x (the
        # validation error it prints); ours runs. Compare like with like: off on our side too.
        pt_loader, _ = _loaders(args, source, hyp, "yolov5_pt", albumentations=False)
        pt_streams = StreamState.capture()
        # With workers=0 both run in this process's global random streams: each gets its own copy.
        comparisons.append(_Comparison(f"yolov5_pt (albumentations off) vs upstream YOLOv5 {upstream.version}",
                                       compare_pipelines(own_streams(loader_epochs(pt_loader, args.epochs), pt_streams),
                                                         own_streams(loader_epochs(up_loader, args.epochs), up_streams),
                                                         progress=False, **options)))  # fmt: skip
    for c in comparisons:
        print(f"      {c.title}: {c.report.summary().splitlines()[0]}")
        if not c.report.ok:
            print("\n".join("        " + line for line in c.report.failure_text(max_shown=3).splitlines()))
    if upstream_note:
        print(f"      ({upstream_note})")

    print("[4/5] images/s, each side alone (fresh builds, same seed):")
    n_images = len(pt_dataset) * args.epochs  # an InfiniteDataLoader epoch is one pass over the dataset
    pt_loader, _ = _loaders(args, source, hyp, "yolov5_pt")
    pt_speed = _images_per_second(loader_epochs(pt_loader, args.epochs), n_images)
    ms_ds, _ = _loaders(args, source, hyp, "yolov5_ms")
    ms_speed = _images_per_second(dataset_rows(ms_ds, args.epochs), n_images)
    ms_ds.close()
    print(f"      yolov5_pt {pt_speed:.1f} img/s, yolov5_ms {ms_speed:.1f} img/s, ratio {ms_speed / pt_speed:.2f}")

    from porting.cli._demo_report import write_report

    report, files = write_report(out, args=args, described=described, hyp=hyp, comparisons=comparisons,
                                 kept_pt=kept_pt.kept, kept_ms=kept_ms.kept, speeds=(pt_speed, ms_speed),
                                 unreadable=unreadable, upstream_note=upstream_note)  # fmt: skip
    print(f"[5/5] report: {files[0]}, {files[1]}, {files[2]} and {len(files) - 3} pictures in {out}")
    # Every comparison above is exact (rtol = atol = 0, dtypes checked) and non-empty.
    print("RESULT:", "bit-identical" if report.ok else "MISMATCH (see above)")
    return ExitCode.OK if report.ok else ExitCode.MISMATCH
