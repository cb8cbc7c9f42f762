"""to_mindspore vs torch's real DataLoader: bit-identical batches over epochs, samplers and workers."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import (
    DataLoader,
    RandomSampler,
    Sampler,
    SequentialSampler,
    SubsetRandomSampler,
    WeightedRandomSampler,
)
from torch.utils.data.distributed import DistributedSampler

import adapters
from porting import assert_equivalent
from tests.adapters._torch_side import RandomAugDataset, ms_epochs, seed_all, to_numpy_tree, torch_epochs

EPOCHS = 2


def _both(make_loader, *, seed=0, epochs=EPOCHS, set_epoch=True):
    """Run torch's loader and to_mindspore(loader) from the same global seed state."""
    seed_all(seed)
    expected = torch_epochs(make_loader(), epochs, set_epoch=set_epoch)
    seed_all(seed)
    ds = adapters.to_mindspore(make_loader(), set_epoch=set_epoch)
    actual = ms_epochs(ds, epochs)
    return actual, expected


class GlobalRngSampler(Sampler):
    """A user-written sampler whose __iter__ is a plain function: it draws before the base seed."""

    def __init__(self, n):
        self.n = n

    def __iter__(self):
        return iter(torch.randperm(self.n).tolist())

    def __len__(self):
        return self.n


class PairBatchSampler(Sampler):
    """A user-written batch sampler: uneven batches, drawn lazily from the global RNG."""

    def __init__(self, n):
        self.n = n

    def __iter__(self):
        order = torch.randperm(self.n).tolist()
        sizes = [1, 2, 3]
        i = 0
        while i < self.n:
            size = sizes[i % 3]
            yield order[i : i + size]
            i += size

    def __len__(self):
        i = count = 0
        while i < self.n:
            i += [1, 2, 3][i % 3]
            count += 1
        return count


N = 23
SAMPLERS: dict[str, Callable[[Any, Any], dict[str, Any]]] = {  # DataLoader keyword arguments for (dataset, generator)
    "sequential": lambda ds, g: dict(sampler=SequentialSampler(ds)),
    "shuffle": lambda ds, g: dict(shuffle=True),
    "random_replacement": lambda ds, g: dict(sampler=RandomSampler(ds, replacement=True, num_samples=30, generator=g)),
    "random_num_samples": lambda ds, g: dict(sampler=RandomSampler(ds, num_samples=50, generator=g)),
    "subset_random": lambda ds, g: dict(sampler=SubsetRandomSampler(list(range(3, 20)), generator=g)),
    "weighted": lambda ds, g: dict(
        sampler=WeightedRandomSampler([0.1 * (i % 5 + 1) for i in range(N)], 30, generator=g)
    ),
    "weighted_no_replacement": lambda ds, g: dict(
        sampler=WeightedRandomSampler([i + 1.0 for i in range(N)], 12, replacement=False, generator=g)
    ),
    "distributed_rank1": lambda ds, g: dict(
        sampler=DistributedSampler(ds, num_replicas=2, rank=1, shuffle=True, seed=5)
    ),
    "user_sampler": lambda ds, g: dict(sampler=GlobalRngSampler(N)),
    "user_batch_sampler": lambda ds, g: dict(batch_sampler=PairBatchSampler(N)),
}


@pytest.mark.parametrize("num_workers", [0, 2])
@pytest.mark.parametrize("with_generator", [True, False], ids=["generator", "global"])
@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_samplers_match_torch(sampler, with_generator, num_workers):
    def make():
        ds = RandomAugDataset(N)
        g = torch.Generator().manual_seed(123) if with_generator else None
        kwargs = SAMPLERS[sampler](ds, g)
        if "batch_sampler" not in kwargs:
            kwargs["batch_size"] = 4
        return DataLoader(ds, num_workers=num_workers, generator=g, **kwargs)

    actual, expected = _both(make)
    assert_equivalent(actual, expected, rtol=0, atol=0)


@pytest.mark.parametrize("num_workers", [1, 3, 4])
@pytest.mark.parametrize("persistent", [False, True])
def test_worker_counts_and_persistence_match_torch(num_workers, persistent):
    def make():
        return DataLoader(
            RandomAugDataset(N),
            batch_size=3,
            shuffle=True,
            num_workers=num_workers,
            persistent_workers=persistent,
            generator=torch.Generator().manual_seed(7),
        )

    actual, expected = _both(make, epochs=3)
    assert_equivalent(actual, expected, rtol=0, atol=0)


def test_kwargs_form_equals_loader_form_and_drop_last():
    seed_all(1)
    expected = torch_epochs(
        DataLoader(RandomAugDataset(N), batch_size=5, shuffle=True, drop_last=True, num_workers=2), 2
    )
    seed_all(1)
    ds = adapters.to_mindspore(RandomAugDataset(N), batch_size=5, shuffle=True, drop_last=True, num_workers=2)
    assert_equivalent(ms_epochs(ds, 2), expected, rtol=0, atol=0)
    assert all(len(epoch) == N // 5 for epoch in expected)


class IndexOnly(torch.utils.data.Dataset):
    def __len__(self):
        return N

    def __getitem__(self, i):
        return i


@pytest.mark.parametrize("num_workers", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_counts_reconcile_no_sample_dropped_or_duplicated(sampler, num_workers):
    """Every index the sampler yields comes out exactly once per epoch, in torch's order."""

    def make():
        g = torch.Generator().manual_seed(11)
        kwargs = SAMPLERS[sampler](IndexOnly(), g)
        if "batch_sampler" not in kwargs:
            kwargs["batch_size"] = 5
        return DataLoader(IndexOnly(), num_workers=num_workers, generator=g, **kwargs)

    seed_all(3)
    loader = make()
    expected = [[int(i) for b in loader for i in b] for _ in range(2)]
    seed_all(3)
    ds = adapters.to_mindspore(make(), set_epoch=False)
    got = [[int(i) for b in epoch for i in b] for epoch in ms_epochs(ds, 2)]
    assert [len(e) for e in got] == [len(e) for e in expected] == [len(loader.sampler)] * 2
    assert got == expected


def test_iter_batches_gives_torchs_nesting_with_tensor_or_numpy_leaves():
    import mindspore as ms

    def collate(samples):  # a dict with a per-sample list, as NLP/detection collates return
        return {"x": torch.stack([s for s, _ in samples]), "lengths": [n for _, n in samples]}

    class Varied(torch.utils.data.Dataset):
        def __len__(self):
            return 6

        def __getitem__(self, i):
            return torch.rand(2), i + 1

    def make():
        return DataLoader(Varied(), batch_size=4, collate_fn=collate, num_workers=1)

    seed_all(0)
    expected = torch_epochs(make(), 2)
    seed_all(0)
    ds = adapters.to_mindspore(make())
    got = list(ds.iter_batches(2))
    assert [type(b) for b in got] == [dict] * 4 and list(got[0]) == ["x", "lengths"]
    assert isinstance(got[0]["x"], ms.Tensor) and got[0]["lengths"] == [1, 2, 3, 4]  # not 'lengths.0'
    assert_equivalent(got, [b for epoch in expected for b in epoch], rtol=0, atol=0)
    nxt = next(ds.iter_batches(1, output_numpy=True))  # the port's epoch 2
    assert isinstance(nxt["x"], np.ndarray)
    with pytest.raises(ValueError, match="num_epochs must be an int >= 1, got 0"):
        ds.iter_batches(0)


@pytest.mark.parametrize("num_workers, persistent", [(0, False), (1, False), (2, True), (4, False)])
@pytest.mark.parametrize("loop", ["one iterator", "iterator per epoch"])
def test_pack_lists_of_carries_one_entry_per_group_of_samples(num_workers, persistent, loop):
    def pairs(samples):  # one tag per pair of samples, like YOLOv5's collate_fn4 (one per 4)
        return torch.stack(samples), [f"g{int(samples[i])}" for i in range(0, len(samples), 2)]

    def make():
        samples: Any = [torch.tensor(float(i)) for i in range(10)]  # a list: a map-style source
        return DataLoader(
            samples, batch_size=4, collate_fn=pairs, num_workers=num_workers, persistent_workers=persistent
        )

    expected = [b for epoch in torch_epochs(make(), 2) for b in epoch]
    ds = adapters.to_mindspore(make(), pack_lists_of=2)
    if loop == "one iterator":
        got = list(ds.iter_batches(2, output_numpy=True))
    else:
        got = [b for _ in range(2) for b in ds.iter_batches(1, output_numpy=True)]
    assert [g[1] for g in got] == [["g0", "g2"], ["g4", "g6"], ["g8"]] * 2  # the short last batch too
    assert_equivalent(got, expected, rtol=0, atol=0)
    with pytest.raises(ValueError, match="pack_lists_of must be a positive int or None, got 0"):
        adapters.to_mindspore(make(), pack_lists_of=0)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_declared_columns_make_no_batch_at_construction(num_workers):
    import multiprocessing

    calls = multiprocessing.Value("i", 0)

    class Counted(torch.utils.data.Dataset):
        def __len__(self):
            return 8

        def __getitem__(self, i):
            with calls.get_lock():
                calls.value += 1
            return {"x": np.float32(i), "tag": f"s{i}"}

    structure = adapters.Structure.infer({"x": np.zeros(2, np.float32), "tag": ["", ""]})
    loader = DataLoader(Counted(), batch_size=2, shuffle=True, generator=torch.Generator().manual_seed(3))
    expected = [to_numpy_tree(b) for b in loader]
    calls.value = 0
    ds = adapters.to_mindspore(
        DataLoader(
            Counted(), batch_size=2, shuffle=True, num_workers=num_workers, generator=torch.Generator().manual_seed(3)
        ),
        structure=structure,
    )
    time.sleep(0.3)
    assert calls.value == 0  # nothing made until the loop begins epoch 0
    with pytest.raises(TypeError, match="known once its first batch was made"):
        ds.output_shapes()
    actual = list(ds.iter_batches(1, output_numpy=True))
    assert ds.output_shapes() == [[2], [2]] and calls.value == 8  # every sample made once, as in torch
    assert_equivalent(actual, expected, rtol=0, atol=0)
    with pytest.raises(ValueError, match="belong to Structure.infer"):
        adapters.to_mindspore(list(range(4)), batch_size=2, structure=structure, column_names=["a", "b"])
