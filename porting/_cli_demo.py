"""``torch2ms demo``: the YOLOv5 v7.0 training data pipeline, PyTorch and MindSpore side by side."""

from __future__ import annotations

import argparse

from porting._cli_args import at_least

__all__ = ["register"]


def _run(args: argparse.Namespace) -> int:
    from porting._demo import run_demo

    return run_demo(args)


def register(sub) -> None:
    """Add the ``demo`` sub-command to ``sub`` (an argparse sub-parsers object)."""
    p = sub.add_parser(
        "demo", help="side-by-side equivalence demo on the embedded synthetic YOLO dataset",
        description="Generate the embedded synthetic YOLO dataset, run yolov5_pt's loader and its MindSpore port "
                    "with the same seed and compare every batch, bit for bit.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--out", default="demo_out", help="folder for the generated dataset and the report")
    p.add_argument("--seed", type=at_least(0), default=0, help="seed for the dataset, the sampler and the workers")
    p.add_argument("--images", type=at_least(1), default=16, help="synthetic images to generate")
    p.add_argument("--imgsz", type=at_least(32), default=320, help="training image size in pixels")
    p.add_argument("--batch", type=at_least(1), default=4, help="batch size")
    p.add_argument("--workers", type=at_least(0), default=2, help="DataLoader worker processes on both sides")
    p.add_argument("--epochs", type=at_least(1), default=2, help="epochs to compare")
    p.set_defaults(func=_run)
