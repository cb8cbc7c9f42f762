"""yolov5_ms: upstream YOLOv5 v7.0's training data pipeline native to MindSpore, identical to ``yolov5_pt``.

``create_dataloader`` (upstream's signature) returns a ``mindspore.dataset`` pipeline with columns
``img``, ``labels``, ``paths``, ``shapes`` and the :class:`LoadImagesAndLabels` dataset; the same
seeds give the bytes ``yolov5_pt.create_dataloader`` gives through torch's DataLoader. Built on
``yolov5_core`` (the dataset, augmentations, collation and loader recipe) and ``adapters`` (torch's
DataLoader semantics on MindSpore). Never imports torch.
"""

from yolov5_core import collate_fn, collate_fn4
from yolov5_ms._dataloader import COLUMNS, SAMPLE_COLUMNS, create_dataloader, distributed_context, seed_worker
from yolov5_ms._dataset import LoadImagesAndLabels

__all__ = [
    "COLUMNS",
    "LoadImagesAndLabels",
    "SAMPLE_COLUMNS",
    "collate_fn",
    "collate_fn4",
    "create_dataloader",
    "distributed_context",
    "seed_worker",
]
