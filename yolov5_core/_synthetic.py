"""A small, deterministic, YOLO-format dataset drawn on the fly (no download), optionally with faulty files.

Scenes are low-saturation textured gradients with strongly saturated shapes of four classes (filled rectangle,
filled ellipse, filled triangle, outlined rectangle), placed without overlap so every label is the exact
bounding box of its shape's pixels. Each image draws only from ``np.random.default_rng((seed, index))``: no
global RNG is touched, and image ``i`` is the same whatever ``n_images`` is.
"""

from __future__ import annotations

import dataclasses
import io
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import yaml
from PIL import Image

from yolov5_core._labels import LabelSummary

__all__ = ["CLASS_NAMES", "Fault", "SyntheticDataset", "make_synthetic_dataset"]

CLASS_NAMES = ("rectangle", "ellipse", "triangle", "frame")
_JPEG_QUALITY = 90
_MARGIN = 6  # free pixels kept between objects, so JPEG colour bleed never reaches a neighbour's box
_FAULT_SEED_BASE = 1_000_000  # fault scenes use rng keys (seed, base + k), disjoint from clean image indices

# Outcome → LabelSummary bucket. 'restored' and 'duplicates-removed' images are kept with their labels.
_BUCKET = {
    "kept": "found",
    "restored": "found",
    "duplicates-removed": "found",
    "background-missing": "missing",
    "background-empty": "empty",
    "corrupt": "corrupt",
}


@dataclasses.dataclass(frozen=True)
class Fault:
    """One deliberately faulty (or unusual) file and what upstream YOLOv5 does with it.

    Attributes:
        kind: e.g. ``'jpeg-trailing-bytes'``, ``'label-4-columns'``, ``'empty-image-folder'``.
        image: the image file (for ``'empty-image-folder'``: the folder).
        label: the label file (it may deliberately not exist), or ``None`` for the folder fault.
        outcome: ``'kept'``, ``'restored'``, ``'duplicates-removed'``, ``'background-missing'``,
            ``'background-empty'``, ``'corrupt'`` (the pair is dropped) or ``'no-images'`` (discovery fails).
        message: text the scan/discovery message must contain; ``''`` when no message is expected.
    """

    kind: str
    image: Path
    label: Path | None
    outcome: str
    message: str


@dataclasses.dataclass(frozen=True)
class SyntheticDataset:
    """What :func:`make_synthetic_dataset` wrote.

    Attributes:
        root: the dataset root (``data.yaml``'s ``path``).
        images: ``root/images/train``; labels: ``root/labels/train``; data_yaml: ``root/data.yaml``.
        image_files: every image written under ``images`` (clean and faulty), sorted.
        n_clean: clean images (``n_images``), of which ``n_backgrounds`` have no objects.
        n_objects: label rows written for the clean images.
        class_names: class index → name.
        manifest: the faults written (empty unless ``faults=True``).
    """

    root: Path
    images: Path
    labels: Path
    data_yaml: Path
    image_files: tuple[Path, ...]
    n_clean: int
    n_backgrounds: int
    n_objects: int
    class_names: tuple[str, ...]
    manifest: tuple[Fault, ...]

    def copy_to(self, dest: str | os.PathLike) -> SyntheticDataset:
        """Copy the whole dataset to ``dest`` (replacing what is there), e.g. before a scan rewrites files.

        Args:
            dest: the new root; removed first if it exists.

        Returns:
            The same description with every path moved under ``dest`` (``data.yaml``'s ``path`` too).

        Example:
            >>> work = ds.copy_to(tmp_path / 'work')  # doctest: +SKIP
        """
        dest = Path(dest)
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(self.root, dest)

        def move(p: Path) -> Path:
            return dest / p.relative_to(self.root)

        data = yaml.safe_load(self.data_yaml.read_text())
        data["path"] = str(dest.resolve())
        (dest / self.data_yaml.relative_to(self.root)).write_text(yaml.safe_dump(data, sort_keys=False))
        return dataclasses.replace(
            self,
            root=dest,
            images=move(self.images),
            labels=move(self.labels),
            data_yaml=move(self.data_yaml),
            image_files=tuple(move(p) for p in self.image_files),
            manifest=tuple(
                dataclasses.replace(f, image=move(f.image), label=None if f.label is None else move(f.label))
                for f in self.manifest
            ),
        )

    def expected_summary(self) -> LabelSummary:
        """The scan result the files were designed to give (clean images plus each fault's outcome).

        Returns:
            The expected :class:`~yolov5_core.LabelSummary`.
        """
        n_missing = (self.n_backgrounds + 1) // 2  # backgrounds alternate: no label file, empty label file
        counts = {
            "found": self.n_clean - self.n_backgrounds,
            "missing": n_missing,
            "empty": self.n_backgrounds - n_missing,
            "corrupt": 0,
        }
        label_files_found = self.n_clean - n_missing
        for fault in self.manifest:
            if fault.outcome in _BUCKET:
                counts[_BUCKET[fault.outcome]] += 1
                # Upstream counts a label file as found once the image verified, before it checks the content.
                label_read = _BUCKET[fault.outcome] in ("found", "empty") or fault.kind.startswith("label-")
                label_files_found += label_read and fault.outcome != "background-missing"
        return LabelSummary(total=sum(counts.values()), label_files_found=label_files_found, **counts)


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    lum = rng.uniform(80, 170) + rng.uniform(-35, 35) * xx / w + rng.uniform(-35, 35) * yy / h
    for _ in range(3):  # a few oriented waves give the scene texture
        fx, fy = rng.uniform(-6, 6, 2)
        lum += rng.uniform(4, 12) * np.sin(2 * np.pi * (fx * xx / w + fy * yy / h) + rng.uniform(0, 2 * np.pi))
    blotches = rng.normal(0, 8, (h // 16 + 2, w // 16 + 2)).astype(np.float32)
    lum += cv2.resize(blotches, (w, h), interpolation=cv2.INTER_CUBIC)
    lum += rng.normal(0, 3, (h, w)).astype(np.float32)
    lum = np.clip(lum, 55, 215)
    tint = rng.uniform(-8, 8, 3).astype(np.float32)  # small, so the background stays unsaturated
    return np.clip(np.rint(lum[..., None] + tint), 0, 255).astype(np.uint8)


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    hsv = np.array([[[rng.integers(0, 180), 255, rng.integers(190, 256)]]], dtype=np.uint8)
    b, g, r = (int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0])
    return b, g, r


def _draw_mask(rng: np.random.Generator, cls: int, h: int, w: int, x0: int, y0: int, bw: int, bh: int) -> np.ndarray:
    mask = np.zeros((h, w), np.uint8)
    x1, y1 = x0 + bw - 1, y0 + bh - 1
    if cls == 0:
        cv2.rectangle(mask, (x0, y0), (x1, y1), (1,), thickness=-1)
    elif cls == 1:
        centre, axes = (x0 + bw // 2, y0 + bh // 2), ((bw - 1) // 2, (bh - 1) // 2)
        cv2.ellipse(mask, centre, axes, 0, 0, 360, (1,), thickness=-1)
    elif cls == 2:  # base along one side, apex anywhere on the opposite side
        apex = int(rng.integers(x0, x1 + 1))
        pts = [(x0, y1), (x1, y1), (apex, y0)] if rng.random() < 0.5 else [(x0, y0), (x1, y0), (apex, y1)]
        cv2.fillPoly(mask, [np.array(pts, np.int32)], (1,))
    else:
        cv2.rectangle(mask, (x0, y0), (x1, y1), (1,), thickness=int(rng.integers(2, 5)))
    return mask.astype(bool)


def _render(rng: np.random.Generator, h: int, w: int, n_objects: int) -> tuple[np.ndarray, list[tuple]]:
    """Draw a scene; return the BGR image and (cls, x_centre, y_centre, width, height) normalised labels."""
    img = _background(rng, h, w)
    placed: list[tuple[int, int, int, int]] = []
    labels = []
    for _ in range(n_objects):
        cls = int(rng.integers(0, len(CLASS_NAMES)))
        for _attempt in range(30):  # rejection sampling for a free spot; a crowded scene just gets fewer objects
            bw = int(rng.integers(max(12, w // 14), w // 3))
            bh = int(rng.integers(max(12, h // 14), h // 3))
            x0, y0 = int(rng.integers(1, w - bw)), int(rng.integers(1, h - bh))
            if all(
                x0 + bw + _MARGIN <= px or px + pw + _MARGIN <= x0 or y0 + bh + _MARGIN <= py or py + ph + _MARGIN <= y0
                for px, py, pw, ph in placed
            ):
                break
        else:
            continue
        placed.append((x0, y0, bw, bh))
        mask = _draw_mask(rng, cls, h, w, x0, y0, bw, bh)
        img[mask] = _colour(rng)
        ys, xs = np.nonzero(mask)
        # The label is the box of the drawn pixels: pixel edges x_min .. x_max + 1.
        bx0, bx1, by0, by1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
        labels.append((cls, (bx0 + bx1) / 2 / w, (by0 + by1) / 2 / h, (bx1 - bx0) / w, (by1 - by0) / h))
    return img, labels


def _scene_size(rng: np.random.Generator, index: int, img_size: tuple[int, int]) -> tuple[int, int]:
    long_side = int(rng.integers(img_size[0], img_size[1] + 1))
    orientation = index % 3  # landscape, portrait, square in turn
    if orientation == 2:
        return long_side, long_side
    short_side = int(round(long_side / rng.uniform(1.2, 1.8)))
    return (short_side, long_side) if orientation == 0 else (long_side, short_side)


def _jpeg(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY])
    if not ok:
        raise RuntimeError(f"cv2.imencode failed for an image of shape {img.shape}")
    return buf.tobytes()


def _label_text(rows) -> str:
    return "".join(f"{int(c)} {x:.6f} {y:.6f} {bw:.6f} {bh:.6f}\n" for c, x, y, bw, bh in rows)


def _scene(seed: int, key: int, index: int, img_size: tuple[int, int], objects: bool) -> tuple[bytes, list]:
    rng = np.random.default_rng((seed, key))
    h, w = _scene_size(rng, index, img_size)
    img, labels = _render(rng, h, w, int(rng.integers(2, 7)) if objects else 0)
    return _jpeg(img), labels


def _write(path: Path, data: bytes | str) -> None:
    path.write_bytes(data) if isinstance(data, bytes) else path.write_text(data)


def _polygon_rows(labels: list) -> str:
    # Each box as a 4-corner polygon: upstream turns polygons back into the same box and keeps the segments.
    lines = []
    for c, x, y, bw, bh in labels:
        x0, y0, x1, y1 = x - bw / 2, y - bh / 2, x + bw / 2, y + bh / 2
        lines.append(f"{c} {x0:.6f} {y0:.6f} {x1:.6f} {y0:.6f} {x1:.6f} {y1:.6f} {x0:.6f} {y1:.6f}\n")
    return "".join(lines)


def _with_exif_rotation(jpeg: bytes) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW to display
    out = io.BytesIO()
    with Image.open(io.BytesIO(jpeg)) as im:
        im.save(out, "JPEG", quality=_JPEG_QUALITY, exif=exif)
    return out.getvalue()


def _write_faults(images: Path, labels: Path, root: Path, seed: int, img_size: tuple[int, int]) -> list[Fault]:
    faults: list[Fault] = []

    def add(k: int, kind: str, outcome: str, message, image_bytes, label_text) -> None:
        # message, image_bytes and label_text are built from the scene (its JPEG bytes, its label rows).
        stem = f"fault_{k:02d}_{kind}"
        jpeg, rows = _scene(seed, _FAULT_SEED_BASE + k, k, img_size, objects=True)
        im, lb = images / f"{stem}.jpg", labels / f"{stem}.txt"
        _write(im, image_bytes(jpeg))
        text = label_text(rows)
        if text is not None:
            _write(lb, text)
        faults.append(Fault(kind, im, lb, outcome, message(rows) if callable(message) else message))

    good = _label_text
    add(0, "jpeg-trailing-bytes", "restored", "corrupt JPEG restored and saved", lambda b: b + b"\x00" * 7, good)
    # Pillow >= 9 refuses to decode a JPEG that stops before EOI, so upstream cannot restore this one.
    add(1, "jpeg-missing-eoi", "corrupt", "image file is truncated", lambda b: b[:-2], good)
    add(2, "jpeg-truncated", "corrupt", "image file is truncated", lambda b: b[: len(b) // 2], good)
    add(3, "not-an-image", "corrupt", "cannot identify image file", lambda b: b"this is not an image\n" * 4, good)
    tiny = _jpeg(np.full((8, 8, 3), 128, np.uint8))
    add(4, "image-too-small", "corrupt", "image size (8, 8) <10 pixels", lambda b: tiny, good)
    add(
        5,
        "label-4-columns",
        "corrupt",
        "labels require 5 columns, 4 columns detected",
        lambda b: b,
        lambda rows: "".join(" ".join(line.split()[:4]) + "\n" for line in _label_text(rows).splitlines()),
    )
    add(
        6,
        "label-negative",
        "corrupt",
        "negative label values",
        lambda b: b,
        lambda rows: _label_text([(rows[0][0], -0.05, *rows[0][2:])] + rows[1:]),
    )
    add(
        7,
        "label-out-of-bounds",
        "corrupt",
        "non-normalized or out of bounds coordinates",
        lambda b: b,
        lambda rows: _label_text([(*rows[0][:3], 1.25, rows[0][4])] + rows[1:]),
    )
    # Rows in descending order, so upstream's np.unique de-duplication visibly reorders them.
    add(
        8,
        "label-duplicates",
        "duplicates-removed",
        lambda rows: f"{len(rows[:2])} duplicate labels removed",
        lambda b: b,
        lambda rows: _label_text(sorted(rows, reverse=True) + sorted(rows, reverse=True)[:2]),
    )
    add(9, "exif-rotated", "kept", "", _with_exif_rotation, good)  # stored landscape (9 % 3 == 0), EXIF: rotate 90
    add(10, "label-missing", "background-missing", "", lambda b: b, lambda rows: None)
    add(11, "label-polygons", "kept", "", lambda b: b, _polygon_rows)

    empty = root / "images" / "empty"
    empty.mkdir(parents=True)
    faults.append(Fault("empty-image-folder", empty, None, "no-images", "No images found"))
    return faults


def _check_args(root: Path, n_images: int, n_backgrounds: int, img_size) -> tuple[int, int]:
    if not isinstance(n_images, int) or n_images < 1:
        raise ValueError(f"make_synthetic_dataset: expected n_images >= 1, got {n_images!r}")
    if not isinstance(n_backgrounds, int) or not 0 <= n_backgrounds <= n_images:
        raise ValueError(
            f"make_synthetic_dataset: expected 0 <= n_backgrounds <= n_images ({n_images}), got {n_backgrounds!r}"
        )
    try:
        lo, hi = (int(v) for v in img_size)
    except (TypeError, ValueError) as e:
        raise ValueError(f"make_synthetic_dataset: expected img_size=(min, max) long sides, got {img_size!r}") from e
    if not 64 <= lo <= hi:
        raise ValueError(f"make_synthetic_dataset: expected 64 <= img_size[0] <= img_size[1], got {img_size!r}")
    for sub in ("images", "labels"):
        if (root / sub).exists() and any((root / sub).iterdir()):
            raise FileExistsError(f"make_synthetic_dataset: expected no existing {root / sub}, found one with files")
    return lo, hi


def make_synthetic_dataset(
    root: str | os.PathLike,
    *,
    n_images: int = 16,
    seed: int = 0,
    img_size: tuple[int, int] = (320, 480),
    faults: bool = False,
    n_backgrounds: int = 2,
) -> SyntheticDataset:
    """Write a small YOLO-format detection dataset, deterministically (same bytes for the same arguments).

    Writes ``root/images/train/scene_XXX.jpg``, ``root/labels/train/scene_XXX.txt`` and ``root/data.yaml``.
    Image sizes cycle landscape, portrait, square, with the long side drawn from ``img_size``. Each object
    image holds 2-6 non-overlapping shapes; the last ``n_backgrounds`` images have none, alternately with
    no label file and with an empty one. With ``faults=True`` it also writes ``fault_*`` pairs (see
    :class:`Fault` and the returned ``manifest``) and an empty ``root/images/empty`` folder.

    Args:
        root: dataset folder; created if needed; its ``images``/``labels`` must not already hold files.
        n_images: clean images, backgrounds included.
        seed: selects the scenes; image ``i`` uses ``np.random.default_rng((seed, i))`` only.
        img_size: ``(min, max)`` long side in pixels.
        faults: also write the faulty files.
        n_backgrounds: clean images without objects (<= ``n_images``).

    Returns:
        A :class:`SyntheticDataset` describing the files.

    Raises:
        ValueError: an argument is out of range (the message names it and its value).
        FileExistsError: ``root/images`` or ``root/labels`` already holds files.

    Example:
        >>> ds = make_synthetic_dataset(tmp_path / 'toy', n_images=4)  # doctest: +SKIP
        >>> len(ds.image_files), ds.expected_summary().found  # doctest: +SKIP
        (4, 2)
    """
    root = Path(root)
    size = _check_args(root, n_images, n_backgrounds, img_size)
    images, labels = root / "images" / "train", root / "labels" / "train"
    images.mkdir(parents=True, exist_ok=True)
    labels.mkdir(parents=True, exist_ok=True)

    n_objects = 0
    for i in range(n_images):
        background = i >= n_images - n_backgrounds
        jpeg, rows = _scene(seed, i, i, size, objects=not background)
        _write(images / f"scene_{i:03d}.jpg", jpeg)
        n_objects += len(rows)
        if not (background and (i - (n_images - n_backgrounds)) % 2 == 0):  # every other background: no file
            _write(labels / f"scene_{i:03d}.txt", _label_text(rows))

    manifest = _write_faults(images, labels, root, seed, size) if faults else []
    data_yaml = root / "data.yaml"
    data = {
        "path": str(root.resolve()),
        "train": "images/train",
        "val": "images/train",
        "nc": len(CLASS_NAMES),
        "names": dict(enumerate(CLASS_NAMES)),
    }
    data_yaml.write_text(yaml.safe_dump(data, sort_keys=False))
    return SyntheticDataset(
        root=root,
        images=images,
        labels=labels,
        data_yaml=data_yaml,
        image_files=tuple(sorted(images.glob("*.jpg"))),
        n_clean=n_images,
        n_backgrounds=n_backgrounds,
        n_objects=n_objects,
        class_names=CLASS_NAMES,
        manifest=tuple(manifest),
    )
