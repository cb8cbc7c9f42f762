"""``LoadImagesAndLabels`` for MindSpore: upstream YOLOv5 v7.0's dataset, numpy out, no torch.

train.py (``--image-weights``) rewrites ``dataset.indices`` in its own process before each epoch. The
adapters engine takes the dataset's state where torch's DataLoader does, when the training loop begins
the epoch: fresh workers are forked from the loop's process then, and with ``num_workers=0`` the rewrite
is carried into the pipeline's loader process (``adapters.engine._sync``); persistent workers
(``InfiniteDataLoader``) keep the copy they were started with, as torch's do. So nothing here is
special: the dataset is :class:`yolov5_core.YoloDatasetCore` with upstream's collate functions.
"""

from __future__ import annotations

from yolov5_core._collate import collate_fn, collate_fn4
from yolov5_core._dataset import YoloDatasetCore

__all__ = ["LoadImagesAndLabels"]


class LoadImagesAndLabels(YoloDatasetCore):
    """YOLOv5 v7.0 ``LoadImagesAndLabels`` as a MindSpore ``GeneratorDataset`` source.

    :class:`yolov5_core.YoloDatasetCore` itself (same constructor, attributes — ``labels``,
    ``shapes``, ``batch_shapes``, ``indices``, ``mosaic``, ... — and random-stream order as upstream);
    ``__getitem__`` returns numpy ``(img uint8 (3, H, W), labels float32 (n, 6), im_file, shapes)``.
    ``collate_fn`` / ``collate_fn4`` are upstream's, in numpy.

    Example:
        >>> ds = LoadImagesAndLabels('data/images/train', 320, augment=True, hyp=hyp)  # doctest: +SKIP
        >>> img, labels, path, shapes = ds[0]  # doctest: +SKIP
        >>> img.dtype, labels.dtype  # doctest: +SKIP
        (dtype('uint8'), dtype('float32'))
    """

    collate_fn = staticmethod(collate_fn)
    collate_fn4 = staticmethod(collate_fn4)
