"""The main job: the YOLOv5 v7.0 training data pipeline in PyTorch and native MindSpore, side by side.

1. The data: the embedded synthetic YOLO dataset (JPEG scenes with exact labels, no download), or
   ``--data`` (a YOLOv5 images folder or list file).
2. ``yolov5_pt.create_dataloader`` (the PyTorch reference, bit-identical to upstream v7.0: mosaic,
   HSV, flips, random_perspective, albumentations; an ``InfiniteDataLoader`` with workers) and
   ``yolov5_ms.create_dataloader`` (native MindSpore, no torch), built with the same seed.
3. Every batch of every epoch compared tensor by tensor, exactly, with ``porting.compare_pipelines``;
   also ``adapters.to_mindspore(yolov5_pt's dataset)`` against ``yolov5_pt`` and, when upstream
   ultralytics YOLOv5 (``yolov5==7.0.14``) is installed, ``yolov5_pt`` against upstream itself.
4. Images/s of each side measured alone on the same images, from building the loader to its last batch
   (worker start-up included on both sides), and the report folder: ``report.md``, ``report.html`` and
   PNG pictures of the first batches (boxes and class ids drawn) side by side with a difference map.

The output is the demo's own: the loaders' label-scan progress bars and torch's ``pin_memory`` warning (no
accelerator here) are left out, and upstream's albumentations error under albumentations 2.x is explained
in one line instead of printed.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import io
import logging
import re
import shutil
import sys
import time
import warnings
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


_PROGRESS = re.compile(r"Scanning .*\d+/\d+|Scanning .*\bimages\b")


@contextlib.contextmanager
def _without_progress_bars():
    """Drop the datasets' label-scan progress bars (the demo prints its own counts); pass anything else on."""
    caught = io.StringIO()
    with contextlib.redirect_stderr(caught):
        yield
    for line in caught.getvalue().splitlines():
        last = line.split("\r")[-1]
        if last.strip() and not _PROGRESS.search(last):
            print(last, file=sys.stderr)


class _Albumentations(logging.Filter):
    """Keeps upstream's ``albumentations: <error>`` log record (its stage switching itself off) for one explanation."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        text = re.sub(r"\x1b\[[0-9;]*m", "", record.getMessage())
        if text.startswith("albumentations: "):
            self.records.append(text)
            return False
        return True


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
    with _without_progress_bars():
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
        self.batches, self.count = batches, count
        self.kept: list[tuple[Any, Any]] = []  # (images, labels) of the first `count` batches

    def __iter__(self):
        from adapters import to_numpy

        for batch in self.batches:
            if len(self.kept) < self.count:
                self.kept.append((to_numpy(batch[0]), to_numpy(batch[1])))
            yield batch


def _images_per_second(build, walk, n_images: int) -> float:
    """Images/s of one side alone: from building its loader (workers start in the walk) to its last batch."""
    gc.collect()  # earlier runs' garbage: collected before the clock starts, not inside one side's time
    start = time.perf_counter()
    loader = build()
    for _ in walk(loader):
        pass
    seconds = time.perf_counter() - start
    close = getattr(loader, "close", None)
    if close is not None:
        close()
    del loader
    gc.collect()  # an InfiniteDataLoader and its iterator form a cycle: collect it so its workers stop now
    return n_images / seconds


# --------------------------------------------------------------------------- the job


def run_demo(args: argparse.Namespace) -> int:
    """Run the side-by-side job; return 0 when every comparison was bit-identical, 1 on any mismatch, 2 on bad input."""
    try:
        with warnings.catch_warnings():
            # yolov5's loaders ask for pinned memory (as upstream does); with no accelerator torch warns at
            # every iter(): noise here, nothing to act on.
            warnings.filterwarnings("ignore", message=".*'pin_memory' argument is set as true but no accelerator")
            return _run(args)
    except DemoError as exc:
        print(f"torch2ms {args.command}: error: {exc}")
        return ExitCode.USAGE


def _compare_with_upstream(
    args: argparse.Namespace, source: str, hyp: dict, options: dict
) -> tuple[list[_Comparison], str | None]:
    """yolov5_pt against upstream YOLOv5 v7.0 when it is installed: ``([comparison], note)``."""
    from porting.harness._pipelines import compare_pipelines, loader_epochs
    from torch2ms_base._streams import StreamState, own_streams

    try:
        from yolov5_pt.upstream import load_upstream

        upstream = load_upstream()
    except ImportError as exc:
        return [], f"upstream YOLOv5 not compared: {exc}"
    # Upstream v7.0 builds RandomResizedCrop(height=, width=), which albumentations 2.x rejects: upstream
    # logs the validation error and runs without its albumentations stage. Say so once, in our words.
    upstream_log, albumentations = logging.getLogger("yolov5"), _Albumentations()
    upstream_log.addFilter(albumentations)
    try:
        up_loader, up_dataset = _loaders(args, source, hyp, "upstream")
    finally:
        upstream_log.removeFilter(albumentations)
    up_streams = StreamState.capture()
    stage_off = getattr(getattr(up_dataset, "albumentations", None), "transform", None) is None
    # Compare like with like: ours off too when upstream's is off.
    pt_loader, _ = _loaders(args, source, hyp, "yolov5_pt", **({"albumentations": False} if stage_off else {}))
    pt_streams = StreamState.capture()
    # With workers=0 both run in this process's global random streams: each gets its own copy.
    title = f"yolov5_pt{' (albumentations off)' if stage_off else ''} vs upstream YOLOv5 {upstream.version}"
    comparison = _Comparison(title, compare_pipelines(
        own_streams(loader_epochs(pt_loader, args.epochs), pt_streams),
        own_streams(loader_epochs(up_loader, args.epochs), up_streams), progress=False, **options))  # fmt: skip
    upstream_note = None
    if stage_off:
        import albumentations as album

        why = (
            albumentations.records[0].removeprefix("albumentations: ").splitlines()[0]
            if albumentations.records
            else "it did not start"
        )
        upstream_note = (f"upstream's albumentations stage is off under albumentations {album.__version__} "
                         f"(upstream v7.0 calls RandomResizedCrop(height=, width=), which albumentations 2.x "
                         f"rejects: {why}); the comparison turns ours off too")  # fmt: skip
        if not album.__version__.startswith("2."):
            upstream_note = upstream_note.replace("under albumentations", "(not the 2.x case) under albumentations")
    return [comparison], upstream_note


def _run(args: argparse.Namespace) -> int:
    from porting.harness._pipelines import compare_pipelines, dataset_rows, loader_epochs
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
        print(
            f"      {len(unreadable)} corrupt image(s) skipped, unreadable or with a bad label file "
            f"(as upstream does): {names}"
        )
    per_epoch = len(pt_loader)
    print(
        f"[2/5] yolov5_pt: {type(pt_loader).__name__}, {pt_loader.num_workers} workers, {per_epoch} batches/epoch, "
        f"{len(pt_dataset)} images; yolov5_ms: {type(ms_ds).__name__}, columns {list(ms_ds.structure.names)}"
    )

    kept_pt, kept_ms = (
        _Keep(loader_epochs(pt_loader, args.epochs), _SHOWN_BATCHES),
        _Keep(ms_ds.iter_batches(args.epochs, output_numpy=True), _SHOWN_BATCHES),
    )
    options: dict[str, Any] = dict(
        column_names=list(COLUMNS), batches_per_epoch=per_epoch, total=per_epoch * args.epochs
    )
    print(f"[3/5] comparing yolov5_ms with yolov5_pt over {args.epochs} epochs, every batch, exactly:")
    comparisons = [_Comparison("yolov5_ms vs yolov5_pt", compare_pipelines(kept_ms, kept_pt, progress=True, **options))]
    ms_ds.close()

    pt_loader, port = _to_mindspore_of_pt(args, source, hyp)
    comparisons.append(_Comparison("adapters.to_mindspore(yolov5_pt) vs yolov5_pt", compare_pipelines(
        port, pt_loader, num_epochs=args.epochs, progress=False, **options)))  # fmt: skip
    port.close()
    upstream, upstream_note = _compare_with_upstream(args, source, hyp, options)
    comparisons += upstream
    for c in comparisons:
        print(f"      {c.title}: {c.report.summary().splitlines()[0]}")
        if not c.report.ok:
            print("\n".join("        " + line for line in c.report.failure_text(max_shown=3).splitlines()))
    if upstream_note:
        print(f"      ({upstream_note})")

    n_images = len(pt_dataset) * args.epochs  # an InfiniteDataLoader epoch is one pass over the dataset
    print(
        f"[4/5] speed, each side alone on the same {n_images} images (fresh builds, same seed), building the "
        "loader and starting its workers included:"
    )
    pt_speed = _images_per_second(lambda: _loaders(args, source, hyp, "yolov5_pt")[0],
                                  lambda loader: (b for _ in range(args.epochs) for b in loader), n_images)  # fmt: skip
    ms_speed = _images_per_second(lambda: _loaders(args, source, hyp, "yolov5_ms")[0],
                                  lambda ds: dataset_rows(ds, args.epochs), n_images)  # fmt: skip
    print(
        f"      yolov5_pt {pt_speed:.1f} img/s, yolov5_ms {ms_speed:.1f} img/s, ratio {ms_speed / pt_speed:.2f} "
        f"({n_images} images: start-up weighs heavily; benchmarks/bench_yolov5.py measures longer runs)"
    )

    from porting.cli._demo_report import write_report

    report, files = write_report(out, args=args, described=described, hyp=hyp, comparisons=comparisons,
                                 kept_pt=kept_pt.kept, kept_ms=kept_ms.kept, speeds=(pt_speed, ms_speed),
                                 unreadable=unreadable, upstream_note=upstream_note)  # fmt: skip
    print(f"[5/5] report: {files[0]}, {files[1]}, {files[2]} and {len(files) - 3} pictures in {out}")
    # Every comparison above is exact (rtol = atol = 0, dtypes checked) and non-empty.
    print("RESULT:", "bit-identical" if report.ok else "MISMATCH (see above)")
    return ExitCode.OK if report.ok else ExitCode.MISMATCH
