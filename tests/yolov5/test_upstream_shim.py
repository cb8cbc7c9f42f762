"""load_upstream() gives upstream's real modules without leaving stand-ins behind; bundled hyps are upstream's."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import yolov5_pt.upstream as shim
from yolov5_core import HYP_NAMES, load_hyp

_STUBBED = ("torchvision", "pandas", "matplotlib", "requests", "pkg_resources", "ultralytics")


def _installed(name: str) -> bool:
    return name in sys.modules or importlib.util.find_spec(name) is not None


def test_modules_are_the_installed_upstream_files(upstream):
    dist = importlib.metadata.distribution("yolov5")
    assert dist.version == "7.0.14" == upstream.version
    for name in ("dataloaders", "augmentations", "general"):
        module = getattr(upstream, name)
        assert module.__name__ == f"yolov5.utils.{name}"
        assert Path(module.__file__).resolve() == Path(str(dist.locate_file(f"yolov5/utils/{name}.py"))).resolve()
    assert upstream.dataloaders.LoadImagesAndLabels.cache_version == 0.6
    assert shim.load_upstream() is upstream  # once per process


def test_top_level_init_was_skipped(upstream):
    assert "yolov5.helpers" not in sys.modules and "yolov5.models.yolo" not in sys.modules
    assert not hasattr(sys.modules["yolov5"], "YOLOv5")


def test_no_stand_in_is_left_in_sys_modules(upstream):
    leftovers = [m for m in sys.modules if m.split(".")[0] in _STUBBED and isinstance(sys.modules[m], shim._StandIn)]
    assert leftovers == []
    for name in _STUBBED:  # a stand-in never shadows or fakes the real package afterwards
        assert _installed(name) == (importlib.util.find_spec(name) is not None)


@pytest.mark.skipif(_installed("torchvision"), reason="torchvision is installed, so upstream uses the real one")
def test_using_a_stand_in_fails_loudly(upstream):
    with pytest.raises(AttributeError, match="torchvision.ops is a stand-in made by yolov5_pt.upstream"):
        _ = upstream.general.torchvision.ops
    with pytest.raises(RuntimeError, match="stand-in"):
        upstream.dataloaders.ClassificationDataset("root", augment=False, imgsz=224)


def test_version_checks_are_real_comparisons(upstream):
    # utils.general.check_version goes through the pkg_resources stand-in (or the real one).
    assert upstream.general.check_version("1.10.0", "1.9.0")
    assert not upstream.general.check_version("1.8.2", "1.9.0")


def test_fresh_interpreter_can_import_torch_dynamo_after_loading(tmp_path):
    code = (
        "import sys, importlib.util\n"
        "from yolov5_pt.upstream import load_upstream\n"
        "up = load_upstream()\n"
        "import torch._dynamo\n"
        f"tops = {_STUBBED!r}\n"
        "bad = [m for m in sys.modules\n"
        "       if m.split('.')[0] in tops and importlib.util.find_spec(m.split('.')[0]) is None]\n"
        "assert not bad, bad\n"
        "print(up.dataloaders.img2label_paths(['/d/images/a.jpg']))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "['/d/labels/a.txt']"


def test_missing_or_wrong_upstream_says_how_to_install(monkeypatch):
    monkeypatch.setattr(shim, "_loaded", None)

    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(shim.importlib.metadata, "version", not_installed)
    with pytest.raises(shim.UpstreamNotInstalledError, match=r"not installed; install it .*--no-deps yolov5==7\.0\.14"):
        shim.load_upstream()
    monkeypatch.setattr(shim.importlib.metadata, "version", lambda name: "7.0.13")
    with pytest.raises(shim.UpstreamNotInstalledError, match=r"expected yolov5==7\.0\.14 .*got yolov5==7\.0\.13"):
        shim.load_upstream()
    assert issubclass(shim.UpstreamNotInstalledError, ModuleNotFoundError)


@pytest.mark.parametrize("stem", HYP_NAMES)
def test_bundled_hyps_are_upstreams(stem):
    upstream_dist = importlib.metadata.distribution("yolov5")
    upstream_file = Path(str(upstream_dist.locate_file(f"yolov5/data/hyps/hyp.{stem}.yaml")))
    expected = yaml.safe_load(upstream_file.read_text())
    for name in (stem, f"hyp.{stem}", f"hyp.{stem}.yaml"):
        assert load_hyp(name) == expected
    assert load_hyp(upstream_file) == expected
    assert load_hyp(str(upstream_file)) == expected


def test_hyp_values_the_data_pipeline_reads():
    low, high = load_hyp("scratch-low"), load_hyp("scratch-high")
    assert {
        k: low[k]
        for k in (
            "hsv_h",
            "hsv_s",
            "hsv_v",
            "degrees",
            "translate",
            "scale",
            "shear",
            "perspective",
            "flipud",
            "fliplr",
            "mosaic",
            "mixup",
            "copy_paste",
        )
    } == {
        "hsv_h": 0.015,
        "hsv_s": 0.7,
        "hsv_v": 0.4,
        "degrees": 0.0,
        "translate": 0.1,
        "scale": 0.5,
        "shear": 0.0,
        "perspective": 0.0,
        "flipud": 0.0,
        "fliplr": 0.5,
        "mosaic": 1.0,
        "mixup": 0.0,
        "copy_paste": 0.0,
    }
    assert (high["mixup"], high["scale"], high["copy_paste"]) == (0.1, 0.9, 0.1)
    low["mosaic"] = 0.0
    assert load_hyp("scratch-low")["mosaic"] == 1.0  # each call returns a fresh dict


def test_hyp_errors_name_the_input(tmp_path):
    names = r"\['scratch-low', 'scratch-med', 'scratch-high'\]"
    with pytest.raises(FileNotFoundError, match=rf"bundled name {names}.*'scratch-huge'"):
        load_hyp("scratch-huge")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match=f"mapping of names to values in {bad}, got list"):
        load_hyp(bad)
