"""``yolov5_pt`` against upstream ultralytics YOLOv5 v7.0 (``yolov5==7.0.14``), bit for bit.

Every image byte, every label float (compared as bytes), every path and ``shapes`` entry, and the python/numpy
global RNG states afterwards. Albumentations is off on our side (``albumentations=False``): upstream v7.0 cannot
build it under albumentations 2.x and silently runs without it (checked here and in test_augment.py).
"""

from __future__ import annotations

import pickle
import random
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from yolov5_core import load_hyp
from yolov5_pt import LoadImagesAndLabels, create_dataloader

IMG = 160  # small, so the default run stays fast


# ------------------------------------------------------------------------------------------------- helpers
def hyp_with(**changes) -> dict:
    hyp = load_hyp("scratch-low")
    hyp.update(changes)
    return hyp


GEOMETRY: dict[str, Any] = dict(degrees=10.0, shear=2.0, perspective=0.0005, translate=0.2, scale=0.9, flipud=0.5)
CASES = {
    "mosaic": hyp_with(),
    "mosaic-mixup": hyp_with(mixup=0.5),
    "mosaic-mixup-geometry": hyp_with(mixup=0.5, **GEOMETRY),
    "no-mosaic-geometry": hyp_with(mosaic=0.0, **GEOMETRY),
    "half-mosaic-mixup": hyp_with(mosaic=0.5, mixup=0.5, degrees=3.0, flipud=0.2),
}


def rng_states():
    np_state = np.random.get_state()
    return random.getstate(), np_state[1].tobytes(), np_state[2]  # type: ignore[index]  # the legacy tuple (numpy's stub also allows a dict)


def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def same_tensor(a, b) -> bool:
    return (
        type(a) is type(b) and a.dtype == b.dtype and a.shape == b.shape and a.numpy().tobytes() == b.numpy().tobytes()
    )


def assert_same_sample(mine, theirs, where: str) -> None:
    assert len(mine) == len(theirs) == 4, where
    assert same_tensor(mine[0], theirs[0]), f"{where}: image differs"
    assert same_tensor(mine[1], theirs[1]), f"{where}: labels differ:\n{mine[1]}\n{theirs[1]}"
    assert mine[2] == theirs[2], f"{where}: path {mine[2]} != {theirs[2]}"
    assert repr(mine[3]) == repr(theirs[3]), f"{where}: shapes {mine[3]!r} != {theirs[3]!r}"


def assert_same_batches(mine: list, theirs: list, where: str) -> None:
    assert len(mine) == len(theirs), f"{where}: {len(mine)} batches != {len(theirs)}"
    for k, (a, b) in enumerate(zip(mine, theirs, strict=True)):
        assert_same_sample(a, b, f"{where} batch {k}")


def assert_same_dataset_attributes(mine, theirs) -> None:
    assert mine.im_files == theirs.im_files and mine.label_files == theirs.label_files
    assert mine.n == theirs.n and list(mine.indices) == list(theirs.indices)
    assert same_tensor(torch.from_numpy(mine.shapes), torch.from_numpy(theirs.shapes))
    assert (mine.batch == theirs.batch).all()
    assert len(mine.labels) == len(theirs.labels)
    pairs = zip(mine.labels, theirs.labels, strict=True)
    assert all(a.tobytes() == b.tobytes() and a.shape == b.shape for a, b in pairs)
    assert [len(s) for s in mine.segments] == [len(s) for s in theirs.segments]
    assert mine.rect == theirs.rect and mine.mosaic == theirs.mosaic and mine.mosaic_border == theirs.mosaic_border
    if theirs.rect:
        assert (mine.batch_shapes == theirs.batch_shapes).all()
    assert [f.as_posix() for f in mine.npy_files] == [f.as_posix() for f in theirs.npy_files]


def both_datasets(upstream, seed: int, path: str, order=None, passes: int = 1, **kwargs):
    """Build each side after the same global seeding, read ``order`` ``passes`` times; return outputs + states."""
    results = []
    for make in (
        lambda: upstream.dataloaders.LoadImagesAndLabels(path, **kwargs),
        lambda: LoadImagesAndLabels(path, albumentations=False, **kwargs),
    ):
        seed_all(seed)
        ds = make()
        idx = range(len(ds)) if order is None else order
        out = [ds[i] for _ in range(passes) for i in idx]
        results.append((ds, out, rng_states()))
    (theirs, out_t, st_t), (mine, out_m, st_m) = results
    return mine, theirs, out_m, out_t, st_m, st_t


def check_both_datasets(upstream, seed, path, **kwargs):
    mine, theirs, out_m, out_t, st_m, st_t = both_datasets(upstream, seed, path, **kwargs)
    assert_same_dataset_attributes(mine, theirs)
    for k, (a, b) in enumerate(zip(out_m, out_t, strict=True)):
        assert_same_sample(a, b, f"seed {seed} item {k}")
    assert len(out_m) == len(out_t) > 0
    assert st_m == st_t, "different numbers of random draws"
    return mine, theirs, out_m


def both_loaders(upstream, global_seed: int, path: str, epochs: int = 2, **kwargs):
    """Each side's own create_dataloader after the same global seeding; ``epochs`` passes each; + states."""
    results = []
    for make in (
        lambda: upstream.dataloaders.create_dataloader(path, **kwargs),
        lambda: create_dataloader(path, albumentations=False, **kwargs),
    ):
        seed_all(global_seed)
        loader, ds = make()
        out = []
        for _ in range(epochs):
            out += list(loader)
        results.append((loader, out, rng_states()))
    return results[1], results[0]


def write_polygon_labels(labels_dir: Path) -> int:
    """Rewrite each box label as an 8-point polygon inside the box (upstream then keeps it as a segment)."""
    n = 0
    for f in sorted(labels_dir.glob("*.txt")):
        rows = [r.split() for r in f.read_text().splitlines() if r.strip()]
        out = []
        for cls, *xywh in rows:
            x, y, w, h = map(float, xywh)
            ang = np.arange(8) * np.pi / 4 + np.pi / 8
            pts = np.stack([x + w / 2 * np.cos(ang), y + h / 2 * np.sin(ang)], 1).clip(0, 1)
            out.append(" ".join([cls] + [f"{v:.6f}" for v in pts.ravel()]))
            n += 1
        f.write_text("\n".join(out) + ("\n" if out else ""))
    return n


# ------------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def data(synthetic_dataset, tmp_path_factory) -> str:
    return str(synthetic_dataset.copy_to(tmp_path_factory.mktemp("equiv") / "ds").images)


@pytest.fixture(scope="module")
def segment_data(synthetic_dataset, tmp_path_factory) -> str:
    ds = synthetic_dataset.copy_to(tmp_path_factory.mktemp("equiv_seg") / "ds")
    assert write_polygon_labels(ds.labels) > 0
    return str(ds.images)


# ------------------------------------------------------------------------------------------------- datasets
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("case", sorted(CASES))
def test_getitem_matches_upstream(upstream, data, case, seed):
    # Two passes: the second pass reads the same indices in a different RNG state (like a second epoch).
    mine, _, _ = check_both_datasets(
        upstream, seed, data, img_size=IMG, batch_size=4, augment=True, hyp=CASES[case], passes=2
    )
    assert mine.mosaic


@pytest.mark.parametrize(
    "component",
    [
        dict(mixup=0.0),
        dict(degrees=0.0),
        dict(shear=0.0),
        dict(perspective=0.0),
        dict(flipud=0.0),
        dict(fliplr=0.0),
        dict(hsv_h=0.0, hsv_s=0.0, hsv_v=0.0),
        dict(mosaic=0.0),
    ],
    ids=lambda c: ",".join(c),
)
def test_each_augmentation_really_runs(data, component):
    # Guards the equivalence tests from passing vacuously: turning any one component off changes the output.
    def outputs(hyp):
        seed_all(0)
        ds = LoadImagesAndLabels(data, img_size=IMG, augment=True, hyp=hyp, albumentations=False)
        return [ds[i] for i in range(len(ds))]

    full = CASES["mosaic-mixup-geometry"]
    a, b = outputs(full), outputs({**full, **component})
    assert any(not torch.equal(x[0], y[0]) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("augment", [True, False])
@pytest.mark.parametrize("seed", [0, 3])
def test_rect_matches_upstream(upstream, data, augment, seed):
    hyp = CASES["mosaic-mixup-geometry"]
    mine, theirs, out = check_both_datasets(
        upstream, seed, data, img_size=IMG, batch_size=4, augment=augment, hyp=hyp, rect=True, stride=32, pad=0.5
    )
    assert mine.rect and not mine.mosaic
    assert all(x[3] is not None for x in out)  # letterbox path: shapes reported
    assert len({tuple(x[0].shape) for x in out}) > 1  # several batch shapes


def test_validation_path_matches_upstream(upstream, data):
    # augment=False: INTER_AREA downscaling, letterbox without scale-up, no random draws at all.
    mine, _, out = check_both_datasets(upstream, 0, data, img_size=IMG, batch_size=4, augment=False)
    assert not mine.mosaic and all(x[3] is not None for x in out)


@pytest.mark.parametrize("cache", ["ram", "disk"])
def test_image_cache_matches_upstream(upstream, synthetic_dataset, tmp_path, cache):
    path = str(synthetic_dataset.copy_to(tmp_path / "ds").images)
    # 'ram' draws min(n, 30) random.choice at construction on both sides (the states after are compared).
    mine, theirs, _ = check_both_datasets(
        upstream, 5, path, img_size=IMG, batch_size=4, augment=True, hyp=CASES["mosaic-mixup"], cache_images=cache
    )
    if cache == "ram":
        assert all(im is not None for im in mine.ims)
        assert all(a.tobytes() == b.tobytes() for a, b in zip(mine.ims, theirs.ims, strict=True))
        assert mine.im_hw0 == theirs.im_hw0 and mine.im_hw == theirs.im_hw
    else:
        assert all(f.exists() for f in mine.npy_files)


def test_segments_and_copy_paste_match_upstream(upstream, segment_data):
    hyp = hyp_with(copy_paste=0.5, mixup=0.5, degrees=5.0, perspective=0.0003)
    mine, _, out = check_both_datasets(upstream, 2, segment_data, img_size=IMG, batch_size=4, augment=True, hyp=hyp)
    assert sum(len(s) for s in mine.segments) > 0  # the polygon labels were kept as segments


def test_single_cls_min_items_image_weights_match_upstream(upstream, data):
    order = [3, 0, 0, 7, 2]
    for kwargs in (dict(single_cls=True), dict(min_items=3)):
        mine, theirs, _ = check_both_datasets(
            upstream, 4, data, img_size=IMG, augment=True, hyp=CASES["mosaic"], order=order, **kwargs
        )
    assert all(
        (lb[:, 0] == 0).all()
        for lb in check_both_datasets(upstream, 4, data, img_size=IMG, augment=False, single_cls=True)[0].labels
    )
    # image_weights: train.py replaces dataset.indices with weighted draws; both sides then index through them.
    weighted = [5, 5, 1, 9, 0, 0, 12, 3]
    seed_all(6)
    theirs = upstream.dataloaders.LoadImagesAndLabels(
        data, IMG, augment=True, hyp=CASES["mosaic-mixup"], image_weights=True, rect=True
    )
    theirs.indices = weighted
    out_t = [theirs[i] for i in range(len(weighted))]
    seed_all(6)
    mine = LoadImagesAndLabels(
        data, IMG, augment=True, hyp=CASES["mosaic-mixup"], image_weights=True, rect=True, albumentations=False
    )
    mine.indices = weighted
    out_m = [mine[i] for i in range(len(weighted))]
    assert not mine.rect and mine.mosaic
    for k, (a, b) in enumerate(zip(out_m, out_t, strict=True)):
        assert_same_sample(a, b, f"image_weights item {k}")


def test_upstream_dataset_trains_without_albumentations_under_2x(upstream, data):
    # Why our side runs with albumentations=False here: upstream's stage is silently gone under albumentations 2.x.
    theirs = upstream.dataloaders.LoadImagesAndLabels(data, IMG, augment=True, hyp=CASES["mosaic"])
    assert theirs.albumentations is not None and theirs.albumentations.transform is None
    assert LoadImagesAndLabels(data, IMG, augment=True, hyp=CASES["mosaic"]).albumentations.transform is not None


# ------------------------------------------------------------------------------------------------- loaders
@pytest.mark.parametrize("quad", [False, True], ids=["collate_fn", "collate_fn4"])
@pytest.mark.parametrize("workers", [0, 2])
def test_create_dataloader_matches_upstream(upstream, data, workers, quad):
    (loader_m, out_m, st_m), (loader_t, out_t, st_t) = both_loaders(
        upstream,
        7,
        data,
        imgsz=IMG,
        batch_size=8,
        stride=32,
        hyp=CASES["mosaic-mixup-geometry"],
        augment=True,
        workers=workers,
        shuffle=True,
        quad=quad,
        seed=3,
    )
    assert type(loader_m).__name__ == type(loader_t).__name__ == "InfiniteDataLoader"
    assert loader_m.num_workers == loader_t.num_workers == workers
    assert_same_batches(out_m, out_t, f"workers={workers} quad={quad}")
    assert len(out_m) == 4  # 2 epochs x 2 batches of 8
    assert st_m == st_t
    if quad:
        assert out_m[0][0].shape == (2, 3, 2 * IMG, 2 * IMG)
    # shuffled, and differently in each epoch
    assert [b[2] for b in out_m[:2]] != [b[2] for b in out_m[2:]]


@pytest.mark.parametrize("workers", [0, 2])
def test_create_dataloader_rect_cache_matches_upstream(upstream, data, workers):
    # rect forces shuffle off (a warning); cache='ram' draws at construction (shifts the stream with 0 workers).
    with pytest.warns(UserWarning, match="rect is incompatible with DataLoader shuffle"):
        (_, out_m, st_m), (_, out_t, st_t) = both_loaders(
            upstream,
            8,
            data,
            imgsz=IMG,
            batch_size=4,
            stride=32,
            hyp=CASES["mosaic-mixup-geometry"],
            augment=True,
            workers=workers,
            shuffle=True,
            rect=True,
            cache="ram",
            pad=0.0,
            seed=1,
        )
    assert_same_batches(out_m, out_t, f"rect workers={workers}")
    assert st_m == st_t


def test_create_dataloader_image_weights_matches_upstream(upstream, data):
    # image_weights → a plain DataLoader (no persistent iterator); each epoch draws a fresh base seed.
    (loader_m, out_m, st_m), (loader_t, out_t, st_t) = both_loaders(
        upstream,
        9,
        data,
        imgsz=IMG,
        batch_size=4,
        stride=32,
        hyp=CASES["mosaic"],
        augment=True,
        workers=2,
        shuffle=True,
        image_weights=True,
        seed=0,
    )
    assert type(loader_m) is torch.utils.data.DataLoader and type(loader_t) is torch.utils.data.DataLoader
    assert_same_batches(out_m, out_t, "image_weights")


_DDP_SCRIPT = textwrap.dedent(
    """
    import os, pickle, random, sys
    import numpy as np, torch, torch.distributed as dist
    rank = int(os.environ["RANK"])
    dist.init_process_group("gloo", init_method="file://" + sys.argv[1], rank=rank, world_size=2)
    from yolov5_core import load_hyp
    from yolov5_pt import create_dataloader
    from yolov5_pt.upstream import load_upstream
    up = load_upstream()
    hyp = load_hyp("scratch-low"); hyp.update(mixup=0.5, degrees=5.0)
    res = {}
    for name, fn, kw in (("upstream", up.dataloaders.create_dataloader, {}),
                         ("ours", create_dataloader, {"albumentations": False})):
        random.seed(0); np.random.seed(0); torch.manual_seed(0)
        loader, ds = fn(sys.argv[2], 128, 4, 32, hyp=hyp, augment=True, workers=int(sys.argv[3]), shuffle=True,
                        rank=rank, seed=1, **kw)
        out = []
        for epoch in range(2):
            loader.sampler.set_epoch(epoch)
            out += [(b[0].numpy().tobytes(), b[1].numpy().tobytes(), b[2]) for b in loader]
        res[name] = out
    with open(sys.argv[4] + f"/rank{rank}.pkl", "wb") as f:
        pickle.dump(res, f)
    dist.destroy_process_group()
    """
)


@pytest.mark.parametrize("workers", [0])
def test_distributed_sampler_two_ranks_matches_upstream(upstream, data, tmp_path, workers):
    from tests._helpers.subproc import run_ranks

    script = tmp_path / "ddp.py"
    script.write_text(_DDP_SCRIPT)
    run_ranks(script, [str(tmp_path / "store"), data, str(workers), str(tmp_path)])
    ranks = [pickle.loads((tmp_path / f"rank{r}.pkl").read_bytes()) for r in (0, 1)]
    for r, res in enumerate(ranks):
        assert res["ours"] == res["upstream"], f"rank {r} differs from upstream"
    # The two ranks split each epoch's 16 images between them.
    for epoch in range(2):
        paths = [p for r in ranks for batch in r["ours"][2 * epoch : 2 * epoch + 2] for p in batch[2]]
        assert len(paths) == len(set(paths)) == 16


# ------------------------------------------------------------------------------------------------- slow sweeps
@pytest.mark.slow
@pytest.mark.parametrize("img_size", [128, 150, 320])
@pytest.mark.parametrize("hyp_name", ["scratch-low", "scratch-med", "scratch-high"])
@pytest.mark.parametrize("seed", range(5))
def test_sweep_getitem_matches_upstream(upstream, data, segment_data, img_size, hyp_name, seed):
    hyp = load_hyp(hyp_name)
    hyp.update(degrees=float(seed * 4), shear=float(seed), perspective=0.0002 * (seed % 3), flipud=0.1 * seed)
    for path in (data, segment_data):
        check_both_datasets(upstream, seed, path, img_size=img_size, batch_size=4, augment=True, hyp=hyp, passes=2)
        check_both_datasets(
            upstream, seed, path, img_size=img_size, batch_size=3, augment=True, hyp=hyp, rect=True, pad=0.5
        )


@pytest.mark.slow
@pytest.mark.parametrize("cache", [False, "ram"])
@pytest.mark.parametrize("quad", [False, True])
@pytest.mark.parametrize("workers", [0, 1, 2])
@pytest.mark.parametrize("seed", [0, 11])
def test_sweep_loaders_match_upstream(upstream, data, cache, quad, workers, seed):
    (_, out_m, st_m), (_, out_t, st_t) = both_loaders(
        upstream,
        seed,
        data,
        epochs=3,
        imgsz=IMG,
        batch_size=4,
        stride=32,
        hyp=load_hyp("scratch-high"),
        augment=True,
        workers=workers,
        shuffle=True,
        quad=quad,
        cache=cache,
        seed=seed,
    )
    assert_same_batches(out_m, out_t, f"seed {seed} workers {workers} quad {quad} cache {cache}")
    assert st_m == st_t


@pytest.mark.slow
def test_distributed_sampler_two_ranks_with_workers_matches_upstream(upstream, data, tmp_path):
    test_distributed_sampler_two_ranks_matches_upstream(upstream, data, tmp_path, workers=2)
