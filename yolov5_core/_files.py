"""Image discovery, image→label path mapping and the dataset hash, as upstream YOLOv5 v7.0 does them.

Mirrors ``LoadImagesAndLabels.__init__``'s file discovery, ``img2label_paths`` and ``get_hash`` from
``yolov5/utils/dataloaders.py`` so that the same sources give the same file lists, label paths and cache hash.
"""

from __future__ import annotations

import glob
import hashlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = ["HELP_URL", "IMG_FORMATS", "get_hash", "img2label_paths", "list_image_files"]

# Upstream's tuple, in upstream's order (suffixes compared lower-cased, without the dot).
IMG_FORMATS = ("bmp", "dng", "jpeg", "jpg", "mpo", "png", "tif", "tiff", "webp", "pfm")
HELP_URL = "See https://docs.ultralytics.com/yolov5/tutorials/train_custom_data"


def _read_list_file(list_file: Path) -> list[str]:
    # Upstream resolves only a leading './' against the list's folder; other entries are kept verbatim.
    parent = str(list_file.parent) + os.sep
    with open(list_file) as f:
        lines = f.read().strip().splitlines()
    return [x.replace("./", parent, 1) if x.startswith("./") else x for x in lines]


def list_image_files(path: str | os.PathLike | list, prefix: str = "") -> list[str]:
    """List the image files of a YOLOv5 source exactly as upstream ``LoadImagesAndLabels`` does.

    A source is a directory (searched recursively for ``*.*``), a text file with one image path per line
    (``./x`` is relative to the text file's folder), or a list of those. Paths are kept as strings, filtered
    by suffix (:data:`IMG_FORMATS`, case-insensitive) and sorted.

    Args:
        path: a directory, a ``*.txt`` list file, or a list of them.
        prefix: prepended to error messages (upstream's log prefix, e.g. ``'train: '``).

    Returns:
        The sorted image paths.

    Raises:
        FileNotFoundError: a source does not exist, cannot be read, or no image file was found. The message
            is upstream's: ``'{prefix}Error loading data from {path}: {reason}\\n{HELP_URL}'``.

    Example:
        >>> list_image_files('datasets/coco128/images/train2017')[:1]  # doctest: +SKIP
        ['datasets/coco128/images/train2017/000000000009.jpg']
    """
    try:
        found: list[str] = []
        for p in path if isinstance(path, list) else [path]:
            p = Path(p)
            if p.is_dir():
                found += glob.glob(str(p / "**" / "*.*"), recursive=True)
            elif p.is_file():
                found += _read_list_file(p)
            else:
                raise FileNotFoundError(f"{prefix}{p} does not exist")
        files = sorted(x.replace("/", os.sep) for x in found if x.split(".")[-1].lower() in IMG_FORMATS)
        if not files:
            raise FileNotFoundError(f"{prefix}No images found")
    except Exception as e:  # upstream wraps every discovery failure the same way, naming the source
        raise FileNotFoundError(f"{prefix}Error loading data from {path}: {e}\n{HELP_URL}") from e
    return files


def img2label_paths(img_paths: Iterable[str]) -> list[str]:
    """Map image paths to label paths: the last ``/images/`` becomes ``/labels/``, the suffix ``.txt``.

    Args:
        img_paths: image file paths (strings).

    Returns:
        One label path per image, in the same order.

    Example:
        >>> img2label_paths(['/d/images/train/a.jpg'])
        ['/d/labels/train/a.txt']
    """
    sa, sb = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    return [sb.join(x.rsplit(sa, 1)).rsplit(".", 1)[0] + ".txt" for x in img_paths]


def get_hash(paths: Sequence[str]) -> str:
    """Upstream's dataset hash: sha256 of the summed sizes of the existing paths, then of the joined paths.

    Args:
        paths: file or directory paths; missing ones add no size but still enter the joined string.

    Returns:
        The hex digest.

    Example:
        >>> len(get_hash(['/nonexistent']))
        64
    """
    size = sum(os.path.getsize(p) for p in paths if os.path.exists(p))
    h = hashlib.sha256(str(size).encode())
    h.update("".join(paths).encode())
    return h.hexdigest()
