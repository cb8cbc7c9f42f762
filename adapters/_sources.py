"""The python sources behind the MindSpore GeneratorDataset: one row per collated batch.

Two shapes, because MindSpore can only spread a *random-access* source over worker processes,
giving row ``r`` of each epoch to worker process ``r % W`` (verified in tests):

* :class:`MapBatchSource` (map-style datasets, ``num_workers >= 1``): row ``k`` is batch ``k``.
  With ``W`` dividing ``num_workers``, torch worker ``k % num_workers`` always lands in process
  ``k % W``, so each process can host its torch workers' random streams across batches.
* :class:`SerialSource` (``num_workers == 0``, and IterableDatasets): an iterable source run by
  one MindSpore thread, epoch after epoch, in exactly torch's order.
"""

from __future__ import annotations

import copy
import os
from typing import Callable

from adapters._death_watch import DeathWatch
from adapters._epochs import EpochPlanner, call_set_epoch, copy_sampling_state, draw_base_seed
from adapters._fetch import collate, fetch_iterable, fetch_map
from adapters._workers import VirtualWorker

__all__ = ["MapBatchSource", "SerialSource"]

RowFn = Callable[[object, int], tuple]


class MapBatchSource:
    """Random-access source: ``source[k]`` is batch ``k`` of the current epoch, as a row of columns.

    Args:
        spec: the resolved LoaderSpec (map-style, ``num_workers >= 1``).
        planner: replays the main process's epoch draws (same in every process).
        to_row: collated batch, batch index → tuple of numpy arrays (one per column).
        isolate: each virtual worker keeps its streams private (several per process/thread).
        in_process: MindSpore runs this source in worker processes (not the main process).
    """

    def __init__(
        self, spec, planner: EpochPlanner, to_row: RowFn, num_batches: int, *, isolate: bool, processes: int
    ):
        self._spec = spec
        self._planner = planner
        self._to_row = to_row
        self._num_batches = num_batches
        self._isolate = isolate
        self._processes = processes
        self._in_process = processes > 1
        self.death_watch = DeathWatch(processes) if self._in_process else None
        self._workers: dict[int, VirtualWorker] = {}
        self._start_epoch = 0
        self.reset(0)

    def reset(self, start_epoch: int) -> None:
        """Start again at ``start_epoch`` (called before MindSpore starts a new iterator)."""
        self._start_epoch = start_epoch
        if not self._spec.persistent_workers:
            self._workers.clear()  # fresh torch workers every epoch anyway
        self._epoch: int | None = None
        self._last_k = -1
        self._pid = os.getpid()

    def __len__(self) -> int:
        return self._num_batches

    def _worker(self, worker_id: int) -> VirtualWorker:
        worker = self._workers.get(worker_id)
        if worker is None:
            worker = VirtualWorker(
                worker_id,
                self._spec.num_workers,
                self._spec.dataset,
                self._spec.worker_init_fn,
                persistent=self._spec.persistent_workers,
                isolate=self._isolate,
            )
            self._workers[worker_id] = worker
        return worker

    def _batch_indices(self, epoch: int):
        plan = self._planner.plan(epoch)
        if len(plan.batches) != self._num_batches:
            raise RuntimeError(
                f"to_mindspore: the sampler yielded {len(plan.batches)} batches in epoch {epoch} but "
                f"len(sampler) is {self._num_batches}; MindSpore needs a fixed epoch length, and no batch "
                "may be dropped or invented"
            )
        return plan

    def __getitem__(self, k) -> tuple:
        k = int(k)  # MindSpore passes numpy.int64; the dataset gets the sampler's own indices
        if self._epoch is None or os.getpid() != self._pid:
            self._pid = os.getpid()
            self._epoch = self._start_epoch
            if self._in_process:
                self._limit_threads()
        elif k <= self._last_k:
            self._epoch += 1  # rows of an epoch reach a process in increasing order
        self._last_k = k
        epoch = self._epoch
        plan = self._batch_indices(epoch)
        worker = self._worker(self._worker_of(epoch, k))
        self._catch_up(worker, epoch)
        if worker.epoch != epoch:
            worker.begin_epoch(epoch, plan.base_seed)
        where = f"batch {k} of epoch {epoch}, torch worker {worker.id} of {self._spec.num_workers}"
        if self.death_watch is not None:
            self.death_watch.record(k % self._processes, f"{where}, indices {plan.batches[k]!r}")
        with worker.active():
            batch = self._fetch(plan.batches[k], where)
        return self._to_row(batch, k)

    def _worker_of(self, epoch: int, k: int) -> int:
        # torch: batch k of an epoch → worker k % N, restarting at worker 0 each epoch; one
        # continuous iterator (InfiniteDataLoader) keeps cycling across epochs instead.
        offset = epoch * self._num_batches if self._spec.continuous else 0
        return (offset + k) % self._spec.num_workers

    def _fetch(self, index, where: str):
        data = fetch_map(self._spec.dataset, index, self._spec.auto_collation, where)
        return collate(self._spec.collate_fn, data, where)

    def _catch_up(self, worker: VirtualWorker, epoch: int) -> None:
        """A persistent worker first met after epoch 0 replays its earlier batches (to advance its streams)."""
        if not self._spec.persistent_workers or worker.started or epoch == 0:
            return
        for past in range(epoch):
            plan = self._batch_indices(past)
            worker.begin_epoch(past, plan.base_seed)
            with worker.active():
                for k in range(self._num_batches):
                    if self._worker_of(past, k) == worker.id:
                        self._fetch(plan.batches[k], f"replay of batch {k} of epoch {past}")

    @staticmethod
    def _limit_threads() -> None:
        # torch workers run with one intra-op thread; do the same in MindSpore worker processes.
        import sys

        torch = sys.modules.get("torch")
        if torch is not None:
            torch.set_num_threads(1)


class SerialSource:
    """Iterable source: each ``iter()`` is one epoch, produced exactly in torch's order.

    ``num_workers == 0``: torch's single-process loop, live — the sampler, the base-seed draw and
    the dataset share the process's global streams, as in torch.
    ``num_workers >= 1`` (IterableDataset): every virtual worker iterates its own copy of the
    dataset with its own streams; batches come out round-robin, skipping exhausted workers, as
    torch's in-order multiprocessing loader yields them.
    """

    def __init__(self, spec, planner: EpochPlanner | None, to_row: RowFn, *, set_epoch: bool):
        self._spec = spec
        self._planner = planner
        self._to_row = to_row
        self._set_epoch = set_epoch
        # Copies, so iterating the original loader in torch does not advance ours (and vice versa).
        self._sampler, self._index_sampler, self._generator = copy_sampling_state(spec)
        self._workers: dict[int, tuple[VirtualWorker, object]] = {}
        self.reset(0)

    def reset(self, start_epoch: int) -> None:
        self._next_epoch = start_epoch
        self._first_epoch = start_epoch

    def __iter__(self):
        epoch = self._next_epoch
        self._next_epoch += 1
        if self._spec.num_workers == 0:
            return self._single_process_epoch(epoch)
        return self._iterable_workers_epoch(epoch)

    # -- num_workers == 0 ---------------------------------------------------------------------
    def _single_process_epoch(self, epoch: int):
        spec = self._spec
        if self._set_epoch:
            call_set_epoch((self._sampler, self._index_sampler), epoch)
        index_iter = iter(self._index_sampler)
        if not (spec.continuous and epoch > self._first_epoch):
            draw_base_seed(self._generator, spec.backend)  # torch draws it even without workers
        ds_iter = iter(spec.dataset) if spec.kind == "iterable" else None
        for k, index in enumerate(index_iter):
            where = f"batch {k} of epoch {epoch}, main process"
            if ds_iter is None:
                data = fetch_map(spec.dataset, index, spec.auto_collation, where)
            else:
                try:
                    data = fetch_iterable(ds_iter, index, spec.auto_collation, spec.drop_last, where)
                except StopIteration:
                    return
            yield self._to_row(collate(spec.collate_fn, data, where), k)

    # -- IterableDataset, num_workers >= 1 --------------------------------------------------------
    def _iterable_workers_epoch(self, epoch: int):
        spec = self._spec
        n = spec.num_workers
        plan = self._planner.plan(epoch)
        active = []
        for w in range(n):
            # A new torch worker gets a fresh copy of the dataset; a persistent one keeps its own.
            kept = self._workers.get(w) if spec.persistent_workers else None
            worker = kept[0] if kept else VirtualWorker(
                w, n, copy.deepcopy(spec.dataset), spec.worker_init_fn, persistent=spec.persistent_workers, isolate=True
            )
            worker.begin_epoch(epoch, plan.base_seed)
            with worker.active():  # torch creates the worker's iterator after worker_init_fn
                try:
                    ds_iter = iter(worker.dataset)
                except Exception as exc:
                    from adapters._errors import wrap_exception

                    raise wrap_exception(exc, f"iter(dataset) in torch worker {w} of {n}, epoch {epoch}") from None
            self._workers[w] = (worker, ds_iter)
            active.append(w)
        index = spec.iterable_index
        k = 0
        while active:
            for w in list(active):
                worker, ds_iter = self._workers[w]
                where = f"batch {k} of epoch {epoch}, torch worker {w} of {n}"
                with worker.active():
                    try:
                        data = fetch_iterable(ds_iter, index, spec.auto_collation, spec.drop_last, where)
                    except StopIteration:
                        active.remove(w)
                        continue
                    batch = collate(spec.collate_fn, data, where)
                yield self._to_row(batch, k)
                k += 1
