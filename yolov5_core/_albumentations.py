"""YOLOv5's optional Albumentations stage, working and deterministic under albumentations 2.x.

Upstream v7.0 builds ``RandomResizedCrop(height=, width=)`` and
``ImageCompression(quality_lower=)``; albumentations 2.x rejects both, upstream catches the
error and silently trains **without** this stage. Here the same transforms are built with the
2.x spellings (``size=(s, s)``, ``quality_range=(75, 100)``) so the stage really runs.

Determinism: a 2.x ``Compose`` created without ``seed=`` draws from OS entropy, and it no
longer follows python's or numpy's global seeds. So every call that passes the gate reseeds the
Compose from the caller's python stream: the call draws, in this order, from ``rng`` (python's
global ``random`` by default, which DataLoader workers seed per worker):

1. ``rng.random()`` — the gate ``< p`` (upstream's draw);
2. ``rng.getrandbits(32)`` — only when the gate passes: ``seed``. The Compose and every transform
   in it then share **one** ``random.Random(seed)`` and **one** ``np.random.default_rng(seed)``
   (``Compose.set_random_state``), drawn from in transform order, like 1.x's shared global
   streams. (``Compose(seed=)`` / ``set_random_seed`` would instead give every transform its own
   generator with the *same* seed, so the p=0.01 gates of Blur, MedianBlur, ToGray and CLAHE
   would all draw the same number and fire together.)

The result of a call therefore depends only on the python stream's state before it: the same
seeds give the same bytes in every run, in every worker, whatever the OS entropy.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence

import numpy as np

__all__ = ["Albumentations", "default_transforms"]

LOGGER = logging.getLogger("yolov5_core")


def default_transforms(size: int = 640) -> list:
    """Upstream v7.0's Albumentations list, spelled for albumentations 2.x.

    Args:
        size: output size of the (disabled, p=0) ``RandomResizedCrop``.

    Returns:
        ``[RandomResizedCrop(p=0), Blur(p=0.01), MedianBlur(p=0.01), ToGray(p=0.01),
        CLAHE(p=0.01), RandomBrightnessContrast(p=0), RandomGamma(p=0), ImageCompression(p=0)]``.

    Example:
        >>> [type(t).__name__ for t in default_transforms(64) if t.p]
        ['Blur', 'MedianBlur', 'ToGray', 'CLAHE']
    """
    import albumentations as A  # imported on use: it takes ~1 s and is optional for inference code

    return [
        A.RandomResizedCrop(size=(size, size), scale=(0.8, 1.0), ratio=(0.9, 1.11), p=0.0),
        A.Blur(p=0.01),
        A.MedianBlur(p=0.01),
        A.ToGray(p=0.01),
        A.CLAHE(p=0.01),
        A.RandomBrightnessContrast(p=0.0),
        A.RandomGamma(p=0.0),
        A.ImageCompression(quality_range=(75, 100), p=0.0),  # 1.x: quality_lower=75 (upper 100)
    ]


class Albumentations:
    """Apply an albumentations ``Compose`` to a BGR image and its YOLO-format labels.

    Args:
        size: image size for :func:`default_transforms`.
        transforms: the transforms to compose instead of :func:`default_transforms` (e.g. p=1
            variants in tests).

    Attributes:
        transform: the ``albumentations.Compose`` (bboxes in ``'yolo'`` format with
            ``clip=True``, so rounding noise just outside [0, 1] is clipped rather than raising);
            ``None`` — upstream's state when albumentations is not importable (or, in upstream,
            fails its 1.x validation) — means the stage is off: a call returns its inputs and draws
            nothing, as upstream's ``if self.transform and random.random() < p``.

    Example:
        >>> import albumentations as A
        >>> aug = Albumentations(transforms=[A.Blur(p=1.0)])
        >>> im, lb = aug(np.zeros((32, 32, 3), np.uint8), np.array([[0., .5, .5, .2, .2]]))
        >>> lb.shape
        (1, 5)
    """

    def __init__(self, size: int = 640, transforms: Sequence | None = None):
        self.transform = None
        try:
            import albumentations as A
        except ImportError as exc:  # upstream: the stage is off (no draw) without the package
            LOGGER.warning(f"albumentations: not importable ({exc}); the stage is off (transform=None), as upstream")
            return
        T = default_transforms(size) if transforms is None else list(transforms)
        bbox_params = A.BboxParams(format="yolo", label_fields=["class_labels"], clip=True)
        # seed=0 only keeps construction off OS entropy; every applied call reseeds (module docstring).
        self.transform = A.Compose(T, bbox_params=bbox_params, seed=0)
        LOGGER.info("albumentations: " + ", ".join(f"{x}" for x in T if x.p))

    def __call__(self, im: np.ndarray, labels: np.ndarray, p: float = 1.0, rng=None) -> tuple[np.ndarray, np.ndarray]:
        """Transform ``im`` and ``labels`` with probability ``p``.

        Args:
            im: BGR image ``(h, w, 3)`` uint8.
            labels: ``(n, 5)`` ``[cls, x, y, w, h]`` normalised (YOLO format).
            p: probability of applying the Compose at all.
            rng: a ``random.Random``; default: python's global ``random`` (see module docstring
                for the draws).

        Returns:
            ``(image, labels)``; when applied, labels are float64 ``(m, 5)`` as upstream builds
            them (boxes the transforms drop are gone), and the image is C-contiguous.

        Raises:
            ValueError: ``labels`` is not an ``(n, 5)`` array.
        """
        if not isinstance(labels, np.ndarray) or labels.ndim != 2 or labels.shape[1] != 5:
            got = f"shape {labels.shape}" if isinstance(labels, np.ndarray) else type(labels).__name__
            raise ValueError(f"Albumentations: labels must be an (n, 5) array [cls, x, y, w, h], got {got}")
        if self.transform is None:
            return im, labels  # off, and no draw (upstream's short-circuit)
        rng = random if rng is None else rng
        if rng.random() < p:
            seed = rng.getrandbits(32)
            self.transform.set_random_state(np.random.default_rng(seed), random.Random(seed))
            new = self.transform(image=im, bboxes=labels[:, 1:], class_labels=labels[:, 0])
            boxes = np.asarray(new["bboxes"], dtype=np.float64).reshape(-1, 4)
            classes = np.asarray(new["class_labels"], dtype=np.float64).reshape(-1, 1)
            im, labels = np.ascontiguousarray(new["image"]), np.concatenate((classes, boxes), 1)
        return im, labels
