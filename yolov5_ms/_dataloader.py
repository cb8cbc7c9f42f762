"""``create_dataloader``: upstream YOLOv5 v7.0's training loader as a MindSpore dataset, on the adapters engine.

The rules are upstream's (:func:`yolov5_core.loader_recipe`): batch-size cap, worker count, sampler
choice, ``InfiniteDataLoader`` or a plain loader, generator seed ``6148914691236517205 + seed +
RANK``, ``seed_worker``. The objects are adapters' numpy mirrors of torch's (``Generator``,
``DistributedSampler``; ``RandomSampler`` through ``shuffle``) and :func:`adapters.to_mindspore` runs
them with torch's DataLoader semantics — sample order, worker processes and their seeding, the
persistent iterator of ``InfiniteDataLoader`` (``infinite=True``) — so the batches are the bytes
``yolov5_pt.create_dataloader`` gives through torch's DataLoader for the same seeds.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Any

import numpy as np

import adapters
from yolov5_core._collate import collate_fn, collate_fn4
from yolov5_core._files import img2label_paths, list_image_files
from yolov5_core._labels import label_cache_path
from yolov5_core._loader import loader_recipe, rect_shuffle, seed_worker_from
from yolov5_ms._dataset import LoadImagesAndLabels

__all__ = ["COLUMNS", "SAMPLE_COLUMNS", "create_dataloader", "distributed_context", "seed_worker"]

COLUMNS = ("img", "labels", "paths", "shapes")
SAMPLE_COLUMNS = ("img", "labels", "path", "shapes")  # one sample of LoadImagesAndLabels (batch_map=True)


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn``: upstream's ``seed_worker`` without torch.

    Reseeds numpy's then python's global streams with the worker's seed ``% 2**32``: the seed torch's
    ``torch.initial_seed()`` returns in that worker, read from ``adapters.get_worker_info().seed``
    (outside a worker: ``adapters.default_generator.initial_seed()``, torch's ``initial_seed()`` there).

    Args:
        worker_id: the worker's id (unused; the seed already differs per worker).

    Example:
        >>> import random; seed_worker(0); a = random.random()
        >>> random.seed(adapters.default_generator.initial_seed() % 2**32); a == random.random()
        True
    """
    info = adapters.get_worker_info()
    seed_worker_from(info.seed if info is not None else adapters.default_generator.initial_seed())


def _mindspore_group() -> tuple[int, int] | None:
    """``(world size, rank)`` of an initialised ``mindspore.communication`` group, else None."""
    from mindspore.communication import GlobalComm, get_group_size, get_rank

    # get_group_size() answers 1 without init(); only an initialised group says what the world is.
    if not GlobalComm.INITED:
        return None
    return get_group_size(), get_rank()


def distributed_context(num_shards: int | None = None, shard_id: int | None = None, environ=None) -> tuple[int, int]:
    """The ``(world size, global rank)`` a ``DistributedSampler`` uses here.

    torch's ``DistributedSampler(dataset)`` asks the initialised process group. Here, in order:
    ``num_shards`` / ``shard_id`` when given (MindSpore's names); an initialised
    ``mindspore.communication`` group (``msrun`` + ``init()``); the ``WORLD_SIZE`` / ``RANK``
    environment variables (``torchrun``'s).

    Raises:
        ValueError: none of these is available, only one of ``num_shards`` / ``shard_id`` is given, or
            the values are out of range.

    Example:
        >>> distributed_context(2, 1)
        (2, 1)
    """
    if (num_shards is None) != (shard_id is None):
        raise ValueError(f"create_dataloader: give both num_shards and shard_id, got {num_shards=}, {shard_id=}")
    if num_shards is None:
        group = _mindspore_group()
        env = os.environ if environ is None else environ
        if group is not None:
            num_shards, shard_id = group
        elif "WORLD_SIZE" in env and "RANK" in env:
            num_shards, shard_id = int(env["WORLD_SIZE"]), int(env["RANK"])
        else:
            raise ValueError(
                "create_dataloader: rank != -1 needs the world size and this process's global rank: pass "
                "num_shards= and shard_id=, launch with msrun and call mindspore.communication.init(), or set "
                "WORLD_SIZE and RANK (as torchrun does)"
            )
    if not (isinstance(num_shards, int) and isinstance(shard_id, int) and 0 <= shard_id < num_shards):
        raise ValueError(f"create_dataloader: need 0 <= shard_id < num_shards, got {num_shards=}, {shard_id=}")
    return num_shards, shard_id


@contextlib.contextmanager
def _one_rank_at_a_time(path, rank: int, prefix: str):
    """Upstream's ``torch_distributed_zero_first`` without a process group: ranks build the dataset in turn.

    The first rank to take the lock scans the labels and writes ``<labels>.cache``; the others then
    read it (upstream lets local rank 0 go first with a barrier; the cache is the same whichever
    rank writes it). An exclusive ``flock`` on ``<cache>.lock`` next to the cache.
    """
    if rank == -1:
        yield
        return
    cache = Path(label_cache_path(path, img2label_paths(list_image_files(path, prefix))))
    with open(cache.with_name(cache.name + ".lock"), "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


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
    num_shards: int | None = None,
    shard_id: int | None = None,
    devices: int = 0,
    indices=None,
    batch_map: bool = False,
    state: dict | None = None,
):
    """Build the dataset and its MindSpore pipeline exactly as upstream v7.0 ``create_dataloader``.

    Each row of the returned pipeline is one batch with columns, in this order, ``img`` (uint8
    ``(N, 3, H, W)``), ``labels`` (float32 ``(n, 6)``: image index, class, x, y, w, h), ``paths``
    (the batch's image files) and ``shapes`` (one entry per image, None under mosaic) — the last two
    as packed columns: ``dataset.structure.rebuild(row)`` gives the python tuples back.

    Epochs: without ``image_weights`` the pipeline is upstream's ``InfiniteDataLoader`` (one iterator
    over all epochs, workers persist); with it, a plain loader whose workers start afresh each epoch
    and see ``dataset.indices`` as the caller set them before the epoch (train.py's weighted draws). With ``rank !=
    -1``, a ``DistributedSampler`` whose epoch follows the MindSpore epochs the way train.py's
    ``sampler.set_epoch(epoch)`` reaches torch's (with ``InfiniteDataLoader`` and workers, torch's
    prefetching draws a pass before that call: see ``adapters.engine.Schedule.sampler_epoch``).

    Args:
        path, imgsz, batch_size, stride, single_cls, hyp, augment, cache, pad, rect, rank, workers,
            image_weights, quad, prefix, shuffle, seed: upstream's (see ``yolov5_pt.create_dataloader``).
        min_items, include_class, albumentations: passed to :class:`LoadImagesAndLabels`.
        num_shards, shard_id: world size and global rank for ``rank != -1`` (see
            :func:`distributed_context`).
        devices: accelerator count in upstream's worker formula (``torch.cuda.device_count()`` there;
            0 on a CPU run).
        indices: ``dataset.indices`` to start with (a sequence, or a function of the dataset returning
            one); the same as setting ``dataset.indices`` before the first epoch, as train.py's
            ``--image-weights`` does (rewrites before later epochs reach the pipeline where torch's
            loader would see them).
        batch_map: the MindSpore-native shape (MindYOLO's): ``LoadImagesAndLabels`` samples (columns
            :data:`SAMPLE_COLUMNS`: ``img`` uint8 ``(3, H, W)``, ``labels`` float32 ``(n, 6)``, ``path``, ``shapes``
            packed) regrouped by MindSpore's ``batch`` op with ``per_batch_map`` = ``collate_fn`` (``collate_fn4``
            for ``quad``, run in MindSpore's processes with each batch's worker streams). The same batches; put
            per-sample ``.map()`` operations of your own between :func:`adapters.sample_dataset` and
            :func:`adapters.batch` by building the pipeline yourself (see ``docs/batch-maps.md``).
        state: resume from a position saved by ``dataset.state_dict()`` (in this process or another): the
            pipeline continues the stream exactly as the uninterrupted run would (``adapters.to_mindspore``'s
            ``state``; not with ``batch_map``). Build it with the same arguments as the saved run.

    Returns:
        ``(dataset, LoadImagesAndLabels)``: an ``adapters.TorchLoaderDataset`` (a
        ``mindspore.dataset.GeneratorDataset``) and the dataset object.

    Raises:
        ValueError, KeyError, FileNotFoundError: bad arguments, from the dataset or the recipe.

    Example:
        >>> ds, data = create_dataloader('data/images/train', 320, 16, 32, hyp=hyp, augment=True,
        ...                              shuffle=True, workers=2)  # doctest: +SKIP
        >>> for img, labels, paths, shapes in ds.create_tuple_iterator(output_numpy=True): ...  # doctest: +SKIP
    """
    if state is not None and batch_map:
        raise ValueError("create_dataloader: state= with batch_map=True is not supported (see adapters.to_mindspore)")
    shuffle = rect_shuffle(rect, shuffle)
    with _one_rank_at_a_time(path, rank, prefix):
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
    environ = None
    if rank != -1:
        world, global_rank = distributed_context(num_shards, shard_id)
        if "RANK" not in os.environ:  # msrun sets no RANK: upstream's generator seed uses the global rank
            environ = {"RANK": str(global_rank)}
    recipe = loader_recipe(
        len(dataset),
        batch_size,
        rank=rank,
        workers=workers,
        image_weights=image_weights,
        quad=quad,
        shuffle=shuffle,
        seed=seed,
        devices=devices,
        environ=environ,
    )
    sampler = None
    if recipe.distributed:
        sampler = adapters.DistributedSampler(
            dataset, num_replicas=world, rank=global_rank, shuffle=recipe.sampler_shuffle
        )
    loader_kwargs: dict[str, Any] = dict(  # DataLoader keyword arguments of several types
        batch_size=recipe.batch_size,
        shuffle=recipe.shuffle,
        num_workers=recipe.num_workers,
        sampler=sampler,
        collate_fn=collate_fn4 if recipe.quad else collate_fn,
        worker_init_fn=seed_worker,
        generator=adapters.Generator().manual_seed(recipe.generator_seed),
    )
    if indices is not None:
        dataset.indices = indices(dataset) if callable(indices) else indices
    # set_epoch=True: each MindSpore epoch sets the sampler's epoch as train.py does, with the timing torch's
    # InfiniteDataLoader really gives it (its prefetching starts a pass early; adapters' Schedule.sampler_epoch).
    # collate_fn4's paths / shapes hold one entry per group of 4 samples: carried as packed columns too.
    quad_groups = recipe.batch_size // 4 if recipe.quad else 0
    if batch_map:
        samples = adapters.sample_dataset(
            dataset, infinite=recipe.infinite, column_names=list(SAMPLE_COLUMNS), set_epoch=True, **loader_kwargs
        )
        try:
            pipeline = adapters.batch(
                samples, dataset, column_names=list(COLUMNS), pack_lists_of=quad_groups or None, **loader_kwargs
            )
        except BaseException:
            samples.close()
            raise
        return pipeline, dataset
    # The columns are declared (no batch made at construction, where upstream's InfiniteDataLoader only starts
    # its workers): img uint8 (N, 3, H, W), labels float32 (n, 6), paths (one str per image), shapes (one entry per
    # image, None under mosaic: packed). collate_fn4 gives one entry per group of 4.
    entries = quad_groups or recipe.batch_size
    prototype = (
        np.zeros((entries, 3, 1, 1), np.uint8),
        np.zeros((0, 6), np.float32),
        ("",) * entries,
        (None,) * entries,
    )
    structure = adapters.Structure.infer(prototype, list(COLUMNS), pack_lists_of=entries)
    pipeline = adapters.to_mindspore(
        dataset, infinite=recipe.infinite, set_epoch=True, structure=structure, state=state, **loader_kwargs
    )
    return pipeline, dataset
