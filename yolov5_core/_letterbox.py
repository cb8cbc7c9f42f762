"""``letterbox``: resize an image to fit a target shape and pad it (YOLOv5 v7.0 semantics)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

__all__ = ["letterbox"]


def letterbox(
    im: np.ndarray,
    new_shape: int | Sequence[int] | np.ndarray = (640, 640),
    color: tuple[int, int, int] = (114, 114, 114),
    auto: bool = True,
    scaleFill: bool = False,  # upstream's keyword name (camelCase), kept for drop-in use
    scaleup: bool = True,
    stride: int = 32,
) -> tuple[np.ndarray, tuple[float, float], tuple[float, float]]:
    """Resize ``im`` (HWC) to fit ``new_shape`` keeping its aspect ratio, then pad with ``color``.

    Same arithmetic as upstream ``utils.augmentations.letterbox``: the scale is
    ``min(new_h / h, new_w / w)`` (capped at 1 unless ``scaleup``), the resized size is
    ``round(w * r), round(h * r)`` (INTER_LINEAR, skipped when unchanged), and the padding is
    split as ``round(d/2 - 0.1)`` before and ``round(d/2 + 0.1)`` after. No randomness.

    Args:
        im: image ``(h, w, c)`` uint8.
        new_shape: target ``(height, width)`` or one int for a square.
        color: padding value per channel.
        auto: pad only up to the next multiple of ``stride`` (minimum rectangle).
        scaleFill: stretch to ``new_shape`` with no padding (ignored when ``auto``).
        scaleup: allow enlarging; False only shrinks.
        stride: stride for ``auto``.

    Returns:
        ``(image, (ratio_w, ratio_h), (pad_w, pad_h))``; pads are per side (may be x.5).

    Raises:
        ValueError: ``im`` is not a 2-D or 3-D array, ``new_shape`` is not an int or a pair, or
            the resized image would be empty (a side rounds to 0 pixels).

    Example:
        >>> im = np.zeros((100, 200, 3), np.uint8)
        >>> out, ratio, pad = letterbox(im, 64, auto=False)
        >>> out.shape, ratio, pad
        ((64, 64, 3), (0.32, 0.32), (0.0, 16.0))
    """
    if not isinstance(im, np.ndarray) or im.ndim not in (2, 3):
        got = f"shape {im.shape}" if isinstance(im, np.ndarray) else type(im).__name__
        raise ValueError(f"letterbox: expected an image array (h, w[, c]), got {got}")
    shape = im.shape[:2]
    if isinstance(new_shape, (int, np.integer)):
        new_shape = (new_shape, new_shape)
    elif len(new_shape) != 2:
        raise ValueError(f"letterbox: new_shape must be an int or (height, width), got {new_shape!r}")

    r = min(new_shape[0] / shape[0], new_shape[1] / shape[1])
    if not scaleup:  # only shrink (better val mAP upstream)
        r = min(r, 1.0)

    ratio = r, r
    new_unpad = int(round(shape[1] * r)), int(round(shape[0] * r))
    dw: float
    dh: float  # pixels of padding: whole numbers, halved below
    dw, dh = new_shape[1] - new_unpad[0], new_shape[0] - new_unpad[1]
    if auto:
        dw, dh = np.mod(dw, stride), np.mod(dh, stride)
    elif scaleFill:
        dw, dh = 0.0, 0.0
        new_unpad = (new_shape[1], new_shape[0])
        ratio = new_shape[1] / shape[1], new_shape[0] / shape[0]

    dw /= 2
    dh /= 2

    if min(new_unpad) <= 0:  # cv2.resize would fail with an opaque assertion
        raise ValueError(
            f"letterbox: image (h, w) = {tuple(shape)} scaled by {r:g} to fit {tuple(new_shape)} "
            f"rounds to the empty size (w, h) = {new_unpad}"
        )
    if shape[::-1] != new_unpad:
        im = cv2.resize(im, new_unpad, interpolation=cv2.INTER_LINEAR)
    top, bottom = int(round(dh - 0.1)), int(round(dh + 0.1))
    left, right = int(round(dw - 0.1)), int(round(dw + 0.1))
    im = cv2.copyMakeBorder(im, top, bottom, left, right, cv2.BORDER_CONSTANT, value=color)
    return im, ratio, (dw, dh)
