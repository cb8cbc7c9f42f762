"""Loader factories for tests/porting/test_check.py, written the way users write theirs."""

import os
import time

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

_CREATOR = os.getpid()


class Images(Dataset):
    """Random images (torch's stream) and labels (numpy's): both must be reproduced per worker."""

    def __init__(self, n=12, raise_at=None, port_only=False):
        self.n, self.raise_at, self.epoch, self.perturb, self.port_only = n, raise_at, 0, None, port_only

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i == self.raise_at and (not self.port_only or os.getpid() != _CREATOR):
            raise KeyError(f"no annotation for sample {i}")
        img = torch.rand(3, 6, 5)
        if self.perturb is not None and os.getpid() != _CREATOR and (self.epoch, i) == self.perturb[:2]:
            img[self.perturb[2]] += 1.0  # only in the port's processes: a one-pixel difference
        return {"img": img, "label": int(np.random.randint(100))}


class EpochSampler(Sampler):
    """Sequential indices; set_epoch tells the dataset the epoch (as DistributedSampler is told)."""

    def __init__(self, dataset):
        self.dataset = dataset

    def set_epoch(self, epoch):
        self.dataset.epoch = epoch

    def __iter__(self):
        return iter(range(len(self.dataset)))

    def __len__(self):
        return len(self.dataset)


class Endless(Sampler):
    """detectron2-style infinite shuffled stream."""

    def __init__(self, n, seed=0):
        self.n, self.seed = n, seed

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed)
        while True:
            yield from torch.randperm(self.n, generator=g).tolist()


def equal():
    return DataLoader(Images(), batch_size=4, shuffle=True, num_workers=2)


def equal_pair():
    return Images(), dict(batch_size=4, shuffle=True, num_workers=0)


def one_pixel():
    ds = Images()
    ds.perturb = (1, 6, (2, 3, 1))  # epoch 1, sample 6 = batch 1, item 2; pixel [2, 3, 1]
    return DataLoader(ds, batch_size=4, sampler=EpochSampler(ds), num_workers=0)


def empty():
    return DataLoader(Images(n=0), batch_size=4)


def raises():
    return DataLoader(Images(raise_at=5), batch_size=4, num_workers=2)


def raises_in_port():
    return DataLoader(Images(raise_at=5, port_only=True), batch_size=4, num_workers=0)


def endless():
    return DataLoader(Images(n=10), batch_size=4, sampler=Endless(10), num_workers=1)


def distributed():
    ds = Images(n=16)
    return DataLoader(
        ds, batch_size=2, sampler=DistributedSampler(ds, num_replicas=2, rank=1, shuffle=True, seed=3), num_workers=2
    )


def _clock_seed(worker_id):
    np.random.seed(time.time_ns() % 2**32)  # seen in public projects: a different stream every run


def clock_seeded():
    return DataLoader(Images(), batch_size=4, num_workers=2, worker_init_fn=_clock_seed)


def not_a_loader():
    return [1, 2, 3]


NOT_CALLABLE = 3


# ------------------------------------------------------------------ hardening (issue 18): exits, endless, errors


def exits_0():
    import sys

    sys.exit(0)  # seen in scripts turned into modules: a main() guard missing


def exits_5():
    import sys

    sys.exit(5)


class ExitingDataset(Images):
    def __getitem__(self, i):
        if i == 5:
            import sys

            sys.exit(0)
        return super().__getitem__(i)


def exits_in_getitem():
    return DataLoader(ExitingDataset(), batch_size=4, num_workers=0)


class Stream(torch.utils.data.IterableDataset):
    """A stream of labelled images, endless when ``n`` is None (webdataset / log readers); no ``__len__``."""

    def __init__(self, n=None):
        self.n = n

    def __iter__(self):
        i = 0
        while self.n is None or i < self.n:
            yield {"img": torch.rand(3, 4, 4), "label": i}
            i += 1


class SizedStream(Stream):
    """An endless stream whose ``__len__`` claims ``length`` samples."""

    def __init__(self, length):
        super().__init__(None)
        self.length = length

    def __len__(self):
        return self.length


def stream_endless():
    return DataLoader(Stream(), batch_size=4, num_workers=0)


def stream_endless_workers():
    return DataLoader(Stream(), batch_size=4, num_workers=2)


def stream_finite():
    return DataLoader(Stream(n=10), batch_size=4, num_workers=0)


def stream_lying_len():
    return DataLoader(SizedStream(8), batch_size=4, num_workers=0)


class LyingSampler(Sampler):
    """mmengine's InfiniteSampler shape: ``__len__`` is the dataset's size, ``__iter__`` never ends."""

    def __init__(self, n):
        self.n = n

    def __iter__(self):
        while True:
            yield from range(self.n)

    def __len__(self):
        return self.n


def lying_sampler():
    return DataLoader(Images(n=8), batch_size=4, sampler=LyingSampler(8), num_workers=0)


class ShiftingSampler(Sampler):
    """Epoch e visits samples 2e .. 2e + 11 (set_epoch moves the window), so a bad sample shows only in epoch 1."""

    def __init__(self):
        self.epoch = 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __iter__(self):
        return iter(range(2 * self.epoch, 2 * self.epoch + 12))

    def __len__(self):
        return 12


def raises_in_epoch_1():
    return DataLoader(Images(n=14, raise_at=13), batch_size=4, sampler=ShiftingSampler(), num_workers=2)


def raises_main_process():
    return DataLoader(Images(raise_at=5), batch_size=4, num_workers=0)
