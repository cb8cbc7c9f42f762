"""Box and segment format conversions used by the YOLOv5 data pipeline (numpy only).

Every function reproduces upstream YOLOv5 v7.0 (``utils/general.py``, ``utils/metrics.py``)
operation for operation, so the same float inputs give the same float bits: the expressions
keep upstream's evaluation order and dtypes (a float32 array stays float32).

Formats: ``xyxy`` = pixel corners (x1, y1, x2, y2); ``xywh`` = pixel centre + size;
``xywhn`` = centre + size normalised by the image width/height; ``xyn`` = normalised points.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "bbox_ioa",
    "clip_boxes",
    "resample_segments",
    "segment2box",
    "segments2boxes",
    "xyn2xy",
    "xywh2xyxy",
    "xywhn2xyxy",
    "xyxy2xywh",
    "xyxy2xywhn",
]


def _check_boxes(x: np.ndarray, where: str) -> None:
    if not isinstance(x, np.ndarray) or x.ndim < 1 or x.shape[-1] < 4:
        got = f"shape {x.shape}" if isinstance(x, np.ndarray) else type(x).__name__
        raise ValueError(f"{where}: expected a numpy array of shape (..., 4), got {got}")


def xyxy2xywh(x: np.ndarray) -> np.ndarray:
    """Convert ``(..., 4)`` boxes from xyxy to xywh (pixel centre and size).

    Args:
        x: boxes ``(..., 4)``.

    Returns:
        A new array of the same shape and dtype.

    Raises:
        ValueError: ``x`` is not an array whose last axis has at least 4 entries.

    Example:
        >>> xyxy2xywh(np.array([[0., 0., 4., 2.]]))
        array([[2., 1., 4., 2.]])
    """
    _check_boxes(x, "xyxy2xywh")
    y = np.copy(x)
    y[..., 0] = (x[..., 0] + x[..., 2]) / 2
    y[..., 1] = (x[..., 1] + x[..., 3]) / 2
    y[..., 2] = x[..., 2] - x[..., 0]
    y[..., 3] = x[..., 3] - x[..., 1]
    return y


def xywh2xyxy(x: np.ndarray) -> np.ndarray:
    """Convert ``(..., 4)`` boxes from xywh (pixel centre and size) to xyxy.

    Args:
        x: boxes ``(..., 4)``.

    Returns:
        A new array of the same shape and dtype.

    Raises:
        ValueError: ``x`` is not an array whose last axis has at least 4 entries.

    Example:
        >>> xywh2xyxy(np.array([[2., 1., 4., 2.]]))
        array([[0., 0., 4., 2.]])
    """
    _check_boxes(x, "xywh2xyxy")
    y = np.copy(x)
    y[..., 0] = x[..., 0] - x[..., 2] / 2
    y[..., 1] = x[..., 1] - x[..., 3] / 2
    y[..., 2] = x[..., 0] + x[..., 2] / 2
    y[..., 3] = x[..., 1] + x[..., 3] / 2
    return y


def xywhn2xyxy(x: np.ndarray, w: float = 640, h: float = 640, padw: float = 0, padh: float = 0) -> np.ndarray:
    """Convert normalised xywh boxes to pixel xyxy in a ``w`` x ``h`` image shifted by ``(padw, padh)``.

    Args:
        x: boxes ``(..., 4)``, normalised centre and size.
        w: image width in pixels.
        h: image height in pixels.
        padw: added to x coordinates (left padding / mosaic offset).
        padh: added to y coordinates.

    Returns:
        A new array of the same shape and dtype.

    Raises:
        ValueError: ``x`` is not an array whose last axis has at least 4 entries.

    Example:
        >>> xywhn2xyxy(np.array([[0.5, 0.5, 0.5, 0.5]]), w=8, h=4)
        array([[2., 1., 6., 3.]])
    """
    _check_boxes(x, "xywhn2xyxy")
    y = np.copy(x)
    y[..., 0] = w * (x[..., 0] - x[..., 2] / 2) + padw
    y[..., 1] = h * (x[..., 1] - x[..., 3] / 2) + padh
    y[..., 2] = w * (x[..., 0] + x[..., 2] / 2) + padw
    y[..., 3] = h * (x[..., 1] + x[..., 3] / 2) + padh
    return y


def xyxy2xywhn(x: np.ndarray, w: float = 640, h: float = 640, clip: bool = False, eps: float = 0.0) -> np.ndarray:
    """Convert pixel xyxy boxes to normalised xywh.

    Args:
        x: boxes ``(..., 4)``. With ``clip=True`` they are clipped **in place** (as upstream does)
            to ``[0, w - eps]`` x ``[0, h - eps]`` first.
        w: image width in pixels.
        h: image height in pixels.
        clip: clip before converting.
        eps: margin kept inside the image when clipping.

    Returns:
        A new array of the same shape and dtype.

    Raises:
        ValueError: ``x`` is not an array whose last axis has at least 4 entries.

    Example:
        >>> xyxy2xywhn(np.array([[2., 1., 6., 3.]]), w=8, h=4)
        array([[0.5, 0.5, 0.5, 0.5]])
    """
    _check_boxes(x, "xyxy2xywhn")
    if clip:
        clip_boxes(x, (h - eps, w - eps))
    y = np.copy(x)
    y[..., 0] = ((x[..., 0] + x[..., 2]) / 2) / w
    y[..., 1] = ((x[..., 1] + x[..., 3]) / 2) / h
    y[..., 2] = (x[..., 2] - x[..., 0]) / w
    y[..., 3] = (x[..., 3] - x[..., 1]) / h
    return y


def xyn2xy(x: np.ndarray, w: float = 640, h: float = 640, padw: float = 0, padh: float = 0) -> np.ndarray:
    """Convert normalised points ``(n, 2)`` (a segment) to pixels, shifted by ``(padw, padh)``.

    Args:
        x: points ``(n, 2)``.
        w: image width in pixels.
        h: image height in pixels.
        padw: added to x.
        padh: added to y.

    Returns:
        A new array of the same shape and dtype.

    Example:
        >>> xyn2xy(np.array([[0.5, 0.25]]), w=8, h=4, padw=1)
        array([[5., 1.]])
    """
    y = np.copy(x)
    y[..., 0] = w * x[..., 0] + padw
    y[..., 1] = h * x[..., 1] + padh
    return y


def clip_boxes(boxes: np.ndarray, shape: tuple[float, float]) -> None:
    """Clip xyxy boxes in place to ``shape = (height, width)``.

    Args:
        boxes: boxes ``(..., 4)``, modified in place.
        shape: ``(height, width)`` upper bounds; the lower bound is 0.

    Example:
        >>> b = np.array([[-1., 2., 9., 5.]]); clip_boxes(b, (4, 8)); b
        array([[0., 2., 8., 4.]])
    """
    boxes[..., [0, 2]] = boxes[..., [0, 2]].clip(0, shape[1])
    boxes[..., [1, 3]] = boxes[..., [1, 3]].clip(0, shape[0])


def segment2box(segment: np.ndarray, width: float = 640, height: float = 640) -> np.ndarray:
    """Bounding xyxy box of the points of ``segment`` that lie inside the image.

    Args:
        segment: points ``(n, 2)`` in pixels.
        width: image width.
        height: image height.

    Returns:
        ``[x1, y1, x2, y2]``, or ``zeros((1, 4))`` when no inside point has a non-zero x
        (upstream's ``any(x)`` test, kept for bit-compatibility).

    Example:
        >>> segment2box(np.array([[1., 1.], [3., 2.], [99., 1.]]), 8, 4)
        array([1., 1., 3., 2.])
    """
    x, y = segment.T
    inside = (x >= 0) & (y >= 0) & (x <= width) & (y <= height)
    x, y = x[inside], y[inside]
    # upstream tests any(x), not len(x): a segment whose inside points all have x == 0 gives zeros.
    return np.array([x.min(), y.min(), x.max(), y.max()]) if any(x) else np.zeros((1, 4))


def segments2boxes(segments: list[np.ndarray]) -> np.ndarray:
    """Convert segments (each ``(n, 2)``) to xywh boxes ``(len(segments), 4)``.

    Args:
        segments: list of point arrays.

    Returns:
        xywh boxes, one row per segment.

    Example:
        >>> segments2boxes([np.array([[0., 0.], [4., 2.]])])
        array([[2., 1., 4., 2.]])
    """
    boxes = []
    for s in segments:
        x, y = s.T
        boxes.append([x.min(), y.min(), x.max(), y.max()])
    return xyxy2xywh(np.array(boxes))


def resample_segments(segments: list[np.ndarray], n: int = 1000) -> list[np.ndarray]:
    """Up-sample each closed segment to ``n`` points by linear interpolation (in place in the list).

    Args:
        segments: list of ``(m, 2)`` point arrays; entries are replaced.
        n: points per resampled segment.

    Returns:
        The same list object, each entry now ``(n, 2)`` float64.

    Example:
        >>> resample_segments([np.array([[0., 0.], [2., 0.]])], n=3)[0]
        array([[0., 0.],
               [2., 0.],
               [0., 0.]])
    """
    for i, s in enumerate(segments):
        s = np.concatenate((s, s[0:1, :]), axis=0)
        x = np.linspace(0, len(s) - 1, n)
        xp = np.arange(len(s))
        segments[i] = np.concatenate([np.interp(x, xp, s[:, j]) for j in range(2)]).reshape(2, -1).T
    return segments


def bbox_ioa(box1: np.ndarray | tuple, box2: np.ndarray, eps: float = 1e-7) -> np.ndarray:
    """Intersection of ``box1`` with each of ``box2``, over ``box2``'s area (xyxy boxes).

    Args:
        box1: one box ``(4,)``.
        box2: boxes ``(n, 4)``.
        eps: added to the areas to avoid division by zero.

    Returns:
        ``(n,)`` intersection-over-area values.

    Example:
        >>> bbox_ioa(np.array([0., 0., 2., 2.]), np.array([[1., 1., 3., 3.]])).round(3)
        array([0.25])
    """
    b1_x1, b1_y1, b1_x2, b1_y2 = box1
    b2_x1, b2_y1, b2_x2, b2_y2 = box2.T
    inter_area = (np.minimum(b1_x2, b2_x2) - np.maximum(b1_x1, b2_x1)).clip(0) * (
        np.minimum(b1_y2, b2_y2) - np.maximum(b1_y1, b2_y1)
    ).clip(0)
    box2_area = (b2_x2 - b2_x1) * (b2_y2 - b2_y1) + eps
    return inter_area / box2_area
