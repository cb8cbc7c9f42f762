"""Batch collation of YOLOv5 samples (upstream v7.0 ``collate_fn`` / ``collate_fn4``)."""

from __future__ import annotations

import random
from typing import Sequence

import torch
import torch.nn.functional as F

__all__ = ["collate_fn", "collate_fn4"]


def _check_batch(batch: Sequence, where: str) -> None:
    for i, sample in enumerate(batch):
        if not isinstance(sample, (tuple, list)) or len(sample) != 4:
            got = f"{type(sample).__name__} of length {len(sample)}" if hasattr(sample, "__len__") else type(sample)
            raise ValueError(f"{where}: sample {i} must be (img, labels, path, shapes), got {got}")


def collate_fn(batch: Sequence[tuple]) -> tuple[torch.Tensor, torch.Tensor, tuple, tuple]:
    """Stack images, concatenate labels with their batch position in column 0.

    Writes each sample's position into its labels' column 0 **in place**, as upstream.

    Args:
        batch: samples ``(img uint8 (3, H, W), labels (n, 6), path, shapes)`` of equal image size.

    Returns:
        ``(imgs (B, 3, H, W) uint8, labels (N, 6), paths tuple, shapes tuple)``.

    Raises:
        ValueError: a sample is not a 4-tuple (naming its position).
        RuntimeError: images differ in size (torch.stack's message).

    Example:
        >>> s = [(torch.zeros(3, 4, 4, dtype=torch.uint8), torch.zeros(1, 6), f'{i}.jpg', None) for i in range(2)]
        >>> collate_fn(s)[1][:, 0].tolist()
        [0.0, 1.0]
    """
    _check_batch(batch, "collate_fn")
    im, label, path, shapes = zip(*batch)
    for i, lb in enumerate(label):
        lb[:, 0] = i  # image index for build_targets()
    return torch.stack(im, 0), torch.cat(label, 0), path, shapes


def collate_fn4(batch: Sequence[tuple]) -> tuple[torch.Tensor, torch.Tensor, tuple, tuple]:
    """Quad collation: turn each group of 4 samples into one image of twice the size.

    For each group, one python ``random.random() < 0.5`` (global stream, one draw per group, in
    order) picks a bilinear x2 upsample of the group's first image (its labels kept), otherwise
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
        >>> s = (torch.zeros(3, 4, 4, dtype=torch.uint8), torch.zeros(1, 6), 'a.jpg', None)
        >>> collate_fn4([s] * 4)[0].shape
        torch.Size([1, 3, 8, 8])
    """
    _check_batch(batch, "collate_fn4")
    im, label, path, shapes = zip(*batch)
    n = len(shapes) // 4
    im4, label4, path4, shapes4 = [], [], path[:n], shapes[:n]

    ho = torch.tensor([[0.0, 0, 0, 1, 0, 0]])
    wo = torch.tensor([[0.0, 0, 1, 0, 0, 0]])
    s = torch.tensor([[1, 1, 0.5, 0.5, 0.5, 0.5]])
    for i in range(0, 4 * n, 4):
        if random.random() < 0.5:
            im1 = F.interpolate(im[i].unsqueeze(0).float(), scale_factor=2.0, mode="bilinear", align_corners=False)[
                0
            ].type(im[i].type())
            lb = label[i]
        else:
            im1 = torch.cat((torch.cat((im[i], im[i + 1]), 1), torch.cat((im[i + 2], im[i + 3]), 1)), 2)
            lb = torch.cat((label[i], label[i + 1] + ho, label[i + 2] + wo, label[i + 3] + ho + wo), 0) * s
        im4.append(im1)
        label4.append(lb)

    for i, lb in enumerate(label4):
        lb[:, 0] = i

    return torch.stack(im4, 0), torch.cat(label4, 0), path4, shapes4
