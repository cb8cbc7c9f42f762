"""infinite=True with a sampler that has set_epoch: the epoch each pass really uses in torch.

YOLOv5's ``InfiniteDataLoader`` keeps one torch iterator over all epochs. train.py calls
``loader.sampler.set_epoch(epoch)`` at the top of each epoch, but the iterator's prefetching
(``prefetch_factor * num_workers`` index batches ahead) has already started the next pass of the
sampler by then, so with workers pass q shuffles with an earlier epoch than q. The port must give
the batches torch gives, not the ones the loop seems to ask for.
"""

import pytest
import torch
from torch.utils.data import Dataset, DistributedSampler

import adapters
from porting import assert_equivalent
from yolov5_pt import InfiniteDataLoader

EPOCHS = 5


class Indexed(Dataset):
    def __len__(self):
        return 12

    def __getitem__(self, i):
        return torch.tensor(i)


def _sampler(rank):
    return DistributedSampler(Indexed(), num_replicas=2, rank=rank, shuffle=True, seed=3)


def _torch(batch_size, num_workers, prefetch_factor):
    extra = {"prefetch_factor": prefetch_factor} if num_workers else {}
    loader = InfiniteDataLoader(Indexed(), batch_size=batch_size, sampler=_sampler(1), num_workers=num_workers, **extra)
    expected = []
    for epoch in range(EPOCHS):
        loader.sampler.set_epoch(epoch)  # type: ignore[attr-defined]  # what train.py does (a DistributedSampler)
        expected.append([b.tolist() for b in loader])
    return expected, len(loader), extra


def _port(batch_size, num_workers, extra, loop, per_epoch):
    ds = adapters.to_mindspore(
        Indexed(), batch_size=batch_size, sampler=_sampler(1), num_workers=num_workers, infinite=True, **extra
    )
    if loop == "one iterator":
        got: list[list] = [[] for _ in range(EPOCHS)]
        for n, batch in enumerate(ds.iter_batches(EPOCHS, output_numpy=True)):
            got[n // per_epoch].append(batch.tolist())
        return got
    return [
        [ds.structure.rebuild(r).tolist() for r in ds.create_tuple_iterator(num_epochs=1, output_numpy=True)]
        for _ in range(EPOCHS)
    ]


@pytest.mark.parametrize("loop", ["one iterator", "iterator per epoch"])
@pytest.mark.parametrize("num_workers", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("batch_size", [1, 4])  # 6 and 2 batches per pass for each rank
def test_each_pass_shuffles_with_the_epoch_torch_really_uses(loop, num_workers, batch_size):
    expected, per_epoch, extra = _torch(batch_size, num_workers, 2)
    assert_equivalent(_port(batch_size, num_workers, extra, loop, per_epoch), expected, rtol=0, atol=0)


@pytest.mark.parametrize("prefetch_factor", [1, 3])
def test_the_lag_follows_prefetch_factor(prefetch_factor):
    expected, per_epoch, extra = _torch(2, 2, prefetch_factor)  # 3 batches per pass, 2 or 6 in flight
    assert_equivalent(_port(2, 2, extra, "one iterator", per_epoch), expected, rtol=0, atol=0)


def test_model_train_feeds_the_batches_torch_gives():
    from mindspore import nn
    from mindspore.train import Callback, Model

    class Seen(Callback):
        def __init__(self):
            self.batches = []

        def on_train_step_end(self, run_context):
            self.batches.append(run_context.original_args().train_dataset_element[0].asnumpy().tolist())

    class Net(nn.Cell):
        def __init__(self):
            super().__init__()
            self.dense = nn.Dense(1, 1)

        def construct(self, x):
            return self.dense(x.astype(self.dense.weight.dtype).reshape(-1, 1)).mean()

    expected, _, extra = _torch(4, 2, 2)
    ds = adapters.to_mindspore(Indexed(), batch_size=4, sampler=_sampler(1), num_workers=2, infinite=True, **extra)
    seen, net = Seen(), Net()
    Model(net, optimizer=nn.SGD(net.trainable_params(), 0.0)).train(
        EPOCHS, ds, callbacks=[seen], dataset_sink_mode=False
    )
    assert seen.batches == [b for epoch in expected for b in epoch]


@pytest.mark.parametrize("num_workers", [0, 2])
def test_a_partial_epoch_is_refused_not_reproduced_wrongly(num_workers):
    # torch: a partial epoch of InfiniteDataLoader moves the epoch boundaries against the sampler's
    # passes, so later passes shuffle with other epochs than they would; the port refuses instead.
    ds = adapters.to_mindspore(Indexed(), batch_size=1, sampler=_sampler(1), num_workers=num_workers, infinite=True)
    assert len(list(ds.create_tuple_iterator(num_epochs=1))) == 6
    for k, _ in enumerate(ds.create_tuple_iterator(num_epochs=1)):
        if k == 1:
            break
    with pytest.raises(RuntimeError, match="epoch 1 was left after 2 batches. With infinite=True"):
        next(iter(ds.create_tuple_iterator(num_epochs=1)))


def test_a_partial_epoch_without_set_epoch_still_continues_exactly():
    loader = InfiniteDataLoader(Indexed(), batch_size=1, sampler=_sampler(1), num_workers=2)
    # strict=False: the first 2 or 6 batches of an endless iterator (truncation is the point)
    expected = [[b.tolist() for k, b in zip(range(2 if e == 1 else 6), loader, strict=False)] for e in range(3)]
    ds = adapters.to_mindspore(
        Indexed(), batch_size=1, sampler=_sampler(1), num_workers=2, infinite=True, set_epoch=False
    )
    got = [
        [r.tolist() for k, r in zip(range(2 if e == 1 else 6), ds.iter_batches(1, output_numpy=True), strict=False)]
        for e in range(3)
    ]
    assert got == expected
