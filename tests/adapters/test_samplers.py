"""adapters samplers and worker seeding vs torch.utils.data's own, epoch after epoch."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import random
from typing import Any

import numpy as np
import pytest
import torch
import torch.utils.data as tud
from hypothesis import example, given, settings
from hypothesis import strategies as st
from torch.utils.data._utils.worker import WorkerInfo as TorchWorkerInfo
from torch.utils.data._utils.worker import _generate_state

from adapters.torch_data import _samplers as ours
from adapters.torch_data._torch_generator import Generator, default_generator
from adapters.torch_data._worker_seeding import WorkerInfo, generate_state, worker_seeds

SEEDS = st.integers(min_value=0, max_value=2**64 - 1)
FAST = settings(max_examples=40, deadline=None)
EPOCHS = 3


@pytest.fixture(autouse=True)
def _restore_global_generators():
    """Tests below reseed torch's and our global generators; put both back afterwards."""
    saved = torch.default_generator.get_state(), default_generator.get_state()
    yield
    torch.default_generator.set_state(saved[0])
    default_generator.set_state(saved[1])


def pair(seed: int) -> tuple[Generator, torch.Generator]:
    return Generator().manual_seed(seed), torch.Generator().manual_seed(seed)


def epochs(sampler, n: int = EPOCHS) -> list[list]:
    return [list(sampler) for _ in range(n)]


def assert_same_state(mine: Generator, theirs: torch.Generator) -> None:
    assert np.array_equal(mine.get_state(), theirs.get_state().numpy()), "generator states differ from torch"


def assert_global_state_matches() -> None:
    assert_same_state(default_generator, torch.default_generator)


# ------------------------------------------------------------------ RandomSampler


@FAST
@given(
    seed=SEEDS,
    n=st.integers(1, 300),
    num_samples=st.one_of(st.none(), st.integers(1, 700)),
    replacement=st.booleans(),
)
@example(seed=0, n=10, num_samples=20, replacement=False)  # k % n == 0: the empty truncated randperm still draws
@example(seed=2**32, n=7, num_samples=64, replacement=True)
def test_random_sampler_with_generator(seed, n, num_samples, replacement):
    mine, theirs = pair(seed)
    a = ours.RandomSampler(range(n), replacement, num_samples, generator=mine)
    b = tud.RandomSampler(range(n), replacement, num_samples, generator=theirs)
    assert len(a) == len(b)
    assert epochs(a) == epochs(b)
    assert_same_state(mine, theirs)


@FAST
@given(
    seed=SEEDS,
    n=st.integers(1, 200),
    num_samples=st.one_of(st.none(), st.integers(1, 500)),
    replacement=st.booleans(),
)
def test_random_sampler_without_generator_draws_its_seed_from_the_global_generator(seed, n, num_samples, replacement):
    torch.manual_seed(seed)
    default_generator.manual_seed(seed)
    a = ours.RandomSampler(range(n), replacement, num_samples)
    b = tud.RandomSampler(range(n), replacement, num_samples)
    assert epochs(a) == epochs(b)
    assert_global_state_matches()


def test_random_sampler_stopped_early_skips_the_trailing_randperm():
    # k % n == 0: torch draws one more (empty) randperm only when the iterator runs to its end.
    mine, theirs = pair(4)
    a = ours.RandomSampler(range(10), num_samples=20, generator=mine)
    b = tud.RandomSampler(range(10), num_samples=20, generator=theirs)
    assert list(itertools.islice(iter(a), 20)) == list(itertools.islice(iter(b), 20))
    assert_same_state(mine, theirs)
    assert list(a) == list(b)  # run to the end: the extra randperm happens on both
    assert_same_state(mine, theirs)
    assert not np.array_equal(mine.get_state(), Generator().manual_seed(4).get_state())


def test_random_sampler_draws_lazily_on_first_next():
    default_generator.manual_seed(1)
    before = default_generator.get_state()
    it = iter(ours.RandomSampler(range(5)))
    assert np.array_equal(default_generator.get_state(), before), "iter() alone must not draw"
    next(it)
    assert not np.array_equal(default_generator.get_state(), before)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"replacement": 1},
        {"num_samples": 0},
        {"num_samples": -3},
        {"num_samples": 2.0},
        {"data_source": []},
    ],
)
def test_random_sampler_validation_matches_torch(kwargs):
    kwargs = {"data_source": range(5), **kwargs}
    with pytest.raises((TypeError, ValueError)) as theirs:
        tud.RandomSampler(**kwargs)
    with pytest.raises(theirs.type) as mine:
        ours.RandomSampler(**kwargs)
    assert str(mine.value) == str(theirs.value)


def test_sampler_refuses_a_torch_generator_with_a_pointer_to_from_torch():
    with pytest.raises(TypeError, match=r"got torch._C.Generator \(convert it with adapters Generator.from_torch"):
        ours.RandomSampler(range(3), generator=torch.Generator())  # type: ignore[arg-type]  # the refusal under test


# ------------------------------------------------------------------ the DataLoader's own draws


@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("seed", [0, 3, 2**40 + 5])
def test_dataloader_shuffle_order_with_a_generator(seed, drop_last):
    # A DataLoader iterator draws base_seed = random_() from loader.generator, then the sampler draws.
    data: Any = list(range(23))  # a list: a map-style source (torch's stubs want a Dataset)
    theirs = torch.Generator().manual_seed(seed)
    loader = tud.DataLoader(data, batch_size=4, shuffle=True, drop_last=drop_last, generator=theirs)
    mine = Generator().manual_seed(seed)
    batches = ours.BatchSampler(ours.RandomSampler(data, generator=mine), 4, drop_last)
    for epoch in range(EPOCHS):
        it = iter(loader)
        base_seed = mine.random_()
        assert base_seed == it._base_seed, f"epoch {epoch}: base seed"
        assert [b.tolist() for b in it] == list(batches), f"epoch {epoch}"
    assert_same_state(mine, theirs)


@pytest.mark.parametrize("seed", [0, 123456789])
def test_dataloader_shuffle_order_on_the_global_generator(seed):
    data: Any = list(range(17))  # a list: a map-style source (torch's stubs want a Dataset)
    torch.manual_seed(seed)
    default_generator.manual_seed(seed)
    loader = tud.DataLoader(data, batch_size=5, shuffle=True)
    batches = ours.BatchSampler(ours.RandomSampler(data), 5, False)
    for epoch in range(EPOCHS):
        it = iter(loader)
        assert default_generator.random_() == it._base_seed, f"epoch {epoch}: base seed"
        assert [b.tolist() for b in it] == list(batches), f"epoch {epoch}"
    assert_global_state_matches()


# ------------------------------------------------------------------ the other samplers


def test_sequential_sampler():
    assert list(ours.SequentialSampler(range(6))) == list(tud.SequentialSampler(range(6)))
    assert len(ours.SequentialSampler("abc")) == 3


@FAST
@given(seed=SEEDS, indices=st.lists(st.integers(-50, 50), max_size=80), with_generator=st.booleans())
def test_subset_random_sampler(seed, indices, with_generator):
    mine: Generator | None = None
    theirs: torch.Generator | None = None
    if with_generator:
        mine, theirs = pair(seed)
    else:
        torch.manual_seed(seed)
        default_generator.manual_seed(seed)
    a = ours.SubsetRandomSampler(indices, generator=mine)
    b = tud.SubsetRandomSampler(indices, generator=theirs)
    assert len(a) == len(b)
    assert epochs(a) == epochs(b)
    if mine is not None and theirs is not None:  # (with_generator)
        assert_same_state(mine, theirs)
    else:
        assert_global_state_matches()


@FAST
@given(
    seed=SEEDS,
    weights=st.lists(st.one_of(st.just(0.0), st.floats(1e-6, 100.0)), min_size=1, max_size=80).filter(any),
    data=st.data(),
    replacement=st.booleans(),
    with_generator=st.booleans(),
)
def test_weighted_random_sampler(seed, weights, data, replacement, with_generator):
    num_samples = data.draw(st.integers(1, 200 if replacement else len(weights)))
    mine: Generator | None = None
    theirs: torch.Generator | None = None
    if with_generator:
        mine, theirs = pair(seed)
    else:
        torch.manual_seed(seed)
        default_generator.manual_seed(seed)
    a = ours.WeightedRandomSampler(weights, num_samples, replacement, generator=mine)
    b = tud.WeightedRandomSampler(weights, num_samples, replacement, generator=theirs)
    assert epochs(a) == epochs(b)
    if mine is not None and theirs is not None:  # (with_generator)
        assert_same_state(mine, theirs)
    else:
        assert_global_state_matches()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_samples": 0},
        {"num_samples": True},
        {"num_samples": 2.5},
        {"replacement": 0},
        {"weights": [[0.1, 0.2]]},
    ],
)
def test_weighted_random_sampler_validation_matches_torch(kwargs):
    kwargs = {"weights": [0.1, 0.9], "num_samples": 2, **kwargs}
    with pytest.raises(ValueError) as theirs:
        tud.WeightedRandomSampler(**kwargs)
    with pytest.raises(ValueError) as mine:
        ours.WeightedRandomSampler(**kwargs)
    assert str(mine.value) == str(theirs.value)


@given(
    n=st.integers(0, 50),
    batch_size=st.integers(1, 12),
    drop_last=st.booleans(),
)
@settings(max_examples=60, deadline=None)
def test_batch_sampler(n, batch_size, drop_last):
    a = ours.BatchSampler(ours.SequentialSampler(range(n)), batch_size, drop_last)
    b = tud.BatchSampler(tud.SequentialSampler(range(n)), batch_size, drop_last)
    assert list(a) == list(b)
    assert len(a) == len(b)


@pytest.mark.parametrize(
    "kwargs", [{"batch_size": 0}, {"batch_size": True}, {"batch_size": 2.0}, {"drop_last": 1}, {"drop_last": None}]
)
def test_batch_sampler_validation_matches_torch(kwargs):
    kwargs = {"sampler": range(5), "batch_size": 2, "drop_last": False, **kwargs}
    with pytest.raises(ValueError) as theirs:
        tud.BatchSampler(**kwargs)
    with pytest.raises(ValueError) as mine:
        ours.BatchSampler(**kwargs)
    assert str(mine.value) == str(theirs.value)


@pytest.mark.parametrize("size", [0, 1, 3, 10, 11, 37])
@pytest.mark.parametrize("num_replicas", [1, 2, 4, 7])
@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("shuffle", [True, False])
def test_distributed_sampler(size, num_replicas, drop_last, shuffle):
    # size < num_replicas exercises the padding branch that repeats the indices several times.
    data: Any = range(size)  # a range: a map-style source (torch's stubs want a Dataset)
    for rank in range(num_replicas):
        a = ours.DistributedSampler(data, num_replicas, rank, shuffle, seed=size, drop_last=drop_last)
        b: tud.DistributedSampler = tud.DistributedSampler(
            data, num_replicas, rank, shuffle, seed=size, drop_last=drop_last
        )
        assert (len(a), a.total_size) == (len(b), b.total_size)
        for epoch in (0, 1, 5):
            a.set_epoch(epoch)
            b.set_epoch(epoch)
            assert epochs(a, 2) == epochs(b, 2), f"rank {rank} epoch {epoch}"


def test_distributed_sampler_validation():
    for rank in (-1, 2):
        with pytest.raises(ValueError) as theirs:
            tud.DistributedSampler(range(4), num_replicas=2, rank=rank)  # type: ignore[arg-type]  # map-style
        with pytest.raises(ValueError) as mine:
            ours.DistributedSampler(range(4), num_replicas=2, rank=rank)
        assert str(mine.value) == str(theirs.value)
    with pytest.raises(ValueError, match="needs num_replicas and rank given explicitly"):
        ours.DistributedSampler(range(4))


def test_sampler_base_class():
    with pytest.raises(NotImplementedError):
        iter(ours.Sampler())
    assert not hasattr(ours.Sampler, "__len__")  # torch's deliberate choice, mirrored


# ------------------------------------------------------------------ worker seeding


@settings(max_examples=300, deadline=None)
@given(base_seed=st.integers(0, 2**64 - 1), worker_id=st.integers(0, 2**32 - 1))
@example(base_seed=0, worker_id=0)
@example(base_seed=2**63 - 1, worker_id=31)
def test_generate_state_is_torchs(base_seed, worker_id):
    got = generate_state(base_seed, worker_id)
    assert got.dtype == np.uint32
    assert got.tolist() == _generate_state(base_seed, worker_id)


def test_generate_state_refuses_out_of_range():
    with pytest.raises(ValueError, match="base_seed must be in"):
        generate_state(-1, 0)
    with pytest.raises(ValueError, match=r"worker_id must be in \[0, 2\*\*32\), got 4294967296"):
        generate_state(1, 2**32)


def test_worker_info_has_torchs_fields():
    fields = [(f.name, f.default) for f in dataclasses.fields(WorkerInfo)]
    assert fields == [(f.name, f.default) for f in dataclasses.fields(TorchWorkerInfo)]
    info = WorkerInfo(id=1, num_workers=2, seed=5, dataset=None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.seed = 6  # type: ignore[misc]


class _SeedProbe(tud.Dataset):
    """Returns what this worker's random streams were seeded with (nothing draws before)."""

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> list:
        info = tud.get_worker_info()
        np_key = hashlib.sha256(np.random.get_state()[1].tobytes()).hexdigest()  # type: ignore[index]  # legacy tuple
        py_state = hashlib.sha256(repr(random.getstate()).encode()).hexdigest()
        return [info.id, info.seed, torch.initial_seed(), np_key, py_state]


def _first(batch):
    return batch


def test_worker_seeds_are_what_real_dataloader_workers_get():
    loader = tud.DataLoader(
        _SeedProbe(), batch_size=None, num_workers=2, generator=torch.Generator().manual_seed(77), collate_fn=_first
    )
    # Each worker reports on its first item, before anything in it has drawn.
    rows = {row[0]: row for row in itertools.islice(iter(loader), 2)}
    base_seed = Generator().manual_seed(77).random_()
    for w in (0, 1):
        seeds = worker_seeds(base_seed, w)
        np_key = np.random.RandomState(seeds.numpy).get_state()[1]  # type: ignore[index]  # the legacy tuple
        py_state = random.Random(seeds.python).getstate()
        assert rows[w][1:3] == [seeds.python, seeds.torch] == [base_seed + w] * 2
        assert rows[w][3] == hashlib.sha256(np_key.tobytes()).hexdigest(), f"worker {w}: numpy seed"
        assert rows[w][4] == hashlib.sha256(repr(py_state).encode()).hexdigest(), f"worker {w}: random seed"
