"""yolov5_pt: upstream YOLOv5 v7.0's training data pipeline in PyTorch, over the framework-free core.

``LoadImagesAndLabels`` (a thin torch wrapper of ``yolov5_core.YoloDatasetCore``),
``create_dataloader``, ``InfiniteDataLoader``, ``seed_worker``, ``collate_fn``, ``collate_fn4``.
Same arguments, attributes, random-stream order and bytes as upstream ultralytics YOLOv5 v7.0.
``yolov5_pt.upstream.load_upstream()`` imports upstream itself, for comparisons.
"""

from yolov5_pt._collate import collate_fn, collate_fn4
from yolov5_pt._dataloader import InfiniteDataLoader, create_dataloader, seed_worker, torch_distributed_zero_first
from yolov5_pt._dataset import LoadImagesAndLabels

__all__ = [
    "InfiniteDataLoader",
    "LoadImagesAndLabels",
    "collate_fn",
    "collate_fn4",
    "create_dataloader",
    "seed_worker",
    "torch_distributed_zero_first",
]
