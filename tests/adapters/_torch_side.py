"""Shared fixtures for adapters tests: datasets with random augmentations, and both sides' batches."""

from __future__ import annotations

import random

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info


def to_numpy_tree(obj):
    """torch batch → the same structure with numpy leaves (what the MindSpore side yields)."""
    if isinstance(obj, torch.Tensor):
        return obj.numpy()
    if isinstance(obj, dict):
        return {k: to_numpy_tree(v) for k, v in obj.items()}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(to_numpy_tree(v) for v in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_numpy_tree(v) for v in obj)
    return obj


class RandomAugDataset(Dataset):
    """Every sample draws from python random, numpy and torch global streams, and records its worker."""

    def __init__(self, n=23):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        info = get_worker_info()
        return {
            "index": i,
            "py": random.random(),
            "np": np.random.rand(3).astype(np.float32) + i,
            "torch": torch.rand(2, 2) + i,
            "worker": -1 if info is None else info.id,
            "seed": -1 if info is None else info.seed,
        }


class ShardedIterable(IterableDataset):
    """Yields range(n), sharded by worker (stride), with a random draw per item."""

    def __init__(self, n=11):
        self.n = n

    def __iter__(self):
        info = get_worker_info()
        start, step = (0, 1) if info is None else (info.id, info.num_workers)
        for i in range(start, self.n, step):
            yield {"i": i, "r": torch.rand(1), "np": np.random.randint(0, 1000)}


def seed_all(seed):
    """Seed the three global streams a torch loader (and its num_workers=0 dataset) draws from."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def torch_epochs(loader, epochs, *, set_epoch=True):
    out = []
    for e in range(epochs):
        if set_epoch and hasattr(loader.sampler, "set_epoch"):
            loader.sampler.set_epoch(e)
        out.append([to_numpy_tree(b) for b in loader])
    return out


def ms_epochs(ds, epochs):
    it = ds.create_tuple_iterator(num_epochs=epochs, output_numpy=True)
    return [[ds.structure.rebuild(row) for row in it] for _ in range(epochs)]
