"""``YoloDatasetCore``: YOLOv5 v7.0's training/validation dataset, framework-free (numpy in, numpy out).

Upstream's ``LoadImagesAndLabels`` minus torch: same constructor arguments, same attributes, and a
``__getitem__`` that draws from the same random streams in the same order, so the same seeds give
the same bytes. Framework wrappers (``yolov5_pt.LoadImagesAndLabels``, a MindSpore
``GeneratorDataset`` source) only convert the returned arrays.

Random streams drawn by ``__getitem__`` with ``augment=True`` (python = global ``random``,
numpy = global legacy ``np.random``), in order:

1. python ``random()``: mosaic gate (only when ``self.mosaic``).
2. mosaic path: :func:`~yolov5_core._mosaic.load_mosaic` (python: 2 ``uniform``, ``choices``,
   ``shuffle``, copy-paste ``sample``, 8 ``uniform``); python ``random()`` mixup gate; when it
   passes: python ``randint(0, n - 1)``, a second full mosaic, numpy ``beta(32, 32)``.
   Other path: letterbox (no draws), :func:`~yolov5_core._augment.random_perspective` (8 python
   ``uniform``).
3. Albumentations (when enabled): python ``random()`` gate, then ``getrandbits(32)`` seeding the
   Compose (see :mod:`yolov5_core._albumentations`). Upstream v7.0 cannot run this stage under
   albumentations 2.x (it silently skips it); pass ``albumentations=False`` to match it.
4. numpy ``uniform(-1, 1, 3)``: HSV gains (when any gain is non-zero).
5. python ``random()``: flip up-down gate, then python ``random()``: flip left-right gate.

Construction draws only with ``cache_images='ram'`` (``min(n, 30)`` python ``choice`` calls, see
:func:`~yolov5_core._images.check_cache_ram`).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from multiprocessing.pool import ThreadPool
from pathlib import Path

import cv2
import numpy as np

from yolov5_core._albumentations import Albumentations
from yolov5_core._augment import augment_hsv, mixup, random_perspective
from yolov5_core._boxes import xywhn2xyxy, xyxy2xywhn
from yolov5_core._files import HELP_URL, img2label_paths, list_image_files
from yolov5_core._images import cache_images_to_disk, check_cache_ram, load_image
from yolov5_core._labels import CACHE_VERSION, NUM_THREADS, label_cache_path, load_label_cache
from yolov5_core._letterbox import letterbox
from yolov5_core._mosaic import load_mosaic

__all__ = ["HYP_KEYS", "MOSAIC_HYP_KEYS", "YoloDatasetCore"]

LOGGER = logging.getLogger("yolov5_core")

# The hyperparameters __getitem__ reads when augmenting, and the extra ones the mosaic path reads.
HYP_KEYS = ("hsv_h", "hsv_s", "hsv_v", "degrees", "translate", "scale", "shear", "perspective", "flipud", "fliplr")
MOSAIC_HYP_KEYS = ("mosaic", "mixup", "copy_paste")
_CACHE_META_KEYS = ("hash", "version", "msgs", "results")
_CACHE_MODES = (False, None, True, "ram", "disk")


def _check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"YoloDatasetCore: {name} must be a positive int, got {value!r}")
    return int(value)


class YoloDatasetCore:
    """YOLOv5 v7.0 detection dataset returning numpy arrays.

    Args:
        path: image directory, ``*.txt`` list of images, or a list of those.
        img_size: long side images are resized to (and the mosaic tile size).
        batch_size: batch size used for the rect-mode batch shapes.
        augment: training augmentation on (mosaic, mixup, perspective, HSV, flips, ...).
        hyp: hyperparameter dict (``yolov5_core.load_hyp``); required when ``augment``.
        rect: rectangular batches (images sorted by aspect ratio, no mosaic). Ignored (False)
            with ``image_weights``, as upstream.
        image_weights: the caller will set ``self.indices`` to weighted samples (upstream's
            train.py does); turns rect off.
        cache_images: False/None, ``'ram'`` (after upstream's memory check), ``True`` (RAM without
            the check, as upstream), or ``'disk'`` (``.npy`` next to each image).
        single_cls: merge all classes into class 0.
        stride: model stride, for rect batch shapes.
        pad: extra padding, in strides, of rect batch shapes.
        min_items: drop images with fewer labels than this.
        prefix: starts log and error messages (e.g. ``'train: '``).
        workers: 0 scans labels in this thread; otherwise with upstream's ``NUM_THREADS`` threads.
        include_class: keep only labels of these classes (upstream hard-codes an empty list here;
            the argument exposes it).
        albumentations: True builds :class:`~yolov5_core.Albumentations` (upstream's list, working
            under albumentations 2.x) when ``augment``; False/None disables it (what upstream v7.0
            effectively runs under 2.x); an ``Albumentations`` instance is used as given.

    Attributes:
        im_files, label_files, labels, shapes, segments, batch, n, indices, batch_shapes (rect),
        ims, im_hw0, im_hw, npy_files, mosaic, mosaic_border, albumentations: as upstream.

    Raises:
        ValueError: a bad argument (naming it and the value), or no labels found when augmenting.
        KeyError: ``hyp`` lacks keys that augmentation reads (all missing keys are listed).
        FileNotFoundError: no images at ``path`` (from ``list_image_files``).

    Example:
        >>> ds = YoloDatasetCore('data/images/train', 320, augment=True, hyp=load_hyp('scratch-low'))  # doctest: +SKIP
        >>> img, labels, path, shapes = ds[0]  # doctest: +SKIP
        >>> img.shape, img.dtype, labels.shape[1]  # doctest: +SKIP
        ((3, 320, 320), dtype('uint8'), 6)
    """

    cache_version = CACHE_VERSION
    rand_interp_methods = [cv2.INTER_NEAREST, cv2.INTER_LINEAR, cv2.INTER_CUBIC, cv2.INTER_AREA, cv2.INTER_LANCZOS4]

    def __init__(
        self,
        path,
        img_size: int = 640,
        batch_size: int = 16,
        augment: bool = False,
        hyp: dict | None = None,
        rect: bool = False,
        image_weights: bool = False,
        cache_images: bool | str | None = False,
        single_cls: bool = False,
        stride: int = 32,
        pad: float = 0.0,
        min_items: int = 0,
        prefix: str = "",
        workers: int = 8,
        *,
        include_class: Sequence[int] | None = None,
        albumentations: bool | Albumentations | None = True,
    ):
        img_size = _check_positive_int("img_size", img_size)
        batch_size = _check_positive_int("batch_size", batch_size)
        stride = _check_positive_int("stride", stride)
        if not (cache_images is None or isinstance(cache_images, bool) or cache_images in ("ram", "disk")):
            raise ValueError(f"YoloDatasetCore: cache_images must be one of {_CACHE_MODES}, got {cache_images!r}")
        self.img_size = img_size
        self.augment = augment
        self.hyp = hyp
        self.image_weights = image_weights
        self.rect = False if image_weights else rect
        self.mosaic = self.augment and not self.rect
        self.mosaic_border: Sequence[int] = [-img_size // 2, -img_size // 2]
        self.stride = stride
        self.path = path
        if augment:
            self._check_hyp(hyp)
        if not augment or albumentations is None or albumentations is False:
            self.albumentations = None
        elif albumentations is True:
            self.albumentations = Albumentations(size=img_size)
        elif callable(albumentations):
            self.albumentations = albumentations
        else:
            raise ValueError(
                "YoloDatasetCore: albumentations must be True, False, None or an Albumentations instance, "
                f"got {type(albumentations).__name__}"
            )
        self.workers = workers

        self._load_labels(path, prefix, workers)
        self._filter(min_items, include_class, single_cls, prefix)
        n = self.n = len(self.shapes)
        bi = np.floor(np.arange(n) / batch_size).astype(int)  # batch index of each image
        self.batch = bi
        self.indices: Sequence[int] = range(n)
        if self.rect:
            self._sort_rect(bi, bi[-1] + 1, img_size, stride, pad)

        if cache_images == "ram" and not self._ram_fits(prefix):
            cache_images = False
        # the RAM cache: image, original and resized (h, w), set together by _cache_images
        self.ims: list[np.ndarray | None] = [None] * n
        self.im_hw0: list[tuple[int, int] | None] = [None] * n
        self.im_hw: list[tuple[int, int] | None] = [None] * n
        self.npy_files = [Path(f).with_suffix(".npy") for f in self.im_files]
        if cache_images:
            self._cache_images("disk" if cache_images == "disk" else "ram", prefix)

    # ------------------------------------------------------------------ construction
    def _check_hyp(self, hyp) -> None:
        if not isinstance(hyp, dict):
            raise ValueError(f"YoloDatasetCore: augment=True needs a hyp dict (see load_hyp), got {type(hyp).__name__}")
        needed = HYP_KEYS + (MOSAIC_HYP_KEYS if self.mosaic else ())
        missing = [k for k in needed if k not in hyp]
        if missing:
            raise KeyError(f"YoloDatasetCore: hyp lacks {missing}, which augmentation reads (has {sorted(hyp)})")

    def _load_labels(self, path, prefix: str, workers: int) -> None:
        im_files = list_image_files(path, prefix)
        label_files = img2label_paths(im_files)
        cache_path = label_cache_path(path, label_files)
        cache, _ = load_label_cache(cache_path, im_files, label_files, prefix, NUM_THREADS if workers != 0 else 0)
        nf = cache["results"][0]
        if not (nf > 0 or not self.augment):
            raise ValueError(f"{prefix}No labels found in {cache_path}, can not start training. {HELP_URL}")
        entries = {k: v for k, v in cache.items() if k not in _CACHE_META_KEYS}
        labels, shapes, segments = zip(*entries.values(), strict=True) if entries else ((), (), ())
        if not (sum(len(x) for x in labels) > 0 or not self.augment):
            raise ValueError(f"{prefix}All labels empty in {cache_path}, can not start training. {HELP_URL}")
        if not entries:
            raise ValueError(f"{prefix}No readable images in {path} (every image is corrupt, see {cache_path})")
        self.labels = list(labels)
        self.shapes = np.array(shapes)  # (n, 2) width, height
        self.segments = list(segments)
        self.im_files = list(entries.keys())
        self.label_files = img2label_paths(self.im_files)

    def _filter(self, min_items: int, include_class, single_cls: bool, prefix: str) -> None:
        if min_items:
            n = len(self.labels)
            include = np.array([len(x) >= min_items for x in self.labels]).nonzero()[0].astype(int)
            LOGGER.info(f"{prefix}{n - len(include)}/{n} images filtered from dataset")
            self.im_files = [self.im_files[i] for i in include]
            self.label_files = [self.label_files[i] for i in include]
            self.labels = [self.labels[i] for i in include]
            self.segments = [self.segments[i] for i in include]
            self.shapes = self.shapes[include]
            if not len(include):
                raise ValueError(f"{prefix}min_items={min_items} filtered out every image")
        include_class = list(include_class or [])
        include_class_array = np.array(include_class).reshape(1, -1)
        for i, (label, segment) in enumerate(zip(self.labels, self.segments, strict=True)):
            if include_class:
                j = (label[:, 0:1] == include_class_array).any(1)
                self.labels[i] = label[j]
                if segment:
                    self.segments[i] = [segment[idx] for idx, elem in enumerate(j) if elem]
            if single_cls:
                self.labels[i][:, 0] = 0

    def _sort_rect(self, bi: np.ndarray, nb: int, img_size: int, stride: int, pad: float) -> None:
        s = self.shapes  # wh
        ar = s[:, 1] / s[:, 0]  # aspect ratio h/w
        irect = ar.argsort()
        self.im_files = [self.im_files[i] for i in irect]
        self.label_files = [self.label_files[i] for i in irect]
        self.labels = [self.labels[i] for i in irect]
        self.segments = [self.segments[i] for i in irect]
        self.shapes = s[irect]
        ar = ar[irect]
        shapes = [[1, 1]] * nb
        for i in range(nb):
            ari = ar[bi == i]
            mini, maxi = ari.min(), ari.max()
            if maxi < 1:
                shapes[i] = [maxi, 1]
            elif mini > 1:
                shapes[i] = [1, 1 / mini]
        self.batch_shapes = np.ceil(np.array(shapes) * img_size / stride + pad).astype(int) * stride

    def _ram_fits(self, prefix: str) -> bool:
        fits, required, available, total = check_cache_ram(self.im_files, self.shapes, self.img_size)
        if not fits:
            gb = 1 << 30
            LOGGER.info(
                f"{prefix}{required / gb:.1f}GB RAM required, {available / gb:.1f}/{total / gb:.1f}GB available, "
                "not caching images"
            )
        return fits

    def _cache_images(self, mode: str, prefix: str) -> None:
        n, b = self.n, 0
        with ThreadPool(NUM_THREADS) as pool:  # cv2 releases the GIL while decoding
            if mode == "disk":
                for i, _ in enumerate(pool.imap(self.cache_images_to_disk, range(n))):
                    b += self.npy_files[i].stat().st_size
            else:
                for i, (im, hw0, hw) in enumerate(pool.imap(self.load_image, range(n))):
                    self.ims[i], self.im_hw0[i], self.im_hw[i] = im, hw0, hw
                    b += im.nbytes
        LOGGER.info(f"{prefix}Caching images ({b / (1 << 30):.1f}GB {mode})")

    # ------------------------------------------------------------------ images
    def load_image(self, i: int) -> tuple[np.ndarray, tuple[int, int], tuple[int, int]]:
        """Image ``i`` resized to ``img_size`` (from RAM cache, ``.npy``, or the file).

        Args:
            i: dataset index (not through ``indices``).

        Returns:
            ``(image BGR uint8, (h0, w0), (h, w))``; a RAM-cached image is returned itself
            (callers must not modify it).
        """
        im, hw0, hw = self.ims[i], self.im_hw0[i], self.im_hw[i]
        if im is None or hw0 is None or hw is None:  # not in the RAM cache (the three are set together)
            return load_image(self.im_files[i], self.img_size, self.augment, self.npy_files[i])
        return im, hw0, hw

    def cache_images_to_disk(self, i: int) -> None:
        """Save image ``i`` as ``.npy`` next to it (unless present)."""
        cache_images_to_disk(self.im_files[i], self.npy_files[i])

    def load_mosaic(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """4-image mosaic around ``index`` (see :func:`yolov5_core._mosaic.load_mosaic`)."""
        return load_mosaic(self, index)

    # ------------------------------------------------------------------ items
    def __len__(self) -> int:
        return len(self.im_files)

    def __getitem__(self, index: int):  # noqa: C901 - upstream's, statement by statement (random draw order)
        """One training/validation sample.

        Args:
            index: position in ``self.indices`` (identity unless image weights set it).

        Returns:
            ``(img, labels, im_file, shapes)``: ``img`` uint8 ``(3, H, W)`` RGB C-contiguous;
            ``labels`` float32 ``(n, 6)`` = ``[0, cls, x, y, w, h]`` normalised (column 0 is
            filled by the collate function); ``shapes`` ``((h0, w0), ((h / h0, w / w0), pad))``,
            or None for a mosaic.

        Raises:
            IndexError: ``index`` is out of range.
        """
        index = self.indices[index]
        hyp = self.hyp or {}  # None only without augmentation, where no hyperparameter is read
        mosaic = self.mosaic and random.random() < hyp["mosaic"]
        if mosaic:
            img, labels = self.load_mosaic(index)
            shapes = None
            if random.random() < hyp["mixup"]:
                img, labels = mixup(img, labels, *self.load_mosaic(random.randint(0, self.n - 1)))
        else:
            img, (h0, w0), (h, w) = self.load_image(index)
            shape = self.batch_shapes[self.batch[index]] if self.rect else self.img_size
            img, ratio, pad = letterbox(img, shape, auto=False, scaleup=self.augment)
            shapes = (h0, w0), ((h / h0, w / w0), pad)  # for COCO mAP rescaling

            labels = self.labels[index].copy()
            if labels.size:
                labels[:, 1:] = xywhn2xyxy(labels[:, 1:], ratio[0] * w, ratio[1] * h, padw=pad[0], padh=pad[1])
            if self.augment:
                img, labels = random_perspective(
                    img,
                    labels,
                    degrees=hyp["degrees"],
                    translate=hyp["translate"],
                    scale=hyp["scale"],
                    shear=hyp["shear"],
                    perspective=hyp["perspective"],
                )

        nl = len(labels)
        if nl:
            labels[:, 1:5] = xyxy2xywhn(labels[:, 1:5], w=img.shape[1], h=img.shape[0], clip=True, eps=1e-3)

        if self.augment:
            if self.albumentations is not None:
                img, labels = self.albumentations(img, labels)
                nl = len(labels)
            augment_hsv(img, hgain=hyp["hsv_h"], sgain=hyp["hsv_s"], vgain=hyp["hsv_v"])
            if random.random() < hyp["flipud"]:
                img = np.flipud(img)
                if nl:
                    labels[:, 2] = 1 - labels[:, 2]
            if random.random() < hyp["fliplr"]:
                img = np.fliplr(img)
                if nl:
                    labels[:, 1] = 1 - labels[:, 1]

        labels_out = np.zeros((nl, 6), np.float32)
        if nl:
            labels_out[:, 1:] = labels
        img = np.ascontiguousarray(img.transpose((2, 0, 1))[::-1])  # HWC BGR -> CHW RGB
        return img, labels_out, self.im_files[index], shapes
