"""``create_dataloader``: upstream YOLOv5 v7.0's training/validation DataLoader.

The rules (batch-size cap, worker count, sampler choice, loader class, generator seed
``6148914691236517205 + seed + RANK``, worker seeding) are :func:`yolov5_core.loader_recipe` and
:func:`yolov5_core.seed_worker_from`; this module builds torch's objects from them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import cast

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, distributed

from yolov5_core._loader import loader_recipe, rect_shuffle, seed_worker_from
from yolov5_pt._collate import collate_fn, collate_fn4
from yolov5_pt._dataset import LoadImagesAndLabels

__all__ = ["InfiniteDataLoader", "create_dataloader", "seed_worker", "torch_distributed_zero_first"]


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: reseed numpy's and python's global RNGs from torch's worker seed.

    Both get ``torch.initial_seed() % 2**32`` (numpy first, then python), as upstream.

    Args:
        worker_id: the worker's id (unused; torch's seed already differs per worker).

    Example:
        >>> DataLoader(ds, num_workers=2, worker_init_fn=seed_worker)  # doctest: +SKIP
    """
    seed_worker_from(torch.initial_seed())


@contextlib.contextmanager
def torch_distributed_zero_first(local_rank: int) -> Iterator[None]:
    """Let local rank 0 run the block first (e.g. write the label cache), the other ranks after it.

    Upstream calls ``dist.barrier(device_ids=[local_rank])``, which is CUDA/NCCL-specific; here
    ``device_ids`` is passed only for the NCCL backend, so CPU (gloo) groups work too.

    Args:
        local_rank: -1 without DDP (no barrier), else this process's local rank.

    Raises:
        RuntimeError: ``local_rank != -1`` but no ``torch.distributed`` process group is initialised.

    Example:
        >>> with torch_distributed_zero_first(-1):
        ...     pass
    """
    if local_rank != -1 and not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError(
            f"rank={local_rank} needs an initialised torch.distributed process group "
            "(torch.distributed.init_process_group); use rank=-1 without DDP"
        )

    def barrier() -> None:
        if dist.get_backend() == "nccl":
            dist.barrier(device_ids=[max(local_rank, 0)])
        else:
            dist.barrier()

    if local_rank not in (-1, 0):
        barrier()
    yield
    if local_rank == 0:
        barrier()


class _RepeatSampler:
    """Repeat a (batch) sampler forever, re-iterating it each pass (a new shuffle per epoch)."""

    def __init__(self, sampler):
        self.sampler = sampler

    def __iter__(self):
        while True:
            yield from iter(self.sampler)


class InfiniteDataLoader(DataLoader):
    """A ``DataLoader`` whose workers live across epochs: one iterator, re-used by each ``iter()``.

    The iterator is created in ``__init__`` (so the base seed is drawn, and workers start, at
    construction, as upstream). Each ``iter(loader)`` yields ``len(loader)`` batches.

    Example:
        >>> loader = InfiniteDataLoader(ds, batch_size=4, collate_fn=collate_fn)  # doctest: +SKIP
        >>> for epoch in range(2):  # doctest: +SKIP
        ...     for imgs, targets, paths, shapes in loader: ...
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        object.__setattr__(self, "batch_sampler", _RepeatSampler(self.batch_sampler))
        self.iterator = super().__iter__()

    def __len__(self) -> int:
        return len(cast(_RepeatSampler, self.batch_sampler).sampler)  # set by __init__

    def __iter__(self):
        for _ in range(len(self)):
            yield next(self.iterator)


def create_dataloader(
    path,
    imgsz: int,
    batch_size: int,
    stride: int,
    single_cls: bool = False,
    hyp: dict | None = None,
    augment: bool = False,
    cache: bool | str | None = False,
    pad: float = 0.0,
    rect: bool = False,
    rank: int = -1,
    workers: int = 8,
    image_weights: bool = False,
    quad: bool = False,
    prefix: str = "",
    shuffle: bool = False,
    seed: int = 0,
    *,
    min_items: int = 0,
    include_class=None,
    albumentations=True,
) -> tuple[DataLoader, LoadImagesAndLabels]:
    """Build the dataset and its DataLoader exactly as upstream v7.0 ``create_dataloader``.

    Args:
        path: image directory, list file, or list of them.
        imgsz: image size.
        batch_size: batch size (capped at the dataset length).
        stride: model stride (rect shapes).
        single_cls: merge classes.
        hyp: hyperparameters (required with ``augment``).
        augment: training augmentation.
        cache: ``False``/``None``, ``'ram'``, ``True`` or ``'disk'`` (see ``LoadImagesAndLabels``).
        pad: rect padding in strides.
        rect: rectangular batches (forces ``shuffle=False`` with a warning, as upstream).
        rank: local rank; ``-1`` without DDP, else a ``DistributedSampler`` is used.
        workers: upper bound on DataLoader workers.
        image_weights: plain ``DataLoader`` (dataset indices may be re-drawn per epoch).
        quad: use :func:`~yolov5_pt.collate_fn4`.
        prefix: log prefix.
        shuffle: shuffle (through the sampler).
        seed: added to the generator seed.
        min_items: passed to the dataset (upstream's ``create_dataloader`` does not expose it).
        include_class: passed to the dataset.
        albumentations: passed to the dataset; ``False`` matches what upstream runs under
            albumentations 2.x.

    Returns:
        ``(loader, dataset)``.

    Raises:
        RuntimeError: ``rank != -1`` without an initialised process group.
        ValueError, KeyError, FileNotFoundError: from the dataset.

    Example:
        >>> loader, ds = create_dataloader('data/images/train', 320, 16, 32, hyp=hyp, augment=True,
        ...                                shuffle=True, workers=2)  # doctest: +SKIP
    """
    shuffle = rect_shuffle(rect, shuffle)
    with torch_distributed_zero_first(rank):  # one rank writes the label cache, the others read it
        dataset = LoadImagesAndLabels(
            path,
            imgsz,
            batch_size,
            augment=augment,
            hyp=hyp,
            rect=rect,
            image_weights=image_weights,
            cache_images=cache,
            single_cls=single_cls,
            stride=int(stride),
            pad=pad,
            min_items=min_items,
            prefix=prefix,
            workers=workers,
            include_class=include_class,
            albumentations=albumentations,
        )

    recipe = loader_recipe(
        len(dataset),
        batch_size,
        rank=rank,
        workers=workers,
        image_weights=image_weights,
        quad=quad,
        shuffle=shuffle,
        seed=seed,
        devices=torch.cuda.device_count(),
    )
    sampler: distributed.DistributedSampler | None = None
    if recipe.distributed:
        sampler = distributed.DistributedSampler(dataset, shuffle=recipe.sampler_shuffle)
    loader = InfiniteDataLoader if recipe.infinite else DataLoader
    generator = torch.Generator()
    generator.manual_seed(recipe.generator_seed)
    return loader(
        dataset,
        batch_size=recipe.batch_size,
        shuffle=recipe.shuffle,
        num_workers=recipe.num_workers,
        sampler=sampler,
        pin_memory=str(os.getenv("PIN_MEMORY", True)).lower() == "true",
        collate_fn=collate_fn4 if recipe.quad else collate_fn,
        worker_init_fn=seed_worker,
        generator=generator,
    ), dataset
