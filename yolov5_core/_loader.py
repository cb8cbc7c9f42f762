"""Upstream YOLOv5 v7.0's ``create_dataloader`` recipe, framework-free: one place for each rule.

``yolov5/utils/dataloaders.py`` decides, before it builds a torch ``DataLoader``:

* ``batch_size = min(batch_size, len(dataset))``;
* ``nw = min(os.cpu_count() // max(devices, 1), batch_size if batch_size > 1 else 0, workers)``
  (``devices``: ``torch.cuda.device_count()`` there, the caller's device count here);
* sampler: ``None``, or ``DistributedSampler(dataset, shuffle=shuffle)`` when ``rank != -1``, and
  the loader shuffles itself only without one (``shuffle and sampler is None``);
* ``InfiniteDataLoader`` (one iterator, workers persist) unless ``image_weights`` (a plain
  ``DataLoader``, whose fresh workers see ``dataset.indices`` as train.py rewrote them);
* ``generator.manual_seed(6148914691236517205 + seed + RANK)``, ``RANK`` from the environment
  (``-1`` without DDP);
* ``worker_init_fn=seed_worker``: numpy's then python's global streams reseeded with the
  worker's torch seed ``% 2**32`` (:func:`seed_worker_from`).

``yolov5_pt`` and ``yolov5_ms`` both read these rules from :func:`loader_recipe`; only the objects
they build (torch's or adapters' sampler and generator) differ.
"""

from __future__ import annotations

import os
import random
import warnings
from dataclasses import dataclass

import numpy as np

__all__ = ["GENERATOR_SEED_BASE", "LoaderRecipe", "loader_recipe", "rank_from_env", "rect_shuffle", "seed_worker_from"]

GENERATOR_SEED_BASE = 6148914691236517205  # upstream's constant (0x5555555555555555)


def rank_from_env(environ=None) -> int:
    """The global ``RANK`` upstream reads from the environment (``-1`` when unset).

    Raises:
        ValueError: ``RANK`` is set but not an integer.

    Example:
        >>> rank_from_env({}), rank_from_env({'RANK': '1'})
        (-1, 1)
    """
    value = (os.environ if environ is None else environ).get("RANK", -1)
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"create_dataloader: environment variable RANK must be an integer, got {value!r}") from None


def rect_shuffle(rect: bool, shuffle: bool) -> bool:
    """Upstream's first rule: ``rect`` turns ``shuffle`` off, with a warning.

    Returns:
        the ``shuffle`` to use.

    Example:
        >>> rect_shuffle(False, True)
        True
    """
    if rect and shuffle:
        warnings.warn("--rect is incompatible with DataLoader shuffle, setting shuffle=False", stacklevel=3)
        return False
    return shuffle


def seed_worker_from(worker_seed: int) -> None:
    """Upstream's ``seed_worker`` body: reseed numpy's, then python's, global streams.

    Args:
        worker_seed: the worker's torch seed (``torch.initial_seed()`` in a torch worker,
            ``get_worker_info().seed`` in general: ``base_seed + worker_id``); taken ``% 2**32``.

    Example:
        >>> seed_worker_from(2**32 + 5); a = random.random()
        >>> random.seed(5); a == random.random()
        True
    """
    worker_seed = int(worker_seed) % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)


@dataclass(frozen=True)
class LoaderRecipe:
    """What upstream's ``create_dataloader`` builds its loader from (see the module docstring).

    Attributes:
        batch_size: the capped batch size.
        num_workers: upstream's worker-count formula.
        distributed: a ``DistributedSampler(dataset, shuffle=sampler_shuffle)`` is used.
        sampler_shuffle: the ``shuffle`` handed to that sampler.
        shuffle: the loader's own ``shuffle`` (``shuffle and sampler is None``).
        infinite: ``InfiniteDataLoader`` (persistent, one iterator) rather than a plain loader.
        quad: ``collate_fn4`` rather than ``collate_fn``.
        generator_seed: ``6148914691236517205 + seed + RANK``.
    """

    batch_size: int
    num_workers: int
    distributed: bool
    sampler_shuffle: bool
    shuffle: bool
    infinite: bool
    quad: bool
    generator_seed: int


def loader_recipe(
    dataset_len: int,
    batch_size: int,
    *,
    rank: int = -1,
    workers: int = 8,
    image_weights: bool = False,
    quad: bool = False,
    shuffle: bool = False,
    seed: int = 0,
    devices: int = 0,
    cpu_count: int | None = None,
    environ=None,
) -> LoaderRecipe:
    """Apply upstream's rules to a dataset of ``dataset_len`` samples.

    Args:
        dataset_len: ``len(dataset)``.
        batch_size: requested batch size.
        rank: local rank (``-1``: no DDP).
        workers: upper bound on workers.
        image_weights: plain loader instead of ``InfiniteDataLoader``.
        quad: quad collation.
        shuffle: shuffle (``rect`` must already have turned it off, as upstream does first).
        seed: added to the generator seed.
        devices: accelerator count (torch: ``torch.cuda.device_count()``).
        cpu_count: ``os.cpu_count()`` by default.
        environ: where ``RANK`` is read (``os.environ`` by default).

    Returns:
        :class:`LoaderRecipe`.

    Raises:
        ValueError: a non-positive ``batch_size`` or negative ``workers`` (naming it).

    Example:
        >>> r = loader_recipe(10, 16, workers=4, shuffle=True, cpu_count=8, environ={})
        >>> r.batch_size, r.num_workers, r.shuffle, r.infinite, r.generator_seed - GENERATOR_SEED_BASE
        (10, 4, True, True, -1)
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
        raise ValueError(f"create_dataloader: batch_size must be a positive int, got {batch_size!r}")
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 0:
        raise ValueError(f"create_dataloader: workers must be an int >= 0, got {workers!r}")
    batch_size = min(int(batch_size), int(dataset_len))
    cpus = (os.cpu_count() or 1) if cpu_count is None else cpu_count
    nw = min([cpus // max(devices, 1), batch_size if batch_size > 1 else 0, int(workers)])
    distributed = rank != -1
    return LoaderRecipe(
        batch_size=batch_size,
        num_workers=nw,
        distributed=distributed,
        sampler_shuffle=bool(shuffle),
        shuffle=bool(shuffle) and not distributed,
        infinite=not image_weights,
        quad=bool(quad),
        generator_seed=GENERATOR_SEED_BASE + int(seed) + rank_from_env(environ),
    )
