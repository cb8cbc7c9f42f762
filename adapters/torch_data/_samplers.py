"""torch's samplers (``torch.utils.data.sampler`` / ``distributed``), torch-free, same draws.

Names, signatures, validation messages and the order of random draws follow torch 2.13, with
:class:`adapters.torch_data._torch_generator.Generator` in place of ``torch.Generator``: the same seed gives
the same index stream as torch's sampler (``tests/adapters/test_samplers.py`` checks each one
against torch over several epochs). A sampler's draws happen lazily, on the first ``next()``,
exactly where torch's generator-function ``__iter__`` makes them.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator, Sequence, Sized
from typing import Any, Generic, TypeVar

import numpy as np

from adapters.torch_data._torch_generator import Generator, default_generator

__all__ = [
    "BatchSampler",
    "DistributedSampler",
    "RandomSampler",
    "Sampler",
    "SequentialSampler",
    "SubsetRandomSampler",
    "WeightedRandomSampler",
]

_T_co = TypeVar("_T_co", covariant=True)


def _check_generator(generator: Any, where: str) -> Generator | None:
    """Accept ``None`` or our :class:`Generator`; a torch generator gets a pointer to the fix."""
    if generator is None or isinstance(generator, Generator):
        return generator
    hint = " (convert it with adapters Generator.from_torch(g))" if hasattr(generator, "get_state") else ""
    got = f"{type(generator).__module__}.{type(generator).__qualname__}"
    raise TypeError(f"{where}: generator must be None or an adapters Generator, got {got}{hint}")


class Sampler(Generic[_T_co]):
    """Base class of all samplers, as ``torch.utils.data.Sampler``: subclasses define ``__iter__``.

    There is deliberately no default ``__len__`` (torch's reasoning: ``list(sampler)`` must be able
    to fall back to iteration).

    Example:
        >>> class Evens(Sampler[int]):
        ...     def __iter__(self):
        ...         return iter(range(0, 6, 2))
        >>> list(Evens())
        [0, 2, 4]
    """

    def __iter__(self) -> Iterator[_T_co]:
        raise NotImplementedError


class SequentialSampler(Sampler[int]):
    """Yield ``0 .. len(data_source) - 1`` in order.

    Args:
        data_source: anything with ``__len__``.

    Example:
        >>> list(SequentialSampler(range(3)))
        [0, 1, 2]
    """

    def __init__(self, data_source: Sized) -> None:
        self.data_source = data_source

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler[int]):
    """Shuffled indices, drawn as torch's ``RandomSampler`` draws them.

    Draws, on the first ``next()``: with ``generator=None`` one int64 seed from
    ``default_generator`` (``Generator.random_``) seeding a private generator. Without
    replacement: ``num_samples // n`` full ``randperm(n)``, then one more ``randperm(n)`` truncated
    to ``num_samples % n`` -- drawn even when that remainder is 0, once the iterator reaches its end.
    With replacement: ``randint(n, (32,))`` per 32 samples, then ``randint(n, (num_samples % 32,))``.

    Args:
        data_source: anything with ``__len__``.
        replacement: draw with replacement.
        num_samples: how many indices per epoch (default ``len(data_source)``).
        generator: an adapters :class:`Generator`, or ``None`` for ``default_generator``.

    Raises:
        TypeError: ``replacement`` not a bool; ``generator`` of another type.
        ValueError: ``num_samples`` not a positive int (torch's messages).

    Example:
        >>> list(RandomSampler(range(5), generator=Generator().manual_seed(0)))
        [4, 0, 1, 3, 2]
    """

    def __init__(
        self,
        data_source: Sized,
        replacement: bool = False,
        num_samples: int | None = None,
        generator: Generator | None = None,
    ) -> None:
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = _check_generator(generator, "RandomSampler")
        if not isinstance(self.replacement, bool):
            raise TypeError(f"replacement should be a boolean value, but got replacement={self.replacement}")
        if not isinstance(self.num_samples, int) or self.num_samples <= 0:
            raise ValueError(f"num_samples should be a positive integer value, but got num_samples={self.num_samples}")

    @property
    def num_samples(self) -> int:
        """``num_samples`` if given, else the data source's current length."""
        if self._num_samples is None:
            return len(self.data_source)
        return self._num_samples

    def __iter__(self) -> Iterator[int]:
        n = len(self.data_source)
        if self.generator is None:
            generator = Generator().manual_seed(default_generator.random_())
        else:
            generator = self.generator
        if self.replacement:
            for _ in range(self.num_samples // 32):
                yield from generator.randint(n, (32,)).tolist()
            yield from generator.randint(n, (self.num_samples % 32,)).tolist()
        else:
            for _ in range(self.num_samples // n):
                yield from generator.randperm(n).tolist()
            yield from generator.randperm(n).tolist()[: self.num_samples % n]

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler[int]):
    """Yield ``indices`` in a random order: ``indices[i] for i in randperm(len(indices))``.

    Args:
        indices: the indices to shuffle.
        generator: an adapters :class:`Generator`, or ``None`` to draw the permutation from
            ``default_generator`` directly (no private generator, unlike ``RandomSampler``).

    Example:
        >>> list(SubsetRandomSampler([10, 20, 30], generator=Generator().manual_seed(0)))
        [30, 10, 20]
    """

    def __init__(self, indices: Sequence[int], generator: Generator | None = None) -> None:
        self.indices = indices
        self.generator = _check_generator(generator, "SubsetRandomSampler")

    def __iter__(self) -> Iterator[int]:
        generator = default_generator if self.generator is None else self.generator
        for i in generator.randperm(len(self.indices)).tolist():
            yield self.indices[i]

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(Sampler[int]):
    """Indices ``0 .. len(weights) - 1`` drawn with probabilities ``weights`` (``multinomial``).

    Args:
        weights: 1-D sequence of non-negative weights (float64, need not sum to one).
        num_samples: how many indices per epoch.
        replacement: draw with replacement.
        generator: an adapters :class:`Generator`, or ``None`` for ``default_generator``.

    Raises:
        ValueError: torch's messages for a bad ``num_samples``, ``replacement`` or weights shape.

    Example:
        >>> list(WeightedRandomSampler([0.0, 1.0], 3, generator=Generator().manual_seed(0)))
        [1, 1, 1]
    """

    def __init__(
        self,
        weights: Sequence[float],
        num_samples: int,
        replacement: bool = True,
        generator: Generator | None = None,
    ) -> None:
        if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples <= 0:
            raise ValueError(f"num_samples should be a positive integer value, but got num_samples={num_samples}")
        if not isinstance(replacement, bool):
            raise ValueError(f"replacement should be a boolean value, but got replacement={replacement}")
        weights_array = np.asarray(weights, dtype=np.float64)
        if len(weights_array.shape) != 1:
            raise ValueError(
                f"weights should be a 1d sequence but given weights have shape {tuple(weights_array.shape)}"
            )
        self.weights = weights_array
        self.num_samples = num_samples
        self.replacement = replacement
        self.generator = _check_generator(generator, "WeightedRandomSampler")

    def __iter__(self) -> Iterator[int]:
        generator = default_generator if self.generator is None else self.generator
        yield from generator.multinomial(self.weights, self.num_samples, self.replacement).tolist()

    def __len__(self) -> int:
        return self.num_samples


class BatchSampler(Sampler[list[int]]):
    """Group another sampler's indices into lists of ``batch_size``.

    Args:
        sampler: any iterable of indices.
        batch_size: indices per batch, a positive int.
        drop_last: drop a last batch shorter than ``batch_size``.

    Raises:
        ValueError: torch's messages for a bad ``batch_size`` or ``drop_last``.

    Example:
        >>> list(BatchSampler(SequentialSampler(range(5)), batch_size=2, drop_last=False))
        [[0, 1], [2, 3], [4]]
    """

    def __init__(self, sampler: Sampler[int] | Iterable[int], batch_size: int, drop_last: bool) -> None:
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
            raise ValueError(f"batch_size should be a positive integer value, but got batch_size={batch_size}")
        if not isinstance(drop_last, bool):
            raise ValueError(f"drop_last should be a boolean value, but got drop_last={drop_last}")
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last

    def __iter__(self) -> Iterator[list[int]]:
        sampler_iter = iter(self.sampler)
        if self.drop_last:
            # zip over one shared iterator stops at the first short batch, as torch's does
            for indices in zip(*([sampler_iter] * self.batch_size), strict=False):
                yield [*indices]
        else:
            batch = [*itertools.islice(sampler_iter, self.batch_size)]
            while batch:
                yield batch
                batch = [*itertools.islice(sampler_iter, self.batch_size)]

    def __len__(self) -> int:
        if self.drop_last:
            return len(self.sampler) // self.batch_size  # type: ignore[arg-type]
        return (len(self.sampler) + self.batch_size - 1) // self.batch_size  # type: ignore[arg-type]


class DistributedSampler(Sampler[int]):
    """This rank's share of the dataset, as ``torch.utils.data.DistributedSampler`` gives it.

    Each epoch: ``randperm(len(dataset))`` from ``Generator().manual_seed(seed + epoch)`` (or
    ``range`` without shuffle); padded by repeating from the start to a multiple of
    ``num_replicas`` (or cut down with ``drop_last``); then ``indices[rank::num_replicas]``.

    Args:
        dataset: anything with ``__len__``.
        num_replicas: world size. Required: with no torch.distributed there is no process group
            to ask.
        rank: this process's rank in ``[0, num_replicas - 1]``. Required, for the same reason.
        shuffle: shuffle each epoch.
        seed: shared base seed of the shuffle.
        drop_last: drop the tail instead of padding.

    Raises:
        ValueError: ``num_replicas``/``rank`` missing, or ``rank`` out of range (torch's message).

    Example:
        >>> list(DistributedSampler(range(5), num_replicas=2, rank=1, shuffle=False))
        [1, 3, 0]
    """

    def __init__(
        self,
        dataset: Sized,
        num_replicas: int | None = None,
        rank: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        if num_replicas is None or rank is None:
            raise ValueError(
                "DistributedSampler needs num_replicas and rank given explicitly (torch reads them from an "
                f"initialised torch.distributed process group); got num_replicas={num_replicas}, rank={rank}"
            )
        if rank >= num_replicas or rank < 0:
            raise ValueError(f"Invalid rank {rank}, rank should be in the interval [0, {num_replicas - 1}]")
        self.dataset = dataset
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.drop_last = drop_last
        if self.drop_last and len(self.dataset) % self.num_replicas != 0:
            self.num_samples = math.ceil((len(self.dataset) - self.num_replicas) / self.num_replicas)
        else:
            self.num_samples = math.ceil(len(self.dataset) / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas
        self.shuffle = shuffle
        self.seed = seed

    def __iter__(self) -> Iterator[int]:
        if self.shuffle:
            g = Generator().manual_seed(self.seed + self.epoch)
            indices = g.randperm(len(self.dataset)).tolist()
        else:
            indices = list(range(len(self.dataset)))
        if not self.drop_last:
            padding_size = self.total_size - len(indices)
            if padding_size <= len(indices):
                indices += indices[:padding_size]
            else:
                indices += (indices * math.ceil(padding_size / len(indices)))[:padding_size]
        else:
            indices = indices[: self.total_size]
        if len(indices) != self.total_size:
            raise AssertionError(f"Number of indices ({len(indices)}) does not match total_size ({self.total_size})")
        indices = indices[self.rank : self.total_size : self.num_replicas]
        if len(indices) != self.num_samples:
            raise AssertionError(
                f"Number of subsampled indices ({len(indices)}) does not match num_samples ({self.num_samples})"
            )
        return iter(indices)

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch; with ``shuffle`` it picks the permutation (``seed + epoch``).

        Args:
            epoch: epoch number; call before creating each epoch's iterator.
        """
        self.epoch = epoch
