"""Image/label verification and the ``*.cache`` label cache, output-identical to upstream YOLOv5 v7.0.

Mirrors ``exif_size``, ``verify_image_label`` and ``LoadImagesAndLabels.cache_labels`` plus the cache check in
``LoadImagesAndLabels.__init__`` (``yolov5/utils/dataloaders.py``): same per-image tuples, same messages, same
cache dict (version 0.6), so caches written by either side load in the other.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from itertools import repeat
from multiprocessing.pool import ThreadPool
from pathlib import Path
from typing import Any

import numpy as np
from PIL import ExifTags, Image, ImageOps
from tqdm import tqdm

from yolov5_core._boxes import segments2boxes
from yolov5_core._files import HELP_URL, IMG_FORMATS, get_hash, img2label_paths

__all__ = [
    "CACHE_VERSION",
    "NUM_THREADS",
    "LabelSummary",
    "cache_labels",
    "exif_size",
    "label_cache_path",
    "load_label_cache",
    "verify_image_label",
]

LOGGER = logging.getLogger("yolov5_core")
CACHE_VERSION = 0.6
NUM_THREADS = min(8, max(1, (os.cpu_count() or 1) - 1))  # upstream's NUM_THREADS
_TQDM_BAR_FORMAT = "{l_bar}{bar:10}{r_bar}"
_WARN = "WARNING \u26a0\ufe0f"  # upstream's 'WARNING ⚠️' (the emoji carries a variation selector)
_ORIENTATION = next(k for k, v in ExifTags.TAGS.items() if v == "Orientation")

# Upstream formats offending values with the numpy print options its `utils.general` sets at import
# (linewidth 320, '{:11.5g}' floats). Passed explicitly rather than via np.printoptions(), which in
# numpy 1.x is process-global and would race between the verification threads.
_ARRAY_FORMAT: dict[str, Any] = {"max_line_width": 320, "formatter": {"float_kind": "{:11.5g}".format}}


def _fmt(values: np.ndarray) -> str:
    return np.array2string(values, **_ARRAY_FORMAT)


def exif_size(img: Image.Image) -> tuple[int, int]:
    """Return an image's (width, height) after its EXIF orientation (rotations of 90/270 swap them).

    Args:
        img: an opened PIL image.

    Returns:
        ``(width, height)``; the plain ``img.size`` when there is no (readable) EXIF orientation.

    Example:
        >>> exif_size(Image.new('RGB', (40, 30)))
        (40, 30)
    """
    s = img.size
    # Like upstream: any EXIF problem (no _getexif, no tag, bad EXIF) means "use the stored size".
    with contextlib.suppress(Exception):
        rotation = dict(img._getexif().items())[_ORIENTATION]  # type: ignore[attr-defined]  # JPEG's, as upstream
        if rotation in (6, 8):
            s = (s[1], s[0])
    return s


def _check(cond: Any, message: str) -> None:
    # Upstream uses `assert` (gone under `python -O`); this always checks, with the same message text.
    if not cond:
        raise ValueError(message)


def _restore_jpeg_if_corrupt(im_file: str, prefix: str) -> str:
    with open(im_file, "rb") as f:
        f.seek(-2, 2)
        if f.read() == b"\xff\xd9":
            return ""
    # Re-encoding writes a file that ends in EOI; decoding raises if the data itself is cut short.
    with Image.open(im_file) as im:
        ImageOps.exif_transpose(im).save(im_file, "JPEG", subsampling=0, quality=100)
    return f"{prefix}{_WARN} {im_file}: corrupt JPEG restored and saved"


def _read_label_file(lb_file: str) -> tuple[np.ndarray, list[np.ndarray]]:
    segments: list[np.ndarray] = []
    with open(lb_file) as f:
        rows = [x.split() for x in f.read().strip().splitlines() if len(x)]
    if any(len(x) > 6 for x in rows):  # polygon rows: cls x1 y1 x2 y2 ...
        classes = np.array([x[0] for x in rows], dtype=np.float32)
        segments = [np.array(x[1:], dtype=np.float32).reshape(-1, 2) for x in rows]
        rows = np.concatenate((classes.reshape(-1, 1), segments2boxes(segments)), 1)
    return np.array(rows, dtype=np.float32), segments


def verify_image_label(args: tuple[str, str, str]) -> tuple | list:
    """Verify one image/label pair exactly as upstream's ``verify_image_label``.

    The image must open and verify in PIL, be at least 10x10 (after EXIF rotation) and have an image format
    from :data:`IMG_FORMATS`. A JPEG whose last two bytes are not the EOI marker is re-encoded in place
    (quality 100, no chroma subsampling). Labels must have 5 columns (or be polygons, turned into boxes with
    the polygons kept as segments), be non-negative, and have coordinates <= 1; duplicate rows are removed
    (the kept rows come out in ``np.unique`` order, like upstream).

    Args:
        args: ``(im_file, lb_file, prefix)``; ``prefix`` starts every message.

    Returns:
        ``(im_file, lb, shape, segments, nm, nf, ne, nc, msg)`` with ``lb`` float32 ``(n, 5)``, ``shape``
        ``(width, height)``, and the missing/found/empty/corrupt flags (0 or 1). For a corrupt pair it is a
        list (upstream's types: tuple when kept, list when not) whose first four are ``None``, ``nc`` is 1
        and ``msg`` names the file and the reason; the found/missing flags keep the values reached before
        the failure (upstream's counting, see :class:`LabelSummary`).

    Raises:
        Nothing for bad data: every failure is reported in the returned ``msg``.

    Example:
        >>> verify_image_label(('d/images/a.jpg', 'd/labels/a.txt', ''))  # doctest: +SKIP
        ('d/images/a.jpg', array([[0, 0.5, 0.5, 0.2, 0.3]], dtype=float32), (480, 320), [], 0, 1, 0, 0, '')
    """
    im_file, lb_file, prefix = args
    nm, nf, ne, nc, msg = 0, 0, 0, 0, ""
    segments: list[np.ndarray] = []
    try:
        im = Image.open(im_file)
        try:
            im.verify()
            shape = exif_size(im)
            _check((shape[0] > 9) & (shape[1] > 9), f"image size {shape} <10 pixels")
            fmt = (im.format or "").lower()  # PIL names the format of every file it opens
            _check(fmt in IMG_FORMATS, f"invalid image format {im.format}")
        finally:
            im.close()
        if fmt in ("jpg", "jpeg"):
            msg = _restore_jpeg_if_corrupt(im_file, prefix)

        if os.path.isfile(lb_file):
            nf = 1
            lb, segments = _read_label_file(lb_file)
            nl = len(lb)
            if nl:
                _check(lb.shape[1] == 5, f"labels require 5 columns, {lb.shape[1]} columns detected")
                _check((lb >= 0).all(), f"negative label values {_fmt(lb[lb < 0])}")
                coords = lb[:, 1:]
                _check((coords <= 1).all(), f"non-normalized or out of bounds coordinates {_fmt(coords[coords > 1])}")
                _, i = np.unique(lb, axis=0, return_index=True)
                if len(i) < nl:
                    lb = lb[i]
                    if segments:
                        segments = [segments[x] for x in i]
                    # Replaces a 'corrupt JPEG restored' message, as upstream does.
                    msg = f"{prefix}{_WARN} {im_file}: {nl - len(i)} duplicate labels removed"
            else:
                ne = 1
                lb = np.zeros((0, 5), dtype=np.float32)
        else:
            nm = 1
            lb = np.zeros((0, 5), dtype=np.float32)
        return im_file, lb, shape, segments, nm, nf, ne, nc, msg
    except Exception as e:
        nc = 1
        msg = f"{prefix}{_WARN} {im_file}: ignoring corrupt image/label: {e}"
        return [None, None, None, None, nm, nf, ne, nc, msg]


def label_cache_path(path: str | os.PathLike | list, label_files: Sequence[str]) -> Path:
    """Where upstream keeps the label cache for a source.

    Args:
        path: the source given to :func:`~yolov5_core.list_image_files`. For a list, upstream looks at its
            last entry (a leftover loop variable): a list file there gives ``<list>.cache``.
        label_files: the label paths; otherwise the cache is ``<folder of the first label>.cache``.

    Returns:
        The cache path, e.g. ``labels/train.cache``.

    Raises:
        ValueError: ``label_files`` is empty (there is no folder to name the cache after).

    Example:
        >>> label_cache_path('/d/images/train', ['/d/labels/train/a.txt'])
        PosixPath('/d/labels/train.cache')
    """
    p = Path(path[-1] if isinstance(path, list) else path)
    if p.is_file():
        return p.with_suffix(".cache")
    if not label_files:
        raise ValueError(f"label_cache_path: expected at least one label file for {path!r}, got none")
    return Path(label_files[0]).parent.with_suffix(".cache")


def cache_labels(
    im_files: Sequence[str],
    label_files: Sequence[str],
    path: str | os.PathLike = Path("./labels.cache"),
    prefix: str = "",
    num_threads: int = NUM_THREADS,
) -> dict:
    """Verify every image/label pair and write upstream's label cache (like ``LoadImagesAndLabels.cache_labels``).

    Pairs are verified with :func:`verify_image_label` through ``ThreadPool(num_threads).imap`` (``imap``
    keeps input order, as upstream's pool does, so entries and messages come out in ``im_files`` order).
    Upstream uses a process pool; threads give the same results without pickling every label array.

    Args:
        im_files: image paths.
        label_files: label paths, one per image (see :func:`~yolov5_core.img2label_paths`).
        path: the cache file to write (``np.save`` of the dict, then renamed to drop numpy's ``.npy``).
        prefix: starts every message.
        num_threads: worker threads; 0 verifies in this thread (upstream's ``workers=0`` path).

    Returns:
        ``{im_file: [lb, shape, segments], ..., 'hash': str, 'results': (nf, nm, ne, nc, n), 'msgs': [str],
        'version': 0.6}``; corrupt pairs have no entry. The hash is taken after verification, so JPEGs
        restored on the way are hashed with their new size (as upstream).

    Raises:
        ValueError: ``im_files`` and ``label_files`` differ in length, or ``num_threads`` is negative.
            An unwritable cache folder is only logged, as upstream does.

    Example:
        >>> ims = list_image_files('d/images/train')  # doctest: +SKIP
        >>> cache = cache_labels(ims, img2label_paths(ims), Path('d/labels/train.cache'))  # doctest: +SKIP
        >>> cache['results']  # doctest: +SKIP
        (14, 1, 1, 0, 16)
    """
    im_files, label_files = list(im_files), list(label_files)
    if len(im_files) != len(label_files):
        raise ValueError(
            f"cache_labels: expected one label file per image, got {len(im_files)} images and "
            f"{len(label_files)} label files"
        )
    if num_threads < 0:
        raise ValueError(f"cache_labels: expected num_threads >= 0, got {num_threads}")
    path = Path(path)
    x: dict[str, Any] = {}
    nm, nf, ne, nc, msgs = 0, 0, 0, 0, []
    desc = f"{prefix}Scanning {path.parent / path.stem}..."
    jobs = zip(im_files, label_files, repeat(prefix))
    results: Iterator[Any]
    with contextlib.ExitStack() as stack:
        if num_threads:
            pool = stack.enter_context(ThreadPool(num_threads))
            results = pool.imap(verify_image_label, jobs)
        else:
            results = map(verify_image_label, jobs)
        pbar = stack.enter_context(tqdm(results, desc=desc, total=len(im_files), bar_format=_TQDM_BAR_FORMAT))
        for im_file, lb, shape, segments, nm_f, nf_f, ne_f, nc_f, msg in pbar:
            nm += nm_f
            nf += nf_f
            ne += ne_f
            nc += nc_f
            if im_file:
                x[im_file] = [lb, shape, segments]
            if msg:
                msgs.append(msg)
            pbar.desc = f"{desc} {nf} images, {nm + ne} backgrounds, {nc} corrupt"
    if msgs:
        LOGGER.info("\n".join(msgs))
    if nf == 0:
        LOGGER.warning(f"{prefix}{_WARN} No labels found in {path}. {HELP_URL}")
    x["hash"] = get_hash(label_files + im_files)
    x["results"] = nf, nm, ne, nc, len(im_files)
    x["msgs"] = msgs
    x["version"] = CACHE_VERSION
    try:
        np.save(path, x)  # type: ignore[arg-type]  # the dict, pickled in a 0-d array: upstream's cache format
        path.with_suffix(".cache.npy").rename(path)
        LOGGER.info(f"{prefix}New cache created: {path}")
    except Exception as e:  # a read-only dataset still trains, only without a cache (upstream behaviour)
        LOGGER.warning(f"{prefix}{_WARN} Cache directory {path.parent} is not writeable: {e}")
    return x


_CACHE_KEYS = ("hash", "results", "msgs", "version")


def _cache_problem(cache_path: Path, im_files: list[str], label_files: list[str]) -> tuple[dict | None, str]:
    try:
        cache = np.load(cache_path, allow_pickle=True).item()
    except Exception as e:
        return None, f"cannot read {cache_path}: {e}"
    if not isinstance(cache, dict):
        return None, f"{cache_path} holds a {type(cache).__name__}, expected a dict"
    missing = [k for k in _CACHE_KEYS if k not in cache]
    if missing:
        return None, f"{cache_path} lacks the keys {missing}"
    if cache["version"] != CACHE_VERSION:
        return None, f"{cache_path} has version {cache['version']!r}, expected {CACHE_VERSION}"
    if cache["hash"] != get_hash(label_files + im_files):
        return None, f"{cache_path} was made for other files (hash mismatch)"
    return cache, ""


def load_label_cache(
    cache_path: str | os.PathLike,
    im_files: Sequence[str],
    label_files: Sequence[str] | None = None,
    prefix: str = "",
    num_threads: int = NUM_THREADS,
) -> tuple[dict, bool]:
    """Load upstream's label cache if it is current, else rebuild it (``LoadImagesAndLabels.__init__``'s check).

    The cache is current when it loads, is version 0.6 and its hash matches ``get_hash(label_files +
    im_files)``. Otherwise :func:`cache_labels` rebuilds (and rewrites) it; the reason is logged at debug level.
    The file is read with ``allow_pickle=True`` (the format is a pickled dict): only load caches you trust.

    Args:
        cache_path: the ``*.cache`` file (see :func:`label_cache_path`).
        im_files: image paths.
        label_files: label paths; default ``img2label_paths(im_files)``.
        prefix: starts every message.
        num_threads: passed to :func:`cache_labels` when rebuilding.

    Returns:
        ``(cache, exists)``: the cache dict (format of :func:`cache_labels`) and whether it came from disk.

    Raises:
        ValueError: as :func:`cache_labels`, when rebuilding.

    Example:
        >>> cache, exists = load_label_cache('d/labels/train.cache', ims)  # doctest: +SKIP
        >>> LabelSummary.from_cache(cache).total  # doctest: +SKIP
        16
    """
    im_files = list(im_files)
    label_files = img2label_paths(im_files) if label_files is None else list(label_files)
    cache_path = Path(cache_path)
    cache, problem = _cache_problem(cache_path, im_files, label_files)
    if cache is None:
        LOGGER.debug(f"{prefix}rebuilding label cache: {problem}")
        return cache_labels(im_files, label_files, cache_path, prefix, num_threads), False
    nf, nm, ne, nc, n = cache["results"]
    tqdm(
        None,
        desc=f"{prefix}Scanning {cache_path}... {nf} images, {nm + ne} backgrounds, {nc} corrupt",
        total=n,
        initial=n,
        bar_format=_TQDM_BAR_FORMAT,
    ).close()
    if cache["msgs"]:
        LOGGER.info("\n".join(cache["msgs"]))
    return cache, True


@dataclasses.dataclass(frozen=True)
class LabelSummary:
    """Per-image outcome of a label scan: every image is in exactly one of found/missing/empty/corrupt.

    Upstream's ``results`` tuple ``(nf, nm, ne, nc, n)`` does not partition the images: ``nf`` counts label
    files found, so it includes empty label files and label files that turned out corrupt (those are also in
    ``nc``). Here ``found`` = images kept with at least one label, ``missing``/``empty`` = kept backgrounds,
    ``corrupt`` = images dropped, and ``label_files_found`` keeps upstream's ``nf``.

    Raises:
        ValueError: (on construction) a count is negative or found + missing + empty + corrupt != total.

    Example:
        >>> LabelSummary(found=13, missing=1, empty=1, corrupt=1, total=16, label_files_found=15)
        LabelSummary(found=13, missing=1, empty=1, corrupt=1, total=16, label_files_found=15)
    """

    found: int
    missing: int
    empty: int
    corrupt: int
    total: int
    label_files_found: int

    def __post_init__(self) -> None:
        counts = dataclasses.asdict(self)
        negative = {k: v for k, v in counts.items() if v < 0}
        if negative:
            raise ValueError(f"LabelSummary: expected non-negative counts, got {negative}")
        parts = self.found + self.missing + self.empty + self.corrupt
        if parts != self.total:
            raise ValueError(
                f"LabelSummary: found {self.found} + missing {self.missing} + empty {self.empty} + corrupt "
                f"{self.corrupt} = {parts}, expected total {self.total}"
            )
        corrupt_labels = self.label_files_found - self.found - self.empty
        if not 0 <= corrupt_labels <= self.corrupt:
            raise ValueError(
                f"LabelSummary: label files found {self.label_files_found} - found {self.found} - empty "
                f"{self.empty} = {corrupt_labels} corrupt label files, expected between 0 and corrupt "
                f"{self.corrupt}"
            )

    @classmethod
    def from_cache(cls, cache: Mapping) -> LabelSummary:
        """Summarise a label cache and check its ``results`` against its per-image entries.

        Args:
            cache: a dict from :func:`cache_labels` / :func:`load_label_cache` (or upstream), still holding
                ``'results'``.

        Returns:
            The summary.

        Raises:
            KeyError: ``cache`` has no ``'results'``.
            ValueError: the counts do not add up, or disagree with the entries (kept images, images with
                labels).
        """
        nf, nm, ne, nc, n = (int(v) for v in cache["results"])
        entries = [v for k, v in cache.items() if k not in _CACHE_KEYS]
        with_labels = sum(len(v[0]) > 0 for v in entries)
        summary = cls(found=n - nm - ne - nc, missing=nm, empty=ne, corrupt=nc, total=n, label_files_found=nf)
        if len(entries) != n - nc or with_labels != summary.found:
            raise ValueError(
                f"LabelSummary: cache results {(nf, nm, ne, nc, n)} expect {n - nc} kept images, "
                f"{summary.found} with labels; the cache holds {len(entries)} images, {with_labels} with labels "
                "(an image listed twice in the sources is counted twice but cached once)"
            )
        return summary
