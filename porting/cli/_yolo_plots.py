"""Pictures for the YOLOv5 side-by-side report: batch mosaics with boxes (like upstream's
``train_batch*.jpg``), side-by-side panels and a difference heat map. OpenCV drawing only."""

from __future__ import annotations

import math

import cv2
import numpy as np

__all__ = ["class_colour", "diff_heatmap", "plot_batch", "side_by_side"]

# Upstream's Colors() palette (utils/plots.py), as BGR for OpenCV.
_HEX = ("FF3838", "FF9D97", "FF701F", "FFB21D", "CFD231", "48F90A", "92CC17", "3DDB86", "1A9334", "00D4BB",
        "2C99A8", "00C2FF", "344593", "6473FF", "0018EC", "8438FF", "520085", "CB38FF", "FF95C8", "FF37C7")  # fmt: skip
_PALETTE = [(int(h[4:6], 16), int(h[2:4], 16), int(h[0:2], 16)) for h in _HEX]


def class_colour(cls: int) -> tuple[int, int, int]:
    """The BGR colour boxes of class ``cls`` are drawn in (upstream's palette, cycled).

    Example:
        >>> class_colour(0), class_colour(20)
        ((56, 56, 255), (56, 56, 255))
    """
    return _PALETTE[int(cls) % len(_PALETTE)]


def plot_batch(images: np.ndarray, labels: np.ndarray, *, max_subplots: int = 16, max_size: int = 1920,
               names: list[str] | None = None, title: str | None = None) -> np.ndarray:  # fmt: skip
    """One picture of a YOLOv5 batch: images in a grid, each with its boxes and class ids.

    Args:
        images: uint8 ``(N, 3, H, W)``, RGB (the ``img`` column).
        labels: ``(n, 6)`` rows ``image index, class, x, y, w, h`` (normalised xywh, the ``labels`` column).
        max_subplots: at most this many images (the first ones).
        max_size: the mosaic's longest side is scaled down to at most this.
        names: class names for the box captions (default: the class id).
        title: a caption across the top.

    Returns:
        uint8 BGR ``(rows * h, cols * w, 3)`` (``cv2.imwrite``-ready); grid cells are ``h x w`` after
        scaling, white borders between them.

    Raises:
        ValueError: ``images`` not ``(N, 3, H, W)`` uint8, or ``labels`` not ``(n, 6)``.

    Example:
        >>> plot_batch(np.zeros((2, 3, 64, 64), np.uint8), np.array([[0, 1, .5, .5, .5, .5]])).shape
        (64, 128, 3)
    """
    images, labels = np.asarray(images), np.asarray(labels, dtype=np.float64)
    if images.ndim != 4 or images.shape[1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"plot_batch: images must be uint8 (N, 3, H, W), got {images.dtype} {images.shape}")
    if labels.ndim != 2 or labels.shape[1] != 6:
        raise ValueError(f"plot_batch: labels must be (n, 6) [image, class, x, y, w, h], got {labels.shape}")
    n = min(len(images), max_subplots)
    _, _, h, w = images.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    scale = min(1.0, max_size / max(rows * h, cols * w))
    ch, cw = math.ceil(h * scale), math.ceil(w * scale)
    mosaic = np.full((rows * ch, cols * cw, 3), 255, np.uint8)
    for i in range(n):
        cell = np.ascontiguousarray(images[i].transpose(1, 2, 0)[:, :, ::-1])  # CHW RGB -> HWC BGR
        if scale < 1:
            cell = cv2.resize(cell, (cw, ch), interpolation=cv2.INTER_AREA)
        y0, x0 = (i // cols) * ch, (i % cols) * cw
        mosaic[y0 : y0 + ch, x0 : x0 + cw] = cell
        for _, cls, x, y, bw, bh in labels[labels[:, 0] == i]:
            x1, y1 = int(round(x0 + (x - bw / 2) * cw)), int(round(y0 + (y - bh / 2) * ch))
            x2, y2 = int(round(x0 + (x + bw / 2) * cw)), int(round(y0 + (y + bh / 2) * ch))
            colour = class_colour(int(cls))
            cv2.rectangle(mosaic, (x1, y1), (x2, y2), colour, thickness=max(1, round(2 * scale)))
            text = names[int(cls)] if names else str(int(cls))
            cv2.putText(mosaic, text, (x1 + 2, max(y1 - 3, y0 + 10)), cv2.FONT_HERSHEY_SIMPLEX,
                        0.4, colour, 1, cv2.LINE_AA)  # fmt: skip
        cv2.rectangle(mosaic, (x0, y0), (x0 + cw - 1, y0 + ch - 1), (255, 255, 255), 2)
    if title:
        mosaic = _caption(mosaic, title)
    return mosaic


def _caption(img: np.ndarray, text: str) -> np.ndarray:
    bar = np.full((28, img.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, text, (6, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([bar, img], axis=0)


def side_by_side(*pictures: np.ndarray, gap: int = 8) -> np.ndarray:
    """Pictures next to each other (padded with white to the tallest), ``gap`` white pixels between.

    Example:
        >>> side_by_side(np.zeros((4, 5, 3), np.uint8), np.zeros((6, 2, 3), np.uint8)).shape
        (6, 15, 3)
    """
    height = max(p.shape[0] for p in pictures)
    parts = []
    for i, p in enumerate(pictures):
        if i:
            parts.append(np.full((height, gap, 3), 255, np.uint8))
        parts.append(np.pad(p, ((0, height - p.shape[0]), (0, 0), (0, 0)), constant_values=255))
    return np.concatenate(parts, axis=1)


def diff_heatmap(a: np.ndarray, b: np.ndarray, *, max_size: int = 1920) -> tuple[np.ndarray, int]:
    """Where two image batches differ: black where equal, a heat colour scaled to the largest difference.

    Args:
        a, b: uint8 ``(N, 3, H, W)`` batches of the same shape.
        max_size: as :func:`plot_batch`.

    Returns:
        ``(picture, differing_pixels)``: the grid of per-pixel ``max |a - b|`` over channels (JET
        colours, black = equal) with a caption saying how many pixels differ — "no pixel differs"
        on an all-black map.

    Raises:
        ValueError: the shapes differ (then there is no per-pixel map to draw).

    Example:
        >>> x = np.zeros((1, 3, 8, 8), np.uint8); pic, n = diff_heatmap(x, x); n
        0
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"diff_heatmap: the batches have different shapes {a.shape} and {b.shape}")
    d = np.abs(a.astype(np.int16) - b.astype(np.int16)).max(axis=1).astype(np.uint8)  # (N, H, W)
    differing = int(np.count_nonzero(d))
    top = int(d.max()) if d.size else 0
    if differing:
        scaled = (d.astype(np.float32) * (255.0 / top)).astype(np.uint8)
        heat = np.stack([cv2.applyColorMap(s, cv2.COLORMAP_JET) for s in scaled])
        heat[d == 0] = 0
    else:
        heat = np.zeros((*d.shape, 3), np.uint8)
    rgb = np.ascontiguousarray(heat[..., ::-1].transpose(0, 3, 1, 2))  # plot_batch takes RGB CHW
    caption = (f"{differing} pixel(s) differ, largest |difference| {top}" if differing
               else "no pixel differs (all black)")  # fmt: skip
    return plot_batch(rgb, np.zeros((0, 6)), max_size=max_size, title=caption), differing
