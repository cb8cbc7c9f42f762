"""infinite=True reproduces YOLOv5's InfiniteDataLoader (one torch iterator over all epochs)."""

from __future__ import annotations

import pytest
import torch

import adapters
from porting import assert_equivalent
from tests.adapters._torch_side import RandomAugDataset, ms_epochs, seed_all, torch_epochs
from yolov5_pt import InfiniteDataLoader


@pytest.mark.parametrize("num_workers", [0, 2, 3, 4])
@pytest.mark.parametrize("n", [12, 14])  # 14 → 5 batches/epoch: dispatch shifts across epochs
def test_infinite_matches_infinite_dataloader(num_workers, n):
    def kwargs():
        return dict(batch_size=3, shuffle=True, num_workers=num_workers, generator=torch.Generator().manual_seed(5))

    seed_all(0)
    expected = torch_epochs(InfiniteDataLoader(RandomAugDataset(n), **kwargs()), 3)
    seed_all(0)
    actual = ms_epochs(adapters.to_mindspore(RandomAugDataset(n), infinite=True, **kwargs()), 3)
    assert_equivalent(actual, expected, rtol=0, atol=0)


def test_infinite_loader_object_is_refused_with_advice():
    loader = InfiniteDataLoader(RandomAugDataset(6), batch_size=2)
    with pytest.raises(
        TypeError,
        match="has already started its iterator.*the dataset with the same DataLoader keyword arguments "
        "plus infinite=True",
    ):
        adapters.to_mindspore(loader)
