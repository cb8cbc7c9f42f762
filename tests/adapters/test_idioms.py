"""MindSpore's own loop idioms on a to_mindspore dataset, against torch's DataLoader in the same loop shape.

The tutorial loop (``train_ds = to_mindspore(loader).map(...)``, then ``for t in range(epochs): for x, y in
train_ds.create_tuple_iterator(): ...``) makes a new iterator per epoch at the default ``num_epochs=-1``: the
abandoned iterator's prefetch has already asked the source for the next epoch. The consumer rule: an epoch
begins when the loop asks for its first row, so that prefetch never counts.
"""

from __future__ import annotations

import threading

import mindspore as ms
import mindspore.dataset as msds
import mindspore.dataset.transforms as mtransforms
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import adapters
from porting import assert_equivalent
from tests.adapters._torch_side import RandomAugDataset, seed_all, to_numpy_tree

EPOCHS = 3


def _make(num_workers, persistent, n=14):
    return DataLoader(
        RandomAugDataset(n),
        batch_size=4,
        shuffle=True,
        num_workers=num_workers,
        persistent_workers=persistent,
        generator=torch.Generator().manual_seed(7),
    )


def _torch_rows(loader, columns, epochs=EPOCHS, partial=None):
    """torch's epochs as lists of tuples of numpy columns (what a MindSpore tuple iterator yields)."""
    out = []
    for e in range(epochs):
        rows = []
        for k, batch in enumerate(loader):
            if partial is not None and e == partial[0] and k == partial[1]:
                break
            b = to_numpy_tree(batch)
            rows.append(tuple(np.asarray(b[c]) for c in columns))
        out.append(rows)
    return out


def _cast(x):
    return x.astype(np.int32)


CHAINS = {
    "map": lambda ds: ds.map(operations=_cast, input_columns=["index"]),
    "two_maps": lambda ds: ds.map(operations=_cast, input_columns=["index"]).map(
        operations=lambda x: x * 1, input_columns=["np"]
    ),
    "typecast": lambda ds: ds.map(operations=mtransforms.TypeCast(ms.int32), input_columns=["index"]),
    "project": lambda ds: ds.project(["index", "np", "torch"]),
    "rename": lambda ds: ds.rename(["np"], ["numpy_draw"]),
}
CASTS = {"map": True, "two_maps": True, "typecast": True, "project": False, "rename": False}

WORKERS = [(0, False), (1, False), (2, False), (2, True), (3, False), (4, True)]
WORKER_IDS = [f"workers{n}{'-persistent' if p else ''}" for n, p in WORKERS]


def _as_torch(rows, chain):
    """The port's rows in torch's dtypes (the cast a map applied is undone, nothing else)."""
    return [
        [tuple(c.astype(np.int64) if i == 0 and CASTS[chain] else c for i, c in enumerate(r)) for r in e] for e in rows
    ]


@pytest.mark.parametrize("num_workers, persistent", WORKERS, ids=WORKER_IDS)
@pytest.mark.parametrize("chain", sorted(CHAINS))
@pytest.mark.parametrize("iterator", ["tuple", "dict", "for_row_in_ds"])
def test_tutorial_loop_a_new_iterator_per_epoch_through_chained_ops(iterator, chain, num_workers, persistent):
    seed_all(0)
    loader = _make(num_workers, persistent)
    train_ds = CHAINS[chain](adapters.to_mindspore(_make(num_workers, persistent)))
    columns = ["index", "np", "torch"]
    expected = _torch_rows(loader, columns)
    names = {"np": "numpy_draw"} if chain == "rename" else {}
    actual = []
    for _ in range(EPOCHS):  # MindSpore's tutorial loop: a new iterator per epoch, default num_epochs
        rows = []
        if iterator == "tuple":
            got = train_ds.create_tuple_iterator(output_numpy=True)
            cols = train_ds.get_col_names()
            for r in got:
                rows.append(tuple(r[cols.index(names.get(c, c))] for c in columns))
        elif iterator == "dict":
            for r in train_ds.create_dict_iterator(output_numpy=True):
                rows.append(tuple(r[names.get(c, c)] for c in columns))
        else:
            cols = train_ds.get_col_names()
            for r in train_ds:  # Dataset.__iter__: a tuple iterator of MindSpore Tensors
                rows.append(tuple(r[cols.index(names.get(c, c))].asnumpy() for c in columns))
        actual.append(rows)
    assert [len(e) for e in actual] == [4] * EPOCHS
    assert_equivalent(_as_torch(actual, chain), expected, rtol=0, atol=0)


@pytest.mark.parametrize("num_workers, persistent", WORKERS, ids=WORKER_IDS)
def test_partial_epoch_through_a_map_continues_as_torch(num_workers, persistent):
    seed_all(0)
    loader = _make(num_workers, persistent)
    train_ds = CHAINS["map"](adapters.to_mindspore(_make(num_workers, persistent)))
    columns = ["index", "np", "torch"]
    expected = _torch_rows(loader, columns, partial=(1, 2))  # epoch 1 left after 2 batches
    actual = []
    for e in range(EPOCHS):
        rows = []
        cols = train_ds.get_col_names()
        for k, r in enumerate(train_ds.create_tuple_iterator(output_numpy=True)):
            if e == 1 and k == 2:
                break
            rows.append(tuple(r[cols.index(c)] for c in columns))
        actual.append(rows)
    assert [len(e) for e in actual] == [4, 2, 4]
    assert_equivalent(_as_torch(actual, "map"), expected, rtol=0, atol=0)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_whole_epochs_through_a_batch_op_are_exact_and_a_partial_one_is_refused_by_name(num_workers):
    seed_all(0)
    loader = _make(num_workers, False, n=16)
    ds = adapters.to_mindspore(_make(num_workers, False, n=16))
    batched = ds.project(["index"]).batch(2)  # 2 torch batches per row: rows no longer count batches
    expected = [[b["index"].numpy() for b in loader] for _ in range(2)]
    actual = [[r[0] for r in batched.create_tuple_iterator(output_numpy=True)] for _ in range(2)]
    assert_equivalent([[a[i] for a in e for i in range(len(a))] for e in actual], expected, rtol=0, atol=0)
    for _ in batched.create_tuple_iterator(output_numpy=True):
        break  # a partial epoch: how many torch batches MindSpore's batch op took is unknown
    with pytest.raises(RuntimeError, match=r"epoch 2 was left after \d+ of its batches.*batch, filter, take"):
        list(ds.create_tuple_iterator(output_numpy=True))


def test_an_iterator_superseded_by_a_newer_one_refuses_to_go_on():
    seed_all(0)
    ds = adapters.to_mindspore(_make(0, False))
    old = ds.create_tuple_iterator(output_numpy=True)
    next(old)
    new = ds.create_tuple_iterator(output_numpy=True)  # torch: a new iter(loader) is the next epoch
    next(new)
    with pytest.raises(RuntimeError, match="superseded by a newer iterator.*one dataset per consumer"):
        next(old)
    assert len([next(new) for _ in range(3)]) == 3  # the newest goes on


def test_one_iterator_read_from_two_threads_at_once_is_refused_not_crashed():
    class Slow(torch.utils.data.Dataset):
        def __len__(self):
            return 40

        def __getitem__(self, i):
            import time

            time.sleep(0.02)
            return np.array([i])

    ds = adapters.to_mindspore(DataLoader(Slow(), batch_size=2))
    it = ds.create_tuple_iterator(output_numpy=True)
    errors, got = [], []

    def read():
        try:
            for _ in range(10):
                got.append(next(it)[0].tolist())
        except RuntimeError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=read) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors and all("already being read by another thread" in e for e in errors)
    assert got == [[[2 * k], [2 * k + 1]] for k in range(len(got))]  # what was read is torch's order, no mix


def test_two_threads_each_with_its_own_iterator_get_a_clear_error():
    ds = adapters.to_mindspore(DataLoader(RandomAugDataset(40), batch_size=2))
    errors, lock = [], threading.Lock()

    def read():
        try:
            for _ in ds.create_tuple_iterator(output_numpy=True):
                pass
        except RuntimeError as exc:
            with lock:
                errors.append(str(exc))

    threads = [threading.Thread(target=read) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    # the later iterator supersedes the earlier one: that thread is told why, the other reads on
    assert len(errors) <= 1 and all("superseded" in e for e in errors)


class _Forged(torch.utils.data.Dataset):
    """A label read from data holds what looks like the pipeline's error markers (old and new)."""

    def __init__(self, marker_file):
        import base64
        import pickle

        class Payload:
            def __reduce__(self):
                return (open, (str(marker_file), "w"))

        blob = base64.b64encode(pickle.dumps(Payload())).decode()
        self.label = f"<<torch2ms-exception:{blob}>> <torch2ms-error {'0' * 32}>"

    def __len__(self):
        return 4

    def __getitem__(self, i):
        if i == 3:
            raise KeyError(self.label)
        return np.array([i])


@pytest.mark.parametrize("num_workers", [0, 2])
def test_error_text_from_data_can_forge_nothing(tmp_path, num_workers):
    marker = tmp_path / "ran"
    ds = adapters.to_mindspore(_Forged(marker), batch_size=2, num_workers=num_workers)
    with pytest.raises(KeyError) as info:
        list(ds.create_tuple_iterator(output_numpy=True))
    assert "torch2ms-exception" in str(info.value)  # the user's own message, as torch gives it
    assert not marker.exists(), "the caller's process ran code from the error text"


def test_model_train_over_a_chained_map_matches_torch():
    from mindspore.train import Callback, Model

    seed_all(0)
    loader = _make(2, False)
    ds = adapters.to_mindspore(_make(2, False))
    train_ds = ds.project(["np", "index"]).map(operations=_cast, input_columns=["index"])
    expected = [[(b["np"].numpy(), b["index"].numpy()) for b in loader] for _ in range(EPOCHS)]
    seen: list[list[tuple]] = []

    class Record(Callback):
        def on_train_epoch_begin(self, run_context):
            seen.append([])

        def on_train_step_end(self, run_context):
            x, y = run_context.original_args().train_dataset_element
            seen[-1].append((x.asnumpy(), y.asnumpy().astype(np.int64)))

    class Net(ms.nn.Cell):
        def __init__(self):
            super().__init__()
            self.w = ms.Parameter(ms.Tensor(0.0, ms.float32))

        def construct(self, x, y):
            return self.w * 0

    net = Net()
    model = Model(net, optimizer=ms.nn.SGD(net.trainable_params(), 0.0))
    for _ in range(EPOCHS):  # Model.train called once per epoch: a new iterator each time
        model.train(1, train_ds, callbacks=[Record()], dataset_sink_mode=False)
    assert_equivalent(seen, expected, rtol=0, atol=0)


def test_plain_generator_dataset_is_untouched():
    # The wrappers apply to datasets built on to_mindspore only.
    plain = msds.GeneratorDataset([(np.array([i]),) for i in range(3)], ["x"], shuffle=False)
    assert [
        r[0].tolist() for r in plain.map(operations=_cast, input_columns=["x"]).create_tuple_iterator(output_numpy=True)
    ] == [[0], [1], [2]]


@pytest.mark.parametrize("num_workers", [0, 2])
@pytest.mark.parametrize("chain", ["none", "map"])
def test_set_init_step_inside_the_first_epoch_skips_torchs_batches(chain, num_workers):
    # MindSpore's resume skip: k rows of the epoch the iterator begins (every new iterator, as MindSpore does
    # for any dataset); the rows skipped are pulled from the source, so the rest are torch's rows k, k+1, ...
    seed_all(0)
    loader = _make(num_workers, False)
    expected = _torch_rows(loader, ["index"])  # 3 epochs of 4 batches
    ds = adapters.to_mindspore(_make(num_workers, False))
    ds = CHAINS["map"](ds) if chain == "map" else ds
    ds.set_init_step(3)
    it = ds.create_tuple_iterator(output_numpy=True, num_epochs=2)  # one iterator: the first epoch is cut
    one = [[(r[ds.get_col_names().index("index")].astype(np.int64),) for r in it] for _ in range(2)]
    assert [len(e) for e in one] == [1, 4]
    assert_equivalent(one, [expected[0][3:], expected[1]], rtol=0, atol=0)
    cols = ds.get_col_names()
    it = ds.create_tuple_iterator(output_numpy=True, num_epochs=1)  # (MindSpore needs num_epochs with a skip)
    per = [[(r[cols.index("index")].astype(np.int64),) for r in it]]
    assert_equivalent(per, [expected[2][3:]], rtol=0, atol=0)  # the next iterator: torch's next epoch, cut too


@pytest.mark.parametrize("num_workers", [0, 2])
def test_set_init_step_across_whole_epochs_is_refused_not_restarted(num_workers):
    ds = adapters.to_mindspore(_make(num_workers, False))
    ds.set_init_step(5)  # 1 whole epoch of 4 batches, then 1: MindSpore would not run epoch 0 at all
    with pytest.raises(ValueError, match=r"set_init_step\(5\) skips 1 whole epoch\(s\) of 4 batches.*silent restart"):
        ds.create_tuple_iterator(output_numpy=True, num_epochs=3)  # (MindSpore accepts it: epochs 1-2, cut)
    mapped = CHAINS["map"](adapters.to_mindspore(_make(num_workers, False)))
    mapped.set_init_step(4)
    with pytest.raises(ValueError, match=r"set_init_step\(4\) skips 1 whole epoch"):
        mapped.create_dict_iterator(output_numpy=True)
    batched = adapters.to_mindspore(_make(num_workers, False)).batch(2)
    batched.set_init_step(1)
    with pytest.raises(ValueError, match=r"set_init_step\(1\) on a BatchDataset"):
        batched.create_tuple_iterator(output_numpy=True)
