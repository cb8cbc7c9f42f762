"""Virtual torch workers: the random-stream state and identity each torch worker would have."""

from __future__ import annotations

import contextlib

from adapters._rng_streams import StreamState, capture_streams, restore_streams, seed_streams_like_torch_worker
from adapters._worker_info import set_worker_info
from adapters._worker_seeding import WorkerInfo

__all__ = ["VirtualWorker"]


class VirtualWorker:
    """One torch DataLoader worker, emulated.

    A torch worker process seeds python ``random``, torch and numpy from ``base_seed + id`` (numpy
    through torch's ``_generate_state``), sets its ``WorkerInfo`` and calls ``worker_init_fn(id)``;
    a fresh worker does that every epoch, a persistent one only once.

    Args:
        worker_id: torch worker id (batch ``k`` belongs to worker ``k % num_workers``).
        num_workers: torch's ``num_workers``.
        dataset: the dataset copy this worker fetches from.
        worker_init_fn: called with ``worker_id`` after seeding, as torch does.
        persistent: torch's ``persistent_workers``.
        isolate: keep this worker's streams in a private snapshot, swapped in around each batch
            (needed when several virtual workers share one process or thread); otherwise the
            worker owns its process's global streams.
    """

    def __init__(self, worker_id, num_workers, dataset, worker_init_fn, *, persistent: bool, isolate: bool):
        self.id = worker_id
        self.num_workers = num_workers
        self.dataset = dataset
        self._init_fn = worker_init_fn
        self._persistent = persistent
        self._isolate = isolate
        self._state: StreamState | None = None
        self.info: WorkerInfo | None = None
        self.epoch: int | None = None

    @property
    def started(self) -> bool:
        return self.epoch is not None

    def begin_epoch(self, epoch: int, base_seed: int) -> bool:
        """Start epoch ``epoch``; (re)seed like a new torch worker unless persistent and started.

        Returns:
            True if the worker was (re)started (seeded and ``worker_init_fn`` called).
        """
        restart = not (self._persistent and self.started)
        self.epoch = epoch
        if not restart:
            return False
        saved = capture_streams() if self._isolate else None
        seed = seed_streams_like_torch_worker(base_seed, self.id)
        self.info = WorkerInfo(id=self.id, num_workers=self.num_workers, seed=seed, dataset=self.dataset)
        set_worker_info(self.info)
        try:
            if self._init_fn is not None:
                self._init_fn(self.id)
        finally:
            if saved is not None:
                self._state = capture_streams()
                restore_streams(saved)
                set_worker_info(None)
        return True

    @contextlib.contextmanager
    def active(self):
        """Run the body as this worker: its streams and its ``get_worker_info()``."""
        if not self._isolate:
            set_worker_info(self.info)
            yield
            return
        saved = capture_streams()
        restore_streams(self._state)
        set_worker_info(self.info)
        try:
            yield
        finally:
            self._state = capture_streams()
            restore_streams(saved)
            set_worker_info(None)
