"""``LoadImagesAndLabels``: upstream YOLOv5 v7.0's dataset class, as a thin torch wrapper over the core."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from yolov5_core._dataset import YoloDatasetCore
from yolov5_pt._collate import collate_fn, collate_fn4

__all__ = ["LoadImagesAndLabels"]


class LoadImagesAndLabels(YoloDatasetCore, Dataset):
    """YOLOv5 v7.0 ``LoadImagesAndLabels``: :class:`yolov5_core.YoloDatasetCore` returning tensors.

    Same constructor (upstream's arguments plus keyword-only ``include_class`` and
    ``albumentations``), attributes and random-stream order as the core; only ``__getitem__``'s
    arrays become tensors (``torch.from_numpy``, no copy).

    Example:
        >>> ds = LoadImagesAndLabels('data/images/train', 320, augment=True, hyp=hyp)  # doctest: +SKIP
        >>> img, labels, path, shapes = ds[0]  # doctest: +SKIP
        >>> img.dtype, labels.dtype  # doctest: +SKIP
        (torch.uint8, torch.float32)
    """

    collate_fn = staticmethod(collate_fn)
    collate_fn4 = staticmethod(collate_fn4)

    def __getitem__(self, index: int):
        """``(img uint8 (3, H, W) RGB, labels float32 (n, 6), im_file, shapes)`` as tensors.

        Args:
            index: position in ``self.indices``.

        Returns:
            See :meth:`yolov5_core.YoloDatasetCore.__getitem__`; arrays as ``torch.Tensor``.
        """
        img, labels, path, shapes = super().__getitem__(index)
        return torch.from_numpy(img), torch.from_numpy(labels), path, shapes
