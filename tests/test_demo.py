"""The README's main job: yolov5_pt vs yolov5_ms side by side, its report folder, its pictures and its errors."""

import re

import cv2
import numpy as np
import pytest

from porting.cli import main
from porting.cli._yolo_plots import class_colour, diff_heatmap, plot_batch


def _run(capsys, *argv):
    rc = main(list(argv))
    return rc, capsys.readouterr().out


def test_demo_runs_matches_and_writes_the_report(tmp_path, capsys):
    rc, out = _run(capsys, "demo", "--out", str(tmp_path), "--images", "8", "--epochs", "2")
    assert rc == 0, out
    assert "yolov5_ms vs yolov5_pt: pipelines bit-identical: 4 batches compared, 0 with mismatches" in out
    assert "adapters.to_mindspore(yolov5_pt) vs yolov5_pt: pipelines bit-identical: 4 batches" in out
    assert re.search(r"yolov5_pt [\d.]+ img/s, yolov5_ms [\d.]+ img/s, ratio [\d.]+", out)
    assert out.rstrip().endswith("RESULT: bit-identical")
    md = (tmp_path / "report.md").read_text()
    assert "**Result: bit-identical**" in md and "| yolov5_ms vs yolov5_pt | bit-identical | 4 |" in md
    assert "| seed | 0 |" in md and "| workers | 2 |" in md and "mindspore 2.10.0" in md
    page = (tmp_path / "report.html").read_text()
    assert "<b>Result: bit-identical</b>" in page and 'src="batch0_side_by_side.png"' in page
    for k in (0, 1):
        pt = cv2.imread(str(tmp_path / f"batch{k}_yolov5_pt.png"))
        ms = cv2.imread(str(tmp_path / f"batch{k}_yolov5_ms.png"))
        both = cv2.imread(str(tmp_path / f"batch{k}_side_by_side.png"))
        diff = cv2.imread(str(tmp_path / f"batch{k}_diff.png"))
        # 2 x 2 grid of 320 px images under a 28 px caption; three panels with 8 px gaps
        assert pt.shape == ms.shape == diff.shape == (28 + 640, 640, 3)
        assert both.shape == (668, 3 * 640 + 2 * 8, 3)
        assert np.array_equal(pt[28:], ms[28:])  # same batch, same picture (captions differ)
        # an all-black map between white cell borders: no heat colour anywhere
        assert {tuple(c) for c in np.unique(diff[28:].reshape(-1, 3), axis=0)} == {(0, 0, 0), (255, 255, 255)}


def test_demo_with_workers_0_matches(tmp_path, capsys):
    rc, out = _run(
        capsys, "demo", "--out", str(tmp_path), "--images", "4", "--epochs", "2", "--workers", "0", "--batch", "2"
    )
    assert rc == 0, out
    assert "RESULT: bit-identical" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["demo", "--epochs", "0"], "argument --epochs: expected an integer >= 1, got 0"),
        (["demo", "--workers", "-1"], "argument --workers: expected an integer >= 0, got -1"),
        (["demo", "--batch", "x"], "argument --batch: expected an integer >= 1, got 'x'"),
        (["yolov5"], "the following arguments are required: --data"),
    ],
)
def test_bad_options_are_one_line_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_missing_or_empty_data_and_unknown_hyp(tmp_path, capsys):
    rc, out = _run(capsys, "yolov5", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "r"))
    assert rc == 2 and out.strip() == f"torch2ms yolov5: error: --data {tmp_path / 'nope'}: no such folder or list file"
    (tmp_path / "empty").mkdir()
    rc, out = _run(capsys, "yolov5", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "r"))
    assert rc == 2 and "no images found" in out and len(out.strip().splitlines()) == 1
    rc, out = _run(capsys, "demo", "--images", "2", "--hyp", "no-such-hyp", "--out", str(tmp_path / "r"))
    assert rc == 2 and "error: --hyp no-such-hyp:" in out


def test_corrupt_images_and_labels_are_counted_and_named(tmp_path, capsys):
    from yolov5_core import make_synthetic_dataset

    data = make_synthetic_dataset(tmp_path / "d", n_images=6, seed=1)
    (data.images / "broken.jpg").write_bytes(b"not a jpeg")
    label = data.images.parent.parent / "labels" / "train" / "scene_001.txt"
    assert label.is_file()
    label.write_text("0 0.5 0.5 2.0 0.5\n")  # not normalised: upstream drops the image as corrupt
    rc, out = _run(
        capsys,
        "yolov5",
        "--data",
        str(data.images),
        "--out",
        str(tmp_path / "r"),
        "--epochs",
        "1",
        "--workers",
        "0",
        "--batch",
        "2",
    )
    assert rc == 0, out
    assert (
        "2 corrupt image(s) skipped, unreadable or with a bad label file (as upstream does): broken.jpg, "
        "scene_001.jpg" in out
    )
    assert (
        "2 corrupt image(s) skipped (unreadable or bad label): broken.jpg, scene_001.jpg"
        in (tmp_path / "r" / "report.md").read_text()
    )


# ----------------------------------------------------------------------------- the pictures


def test_boxes_are_drawn_where_the_labels_say():
    images = np.zeros((2, 3, 64, 64), np.uint8)
    labels = np.array([[0, 3, 0.5, 0.5, 0.5, 0.25]])  # image 0: class 3, x 16..48, y 24..40
    pic = plot_batch(images, labels)
    assert pic.shape == (64, 128, 3)
    colour = np.array(class_colour(3), np.uint8)
    assert (pic[24, 20:44] == colour).all() and (pic[40, 20:44] == colour).all()  # top and bottom edges
    assert (pic[28:37, 16] == colour).all() and (pic[28:37, 48] == colour).all()  # left and right edges
    assert not pic[30:35, 25:40].any()  # inside the box: the image, black
    assert not pic[5:60, 64 + 5 : 128 - 5].any()  # image 1 has no label: nothing drawn


def test_difference_map_marks_the_differing_pixel_only():
    a = np.zeros((1, 3, 32, 32), np.uint8)
    b = a.copy()
    b[0, 1, 10, 20] = 7
    pic, differing = diff_heatmap(a, b)
    assert differing == 1
    body = pic[28:]
    assert body[10, 20].any()
    body[10, 20] = 0
    assert not body[2:30, 2:30].any()
    with pytest.raises(ValueError, match="different shapes"):
        diff_heatmap(a, b[:, :, :16])


def test_the_out_folders_own_data_is_never_removed(tmp_path, capsys):
    # --out may be a YOLOv5 checkout: its data/ (hyp files, dataset yamls) is the user's.
    out = tmp_path / "yolov5"
    (out / "data").mkdir(parents=True)
    (out / "data" / "hyp.yaml").write_text("lr0: 0.01\n")
    rc, text = _run(capsys, "yolov5", "--data", str(tmp_path / "nope"), "--out", str(out))
    assert rc == 2 and (out / "data" / "hyp.yaml").read_text() == "lr0: 0.01\n"
    rc, text = _run(capsys, "demo", "--images", "2", "--out", str(out))
    assert rc == 2 and "was not made by this command" in text and len(text.strip().splitlines()) == 1
    assert (out / "data" / "hyp.yaml").read_text() == "lr0: 0.01\n"


# ----------------------------------------------------------------------------- honest figures, no noise (issue 18)


def test_demo_speed_includes_building_each_side(tmp_path, capsys, monkeypatch):
    # A MindSpore side that takes 1 s to build: timed alone from the build on, 8 images cannot exceed 8 img/s.
    import porting.cli._demo as demo

    real = demo._loaders

    def slow_build(args, source, hyp, which, **extra):
        if which == "yolov5_ms":
            import time

            time.sleep(1.0)
        return real(args, source, hyp, which, **extra)

    monkeypatch.setattr(demo, "_loaders", slow_build)
    rc, out = _run(
        capsys, "demo", "--out", str(tmp_path), "--images", "4", "--epochs", "2", "--workers", "0", "--batch", "2"
    )
    assert rc == 0, out
    ms_speed = float(re.search(r"yolov5_ms ([\d.]+) img/s", out).group(1))
    assert 0 < ms_speed <= 8.0, out
    assert (
        "[4/5] speed, each side alone on the same 8 images (fresh builds, same seed), building the loader and "
        "starting its workers included:"
    ) in out
    assert "images/s yolov5_ms (alone, build and start-up included) |" in (tmp_path / "report.md").read_text()


def test_demo_output_explains_albumentations_once_and_is_otherwise_quiet(tmp_path):
    # A fresh interpreter: upstream's logging handler and torch's warnings go to the real stderr.
    import os
    import subprocess
    import sys

    from tests._helpers.subproc import ROOT

    proc = subprocess.run([sys.executable, "-m", "porting", "demo", "--out", str(tmp_path), "--images", "4",
                           "--epochs", "1", "--batch", "2", "--workers", "1"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={**os.environ, "PYTHONPATH": ROOT})  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = proc.stdout + proc.stderr
    # upstream's multi-line pydantic error is not printed; one line says what it means
    assert "Field required" not in text and "errors.pydantic.dev" not in text
    [line] = [ln for ln in proc.stdout.splitlines() if "albumentations" in ln and "upstream's" in ln]
    assert line.startswith("      (upstream's albumentations stage is off under albumentations 2.")
    assert line.endswith("rejects: 1 validation error for InitSchema); the comparison turns ours off too)")
    assert text.count("validation error") == 1
    assert "pin_memory" not in text and "Scanning" not in text
    # what is left on stderr: compare_pipelines' progress bar only (and MindSpore's own log lines, if any)
    rest = [
        seg
        for line in proc.stderr.splitlines()
        for seg in line.split("\r")
        if seg.strip() and not seg.startswith("compare_pipelines:") and not seg.startswith("[WARNING] ME(")
    ]
    assert rest == [], rest
