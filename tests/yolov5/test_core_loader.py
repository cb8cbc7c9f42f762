"""The framework-free loader pieces in ``yolov5_core`` against torch and upstream YOLOv5 v7.0.

* ``interpolate_bilinear`` against torch's own ``F.interpolate`` on random float32 inputs: both of torch's CPU
  kernels (its own choice by output size, channel count and thread count), several scale factors, and torch's
  ``DEFAULT`` CPU build (no fused multiply-add) in a subprocess;
* numpy ``collate_fn`` / ``collate_fn4`` against upstream's torch functions on random batches;
* ``loader_recipe`` / ``seed_worker_from`` against upstream's rules, written out here;
* ``Albumentations`` with ``transform=None`` (upstream's state when albumentations cannot be used): off, no draw.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import yolov5_core
from tests._helpers.subproc import run_json
from yolov5_core import (
    GENERATOR_SEED_BASE,
    Albumentations,
    collate_fn,
    collate_fn4,
    interpolate_bilinear,
    loader_recipe,
)


@pytest.fixture
def torch_threads():
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def torch_bilinear(x: np.ndarray, factor: float) -> np.ndarray:
    return F.interpolate(torch.from_numpy(x), scale_factor=factor, mode="bilinear", align_corners=False).numpy()


FMA = torch.backends.cpu.get_cpu_capability() != "DEFAULT"  # this process's torch build (see _interpolate.py)
# (shape, factor): both kernels (H_out + W_out <= 128 -> channels-last; C == 3 with 1 thread -> channels-last),
# the 128 threshold on each side, vector/tail channel splits (C = 11, 19), downscaling, odd factors.
SHAPES = [
    ((1, 1, 32, 32), 2.0),
    ((1, 1, 32, 33), 2.0),
    ((1, 3, 5, 7), 2.0),
    ((2, 3, 40, 50), 2.0),
    ((1, 4, 40, 50), 2.0),
    ((1, 11, 9, 9), 2.0),
    ((1, 19, 30, 40), 2.0),
    ((1, 2, 70, 1), 2.0),
    ((3, 3, 64, 64), 2.0),
    ((1, 3, 33, 17), 1.5),
    ((1, 5, 61, 57), 1.3),
    ((1, 1, 25, 30), 3.0),
    ((1, 2, 100, 90), 0.75),
    ((1, 3, 31, 29), 2.5),
]


@pytest.mark.parametrize("threads", [1, 2])
def test_interpolate_matches_torch_on_random_floats(torch_threads, threads):
    torch_threads(threads)
    rng = np.random.default_rng(threads)
    for shape, factor in SHAPES:
        for magnitude in (1e-3, 1.0, 300.0, 1e7):
            x = (rng.standard_normal(shape) * magnitude).astype(np.float32)
            expected = torch_bilinear(x, factor)
            got = interpolate_bilinear(x, factor, fma=FMA, num_threads=threads)
            assert got.shape == expected.shape and got.dtype == np.float32
            assert got.tobytes() == expected.tobytes(), f"{shape} x{factor} magnitude {magnitude} threads {threads}"


def test_interpolate_kernels_really_differ():
    # Guards the test above from passing vacuously: the two kernels and the two roundings give different floats.
    x = np.random.default_rng(0).standard_normal((1, 4, 40, 50)).astype(np.float32) * 300
    outs = [
        interpolate_bilinear(x, kernel=k, fma=f).tobytes() for k in ("generic", "channels_last") for f in (True, False)
    ]
    assert len(set(outs)) == 4


def test_interpolate_matches_torch_default_cpu_build():
    # torch's DEFAULT capability (no fused multiply-add), selected by torch's own environment variable.
    code = """
    import json, numpy as np, torch, torch.nn.functional as F
    from yolov5_core import interpolate_bilinear
    from tests.yolov5.test_core_loader import SHAPES
    cap = torch.backends.cpu.get_cpu_capability()
    rng = np.random.default_rng(5); bad = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for shape, f in SHAPES:
            x = (rng.standard_normal(shape) * 100).astype(np.float32)
            t = F.interpolate(torch.from_numpy(x), scale_factor=f, mode="bilinear", align_corners=False).numpy()
            if interpolate_bilinear(x, f, fma=False, num_threads=threads).tobytes() != t.tobytes():
                bad.append([threads, list(shape), f])
    print(json.dumps({"cap": cap, "bad": bad}))
    """
    out = run_json(code, env={"ATEN_CPU_CAPABILITY": "default"})
    assert out["cap"] == "DEFAULT"
    assert out["bad"] == []


def test_interpolate_uint8_values_are_exact_in_every_kernel(torch_threads):
    # collate_fn4's inputs: integer-valued, so every kernel and rounding gives torch's values.
    rng = np.random.default_rng(1)
    for threads in (1, 2):
        torch_threads(threads)
        for shape in [(1, 3, 5, 7), (1, 3, 64, 48), (1, 3, 160, 120), (1, 1, 1, 9)]:
            x = rng.integers(0, 256, shape).astype(np.float32)
            expected = torch_bilinear(x, 2.0).tobytes()
            for kernel in ("auto", "generic", "channels_last"):
                for fma in (True, False):
                    assert interpolate_bilinear(x, 2.0, kernel=kernel, fma=fma).tobytes() == expected


def test_interpolate_errors():
    with pytest.raises(TypeError, match="float32 numpy array, got float64"):
        interpolate_bilinear(np.zeros((1, 1, 2, 2)))
    with pytest.raises(ValueError, match=r"4-D \(N, C, H, W\), got shape \(2, 2\)"):
        interpolate_bilinear(np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match="scale_factor must be > 0, got -1"):
        interpolate_bilinear(np.zeros((1, 1, 2, 2), np.float32), -1)
    with pytest.raises(ValueError, match="input size 2 x scale_factor 0.1 gives an empty output"):
        interpolate_bilinear(np.zeros((1, 1, 2, 2), np.float32), 0.1)
    with pytest.raises(ValueError, match="kernel must be one of"):
        interpolate_bilinear(np.zeros((1, 1, 2, 2), np.float32), kernel="avx")


# ------------------------------------------------------------------------------------------------- collate
def random_batch(rng, n: int, hw=(16, 12)):
    batch = []
    for i in range(n):
        img = rng.integers(0, 256, (3, *hw), dtype=np.uint8)
        labels = np.zeros((int(rng.integers(0, 4)), 6), np.float32)
        labels[:, 1:] = rng.random((len(labels), 5), dtype=np.float32)
        shapes = None if i % 2 else ((int(rng.integers(50, 90)), 64), ((0.5, 0.5), (0.0, 8.0)))
        batch.append((img, labels, f"im{i}.jpg", shapes))
    return batch


def as_torch(batch):
    return [(torch.from_numpy(im.copy()), torch.from_numpy(lb.copy()), p, s) for im, lb, p, s in batch]


@pytest.mark.parametrize("n", [4, 8, 9])
def test_collate_fns_match_upstream(upstream, n):
    rng = np.random.default_rng(n)
    UpDataset = upstream.dataloaders.LoadImagesAndLabels
    for mine_fn, theirs_fn in ((collate_fn, UpDataset.collate_fn), (collate_fn4, UpDataset.collate_fn4)):
        for trial in range(6):  # collate_fn4 draws one python random() per group: both branches get taken
            batch = random_batch(rng, n)
            theirs_in = as_torch(batch)
            random.seed(trial)
            mine = mine_fn(batch)
            state_mine = random.getstate()
            random.seed(trial)
            theirs = theirs_fn(theirs_in)
            assert random.getstate() == state_mine
            assert mine[0].dtype == np.uint8 and mine[1].dtype == np.float32
            assert mine[0].shape == tuple(theirs[0].shape) and mine[0].tobytes() == theirs[0].numpy().tobytes()
            assert mine[1].shape == tuple(theirs[1].shape) and mine[1].tobytes() == theirs[1].numpy().tobytes()
            assert mine[2] == theirs[2] and repr(mine[3]) == repr(theirs[3])
            # the batch position was written into the callers' labels in place, as upstream does
            assert [lb[:, 0].tolist() for _, lb, _, _ in batch] == [lb[:, 0].tolist() for _, lb, _, _ in theirs_in]


def test_collate_fn4_takes_both_branches():
    # One group, eight seeds: the x2 upsample and the 2x2 tile are both taken (two distinct results).
    batch = random_batch(np.random.default_rng(0), 4)
    out = set()
    for seed in range(8):
        random.seed(seed)
        out.add(collate_fn4([(im, lb.copy(), p, s) for im, lb, p, s in batch])[0].tobytes())
    assert len(out) == 2


def test_collate_errors():
    with pytest.raises(ValueError, match=r"collate_fn: sample 1 must be \(img, labels, path, shapes\), got tuple"):
        collate_fn([(np.zeros((3, 2, 2)), np.zeros((0, 6)), "a", None), (np.zeros((3, 2, 2)),)])
    with pytest.raises(ValueError, match=r"images must have one shape to stack, got \[\(3, 2, 2\), \(3, 4, 2\)\]"):
        collate_fn(
            [(np.zeros((3, 2, 2)), np.zeros((0, 6)), "a", None), (np.zeros((3, 4, 2)), np.zeros((0, 6)), "b", None)]
        )


# ------------------------------------------------------------------------------------------------- recipe
def test_loader_recipe_is_upstreams_formula():
    # upstream: bs = min(bs, len); nw = min(cpus // max(nd, 1), bs if bs > 1 else 0, workers); seed base + seed + RANK
    r = loader_recipe(100, 16, workers=8, shuffle=True, seed=3, cpu_count=4, environ={})
    got = (r.batch_size, r.num_workers, r.shuffle, r.distributed, r.infinite, r.quad)
    assert got == (16, 4, True, False, True, False)
    assert r.generator_seed == 6148914691236517205 + 3 - 1 == GENERATOR_SEED_BASE + 2
    assert loader_recipe(5, 16, workers=8, cpu_count=64, environ={}).batch_size == 5
    assert loader_recipe(5, 1, workers=8, cpu_count=64, environ={}).num_workers == 0  # batch 1: no workers
    assert loader_recipe(100, 16, workers=8, cpu_count=16, devices=4, environ={}).num_workers == 4
    assert loader_recipe(100, 16, workers=2, cpu_count=16, environ={}).num_workers == 2
    d = loader_recipe(100, 16, rank=1, shuffle=True, image_weights=True, quad=True, environ={"RANK": "1"})
    assert (d.distributed, d.sampler_shuffle, d.shuffle, d.infinite, d.quad) == (True, True, False, False, True)
    assert d.generator_seed == 6148914691236517205 + 1
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        loader_recipe(10, 0)
    with pytest.raises(ValueError, match="workers must be an int >= 0, got -1"):
        loader_recipe(10, 4, workers=-1)
    with pytest.raises(ValueError, match="RANK must be an integer, got 'x'"):
        loader_recipe(10, 4, environ={"RANK": "x"})


def test_rect_turns_shuffle_off_with_upstreams_warning():
    with pytest.warns(UserWarning, match="--rect is incompatible with DataLoader shuffle, setting shuffle=False"):
        assert yolov5_core.rect_shuffle(True, True) is False
    assert yolov5_core.rect_shuffle(False, True) is True


def test_seed_worker_from_matches_upstreams_seed_worker(upstream):
    # upstream's seed_worker reads torch.initial_seed(); in a worker that is base_seed + worker_id.
    for seed in (0, 7, 2**32 + 5, 2**63 - 1):
        torch.manual_seed(seed)
        upstream.dataloaders.seed_worker(0)
        theirs = random.random(), np.random.random()
        yolov5_core.seed_worker_from(seed)
        assert (random.random(), np.random.random()) == theirs


# ------------------------------------------------------------------------------------------------- albumentations
def test_albumentations_with_transform_none_is_off_and_draws_nothing(upstream):
    im = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    labels = np.array([[1, 0.5, 0.5, 0.2, 0.2]])
    for aug in (upstream.augmentations.Albumentations(size=32), Albumentations(size=32)):
        aug.transform = None  # upstream's own object has it None already under albumentations 2.x
        random.seed(0)
        state = random.getstate()
        out_im, out_labels = aug(im, labels)
        assert out_im is im and out_labels is labels
        assert random.getstate() == state, f"{type(aug).__module__} drew from python's random stream"


def test_dataset_with_upstreams_disabled_albumentations_equals_off(upstream, synthetic_dataset, tmp_path):
    from yolov5_pt import LoadImagesAndLabels

    path = str(synthetic_dataset.copy_to(tmp_path / "ds").images)
    hyp = yolov5_core.load_hyp("scratch-low")
    up_aug = upstream.augmentations.Albumentations(size=64)
    assert up_aug.transform is None  # upstream's 2.x validation failure
    outs = []
    for albumentations in (up_aug, False):
        random.seed(1), np.random.seed(1)
        ds = LoadImagesAndLabels(path, 64, augment=True, hyp=hyp, albumentations=albumentations)
        outs.append([(x[0].numpy().tobytes(), x[1].numpy().tobytes()) for x in (ds[i] for i in range(6))])
    assert outs[0] == outs[1]


def test_albumentations_without_the_package_is_off(tmp_path):
    code = """
    import json, random, sys
    sys.modules["albumentations"] = None  # import fails, as when it is not installed
    import numpy as np
    from yolov5_core import Albumentations
    aug = Albumentations(size=32)
    random.seed(0); state = random.getstate()
    im = np.zeros((32, 32, 3), np.uint8); lb = np.zeros((0, 5))
    out = aug(im, lb)
    print(json.dumps({"none": aug.transform is None, "same": out[0] is im, "drew": random.getstate() != state}))
    """
    assert run_json(code) == {"none": True, "same": True, "drew": False}
