"""Batch collation of YOLOv5 samples (upstream v7.0 ``collate_fn`` / ``collate_fn4``) in numpy.

The rules live here once; ``yolov5_pt`` wraps them for tensors, ``yolov5_ms`` uses them as they are.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np

from yolov5_core._interpolate import interpolate_bilinear

__all__ = ["collate_fn", "collate_fn4"]

# upstream's torch.tensor(...) constants (float32)
_HO = np.array([[0.0, 0, 0, 1, 0, 0]], np.float32)
_WO = np.array([[0.0, 0, 1, 0, 0, 0]], np.float32)
_S = np.array([[1, 1, 0.5, 0.5, 0.5, 0.5]], np.float32)


def check_batch(batch: Sequence, where: str) -> None:
    """Raise ``ValueError`` naming the first sample that is not a 4-tuple ``(img, labels, path, shapes)``."""
    for i, sample in enumerate(batch):
        if not isinstance(sample, (tuple, list)) or len(sample) != 4:
            got = f"{type(sample).__name__} of length {len(sample)}" if hasattr(sample, "__len__") else type(sample)
            raise ValueError(f"{where}: sample {i} must be (img, labels, path, shapes), got {got}")


def collate_fn(batch: Sequence[tuple]) -> tuple[np.ndarray, np.ndarray, tuple, tuple]:
    """Stack images, concatenate labels with their batch position in column 0.

    Writes each sample's position into its labels' column 0 **in place**, as upstream.

    Args:
        batch: samples ``(img uint8 (3, H, W), labels float32 (n, 6), path, shapes)`` of equal image size.

    Returns:
        ``(imgs uint8 (B, 3, H, W), labels float32 (N, 6), paths tuple, shapes tuple)``.

    Raises:
        ValueError: a sample is not a 4-tuple (naming its position), or images differ in shape.

    Example:
        >>> s = [(np.zeros((3, 4, 4), np.uint8), np.zeros((1, 6), np.float32), f'{i}.jpg', None) for i in range(2)]
        >>> collate_fn(s)[1][:, 0].tolist()
        [0.0, 1.0]
    """
    check_batch(batch, "collate_fn")
    im, label, path, shapes = zip(*batch, strict=True)
    for i, lb in enumerate(label):
        lb[:, 0] = i  # image index for build_targets()
    if len({x.shape for x in im}) > 1:
        raise ValueError(f"collate_fn: images must have one shape to stack, got {[tuple(x.shape) for x in im]}")
    return np.stack(im, 0), np.concatenate(label, 0), path, shapes


def collate_fn4(batch: Sequence[tuple]) -> tuple[np.ndarray, np.ndarray, tuple, tuple]:
    """Quad collation: turn each group of 4 samples into one image of twice the size.

    For each group, one python ``random.random() < 0.5`` (global stream, one draw per group, in
    order) picks a bilinear x2 upsample of the group's first image (its labels kept; torch's
    ``F.interpolate(scale_factor=2., mode='bilinear', align_corners=False)``, see
    :func:`~yolov5_core._interpolate.interpolate_bilinear`, then truncated back to uint8), otherwise
    a 2x2 tile of the 4 images (labels offset and scaled by 0.5). Trailing samples beyond a
    multiple of 4 are dropped, as upstream (their paths/shapes too).

    Args:
        batch: samples as for :func:`collate_fn`; ``len(batch)`` should be a multiple of 4.

    Returns:
        ``(imgs (B//4, 3, 2H, 2W), labels (N, 6), paths of the first B//4 samples,
        shapes of the first B//4 samples)`` — upstream returns ``path[:n]``, not the groups'
        first paths; kept.

    Raises:
        ValueError: a sample is not a 4-tuple.

    Example:
        >>> s = (np.zeros((3, 4, 4), np.uint8), np.zeros((1, 6), np.float32), 'a.jpg', None)
        >>> collate_fn4([s] * 4)[0].shape
        (1, 3, 8, 8)
    """
    check_batch(batch, "collate_fn4")
    im, label, path, shapes = zip(*batch, strict=True)
    n = len(shapes) // 4
    im4, label4, path4, shapes4 = [], [], path[:n], shapes[:n]
    for i in range(0, 4 * n, 4):
        if random.random() < 0.5:
            # uint8 values at scale 2 (weights 1/4, 3/4): every product and sum is exact in float32,
            # so all of torch's kernels agree and the cheapest (plain, channels-last) gives its bits.
            up = interpolate_bilinear(im[i][None].astype(np.float32), 2.0, fma=False, kernel="channels_last")[0]
            im1 = up.astype(im[i].dtype)  # torch's .type(): truncation, exact here (values stay in [0, 255])
            lb = label[i]
        else:
            im1 = np.concatenate((np.concatenate((im[i], im[i + 1]), 1), np.concatenate((im[i + 2], im[i + 3]), 1)), 2)
            lb = np.concatenate((label[i], label[i + 1] + _HO, label[i + 2] + _WO, label[i + 3] + _HO + _WO), 0) * _S
        im4.append(im1)
        label4.append(lb)

    for i, lb in enumerate(label4):
        lb[:, 0] = i

    return np.stack(im4, 0), np.concatenate(label4, 0), path4, shapes4
