"""IterableDataset sharding, torch's dataset combinators, batch_size=None, custom collate, epoch styles."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import (
    ChainDataset,
    ConcatDataset,
    DataLoader,
    Subset,
    TensorDataset,
    random_split,
)

import adapters
from porting import assert_equivalent
from tests.adapters._torch_side import RandomAugDataset, ShardedIterable, ms_epochs, seed_all, torch_epochs


def _same(make, epochs=2, seed=0):
    seed_all(seed)
    expected = torch_epochs(make(), epochs)
    seed_all(seed)
    actual = ms_epochs(adapters.to_mindspore(make()), epochs)
    assert_equivalent(actual, expected, rtol=0, atol=0)
    return expected


@pytest.mark.parametrize(
    "num_workers, persistent", [(0, False), (1, False), (2, False), (3, False), (1, True), (2, True), (3, True)]
)
def test_iterable_dataset_sharded_by_worker(num_workers, persistent):
    expected = _same(
        lambda: DataLoader(ShardedIterable(11), batch_size=3, num_workers=num_workers, persistent_workers=persistent)
    )
    if num_workers == 2:  # torch's documented interleaving: each worker emits its own partial batch
        assert [b["i"].tolist() for b in expected[0]] == [[0, 2, 4], [1, 3, 5], [6, 8, 10], [7, 9]]


@pytest.mark.parametrize("num_workers", [0, 2])
def test_chain_concat_subset_tensor_random_split(num_workers):
    _same(
        lambda: DataLoader(
            ChainDataset([ShardedIterable(5), ShardedIterable(4)]), batch_size=2, num_workers=num_workers
        )
    )
    _same(
        lambda: DataLoader(
            ConcatDataset([RandomAugDataset(5), RandomAugDataset(7)]),
            batch_size=3,
            shuffle=True,
            num_workers=num_workers,
        )
    )
    _same(
        lambda: DataLoader(
            Subset(RandomAugDataset(20), [3, 1, 4, 15, 9, 2, 6]), batch_size=2, shuffle=True, num_workers=num_workers
        )
    )
    x = torch.arange(40, dtype=torch.float32).reshape(20, 2)
    y = torch.arange(20)
    _same(lambda: DataLoader(TensorDataset(x, y), batch_size=6, shuffle=True, num_workers=num_workers))
    part, _ = random_split(RandomAugDataset(20), [0.6, 0.4], generator=torch.Generator().manual_seed(3))
    _same(lambda: DataLoader(part, batch_size=4, shuffle=True, num_workers=num_workers))


@pytest.mark.parametrize("num_workers", [0, 2])
def test_batch_size_none_and_custom_collate(num_workers):
    _same(lambda: DataLoader(RandomAugDataset(7), batch_size=None, shuffle=True, num_workers=num_workers))

    def collate(samples):  # returns torch tensors and a nested tuple: become numpy columns
        return torch.stack([s["torch"] for s in samples]), (torch.tensor([s["index"] for s in samples]), "tag")

    _same(lambda: DataLoader(RandomAugDataset(9), batch_size=4, collate_fn=collate, num_workers=num_workers))


def test_worker_init_fn_is_called_and_sees_worker_info():
    def init(worker_id):
        info = torch.utils.data.get_worker_info()
        np.random.seed(1000 + worker_id * 7 + info.num_workers)  # a worker_init_fn that reseeds numpy

    _same(lambda: DataLoader(RandomAugDataset(12), batch_size=2, num_workers=2, worker_init_fn=init))


def test_separate_iterators_continue_epoch_after_epoch():
    def make():
        return DataLoader(
            RandomAugDataset(10), batch_size=3, shuffle=True, num_workers=2, generator=torch.Generator().manual_seed(9)
        )

    seed_all(0)
    expected = torch_epochs(make(), 3)
    seed_all(0)
    ds = adapters.to_mindspore(make())
    actual = []
    for _ in range(3):  # a new one-epoch iterator each time, not one iterator with num_epochs=3
        actual.append([ds.structure.rebuild(r) for r in ds.create_tuple_iterator(num_epochs=1, output_numpy=True)])
    assert_equivalent(actual, expected, rtol=0, atol=0)


@pytest.mark.parametrize(
    "num_workers, persistent", [(0, False), (1, False), (1, True), (2, False), (2, True), (3, False), (4, True)]
)
def test_model_train_consumption_sees_torchs_batches(num_workers, persistent):
    """MindSpore's Model.train (one iterator over all epochs) feeds the network torch's batches."""
    from mindspore import nn
    from mindspore.train import Callback, Model

    class Net(nn.Cell):
        def __init__(self):
            super().__init__()
            self.dense = nn.Dense(3, 1)

        def construct(self, x, y):
            return ((self.dense(x).squeeze(-1) - y) ** 2).mean()

    class Recorder(Callback):
        def __init__(self):
            self.seen = []

        def on_train_step_end(self, run_context):
            self.seen.append([t.asnumpy() for t in run_context.original_args().train_dataset_element])

    class Pairs(torch.utils.data.Dataset):
        def __len__(self):
            return 10

        def __getitem__(self, i):
            return np.random.rand(3).astype(np.float32), np.float32(i)

    def make():
        return DataLoader(
            Pairs(),
            batch_size=4,
            shuffle=True,
            num_workers=num_workers,
            persistent_workers=persistent,
            generator=torch.Generator().manual_seed(4),
        )

    seed_all(0)  # num_workers=0: the samples draw from the global numpy stream, from the same state
    expected = [b for epoch in torch_epochs(make(), 3) for b in epoch]
    seed_all(0)
    ds = adapters.to_mindspore(make())
    net = Net()
    recorder = Recorder()
    Model(net, optimizer=nn.SGD(net.trainable_params(), 0.01)).train(
        3, ds, callbacks=[recorder], dataset_sink_mode=False
    )
    assert len(recorder.seen) == len(expected) == 9
    assert_equivalent(recorder.seen, expected, rtol=0, atol=0)
