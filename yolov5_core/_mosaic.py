"""YOLOv5's 4-image mosaic (v7.0 ``LoadImagesAndLabels.load_mosaic``), numpy/cv2 only."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from yolov5_core._augment import copy_paste, random_perspective
from yolov5_core._boxes import xyn2xy, xywhn2xyxy

__all__ = ["MosaicSource", "load_mosaic"]


class MosaicSource(Protocol):
    """What :func:`load_mosaic` reads from a dataset (``YoloDatasetCore`` provides it)."""

    @property
    def img_size(self) -> int: ...
    @property
    def mosaic_border(self) -> Sequence[int]: ...
    @property
    def indices(self) -> Sequence[int]: ...
    @property
    def labels(self) -> Sequence[np.ndarray]: ...
    @property
    def segments(self) -> Sequence[Sequence[np.ndarray]]: ...
    @property
    def hyp(self) -> dict | None: ...  # a dict whenever the dataset augments (mosaic is augmentation)

    def load_image(self, i: int) -> tuple[np.ndarray, tuple[int, int], tuple[int, int]]: ...


def load_mosaic(ds: MosaicSource, index: int, rng=None) -> tuple[np.ndarray, np.ndarray]:
    """Build a 2s x 2s mosaic of image ``index`` and 3 random others, then copy-paste and warp it.

    Draws from ``rng`` (python's global ``random`` by default), in this order: 2 ``uniform``
    for the centre ``(yc, xc)`` in ``[s/2, 3s/2)``; ``choices(ds.indices, k=3)`` for the
    partners; ``shuffle`` of the 4 indices; then :func:`copy_paste`'s ``sample`` (only with
    segments and ``hyp['copy_paste'] > 0``) and :func:`random_perspective`'s 8 ``uniform``.

    Args:
        ds: the dataset (see :class:`MosaicSource`).
        index: the anchor image.
        rng: a ``random.Random``; default: the global ``random`` module.

    Returns:
        ``(image s x s BGR uint8, labels (n, 5) [cls, x1, y1, x2, y2] pixels)``.

    Example:
        >>> img, labels = load_mosaic(dataset, 0)  # doctest: +SKIP
    """
    rng = random if rng is None else rng
    hyp = ds.hyp or {}
    labels4: list[np.ndarray] = []
    segments4: list[np.ndarray] = []
    s = ds.img_size
    yc, xc = (int(rng.uniform(-x, 2 * s + x)) for x in ds.mosaic_border)
    indices = [index] + rng.choices(ds.indices, k=3)
    rng.shuffle(indices)
    for i, index in enumerate(indices):
        img, _, (h, w) = ds.load_image(index)

        # a = where the tile goes on the canvas, b = which part of the image fills it
        if i == 0:  # top left
            img4 = np.full((s * 2, s * 2, img.shape[2]), 114, dtype=np.uint8)
            x1a, y1a, x2a, y2a = max(xc - w, 0), max(yc - h, 0), xc, yc
            x1b, y1b, x2b, y2b = w - (x2a - x1a), h - (y2a - y1a), w, h
        elif i == 1:  # top right
            x1a, y1a, x2a, y2a = xc, max(yc - h, 0), min(xc + w, s * 2), yc
            x1b, y1b, x2b, y2b = 0, h - (y2a - y1a), min(w, x2a - x1a), h
        elif i == 2:  # bottom left
            x1a, y1a, x2a, y2a = max(xc - w, 0), yc, xc, min(s * 2, yc + h)
            x1b, y1b, x2b, y2b = w - (x2a - x1a), 0, w, min(y2a - y1a, h)
        else:  # bottom right
            x1a, y1a, x2a, y2a = xc, yc, min(xc + w, s * 2), min(s * 2, yc + h)
            x1b, y1b, x2b, y2b = 0, 0, min(w, x2a - x1a), min(y2a - y1a, h)

        img4[y1a:y2a, x1a:x2a] = img[y1b:y2b, x1b:x2b]
        padw = x1a - x1b
        padh = y1a - y1b

        labels, segments = ds.labels[index].copy(), list(ds.segments[index])
        if labels.size:
            labels[:, 1:] = xywhn2xyxy(labels[:, 1:], w, h, padw, padh)
            segments = [xyn2xy(x, w, h, padw, padh) for x in segments]
        labels4.append(labels)
        segments4.extend(segments)

    all_labels = np.concatenate(labels4, 0)
    for x in (all_labels[:, 1:], *segments4):
        np.clip(x, 0, 2 * s, out=x)  # clipped here because random_perspective does not clip segments

    img4, all_labels, segments4 = copy_paste(img4, all_labels, segments4, p=hyp["copy_paste"], rng=rng)
    return random_perspective(
        img4,
        all_labels,
        segments4,
        degrees=hyp["degrees"],
        translate=hyp["translate"],
        scale=hyp["scale"],
        shear=hyp["shear"],
        perspective=hyp["perspective"],
        border=ds.mosaic_border,
        rng=rng,
    )
