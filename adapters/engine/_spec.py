"""Normalise ``to_mindspore``'s input (a DataLoader, or a dataset plus DataLoader kwargs) into a spec."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from typing import Any

from adapters.torch_data import _collate, _datasets, _samplers
from adapters.torch_data._torch_generator import Generator

__all__ = [
    "LoaderSpec",
    "DATALOADER_DEFAULTS",
    "named_samplers",
    "spec_from_loader",
    "spec_from_dataset",
    "torch_or_none",
]

# torch.utils.data.DataLoader's keyword arguments and defaults (torch 2.13).
DATALOADER_DEFAULTS: dict[str, Any] = {
    "batch_size": 1,
    "shuffle": None,
    "sampler": None,
    "batch_sampler": None,
    "num_workers": 0,
    "collate_fn": None,
    "pin_memory": False,
    "drop_last": False,
    "timeout": 0,
    "worker_init_fn": None,
    "multiprocessing_context": None,
    "generator": None,
    "prefetch_factor": None,
    "persistent_workers": False,
    "pin_memory_device": "",
    "in_order": True,
}


def torch_or_none():
    """Return the torch module if it can be imported, else ``None``."""
    try:
        import torch
    except ImportError:
        return None
    return torch


@dataclasses.dataclass
class LoaderSpec:
    """Everything that decides a DataLoader's stream, resolved as torch's DataLoader resolves it."""

    dataset: Any
    kind: str  # "map" or "iterable"
    batch_size: int | None
    drop_last: bool
    sampler: Any
    batch_sampler: Any
    collate_fn: Callable
    num_workers: int
    worker_init_fn: Callable | None
    generator: Any
    persistent_workers: bool
    backend: str  # "torch": torch's samplers and global generator; "numpy": adapters' emulation
    default_collate: bool  # collate_fn is (torch's or our) default_collate / default_convert
    timeout: float = 0
    prefetch_factor: int | None = None
    # "lazy": the loader object is one torch iterator over all epochs started at its first iter() (timm's
    # MultiEpochsDataLoader, ultralytics' InfiniteDataLoader): infinite="lazy" semantics.
    repeat: str | None = None

    @property
    def auto_collation(self) -> bool:
        return self.batch_sampler is not None

    @property
    def index_sampler(self):
        return self.batch_sampler if self.auto_collation else self.sampler

    @property
    def iterable_index(self):
        """What torch's fetcher gets per batch from an IterableDataset's sampler: ``[None] * batch_size``."""
        if not self.auto_collation:
            return None
        # An IterableDataset is batched by batch_size only (torch refuses a batch_sampler with it).
        assert self.batch_size is not None
        return [None] * self.batch_size


def _is_torch_default(fn, torch) -> bool:
    if torch is None:
        return False
    from torch.utils.data._utils import collate as tc

    return fn is tc.default_collate or fn is tc.default_convert


def _numpy_collate_for(fn, auto_collation: bool, torch) -> tuple[Callable, bool]:
    """Swap torch's default collate for the numpy mirror (same values and dtypes, no torch)."""
    if fn is None or fn is _collate.default_collate or fn is _collate.default_convert:
        fn = None
    elif _is_torch_default(fn, torch):
        fn = None
    if fn is None:
        return (_collate.default_collate if auto_collation else _collate.default_convert), True
    return fn, False


def _warn_unmapped(pin_memory: bool, multiprocessing_context) -> None:
    """Options with no meaning for a MindSpore pipeline: said once, never silently dropped."""
    if pin_memory:
        warnings.warn(
            "to_mindspore: pin_memory=True has no effect: batches go to MindSpore as numpy arrays "
            "(MindSpore moves them to the device); the values are the same.",
            stacklevel=4,
        )
    if multiprocessing_context is not None:
        method = getattr(multiprocessing_context, "get_start_method", lambda: multiprocessing_context)()
        if method != "fork":
            warnings.warn(
                f"to_mindspore: multiprocessing_context={method!r} is not used: the pipeline forks its "
                "worker processes (as torch's default on Linux); datasets and worker_init_fn see the same "
                "values, but objects are not pickled into the workers.",
                stacklevel=4,
            )


def _check_in_order(in_order: bool) -> None:
    if not in_order:
        warnings.warn(
            "to_mindspore: in_order=False makes torch's batch order depend on worker timing; "
            "the MindSpore pipeline yields batches in sampler order (in_order=True).",
            stacklevel=3,
        )


def spec_from_loader(loader) -> LoaderSpec:
    """Read a ``torch.utils.data.DataLoader``'s resolved settings."""
    torch = torch_or_none()
    from torch.utils.data import IterableDataset

    _check_in_order(getattr(loader, "in_order", True))
    batch_sampler, sampler, repeat = loader.batch_sampler, loader.sampler, None
    if (
        _is_repeat_sampler(batch_sampler)
        or _is_repeat_sampler(sampler)
        or getattr(loader, "iterator", None) is not None
    ):
        # One torch iterator over all epochs (a repeating sampler inside): YOLOv5's InfiniteDataLoader starts it
        # when constructed; timm's MultiEpochsDataLoader and ultralytics' InfiniteDataLoader at the first iter().
        if getattr(loader, "iterator", None) is not None:
            raise TypeError(
                f"to_mindspore: this {type(loader).__name__} has already started its iterator (it drew the base "
                "seed and the first sampler order, and its workers hold their state), so its stream cannot be "
                "replayed from the loader object. Pass the loader before its first iteration, or the dataset with "
                "the same DataLoader keyword arguments plus infinite=True (YOLOv5's InfiniteDataLoader, which starts "
                "when constructed), e.g. to_mindspore(dataset, batch_size=..., shuffle=True, num_workers=..., "
                "collate_fn=..., worker_init_fn=..., generator=<a generator seeded as the loader's was>, infinite=True)"
            )
        if _is_repeat_sampler(batch_sampler):
            batch_sampler = batch_sampler.sampler
        elif _is_repeat_sampler(sampler):
            sampler = sampler.sampler
        repeat = "lazy"
    kind = "iterable" if isinstance(loader.dataset, IterableDataset) else "map"
    _warn_unmapped(loader.pin_memory, loader.multiprocessing_context)
    collate_fn, is_default = _numpy_collate_for(loader.collate_fn, loader.batch_sampler is not None, torch)
    return LoaderSpec(
        dataset=loader.dataset,
        kind=kind,
        batch_size=loader.batch_size,
        drop_last=loader.drop_last,
        sampler=sampler,
        batch_sampler=batch_sampler,
        collate_fn=collate_fn,
        num_workers=loader.num_workers,
        worker_init_fn=loader.worker_init_fn,
        generator=loader.generator,
        persistent_workers=loader.persistent_workers,
        backend="torch",
        default_collate=is_default,
        timeout=loader.timeout,
        prefetch_factor=loader.prefetch_factor,
        repeat=repeat,
    )


def _is_repeat_sampler(sampler) -> bool:
    """timm's / ultralytics' ``_RepeatSampler``: ``sampler`` repeated forever (one iterator over all epochs)."""
    return type(sampler).__name__ == "_RepeatSampler" and hasattr(sampler, "sampler")


def _check_kwargs(kwargs: dict) -> dict:
    unknown = sorted(set(kwargs) - set(DATALOADER_DEFAULTS))
    if unknown:
        raise TypeError(
            f"to_mindspore() got unexpected keyword argument(s) {unknown}; expected DataLoader's keyword "
            f"arguments: {sorted(DATALOADER_DEFAULTS)} (plus column_names, seed, set_epoch)"
        )
    return {**DATALOADER_DEFAULTS, **kwargs}


def _use_torch_backend(torch, opts: dict) -> bool:
    if torch is None:
        return False
    emulated = (Generator, _samplers.Sampler)
    return not any(isinstance(opts[k], emulated) for k in ("generator", "sampler", "batch_sampler"))


def _is_iterable_dataset(dataset, torch) -> bool:
    if torch is not None:
        from torch.utils.data import IterableDataset

        if isinstance(dataset, IterableDataset):
            return True
    return isinstance(dataset, _datasets.IterableDataset) or (
        hasattr(dataset, "__iter__") and not hasattr(dataset, "__getitem__")
    )


def spec_from_dataset(dataset, **kwargs) -> LoaderSpec:
    """Resolve DataLoader keyword arguments for ``dataset`` exactly as torch's DataLoader does.

    With torch importable (and no emulated generator/sampler given) a real DataLoader is built, so
    validation messages and default samplers are torch's own; without torch the same rules run on
    adapters' numpy mirrors.
    """
    opts = _check_kwargs(kwargs)
    torch = torch_or_none()
    if _use_torch_backend(torch, opts):
        loader = torch.utils.data.DataLoader(dataset, **opts)
        spec = spec_from_loader(loader)
        return spec
    return _numpy_spec(dataset, opts, torch)


def _numpy_spec(dataset, o: dict, torch) -> LoaderSpec:  # noqa: C901 - DataLoader.__init__'s checks, mirrored in order
    # The same checks, in the same order and with the same messages, as torch.utils.data.DataLoader.__init__.
    if o["num_workers"] < 0:
        raise ValueError("num_workers option should be non-negative; use num_workers=0 to disable multiprocessing.")
    if o["timeout"] < 0:
        raise ValueError("timeout option should be non-negative")
    if o["num_workers"] == 0 and o["prefetch_factor"] is not None:
        raise ValueError(
            "prefetch_factor option could only be specified in multiprocessing."
            "let num_workers > 0 to enable multiprocessing, otherwise set prefetch_factor to None."
        )
    if o["prefetch_factor"] is not None and o["prefetch_factor"] < 0:
        raise ValueError("prefetch_factor option should be non-negative")
    if o["persistent_workers"] and o["num_workers"] == 0:
        raise ValueError("persistent_workers option needs num_workers > 0")
    _check_in_order(o["in_order"])
    _warn_unmapped(o["pin_memory"], o["multiprocessing_context"])
    shuffle, sampler, batch_sampler = o["shuffle"], o["sampler"], o["batch_sampler"]
    batch_size, drop_last, generator = o["batch_size"], o["drop_last"], o["generator"]
    if generator is not None and not isinstance(generator, Generator):
        raise TypeError(
            f"generator: expected adapters.Generator (torch is not importable) but got {type(generator).__name__}"
        )
    iterable = _is_iterable_dataset(dataset, torch)
    if iterable:
        if shuffle not in {False, None}:
            raise ValueError(
                f"DataLoader with IterableDataset: expected unspecified shuffle option, but got shuffle={shuffle}"
            )
        if sampler is not None:
            raise ValueError(
                f"DataLoader with IterableDataset: expected unspecified sampler option, but got sampler={sampler}"
            )
        if batch_sampler is not None:
            raise ValueError(
                "DataLoader with IterableDataset: expected unspecified "
                f"batch_sampler option, but got batch_sampler={batch_sampler}"
            )
    else:
        shuffle = bool(shuffle)
    if sampler is not None and shuffle:
        raise ValueError("sampler option is mutually exclusive with shuffle")
    if batch_sampler is not None:
        if batch_size != 1 or shuffle or sampler is not None or drop_last:
            raise ValueError(
                "batch_sampler option is mutually exclusive with batch_size, shuffle, sampler, and drop_last"
            )
        batch_size, drop_last = None, False
    elif batch_size is None and drop_last:
        raise ValueError("batch_size=None option disables auto-batching and is mutually exclusive with drop_last")
    if sampler is None:
        if iterable:
            sampler = _datasets.InfiniteConstantSampler()
        elif shuffle:
            sampler = _samplers.RandomSampler(dataset, generator=generator)
        else:
            sampler = _samplers.SequentialSampler(dataset)
    if batch_size is not None and batch_sampler is None:
        batch_sampler = _samplers.BatchSampler(sampler, batch_size, drop_last)
    collate_fn, is_default = _numpy_collate_for(o["collate_fn"], batch_sampler is not None, None)
    return LoaderSpec(
        dataset=dataset,
        kind="iterable" if iterable else "map",
        batch_size=batch_size,
        drop_last=drop_last,
        sampler=sampler,
        batch_sampler=batch_sampler,
        collate_fn=collate_fn,
        num_workers=o["num_workers"],
        worker_init_fn=o["worker_init_fn"],
        generator=generator,
        persistent_workers=o["persistent_workers"],
        backend="numpy",
        default_collate=is_default,
        timeout=o["timeout"],
        prefetch_factor=(2 if o["num_workers"] > 0 else None) if o["prefetch_factor"] is None else o["prefetch_factor"],
    )


def named_samplers(spec: LoaderSpec) -> list[tuple[str, Any]]:
    """Every distinct sampler reachable from the loader, outermost first, with its attribute path.

    ``batch_sampler``, ``sampler`` and, recursively, their ``batch_sampler`` / ``sampler`` attributes
    (``batch_sampler.sampler``, ...): what a training loop could call ``set_epoch`` on
    (``reachable_samplers``) and what a saved state names (``adapters.engine._state``).
    """
    found: list[tuple[str, Any]] = []
    seen: set[int] = set()
    stack: list[tuple[str, Any]] = [("batch_sampler", spec.batch_sampler), ("sampler", spec.sampler)]
    while stack:
        path, obj = stack.pop(0)
        if obj is None or id(obj) in seen or obj is spec.dataset:
            continue
        seen.add(id(obj))
        found.append((path, obj))
        stack.extend((f"{path}.{name}", getattr(obj, name, None)) for name in ("batch_sampler", "sampler"))
    return found
