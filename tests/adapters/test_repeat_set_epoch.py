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


@pytest.mark.parametrize("num_workers", [0, 1, 2, 3])
@pytest.mark.parametrize("batch_size", [1, 2, 4])  # 6, 3 and 2 batches per pass for each rank
def test_each_pass_shuffles_with_the_epoch_torch_really_uses(num_workers, batch_size):
    rank = 1
    loader = InfiniteDataLoader(Indexed(), batch_size=batch_size, sampler=_sampler(rank), num_workers=num_workers)
    expected = []
    for epoch in range(EPOCHS):
        loader.sampler.set_epoch(epoch)  # what train.py does
        expected.append([b.tolist() for b in loader])
    ds = adapters.to_mindspore(Indexed(), batch_size=batch_size, sampler=_sampler(rank), num_workers=num_workers,
                               infinite=True)
    got = [[] for _ in range(EPOCHS)]
    for n, batch in enumerate(ds.iter_batches(EPOCHS, output_numpy=True)):
        got[n // len(loader)].append(batch.tolist())
    assert_equivalent(got, expected, rtol=0, atol=0)
