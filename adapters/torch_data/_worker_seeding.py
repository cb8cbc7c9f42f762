"""What torch's DataLoader seeds each worker's random streams with, torch-free.

torch's ``_worker_loop`` (``torch/utils/data/_utils/worker.py``) does, for worker ``w`` and the
iterator's ``base_seed`` (one ``random_()`` int64 draw from the loader's generator, see
``adapters.torch_data._torch_generator.Generator.random_``)::

    seed = base_seed + w
    random.seed(seed); torch.manual_seed(seed); np.random.seed(_generate_state(base_seed, w))

then builds ``WorkerInfo`` and calls ``worker_init_fn(w)``.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

__all__ = ["WorkerInfo", "WorkerSeeds", "draw_base_seed", "generate_state", "worker_seeds"]


def _check(base_seed: int, worker_id: int) -> tuple[int, int]:
    base_seed, worker_id = operator.index(base_seed), operator.index(worker_id)
    if not 0 <= base_seed < 2**64:
        raise ValueError(f"base_seed must be in [0, 2**64) (torch draws it in [0, 2**63)), got {base_seed}")
    if not 0 <= worker_id < 2**32:
        raise ValueError(f"worker_id must be in [0, 2**32), got {worker_id}")
    return base_seed, worker_id


def generate_state(base_seed: int, worker_id: int) -> np.ndarray:
    """The numpy seed torch gives worker ``worker_id``: ``_generate_state(base_seed, worker_id)``.

    torch's function is numpy's ``SeedSequence`` hash copied out (its comment says so), applied to
    the entropy words ``[worker_id, base_seed & 0xffffffff, base_seed >> 32, 0]``; so numpy's own
    ``SeedSequence(...).generate_state(4)`` computes it.

    Args:
        base_seed: the DataLoader iterator's base seed, in ``[0, 2**64)``.
        worker_id: worker index, in ``[0, 2**32)``.

    Returns:
        ``np.ndarray`` of 4 uint32 words (what ``np.random.seed`` receives in the worker).

    Raises:
        ValueError: an argument out of range.

    Example:
        >>> generate_state(1234, 3).tolist()  # == torch's _generate_state(1234, 3)
        [518877948, 2568827709, 782319892, 1978426413]
    """
    base_seed, worker_id = _check(base_seed, worker_id)
    entropy = [worker_id, base_seed & 0xFFFFFFFF, base_seed >> 32, 0]
    return np.random.SeedSequence(entropy).generate_state(4, dtype=np.uint32)


class WorkerSeeds(NamedTuple):
    """The seed each stream of a DataLoader worker gets.

    Attributes:
        python: ``random.seed`` argument (``base_seed + worker_id``).
        torch: ``torch.manual_seed`` argument (the same value; also ``WorkerInfo.seed``).
        numpy: ``np.random.seed`` argument (4 uint32 words, :func:`generate_state`).
    """

    python: int
    torch: int
    numpy: np.ndarray


def worker_seeds(base_seed: int, worker_id: int) -> WorkerSeeds:
    """Return what torch seeds worker ``worker_id``'s python, torch and numpy streams with.

    Args:
        base_seed: the DataLoader iterator's base seed.
        worker_id: worker index.

    Returns:
        :class:`WorkerSeeds`.

    Raises:
        ValueError: an argument out of range.

    Example:
        >>> worker_seeds(10, 2).python
        12
    """
    base_seed, worker_id = _check(base_seed, worker_id)
    seed = base_seed + worker_id
    return WorkerSeeds(python=seed, torch=seed, numpy=generate_state(base_seed, worker_id))


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """torch's ``WorkerInfo`` (what ``get_worker_info()`` returns in a worker), torch-free.

    Attributes:
        id: worker index, ``0 .. num_workers - 1``.
        num_workers: number of workers.
        seed: the worker's seed (``base_seed + id``).
        dataset: the worker's copy of the dataset.
        rng: optional RNG state container (torch 2.13 field), default ``None``.
        worker_method: ``"multiprocessing"`` (default) or ``"thread"`` (torch 2.13 field).

    Example:
        >>> WorkerInfo(id=0, num_workers=2, seed=7, dataset=None).seed
        7
    """

    id: int
    num_workers: int
    seed: int
    dataset: Any
    rng: Any = None
    worker_method: str | None = "multiprocessing"


def draw_base_seed(generator, backend: str) -> int:
    """Draw the int64 base seed ``iter(DataLoader)`` draws, from ``generator`` or the global generator.

    torch: ``torch.empty((), dtype=torch.int64).random_(generator=loader.generator).item()``.

    Args:
        generator: the loader's generator (torch's, or :class:`adapters.Generator`), or ``None``.
        backend: ``"torch"`` (draw with torch, from its global generator when ``generator`` is None)
            or ``"numpy"`` (the emulation; :data:`adapters.default_generator` when None).

    Example:
        >>> from adapters import Generator
        >>> draw_base_seed(Generator().manual_seed(0), "numpy") == draw_base_seed(Generator().manual_seed(0), "numpy")
        True
    """
    if backend == "torch":
        import torch

        return int(torch.empty((), dtype=torch.int64).random_(generator=generator).item())
    from adapters.torch_data import _torch_generator

    gen = generator if generator is not None else _torch_generator.default_generator
    return int(gen.random_())
