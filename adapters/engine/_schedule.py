"""The one rule for "which worker, which seed, which indices": torch's DataLoader iterator, as data.

Every source of the engine asks :class:`Schedule`; nothing else encodes torch's dispatch rules.

torch (2.13, ``torch/utils/data/dataloader.py``), per ``iter(loader)``:

* ``num_workers == 0``: ``iter(index_sampler)``, then the base seed draw (``random_()`` on
  ``loader.generator`` or the global generator); each ``next()`` takes one index batch and fetches it
  in the calling process.
* ``num_workers >= 1``: ``iter(index_sampler)``, the base seed draw, then ``_reset``: a second
  ``iter(index_sampler)`` (the one used), ``prefetch_factor * num_workers`` tasks dispatched, one
  more per batch handed out. Task ``k`` goes to worker ``k % num_workers`` (restarting at worker 0
  each epoch); a worker seeds its streams from ``base_seed + id`` and calls ``worker_init_fn``.
* IterableDataset with workers: each worker iterates its own copy; tasks go round robin to the workers
  (``_worker_queue_idx_cycle``), skipping those whose shard has ended (``_workers_status``); in order, the
  batches come out in the order the tasks went (:class:`WorkerCycle`).
* ``persistent_workers``: later ``iter(loader)`` calls only ``_reset`` (one ``iter(index_sampler)``,
  no new base seed, the same worker processes and their streams).
* One iterator over many epochs (YOLOv5's ``InfiniteDataLoader``, or an infinite sampler cut into
  ``steps_per_epoch``): one base seed, persistent workers, and dispatch that keeps cycling over the
  workers across epoch boundaries.
"""

from __future__ import annotations

import dataclasses

__all__ = ["Schedule", "WorkerCycle"]


@dataclasses.dataclass(frozen=True)
class Schedule:
    """torch's dispatch rules for one loader configuration.

    Args:
        num_workers: torch's ``num_workers``.
        persistent: torch's ``persistent_workers`` (implied by ``continuous``).
        mode: ``"epochs"`` (a new torch iterator per epoch), ``"repeat"`` (one iterator over all epochs
            that re-iterates the sampler whenever it ends: YOLOv5's ``InfiniteDataLoader``) or
            ``"steps"`` (one iterator over an infinite sampler, ``steps_per_epoch`` batches an epoch).
        prefetch_factor: torch's ``prefetch_factor`` (2 when ``num_workers >= 1`` and unset).

    Example:
        >>> s = Schedule(num_workers=3, persistent=False, mode="epochs", prefetch_factor=2)
        >>> [s.worker_of(start=0, k=k) for k in range(5)], s.draws_base_seed(epoch=1)
        ([0, 1, 2, 0, 1], True)
    """

    num_workers: int
    persistent: bool
    mode: str
    prefetch_factor: int

    def __post_init__(self) -> None:
        if self.mode not in ("epochs", "repeat", "steps"):
            raise ValueError(f"Schedule.mode must be 'epochs', 'repeat' or 'steps', got {self.mode!r}")

    @property
    def continuous(self) -> bool:
        """One torch iterator spans every epoch: batches keep their global order across epochs."""
        return self.mode != "epochs"

    @property
    def keeps_workers(self) -> bool:
        """Worker processes (and their streams) live across epochs."""
        return self.num_workers > 0 and (self.persistent or self.continuous)

    def worker_of(self, *, start: int, k: int) -> int:
        """Torch worker that produces batch ``k`` of an epoch whose first batch has global number ``start``.

        ``start`` is the number of batches dispatched by the same torch iterator before this epoch:
        always 0 unless ``continuous``.
        """
        return (start + k) % self.num_workers

    def worker_cycle(self) -> WorkerCycle:
        """An IterableDataset epoch's dispatch: round robin over the workers whose shard has not ended."""
        return WorkerCycle(self.num_workers)

    def draws_base_seed(self, epoch: int) -> bool:
        """Whether ``iter(loader)`` for ``epoch`` draws a new base seed (a new torch iterator)."""
        return epoch == 0 or not (self.keeps_workers or self.continuous)

    def starts_workers(self, epoch: int) -> bool:
        """Whether epoch ``epoch`` starts fresh workers (seeded, ``worker_init_fn`` called)."""
        return self.num_workers > 0 and (epoch == 0 or not self.keeps_workers)

    def iter_calls(self, epoch: int) -> tuple[bool, bool]:
        """``iter(index_sampler)`` calls before and after the base seed draw for ``epoch``'s iterator."""
        if self.mode == "steps" and epoch > 0:
            return (False, False)  # the same iterator keeps going
        if self.mode == "repeat":
            return (False, True)  # _RepeatSampler: one pass of the sampler after another
        new_iterator = self.draws_base_seed(epoch)
        if self.num_workers == 0:
            return (True, False)
        if new_iterator:
            return (True, True)  # __init__ and _reset(first_iter=True)
        return (False, True)  # persistent workers: _reset only

    def sampler_epoch(self, epoch: int, batches_per_pass: int) -> int:
        """The epoch a training loop has set (``set_epoch``) when torch starts the sampler pass of ``epoch``.

        In ``"repeat"`` mode (YOLOv5's ``InfiniteDataLoader``) the one torch iterator keeps
        :attr:`max_outstanding` index batches ahead of the loop, so pass ``q`` of the sampler starts
        (its first index batch, global draw ``q * L``, is drawn) when the loop has consumed
        ``q * L - max_outstanding`` batches: the loop's last ``set_epoch`` was then
        ``floor((q * L - max_outstanding) / L)``, at least 0 (the first passes start while the
        iterator primes, under ``set_epoch(0)``). Elsewhere each pass starts at its own epoch's
        ``iter(loader)``, after the loop's ``set_epoch(epoch)``.

        Example:
            >>> s = Schedule(num_workers=2, persistent=True, mode="repeat", prefetch_factor=2)
            >>> [s.sampler_epoch(q, batches_per_pass=3) for q in range(5)]
            [0, 0, 0, 1, 2]
        """
        if self.mode != "repeat" or not self.num_workers or batches_per_pass <= 0:
            return epoch
        return max(0, (epoch * batches_per_pass - self.max_outstanding) // batches_per_pass)

    @property
    def max_outstanding(self) -> int:
        """Tasks torch keeps in flight: ``prefetch_factor * num_workers`` (0 without workers)."""
        return self.prefetch_factor * self.num_workers

    def dispatched(self, *, consumed: int, total: int, finished: bool) -> int:
        """How many ``next(sampler_iter)`` calls torch has made after handing out ``consumed`` batches.

        Args:
            consumed: batches the training loop took from this epoch's iterator.
            total: batches the sampler yields this epoch (``None``-free; ``total + 1`` calls exhaust it).
            finished: the loop saw the end of the epoch (``StopIteration``).

        Example:
            >>> Schedule(2, False, "epochs", 2).dispatched(consumed=1, total=10, finished=False)
            5
        """
        if finished:
            return total + 1
        if self.num_workers == 0:
            return consumed
        return min(total + 1, self.max_outstanding + consumed)


class WorkerCycle:
    """torch's ``_worker_queue_idx_cycle`` for an IterableDataset: round robin over the workers still active.

    Iterate it for the worker of each next task; :meth:`stop` a worker once its shard has ended (torch marks it
    inactive when its ``_IterableDatasetStopIteration`` arrives, and skips it from then on).

    Example:
        >>> cycle = WorkerCycle(3)
        >>> order = []
        >>> for w in cycle:
        ...     order.append(w)
        ...     if len(order) == 4: cycle.stop(1)
        ...     if len(order) == 8: break
        >>> order
        [0, 1, 2, 0, 2, 0, 2, 0]
    """

    def __init__(self, num_workers: int) -> None:
        self.num_workers = num_workers
        self.active = set(range(num_workers))
        self._next = 0

    def __iter__(self) -> WorkerCycle:
        return self

    def __next__(self) -> int:
        for i in range(self.num_workers):
            w = (self._next + i) % self.num_workers
            if w in self.active:
                self._next = w + 1
                return w
        raise StopIteration  # every shard has ended

    def stop(self, worker: int) -> None:
        """``worker``'s shard ended: no more tasks for it."""
        self.active.discard(worker)
