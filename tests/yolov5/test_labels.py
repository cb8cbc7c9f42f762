"""Verification and the label cache are output-identical to upstream YOLOv5 v7.0 (yolov5==7.0.14)."""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from yolov5_core import (
    CACHE_VERSION,
    LabelSummary,
    cache_labels,
    exif_size,
    img2label_paths,
    label_cache_path,
    list_image_files,
    load_label_cache,
    verify_image_label,
)


def _same(a, b) -> bool:
    """Deep equality that also requires equal types, dtypes and shapes (bit-identical arrays)."""
    if isinstance(a, np.ndarray):
        return (
            isinstance(b, np.ndarray)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and np.array_equal(a, b, equal_nan=True)
        )
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return type(b) is dict and list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def _pairs(ds) -> list[tuple[str, str]]:
    ims = list_image_files(str(ds.images))
    return list(zip(ims, img2label_paths(ims), strict=True))


def _upstream_cache_labels(upstream, ims, labels, path, prefix, workers):
    # LoadImagesAndLabels.cache_labels only reads these four attributes of the dataset.
    this = types.SimpleNamespace(im_files=list(ims), label_files=list(labels), workers=workers, cache_version=0.6)
    return upstream.dataloaders.LoadImagesAndLabels.cache_labels(this, Path(path), prefix)


def test_same_helper_catches_differences():
    assert _same([np.zeros((0, 5), np.float32), (1, 2), ""], [np.zeros((0, 5), np.float32), (1, 2), ""])
    assert not _same(np.zeros((0, 5), np.float32), np.zeros((0, 5), np.float64))
    assert not _same([(1, 2)], [[1, 2]])
    assert not _same({"a": 1, "b": 2}, {"b": 2, "a": 1})


def test_exif_size_matches_upstream(upstream, faulty_dataset):
    sizes = []
    for f in faulty_dataset.image_files:
        try:
            im = Image.open(f)
        except OSError:
            continue  # not an image at all: exif_size is never reached for it
        with im:
            sizes.append((exif_size(im), upstream.dataloaders.exif_size(im), im.size, f.name))
    assert len(sizes) == len(faulty_dataset.image_files) - 1
    assert all(ours == theirs for ours, theirs, _, _ in sizes)
    (rotated,) = [s for s in sizes if "exif-rotated" in s[3]]
    assert rotated[0] == rotated[2][::-1] and rotated[2][0] > rotated[2][1]  # stored landscape, reported portrait


def test_verify_matches_upstream_on_every_file(upstream, faulty_dataset, tmp_path):
    # Verification can rewrite a JPEG, so each side gets a fresh copy at the same path (messages hold paths).
    work = faulty_dataset.copy_to(tmp_path / "ds")
    pairs = _pairs(work)
    theirs = [upstream.dataloaders.verify_image_label((im, lb, "train: ")) for im, lb in pairs]
    their_bytes = [Path(im).read_bytes() for im, _ in pairs]
    work = faulty_dataset.copy_to(tmp_path / "ds")
    ours = [verify_image_label((im, lb, "train: ")) for im, lb in pairs]
    for (im, _), o, t in zip(pairs, ours, theirs, strict=True):
        assert _same(o, t), f"{im}:\nours   {o}\ntheirs {t}"
    assert [Path(im).read_bytes() for im, _ in pairs] == their_bytes  # the same restored JPEG bytes too
    assert len(ours) == 28 and sum(r[7] for r in ours) == 7  # the comparison covered the faults
    (dup,) = [r for r in ours if r[0] and "label-duplicates" in r[0]]
    file_rows = np.loadtxt(dup[0].replace("/images/", "/labels/").replace(".jpg", ".txt"), dtype=np.float32)
    assert not np.array_equal(dup[1], file_rows[: len(dup[1])])  # kept rows come out reordered, as upstream


def test_each_fault_has_its_outcome_and_a_message_naming_the_file(faulty_dataset, tmp_path):
    work = faulty_dataset.copy_to(tmp_path / "ds")
    results = {
        Path(r[0] or r[8].split(": ")[0].split(" ")[-1]).name: r
        for r in (verify_image_label((im, lb, "")) for im, lb in _pairs(work))
    }
    faults = [f for f in work.manifest if f.kind != "empty-image-folder"]
    assert len(faults) == 12
    for fault in faults:
        im_file, lb, shape, segments, nm, nf, ne, nc, msg = results[fault.image.name]
        if fault.message:
            assert f"{fault.image}: " in msg and fault.message in msg, (fault, msg)
        else:
            assert msg == "", (fault, msg)
        if fault.outcome == "corrupt":
            assert (im_file, lb, nc) == (None, None, 1), fault
            assert "ignoring corrupt image/label" in msg
        else:
            assert im_file == str(fault.image) and nc == 0, fault
            assert lb.dtype == np.float32 and lb.shape[1] == 5
        if fault.outcome in ("kept", "restored", "duplicates-removed"):
            assert len(lb) > 0 and nf == 1
        if fault.outcome == "background-missing":
            assert (nm, nf, len(lb)) == (1, 0, 0)
    restored = next(f for f in faults if f.outcome == "restored")
    assert restored.image.read_bytes()[-2:] == b"\xff\xd9"
    polygons = results[next(f for f in faults if f.kind == "label-polygons").image.name]
    assert len(polygons[3]) == len(polygons[1]) and all(s.shape == (4, 2) for s in polygons[3])


def _write_jpeg(path: Path, size=(40, 30)) -> None:
    Image.new("RGB", size, (90, 120, 150)).save(path, "JPEG", quality=90)


_value = st.one_of(
    st.floats(-0.5, 1.5, allow_nan=False, width=32).map(lambda v: f"{v:.6f}"),
    st.sampled_from(["0", "1", "0.5", "-0", "1e-3", "2", "nan", "x"]),
)
_row = st.lists(_value, min_size=1, max_size=9)
_unit = st.floats(0, 1, width=32).map(lambda v: f"{v:.6f}")
_valid_row = st.tuples(st.integers(0, 9).map(str), _unit, _unit, _unit, _unit).map(list)
_polygon_row = st.tuples(st.integers(0, 9).map(str), st.lists(_unit, min_size=6, max_size=12)).map(
    lambda t: [t[0], *t[1][: len(t[1]) // 2 * 2]]
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(st.one_of(_row, _valid_row, _polygon_row, st.just([])), max_size=6),
    dup=st.booleans(),
    tail=st.sampled_from(["", "\n", "\n\n  \n"]),
)
def test_verify_matches_upstream_on_arbitrary_label_files(upstream, tmp_path, rows, dup, tail):
    root = tmp_path / "prop"
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(exist_ok=True)
    im, lb = root / "images" / "a.jpg", root / "labels" / "a.txt"
    if not im.exists():
        _write_jpeg(im)
    rows = rows + rows[:2] if dup else rows
    lb.write_text("\n".join(" ".join(r) for r in rows) + tail)
    ours = verify_image_label((str(im), str(lb), "p: "))
    theirs = upstream.dataloaders.verify_image_label((str(im), str(lb), "p: "))
    assert _same(ours, theirs), f"{lb.read_text()!r}\nours   {ours}\ntheirs {theirs}"


def test_label_messages_use_upstreams_number_format_whatever_the_global_printoptions(upstream, tmp_path):
    im, lb = tmp_path / "images" / "a.jpg", tmp_path / "labels" / "a.txt"
    im.parent.mkdir()
    lb.parent.mkdir()
    _write_jpeg(im)
    lb.write_text("0 0.5 -0.25 0.1 0.1\n1 -1e-7 0.5 0.2 0.2\n")
    theirs = upstream.dataloaders.verify_image_label((str(im), str(lb), ""))[8]
    assert theirs.endswith("negative label values [      -0.25      -1e-07]")
    with np.printoptions(linewidth=75, precision=2, formatter=None):
        assert verify_image_label((str(im), str(lb), ""))[8] == theirs


@pytest.mark.parametrize("workers", [0, 1], ids=["sequential", "pool"])
def test_cache_labels_matches_upstream(upstream, faulty_dataset, tmp_path, workers):
    work = faulty_dataset.copy_to(tmp_path / "ds")
    ims, labels = map(list, zip(*_pairs(work), strict=True))
    path = label_cache_path(str(work.images), labels)
    assert path == work.root / "labels" / "train.cache"
    theirs = _upstream_cache_labels(upstream, ims, labels, path, "train: ", workers)
    their_file = np.load(path, allow_pickle=True).item()
    work = faulty_dataset.copy_to(tmp_path / "ds")
    ours = cache_labels(ims, labels, path, "train: ", num_threads=2 if workers else 0)
    our_file = np.load(path, allow_pickle=True).item()
    assert _same(ours, theirs)
    assert _same(our_file, their_file)
    assert ours["version"] == CACHE_VERSION and ours["results"] == (22, 2, 1, 7, 28)
    assert len(ours["msgs"]) == 9


def test_upstream_cache_loads_in_ours(upstream, faulty_dataset, tmp_path, monkeypatch):
    work = faulty_dataset.copy_to(tmp_path / "ds")
    ims, labels = map(list, zip(*_pairs(work), strict=True))
    path = label_cache_path(str(work.images), labels)
    theirs = _upstream_cache_labels(upstream, ims, labels, path, "", 0)
    monkeypatch.setattr("yolov5_core._labels.cache_labels", _must_not_rebuild)
    ours, exists = load_label_cache(path, ims)
    assert exists
    assert _same(ours, theirs)


def _must_not_rebuild(*args, **kwargs):
    raise AssertionError("the cache should have been accepted, not rebuilt")


def test_our_cache_loads_in_upstream(upstream, faulty_dataset, tmp_path, monkeypatch):
    work = faulty_dataset.copy_to(tmp_path / "ds")
    ims = list_image_files(str(work.images))
    ours = cache_labels(ims, img2label_paths(ims), label_cache_path(str(work.images), img2label_paths(ims)))
    monkeypatch.setattr(upstream.dataloaders.LoadImagesAndLabels, "cache_labels", _must_not_rebuild)
    ds = upstream.dataloaders.LoadImagesAndLabels(str(work.images), img_size=320, augment=False, workers=0)
    kept = [k for k in ours if k not in ("hash", "results", "msgs", "version")]
    assert ds.im_files == kept
    assert _same(ds.labels, [ours[k][0] for k in kept])
    assert _same(ds.segments, [ours[k][2] for k in kept])
    assert np.array_equal(ds.shapes, np.array([ours[k][1] for k in kept]))


@pytest.mark.parametrize("damage", ["missing", "garbage", "old-version", "other-files", "not-a-dict", "no-results"])
def test_stale_or_broken_cache_is_rebuilt(faulty_dataset, tmp_path, damage):
    work = faulty_dataset.copy_to(tmp_path / "ds")
    ims = list_image_files(str(work.images))
    path = label_cache_path(str(work.images), img2label_paths(ims))
    cache_labels(ims, img2label_paths(ims), path)  # restores the faulty JPEG: later scans no longer report it
    good = cache_labels(ims, img2label_paths(ims), path)
    if damage == "missing":
        path.unlink()
    elif damage == "garbage":
        path.write_bytes(b"\x00not numpy")
    elif damage in ("old-version", "other-files", "no-results"):
        bad = dict(good, version=0.5) if damage == "old-version" else dict(good, hash="0" * 64)
        if damage == "no-results":
            bad = {k: v for k, v in good.items() if k != "results"}
        np.save(path, bad)  # type: ignore[arg-type]  # a dict, pickled as the label cache format has it
        path.with_suffix(".cache.npy").rename(path)
    else:
        np.save(path, np.arange(3))
        path.with_suffix(".cache.npy").rename(path)
    cache, exists = load_label_cache(path, ims)
    assert not exists
    assert _same(cache, good)
    assert load_label_cache(path, ims)[1]  # and the rebuilt cache is current again


def test_summary_adds_up_and_matches_the_design(upstream, faulty_dataset, tmp_path):
    work = faulty_dataset.copy_to(tmp_path / "ds")
    ims, labels = map(list, zip(*_pairs(work), strict=True))
    theirs = _upstream_cache_labels(upstream, ims, labels, tmp_path / "x.cache", "", 0)
    summary = LabelSummary.from_cache(theirs)
    assert summary.found + summary.missing + summary.empty + summary.corrupt == summary.total == len(ims)
    assert summary == work.expected_summary()
    assert summary.label_files_found == theirs["results"][0]
    assert (summary.missing, summary.empty, summary.corrupt) == tuple(theirs["results"][1:4])


def test_summary_rejects_counts_that_do_not_add_up():
    with pytest.raises(ValueError, match=r"found 3 \+ missing 1 \+ empty 1 \+ corrupt 0 = 5, expected total 6"):
        LabelSummary(found=3, missing=1, empty=1, corrupt=0, total=6, label_files_found=4)
    with pytest.raises(ValueError, match="non-negative"):
        LabelSummary(found=-1, missing=1, empty=1, corrupt=0, total=1, label_files_found=0)
    with pytest.raises(ValueError, match="corrupt label files"):
        LabelSummary(found=3, missing=1, empty=1, corrupt=1, total=6, label_files_found=6)


def test_summary_rejects_results_that_disagree_with_the_entries(faulty_dataset, tmp_path):
    work = faulty_dataset.copy_to(tmp_path / "ds")
    ims = list_image_files(str(work.images))
    cache = cache_labels(ims, img2label_paths(ims), tmp_path / "x.cache")
    nf, nm, ne, nc, n = cache["results"]
    with pytest.raises(ValueError, match="cache holds 21 images"):
        LabelSummary.from_cache(dict(cache, results=(nf, nm - 1, ne, nc - 1, n - 2)))
    listed_twice = cache_labels(ims + ims[-1:], img2label_paths(ims + ims[-1:]), tmp_path / "y.cache")
    with pytest.raises(ValueError, match="listed twice"):
        LabelSummary.from_cache(listed_twice)


_OUTCOMES = {  # one image's upstream (nm, nf, ne, nc, kept, has labels) per bucket
    "found": (0, 1, 0, 0, True, True),
    "missing": (1, 0, 0, 0, True, False),
    "empty": (0, 1, 1, 0, True, False),
    "corrupt-image": (0, 0, 0, 1, False, False),
    "corrupt-label": (0, 1, 0, 1, False, False),
}


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(sorted(_OUTCOMES)), max_size=40))
def test_summary_buckets_every_image_once(outcomes):
    cache: dict[str, Any] = {}
    nm, nf, ne, nc = 0, 0, 0, 0
    for i, o in enumerate(outcomes):
        m, f, e, c, kept, has_labels = _OUTCOMES[o]
        nm, nf, ne, nc = nm + m, nf + f, ne + e, nc + c
        if kept:
            cache[f"{i}.jpg"] = [np.zeros((2 if has_labels else 0, 5), np.float32), (20, 20), []]
    cache.update(hash="", results=(nf, nm, ne, nc, len(outcomes)), msgs=[], version=0.6)
    s = LabelSummary.from_cache(cache)
    assert (s.found, s.missing, s.empty, s.corrupt, s.total) == (
        outcomes.count("found"),
        outcomes.count("missing"),
        outcomes.count("empty"),
        outcomes.count("corrupt-image") + outcomes.count("corrupt-label"),
        len(outcomes),
    )


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match="one label file per image, got 2 images and 1 label files"):
        cache_labels(["a.jpg", "b.jpg"], ["a.txt"], tmp_path / "x.cache")
    with pytest.raises(ValueError, match="num_threads >= 0, got -1"):
        cache_labels([], [], tmp_path / "x.cache", num_threads=-1)
    with pytest.raises(ValueError, match="at least one label file"):
        label_cache_path(str(tmp_path), [])


def test_unwritable_cache_folder_still_returns_the_cache(synthetic_dataset, tmp_path, caplog):
    ims = list_image_files(str(synthetic_dataset.images))
    cache = cache_labels(ims, img2label_paths(ims), tmp_path / "no" / "such" / "dir.cache", num_threads=0)
    assert cache["results"] == (15, 1, 1, 0, 16)
    assert "is not writeable" in caplog.text and str(tmp_path / "no" / "such") in caplog.text
