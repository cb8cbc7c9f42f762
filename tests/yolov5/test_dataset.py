"""``yolov5_core.YoloDatasetCore`` (framework-free) and ``yolov5_pt`` pieces not covered by the upstream comparison:
the numpy contract, no torch in the core, options upstream lacks (include_class, working albumentations),
albumentations determinism in DataLoader workers, and the error messages.
"""

from __future__ import annotations

import ast
import random
from pathlib import Path

import albumentations as A
import cv2
import numpy as np
import pytest
import torch

from tests._helpers.subproc import ROOT, run_json
from yolov5_core import load_hyp
from yolov5_core._albumentations import Albumentations
from yolov5_core._dataset import YoloDatasetCore
from yolov5_core._letterbox import letterbox
from yolov5_pt import LoadImagesAndLabels, collate_fn, create_dataloader, torch_distributed_zero_first

IMG = 160


def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@pytest.fixture(scope="module")
def data(synthetic_dataset, tmp_path_factory) -> str:
    return str(synthetic_dataset.copy_to(tmp_path_factory.mktemp("core") / "ds").images)


@pytest.fixture(scope="module")
def hyp() -> dict:
    h = load_hyp("scratch-low")
    h.update(mixup=0.5, degrees=5.0, flipud=0.5)
    return h


def strong_albumentations(size: int = IMG) -> Albumentations:
    # p=1 / p=0.5 variants so the stage changes most samples, with random parameters (kernel sizes, CLAHE).
    return Albumentations(size, transforms=[A.Blur(blur_limit=(3, 11), p=1.0), A.CLAHE(p=0.5), A.ToGray(p=0.3)])


# ------------------------------------------------------------------------------------------------- framework-free
def test_core_package_never_imports_torch_statically():
    offenders = []
    for f in sorted((Path(ROOT) / "yolov5_core").rglob("*.py")):
        for node in ast.walk(ast.parse(f.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else ([node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            )
            offenders += [f"{f.name}: {n}" for n in names if n.split(".")[0] in ("torch", "torchvision")]
    assert offenders == []


def test_core_dataset_runs_without_torch(data):
    # torch made unimportable: the whole core pipeline, albumentations included, still runs.
    out = run_json(
        f"""
        import json, random, numpy as np
        from yolov5_core import load_hyp
        from yolov5_core._dataset import YoloDatasetCore
        random.seed(0); np.random.seed(0)
        hyp = load_hyp("scratch-low"); hyp["mixup"] = 0.5
        ds = YoloDatasetCore({data!r}, {IMG}, augment=True, hyp=hyp)
        img, labels, path, shapes = ds[0]
        import sys
        print(json.dumps([img.shape, str(img.dtype), img.flags.c_contiguous, labels.shape[1], str(labels.dtype),
                          ds.albumentations is not None, "torch" in sys.modules]))
        """,
        block_torch=True,
    )
    assert out == [[3, IMG, IMG], "uint8", True, 6, "float32", True, False]


# ------------------------------------------------------------------------------------------------- numpy contract
def test_core_and_torch_wrapper_return_the_same_arrays(data, hyp):
    seed_all(1)
    core = YoloDatasetCore(data, IMG, augment=True, hyp=hyp)
    a = [core[i] for i in range(len(core))]
    seed_all(1)
    wrapped = LoadImagesAndLabels(data, IMG, augment=True, hyp=hyp)
    b = [wrapped[i] for i in range(len(wrapped))]
    for (ia, la, pa, sa), (ib, lb, pb, sb) in zip(a, b, strict=True):
        assert isinstance(ia, np.ndarray) and isinstance(ib, torch.Tensor)
        assert ia.dtype == np.uint8 and ia.flags.c_contiguous and ia.shape == (3, IMG, IMG)
        assert la.dtype == np.float32 and la.ndim == 2 and la.shape[1] == 6 and (la[:, 0] == 0).all()
        assert ((la[:, 2:] >= 0) & (la[:, 2:] <= 1)).all()
        assert ia.tobytes() == ib.numpy().tobytes() and la.tobytes() == lb.numpy().tobytes()
        assert pa == pb and sa is None and sb is None


def test_validation_image_is_letterboxed_rgb_chw_of_the_file(data):
    # Against cv2 directly: long side to IMG with INTER_AREA (ceil dims), letterbox, BGR -> RGB, HWC -> CHW.
    ds = YoloDatasetCore(data, IMG, augment=False)
    for i in (0, 1, 2):
        img, labels, path, ((h0, w0), ((gh, gw), pad)) = ds[i]
        bgr = cv2.imread(path)
        r = IMG / max(bgr.shape[:2])
        bgr = cv2.resize(
            bgr, (int(np.ceil(bgr.shape[1] * r)), int(np.ceil(bgr.shape[0] * r))), interpolation=cv2.INTER_AREA
        )
        expected, _, expected_pad = letterbox(bgr, IMG, auto=False, scaleup=False)
        assert (h0, w0) == cv2.imread(path).shape[:2] and expected_pad == pad
        assert img.tobytes() == np.ascontiguousarray(expected[:, :, ::-1].transpose(2, 0, 1)).tobytes()


def test_ram_cached_images_are_never_modified(synthetic_dataset, tmp_path, hyp):
    path = str(synthetic_dataset.copy_to(tmp_path / "ds").images)
    ds = YoloDatasetCore(path, IMG, augment=True, hyp={**hyp, "mosaic": 0.5}, cache_images=True)
    before = [im.copy() for im in ds.ims]
    for i in range(len(ds)):
        ds[i]
    assert all(a.tobytes() == b.tobytes() for a, b in zip(before, ds.ims, strict=True))


def test_include_class_keeps_only_those_classes(upstream, data):
    ours = YoloDatasetCore(data, IMG, augment=False, include_class=[1, 3])
    reference = upstream.dataloaders.LoadImagesAndLabels(data, IMG, augment=False)  # upstream keeps every class
    assert ours.im_files == reference.im_files
    for mine, theirs in zip(ours.labels, reference.labels, strict=True):
        keep = np.isin(theirs[:, 0], [1, 3])
        assert mine.tobytes() == theirs[keep].tobytes()
    assert sum(len(x) for x in ours.labels) < sum(len(x) for x in reference.labels)


# ------------------------------------------------------------------------------------------------- albumentations
def test_albumentations_on_by_default_and_really_in_the_pipeline(data, hyp):
    assert YoloDatasetCore(data, IMG, augment=True, hyp=hyp).albumentations.transform is not None
    assert YoloDatasetCore(data, IMG, augment=False).albumentations is None
    outs = {}
    for name, alb in (("off", False), ("strong", strong_albumentations())):
        seed_all(2)
        ds = YoloDatasetCore(data, IMG, augment=True, hyp={**hyp, "mixup": 0.0}, albumentations=alb)
        outs[name] = [ds[i][0].tobytes() for i in range(len(ds))]
    assert sum(a != b for a, b in zip(outs["off"], outs["strong"], strict=True)) >= len(outs["off"]) // 2


def _albumentations_loader_run(data, hyp, workers):
    seed_all(0)
    loader, ds = create_dataloader(
        data,
        IMG,
        4,
        32,
        hyp=hyp,
        augment=True,
        workers=workers,
        shuffle=False,
        seed=4,
        albumentations=strong_albumentations(),
    )
    return [b for _ in range(2) for b in loader], ds


def test_albumentations_deterministic_across_runs_and_in_every_worker(data, hyp):
    first, ds = _albumentations_loader_run(data, hyp, workers=2)
    second, _ = _albumentations_loader_run(data, hyp, workers=2)
    assert len(first) == 8
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a[0], b[0]) and a[1].numpy().tobytes() == b[1].numpy().tobytes() and a[2] == b[2]

    # Replay each worker in this process: worker w's python/numpy streams are seeded by torch (base_seed + w) and
    # then by seed_worker with (base_seed + w) % 2**32; batch k goes to worker k % 2. Albumentations' own RNG is
    # reseeded from the python stream on every call, so the replay must give the same bytes.
    generator = torch.Generator().manual_seed(6148914691236517205 + 4 - 1)
    base_seed = int(torch.empty((), dtype=torch.int64).random_(generator=generator).item())
    states = {}
    for w in (0, 1):
        seed_all((base_seed + w) % 2**32)
        states[w] = (random.getstate(), np.random.get_state())
    for k, batch in enumerate(first):
        w = k % 2
        random.setstate(states[w][0])
        np.random.set_state(states[w][1])
        start = (k % 4) * 4
        replay = collate_fn([ds[i] for i in range(start, start + 4)])
        states[w] = (random.getstate(), np.random.get_state())
        assert torch.equal(replay[0], batch[0]), f"batch {k} (worker {w}) is not the replay"
        assert replay[1].numpy().tobytes() == batch[1].numpy().tobytes() and replay[2] == batch[2]
    # The two workers do not duplicate each other's augmentation (different streams).
    assert not torch.equal(first[0][0], first[1][0])


# ------------------------------------------------------------------------------------------------- errors
def test_errors_name_what_was_expected_and_got(data, hyp, synthetic_dataset, tmp_path):
    with pytest.raises(KeyError, match=r"hyp lacks \['mixup', 'copy_paste'\]"):
        YoloDatasetCore(data, IMG, augment=True, hyp={k: v for k, v in hyp.items() if k not in ("mixup", "copy_paste")})
    with pytest.raises(KeyError, match=r"hyp lacks \['hsv_h'\]"):
        YoloDatasetCore(data, IMG, augment=True, rect=True, hyp={k: v for k, v in hyp.items() if k != "hsv_h"})
    with pytest.raises(ValueError, match="augment=True needs a hyp dict .* got NoneType"):
        YoloDatasetCore(data, IMG, augment=True)
    with pytest.raises(ValueError, match=r"albumentations must be True, False, None or an Albumentations .* got str"):
        YoloDatasetCore(data, IMG, augment=True, hyp=hyp, albumentations="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"cache_images must be one of .* got 'memory'"):
        YoloDatasetCore(data, IMG, cache_images="memory")
    with pytest.raises(ValueError, match=r"img_size must be a positive int, got 160.0"):
        YoloDatasetCore(data, 160.0)  # type: ignore[arg-type]  # the refusal of a wrong type is under test
    with pytest.raises(ValueError, match=r"batch_size must be a positive int, got 0"):
        YoloDatasetCore(data, IMG, batch_size=0)
    with pytest.raises(ValueError, match=r"min_items=99 filtered out every image"):
        YoloDatasetCore(data, IMG, min_items=99)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        YoloDatasetCore(str(tmp_path / "nowhere"), IMG)
    with pytest.raises(IndexError):
        YoloDatasetCore(data, IMG)[10_000]

    # Backgrounds only: training needs labels (upstream asserts the same).
    bg = synthetic_dataset.copy_to(tmp_path / "bg")
    for f in bg.labels.glob("*.txt"):
        f.write_text("")
    with pytest.raises(ValueError, match=r"All labels empty in .*train\.cache, can not start training"):
        YoloDatasetCore(str(bg.images), IMG, augment=True, hyp=hyp)
    assert len(YoloDatasetCore(str(bg.images), IMG, augment=False)) == len(list(bg.images.glob("*.jpg")))

    # An image that disappears after the scan: the error names the file.
    gone = synthetic_dataset.copy_to(tmp_path / "gone")
    ds = YoloDatasetCore(str(gone.images), IMG, augment=False)
    Path(ds.im_files[0]).unlink()
    with pytest.raises(FileNotFoundError, match=r"Image Not Found .*scene_000\.jpg"):
        ds[0]


def test_collate_and_ddp_errors():
    with pytest.raises(ValueError, match=r"collate_fn: sample 1 must be \(img, labels, path, shapes\), got tuple"):
        collate_fn([(torch.zeros(3, 2, 2), torch.zeros(0, 6), "a", None), (torch.zeros(3, 2, 2),)])
    with pytest.raises(RuntimeError, match=r"rank=1 needs an initialised torch.distributed process group"):
        with torch_distributed_zero_first(1):
            pass
