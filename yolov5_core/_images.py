"""Image loading for the YOLOv5 pipeline: read (image or ``.npy`` disk cache), resize, RAM check.

Same behaviour as upstream v7.0 ``LoadImagesAndLabels.load_image`` / ``cache_images_to_disk`` /
``check_cache_ram``. Note upstream's rule, kept here: an ``.npy`` file next to an image is
loaded **whenever it exists**, whatever the ``cache`` setting.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

__all__ = ["cache_images_to_disk", "check_cache_ram", "load_image", "read_image", "resize_image"]


def read_image(im_file: str | os.PathLike, npy_file: str | os.PathLike | None = None) -> np.ndarray:
    """Read an image as BGR uint8, from ``npy_file`` when that file exists.

    Args:
        im_file: image path (read with ``cv2.imread``, EXIF orientation applied, colour).
        npy_file: its disk-cache path (``image.npy``), or None to skip the cache.

    Returns:
        BGR image ``(h, w, 3)`` uint8.

    Raises:
        FileNotFoundError: the image cannot be read (missing or not decodable), naming the path.

    Example:
        >>> read_image("images/train/0.jpg").shape  # doctest: +SKIP
        (480, 640, 3)
    """
    if npy_file is not None and os.path.exists(npy_file):
        return np.load(npy_file)
    im = cv2.imread(str(im_file))
    if im is None:
        raise FileNotFoundError(f"Image Not Found {im_file} (cv2.imread could not read it)")
    return im


def resize_image(im: np.ndarray, img_size: int, augment: bool) -> np.ndarray:
    """Resize so the long side is ``img_size`` (dims rounded **up**, ``math.ceil``).

    INTER_LINEAR when augmenting or enlarging, INTER_AREA when shrinking for evaluation;
    unchanged (same object) when the long side already equals ``img_size``.

    Args:
        im: image ``(h, w, c)``.
        img_size: target long side.
        augment: training mode (selects INTER_LINEAR for shrinking too).

    Returns:
        The resized image.

    Example:
        >>> resize_image(np.zeros((30, 61, 3), np.uint8), 20, augment=True).shape
        (10, 20, 3)
    """
    h0, w0 = im.shape[:2]
    r = img_size / max(h0, w0)
    if r != 1:
        interp = cv2.INTER_LINEAR if (augment or r > 1) else cv2.INTER_AREA
        im = cv2.resize(im, (math.ceil(w0 * r), math.ceil(h0 * r)), interpolation=interp)
    return im


def load_image(
    im_file: str | os.PathLike, img_size: int, augment: bool, npy_file: str | os.PathLike | None = None
) -> tuple[np.ndarray, tuple[int, int], tuple[int, int]]:
    """Read one image and resize its long side to ``img_size``.

    Args:
        im_file: image path.
        img_size: target long side.
        augment: training mode (interpolation choice, see :func:`resize_image`).
        npy_file: disk-cache path, loaded instead of the image when it exists.

    Returns:
        ``(image BGR uint8, (h0, w0) original, (h, w) resized)``.

    Raises:
        FileNotFoundError: the image cannot be read.

    Example:
        >>> im, hw0, hw = load_image("images/train/0.jpg", 320, True)  # doctest: +SKIP
    """
    im = read_image(im_file, npy_file)
    h0, w0 = im.shape[:2]
    im = resize_image(im, img_size, augment)
    h, w = im.shape[:2]
    return im, (h0, w0), (h, w)


def cache_images_to_disk(im_file: str | os.PathLike, npy_file: str | os.PathLike) -> None:
    """Save the decoded (not resized) BGR image as ``npy_file`` unless it already exists.

    Args:
        im_file: image path.
        npy_file: destination ``.npy`` path.

    Raises:
        FileNotFoundError: the image cannot be read.

    Example:
        >>> cache_images_to_disk("images/train/0.jpg", "images/train/0.npy")  # doctest: +SKIP
    """
    if not os.path.exists(npy_file):
        np.save(Path(npy_file).as_posix(), read_image(im_file))


def check_cache_ram(
    im_files: Sequence[str],
    shapes_wh: np.ndarray,
    img_size: int,
    safety_margin: float = 0.1,
    rng=None,
) -> tuple[bool, float, float, float]:
    """Whether caching all images in RAM fits in available memory (upstream's estimate).

    Upstream samples ``min(n, 30)`` images with ``random.choice`` and reads them to get their
    sizes. This draws exactly the same ``rng.choice(im_files)`` calls (python's global
    ``random`` by default; these draws shift the main process's stream, which matters with
    0 DataLoader workers) but takes each sampled image's size from ``shapes_wh`` (the
    EXIF-corrected sizes the label scan recorded) instead of decoding it: the same
    ``h * w * 3`` bytes, without 30 decodes.

    Args:
        im_files: image paths, in dataset order.
        shapes_wh: ``(n, 2)`` (width, height) per image, same order.
        img_size: the long side images are resized to.
        safety_margin: extra fraction of memory required.
        rng: a ``random.Random``; default: the global ``random`` module.

    Returns:
        ``(fits, bytes_required, bytes_available, bytes_total)``.

    Example:
        >>> check_cache_ram(["a.jpg"], np.array([[64, 32]]), 32, rng=random.Random(0))[0]
        True
    """
    import psutil  # a dependency of mindspore, so always present where this package runs

    rng = random if rng is None else rng
    index = {f: i for i, f in enumerate(im_files)}
    b, n = 0, min(len(im_files), 30)
    for _ in range(n):
        w, h = shapes_wh[index[rng.choice(im_files)]]
        ratio = img_size / max(h, w)
        b += int(h) * int(w) * 3 * ratio**2  # a cv2.imread BGR image's nbytes
    mem_required = b * len(im_files) / n
    mem = psutil.virtual_memory()
    return mem_required * (1 + safety_margin) < mem.available, mem_required, mem.available, mem.total
