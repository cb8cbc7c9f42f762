"""``yolov5_ms.create_dataloader`` against ``yolov5_pt.create_dataloader`` through torch's real DataLoader, bit for bit.

``yolov5_pt`` is upstream YOLOv5 v7.0's pipeline (checked against upstream itself in
test_equivalence_upstream.py). Here, for the same global seeds and ``seed=``: every image byte, label float, path
and ``shapes`` entry of every batch, over several epochs, for workers 0-4 (``os.cpu_count`` is raised so that
upstream's formula really gives 3 and 4 workers on a small machine), one MindSpore iterator over all epochs and
one per epoch, rect and quad, albumentations on, image caches, image weights (indices rewritten between epochs, as
train.py does) and DistributedSampler ranks. "Three pipelines, one answer": ``yolov5_pt``, ``yolov5_ms`` and
``adapters.to_mindspore`` of ``yolov5_pt``'s dataset and loader options (what the demo runs).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import random
import textwrap
from typing import Any

import numpy as np
import pytest
import torch

import adapters
import yolov5_ms
import yolov5_pt
from porting import assert_pipelines_equivalent
from tests._helpers.subproc import run_python
from yolov5_core import GENERATOR_SEED_BASE, load_hyp

IMG = 64  # small images, so the default run stays fast
COLUMNS = list(yolov5_ms.COLUMNS)


def hyp_with(**changes) -> dict:
    hyp = load_hyp("scratch-low")
    hyp.update(changes)
    return hyp


HYP = hyp_with(mixup=0.5, degrees=5.0, flipud=0.3)  # python and numpy draws on every path


def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def torch_epochs(loader, dataset, epochs: int, rewrites=None) -> list:
    """What train.py does each epoch: optionally rewrite ``dataset.indices``, set the sampler's epoch, iterate."""
    out = []
    for epoch in range(epochs):
        if rewrites is not None:
            dataset.indices = rewrites[epoch]
        if isinstance(loader.sampler, torch.utils.data.DistributedSampler):
            loader.sampler.set_epoch(epoch)
        out += list(loader)
    return out


def ms_epochs(pipeline, dataset, epochs: int, *, one_iterator: bool, rewrites=None) -> list:
    """The same loop over the MindSpore pipeline: one iterator for all epochs, or a new one per epoch."""
    out = []
    it = pipeline.create_tuple_iterator(num_epochs=epochs, output_numpy=True) if one_iterator else None
    for epoch in range(epochs):
        if rewrites is not None:
            dataset.indices = rewrites[epoch]
        if not one_iterator:
            it = pipeline.create_tuple_iterator(num_epochs=1, output_numpy=True)
        out += [pipeline.structure.rebuild(row) for row in it]
    return out


def assert_same(actual: list, expected: list, batches: int) -> None:
    assert len(actual) == len(expected) == batches
    assert_pipelines_equivalent(actual, expected, column_names=COLUMNS, progress=False)


def both(path, *, epochs=2, global_seed=0, one_iterator=True, rewrites=None, ms_kwargs=None, **kwargs):
    """Each side's create_dataloader after the same global seeding, ``epochs`` epochs each."""
    seed_all(global_seed)
    pipeline, ds_ms = yolov5_ms.create_dataloader(path, **kwargs, **(ms_kwargs or {}))
    ms = ms_epochs(pipeline, ds_ms, epochs, one_iterator=one_iterator, rewrites=rewrites)
    seed_all(global_seed)
    loader, ds_pt = yolov5_pt.create_dataloader(path, **kwargs)
    pt = torch_epochs(loader, ds_pt, epochs, rewrites)
    return (pipeline, ds_ms, ms), (loader, ds_pt, pt)


@pytest.fixture(scope="module")
def data(synthetic_dataset, tmp_path_factory) -> str:
    # 12 of the session's 16 images would need a list file; all 16 with batch 4 -> 4 batches per epoch
    return str(synthetic_dataset.copy_to(tmp_path_factory.mktemp("ms") / "ds").images)


@pytest.fixture
def many_cpus(monkeypatch):
    # upstream's nw = min(os.cpu_count() // devices, batch, workers): let workers=3, 4 really mean 3, 4 here
    monkeypatch.setattr(os, "cpu_count", lambda: 8)


BASE: dict[str, Any] = dict(imgsz=IMG, batch_size=4, stride=32, hyp=HYP, augment=True, shuffle=True, seed=3)


# ------------------------------------------------------------------------------------------------- three pipelines
@pytest.mark.parametrize("one_iterator", [True, False], ids=["one-iterator", "iterator-per-epoch"])
@pytest.mark.parametrize("workers", [0, 1, 2, 3, 4])
def test_three_pipelines_one_answer(data, many_cpus, workers, one_iterator):
    (pipeline, _, ms), (loader, ds_pt, pt) = both(data, epochs=2, workers=workers, one_iterator=one_iterator, **BASE)
    assert loader.num_workers == workers and type(loader).__name__ == "InfiniteDataLoader"
    assert_same(ms, pt, 8)
    assert [b[2] for b in pt[:4]] != [b[2] for b in pt[4:]]  # shuffled differently in each epoch

    # the demo's pipeline: adapters.to_mindspore over yolov5_pt's dataset with its loader's options
    seed_all(0)
    loader3, ds3 = yolov5_pt.create_dataloader(data, workers=workers, **BASE)
    generator = torch.Generator().manual_seed(GENERATOR_SEED_BASE + BASE["seed"] - 1)
    third = adapters.to_mindspore(
        ds3,
        batch_size=loader3.batch_size,
        shuffle=True,
        num_workers=loader3.num_workers,
        collate_fn=yolov5_pt.collate_fn,
        worker_init_fn=yolov5_pt.seed_worker,
        generator=generator,
        infinite=True,
        column_names=COLUMNS,
    )
    del loader3
    assert_same(ms_epochs(third, ds3, 2, one_iterator=one_iterator), pt, 8)


HYPS = {
    "mosaic-half": hyp_with(mosaic=0.5, mixup=0.5),  # shapes mixes None (mosaic samples) and tuples in one batch
    "no-mosaic": hyp_with(mosaic=0.0, degrees=5.0),  # every sample letterboxed: shapes all tuples
    "mixup-copy-paste": hyp_with(mixup=1.0, copy_paste=0.5, scale=0.9),
    "scratch-high": load_hyp("scratch-high"),
}


@pytest.mark.parametrize("batch_map", [False, True], ids=["to_mindspore", "batch_map"])
@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("hyp", sorted(HYPS))
def test_hyps_that_vary_the_batch_structure_match(data, hyp, workers, batch_map):
    (_, _, ms), (_, _, pt) = both(
        data, epochs=2, workers=workers, ms_kwargs={"batch_map": batch_map}, **{**BASE, "hyp": HYPS[hyp]}
    )
    assert_same(ms, pt, 8)
    if hyp == "mosaic-half":  # both kinds of shapes in the stream
        kinds = {type(s).__name__ for b in pt for s in b[3]}
        assert kinds == {"NoneType", "tuple"}


def test_pipeline_columns_and_dataset_attributes(data):
    seed_all(0)
    pipeline, ds = yolov5_ms.create_dataloader(data, workers=0, **BASE)
    assert pipeline.get_col_names() == ["img", "labels", "paths", "shapes"]
    assert pipeline.get_dataset_size() == 4
    img, labels, paths, shapes = pipeline.structure.rebuild(next(pipeline.create_tuple_iterator(output_numpy=True)))
    assert img.dtype == np.uint8 and img.shape == (4, 3, IMG, IMG)
    assert labels.dtype == np.float32 and labels.ndim == 2 and labels.shape[1] == 6
    assert sorted(set(labels[:, 0].tolist())) <= [0.0, 1.0, 2.0, 3.0]
    assert len(paths) == 4 and all(p.endswith(".jpg") for p in paths) and shapes == (None,) * 4  # mosaic
    assert isinstance(ds, yolov5_ms.LoadImagesAndLabels) and ds.mosaic and list(ds.indices) == list(range(16))
    assert len(ds.labels) == len(ds.shapes) == ds.n == 16


# ------------------------------------------------------------------------------------------------- modes
@pytest.mark.parametrize("rect, quad, workers", [(True, False, 0), (False, True, 2), (True, True, 1)])
def test_rect_and_quad_match(data, rect, quad, workers):
    kwargs = {**BASE, "batch_size": 8 if quad else 4, "shuffle": not rect}
    (_, ds_ms, ms), (_, _, pt) = both(data, epochs=2, workers=workers, rect=rect, quad=quad, pad=0.5, **kwargs)
    assert_same(ms, pt, 4 if quad else 8)
    if quad and not rect:
        assert ms[0][0].shape == (2, 3, 2 * IMG, 2 * IMG)
    if rect:
        assert not ds_ms.mosaic and ms[0][3][0] is not None  # letterbox path: shapes reported
    if rect and not quad:
        assert len({b[0].shape for b in ms}) > 1  # several batch shapes


@pytest.mark.parametrize("workers", [0, 2])
def test_albumentations_on_match(data, workers):
    import albumentations as A

    from yolov5_core import Albumentations

    # applied often, so that it shows (upstream's list has p=0.01 each); seeded from each worker's python stream
    aug = Albumentations(transforms=[A.Blur(p=0.5), A.ToGray(p=0.3), A.CLAHE(p=0.3)])
    seed_all(1)
    pipeline, ds_ms = yolov5_ms.create_dataloader(data, workers=workers, albumentations=aug, **BASE)
    ms = ms_epochs(pipeline, ds_ms, 2, one_iterator=True)
    seed_all(1)
    loader, ds_pt = yolov5_pt.create_dataloader(data, workers=workers, albumentations=aug, **BASE)
    pt = torch_epochs(loader, ds_pt, 2)
    assert_same(ms, pt, 8)
    seed_all(1)
    loader_off, ds_off = yolov5_pt.create_dataloader(data, workers=workers, albumentations=False, **BASE)
    torch_off = torch_epochs(loader_off, ds_off, 2)
    assert any(a[0].tobytes() != b[0].numpy().tobytes() for a, b in zip(ms, torch_off, strict=True))


@pytest.mark.parametrize("cache, workers", [("ram", 0), ("disk", 2), ("ram", 2)])
def test_image_cache_matches(synthetic_dataset, tmp_path, cache, workers):
    # 'ram' draws min(n, 30) random.choice at construction on both sides: with 0 workers it shifts the stream.
    path = str(synthetic_dataset.copy_to(tmp_path / "ds").images)
    (_, ds_ms, ms), (_, ds_pt, pt) = both(path, epochs=2, workers=workers, cache=cache, **BASE)
    assert_same(ms, pt, 8)
    if cache == "ram":
        assert all(im is not None for im in ds_ms.ims)
    else:
        assert all(f.exists() for f in ds_ms.npy_files)


# ------------------------------------------------------------------------------------------------- image weights
def weighted_indices(epochs: int, n: int = 16) -> list[list[int]]:
    # train.py: random.choices(range(n), weights=iw, k=n) per epoch; any fixed draws serve (not the code under test)
    rng = np.random.default_rng(42)
    return [rng.integers(0, n, n).tolist() for _ in range(epochs)]


@pytest.mark.parametrize("workers, one_iterator", [(0, False), (0, True), (2, False), (2, True)])
def test_image_weights_rewrites_between_epochs_match(data, workers, one_iterator):
    # image_weights: a plain DataLoader (fresh workers each epoch) that sees each epoch's rewrite, epoch 0's too
    # (train.py rewrites before every epoch); with 0 workers torch's main process reads every rewrite.
    w = weighted_indices(3)
    (pipeline, ds_ms, ms), (loader, _, pt) = both(
        data, epochs=3, workers=workers, image_weights=True, rewrites=w, one_iterator=one_iterator, **BASE
    )
    assert type(loader) is torch.utils.data.DataLoader
    assert_same(ms, pt, 12)
    assert list(ds_ms.indices) == w[2]
    assert sorted({p for b in pt[8:] for p in b[2]}) != sorted({p for b in pt[:4] for p in b[2]})  # rewrites show
    assert {p for b in pt[:4] for p in b[2]} == {ds_ms.im_files[i] for i in w[0]}  # epoch 0 used w[0]


@pytest.mark.parametrize("one_iterator", [False, True], ids=["iterator-per-epoch", "one-iterator"])
@pytest.mark.parametrize("workers", [0, 2])
def test_infinite_loader_rewrites_reach_only_where_torch_sees_them(data, workers, one_iterator):
    # InfiniteDataLoader: with 0 workers torch's main process reads every rewrite; its persistent workers were
    # forked when the loader was built (upstream starts its iterator in __init__) and never see one, epoch 0's
    # (made after create_dataloader, as train.py does) included.
    w = weighted_indices(3)
    (_, ds_ms, ms), (_, _, pt) = both(data, epochs=3, workers=workers, rewrites=w, one_iterator=one_iterator, **BASE)
    assert_same(ms, pt, 12)
    used = [{p for b in pt[4 * e : 4 * e + 4] for p in b[2]} for e in range(3)]
    read = [set(ds_ms.im_files) if workers else {ds_ms.im_files[i] for i in w[e]} for e in range(3)]
    assert used == read


def test_indices_argument_is_epoch_0s_indices(data):
    seed_all(0)
    pipeline, ds = yolov5_ms.create_dataloader(
        data, workers=2, image_weights=True, indices=lambda d: [d.n - 1] * d.n, **BASE
    )
    assert list(ds.indices) == [15] * 16
    epoch0 = [pipeline.structure.rebuild(r) for r in pipeline.create_tuple_iterator(num_epochs=1, output_numpy=True)]
    assert {p for b in epoch0 for p in b[2]} == {ds.im_files[15]}


# ------------------------------------------------------------------------------------------------- resume
@pytest.mark.parametrize("stop", [(1, 2), (0, 4)], ids=["mid-epoch", "epoch-boundary"])
@pytest.mark.parametrize("workers", [0, 2, 3])
def test_resumed_pipeline_continues_upstreams_uninterrupted_stream(data, many_cpus, workers, stop):
    # train.py --resume: the run stops (state_dict() saved with the checkpoint), a new pipeline resumes from it
    import json

    seed_all(0)
    loader, ds_pt = yolov5_pt.create_dataloader(data, workers=workers, **BASE)
    pt = torch_epochs(loader, ds_pt, 3)
    seed_all(0)
    pipeline, _ = yolov5_ms.create_dataloader(data, workers=workers, **BASE)
    it = pipeline.create_tuple_iterator(num_epochs=3, output_numpy=True)
    first: list = []
    for _ in range(stop[0] + 1):
        for row in it:
            first.append(pipeline.structure.rebuild(row))
            if len(first) == 4 * stop[0] + stop[1]:
                break
    state = json.loads(json.dumps(pipeline.state_dict()))
    pipeline.close()
    seed_all(1)  # another process's streams: the state carries what matters
    resumed, _ = yolov5_ms.create_dataloader(data, workers=workers, state=state, **BASE)
    rest = ms_epochs(resumed, None, 3 - state["epoch"], one_iterator=True)
    resumed.close()
    assert_same(first + rest, pt, 12)


# ------------------------------------------------------------------------------------------------- batch maps
@pytest.mark.parametrize("one_iterator", [True, False], ids=["one-iterator", "iterator-per-epoch"])
@pytest.mark.parametrize("workers", [0, 1, 2, 3, 4])
def test_batch_map_shape_matches(data, many_cpus, workers, one_iterator):
    (pipeline, _, ms), (loader, _, pt) = both(
        data, epochs=2, workers=workers, one_iterator=one_iterator, ms_kwargs={"batch_map": True}, **BASE
    )
    assert loader.num_workers == workers and type(loader).__name__ == "InfiniteDataLoader"
    assert type(pipeline).__name__ == "BatchDataset" and pipeline.get_col_names() == COLUMNS
    assert pipeline.children[0].get_col_names() == list(yolov5_ms.SAMPLE_COLUMNS)  # the samples, then MindSpore's batch
    assert pipeline.get_dataset_size() == 4 and pipeline.python_multiprocessing is False  # collate_fn draws nothing
    assert_same(ms, pt, 8)


@pytest.mark.parametrize("rect, quad, workers", [(True, False, 0), (False, True, 2), (True, True, 1), (False, True, 0)])
def test_batch_map_rect_and_quad_match(data, rect, quad, workers):
    kwargs = {**BASE, "batch_size": 8 if quad else 4, "shuffle": not rect}
    (pipeline, _, ms), (_, _, pt) = both(
        data, epochs=2, workers=workers, rect=rect, quad=quad, pad=0.5, ms_kwargs={"batch_map": True}, **kwargs
    )
    assert_same(ms, pt, 4 if quad else 8)
    # collate_fn4 draws python's random in torch's worker: replayed in MindSpore's processes
    assert pipeline.python_multiprocessing is quad
    if quad and not rect:
        assert ms[0][0].shape == (2, 3, 2 * IMG, 2 * IMG)
    if rect:
        assert ms[0][3][0] is not None  # letterbox path: shapes reported (a packed column of each sample)


@pytest.mark.parametrize("workers, one_iterator", [(0, False), (2, True)])
def test_batch_map_image_weights_rewrites_between_epochs_match(data, workers, one_iterator):
    w = weighted_indices(3)
    (_, ds_ms, ms), (_, _, pt) = both(
        data,
        epochs=3,
        workers=workers,
        image_weights=True,
        rewrites=w,
        one_iterator=one_iterator,
        ms_kwargs={"batch_map": True},
        **BASE,
    )
    assert_same(ms, pt, 12)
    assert {p for b in pt[:4] for p in b[2]} == {ds_ms.im_files[i] for i in w[0]}


# ------------------------------------------------------------------------------------------------- ranks
_RANKS_SCRIPT = textwrap.dedent(
    """
    import hashlib, os, pickle, random, sys
    import numpy as np, torch, torch.distributed as dist
    rank = int(os.environ["RANK"])
    dist.init_process_group("gloo", init_method="file://" + sys.argv[1], rank=rank, world_size=2)
    from yolov5_core import load_hyp
    import yolov5_ms, yolov5_pt
    from tests.yolov5.test_yolov5_ms import HYP, ms_epochs, torch_epochs
    def digest(b):
        return hashlib.sha256(b"".join([np.asarray(b[0]).tobytes(), str(np.asarray(b[0]).shape).encode(),
                                        np.asarray(b[1]).tobytes(), repr(tuple(b[2])).encode(),
                                        repr(tuple(b[3])).encode()])).hexdigest()
    workers = int(sys.argv[3])
    kw = dict(hyp=HYP, augment=True, workers=workers, shuffle=True, rank=rank, seed=1)
    batch_map = sys.argv[5] == "1"
    random.seed(0); np.random.seed(0); torch.manual_seed(0)
    pipeline, ds_ms = yolov5_ms.create_dataloader(sys.argv[2], 64, 4, 32, batch_map=batch_map, **kw)  # WORLD_SIZE/RANK
    ms = [digest(b) for b in ms_epochs(pipeline, ds_ms, 2, one_iterator=rank == 0)]
    random.seed(0); np.random.seed(0); torch.manual_seed(0)
    loader, ds_pt = yolov5_pt.create_dataloader(sys.argv[2], 64, 4, 32, **kw)
    pt = [(digest(b), tuple(b[2])) for b in torch_epochs(loader, ds_pt, 2)]
    with open(sys.argv[4] + f"/rank{rank}.pkl", "wb") as f:
        pickle.dump({"ms": ms, "pt": pt}, f)
    dist.destroy_process_group()
    """
)


def run_two_ranks(tmp_path, data, workers: int, batch_map: bool = False) -> list[dict]:
    from tests._helpers.subproc import run_ranks

    script = tmp_path / "ranks.py"
    script.write_text(_RANKS_SCRIPT)
    run_ranks(script, [str(tmp_path / "store"), data, str(workers), str(tmp_path), str(int(batch_map))])
    return [pickle.loads((tmp_path / f"rank{r}.pkl").read_bytes()) for r in (0, 1)]


@pytest.mark.parametrize("workers, batch_map", [(2, False), (2, True)], ids=["to_mindspore", "batch_map"])
def test_two_ranks_distributed_sampler_match(data, tmp_path, workers, batch_map):
    ranks = run_two_ranks(tmp_path, data, workers, batch_map)
    for r, res in enumerate(ranks):
        assert res["ms"] == [d for d, _ in res["pt"]], f"rank {r}: yolov5_ms differs from yolov5_pt"
    for epoch in range(2):  # the ranks split each epoch's 16 images; epochs differ (set_epoch)
        paths = [p for res in ranks for _, ps in res["pt"][2 * epoch : 2 * epoch + 2] for p in ps]
        assert len(paths) == len(set(paths)) == 16
    assert ranks[0]["pt"][:2] != ranks[0]["pt"][2:]


def test_distributed_context():
    assert yolov5_ms.distributed_context(2, 1) == (2, 1)
    assert yolov5_ms.distributed_context(environ={"WORLD_SIZE": "4", "RANK": "3"}) == (4, 3)
    with pytest.raises(ValueError, match="give both num_shards and shard_id"):
        yolov5_ms.distributed_context(2)
    with pytest.raises(ValueError, match="need 0 <= shard_id < num_shards, got num_shards=2, shard_id=2"):
        yolov5_ms.distributed_context(2, 2)
    with pytest.raises(ValueError, match="rank != -1 needs the world size and this process's global rank"):
        yolov5_ms.distributed_context(environ={})


# ------------------------------------------------------------------------------------------------- no torch
def digests(batches) -> list[str]:
    return [
        hashlib.sha256(
            b"".join(
                [
                    np.asarray(b[0]).tobytes(),
                    np.asarray(b[1]).tobytes(),
                    repr(tuple(b[2])).encode(),
                    repr(tuple(b[3])).encode(),
                ]
            )
        ).hexdigest()
        for b in batches
    ]


@pytest.mark.parametrize("batch_map", [False, True], ids=["to_mindspore", "batch_map"])
def test_yolov5_ms_without_torch_gives_the_same_bytes(data, batch_map):
    # (this module imports torch: the snippet repeats the few lines it needs)
    code = f"""
    import hashlib, json, random, sys
    import numpy as np
    import yolov5_ms
    from yolov5_core import load_hyp
    hyp = load_hyp("scratch-low"); hyp.update({dict(mixup=0.5, degrees=5.0, flipud=0.3)!r})
    random.seed(5); np.random.seed(5)
    pipeline, ds = yolov5_ms.create_dataloader({data!r}, {IMG}, 8, 32, hyp=hyp, augment=True, shuffle=True, seed=3,
                                               workers=2, quad=True, batch_map={batch_map!r})
    it = pipeline.create_tuple_iterator(num_epochs=2, output_numpy=True)
    batches = [pipeline.structure.rebuild(row) for _ in range(2) for row in it]
    out = [hashlib.sha256(b"".join([np.asarray(b[0]).tobytes(), np.asarray(b[1]).tobytes(),
                                    repr(tuple(b[2])).encode(), repr(tuple(b[3])).encode()])).hexdigest()
           for b in batches]
    print(json.dumps({{"torch": "torch" in sys.modules, "digests": out}}))
    """
    import json

    out = json.loads(run_python(code, block_torch=True).strip().splitlines()[-1])
    assert out["torch"] is False
    seed_all(5)
    loader, ds = yolov5_pt.create_dataloader(data, workers=2, **{**BASE, "quad": True, "batch_size": 8})
    assert out["digests"] == digests(torch_epochs(loader, ds, 2))


# ------------------------------------------------------------------------------------------------- slow sweep
@pytest.mark.slow
@pytest.mark.parametrize("cache", [False, "ram"])
@pytest.mark.parametrize("quad", [False, True])
@pytest.mark.parametrize("workers", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("hyp_name", ["scratch-low", "scratch-high"])
def test_sweep_matches(data, many_cpus, cache, quad, workers, hyp_name):
    kwargs = {**BASE, "hyp": load_hyp(hyp_name), "batch_size": 8 if quad else 4}
    for one_iterator in (True, False):
        (_, _, ms), (_, _, pt) = both(
            data,
            epochs=3,
            global_seed=workers,
            workers=workers,
            cache=cache,
            quad=quad,
            one_iterator=one_iterator,
            **kwargs,
        )
        assert_same(ms, pt, 6 if quad else 12)


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 1, 3])
def test_sweep_two_ranks(data, tmp_path, workers):
    test_two_ranks_distributed_sampler_match(data, tmp_path, workers, False)
