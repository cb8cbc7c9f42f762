"""The synthetic dataset is deterministic, realistic enough, and its labels are exact on the written JPEGs."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from yolov5_core import CLASS_NAMES, make_synthetic_dataset

# JPEG (4:2:0 chroma, quality 90) may bleed a shape's colour about one pixel past its edge, and soften a
# one-pixel tip; measured worst case on the default dataset: 0.5 px outside, 1 px short. Allow 2 px.
_TOL = 2
_SATURATED = 150  # shapes are drawn at HSV saturation 255, backgrounds stay far below (measured max 53)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _labels(path: Path) -> np.ndarray:
    rows = [line.split() for line in path.read_text().splitlines()] if path.exists() else []
    return np.array(rows, dtype=np.float64).reshape(-1, 5)


def test_same_bytes_for_the_same_seed(tmp_path):
    a = make_synthetic_dataset(tmp_path / "a", seed=3, faults=True)
    b = make_synthetic_dataset(tmp_path / "b", seed=3, faults=True)
    fa, fb = _files(a.root), _files(b.root)
    assert fa.keys() == fb.keys() and len(fa) > 40
    # data.yaml names its own root; everything else must be byte-identical.
    assert {k: v for k, v in fa.items() if k != "data.yaml"} == {k: v for k, v in fb.items() if k != "data.yaml"}
    c = make_synthetic_dataset(tmp_path / "c", seed=4)
    assert (a.images / "scene_000.jpg").read_bytes() != (c.images / "scene_000.jpg").read_bytes()


def test_image_i_does_not_depend_on_n_images(tmp_path, synthetic_dataset):
    small = make_synthetic_dataset(tmp_path / "small", n_images=5, n_backgrounds=0)
    for i in range(5):
        name = f"scene_{i:03d}"
        assert (small.images / f"{name}.jpg").read_bytes() == (synthetic_dataset.images / f"{name}.jpg").read_bytes()
        assert (small.labels / f"{name}.txt").read_text() == (synthetic_dataset.labels / f"{name}.txt").read_text()


def test_layout_counts_and_data_yaml(synthetic_dataset):
    ds = synthetic_dataset
    assert [p.name for p in ds.image_files] == [f"scene_{i:03d}.jpg" for i in range(16)]
    assert ds.manifest == ()
    labels = sorted(p.name for p in ds.labels.iterdir())
    assert labels == [f"scene_{i:03d}.txt" for i in range(16) if i != 14]  # background 14: no label file
    assert (ds.labels / "scene_015.txt").read_text() == ""  # background 15: empty label file
    assert sum(len(_labels(ds.labels / f"{p.stem}.txt")) for p in ds.image_files) == ds.n_objects > 28
    data = yaml.safe_load(ds.data_yaml.read_text())
    assert data == {
        "path": str(ds.root.resolve()),
        "train": "images/train",
        "val": "images/train",
        "nc": 4,
        "names": dict(enumerate(CLASS_NAMES)),
    }
    assert (ds.root / data["train"]).is_dir()


def test_sizes_and_orientations_vary(synthetic_dataset):
    shapes = [cv2.imread(str(p)).shape for p in synthetic_dataset.image_files]
    assert all(s[2] == 3 and 320 <= max(s[:2]) <= 480 for s in shapes)
    kinds = {("square" if h == w else "portrait" if h > w else "landscape") for h, w, _ in shapes}
    assert kinds == {"square", "portrait", "landscape"}
    assert len({max(s[:2]) for s in shapes}) > 8


def test_labels_are_exact_boxes_of_the_drawn_shapes(synthetic_dataset):
    """Read back every JPEG: saturated (shape) pixels lie inside a labelled box, and each box is tight."""
    classes = set()
    for im in synthetic_dataset.image_files:
        img = cv2.imread(str(im))
        h, w = img.shape[:2]
        hsv: np.ndarray = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)
        shape_px = hsv[..., 1] > _SATURATED
        rows = _labels(synthetic_dataset.labels / f"{im.stem}.txt")
        assert ((rows[:, 1:] > 0) & (rows[:, 1:] <= 1)).all()
        classes |= set(rows[:, 0].astype(int))
        boxes = np.stack(
            [
                (rows[:, 1] - rows[:, 3] / 2) * w,
                (rows[:, 2] - rows[:, 4] / 2) * h,
                (rows[:, 1] + rows[:, 3] / 2) * w,
                (rows[:, 2] + rows[:, 4] / 2) * h,
            ],
            1,
        )
        covered = np.zeros_like(shape_px)
        for x0, y0, x1, y1 in np.rint(boxes).astype(int):
            covered[max(0, y0 - _TOL) : y1 + _TOL, max(0, x0 - _TOL) : x1 + _TOL] = True
            ys, xs = np.nonzero(shape_px[max(0, y0 - _TOL) : y1 + _TOL, max(0, x0 - _TOL) : x1 + _TOL])
            assert len(xs), f"{im.name}: nothing drawn in box {(x0, y0, x1, y1)}"
            seen = (
                xs.min() + max(0, x0 - _TOL),
                ys.min() + max(0, y0 - _TOL),
                xs.max() + 1 + max(0, x0 - _TOL),
                ys.max() + 1 + max(0, y0 - _TOL),
            )
            assert np.abs(np.subtract(seen, (x0, y0, x1, y1))).max() <= _TOL, (im.name, seen, (x0, y0, x1, y1))
        stray = shape_px & ~covered
        assert not stray.any(), f"{im.name}: {stray.sum()} shape pixels outside every labelled box"
    assert classes == set(range(len(CLASS_NAMES)))


def test_backgrounds_have_no_shapes(synthetic_dataset):
    for name in ("scene_014.jpg", "scene_015.jpg"):
        hsv: np.ndarray = cv2.cvtColor(cv2.imread(str(synthetic_dataset.images / name)), cv2.COLOR_BGR2HSV)
        assert not (hsv[..., 1] > _SATURATED).any()
        assert hsv[..., 2].std() > 5  # textured, not flat


def test_fault_manifest_describes_the_files(faulty_dataset):
    kinds = {f.kind: f for f in faulty_dataset.manifest}
    assert set(kinds) == {
        "jpeg-trailing-bytes",
        "jpeg-missing-eoi",
        "jpeg-truncated",
        "not-an-image",
        "image-too-small",
        "label-4-columns",
        "label-negative",
        "label-out-of-bounds",
        "label-duplicates",
        "exif-rotated",
        "label-missing",
        "label-polygons",
        "empty-image-folder",
    }
    assert kinds["jpeg-trailing-bytes"].image.read_bytes()[-2:] != b"\xff\xd9"
    assert kinds["jpeg-missing-eoi"].image.read_bytes()[-2:] != b"\xff\xd9"
    assert cv2.imread(str(kinds["jpeg-missing-eoi"].image)) is not None  # only the end is missing
    assert not kinds["label-missing"].label.exists()
    assert kinds["empty-image-folder"].image.is_dir() and not any(kinds["empty-image-folder"].image.iterdir())
    assert [len(line.split()) for line in kinds["label-4-columns"].label.read_text().splitlines()] == [4] * len(
        kinds["label-4-columns"].label.read_text().splitlines()
    )
    assert (_labels(kinds["label-negative"].label) < 0).any()
    assert (_labels(kinds["label-out-of-bounds"].label)[:, 1:] > 1).any()
    dup = _labels(kinds["label-duplicates"].label)
    assert len(np.unique(dup, axis=0)) == len(dup) - 2
    assert len(faulty_dataset.image_files) == 16 + 12
    assert faulty_dataset.expected_summary().total == 28


def test_copy_to_moves_every_path(faulty_dataset, tmp_path):
    work = faulty_dataset.copy_to(tmp_path / "w")
    assert _files(work.root).keys() == _files(faulty_dataset.root).keys()
    paths = [
        work.images,
        work.labels,
        work.data_yaml,
        *work.image_files,
        *(f.image for f in work.manifest),
        *(f.label for f in work.manifest if f.label),
    ]
    assert all(p.is_relative_to(work.root) for p in paths)
    assert yaml.safe_load(work.data_yaml.read_text())["path"] == str(work.root.resolve())
    again = faulty_dataset.copy_to(tmp_path / "w")  # replaces what is there
    assert again == work


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_images": 0}, "n_images >= 1, got 0"),
        ({"n_images": 2, "n_backgrounds": 3}, r"n_backgrounds <= n_images \(2\), got 3"),
        ({"img_size": (480, 320)}, r"img_size\[0\] <= img_size\[1\], got \(480, 320\)"),
        ({"img_size": 320}, r"img_size=\(min, max\)"),
    ],
)
def test_bad_arguments_are_named(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_synthetic_dataset(tmp_path / "x", **kwargs)


def test_refuses_to_mix_with_existing_files(tmp_path):
    make_synthetic_dataset(tmp_path / "x", n_images=2)
    with pytest.raises(FileExistsError, match=str(tmp_path / "x" / "images")):
        make_synthetic_dataset(tmp_path / "x", n_images=2)
