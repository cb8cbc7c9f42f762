"""Batch collation of YOLOv5 samples (upstream v7.0 ``collate_fn`` / ``collate_fn4``) for tensors.

The rules are :func:`yolov5_core.collate_fn` / :func:`yolov5_core.collate_fn4` (numpy); here the
samples' tensors are viewed as numpy (``Tensor.numpy()``, no copy, so the in-place write of the
batch position into the labels reaches the caller's tensors, as upstream) and the results wrapped
back with ``torch.from_numpy``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from yolov5_core import _collate as core

__all__ = ["collate_fn", "collate_fn4"]


def _as_numpy(batch: Sequence, where: str) -> list[tuple]:
    core.check_batch(batch, where)
    return [(im.numpy(), lb.numpy(), path, shapes) for im, lb, path, shapes in batch]


def _as_torch(out: tuple) -> tuple[torch.Tensor, torch.Tensor, tuple, tuple]:
    imgs, labels, paths, shapes = out
    return torch.from_numpy(imgs), torch.from_numpy(labels), paths, shapes


def collate_fn(batch: Sequence[tuple]) -> tuple[torch.Tensor, torch.Tensor, tuple, tuple]:
    """Stack images, concatenate labels with their batch position in column 0 (see :func:`yolov5_core.collate_fn`).

    Writes each sample's position into its labels' column 0 **in place**, as upstream.

    Args:
        batch: samples ``(img uint8 (3, H, W), labels (n, 6), path, shapes)`` of equal image size.

    Returns:
        ``(imgs (B, 3, H, W) uint8, labels (N, 6), paths tuple, shapes tuple)``.

    Raises:
        ValueError: a sample is not a 4-tuple (naming its position), or images differ in size.

    Example:
        >>> s = [(torch.zeros(3, 4, 4, dtype=torch.uint8), torch.zeros(1, 6), f'{i}.jpg', None) for i in range(2)]
        >>> collate_fn(s)[1][:, 0].tolist()
        [0.0, 1.0]
    """
    return _as_torch(core.collate_fn(_as_numpy(batch, "collate_fn")))


def collate_fn4(batch: Sequence[tuple]) -> tuple[torch.Tensor, torch.Tensor, tuple, tuple]:
    """Quad collation: each group of 4 samples becomes one image twice the size (see :func:`yolov5_core.collate_fn4`).

    One python ``random.random()`` per group (global stream, in order) picks a bilinear x2 upsample
    of the group's first image, otherwise a 2x2 tile; trailing samples beyond a multiple of 4 are
    dropped, as upstream.

    Args:
        batch: samples as for :func:`collate_fn`; ``len(batch)`` should be a multiple of 4.

    Returns:
        ``(imgs (B//4, 3, 2H, 2W), labels (N, 6), paths of the first B//4 samples,
        shapes of the first B//4 samples)``.

    Raises:
        ValueError: a sample is not a 4-tuple.

    Example:
        >>> s = (torch.zeros(3, 4, 4, dtype=torch.uint8), torch.zeros(1, 6), 'a.jpg', None)
        >>> collate_fn4([s] * 4)[0].shape
        torch.Size([1, 3, 8, 8])
    """
    return _as_torch(core.collate_fn4(_as_numpy(batch, "collate_fn4")))
