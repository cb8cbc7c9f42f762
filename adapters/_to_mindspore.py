"""``to_mindspore``: a torch DataLoader's exact stream as a MindSpore dataset."""

from __future__ import annotations

import copy
import math
import multiprocessing

from adapters._columns import Structure
from adapters._epochs import EpochPlanner
from adapters._errors import SourceError, unwrap_exception
from adapters._rng_streams import capture_streams, restore_streams
from adapters._sources import MapBatchSource, SerialSource
from adapters._spec import LoaderSpec, spec_from_dataset, spec_from_loader, torch_or_none
from adapters._fetch import collate, fetch_iterable, fetch_map
from adapters._workers import VirtualWorker

__all__ = ["to_mindspore", "mindspore_worker_count"]


def _is_torch_loader(obj) -> bool:
    torch = torch_or_none()
    return torch is not None and isinstance(obj, torch.utils.data.DataLoader)


def mindspore_worker_count(num_workers: int, limit: int | None = None) -> int:
    """How many MindSpore worker processes serve ``num_workers`` torch workers.

    MindSpore gives row ``r`` to process ``r % W``; torch gives batch ``k`` to worker
    ``k % num_workers``. Each torch worker's batches stay in one process only if ``W`` divides
    ``num_workers``, so ``W`` is the largest divisor not above MindSpore's limit (the CPU count).
    ``W == 1`` runs the source in one MindSpore thread of the main process.

    Example:
        >>> mindspore_worker_count(4, limit=2), mindspore_worker_count(3, limit=2)
        (2, 1)
    """
    if num_workers <= 1:
        return 1
    limit = limit or multiprocessing.cpu_count()
    return max(w for w in range(1, min(num_workers, limit) + 1) if num_workers % w == 0)


def _probe_first_batch(spec: LoaderSpec, planner: EpochPlanner):
    """Produce batch 0 of epoch 0 in isolation, only to learn the column structure.

    Runs on copies (planner, dataset iterator) inside saved-and-restored global streams, so the
    caller's random streams and the pipeline's own replay are untouched.
    """
    saved = capture_streams()
    try:
        return _first_batch(spec, planner)
    except SourceError as err:
        original = unwrap_exception(err)
        if original is None:
            raise
        raise original from None
    finally:
        restore_streams(saved)


def _first_batch(spec: LoaderSpec, planner: EpochPlanner):
    plan = copy.deepcopy(planner).plan(0)
    dataset = spec.dataset if spec.kind == "map" else copy.deepcopy(spec.dataset)
    worker = VirtualWorker(0, max(spec.num_workers, 1), dataset, spec.worker_init_fn, persistent=False, isolate=True)
    worker.begin_epoch(0, plan.base_seed)
    with worker.active():
        where = "batch 0 of epoch 0 (probe for column names)"
        if spec.kind == "map":
            if not plan.batches:
                raise ValueError("to_mindspore: the sampler yields no batch, so there are no columns to declare")
            data = fetch_map(dataset, plan.batches[0], spec.auto_collation, where)
        else:
            try:
                data = fetch_iterable(iter(dataset), spec.iterable_index, spec.auto_collation, spec.drop_last, where)
            except StopIteration:
                raise ValueError("to_mindspore: the IterableDataset yields no batch, so there are no columns") from None
        return collate(spec.collate_fn, data, where)


def to_mindspore(
    loader_or_dataset,
    *,
    column_names=None,
    seed: int | None = None,
    set_epoch: bool = True,
    num_parallel_workers: int | None = None,
    infinite: bool = False,
    **dataloader_kwargs,
):
    """Turn a torch DataLoader (or a dataset plus DataLoader kwargs) into a MindSpore dataset.

    Every row of the returned dataset is one batch, bit-identical to what
    ``torch.utils.data.DataLoader`` yields with the same seeds: same sample order (every sampler,
    with or without ``generator``), same collated values and dtypes, same per-worker random
    streams (python ``random``, numpy, torch: seeded from the loader's ``base_seed`` exactly as
    torch's workers are), ``worker_init_fn`` and ``get_worker_info()`` included, epoch after epoch.

    Snapshot semantics: the sampler, the generator and (for ``num_workers >= 1``) the global random
    streams are copied when ``to_mindspore`` is called; the MindSpore pipeline replays the loader
    from there, so iterating the torch loader afterwards does not disturb it. With
    ``num_workers=0`` the dataset draws from the live global streams, as in torch, from a
    MindSpore thread — draws your training loop makes meanwhile would interleave differently.

    Args:
        loader_or_dataset: a ``torch.utils.data.DataLoader``, or a dataset (map-style: ``__getitem__``
            and ``__len__``; iterable: ``__iter__``) — torch's classes or plain python ones.
        column_names: names for the flattened leaves of a batch (default: inferred, see
            :func:`adapters.column_names_for`).
        seed: shorthand for ``generator=Generator().manual_seed(seed)`` (torch's Generator when
            torch is installed).
        set_epoch: call ``sampler.set_epoch(epoch)`` before each epoch when the sampler has it (e.g.
            DistributedSampler), as a torch training loop does.
        num_parallel_workers: MindSpore worker processes (default: :func:`mindspore_worker_count`);
            must divide ``num_workers``.
        infinite: reproduce YOLOv5's ``InfiniteDataLoader`` (one torch iterator over all epochs: the
            base seed is drawn once, workers persist, and batches keep cycling over the workers across
            epoch boundaries instead of restarting at worker 0). Implies ``persistent_workers``.
        **dataloader_kwargs: ``torch.utils.data.DataLoader``'s keyword arguments (``batch_size``,
            ``shuffle``, ``sampler``, ``batch_sampler``, ``num_workers``, ``collate_fn``, ``drop_last``,
            ``worker_init_fn``, ``generator``, ``persistent_workers``, ...); not allowed with a
            DataLoader.

    Returns:
        A :class:`~adapters.TorchLoaderDataset` (a ``mindspore.dataset.GeneratorDataset``); its
        ``structure.rebuild(row)`` gives back torch's nested batch.

    Raises:
        TypeError / ValueError: the same option errors as torch's DataLoader, naming the options.

    Example:
        >>> ds = to_mindspore(list(range(10)), batch_size=4, shuffle=True, seed=0)  # doctest: +SKIP
        >>> [row[0].tolist() for row in ds.create_tuple_iterator(output_numpy=True)]  # doctest: +SKIP
    """
    from adapters._pipeline import TorchLoaderDataset

    if _is_torch_loader(loader_or_dataset):
        if dataloader_kwargs or seed is not None:
            raise TypeError(
                "to_mindspore(loader): DataLoader options come from the loader; got extra keyword arguments "
                f"{sorted(dataloader_kwargs) + (['seed'] if seed is not None else [])}"
            )
        spec = spec_from_loader(loader_or_dataset)
    else:
        if seed is not None:
            if dataloader_kwargs.get("generator") is not None:
                raise ValueError("to_mindspore: give either seed= or generator=, not both")
            dataloader_kwargs["generator"] = _seeded_generator(seed)
        spec = spec_from_dataset(loader_or_dataset, **dataloader_kwargs)
    if infinite:
        if spec.kind == "iterable":
            raise ValueError("to_mindspore: infinite=True is for map-style datasets (YOLOv5's InfiniteDataLoader)")
        spec.continuous = True
        spec.persistent_workers = spec.num_workers > 0

    planner = EpochPlanner(spec, capture_streams(), set_epoch=set_epoch)
    structure = Structure.infer(_probe_first_batch(spec, planner), column_names)

    if spec.num_workers == 0 or spec.kind == "iterable":
        source = SerialSource(spec, planner, structure.to_row, set_epoch=set_epoch)
        workers, multiprocess = 1, False
    else:
        num_batches = len(spec.index_sampler)
        # Continuous dispatch shifts by num_batches each epoch: the process must divide that too.
        divisor = math.gcd(spec.num_workers, num_batches) if spec.continuous else spec.num_workers
        workers = num_parallel_workers or mindspore_worker_count(divisor)
        if divisor % workers:
            raise ValueError(
                f"to_mindspore: num_parallel_workers={workers} must divide num_workers={spec.num_workers}"
                + (f" and the {num_batches} batches per epoch" if spec.continuous else "")
                + " (each torch worker's batches must always land in the same MindSpore process)"
            )
        source = MapBatchSource(
            spec,
            planner,
            structure.to_row,
            num_batches,
            isolate=spec.num_workers != workers or workers == 1,
            processes=workers,
        )
        multiprocess = workers > 1
    return TorchLoaderDataset(
        source,
        list(structure.names),
        structure,
        num_parallel_workers=workers,
        python_multiprocessing=multiprocess,
    )


def _seeded_generator(seed: int):
    torch = torch_or_none()
    if torch is not None:
        return torch.Generator().manual_seed(seed)
    from adapters._torch_generator import Generator

    return Generator().manual_seed(seed)


