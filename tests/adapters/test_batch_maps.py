"""The MindSpore-native shape (``sample_dataset`` → per-sample ``.map()`` → ``batch``, torch's collate) vs torch.

Every batch is compared with torch's DataLoader's, bit for bit (dtype, shape, bytes), in the loop shapes
MindSpore users write: one iterator over all epochs, a new iterator per epoch at the default ``num_epochs``
(the tutorial loop), dict iterators, ``for row in ds``, a partial epoch left with ``break``; workers 0-4,
persistent or not; with and without a per-sample ``.map()`` between the two calls.
"""

from __future__ import annotations

import random

import mindspore.dataset as msds
import mindspore.dataset.vision as vision
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, Sampler

import adapters
from porting import assert_equivalent
from tests.adapters._torch_side import RandomAugDataset, ShardedIterable, seed_all, to_numpy_tree
from yolov5_pt import InfiniteDataLoader

EPOCHS = 3
WORKERS = [(0, False), (1, False), (2, False), (2, True), (3, False), (4, True)]
WORKER_IDS = [f"workers{n}{'-persistent' if p else ''}" for n, p in WORKERS]


def assert_bits(actual, expected, path="batch"):
    """Same containers, same python values, arrays of the same dtype, shape and bytes."""
    if isinstance(expected, np.ndarray):
        assert isinstance(actual, np.ndarray), f"{path}: {type(actual)} vs an array"
        assert (actual.dtype, actual.shape) == (expected.dtype, expected.shape), (
            f"{path}: {actual.dtype}{actual.shape} vs {expected.dtype}{expected.shape}"
        )
        assert actual.tobytes() == expected.tobytes(), f"{path}: bytes differ"
    elif isinstance(expected, dict):
        assert type(actual) is type(expected) and list(actual) == list(expected), f"{path}: {actual!r:.80}"
        for k in expected:
            assert_bits(actual[k], expected[k], f"{path}[{k!r}]")
    elif isinstance(expected, (list, tuple)):
        assert type(actual) is type(expected) and len(actual) == len(expected), f"{path}: {actual!r:.80}"
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_bits(a, e, f"{path}[{i}]")
    else:
        assert type(actual) is type(expected) and actual == expected, f"{path}: {actual!r} vs {expected!r}"


def _make(num_workers, persistent, n=14, batch_size=4, **kwargs):
    return DataLoader(
        RandomAugDataset(n),
        batch_size=batch_size,
        shuffle=True,
        num_workers=num_workers,
        persistent_workers=persistent,
        generator=torch.Generator().manual_seed(7),
        **kwargs,
    )


def torch_epochs(loader, epochs=EPOCHS, partial=None):
    out = []
    for e in range(epochs):
        batches = []
        for k, b in enumerate(loader):
            if partial is not None and (e, k) == partial:
                break
            batches.append(to_numpy_tree(b))
        out.append(batches)
    return out


def _identity(x):
    return x


MAPS = {
    "no-map": lambda ds: ds,
    "identity-map": lambda ds: ds.map(operations=_identity, input_columns=["np"]),
    "two-maps": lambda ds: ds.map(operations=_identity, input_columns=["torch"]).map(
        operations=_identity, input_columns=["index"]
    ),
}


def _pipeline(loader, chain="no-map", **batch_kwargs):
    samples = adapters.sample_dataset(loader)
    return adapters.batch(MAPS[chain](samples), loader, **batch_kwargs)


def _loop(ds, shape, epochs=EPOCHS, partial=None):
    """The batches of ``epochs`` epochs, read the way ``shape`` says (rebuilt into torch's nested batches)."""
    out = []
    if shape == "one-iterator":
        it = ds.create_tuple_iterator(num_epochs=epochs, output_numpy=True)
    for e in range(epochs):
        if shape == "tutorial":
            it = ds.create_tuple_iterator(output_numpy=True)  # a new iterator per epoch, default num_epochs
        elif shape == "dict":
            it = ({k: v for k, v in r.items()} for r in ds.create_dict_iterator(output_numpy=True))
        elif shape == "for-row-in-ds":
            it = ([t.asnumpy() for t in r] for r in ds)
        batches = []
        for k, row in enumerate(it):
            if partial is not None and (e, k) == partial:
                break
            batches.append(ds.structure.rebuild(row))
        out.append(batches)
    return out


# ----------------------------------------------------------------------------------------------- exactness


@pytest.mark.parametrize("num_workers, persistent", WORKERS, ids=WORKER_IDS)
@pytest.mark.parametrize("chain", sorted(MAPS))
@pytest.mark.parametrize("shape", ["one-iterator", "tutorial"])
def test_default_collate_batches_are_torchs_in_every_loop_shape(shape, chain, num_workers, persistent):
    seed_all(0)
    expected = torch_epochs(_make(num_workers, persistent))
    seed_all(0)
    ds = _pipeline(_make(num_workers, persistent), chain)
    assert_bits(_loop(ds, shape), expected)
    assert ds.get_dataset_size() == 4 and ds.get_col_names() == ["index", "py", "np", "torch", "worker", "seed"]


@pytest.mark.parametrize("shape", ["dict", "for-row-in-ds"])
@pytest.mark.parametrize("num_workers, persistent", [(0, False), (2, True)])
def test_dict_iterators_and_for_row_in_ds(shape, num_workers, persistent):
    seed_all(0)
    expected = torch_epochs(_make(num_workers, persistent))
    seed_all(0)
    assert_bits(_loop(_pipeline(_make(num_workers, persistent), "identity-map"), shape), expected)


@pytest.mark.parametrize("num_workers, persistent", WORKERS, ids=WORKER_IDS)
@pytest.mark.parametrize("chain", ["no-map", "identity-map"])
def test_partial_epoch_through_the_batch_op_continues_as_torch(chain, num_workers, persistent):
    seed_all(0)
    expected = torch_epochs(_make(num_workers, persistent, n=22), partial=(1, 2))  # epoch 1 left after 2 batches
    seed_all(0)
    ds = _pipeline(_make(num_workers, persistent, n=22), chain)
    got = _loop(ds, "tutorial", partial=(1, 2))
    assert [len(e) for e in got] == [6, 2, 6]
    assert_bits(got, expected)


def test_a_map_after_the_batch_op_counts_batches_too():
    seed_all(0)
    expected = torch_epochs(_make(2, False, n=22), partial=(0, 3))
    seed_all(0)
    ds = _pipeline(_make(2, False, n=22)).map(operations=_identity, input_columns=["np"])
    got = []
    for e in range(EPOCHS):
        rows = []
        for k, r in enumerate(ds.create_dict_iterator(output_numpy=True)):
            if (e, k) == (0, 3):
                break
            rows.append(r["np"])
        got.append(rows)
    assert_bits(got, [[b["np"] for b in e] for e in expected])


class PairsCollate:
    """A custom collate that draws python's random in torch's worker (per pair, as YOLOv5's collate_fn4 per
    quad), writes into its samples in place, and returns per-sample lists."""

    def __call__(self, batch):
        for i, s in enumerate(batch):
            s["np"][0] = i  # in place, as YOLOv5's collate_fn writes each label's image index
        pairs = [
            torch.stack([batch[i]["torch"], batch[i + 1]["torch"]]) * (2.0 if random.random() < 0.5 else -1.0)
            for i in range(0, len(batch) - 1, 2)
        ]
        return {
            "pairs": torch.stack(pairs) if pairs else torch.zeros(0, 2, 2, 2),
            "np": [s["np"] for s in batch],
            "index": [s["index"] for s in batch],
            "py": torch.tensor([s["py"] for s in batch]),
        }


def _no_draw_collate(batch):
    return torch.stack([s["torch"] for s in batch]), [s["index"] for s in batch], [s["np"] for s in batch]


@pytest.mark.parametrize("num_workers, persistent", WORKERS, ids=WORKER_IDS)
@pytest.mark.parametrize("shape", ["one-iterator", "tutorial"])
def test_custom_collate_drawing_random_in_the_worker_is_replayed_in_mindspores_processes(
    shape, num_workers, persistent
):
    seed_all(0)
    expected = torch_epochs(_make(num_workers, persistent, collate_fn=PairsCollate()))
    signs = {float(np.sign(b["pairs"].ravel()[0])) for e in expected for b in e}
    assert signs == {-1.0, 1.0}  # the collate really took both branches
    seed_all(0)
    ds = _pipeline(_make(num_workers, persistent, collate_fn=PairsCollate()), "identity-map")
    assert "_collate_state" in ds.children[0].get_col_names()
    assert ds.python_multiprocessing is True
    assert_bits(_loop(ds, shape), expected)


@pytest.mark.parametrize("num_workers, persistent", [(0, False), (2, False), (3, True)])
def test_custom_collate_without_draws_runs_in_threads_on_torch_tensors(num_workers, persistent):
    seed_all(0)
    expected = torch_epochs(_make(num_workers, persistent, collate_fn=_no_draw_collate))
    seed_all(0)
    ds = _pipeline(_make(num_workers, persistent, collate_fn=_no_draw_collate), "two-maps")
    assert ds.python_multiprocessing is False and "_collate_state" not in ds.children[0].get_col_names()
    assert_bits(_loop(ds, "tutorial"), expected)


def test_a_collate_that_draws_cannot_run_in_threads():
    loader = _make(0, False, collate_fn=PairsCollate())
    samples = adapters.sample_dataset(loader)
    with pytest.raises(ValueError, match="draws from the random streams in torch's worker.*python_multiprocessing"):
        adapters.batch(samples, loader, python_multiprocessing=False)


class Buckets(Sampler):
    """A batch sampler of uneven batches, reshuffled each epoch (a bucketing sampler's shape)."""

    def __init__(self, n=14):
        self.n, self.g = n, torch.Generator().manual_seed(1)

    def __iter__(self):
        idx = torch.randperm(self.n, generator=self.g).tolist()
        k = 0
        for size in (1, 3, 5, 2, 3):
            yield idx[k : k + size]
            k += size

    def __len__(self):
        return 5


@pytest.mark.parametrize("num_workers, persistent", [(0, False), (2, False), (2, True), (4, False)])
@pytest.mark.parametrize("shape", ["one-iterator", "tutorial"])
def test_a_custom_batch_sampler_gives_mindspore_each_batchs_size(shape, num_workers, persistent):
    def make():
        return DataLoader(
            RandomAugDataset(14), batch_sampler=Buckets(), num_workers=num_workers, persistent_workers=persistent
        )

    seed_all(0)
    expected = torch_epochs(make())
    seed_all(0)
    ds = _pipeline(make(), "identity-map")
    assert callable(ds.batch_size_func) and ds.get_dataset_size() == 5
    got = _loop(ds, shape)
    assert [[len(b["index"]) for b in e] for e in got] == [[1, 3, 5, 2, 3]] * EPOCHS
    assert_bits(got, expected)


@pytest.mark.parametrize("num_workers", [0, 2, 3])
def test_iterable_dataset_batches_with_short_shard_ends(num_workers):
    def make():
        return DataLoader(ShardedIterable(11), batch_size=4, num_workers=num_workers)

    seed_all(0)
    expected = torch_epochs(make())
    seed_all(0)
    got = _loop(_pipeline(make()), "tutorial")
    assert [len(b["i"]) for b in got[0]] == [len(b["i"]) for b in expected[0]]
    assert_bits(got, expected)


@pytest.mark.parametrize("partial", [None, (1, 2)], ids=["whole-epochs", "epoch-1-left-after-2-batches"])
@pytest.mark.parametrize("num_workers", [0, 2, 3])
@pytest.mark.parametrize("collate_fn", [None, PairsCollate], ids=["default-collate", "drawing-collate"])
def test_infinite_matches_yolov5s_infinite_dataloader(num_workers, collate_fn, partial):
    collate = collate_fn and collate_fn()

    def kwargs():
        return dict(
            batch_size=3,
            shuffle=True,
            num_workers=num_workers,
            generator=torch.Generator().manual_seed(5),
            collate_fn=collate,
        )

    seed_all(0)
    loader = InfiniteDataLoader(RandomAugDataset(14), **kwargs())  # 5 batches/epoch: dispatch shifts across epochs
    expected = torch_epochs(loader, partial=partial)
    seed_all(0)
    data = RandomAugDataset(14)
    samples = adapters.sample_dataset(data, infinite=True, **kwargs())
    ds = adapters.batch(samples, data, **kwargs())
    assert_bits(_loop(ds, "tutorial", partial=partial), expected)


# ----------------------------------------------------------------------------------------------- sample rows


@pytest.mark.parametrize("num_workers, persistent", [(0, False), (2, False), (2, True)])
def test_sample_rows_are_torch_workers_samples_in_order(num_workers, persistent):
    seed_all(0)
    expected = torch_epochs(_make(num_workers, persistent, collate_fn=lambda batch: batch))
    seed_all(0)
    ds = adapters.sample_dataset(_make(num_workers, persistent))
    assert ds.get_dataset_size() == 14
    got = [list(ds.iter_samples(output_numpy=True)) for _ in range(EPOCHS)]
    assert_bits(got, [[to_numpy_tree(s) for b in e for s in b] for e in expected])


@pytest.mark.parametrize("num_workers, persistent", [(0, False), (2, False), (2, True)])
def test_a_sample_iterator_left_at_a_batch_boundary_continues_and_inside_a_batch_is_refused(num_workers, persistent):
    seed_all(0)
    loader = _make(num_workers, persistent, collate_fn=lambda batch: batch)
    expected = []
    for e in range(EPOCHS):
        samples = []
        for k, b in enumerate(loader):
            samples += [to_numpy_tree(s) for s in b]
            if (e, k) == (1, 2):  # the loop took 3 batches of epoch 1
                break
        expected.append(samples)
    seed_all(0)
    ds = adapters.sample_dataset(_make(num_workers, persistent))
    got = []
    for e in range(EPOCHS):
        rows = []
        for k, row in enumerate(ds.create_tuple_iterator(output_numpy=True)):
            rows.append(ds.structure.rebuild(row))
            if (e, k) == (1, 11):  # the last sample of torch batch 2: 3 whole batches taken
                break
        got.append(rows)
    assert [len(e) for e in got] == [14, 12, 14]
    assert_bits(got, expected)
    for k, _ in enumerate(ds.create_tuple_iterator(output_numpy=True)):
        if k == 5:  # 6 samples taken: inside torch batch 1
            break
    with pytest.raises(RuntimeError, match=r"left after 6 samples, inside torch batch 1 \(its samples 4-7\)"):
        list(ds.create_tuple_iterator(output_numpy=True))


def test_mindspores_own_batch_on_samples_whole_epochs_and_a_partial_one_refused():
    seed_all(0)
    expected = torch_epochs(_make(0, False, n=16, collate_fn=lambda batch: batch))
    seed_all(0)
    samples = adapters.sample_dataset(_make(0, False, n=16))
    own = samples.project(["index"]).batch(3)  # not torch's batches: rows count neither samples nor batches
    got = [[r[0] for r in own.create_tuple_iterator(output_numpy=True)] for _ in range(2)]
    assert [np.concatenate(e).tolist() for e in got] == [[s["index"] for b in e for s in b] for e in expected[:2]]
    for _ in own.create_tuple_iterator(output_numpy=True):
        break
    with pytest.raises(RuntimeError, match=r"epoch 2 was left after \d+ of its samples.*MindSpore's own batch"):
        list(samples.create_tuple_iterator(output_numpy=True))


# ----------------------------------------------------------------------------------------------- a real map


class HWCImages(Dataset):
    """uint8 HWC images with a random crop offset and flip (numpy's global stream), and a label."""

    def __init__(self, n=10, normalise=None):
        self.data = np.random.default_rng(0).integers(0, 256, (n, 12, 10, 3), dtype=np.uint8)
        self.normalise = normalise

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        y = np.random.randint(0, 4)
        img = self.data[i, y : y + 8]
        if np.random.rand() < 0.5:
            img = img[:, ::-1]
        img = np.ascontiguousarray(img)
        if self.normalise is not None:
            img = self.normalise(img)
        return {"img": img, "label": i % 3}


MEAN, STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]


def _torch_normalise(img):
    """torch's equivalent of ``vision.Normalize`` on an HWC image: (x - mean) / std in float32."""
    t = torch.from_numpy(img).float()
    return ((t - torch.tensor(MEAN)) / torch.tensor(STD)).numpy()


@pytest.mark.parametrize("num_workers", [0, 2])
def test_a_real_per_sample_map_normalize_matches_torchs_normalisation(num_workers):
    def make(normalise=None):
        return DataLoader(
            HWCImages(normalise=normalise),
            batch_size=4,
            shuffle=True,
            num_workers=num_workers,
            generator=torch.Generator().manual_seed(3),
        )

    seed_all(0)
    expected = torch_epochs(make(_torch_normalise), epochs=2)
    seed_all(0)
    loader = make()
    samples = adapters.sample_dataset(loader).map(operations=vision.Normalize(MEAN, STD), input_columns=["img"])
    got = _loop(adapters.batch(samples, loader), "tutorial", epochs=2)
    assert got[0][0]["img"].dtype == np.float32 and got[0][0]["img"].shape == (4, 8, 10, 3)
    assert_equivalent(got, expected, rtol=1e-6, atol=1e-6)
    assert_bits([[b["label"] for b in e] for e in got], [[b["label"] for b in e] for e in expected])


def test_a_map_that_casts_a_number_column_gives_the_collate_that_dtype():
    seed_all(0)
    loader = _make(0, False)
    samples = adapters.sample_dataset(loader).map(operations=lambda x: x.astype(np.int32), input_columns=["index"])
    samples = samples.map(operations=lambda x: np.eye(3, dtype=np.float32)[x % 3], input_columns=["worker"])
    first = next(adapters.batch(samples, loader).iter_batches(output_numpy=True))
    assert first["index"].dtype == np.int32 and first["py"].dtype == np.float64
    assert first["worker"].dtype == np.float32 and first["worker"].shape == (4, 3)  # a number made an array


# ----------------------------------------------------------------------------------------------- to_mindspore


@pytest.mark.parametrize("num_workers", [0, 2])
def test_to_mindspore_batch_map_is_the_same_stream(num_workers):
    seed_all(0)
    a = adapters.to_mindspore(_make(num_workers, False, collate_fn=PairsCollate()))
    expected = [list(a.iter_batches(output_numpy=True)) for _ in range(2)]
    seed_all(0)
    b = adapters.to_mindspore(_make(num_workers, False, collate_fn=PairsCollate()), batch_map=True)
    assert type(b).__name__ == "BatchDataset" and b.get_col_names() == a.get_col_names()
    assert b.output_shapes() == a.output_shapes() and b.output_types() == a.output_types()
    assert_bits([list(b.iter_batches(output_numpy=True)) for _ in range(2)], expected)
    b.close()


def test_to_mindspore_batch_map_with_a_dataset_and_seed():
    data = list(range(10))
    ds = adapters.to_mindspore(data, batch_size=4, shuffle=True, seed=0, batch_map=True, column_names=["x"])
    assert ds.get_col_names() == ["x"] and ds.get_dataset_size() == 3
    assert [b.tolist() for b in ds.iter_batches(output_numpy=True)] == [[3, 7, 5, 2], [0, 8, 1, 6], [9, 4]]


# ----------------------------------------------------------------------------------------------- refusals


class YieldsBatches(IterableDataset):
    def __iter__(self):
        for k in range(3):
            yield np.arange(4) + 4 * k


def test_a_loader_that_does_not_batch_is_refused_saying_use_to_mindspore():
    with pytest.raises(ValueError, match=r"does not batch samples \(batch_size=None\).*use adapters.to_mindspore"):
        adapters.sample_dataset(YieldsBatches(), batch_size=None)
    with pytest.raises(ValueError, match="batch_size=None.*to_mindspore"):
        adapters.to_mindspore(list(range(4)), batch_size=None, batch_map=True)


class Opaque:
    """A python object of the user's (not an array, number, string, dict, list)."""

    def __init__(self, i):
        self.i = i


def _ids(batch):
    return np.array([s[1].i if isinstance(s[1], Opaque) else s[1][0].i for s in batch])


def test_samples_holding_python_objects_travel_packed_and_what_cannot_travel_is_refused():
    import threading

    for data in ([(np.zeros(2), Opaque(i)) for i in range(4)], [(np.zeros(2), [Opaque(i)]) for i in range(4)]):
        samples = adapters.sample_dataset(data, batch_size=2, collate_fn=_ids)
        got = adapters.batch(samples, data, batch_size=2, collate_fn=_ids)
        assert [b.tolist() for b in got.iter_batches(output_numpy=True)] == [[0, 1], [2, 3]]
    # a lock cannot leave torch's worker: a collate needing it whole runs there only
    locked = [(np.zeros(2), threading.Lock()) for _ in range(4)]
    with pytest.raises(TypeError, match=r"cannot travel as a MindSpore row .*lock.*use adapters.to_mindspore"):
        adapters.sample_dataset(locked, batch_size=2, collate_fn=lambda b: np.stack([s[0] for s in b]))
    assert adapters.to_mindspore(locked, batch_size=2, collate_fn=lambda b: np.stack([s[0] for s in b]))


def test_batch_refuses_another_loader_a_non_sample_dataset_and_lost_columns():
    loader = _make(0, False)
    samples = adapters.sample_dataset(loader)
    with pytest.raises(ValueError, match="not the loader the samples come from: its dataset and batch_size are not"):
        adapters.batch(samples, _make(0, False, batch_size=3))
    with pytest.raises(TypeError, match="samples must be what adapters.sample_dataset"):
        adapters.batch(adapters.to_mindspore(_make(0, False)), loader)
    with pytest.raises(ValueError, match=r"keep their columns.*missing \['py'\]"):
        adapters.batch(samples.project(["index", "np", "torch", "worker", "seed"]), loader)
    plain = msds.GeneratorDataset([(np.array([i]),) for i in range(3)], ["x"], shuffle=False)
    with pytest.raises(TypeError, match="samples must be what adapters.sample_dataset"):
        adapters.batch(plain, loader)


def test_an_empty_batch_is_refused_by_name():
    class WithEmpty(Sampler):
        def __iter__(self):
            yield [0, 1]
            yield []

        def __len__(self):
            return 2

    samples = adapters.sample_dataset(list(range(4)), batch_sampler=WithEmpty())
    with pytest.raises(ValueError, match="batch 1 of epoch 0 has no samples.*to_mindspore"):
        list(samples.create_tuple_iterator(output_numpy=True))


def test_a_collate_that_starts_drawing_after_the_first_batch_is_refused_by_name():
    calls = {"n": 0}

    def late(batch):
        calls["n"] += 1
        if calls["n"] > 1:  # from the second batch on (num_workers=0: counted in the loader process)
            random.random()
        return np.stack([s for s in batch])

    data = [np.full(2, i) for i in range(8)]
    samples = adapters.sample_dataset(data, batch_size=2, collate_fn=late)
    with pytest.raises(RuntimeError, match="drew from python.random while collating batch 1.*but not while"):
        list(adapters.batch(samples, data, batch_size=2, collate_fn=late).iter_batches(output_numpy=True))


# ----------------------------------------------------------------------------------------------- sizes


def test_dataset_sizes_through_maps_come_from_the_loader_never_from_a_one_row_getter():
    def bucketed():
        loader = DataLoader(RandomAugDataset(14), batch_sampler=Buckets())
        return adapters.batch(adapters.sample_dataset(loader).map(operations=_identity, input_columns=["np"]), loader)

    def plain():
        loader = _make(0, False)
        return adapters.batch(adapters.sample_dataset(loader).project(list(_SAMPLE_NAMES)), loader)

    assert bucketed().get_dataset_size() == 5
    # MindSpore would count a callable batch size's rows by running the getter's copy of the source: 1 batch
    assert bucketed().map(operations=_identity, input_columns=["np"]).get_dataset_size() == 5
    with pytest.raises(TypeError, match="through a BatchDataset whose size MindSpore counts by running an epoch"):
        bucketed().take(3).get_dataset_size()
    assert plain().map(operations=_identity, input_columns=["np"]).get_dataset_size() == 4
    assert plain().take(3).get_dataset_size() == 3  # an int batch size: MindSpore's own arithmetic


_SAMPLE_NAMES = ("index", "py", "np", "torch", "worker", "seed")


def test_a_filter_on_a_to_mindspore_dataset_has_no_size_rather_than_one_rows_count():
    with pytest.raises(TypeError, match="through a FilterDataset whose size MindSpore counts by running an epoch"):
        adapters.to_mindspore(list(range(10)), batch_size=2).filter(lambda x: True).get_dataset_size()
    ds = adapters.to_mindspore(list(range(10)), batch_size=2, fixed_length=False)
    assert ds.map(operations=_identity, input_columns=["0"]).get_dataset_size() == 5  # torch's len(loader)


def test_sample_rows_are_the_samples_before_the_collate_changed_them():
    import copy

    def recording(batch):  # what torch's collate was given, before PairsCollate writes into it
        before = copy.deepcopy(batch)
        return before, PairsCollate()(batch)

    seed_all(0)
    expected = [
        [to_numpy_tree(s) for before, _ in e for s in before]
        for e in torch_epochs(_make(2, False, collate_fn=recording))
    ]
    seed_all(0)
    ds = adapters.sample_dataset(_make(2, False, collate_fn=recording))
    got = [list(ds.iter_samples(output_numpy=True)) for _ in range(EPOCHS)]
    assert got[0][1]["np"][0] != 1  # (PairsCollate writes the position: the rows hold the value before)
    assert_bits(got, expected)


# ----------------------------------------------------------------------------------------------- the guide


def _guide_snippets() -> list[str]:
    import pathlib
    import re

    from tests._helpers.subproc import ROOT

    text = pathlib.Path(ROOT, "docs", "batch-maps.md").read_text()
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_the_guide_has_its_three_examples():
    assert len(_guide_snippets()) == 3


@pytest.mark.parametrize("index", range(3))
def test_the_guides_snippets_run_as_written(index):
    from tests._helpers.subproc import run_python

    out = run_python(_guide_snippets()[index])
    if index == 2:
        assert out.splitlines()[0] == "['img', 'labels', 'path', 'shapes']"
        assert out.splitlines()[1:] == ["(4, 3, 64, 64) 6 4"] * 2


def test_model_train_over_batch_maps_sees_torchs_batches():
    import mindspore as ms
    from mindspore.train import Callback, Model

    seed_all(0)
    expected = [[(b["np"], b["index"]) for b in e] for e in torch_epochs(_make(2, False))]
    seed_all(0)
    loader = _make(2, False)
    samples = adapters.sample_dataset(loader).map(operations=_identity, input_columns=["np"])
    train_ds = adapters.batch(samples, loader).project(["np", "index"])
    seen: list[list[tuple]] = []

    class Record(Callback):
        def on_train_epoch_begin(self, run_context):
            seen.append([])

        def on_train_step_end(self, run_context):
            x, y = run_context.original_args().train_dataset_element
            seen[-1].append((x.asnumpy(), y.asnumpy()))

    class Net(ms.nn.Cell):
        def __init__(self):
            super().__init__()
            self.w = ms.Parameter(ms.Tensor(0.0, ms.float32))

        def construct(self, x, y):
            return self.w * 0

    net = Net()
    model = Model(net, optimizer=ms.nn.SGD(net.trainable_params(), 0.0))
    model.train(EPOCHS, train_ds, callbacks=[Record()], dataset_sink_mode=False)
    assert_bits(seen, expected)


_NUMPY_SIDE = """
import random
import numpy as np


class Draws:
    def __len__(self):
        return 10

    def __getitem__(self, i):
        return {"i": i, "py": random.random(), "np": np.random.rand(2)}


def pairs(batch):  # draws python's random in the worker, per pair of samples
    return np.array([random.random() < 0.5 for _ in range(len(batch) // 2)]), np.stack([s["np"] for s in batch])
"""


def test_batch_maps_without_torch_give_torchs_bytes():
    from tests._helpers.subproc import run_json

    code = (
        _NUMPY_SIDE
        + """
import json, sys
import adapters
data = Draws()
kw = dict(batch_size=4, shuffle=True, num_workers=2, collate_fn=pairs, seed=0)
random.seed(1); np.random.seed(1)
ds = adapters.batch(adapters.sample_dataset(data, **kw), data, **kw)
out = [[[a.tolist() for a in b] for b in ds.iter_batches(output_numpy=True)] for _ in range(2)]
print(json.dumps({"torch": "torch" in sys.modules, "batches": out}))
"""
    )
    out = run_json(code, block_torch=True)
    assert out["torch"] is False
    space: dict = {}
    exec(_NUMPY_SIDE, space)
    seed_all(1)
    loader = DataLoader(
        space["Draws"](),
        batch_size=4,
        shuffle=True,
        num_workers=2,
        collate_fn=space["pairs"],
        generator=torch.Generator().manual_seed(0),
    )
    assert out["batches"] == [[[a.tolist() for a in b] for b in loader] for _ in range(2)]
