"""Datasets, samplers and collates shaped like those real training code hands to torch's DataLoader.

Each one is written for these tests, after a pattern seen in public projects: DETR / torchvision's
detection references (distributed batch sampler, padded images + per-image targets), mmdet / mmengine
(aspect-ratio grouped batches, ``pseudo_collate``, ``InfiniteSampler``), detectron2 (``TrainingSampler``,
trivial list collate), fairseq-style token-budget bucketing, YOLOv5 (augmentations drawing from every
global stream, multi-scale draws in the training loop) and torch's own DataLoader tests (worker_init_fn
sharding an iterable range). All data are tiny and deterministic given the random streams.
"""

from __future__ import annotations

import collections.abc
import itertools
import math
import multiprocessing
import os
import random
import threading
import time
import zlib

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset, Sampler, get_worker_info

# Every worker_init_fn below appends here. Workers append to their own copy (their own process), so in the
# caller's process the list must stay empty: a worker_init_fn run there would change the caller's state.
WORKER_INIT_CALLS: list[int] = []


def _worker_id() -> int:
    info = get_worker_info()
    return -1 if info is None else info.id


# --------------------------------------------------------------------------- detection (DETR / mmdet)


class CocoLikeDetection(Dataset):
    """(image CHW float32 of a per-sample size, target dict with 0..3 boxes); flip + scale augmentation.

    The flip draws from torch's global stream (torchvision's RandomHorizontalFlip), the scale from python's
    (DETR's RandomResize uses ``random.choice``). ``flag`` is mmdet's aspect-ratio group: 1 when w > h.
    """

    def __init__(self, n: int = 24):
        self.n = n
        self.sizes = [(4 + i % 3, 4 + (i * 5) % 4) for i in range(n)]
        self.flag = np.array([1 if w > h else 0 for h, w in self.sizes], dtype=np.uint8)

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        h, w = self.sizes[i]
        img = torch.arange(3 * h * w, dtype=torch.float32).reshape(3, h, w) / 10 + i
        k = i % 4
        boxes = torch.tensor([[j, j, j + 2.0, j + 3.0] for j in range(k)], dtype=torch.float32).reshape(k, 4)
        if torch.rand(1).item() < 0.5:
            img = img.flip(-1)
            boxes = torch.stack([w - boxes[:, 2], boxes[:, 1], w - boxes[:, 0], boxes[:, 3]], dim=1)
        scale = random.choice([0.5, 1.0, 2.0])
        target = {
            "boxes": boxes * scale,
            "labels": torch.arange(k, dtype=torch.int64) + i,
            "image_id": torch.tensor([i]),
            "orig_size": torch.tensor([h, w]),
        }
        return img * scale, target


def detr_collate(batch):
    """Pad images to the batch's largest H, W with a padding mask; targets stay one dict per image."""
    images, targets = tuple(zip(*batch, strict=True))
    height = max(im.shape[1] for im in images)
    width = max(im.shape[2] for im in images)
    padded = torch.zeros(len(images), images[0].shape[0], height, width)
    mask = torch.ones(len(images), height, width, dtype=torch.bool)
    for k, im in enumerate(images):
        padded[k, :, : im.shape[1], : im.shape[2]] = im
        mask[k, : im.shape[1], : im.shape[2]] = False
    return padded, mask, targets


class GroupedBatchSampler(Sampler):
    """mmdet-style aspect-ratio grouping: indices of the inner sampler go to one of 2 buckets by flag; a
    bucket that reaches ``batch_size`` is yielded. Leftovers are yielded mixed at the end (or dropped).

    This class has no ``set_epoch``: a training loop reaches the inner sampler as ``.sampler``.
    """

    def __init__(self, sampler, flags, batch_size: int, drop_last: bool = False):
        self.sampler = sampler
        self.flags = flags
        self.batch_size = batch_size
        self.drop_last = drop_last

    def __iter__(self):
        buckets: dict[int, list[int]] = {0: [], 1: []}
        for idx in self.sampler:
            bucket = buckets[int(self.flags[idx])]
            bucket.append(idx)
            if len(bucket) == self.batch_size:
                yield list(bucket)
                bucket.clear()
        rest = buckets[0] + buckets[1]
        for start in range(0, len(rest), self.batch_size):
            chunk = rest[start : start + self.batch_size]
            if len(chunk) == self.batch_size or not self.drop_last:
                yield chunk

    def __len__(self):
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)


class EpochGroupedBatchSampler(GroupedBatchSampler):
    """The same, exposing ``set_epoch`` that forwards to the inner (distributed) sampler."""

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)


# --------------------------------------------------------------------------- worker_init_fn patterns


class OffsetDataset(Dataset):
    """A map dataset whose per-worker ``offset`` is set by ``offset_worker_init_fn``."""

    def __init__(self, n: int = 24):
        self.n = n
        self.offset = 0

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {"value": i + self.offset, "worker": _worker_id(), "noise": int(np.random.randint(0, 1 << 16))}


def offset_worker_init_fn(worker_id: int) -> None:
    WORKER_INIT_CALLS.append(worker_id)
    info = get_worker_info()
    info.dataset.offset = info.id * 1000
    np.random.seed(info.seed % 2**32)  # the classic "reseed numpy in every worker" fix


class RangeIterable(IterableDataset):
    """Yields ``start..end-1``; ``shard_range_worker_init_fn`` narrows the range in each worker."""

    def __init__(self, start: int, end: int):
        self.start = start
        self.end = end

    def __iter__(self):
        for i in range(self.start, self.end):
            yield {"i": i, "square": torch.tensor([i * i]), "r": random.random(), "worker": _worker_id()}


def shard_range_worker_init_fn(worker_id: int) -> None:
    WORKER_INIT_CALLS.append(worker_id)
    info = get_worker_info()
    ds = info.dataset
    base, extra = divmod(ds.end - ds.start, info.num_workers)
    begin = ds.start + info.id * base + min(info.id, extra)
    ds.start, ds.end = begin, begin + base + (1 if info.id < extra else 0)


def reseed_numpy_worker_init_fn(worker_id: int) -> None:
    WORKER_INIT_CALLS.append(worker_id)
    np.random.seed(torch.initial_seed() % 2**32)


# --------------------------------------------------------------------------- global-stream augmentation


class MosaicLikeDataset(Dataset):
    """YOLOv5-like augmentation: python ``random`` (mosaic choice, partner), numpy (hsv gains), torch (flip)."""

    def __init__(self, n: int = 20):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        mosaic = random.random() < 0.5
        partner = random.randint(0, self.n - 1) if mosaic else i
        gains = (np.random.uniform(-1, 1, 3) * np.array([0.015, 0.7, 0.4]) + 1).astype(np.float32)
        flip = bool(torch.rand(1).item() < 0.5)
        img = np.full((3, 4, 4), float(i), dtype=np.float32) * gains[:, None, None]
        img[:, 0, 0] += np.arange(3, dtype=np.float32)
        if flip:
            img = img[:, :, ::-1].copy()
        labels = np.array([[i, partner, int(flip)]], dtype=np.float32)
        return torch.from_numpy(img), torch.from_numpy(labels), i


def multiscale_size(imgsz: int = 64, gs: int = 32) -> int:
    """YOLOv5's per-batch multi-scale draw, made by the training loop from python's global stream."""
    return random.randrange(int(imgsz * 0.5), int(imgsz * 1.5) + gs) // gs * gs


class CountingAugDataset(MosaicLikeDataset):
    """MosaicLikeDataset that also counts ``__getitem__`` calls in a process-shared counter."""

    def __init__(self, n: int = 20):
        super().__init__(n)
        self.calls = multiprocessing.Value("i", 0)

    def __getitem__(self, i):
        with self.calls.get_lock():
            self.calls.value += 1
        return super().__getitem__(i)


# --------------------------------------------------------------------------- datasets that cannot be copied


class LockedDataset(Dataset):
    """Holds a ``threading.Lock`` (as caches guarded for thread-pool readers do)."""

    def __init__(self, n: int = 20):
        self.n = n
        self.lock = threading.Lock()

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        with self.lock:
            return {"i": i, "r": random.random(), "t": torch.rand(2)}


def write_records(path, n: int) -> None:
    """``n`` fixed-size records of 4 int32 each: record i is (i, 2i, 3i, i*i)."""
    data = np.array([[i, 2 * i, 3 * i, i * i] for i in range(n)], dtype=np.int32)
    with open(path, "wb") as f:
        f.write(data.tobytes())


class FileBackedDataset(Dataset):
    """Keeps an open file handle (like an LMDB / HDF5 / tar reader opened in ``__init__``)."""

    RECORD = 16

    def __init__(self, path, n: int = 20):
        self.n = n
        self.fh = open(path, "rb")

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        raw = os.pread(self.fh.fileno(), self.RECORD, self.RECORD * i)  # no shared file offset between workers
        rec = np.frombuffer(raw, dtype=np.int32).copy()
        return {"rec": rec + np.random.randint(0, 100), "i": i}

    def close(self):
        self.fh.close()


class GeneratorAttrDataset(Dataset):
    """Keeps a partly consumed python generator (a lazy scan of a catalogue) as an attribute."""

    def __init__(self, n: int = 20):
        self.n = n
        self.scan = self._catalogue()
        self.items = [next(self.scan) for _ in range(n)]

    @staticmethod
    def _catalogue():
        for k in itertools.count():
            yield (k * 37) % 101

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {"item": self.items[i], "t": torch.rand(1) + self.items[i]}


class SharedValueDataset(Dataset):
    """Counts ``__getitem__`` calls in a ``multiprocessing.Value`` (shared with forked workers)."""

    def __init__(self, n: int = 20):
        self.n = n
        self.calls = multiprocessing.Value("i", 0)

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        with self.calls.get_lock():
            self.calls.value += 1
        return {"i": i, "np": np.random.rand(2)}


class NoCopyDataset(Dataset):
    """Refuses ``copy.deepcopy`` / ``copy.copy`` / pickle: nothing may copy the caller's dataset."""

    def __init__(self, n: int = 20):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {"i": i, "r": random.random(), "t": torch.rand(1)}

    def __deepcopy__(self, memo):
        raise TypeError("NoCopyDataset must not be deep-copied")

    def __reduce_ex__(self, protocol):
        raise TypeError("NoCopyDataset must not be copied or pickled")


class PathListDataset(Dataset):
    """A big list of file paths (1 000 000 entries), as image-folder datasets hold."""

    def __init__(self, n: int = 1_000_000):
        self.paths = [f"/data/train/{i // 1000:04d}/img_{i:07d}.jpg" for i in range(n)]

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        path = self.paths[i]
        return {"i": i, "crc": zlib.crc32(path.encode()), "len": len(path), "np": np.random.rand(1)}


# --------------------------------------------------------------------------- state a dataset owns


class OwnRngDataset(Dataset):
    """Draws from its own ``np.random.Generator`` (not from a global stream)."""

    def __init__(self, n: int = 20):
        self.n = n
        self.rng = np.random.default_rng(0)

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {"i": i, "jitter": self.rng.random(2).astype(np.float32)}


class CallCountingDataset(Dataset):
    """Counts its own ``__getitem__`` calls in a plain attribute, and returns the count."""

    def __init__(self, n: int = 20):
        self.n = n
        self.calls = 0

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        self.calls += 1
        return {"i": i, "calls": self.calls}


class KeyErrorDataset(Dataset):
    """A lookup table with a hole: ``dataset[bad]`` raises KeyError."""

    def __init__(self, n: int = 12, bad: int = 5):
        self.n = n
        self.bad = bad

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i == self.bad:
            raise KeyError(f"annotation for sample {i} is missing")
        return np.array([i, i + 1])


class SleepyDataset(Dataset):
    """One sample takes ``seconds`` to load (a stuck network read)."""

    def __init__(self, n: int = 12, slow_index: int = 5, seconds: float = 30.0):
        self.n = n
        self.slow_index = slow_index
        self.seconds = seconds

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i == self.slow_index:
            time.sleep(self.seconds)
        return np.array([i])


# --------------------------------------------------------------------------- infinite and bucketing samplers


class TrainingSampler(Sampler):
    """detectron2-style: an endless stream of shuffled indices (one permutation after another), sharded by
    rank with a stride. No ``__len__``."""

    def __init__(self, size: int, *, shuffle: bool = True, seed: int = 0, rank: int = 0, world_size: int = 1):
        self.size = size
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size

    def _endless(self):
        g = torch.Generator()
        g.manual_seed(self.seed)
        while True:
            order = torch.randperm(self.size, generator=g) if self.shuffle else torch.arange(self.size)
            yield from order.tolist()

    def __iter__(self):
        yield from itertools.islice(self._endless(), self.rank, None, self.world_size)


class InfiniteSampler(Sampler):
    """mmengine-style infinite sampler: one seeded permutation per round, this rank's slice of it; ``__len__``
    is the dataset size and ``set_epoch`` does nothing (there are no epochs to reshuffle)."""

    def __init__(self, dataset, *, seed: int = 0, rank: int = 0, world_size: int = 1):
        self.size = len(dataset)
        self.seed = seed
        self.rank = rank
        self.world_size = world_size

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed)
        while True:
            yield from torch.randperm(self.size, generator=g)[self.rank :: self.world_size].tolist()

    def __len__(self):
        return self.size

    def set_epoch(self, epoch: int) -> None:
        pass


SEQUENCE_LENGTHS = [1 + (i * 7) % 9 for i in range(30)]


class TokenDataset(Dataset):
    """Token id sequences of per-sample length; the first token is a masked draw from python's stream."""

    def __init__(self, lengths=SEQUENCE_LENGTHS):
        self.lengths = list(lengths)

    def __len__(self):
        return len(self.lengths)

    def __getitem__(self, i):
        tokens = torch.arange(1, self.lengths[i] + 1, dtype=torch.int64) + 100 * i
        tokens[0] = random.randint(1000, 1999)
        return tokens


class TokenBudgetBatchSampler(Sampler):
    """fairseq-style bucketing: shuffle (seeded by ``seed + epoch``), then pack indices greedily while
    ``len(batch) * longest <= max_tokens``. How many batches an epoch has depends on the order. No __len__."""

    def __init__(self, lengths, max_tokens: int, seed: int = 0):
        self.lengths = list(lengths)
        self.max_tokens = max_tokens
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _batches(self):
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        batches: list[list[int]] = []
        current: list[int] = []
        longest = 0
        for idx in torch.randperm(len(self.lengths), generator=g).tolist():
            grown = max(longest, self.lengths[idx])
            if current and grown * (len(current) + 1) > self.max_tokens:
                batches.append(current)
                current, grown = [], self.lengths[idx]
            current.append(idx)
            longest = grown
        if current:
            batches.append(current)
        return batches

    def __iter__(self):
        yield from self._batches()


class SizedTokenBudgetBatchSampler(TokenBudgetBatchSampler):
    """The same, with a ``__len__`` that is right for the current epoch."""

    def __len__(self):
        return len(self._batches())


def pad_tensor_collate(batch):
    """Pad to the longest sequence; lengths as a tensor."""
    lengths = [len(t) for t in batch]
    padded = torch.zeros(len(batch), max(lengths), dtype=torch.int64)
    for k, t in enumerate(batch):
        padded[k, : len(t)] = t
    return padded, torch.tensor(lengths)


class ShardedRecordsIterable(IterableDataset):
    """webdataset / tfrecord style: shard ``k`` is read by worker ``k % num_workers``. With the default shards
    and 2 workers, worker 0's shards are both empty."""

    def __init__(self, shards=None):
        self.shards = shards if shards is not None else [[], list(range(0, 7)), [], list(range(7, 15))]

    def __iter__(self):
        info = get_worker_info()
        mine = self.shards if info is None else self.shards[info.id :: info.num_workers]
        for shard in mine:
            for rec in shard:
                yield {"rec": rec, "worker": _worker_id(), "r": torch.rand(1)}


# --------------------------------------------------------------------------- collates with per-sample lists


def pad_lengths_collate(batch):
    """NLP style: (padded ids, python list of lengths)."""
    lengths = [len(t) for t in batch]
    padded = torch.zeros(len(batch), max(lengths), dtype=torch.int64)
    for k, t in enumerate(batch):
        padded[k, : len(t)] = t
    return padded, lengths


class RecordDataset(Dataset):
    """A sample is a dict with an image, python metadata and a nested dict (mmengine / detectron2 inputs)."""

    def __init__(self, n: int = 22):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {
            "inputs": torch.full((3, 2 + i % 3, 4), float(i)) + torch.rand(1),
            "data_samples": {"img_id": i, "img_path": f"img_{i:03d}.jpg", "scale": 0.5 * (1 + i % 2)},
        }


def trivial_batch_collator(batch):
    """detectron2's choice: the batch is the list of per-sample dicts, untouched."""
    return batch


def pseudo_collate(batch):
    """mmengine-like: transpose mappings and sequences, never stack; leaves become per-sample lists."""
    first = batch[0]
    if isinstance(first, collections.abc.Mapping):
        return {key: pseudo_collate([sample[key] for sample in batch]) for key in first}
    if isinstance(first, (list, tuple)) and not isinstance(first, str):
        return type(first)(pseudo_collate(list(column)) for column in zip(*batch, strict=True))
    return list(batch)


class FixedSizeDetection(Dataset):
    """Images of one size, a variable number of boxes per image (0..3), a torch-stream flip."""

    def __init__(self, n: int = 22):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        img = torch.arange(48, dtype=torch.float32).reshape(3, 4, 4) + i
        k = (i * 7) % 4
        boxes = torch.tensor([[0.5 * j, j, 2.0 + j, 3.5] for j in range(k)], dtype=torch.float32).reshape(k, 4)
        if torch.rand(1).item() < 0.5:
            img = img.flip(-1)
            boxes = torch.stack([4 - boxes[:, 2], boxes[:, 1], 4 - boxes[:, 0], boxes[:, 3]], dim=1)
        return img, {"boxes": boxes, "labels": torch.full((k,), i % 5, dtype=torch.int64)}


def detection_collate(batch):
    """torchvision reference style: (stacked images, [target dict per image])."""
    images, targets = zip(*batch, strict=True)
    return torch.stack(images), list(targets)
