"""``to_mindspore``: a torch DataLoader's exact stream as a MindSpore dataset."""

from __future__ import annotations

import functools
import random
import types
from typing import Any

from adapters.engine._columns import Structure
from adapters.engine._engine import NO_BATCH, Engine
from adapters.engine._errors import SourceError
from adapters.engine._schedule import Schedule
from adapters.engine._spec import LoaderSpec, named_samplers, spec_from_dataset, spec_from_loader, torch_or_none
from adapters.engine._state import loader_config
from adapters.engine._sync import AttributeTracker

__all__ = ["to_mindspore", "build_engine", "reachable_samplers"]


def _is_torch_loader(obj) -> bool:
    torch = torch_or_none()
    return torch is not None and isinstance(obj, torch.utils.data.DataLoader)


def reachable_samplers(spec: LoaderSpec) -> list:
    """Every distinct sampler a training loop could call ``set_epoch`` on, outermost first.

    ``loader.batch_sampler``, ``loader.sampler`` and, recursively, the ``sampler`` /
    ``batch_sampler`` attributes of those (a ``BatchSampler(DistributedSampler(...))`` given as
    ``batch_sampler=``, an mmdet-style grouping batch sampler wrapping a sampler, ...).

    Example:
        >>> import adapters
        >>> from adapters.engine._spec import spec_from_dataset
        >>> inner = adapters.DistributedSampler(list(range(8)), num_replicas=2, rank=0)
        >>> spec = spec_from_dataset(list(range(8)), batch_sampler=adapters.BatchSampler(inner, 2, True))
        >>> [type(s).__name__ for s in reachable_samplers(spec)]  # torch also makes a SequentialSampler here
        ['BatchSampler', 'SequentialSampler', 'DistributedSampler']
    """
    return [sampler for _, sampler in named_samplers(spec)]


def _epoch_hook(spec: LoaderSpec, set_epoch):
    """What runs (in the loader process, on its snapshot) where a training loop sets the epoch."""
    if set_epoch is False or set_epoch is None:
        return lambda epoch: None
    if callable(set_epoch):
        return lambda epoch: set_epoch(spec, epoch)
    if set_epoch is not True:
        raise TypeError(f"to_mindspore: set_epoch must be True, False or a callable(loader, epoch); got {set_epoch!r}")

    def hook(epoch: int) -> None:
        for sampler in reachable_samplers(spec):
            method = getattr(sampler, "set_epoch", None)
            if callable(method):
                method(epoch)

    return hook


def _tracked(spec: LoaderSpec, mode: str) -> dict:
    """The objects torch reads in the loop's process at each ``iter(loader)``, which the loader process holds too.

    The samplers always (one torch iterator per epoch); with ``num_workers=0`` also the dataset and a
    ``collate_fn`` object (fresh workers are forked from the loop's process anyway; persistent ones keep
    their copy, as torch's). One torch iterator over all epochs reads its sampler once.
    """
    owners: dict[str, Any] = {}
    if mode == "epochs":
        owners.update(sampler=spec.sampler, batch_sampler=spec.batch_sampler)
    if spec.num_workers == 0:
        owners["dataset"] = spec.dataset
        if (
            not spec.default_collate
            and hasattr(spec.collate_fn, "__dict__")
            and not isinstance(spec.collate_fn, (types.FunctionType, types.MethodType, functools.partial))
        ):
            owners["collate_fn"] = spec.collate_fn
    return owners


def build_engine(
    spec: LoaderSpec,
    *,
    set_epoch=True,
    mode: str = "epochs",
    steps_per_epoch: int | None = None,
    length: int | None = None,
    workers_at_construction: bool = False,
    probe: bool = True,
    engine_class=Engine,
):
    """Start the pipeline's processes for ``spec`` and learn its columns from epoch 0's first batch.

    The public entry point for packages that build their own MindSpore dataset on the engine
    (``yolov5_ms``): returns ``(engine, first_batch)``; ``engine.rows()`` is one epoch's generator.
    ``length``: the batches every epoch must have (``None``: epochs may differ). ``workers_at_construction``:
    persistent workers start from the state at this call (YOLOv5's ``InfiniteDataLoader``), not from the
    loop's state at the first epoch. ``probe=False``: the columns are declared, no batch is made now
    (``first_batch`` is then :data:`NO_BATCH`). ``engine_class``: :class:`Engine` or a subclass
    (``adapters.sample_dataset``'s).

    Raises:
        ValueError: the loader yields no batch in epoch 0.
        Exception: whatever the first batch raised, with its original type.
    """
    prefetch = spec.prefetch_factor if spec.prefetch_factor is not None else 2
    schedule = Schedule(spec.num_workers, spec.persistent_workers, mode, prefetch if spec.num_workers else 0)
    # The loader process is forked now: python's random reseeds itself in a forked child, so the
    # snapshot of that stream is taken here and put back there.
    engine = engine_class(
        spec, schedule, _epoch_hook(spec, set_epoch), steps_per_epoch=steps_per_epoch, python_state=random.getstate()
    )
    engine.length = length
    engine.config = loader_config(spec, schedule, length=length, steps_per_epoch=steps_per_epoch)
    engine.workers_at_construction = workers_at_construction
    engine.tracker = AttributeTracker(_tracked(spec, mode))
    engine.sets_sampler_epochs = set_epoch not in (False, None) and (
        callable(set_epoch) or any(callable(getattr(s, "set_epoch", None)) for s in reachable_samplers(spec))
    )
    if not probe:
        return engine, NO_BATCH
    try:
        first = engine.first_batch()
    except SourceError as err:
        engine.close()
        raise err.exception() from None
    except BaseException:
        engine.close()
        raise
    if first is NO_BATCH:
        engine.close()
        raise ValueError(
            "to_mindspore: the loader yields no batch in epoch 0, so there are no columns to declare "
            f"(sampler {type(spec.sampler).__name__}, batch_sampler {type(spec.batch_sampler).__name__})"
        )
    return engine, first


def to_mindspore(
    loader_or_dataset,
    *,
    column_names=None,
    seed: int | None = None,
    set_epoch=True,
    infinite: bool | str = False,
    steps_per_epoch: int | None = None,
    fixed_length: bool | None = None,
    pack_lists_of: int | None = None,
    structure: Structure | None = None,
    batch_map: bool = False,
    state: dict | None = None,
    **dataloader_kwargs,
):
    """Turn a torch DataLoader (or a dataset plus DataLoader kwargs) into a MindSpore dataset.

    Every row of the returned dataset is one batch, bit-identical to what
    ``torch.utils.data.DataLoader`` yields from the same state: same sample order (every sampler,
    with or without ``generator``), same collated values and dtypes, same per-worker random
    streams (python ``random``, numpy, torch: seeded from the loader's ``base_seed`` exactly as
    torch's workers are), ``worker_init_fn`` and ``get_worker_info()``, epoch after epoch.

    One rule, for every ``num_workers``: ``to_mindspore`` takes a snapshot of the loader — its
    sampler, generator and the global random streams (python, numpy, torch) — when it is called,
    like ``os.fork``; the pipeline then runs torch's loader from that snapshot in processes it owns
    (a loader process for the main-process side, one process per torch worker, forked when torch
    would start it). Your process is never touched: its random streams, dataset and sampler objects,
    ``get_worker_info()`` and signal handlers stay as they are, so iterating the torch loader
    afterwards gives the same batches as the MindSpore dataset.

    Epochs (the consumer rule): each MindSpore epoch is the next ``iter(loader)``, and it begins when
    your loop asks for its first row, through any iterator of this dataset or of one chained on it
    (``map``, ``project``, ...) — not when MindSpore's prefetching asks. The state torch reads then is
    taken then: fresh workers are forked from your process, and with ``num_workers=0`` the attributes
    your loop changed on the dataset (and, for every ``num_workers``, on the samplers) are carried into
    the pipeline. Leaving an epoch early (``break``) continues as torch's next ``iter(loader)`` would
    (the sampler and persistent workers advanced exactly as far as torch's prefetching had advanced them).

    Ctrl-C while the loop waits for a batch (a ``__getitem__`` that never returns included) raises
    ``KeyboardInterrupt`` at once and ends the dataset: its processes are stopped and later use
    raises ``RuntimeError`` saying so. No process of the pipeline outlives yours: they form a process
    group of their own that is killed when you ``close()`` the dataset or your process exits or dies.

    Args:
        loader_or_dataset: a ``torch.utils.data.DataLoader``, or a dataset (map-style: ``__getitem__``
            and ``__len__``; iterable: ``__iter__``) — torch's classes or plain python ones.
        column_names: names for the flattened leaves of a batch (default: inferred, see
            :class:`adapters.Structure`).
        seed: shorthand for ``generator=Generator().manual_seed(seed)`` (torch's Generator when
            torch is installed).
        set_epoch: what the training loop calls before each epoch. ``True`` (default):
            ``set_epoch(epoch)`` on every sampler reachable from the loader that has it
            (``loader.batch_sampler``, ``loader.sampler``, and their ``sampler`` / ``batch_sampler``
            attributes, e.g. the DistributedSampler inside a ``BatchSampler``). ``False``: nothing. A
            callable ``fn(loader_spec, epoch)``: your own (it runs in the pipeline's loader process on
            the snapshot, whose ``.sampler``, ``.batch_sampler``, ``.dataset`` it can use).
        infinite: one torch iterator over all epochs (the base seed is drawn once, workers persist, batches
            keep cycling over the workers across epoch boundaries, the sampler is iterated again whenever it
            ends). ``True``: YOLOv5's ``InfiniteDataLoader``, which starts that iterator — forks its workers —
            when it is constructed, i.e. at this call. ``"lazy"``: timm's ``MultiEpochsDataLoader`` and
            ultralytics' ``InfiniteDataLoader``, which start it at their first ``iter()`` (workers forked
            then, seeing the dataset as the loop left it). Passing such a loader object (not yet iterated)
            sets ``"lazy"`` by itself.
        steps_per_epoch: for an infinite sampler (detectron2's ``TrainingSampler``, mmengine's
            ``InfiniteSampler``): one torch iterator over all epochs, each MindSpore epoch being the
            next ``steps_per_epoch`` batches. The sampler is never drained.
        fixed_length: whether every epoch has ``len(loader)`` batches, which MindSpore then checks (an
            epoch that does not is an error naming it). Default ``None``: yes for torch's own samplers and
            batch samplers (and adapters' mirrors of them), whose count is fixed; for any other sampler or
            batch sampler (bucketing, aspect-ratio grouping: the count may change from epoch to epoch) the
            dataset declares no size to MindSpore, so every epoch works whatever its length, and
            ``get_dataset_size()`` answers ``len(loader)`` as torch's ``len(loader)`` does (an estimate for
            such samplers). ``True``/``False``: declare it, or not, whatever the sampler.
        pack_lists_of: a custom collate's python lists/tuples with this many items in the first
            batch are carried as packed columns (any length in later batches). Default: one item per
            sample of the first batch; give another count for collates that return one entry per
            group of samples (YOLOv5's ``collate_fn4``: one per 4).
        structure: the batch structure, declared (``adapters.Structure.infer(prototype_batch, ...)``) instead of
            learnt from epoch 0's first batch: no batch is made at construction (with workers, that batch
            would be made again when the loop begins epoch 0). Every batch must then be nested like the
            prototype (a batch that is not raises, naming where); ``output_shapes()`` is known once the first
            batch was made. ``column_names`` and ``pack_lists_of`` belong to ``Structure.infer`` then.
        batch_map: ``True``: the MindSpore-native shape, ``adapters.batch(adapters.sample_dataset(...), ...)``:
            a sample dataset regrouped by MindSpore's batch op, whose ``per_batch_map`` runs the collate (the
            same batches; see ``docs/batch-maps.md``). ``column_names`` and ``pack_lists_of`` then name and pack
            the batch's columns.
        state: a position saved by :meth:`TorchLoaderDataset.state_dict` (in this process or another): the
            dataset continues the stream from there, batch for batch as the uninterrupted run would have
            (``load_state_dict``; see ``docs/adapters.md``, "Resuming"). The loader must be built as the saved
            one was; a state from another configuration is refused, naming what differs.
        **dataloader_kwargs: ``torch.utils.data.DataLoader``'s keyword arguments (``batch_size``,
            ``shuffle``, ``sampler``, ``batch_sampler``, ``num_workers``, ``collate_fn``, ``drop_last``,
            ``worker_init_fn``, ``generator``, ``persistent_workers``, ``timeout``, ``prefetch_factor``,
            ...); not allowed with a DataLoader. ``pin_memory`` and a non-fork
            ``multiprocessing_context`` have no meaning here and warn.

    Returns:
        A :class:`~adapters.TorchLoaderDataset` (a ``mindspore.dataset.GeneratorDataset``); its
        ``structure.rebuild(row)`` gives back torch's nested batch.

    Raises:
        TypeError / ValueError: the same option errors as torch's DataLoader, naming the options;
            what cannot be mirrored exactly, with the reason and what to do.

    Example:
        >>> ds = to_mindspore(list(range(10)), batch_size=4, shuffle=True, seed=0)
        >>> [row[0].tolist() for row in ds.create_tuple_iterator(output_numpy=True, num_epochs=1)]
        [[3, 7, 5, 2], [0, 8, 1, 6], [9, 4]]

        torch's ``DataLoader(list(range(10)), batch_size=4, shuffle=True,
        generator=torch.Generator().manual_seed(0))`` yields the same three batches.
    """
    from adapters.engine._pipeline import TorchLoaderDataset

    if structure is not None and (column_names is not None or pack_lists_of is not None or batch_map):
        raise ValueError(
            "to_mindspore: structure= declares the columns: column_names and pack_lists_of belong to "
            "Structure.infer, and batch_map=True infers its batch columns itself"
        )
    if batch_map:
        from adapters.engine._samples import batch, sample_dataset

        if state is not None:
            raise ValueError(
                "to_mindspore: state= with batch_map=True is not supported: a batch map's rows are samples regrouped "
                "by MindSpore, whose position inside a batch cannot be saved yet. Resume the batch-level dataset "
                "(batch_map=False) instead."
            )
        options = dict(
            seed=seed,
            set_epoch=set_epoch,
            infinite=infinite,
            steps_per_epoch=steps_per_epoch,
            fixed_length=fixed_length,
        )
        samples = sample_dataset(loader_or_dataset, **options, **dataloader_kwargs)
        seed_option: dict[str, Any] = {"seed": seed} if seed is not None else {}
        try:
            return batch(
                samples,
                loader_or_dataset,
                column_names=column_names,
                pack_lists_of=pack_lists_of,
                **seed_option,
                **dataloader_kwargs,
            )
        except BaseException:
            samples.close()
            raise
    spec, mode, infinite, length = resolve(
        loader_or_dataset, seed, infinite, steps_per_epoch, fixed_length, pack_lists_of, dataloader_kwargs
    )
    engine, first = build_engine(
        spec,
        set_epoch=set_epoch,
        mode=mode,
        steps_per_epoch=steps_per_epoch,
        length=length,
        workers_at_construction=infinite is True,
        probe=structure is None,
    )
    if structure is not None:
        engine.structure = structure
        return _loaded(
            TorchLoaderDataset(engine, structure, None, length, _epoch_length(spec, mode, steps_per_epoch)), state
        )
    try:
        # A custom collate's python lists with one item per sample are carried as packed columns, so
        # that a short last batch or a bucketing sampler (a different count) is carried exactly.
        pack = pack_lists_of if pack_lists_of is not None else None if spec.default_collate else engine.first_samples
        structure = Structure.infer(first, column_names, pack_lists_of=pack)
        engine.structure = structure
        first_row = structure.to_row(first, 0)
        dataset = TorchLoaderDataset(engine, structure, first_row, length, _epoch_length(spec, mode, steps_per_epoch))
    except BaseException:
        engine.close()
        raise
    return _loaded(dataset, state)


def _loaded(dataset, state: dict | None):
    """``dataset`` resumed from ``state`` (closed if the state is refused)."""
    if state is not None:
        try:
            dataset.load_state_dict(state)
        except BaseException:
            dataset.close()
            raise
    return dataset


def resolve(  # noqa: C901 - one flat pass over to_mindspore's options, each check raising in turn
    loader_or_dataset, seed, infinite, steps_per_epoch, fixed_length, pack_lists_of, dataloader_kwargs
):
    """``to_mindspore``'s options resolved: ``(spec, mode, infinite, length)`` (see :func:`to_mindspore`).

    Raises:
        TypeError / ValueError: as :func:`to_mindspore`.
    """
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
    mode = "epochs"
    if pack_lists_of is not None and (
        isinstance(pack_lists_of, bool) or not isinstance(pack_lists_of, int) or pack_lists_of < 1
    ):
        raise ValueError(f"to_mindspore: pack_lists_of must be a positive int or None, got {pack_lists_of!r}")
    if infinite not in (False, True, "lazy"):
        raise ValueError(f"to_mindspore: infinite must be False, True or 'lazy', got {infinite!r}")
    if spec.repeat is not None:
        if infinite not in (False, spec.repeat):
            raise ValueError(
                f"to_mindspore: this {type(loader_or_dataset).__name__} starts its one iterator at "
                f"its first iter() (infinite={spec.repeat!r}); got infinite={infinite!r}"
            )
        infinite = spec.repeat
    if infinite and steps_per_epoch is not None:
        raise ValueError("to_mindspore: give infinite=True or steps_per_epoch=, not both")
    if infinite:
        if spec.kind == "iterable":
            raise ValueError("to_mindspore: infinite=True is for map-style datasets (YOLOv5's InfiniteDataLoader)")
        mode = "repeat"
    if steps_per_epoch is not None:
        if isinstance(steps_per_epoch, bool) or not isinstance(steps_per_epoch, int) or steps_per_epoch <= 0:
            raise ValueError(f"to_mindspore: steps_per_epoch must be a positive int, got {steps_per_epoch!r}")
        if spec.kind == "iterable" and spec.num_workers > 0:
            raise ValueError(
                "to_mindspore: steps_per_epoch with an IterableDataset and num_workers > 0 is not supported "
                "(use num_workers=0, or let the dataset end its epochs)"
            )
        mode = "steps"
    if fixed_length is None:
        fixed_length = mode == "steps" or _count_is_fixed(spec)
    length = _epoch_length(spec, mode, steps_per_epoch) if fixed_length else None
    return spec, mode, infinite, length


def _fixed_count_types() -> tuple:
    from adapters.torch_data import _samplers

    mirrors = (
        _samplers.SequentialSampler,
        _samplers.RandomSampler,
        _samplers.SubsetRandomSampler,
        _samplers.WeightedRandomSampler,
        _samplers.DistributedSampler,
    )
    torch = torch_or_none()
    if torch is None:
        return mirrors, (_samplers.BatchSampler,)
    d = torch.utils.data
    own = (
        d.SequentialSampler,
        d.RandomSampler,
        d.SubsetRandomSampler,
        d.WeightedRandomSampler,
        d.distributed.DistributedSampler,
    )
    return mirrors + own, (_samplers.BatchSampler, d.BatchSampler)


def _count_is_fixed(spec: LoaderSpec) -> bool:
    """Whether torch's (or adapters') own samplers decide the batch count: the same every epoch.

    Exact types only: a subclass may yield another number of batches than its ``__len__`` says.
    """
    if spec.kind == "iterable":
        return False
    samplers, batch_samplers = _fixed_count_types()
    if spec.batch_sampler is not None:
        return type(spec.batch_sampler) in batch_samplers and type(spec.batch_sampler.sampler) in samplers
    return type(spec.sampler) in samplers


def _epoch_length(spec: LoaderSpec, mode: str, steps: int | None) -> int | None:
    if mode == "steps":
        return steps
    if spec.kind == "iterable":
        return None
    try:
        return len(spec.index_sampler)
    except TypeError:
        return None


def _seeded_generator(seed: int):
    torch = torch_or_none()
    if torch is not None:
        return torch.Generator().manual_seed(seed)
    from adapters.torch_data._torch_generator import Generator

    return Generator().manual_seed(seed)
