"""to_mindspore against torch's real DataLoader on loaders shaped like real projects' (regression tests).

The rule under test: ``to_mindspore(loader)`` snapshots the loader (sampler, generator, python / numpy /
torch global streams) when called, then reproduces exactly what torch's DataLoader yields when iterated from
that same state, for every ``num_workers``; and it never changes the caller's process state (global random
streams, the dataset / sampler objects, ``get_worker_info()``, SIGTERM / SIGINT handlers).

The natural check: ``seed_all(s); loader = make(); ds = to_mindspore(loader)``; then iterate the torch
loader as a training loop would (calling ``set_epoch`` where such a loop does) and iterate ``ds``: equal.
"""

from __future__ import annotations

import gc
import pickle
import random
import signal
import time
import warnings
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import BatchSampler, DataLoader, SubsetRandomSampler, get_worker_info
from torch.utils.data.distributed import DistributedSampler

import adapters
from porting import assert_equivalent
from tests.adapters import _real_world_loaders as rw
from tests.adapters._torch_side import ms_epochs, seed_all, to_numpy_tree

pytestmark = pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning")

NUM_WORKERS = [0, 1, 2, 3, 4]
MULTI_WORKERS = [1, 2, 3, 4]  # options torch only accepts with num_workers > 0
WORKER_IDS = lambda n: f"workers{n}"  # noqa: E731
CHANGE_LOOP_SHAPES = ["iterator_per_epoch", "one_iterator", "tutorial_map", "model_train"]


# --------------------------------------------------------------------------- helpers


def no_hook(loader, epoch):
    pass


def sampler_hook(loader, epoch):
    """What most training loops do: ``loader.sampler.set_epoch(epoch)`` when it exists."""
    if hasattr(loader.sampler, "set_epoch"):
        loader.sampler.set_epoch(epoch)


def batch_sampler_inner_hook(loader, epoch):
    """DETR's loop: ``sampler_train.set_epoch(epoch)`` on the sampler wrapped by the batch sampler."""
    loader.batch_sampler.sampler.set_epoch(epoch)


def batch_sampler_hook(loader, epoch):
    """mmdet / fairseq: ``batch_sampler.set_epoch(epoch)``."""
    loader.batch_sampler.set_epoch(epoch)


def torch_run(loader, epochs, hook=sampler_hook):
    out = []
    for epoch in range(epochs):
        hook(loader, epoch)
        out.append([to_numpy_tree(b) for b in loader])
    return out


def ms_run_per_epoch(ds, epochs):
    """One MindSpore iterator per epoch (``for row in ds.create_tuple_iterator(num_epochs=1)`` each epoch)."""
    out = []
    for _ in range(epochs):
        out.append([ds.structure.rebuild(row) for row in ds.create_tuple_iterator(num_epochs=1, output_numpy=True)])
    return out


def natural(make, epochs, hook=sampler_hook, *, seed=0, **to_ms_kwargs):
    """seed → build loader → to_mindspore(loader) → iterate torch (as a training loop) → iterate MindSpore."""
    seed_all(seed)
    loader = make()
    ds = adapters.to_mindspore(loader, **to_ms_kwargs)
    expected = torch_run(loader, epochs, hook)
    actual = ms_epochs(ds, epochs)
    return actual, expected


def skeleton(obj):
    """Exact container types and lengths, leaf types, array dtypes and shapes (torch tensors as numpy)."""
    if isinstance(obj, torch.Tensor):
        obj = obj.numpy()
    if isinstance(obj, np.ndarray):
        return ("ndarray", str(obj.dtype), obj.shape)
    if isinstance(obj, dict):
        return (type(obj).__name__, tuple(sorted((k, skeleton(v)) for k, v in obj.items())))
    if isinstance(obj, (list, tuple)):
        return (type(obj).__name__, tuple(skeleton(v) for v in obj))
    return type(obj).__name__


def process_state():
    """What the pipeline must leave alone in the caller's process."""
    np_state = np.random.get_state()
    return {
        "random": random.getstate(),
        "numpy": (np_state[0], np_state[1].tobytes(), *np_state[2:]),  # type: ignore[index]  # the legacy tuple
        "torch": torch.get_rng_state().numpy().tobytes(),
        "worker_info": get_worker_info(),
        "SIGTERM": signal.getsignal(signal.SIGTERM),
        "SIGINT": signal.getsignal(signal.SIGINT),
    }


def gen(seed):
    return torch.Generator().manual_seed(seed)


def image_ids(epoch):
    """DETR batches: the image ids of an epoch, in order."""
    return [int(t["image_id"][0]) for batch in epoch for t in batch[2]]


# --------------------------------------------------------------------------- 1. distributed batch samplers


@pytest.mark.parametrize("num_workers", NUM_WORKERS, ids=WORKER_IDS)
@pytest.mark.parametrize("rank", [0, 1], ids=["rank0", "rank1"])
def test_detr_batch_sampler_over_distributed_sampler_reshuffles_each_epoch(rank, num_workers):
    def make():
        ds = rw.CocoLikeDetection(24)
        inner: DistributedSampler = DistributedSampler(ds, num_replicas=2, rank=rank, shuffle=True, seed=17)
        return DataLoader(
            ds,
            batch_sampler=BatchSampler(inner, 2, drop_last=True),
            collate_fn=rw.detr_collate,
            num_workers=num_workers,
        )

    actual, expected = natural(make, 3, batch_sampler_inner_hook)
    assert image_ids(expected[0]) != image_ids(expected[1])  # the torch loop reshuffles
    assert image_ids(actual[0]) != image_ids(actual[1])
    assert [len(e) for e in actual] == [6, 6, 6]
    assert_equivalent(actual, expected, rtol=0, atol=0)


@pytest.mark.parametrize("num_workers", NUM_WORKERS, ids=WORKER_IDS)
@pytest.mark.parametrize("forwarding", [True, False], ids=["set_epoch_forwarded", "inner_set_epoch"])
def test_mmdet_aspect_ratio_grouped_batch_sampler(forwarding, num_workers):
    cls = rw.EpochGroupedBatchSampler if forwarding else rw.GroupedBatchSampler
    hook = batch_sampler_hook if forwarding else batch_sampler_inner_hook

    def make():
        ds = rw.CocoLikeDetection(24)
        inner: DistributedSampler = DistributedSampler(ds, num_replicas=2, rank=1, shuffle=True, seed=3)
        return DataLoader(
            ds,
            batch_sampler=cls(inner, ds.flag, 3, drop_last=False),
            collate_fn=rw.detr_collate,
            num_workers=num_workers,
        )

    actual, expected = natural(make, 3, hook)
    assert image_ids(expected[0]) != image_ids(expected[1])
    assert image_ids(actual[0]) != image_ids(actual[1])
    assert_equivalent(actual, expected, rtol=0, atol=0)


@pytest.mark.slow
@pytest.mark.parametrize("num_workers", NUM_WORKERS, ids=WORKER_IDS)
@pytest.mark.parametrize("replicas_rank", [(2, 0), (2, 1), (3, 0), (3, 2)], ids=["2r0", "2r1", "3r0", "3r2"])
@pytest.mark.parametrize(
    "batch_size, drop_last", [(1, True), (3, True), (3, False), (5, False)], ids=["bs1drop", "bs3drop", "bs3", "bs5"]
)
def test_detr_distributed_batch_sampler_sweep(replicas_rank, batch_size, drop_last, num_workers):
    replicas, rank = replicas_rank

    def make():
        ds = rw.CocoLikeDetection(22)
        inner: DistributedSampler = DistributedSampler(
            ds, num_replicas=replicas, rank=rank, shuffle=True, seed=9, drop_last=False
        )
        return DataLoader(
            ds,
            batch_sampler=BatchSampler(inner, batch_size, drop_last=drop_last),
            collate_fn=rw.detr_collate,
            num_workers=num_workers,
        )

    actual, expected = natural(make, 3, batch_sampler_inner_hook)
    assert_equivalent(actual, expected, rtol=0, atol=0)


# --------------------------------------------------------------------------- 2. worker_init_fn per-worker state


@pytest.mark.parametrize("num_workers", NUM_WORKERS, ids=WORKER_IDS)
def test_worker_init_fn_sets_state_on_the_workers_dataset_copy(num_workers):
    rw.WORKER_INIT_CALLS.clear()

    def make():
        return DataLoader(
            rw.OffsetDataset(24),
            batch_size=3,
            shuffle=True,
            generator=gen(4),
            num_workers=num_workers,
            worker_init_fn=rw.offset_worker_init_fn,
        )

    seed_all(0)
    loader = make()
    ds = adapters.to_mindspore(loader)
    expected = torch_run(loader, 2)
    actual = ms_epochs(ds, 2)
    assert_equivalent(actual, expected, rtol=0, atol=0)
    # the offsets are the workers' own, as torch gives them
    assert sorted({int(v) // 1000 for epoch in actual for b in epoch for v in b["value"]}) == list(
        range(max(num_workers, 1))
    )
    assert loader.dataset.offset == 0
    assert rw.WORKER_INIT_CALLS == []


@pytest.mark.parametrize("num_workers", NUM_WORKERS, ids=WORKER_IDS)
def test_worker_init_fn_shards_an_iterable_range(num_workers):
    rw.WORKER_INIT_CALLS.clear()

    def make():
        return DataLoader(
            rw.RangeIterable(5, 35), batch_size=4, num_workers=num_workers, worker_init_fn=rw.shard_range_worker_init_fn
        )

    actual, expected = natural(make, 2)
    assert sorted(int(i) for b in actual[0] for i in b["i"]) == list(range(5, 35))
    assert_equivalent(actual, expected, rtol=0, atol=0)
    assert rw.WORKER_INIT_CALLS == []


# --------------------------------------------------------------------------- 3. datasets that cannot be copied


def _file_backed(tmp_path):
    rw.write_records(tmp_path / "records.bin", 20)
    return rw.FileBackedDataset(tmp_path / "records.bin", 20)


UNCOPYABLE = {
    "threading_lock": lambda tmp_path: rw.LockedDataset(20),
    "open_file": _file_backed,
    "generator_attribute": lambda tmp_path: rw.GeneratorAttrDataset(20),
    "multiprocessing_value": lambda tmp_path: rw.SharedValueDataset(20),
    "refuses_deepcopy_and_pickle": lambda tmp_path: rw.NoCopyDataset(20),
}


@pytest.mark.parametrize("num_workers", NUM_WORKERS, ids=WORKER_IDS)
@pytest.mark.parametrize("kind", sorted(UNCOPYABLE))
def test_dataset_that_cannot_be_copied_or_pickled(kind, num_workers, tmp_path):
    def make():
        dataset = UNCOPYABLE[kind](tmp_path)
        return DataLoader(dataset, batch_size=3, shuffle=True, generator=gen(2), num_workers=num_workers)

    actual, expected = natural(make, 2)
    assert [len(e) for e in actual] == [7, 7]
    assert_equivalent(actual, expected, rtol=0, atol=0)


@pytest.fixture(scope="module")
def million_paths():
    return rw.PathListDataset(1_000_000)


@pytest.mark.parametrize("num_workers", NUM_WORKERS, ids=WORKER_IDS)
def test_million_path_dataset_is_not_copied(million_paths, num_workers):
    def make():
        sampler = SubsetRandomSampler(range(0, 1_000_000, 40_000), generator=gen(8))
        return DataLoader(million_paths, batch_size=5, sampler=sampler, num_workers=num_workers)

    actual, expected = natural(make, 2)
    assert [len(e) for e in actual] == [5, 5]
    assert_equivalent(actual, expected, rtol=0, atol=0)


# --------------------------------------------------------------------------- 4. state the caller's objects own


@pytest.mark.parametrize("num_workers", NUM_WORKERS, ids=WORKER_IDS)
def test_dataset_owning_its_rng_is_not_advanced_and_matches_torch(num_workers):
    seed_all(0)
    dataset = rw.OwnRngDataset(20)
    loader = DataLoader(dataset, batch_size=4, shuffle=True, generator=gen(1), num_workers=num_workers)
    before = dataset.rng.bit_generator.state
    ds = adapters.to_mindspore(loader)
    assert dataset.rng.bit_generator.state == before
    actual = ms_epochs(ds, 2)
    assert dataset.rng.bit_generator.state == before
    expected = torch_run(loader, 2)
    assert_equivalent(actual, expected, rtol=0, atol=0)


@pytest.mark.parametrize("num_workers", NUM_WORKERS, ids=WORKER_IDS)
def test_caller_dataset_object_is_not_touched(num_workers):
    seed_all(0)
    dataset = rw.CallCountingDataset(20)
    loader = DataLoader(dataset, batch_size=4, shuffle=True, generator=gen(6), num_workers=num_workers)
    ds = adapters.to_mindspore(loader)
    assert dataset.calls == 0
    actual = ms_epochs(ds, 2)
    assert dataset.calls == 0
    expected = torch_run(loader, 2)
    assert_equivalent(actual, expected, rtol=0, atol=0)


@pytest.mark.parametrize("num_workers", NUM_WORKERS, ids=WORKER_IDS)
def test_worker_init_fn_is_never_called_in_the_caller_process(num_workers):
    rw.WORKER_INIT_CALLS.clear()

    def make():
        return DataLoader(
            rw.MosaicLikeDataset(20),
            batch_size=4,
            shuffle=True,
            num_workers=num_workers,
            worker_init_fn=rw.reseed_numpy_worker_init_fn,
        )

    seed_all(0)
    loader = make()
    ds = adapters.to_mindspore(loader)
    assert rw.WORKER_INIT_CALLS == []
    actual = ms_epochs(ds, 2)
    assert rw.WORKER_INIT_CALLS == []
    seed_all(0)
    expected = torch_run(make(), 2)
    assert_equivalent(actual, expected, rtol=0, atol=0)
    assert rw.WORKER_INIT_CALLS == []


# --------------------------------------------------------------------------- 5. the loop draws between batches


@pytest.mark.parametrize("num_workers", NUM_WORKERS, ids=WORKER_IDS)
def test_training_loop_drawing_between_batches_yolov5_multiscale(num_workers):
    seed_all(0)
    loader = DataLoader(rw.MosaicLikeDataset(20), batch_size=2, shuffle=True, num_workers=num_workers)
    ds = adapters.to_mindspore(loader)
    expected = torch_run(loader, 2)  # without the loop's draws

    random.seed(1234)
    np.random.seed(1234)
    actual, draws, infos = [], [], []
    it = ds.create_tuple_iterator(num_epochs=2, output_numpy=True)
    for _ in range(2):
        epoch = []
        for row in it:
            epoch.append(ds.structure.rebuild(row))
            draws.append((rw.multiscale_size(), float(np.random.rand())))
            infos.append(get_worker_info())
        actual.append(epoch)

    random.seed(1234)
    np.random.seed(1234)
    alone = [(rw.multiscale_size(), float(np.random.rand())) for _ in draws]
    assert len(draws) == 20
    assert draws == alone
    assert infos == [None] * 20
    assert_equivalent(actual, expected, rtol=0, atol=0)


# --------------------------------------------------------------------------- 6. persistent workers


@pytest.mark.parametrize("num_workers", NUM_WORKERS, ids=WORKER_IDS)
def test_persistent_workers_with_a_new_iterator_per_epoch(num_workers):
    persistent = num_workers > 0  # torch refuses persistent_workers without workers

    def make():
        return DataLoader(
            rw.CountingAugDataset(20),
            batch_size=3,
            shuffle=True,
            generator=gen(12),
            num_workers=num_workers,
            persistent_workers=persistent,
        )

    # Two loaders, two counters: the pipeline's processes work ahead of the consumer, so its calls
    # are counted from before to_mindspore() to after the last epoch: every sample exactly once, plus,
    # with workers, epoch 0's first batch once more (made in a throwaway copy to learn the columns; with
    # num_workers=0 that copy goes on as epoch 0 and nothing is made twice).
    seed_all(0)
    loader = make()
    ms_loader = make()
    ms_counter = ms_loader.dataset.calls
    ds = adapters.to_mindspore(ms_loader)
    counter = loader.dataset.calls

    expected, torch_counts = [], []
    for _ in range(3):
        start = counter.value
        expected.append([to_numpy_tree(b) for b in loader])
        torch_counts.append(counter.value - start)

    actual = []
    for _ in range(3):
        actual.append([ds.structure.rebuild(r) for r in ds.create_tuple_iterator(num_epochs=1, output_numpy=True)])
    ds.close()

    assert torch_counts == [20, 20, 20]
    assert ms_counter.value == sum(torch_counts) + (3 if num_workers else 0)
    assert_equivalent(actual, expected, rtol=0, atol=0)


# --------------------------------------------------------------------------- 7. loop shapes


def _loop_loader(num_workers, persistent=False):
    ds = rw.MosaicLikeDataset(20)
    sampler: DistributedSampler = DistributedSampler(ds, num_replicas=2, rank=1, shuffle=True, seed=21)
    return DataLoader(ds, batch_size=2, sampler=sampler, num_workers=num_workers, persistent_workers=persistent)


def _ms_map_one_iterator(ds, epochs):
    mapped = ds.map(operations=lambda x: x, input_columns=[ds.get_col_names()[0]])
    it = mapped.create_tuple_iterator(num_epochs=epochs, output_numpy=True)
    return [[ds.structure.rebuild(row) for row in it] for _ in range(epochs)]


def _ms_map_per_epoch(ds, epochs):
    mapped = ds.map(operations=lambda x: x, input_columns=[ds.get_col_names()[0]])
    return [
        [ds.structure.rebuild(row) for row in mapped.create_tuple_iterator(num_epochs=1, output_numpy=True)]
        for _ in range(epochs)
    ]


LOOP_SHAPES = {
    "one_iterator": ms_epochs,
    "iterator_per_epoch": ms_run_per_epoch,
    "map_one_iterator": _ms_map_one_iterator,
    "map_iterator_per_epoch": _ms_map_per_epoch,
}


@pytest.mark.parametrize("num_workers", NUM_WORKERS, ids=WORKER_IDS)
@pytest.mark.parametrize("shape", sorted(LOOP_SHAPES))
def test_loop_shapes(shape, num_workers):
    seed_all(0)
    loader = _loop_loader(num_workers)
    ds = adapters.to_mindspore(loader)
    expected = torch_run(loader, 3)
    actual = LOOP_SHAPES[shape](ds, 3)
    assert [len(e) for e in actual] == [5, 5, 5]
    assert_equivalent(actual, expected, rtol=0, atol=0)


def _partial_then_full(loader_or_ds, epochs, *, is_torch):
    """Epoch 0: break after 2 batches; then full epochs, a new iterator each."""
    out = []
    for epoch in range(epochs):
        if is_torch:
            sampler_hook(loader_or_ds, epoch)
            batches = iter(loader_or_ds)
            convert = to_numpy_tree
        else:
            batches = loader_or_ds.create_tuple_iterator(num_epochs=1, output_numpy=True)
            convert = loader_or_ds.structure.rebuild
        got = []
        for k, b in enumerate(batches):
            got.append(convert(b))
            if epoch == 0 and k == 1:
                break
        del batches
        out.append(got)
    return out


@pytest.mark.parametrize("num_workers", NUM_WORKERS, ids=WORKER_IDS)
def test_partial_epoch_then_a_new_iterator(num_workers):
    seed_all(0)
    loader = _loop_loader(num_workers)
    ds = adapters.to_mindspore(loader)
    expected = _partial_then_full(loader, 3, is_torch=True)
    actual = _partial_then_full(ds, 3, is_torch=False)
    assert [len(e) for e in actual] == [2, 5, 5]
    assert_equivalent(actual, expected, rtol=0, atol=0)


@pytest.mark.slow
@pytest.mark.parametrize("num_workers", MULTI_WORKERS, ids=WORKER_IDS)
def test_partial_epoch_then_a_new_iterator_with_persistent_workers(num_workers):
    """torch's persistent workers finish the prefetched batches of the broken epoch: their streams move on."""
    seed_all(0)
    loader = _loop_loader(num_workers, persistent=True)
    ds = adapters.to_mindspore(loader)
    expected = _partial_then_full(loader, 3, is_torch=True)
    actual = _partial_then_full(ds, 3, is_torch=False)
    assert_equivalent(actual, expected, rtol=0, atol=0)


@pytest.mark.parametrize("num_workers", NUM_WORKERS, ids=WORKER_IDS)
def test_errors_through_map_keep_their_type(num_workers):
    # torch's own workers inherit any garbage cycle of this process and may collect it: an earlier
    # test's failed DataLoader iterator would then run its __del__ (stopping *its* workers) there.
    gc.collect()
    loader = DataLoader(rw.KeyErrorDataset(12, bad=5), batch_size=2, num_workers=num_workers)
    ds = adapters.to_mindspore(loader)
    with pytest.raises(KeyError, match="annotation for sample 5 is missing"):
        list(loader)
    mapped = ds.map(operations=lambda x: x, input_columns=[ds.get_col_names()[0]])
    with pytest.raises(KeyError, match="annotation for sample 5 is missing"):
        list(mapped.create_tuple_iterator(num_epochs=1, output_numpy=True))


# --------------------------------------------------------------------------- 8. the natural check, global streams


@pytest.mark.parametrize("num_workers", NUM_WORKERS, ids=WORKER_IDS)
def test_natural_check_with_global_streams(num_workers):
    seed_all(5)
    loader = DataLoader(rw.MosaicLikeDataset(20), batch_size=3, shuffle=True, num_workers=num_workers)
    before = process_state()
    ds = adapters.to_mindspore(loader)
    assert process_state() == before
    expected = torch_run(loader, 2)
    between = process_state()  # moved by torch, not by the pipeline
    actual = ms_epochs(ds, 2)
    assert process_state() == between
    assert_equivalent(actual, expected, rtol=0, atol=0)


@pytest.mark.parametrize("num_workers", NUM_WORKERS, ids=WORKER_IDS)
def test_process_and_loader_state_untouched(num_workers):
    seed_all(3)
    dataset = rw.MosaicLikeDataset(20)
    sampler: DistributedSampler = DistributedSampler(dataset, num_replicas=2, rank=0, shuffle=True, seed=4)
    loader = DataLoader(dataset, batch_size=2, sampler=sampler, num_workers=num_workers, generator=gen(30))

    def loader_state():
        generator_state = loader.generator.get_state().numpy().tobytes()
        return pickle.dumps(vars(dataset)), sampler.epoch, sampler.seed, generator_state

    before, before_loader = process_state(), loader_state()
    ds = adapters.to_mindspore(loader)
    assert process_state() == before
    assert loader_state() == before_loader
    actual = ms_epochs(ds, 3)
    assert process_state() == before
    assert loader_state() == before_loader
    expected = torch_run(loader, 3)
    assert_equivalent(actual, expected, rtol=0, atol=0)


# --------------------------------------------------------------------------- 9. infinite and bucketing samplers


def _torch_steps(loader, steps, epochs):
    it = iter(loader)
    batches = [to_numpy_tree(next(it)) for _ in range(steps * epochs)]
    del it
    return [batches[e * steps : (e + 1) * steps] for e in range(epochs)]


@pytest.mark.timeout(180)
@pytest.mark.parametrize("num_workers", NUM_WORKERS, ids=WORKER_IDS)
def test_detectron2_training_sampler_with_steps_per_epoch(num_workers):
    def make():
        ds = rw.MosaicLikeDataset(20)
        sampler = rw.TrainingSampler(len(ds), shuffle=True, seed=7, rank=1, world_size=2)
        return DataLoader(ds, batch_sampler=BatchSampler(sampler, 3, drop_last=True), num_workers=num_workers)

    seed_all(0)
    loader = make()
    ds = adapters.to_mindspore(loader, steps_per_epoch=4)
    expected = _torch_steps(loader, 4, 3)
    actual = ms_epochs(ds, 3)
    assert [len(e) for e in actual] == [4, 4, 4]
    assert_equivalent(actual, expected, rtol=0, atol=0)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("num_workers", NUM_WORKERS, ids=WORKER_IDS)
def test_mmengine_infinite_sampler_with_steps_per_epoch(num_workers):
    def make():
        ds = rw.MosaicLikeDataset(20)
        return DataLoader(
            ds, batch_size=2, sampler=rw.InfiniteSampler(ds, seed=3, rank=0, world_size=2), num_workers=num_workers
        )

    seed_all(0)
    loader = make()
    ds = adapters.to_mindspore(loader, steps_per_epoch=5)  # len(loader) would say 10
    expected = _torch_steps(loader, 5, 3)
    actual = ms_epochs(ds, 3)
    assert [len(e) for e in actual] == [5, 5, 5]
    assert_equivalent(actual, expected, rtol=0, atol=0)


@pytest.mark.parametrize("num_workers", NUM_WORKERS, ids=WORKER_IDS)
@pytest.mark.parametrize("sized", [True, False], ids=["len_of_current_epoch", "no_len"])
def test_bucketing_batch_sampler_with_a_varying_number_of_batches(sized, num_workers):
    cls = rw.SizedTokenBudgetBatchSampler if sized else rw.TokenBudgetBatchSampler

    def make():
        return DataLoader(
            rw.TokenDataset(),
            batch_sampler=cls(rw.SEQUENCE_LENGTHS, max_tokens=16, seed=5),
            collate_fn=rw.pad_tensor_collate,
            num_workers=num_workers,
        )

    # MindSpore datasets have one size: a sampler whose batch count changes is declared so.
    actual, expected = natural(make, 3, batch_sampler_hook, fixed_length=False)
    assert [len(e) for e in expected] == [16, 17, 18]
    assert [len(e) for e in actual] == [16, 17, 18]
    assert_equivalent(actual, expected, rtol=0, atol=0)


def _bucketing(num_workers):
    return DataLoader(
        rw.TokenDataset(),
        batch_sampler=rw.SizedTokenBudgetBatchSampler(rw.SEQUENCE_LENGTHS, max_tokens=16, seed=5),
        collate_fn=rw.pad_tensor_collate,
        num_workers=num_workers,
    )


@pytest.mark.parametrize("num_workers", NUM_WORKERS, ids=WORKER_IDS)
@pytest.mark.parametrize("shape", CHANGE_LOOP_SHAPES)
def test_a_varying_batch_count_works_by_default_in_every_loop_shape(shape, num_workers):
    # A custom batch sampler's count may change from epoch to epoch (here 16, 17, 18 with len() saying 16):
    # known at construction (not torch's own sampler), so the dataset declares no size to MindSpore and
    # every epoch works; get_dataset_size() answers len(loader), as torch's len(loader) does.
    seed_all(0)
    loader, ms_loader = _bucketing(num_workers), _bucketing(num_workers)
    ds = adapters.to_mindspore(ms_loader)
    assert ds.get_dataset_size() == len(loader) == 16
    expected = []
    for e in range(3):
        loader.batch_sampler.set_epoch(e)
        expected.append([to_numpy_tree(b) for b in loader])
    actual = _epochs_with_changes(ds, lambda e: None, shape)
    ds.close()
    assert [len(e) for e in expected] == [16, 17, 18]
    assert [len(e) for e in actual] == [16, 17, 18]
    assert_equivalent(actual, expected, rtol=0, atol=0)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_a_varying_batch_count_under_fixed_length_true_is_refused_by_name(num_workers):
    seed_all(0)
    ds = adapters.to_mindspore(_bucketing(num_workers), fixed_length=True)
    with pytest.raises(
        RuntimeError, match=r"yielded (17|more than 16) batches in epoch 1 but len\(sampler\) is 16.*fixed_length=False"
    ):
        ms_epochs(ds, 2)


def test_torchs_own_samplers_declare_their_size_and_others_do_not():
    data: Any = [np.float32(i) for i in range(30)]  # a list: a map-style source (torch's stubs want a Dataset)
    assert adapters.to_mindspore(DataLoader(data, batch_size=4, shuffle=True)).get_dataset_size() == 8
    sized = adapters.to_mindspore(DataLoader(data, batch_size=4, sampler=DistributedSampler(data, 2, 0)))
    assert sized.source.__class__.__name__ == "_SizedSource"
    custom = adapters.to_mindspore(_bucketing(0))
    assert custom.source.__class__.__name__ == "_Source"
    assert custom.map(operations=lambda x: x, input_columns=[custom.get_col_names()[0]]).get_dataset_size() == 16
    with pytest.raises(TypeError, match="may differ in length"):
        custom.project([custom.get_col_names()[0]]).batch(2).get_dataset_size()


@pytest.mark.parametrize("num_workers", NUM_WORKERS, ids=WORKER_IDS)
def test_iterable_whose_first_worker_shard_is_empty(num_workers):
    def make():
        return DataLoader(rw.ShardedRecordsIterable(), batch_size=3, num_workers=num_workers)

    actual, expected = natural(make, 2)
    assert sorted(int(r) for b in actual[0] for r in b["rec"]) == list(range(15))
    assert_equivalent(actual, expected, rtol=0, atol=0)


# --------------------------------------------------------------------------- 10. collates with per-sample lists


COLLATES = {
    "nlp_padded_and_lengths_list": (lambda: rw.TokenDataset(rw.SEQUENCE_LENGTHS[:22]), rw.pad_lengths_collate),
    "detectron2_list_of_dicts": (lambda: rw.RecordDataset(22), rw.trivial_batch_collator),
    "mmengine_pseudo_collate": (lambda: rw.RecordDataset(22), rw.pseudo_collate),
    "detection_targets_per_image": (lambda: rw.FixedSizeDetection(22), rw.detection_collate),
}


@pytest.mark.parametrize("num_workers", NUM_WORKERS, ids=WORKER_IDS)
@pytest.mark.parametrize("collate", sorted(COLLATES))
def test_custom_collate_with_per_sample_lists(collate, num_workers):
    make_dataset, collate_fn = COLLATES[collate]

    def make():
        return DataLoader(
            make_dataset(), batch_size=4, shuffle=True, generator=gen(9), collate_fn=collate_fn, num_workers=num_workers
        )

    actual, expected = natural(make, 2)
    assert [len(e) for e in actual] == [6, 6]  # 22 samples: 5 batches of 4, then one of 2
    assert [[skeleton(b) for b in e] for e in actual] == [[skeleton(b) for b in e] for e in expected]
    assert_equivalent(actual, expected, rtol=0, atol=0)


# --------------------------------------------------------------------------- 11. loader options


@pytest.mark.timeout(60)
@pytest.mark.parametrize("num_workers", MULTI_WORKERS, ids=WORKER_IDS)  # torch only takes timeout > 0 with workers
def test_timeout_raises_instead_of_hanging(num_workers):
    def make():
        dataset = rw.SleepyDataset(12, slow_index=5, seconds=30)
        return DataLoader(dataset, batch_size=2, num_workers=num_workers, timeout=1)

    ds = adapters.to_mindspore(make())
    with pytest.raises(RuntimeError, match="timed out"):
        list(make())
    start = time.monotonic()
    with pytest.raises(RuntimeError, match="timed out"):  # as torch's: "DataLoader timed out after 1 seconds (...)"
        list(ds.create_tuple_iterator(num_epochs=1, output_numpy=True))
    assert time.monotonic() - start < 15


OPTIONS: list[tuple[str, object, int]] = [("pin_memory", True, nw) for nw in NUM_WORKERS]
OPTIONS += [("prefetch_factor", 4, nw) for nw in MULTI_WORKERS]
OPTIONS += [("multiprocessing_context", "spawn", nw) for nw in MULTI_WORKERS]


@pytest.mark.timeout(180)
@pytest.mark.parametrize("option, value, num_workers", OPTIONS, ids=[f"{o}-workers{n}" for o, _, n in OPTIONS])
def test_loader_option_is_honoured_or_warned_about(option, value, num_workers):
    def make():
        return DataLoader(
            rw.MosaicLikeDataset(12),
            batch_size=3,
            shuffle=True,
            generator=gen(2),
            num_workers=num_workers,
            **{option: value},
        )

    seed_all(0)
    loader = make()
    with warnings.catch_warnings(record=True) as at_call:
        warnings.simplefilter("always")
        ds = adapters.to_mindspore(loader)
    expected = torch_run(loader, 2)
    with warnings.catch_warnings(record=True) as at_iteration:
        warnings.simplefilter("always")
        actual = ms_epochs(ds, 2)
    messages = [str(w.message) for w in at_call + at_iteration]
    if option == "prefetch_factor":  # honoured: torch's number of tasks in flight
        assert ds._engine.schedule.max_outstanding == value * num_workers
        assert not any(option in m for m in messages), messages
    else:  # no meaning for a MindSpore pipeline: said, not silently dropped
        assert any(option in m for m in messages), messages
    assert_equivalent(actual, expected, rtol=0, atol=0)


# --------------------------------------------------------------------------- 7b. dataset changed between epochs


class _Reweighted(torch.utils.data.Dataset):
    """YOLOv5 --image-weights style: the training loop rewrites ``indices`` before each epoch."""

    def __init__(self, n=12):
        self.indices = list(range(n))

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        return {"i": self.indices[i], "np": np.random.randint(0, 1000)}


def _reweight(dataset, epoch):
    rng = random.Random(epoch)
    dataset.indices = rng.choices(range(len(dataset.indices)), k=len(dataset.indices))


class _Curriculum(torch.utils.data.Dataset):
    """The loop sets the difficulty before each epoch (``dataset.set_epoch(e)``); samples draw numpy's stream."""

    def __init__(self, n=12):
        self.n, self.scale, self.noise = n, 1, {"p": 0.0}

    def set_epoch(self, epoch):
        self.scale = epoch + 1  # reassigned
        self.noise["p"] = epoch / 10  # changed in place

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {"x": np.float32(i * self.scale + self.noise["p"]), "np": np.random.randint(0, 1000)}


def _epochs_with_changes(ds, change, shape, epochs=3):
    """Walk ``ds`` in a loop shape, calling ``change(e)`` before each epoch (epoch 0 included)."""
    out: list = []
    if shape == "model_train":
        import mindspore as ms
        from mindspore.train import Callback, Model

        class Record(Callback):  # Model.train calls these around each epoch: the change lands where a loop's would
            def on_train_epoch_begin(self, run_context):
                change(len(out))
                out.append([])

            def on_train_step_end(self, run_context):
                cols = run_context.original_args().train_dataset_element
                out[-1].append(ds.structure.rebuild([c.asnumpy() if hasattr(c, "asnumpy") else c for c in cols]))

        class Net(ms.nn.Cell):
            def __init__(self):
                super().__init__()
                self.w = ms.Parameter(ms.Tensor(0.0, ms.float32))

            def construct(self, *cols):
                return self.w * 0

        net = Net()
        Model(net, optimizer=ms.nn.SGD(net.trainable_params(), 0.0)).train(
            epochs, ds, callbacks=[Record()], dataset_sink_mode=False
        )
        return out
    it = ds.create_tuple_iterator(num_epochs=epochs, output_numpy=True) if shape == "one_iterator" else None
    train_ds = ds.map(operations=lambda x: x, input_columns=[ds.get_col_names()[0]]) if shape == "tutorial_map" else ds
    for e in range(epochs):
        change(e)
        rows = it if it is not None else train_ds.create_tuple_iterator(output_numpy=True)  # MindSpore's tutorial loop
        epoch = []
        for r in rows:
            epoch.append(ds.structure.rebuild(list(r)))
        out.append(epoch)
    return out


@pytest.mark.parametrize(
    "num_workers, persistent", [(n, p) for n in NUM_WORKERS for p in (False, True) if n or not p], ids=lambda v: str(v)
)  # (torch refuses persistent_workers without workers)
@pytest.mark.parametrize("shape", CHANGE_LOOP_SHAPES)
def test_dataset_changed_between_epochs_is_seen_as_torch_sees_it(shape, persistent, num_workers):

    def make():
        return DataLoader(
            _Curriculum(),
            batch_size=4,
            shuffle=True,
            generator=gen(3),
            num_workers=num_workers,
            persistent_workers=persistent,
        )

    seed_all(0)
    loader, ms_loader = make(), make()
    ds = adapters.to_mindspore(ms_loader)
    expected = []
    for e in range(3):
        loader.dataset.set_epoch(e)
        expected.append([to_numpy_tree(b) for b in loader])
    actual = _epochs_with_changes(ds, ms_loader.dataset.set_epoch, shape)
    ds.close()
    assert_equivalent(actual, expected, rtol=0, atol=0)
    # torch's main process (num_workers=0) and fresh workers see every change; persistent workers only the one
    # made before they were started (epoch 0's): then the noise of epochs 1 and 2 (0.1, 0.2) is not there
    assert [float(expected[e][0]["x"][0]) % 1 > 0 for e in (1, 2)] == [not persistent] * 2


@pytest.mark.parametrize("num_workers", NUM_WORKERS, ids=WORKER_IDS)
@pytest.mark.parametrize("shape", CHANGE_LOOP_SHAPES)
def test_indices_rewritten_before_each_epoch_as_yolov5_image_weights_does(shape, num_workers):
    def make():
        return DataLoader(_Reweighted(), batch_size=4, shuffle=True, generator=gen(3), num_workers=num_workers)

    seed_all(0)
    loader, ms_loader = make(), make()
    ds = adapters.to_mindspore(ms_loader)
    expected = []
    for e in range(3):
        _reweight(loader.dataset, e)  # before epoch 0 too, as train.py does
        expected.append([to_numpy_tree(b) for b in loader])
    actual = _epochs_with_changes(ds, lambda e: _reweight(ms_loader.dataset, e), shape)
    ds.close()
    assert_equivalent(actual, expected, rtol=0, atol=0)
    assert all(sorted(int(i) for b in epoch for i in b["i"]) != list(range(12)) for epoch in expected)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_getters_on_a_chained_pipeline_start_no_epoch(num_workers):
    # MindSpore runs a pipeline for one row to answer output_shapes(): that must not be an epoch.
    seed_all(0)
    loader = DataLoader(rw.MosaicLikeDataset(12), batch_size=3, shuffle=True, generator=gen(4), num_workers=num_workers)
    ds = adapters.to_mindspore(loader)
    mapped = ds.map(operations=lambda x: x, input_columns=[ds.get_col_names()[0]])
    assert mapped.output_shapes() == ds.output_shapes()
    assert [str(t) for t in mapped.output_types()] == [str(t) for t in ds.output_types()]
    expected = torch_run(loader, 2)
    it = mapped.create_tuple_iterator(num_epochs=2, output_numpy=True)
    actual = [[ds.structure.rebuild(r) for r in it] for _ in range(2)]
    assert_equivalent(actual, expected, rtol=0, atol=0)


class _EpochFromSampler(torch.utils.data.Dataset):
    """The sampler's set_epoch reaches into the dataset (``self.dataset.epoch = epoch``), as some samplers do."""

    def __init__(self):
        self.epoch = 0

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return np.array([100 * self.epoch + i])


class _SamplerSettingDatasetEpoch(torch.utils.data.Sampler):
    def __init__(self, dataset):
        self.dataset, self.epoch = dataset, 0

    def set_epoch(self, epoch):
        self.epoch = epoch
        self.dataset.epoch = epoch

    def __len__(self):
        return len(self.dataset)

    def __iter__(self):
        return iter(range(len(self.dataset)))


@pytest.mark.parametrize("num_workers", NUM_WORKERS, ids=WORKER_IDS)
def test_a_set_epoch_that_changes_the_dataset_is_seen_by_the_workers(num_workers):
    def make():
        ds = _EpochFromSampler()
        return DataLoader(ds, batch_size=2, sampler=_SamplerSettingDatasetEpoch(ds), num_workers=num_workers)

    loader = make()
    expected = []
    for e in range(3):
        loader.sampler.set_epoch(e)  # the training loop's call, in torch's main process
        expected.append([b.numpy().tolist() for b in loader])
    ds = adapters.to_mindspore(make())  # set_epoch=True: the port makes that call itself
    actual = [[r[0].tolist() for r in ds.create_tuple_iterator(output_numpy=True)] for _ in range(3)]
    ds.close()
    assert expected[1] == [[[100], [101]], [[102], [103]]]
    assert actual == expected


class _AspectRatioBatchSampler(torch.utils.data.BatchSampler):
    """mmdet's AspectRatioBatchSampler shape: a BatchSampler subclass wrapping a sampler, two aspect buckets, each
    bucket's leftover flushed on its own at the end — short batches before the last one."""

    def __init__(self, sampler, batch_size, aspect):
        super().__init__(sampler, batch_size, drop_last=False)
        self.aspect = aspect

    def __iter__(self):
        buckets: list[list[int]] = [[], []]
        for idx in self.sampler:
            bucket = buckets[self.aspect(idx)]
            bucket.append(idx)
            if len(bucket) == self.batch_size:
                yield bucket[:]
                bucket.clear()
        yield from (b for b in buckets if b)

    def __len__(self):
        return -(-len(self.sampler) // self.batch_size)  # type: ignore[arg-type]  # sized, as torch's __len__ assumes


@pytest.mark.parametrize("num_workers", NUM_WORKERS, ids=WORKER_IDS)
@pytest.mark.parametrize("shape", CHANGE_LOOP_SHAPES)
def test_pseudo_collate_with_short_batches_before_the_last(shape, num_workers):
    def make():
        data = rw.RecordDataset(22)  # inputs (3, H, W): as many channels as the batch has samples
        sampler = torch.utils.data.RandomSampler(data, generator=torch.Generator().manual_seed(2))
        return DataLoader(
            data,
            batch_sampler=_AspectRatioBatchSampler(sampler, 3, lambda i: i % 3 == 0),
            collate_fn=rw.pseudo_collate,
            num_workers=num_workers,
        )

    seed_all(0)
    loader, ds = make(), adapters.to_mindspore(make())  # (the port's snapshot: the global streams as torch's)
    expected = [[to_numpy_tree(b) for b in loader] for _ in range(3)]
    sizes = [len(b["inputs"]) for b in expected[0]]
    assert 3 in sizes and sizes[-2] < 3 and sizes[-1] < 3  # a short batch before the last one
    actual = _epochs_with_changes(ds, lambda e: None, shape)
    ds.close()
    assert_equivalent(actual, expected, rtol=0, atol=0)
