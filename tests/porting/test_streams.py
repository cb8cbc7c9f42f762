"""own_streams: two in-process loaders walked in lock step each see the global streams they would alone."""

import random

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from porting import compare_pipelines
from torch2ms_base._streams import StreamState, own_streams


class Augmenting(Dataset):
    """Draws from all three global streams in the loading process (num_workers=0)."""

    def __len__(self):
        return 8

    def __getitem__(self, i):
        return torch.rand(2) + np.random.rand() + random.random()


def _epochs(loader, n=2):
    for _ in range(n):
        yield from loader


def _two_loaders():
    torch.manual_seed(0), np.random.seed(0), random.seed(0)
    a = DataLoader(Augmenting(), batch_size=4, shuffle=True)
    sa = StreamState.capture()
    torch.manual_seed(0), np.random.seed(0), random.seed(0)
    b = DataLoader(Augmenting(), batch_size=4, shuffle=True)
    return a, sa, b, StreamState.capture()


def test_without_own_streams_lock_step_interleaves_the_draws():
    a, _, b, _ = _two_loaders()
    assert compare_pipelines(_epochs(a), _epochs(b), progress=False).verdict == "DIFFER"


def test_with_own_streams_each_gives_what_it_gives_alone_and_the_caller_is_untouched():
    a, sa, b, sb = _two_loaders()
    random.seed(123)
    before = StreamState.capture()
    report = compare_pipelines(own_streams(_epochs(a), sa), own_streams(_epochs(b), sb), progress=False)
    assert report.verdict == "bit-identical" and report.batches == 4
    after = StreamState.capture()
    assert random.getstate() == before["python.random"]
    assert np.array_equal(after["numpy.random"][1], before["numpy.random"][1])
    assert after["numpy.random"][2] == before["numpy.random"][2]
    assert torch.equal(after["torch"], before["torch"])
    torch.manual_seed(0), np.random.seed(0), random.seed(0)
    alone = [b.clone() for b in _epochs(DataLoader(Augmenting(), batch_size=4, shuffle=True))]
    a, sa, _, _ = _two_loaders()
    assert compare_pipelines(own_streams(_epochs(a), sa), alone, progress=False).verdict == "bit-identical"
