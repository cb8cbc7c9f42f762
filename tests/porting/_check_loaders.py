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
    return DataLoader(ds, batch_size=2, sampler=DistributedSampler(ds, num_replicas=2, rank=1, shuffle=True, seed=3),
                      num_workers=2)


def _clock_seed(worker_id):
    np.random.seed(time.time_ns() % 2**32)  # seen in public projects: a different stream every run


def clock_seeded():
    return DataLoader(Images(), batch_size=4, num_workers=2, worker_init_fn=_clock_seed)


def not_a_loader():
    return [1, 2, 3]


NOT_CALLABLE = 3
