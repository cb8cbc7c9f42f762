"""``torch2ms demo`` / ``torch2ms yolov5``: YOLOv5 v7.0's training data pipeline, PyTorch and MindSpore side by side."""

from __future__ import annotations

import argparse

from porting.cli._args import HelpFormatter, at_least

__all__ = ["register"]

_EPILOG = """\
Writes report.md, report.html and PNG pictures of the first batches (boxes and class ids drawn,
side by side, with a difference map) into --out. Exit status: 0 every batch of every comparison
bit-identical; 1 any mismatch; 2 bad input (missing or empty data, unknown hyp, bad options).
"""


def _run(args: argparse.Namespace) -> int:
    from porting.cli._demo import run_demo

    return run_demo(args)


def _add(sub, name: str, help_text: str, data_required: bool) -> None:
    p = sub.add_parser(
        name, help=help_text,
        description="Run yolov5_pt (PyTorch, bit-identical to upstream YOLOv5 v7.0) and yolov5_ms (native MindSpore) "
                    "with the same seed, compare every batch tensor by tensor, exactly, and write a report. Also "
                    "compared: adapters.to_mindspore(yolov5_pt's dataset) against yolov5_pt and, when upstream "
                    "YOLOv5 (yolov5==7.0.14) is installed, yolov5_pt against upstream itself.",
        epilog=_EPILOG, formatter_class=HelpFormatter,
    )  # fmt: skip
    p.add_argument(
        "--data",
        required=data_required,
        default=None,
        help="a YOLOv5 images folder or list file"
        + ("" if data_required else " (default: generate the embedded synthetic dataset)"),
    )
    p.add_argument(
        "--out",
        default="demo_out" if name == "demo" else "yolov5_report",
        help="report folder"
        + ("" if data_required else " (without --data, the synthetic dataset is written to OUT/data)"),
    )
    p.add_argument("--seed", type=at_least(0), default=0, help="seed for the dataset, the sampler and the workers")
    if not data_required:
        p.add_argument("--images", type=at_least(1), default=16, help="synthetic images to generate")
    p.add_argument("--imgsz", type=at_least(32), default=320, help="training image size in pixels")
    p.add_argument("--batch", type=at_least(1), default=4, help="batch size")
    p.add_argument("--workers", type=at_least(0), default=2, help="DataLoader worker processes on both sides")
    p.add_argument("--epochs", type=at_least(1), default=2, help="epochs to compare")
    p.add_argument(
        "--hyp",
        default="scratch-low",
        help="hyperparameters: a bundled name (scratch-low, scratch-med, scratch-high) or a YAML file",
    )
    p.set_defaults(func=_run)


def register(sub) -> None:
    """Add the ``demo`` and ``yolov5`` sub-commands to ``sub`` (an argparse sub-parsers object)."""
    _add(sub, "demo", "side-by-side YOLOv5 pipeline report on the embedded synthetic dataset (the main job)", False)
    _add(sub, "yolov5", "the same side-by-side report on your own YOLOv5 dataset (--data DIR)", True)
