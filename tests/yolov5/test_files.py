"""Discovery, label paths and the dataset hash match upstream YOLOv5 v7.0 (yolov5==7.0.14)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yolov5_core import IMG_FORMATS, get_hash, img2label_paths, list_image_files


def _upstream_files(upstream, source) -> list[str]:
    """Upstream's discovery, observed through LoadImagesAndLabels (its only entry point for it)."""
    ds = upstream.dataloaders.LoadImagesAndLabels(source, img_size=320, augment=False, workers=0)
    return ds.im_files


def _upstream_error(upstream, source, prefix: str) -> str:
    with pytest.raises(Exception) as info:
        upstream.dataloaders.LoadImagesAndLabels(source, img_size=320, augment=False, workers=0, prefix=prefix)
    return str(info.value)


def test_img_formats_are_upstreams(upstream):
    assert IMG_FORMATS == upstream.dataloaders.IMG_FORMATS


def test_directory_discovery_matches_upstream(upstream, synthetic_dataset, tmp_path):
    work = synthetic_dataset.copy_to(tmp_path / "ds")  # upstream writes its label cache next to the labels
    ours = list_image_files(str(work.images))
    assert ours == _upstream_files(upstream, str(work.images))
    assert ours == sorted(str(p) for p in work.image_files)


def test_recursive_discovery_matches_upstream(upstream, faulty_dataset, tmp_path):
    # root/images holds train/ and the empty folder: recursion finds train's images, the empty one adds none.
    work = faulty_dataset.copy_to(tmp_path / "ds")
    (work.images / "nested").mkdir()
    extra = str(work.images / "nested" / "extra.PNG")
    Path(extra).write_bytes(b"")  # suffix match is case-insensitive; the empty file is a corrupt image
    (work.images / "notes.md").write_text("not an image")
    ours = list_image_files(str(work.root / "images"))
    assert ours == sorted([str(p) for p in work.image_files] + [extra])
    # Upstream only exposes discovery after dropping corrupt pairs: ours minus exactly those must be its list.
    corrupt = {str(f.image) for f in work.manifest if f.outcome == "corrupt"} | {extra}
    assert _upstream_files(upstream, str(work.root / "images")) == [p for p in ours if p not in corrupt]


def test_list_file_discovery_matches_upstream(upstream, synthetic_dataset, tmp_path):
    work = synthetic_dataset.copy_to(tmp_path / "ds")
    files = [str(p) for p in work.image_files]
    lines = [f"./{Path(files[0]).relative_to(work.root)}"]  # relative to the list file's folder
    lines += files[1:5]  # absolute
    lines += ["./labels/train/scene_000.txt"]  # not an image: filtered out
    list_file = work.root / "train.txt"
    list_file.write_text("\n".join(lines) + "\n\n")
    ours = list_image_files(str(list_file))
    assert ours == sorted(files[:5])
    assert ours == _upstream_files(upstream, str(list_file))


def test_list_of_sources_matches_upstream(upstream, synthetic_dataset, tmp_path):
    work = synthetic_dataset.copy_to(tmp_path / "ds")
    files = [str(p) for p in work.image_files]
    list_file = work.root / "val.txt"
    list_file.write_text(f"{files[0]}\n{files[1]}\n")
    sources = [str(work.images), str(list_file)]
    ours = list_image_files(sources)
    assert ours == sorted(files + files[:2])  # discovery keeps duplicates, as upstream's does
    # Upstream's final list is its cache's keys, where the duplicates collapse.
    assert list(dict.fromkeys(ours)) == _upstream_files(upstream, sources)


@pytest.mark.parametrize("case", ["missing-path", "empty-folder", "empty-list-file"])
def test_discovery_errors_match_upstream_and_name_the_source(upstream, faulty_dataset, tmp_path, case):
    work = faulty_dataset.copy_to(tmp_path / "ds")
    if case == "missing-path":
        source = str(work.root / "images" / "nope")
    elif case == "empty-folder":
        (fault,) = [f for f in work.manifest if f.kind == "empty-image-folder"]
        source = str(fault.image)
    else:
        source = str(work.root / "empty.txt")
        Path(source).write_text("")
    with pytest.raises(FileNotFoundError) as info:
        list_image_files(source, prefix="train: ")
    message = str(info.value)
    assert source in message
    assert message.startswith(f"train: Error loading data from {source}: train: ")
    assert message == _upstream_error(upstream, source, "train: ")


def test_img2label_paths_examples():
    sep = os.sep
    paths = [f"{sep}d{sep}images{sep}train{sep}a.b.jpg", f"{sep}images{sep}x{sep}images{sep}c.png", "rel.jpg"]
    assert img2label_paths(paths) == [
        f"{sep}d{sep}labels{sep}train{sep}a.b.txt",
        f"{sep}images{sep}x{sep}labels{sep}c.txt",  # only the last /images/ changes
        "rel.txt",
    ]


_segment = st.sampled_from(["images", "labels", "a.b", "x", "images.jpg", "im ages", "ÿ", "."])


@settings(max_examples=200, deadline=None)
@given(
    parts=st.lists(st.lists(_segment, min_size=1, max_size=5), min_size=1, max_size=4),
    suffix=st.sampled_from([".jpg", ".JPEG", ".png", "", ".tar.gz"]),
    absolute=st.booleans(),
)
def test_img2label_paths_matches_upstream(upstream, parts, suffix, absolute):
    paths = [(os.sep if absolute else "") + os.sep.join(p) + suffix for p in parts]
    assert img2label_paths(paths) == upstream.dataloaders.img2label_paths(paths)


def test_get_hash_matches_upstream(upstream, faulty_dataset):
    ims = list_image_files(str(faulty_dataset.images))
    labels = img2label_paths(ims)  # includes a label file that does not exist
    paths = labels + ims
    assert get_hash(paths) == upstream.dataloaders.get_hash(paths)
    assert get_hash(paths[:-1]) != get_hash(paths)
    assert get_hash([str(faulty_dataset.images)]) == upstream.dataloaders.get_hash([str(faulty_dataset.images)])
    assert get_hash([]) == upstream.dataloaders.get_hash([])
