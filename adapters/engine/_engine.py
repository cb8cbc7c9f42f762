"""The caller-side half of the pipeline: torch's DataLoader iterator, as rows for MindSpore.

:class:`Engine` runs in the thread MindSpore calls the source from. It never runs user code and
never draws from a random stream: it asks the loader process for each epoch's base seed and index
batches, hands tasks to the torch-worker processes in torch's order (:class:`Schedule`), and
receives the collated batches.

The consumer drives epochs. Every iterator made from the dataset, or from a dataset chained on it
(``map``, ``project``, ...), is a :class:`Consumer`; a new one supersedes the older ones (torch's
rule: each ``iter(loader)`` is the next epoch). An epoch begins when its consumer asks for its first
row — not when MindSpore's prefetching asks the source for it: the source waits at that gate, so an
abandoned iterator's prefetch never begins an epoch. At that moment the state torch would read is
taken: fresh workers are forked from the caller's process, and with ``num_workers=0`` the attributes
the loop changed on the dataset (and on the samplers, every ``num_workers``) since the last epoch are
carried into the loader process (:mod:`adapters.engine._sync`). How far the loop got in an epoch it
left early (rows taken, counted by the consumer) decides where torch's next epoch starts.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import copy
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, NamedTuple

from adapters.engine._errors import SourceError, WorkerError, original_exception, wrap_exception
from adapters.engine._interrupt import sigint_received
from adapters.engine._messages import (
    Batch,
    Begin,
    Chunk,
    Credit,
    End,
    Error,
    Exit,
    Indices,
    MoreIndices,
    Next,
    Plan,
    Probe,
    ProcessUp,
    Ready,
    Restore,
    Seed,
    Settle,
    Settled,
    Snapshot,
    Spawn,
    StartEpoch,
    SyncState,
    TakeSnapshot,
    Task,
    WorkerStarted,
)
from adapters.engine._processes import (
    STREAM_AHEAD_BYTES,
    EpochRunner,
    close_lifeline,
    format_worker_death,
    join_group,
    loader_loop,
    start_guardian,
)
from adapters.engine._schedule import Schedule
from adapters.engine._state import FORMAT, VERSION, check_config, check_position, encode_streams, validate
from adapters.engine._transport import recv, recv_sized, register_roots, send

if TYPE_CHECKING:
    from adapters.engine._sync import AttributeTracker

__all__ = ["Engine", "Consumer", "NO_BATCH"]

_POLL = 0.05  # seconds between liveness / abandonment checks while waiting
_START_TIMEOUT = 10.0  # seconds a process newly forked from the caller (loader, spawner) has to say it runs
_START_TRIES = 3
_FIRST_CHUNK = 64  # index batches the loader sends when an epoch starts; then _CHUNK at a time
_CHUNK = 4096
_KEPT_ERRORS = 16  # errors raised into MindSpore, kept until an iterator asks for them
_KEPT_STATES = 4096  # worker stream states kept per worker (those past the loop's position: MindSpore's prefetch)


NO_BATCH = object()  # first_batch(): epoch 0 yields no batch (a batch may itself be None: a collate_fn's answer)


def _expect(msg, cls):
    """``msg`` if it is a ``cls``; a message of another type is a fault of the pipeline, said so."""
    if not isinstance(msg, cls):
        raise WorkerError(
            f"to_mindspore: the pipeline's loader process answered {type(msg).__name__}, expected "
            f"{cls.__name__} (a fault of the pipeline, not of your code)"
        )
    return msg


class _Resume(NamedTuple):
    """A loaded state not yet begun: epoch ``epoch`` starts at its batch ``batch`` (global ``position``)."""

    epoch: int
    batch: int
    position: int
    anchor_start: int  # continuous modes: global number of the first batch of the saved anchor's pass
    workers: list | None


class _Abandoned(Exception):
    """The epoch being produced was given up (a newer iterator took over, or the loop was interrupted)."""


class Consumer:
    """One iterator of the dataset (or of a dataset chained on it): when it begins epochs, how many rows it took.

    ``counts_rows``: every row it takes is one row of the source (the dataset's own iterators, and chains of
    ``map`` / ``project`` / ``rename``); otherwise only whole epochs can be told apart. ``unit``: what one of
    its rows is, ``"batch"`` (one torch batch) or ``"sample"`` (one sample of a torch batch: an iterator of
    ``adapters.sample_dataset``); None when it does not count rows.
    """

    def __init__(self, engine: Engine, counts_rows: bool = True) -> None:
        self._engine = engine
        self.counts_rows = counts_rows
        self.unit: str | None = "batch" if counts_rows else None
        self.epochs: list[int] = []  # engine epochs begun for this iterator, in order
        self.position = 0  # index into ``epochs`` of the epoch being consumed
        self.arrived = 0  # epochs whose first row the loop has asked for
        self.closed = False
        self.superseded_by: str | None = None  # why a newer iterator took over
        self.source_returned = 0  # times its source generator returned (or raised) before beginning the next epoch
        self.skipped = 0  # rows MindSpore pulls and drops before its first epoch's first row (set_init_step)

    def arrives(self) -> None:
        """The loop asks for the first row of its next epoch (called in the loop's own thread)."""
        self._engine._arrive(self)

    def took_row(self) -> None:
        self._engine._note(self, "row")

    def row_ready(self) -> bool:
        """Whether MindSpore already holds a row of the epoch this iterator is on.

        Then its ``next()`` cannot wait on the pipeline's processes (read without the lock: a stale
        answer only means "not ready", i.e. the loop waits watching for Ctrl-C, as it would anyway).
        """
        cur = self._engine._current
        if cur is None or cur.consumer is not self or cur.aborted:
            return False
        p, epochs = self.position, self.epochs
        return p < len(epochs) and epochs[p] == cur.number and self._engine._row_waiting(cur, self)

    def began(self) -> bool:
        """Whether the source has begun the epoch this iterator is on (MindSpore is pulling rows of it)."""
        return self.position < len(self.epochs)

    def saw_end(self) -> None:
        self._engine._note(self, "end")

    def close(self) -> None:
        self._engine._note(self, "close")


class _Epoch:
    def __init__(self, number: int, consumer: Consumer, start: int) -> None:
        self.number = number
        self.consumer = consumer
        self.start = start  # global number of its first batch (continuous modes)
        self.total: int | None = None
        self.produced = 0  # batches handed to MindSpore (each as one row here; as its sample rows by a SampleEngine)
        self.consumed = 0  # batches the consumer took
        self.rows = 0  # rows handed to MindSpore (= produced, unless a batch is handed as several rows)
        self.rows_consumed = 0  # rows the consumer took, when they are not batches (a SampleEngine's)
        self.sizes: list[int] = []  # rows of each batch handed (a SampleEngine's)
        self.bound = 0  # rows of the batches the consumer took whole (a SampleEngine's)
        self.exhausted = False  # produced to its end
        self.stream_ended = False  # num_workers=0: the loader's end marker was received
        # the consumer saw its end (and, for a consumer not counting rows, it was produced to its end)
        self.finished = False
        self.ended = False  # its source generator is done (to the end, abandoned, or raised)
        self.saw_end = False  # the consumer's iterator ended this epoch
        self.closed = False
        self.aborted = False
        self.what = "plan"
        self.batches: list | None = None  # index batches drawn so far (map-style with workers)
        self.sent = 0  # tasks dispatched
        self.plan_done = False


class Engine:
    """Produces the rows of every epoch, in torch's order, from processes it owns.

    Args:
        spec: the resolved :class:`~adapters.engine._spec.LoaderSpec`.
        schedule: torch's dispatch rules for it.
        set_epoch: ``callable(epoch)`` run in the loader process where torch's loop sets the epoch.
        steps_per_epoch: batches per epoch for ``mode="steps"``.
    """

    def __init__(
        self, spec, schedule: Schedule, set_epoch, *, steps_per_epoch: int | None = None, python_state=None
    ) -> None:
        self.spec = spec
        self.schedule = schedule
        # set once the first batch is known: a Structure (to_mindspore), or a SampleEngine's sample rows
        self.structure: Any = None
        self.first_samples: int | None = None  # samples in the first batch
        self.length: int | None = None  # batches every epoch must have (MindSpore's dataset size)
        # Repeat mode: whether the loop's set_epoch reaches a sampler (then a partial epoch is refused).
        self.sets_sampler_epochs = False
        self._steps = steps_per_epoch
        self._ctx = multiprocessing.get_context("fork")
        self._cv = threading.Condition()
        self._io = threading.RLock()  # one producer at a time talks to the processes
        self._next_epoch = 0
        self._current: _Epoch | None = None
        self._consumers: list[Consumer] = []
        self.binding: Consumer | None = None  # the consumer a source copied now belongs to (see bind)
        self.tracker: AttributeTracker | None = None  # the loop's changes to carry into the loader process
        self._sync: list = []  # changes taken at an arrival, sent before the epoch begins
        self._errors: dict[str, SourceError] = {}  # raised into MindSpore, by token
        self._workers: dict[int, tuple] = {}
        self._outstanding: dict[int, collections.deque] = {}
        # continuous modes
        self._global_consumed = 0
        self._queued = 0  # index batches received from the loader so far
        self._index_queue: collections.deque = collections.deque()
        self._history: collections.deque = collections.deque()  # (g, row) produced, maybe not consumed
        self._passes = 0
        self._stream_open = False
        self._uncredited = 0  # num_workers=0: bytes of the loader's stream taken but not yet credited back
        self._base_seed: int | None = None
        self._first: Any = None  # epoch 0's first batch, made by the probe (columns, MindSpore's getters)
        self._has_first = False
        self.first_row_made = None  # the first row produced (for declared columns, which had no probe)
        self._probe_kept = False  # the probe's copy waits to carry on as epoch 0 (num_workers=0)
        self._spawned = False  # a spawner was forked for this pipeline's workers
        self.workers_at_construction = False  # persistent workers start from the snapshot (YOLOv5's InfiniteDataLoader)
        self._holder: dict = {"spawner": None}  # (process, conn) forking fresh workers; None: the loader does
        self._closed = False
        self.interrupted: str | None = None  # where the loop was when a KeyboardInterrupt stopped the pipeline
        self.waiting_for: str | None = None  # what the source waits for from the pipeline's processes, if anything
        # Every process of the pipeline joins the guardian's process group; the guardian stops the
        # group when the caller closes the pipeline or dies (see _processes.start_guardian).
        self._pgid, lifeline = start_guardian()
        self._holder["guardian"] = (self._pgid, lifeline)
        self._set_epoch = set_epoch
        # Resumable positions (state_dict): the loader's state at the start of the epoch being produced (epochs
        # mode) or of the sampler's last passes (continuous modes), and each worker's streams at its start
        # (Ready) and after its recent tasks.
        self.config: dict | None = None  # what a saved state must have been taken with (set by build_engine)
        self._anchor: tuple[int, dict] | None = None
        self._pass_anchors: list = []  # (pass, global start, snapshot), from the last one begun before the loop
        self._ready: dict[int, bytes | None] = {}
        self._after: dict[int, collections.deque] = {}
        self._capture = spec.num_workers > 0 and (spec.kind == "map" or schedule.keeps_workers)
        self._resume: _Resume | None = None
        self._loaded: dict | None = None  # the state loaded (load_state), until an epoch begins
        # A batch may hold instances of classes made inside a function (torch yields them at num_workers=0):
        # found again here from the pipeline's own objects (see _transport._class_by_identity).
        register_roots(spec.dataset, spec.collate_fn, spec.sampler, spec.batch_sampler, spec.worker_init_fn)
        try:
            self._loader, self._conn = _fork_until_up(
                self._ctx,
                loader_loop,
                lambda theirs, ours: (
                    theirs,
                    EpochRunner(spec, schedule, set_epoch),
                    (ours,),
                    python_state,
                    self._pgid,
                ),
                self._pgid,
                "torch2ms-loader",
            )
        except RuntimeError as exc:
            close_lifeline(lifeline)
            raise RuntimeError(f"to_mindspore: the pipeline's loader process, {exc}") from None
        self._holder["loader"] = self._loader
        self._finalizer = weakref.finalize(self, _shutdown, os.getpid(), self._conn, self._workers, self._holder)
        _register(self)

    def close(self) -> None:
        """Stop every process of the pipeline (one stuck in user code is killed after a short grace)."""
        self._closed = True
        with self._cv:
            self._cv.notify_all()
        self._finalizer()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def interrupt(self, where: str) -> None:
        """The loop was interrupted (KeyboardInterrupt) while waiting for a row: stop producing now.

        The epoch being produced is aborted, so the source generator returns at its next check
        (every ``_POLL`` seconds, however long a worker is stuck) and MindSpore's ``next()`` comes
        back. The pipeline cannot continue exactly afterwards: :meth:`close` it.
        """
        with self._cv:
            if self.interrupted is None:
                self.interrupted = where
            if self._current is not None:
                self._current.aborted = True
            self._cv.notify_all()

    def _watch_sigint(self, what: str) -> None:
        # Ctrl-C while the loop's thread is inside MindSpore's next(): end the epoch so that next()
        # returns and the KeyboardInterrupt is raised there (adapters.engine._interrupt).
        if self.interrupted is None and sigint_received():
            self.interrupt(what)

    def check_usable(self) -> None:
        """Raise if a KeyboardInterrupt stopped this pipeline."""
        if self.interrupted is not None:
            raise RuntimeError(
                f"to_mindspore: this dataset's pipeline was stopped by a KeyboardInterrupt ({self.interrupted}); "
                "its processes are gone and the torch loader's position is unknown, so it cannot continue "
                "exactly. Build a new dataset with to_mindspore(...) to start again."
            )

    # ------------------------------------------------------------------ consumers
    def new_consumer(self, counts_rows: bool = True, what: str = "a new iterator") -> Consumer:
        """Register the consumer of a new MindSpore iterator; older consumers are superseded (torch: a new
        ``iter(loader)`` is the next epoch, whatever happened to the previous iterator)."""
        consumer = Consumer(self, counts_rows)
        with self._cv:
            for old in self._consumers:
                old.closed = True
                old.superseded_by = what
            self._consumers = [consumer]
            self._cv.notify_all()
        return consumer

    @contextlib.contextmanager
    def bind(self, consumer: Consumer):
        """While MindSpore builds ``consumer``'s iterator, the source copies it makes belong to that consumer.

        MindSpore deep-copies the dataset tree for each iterator it builds (synchronously, inside
        ``create_tuple_iterator``); each copy of the source asks the engine for its epochs as that consumer.
        A copy made at any other time (MindSpore's getters) belongs to no consumer and begins no epoch.
        """
        self.binding = consumer
        try:
            yield
        finally:
            self.binding = None

    def _arrive(self, consumer: Consumer) -> None:
        """The loop asks for the first row of its next epoch (in its own thread): torch's ``iter(loader)``.

        The state torch would read now is taken now: fresh workers are forked from this thread (they see
        the dataset as the loop left it), and the loop's changes to the objects the loader process holds
        are collected to be applied there before the epoch begins.
        """
        first_of_persistent = not self._spawned and not self.workers_at_construction
        if self.spec.num_workers > 0 and (not self.schedule.keeps_workers or first_of_persistent):
            self._spawned = True  # persistent workers: forked once, at the first epoch, from the loop's state
            self._refresh_spawner()
        changes = self.tracker.changes() if self.tracker is not None else []
        with self._cv:
            self._sync.extend(changes)
            consumer.arrived += 1
            self._cv.notify_all()

    def _refresh_spawner(self) -> None:
        """Fork this epoch's spawner from the loop's thread, and wait until it runs (:func:`_fork_until_up`).

        The loop is still waiting for the epoch's first row meanwhile, so a spawner forked again sees the same state.
        """
        from adapters.engine._processes import spawner_loop

        def args(theirs, ours):
            inherited = [self._conn, ours] + [c for _, c in self._workers.values()]
            if self._holder["spawner"] is not None:
                inherited.append(self._holder["spawner"][1])
            return (theirs, self.spec, inherited, self._pgid, self._set_epoch)

        try:
            proc, ours = _fork_until_up(self._ctx, spawner_loop, args, self._pgid, "torch2ms-spawner")
        except RuntimeError as exc:
            raise RuntimeError(
                f"to_mindspore: the pipeline's spawner process (it starts the epoch's torch workers), {exc}"
            ) from None
        with self._cv:
            old, self._holder["spawner"] = self._holder["spawner"], (proc, ours)
        if old is not None:
            _retire(old)

    def _note(self, consumer: Consumer, what: str) -> None:
        with self._cv:
            if what == "close":
                consumer.closed = True
            else:
                e = consumer.epochs[consumer.position] if consumer.position < len(consumer.epochs) else None
                cur = self._current
                if cur is not None and cur.number == e:
                    if what == "row":
                        if consumer.counts_rows:
                            self._took_row(cur, consumer)
                            if self.schedule.continuous:
                                self._global_consumed = cur.start + cur.consumed
                    else:
                        cur.saw_end = True
                        cur.finished = consumer.counts_rows or cur.exhausted
                if what == "end":
                    consumer.position += 1
            self._cv.notify_all()

    # ------------------------------------------------------------------ errors
    def raise_into_mindspore(self, exc: BaseException) -> SourceError:
        """Wrap ``exc`` (if it is not yet) and keep it under its token, to be raised in MindSpore's thread.

        MindSpore re-raises it as a ``RuntimeError`` holding only text; :meth:`original_of` finds the
        original again by the token in that text.
        """
        err = exc if isinstance(exc, SourceError) else wrap_exception(exc, "the pipeline")
        with self._cv:
            self._errors[err.token] = err
            while len(self._errors) > _KEPT_ERRORS:
                self._errors.pop(next(iter(self._errors)))
        return err

    def original_of(self, err: BaseException) -> BaseException | None:
        """The original exception behind a ``RuntimeError`` from MindSpore, or None if it is not this pipeline's."""
        with self._cv:
            return original_exception(err, self._errors)

    # ------------------------------------------------------------------ the source
    def first_batch(self):
        """Epoch 0's first batch (collated, numpy leaves), or :data:`NO_BATCH` if it has none.

        The loader process forks a copy of itself that begins epoch 0 as torch would and makes its first
        batch (as torch worker 0 would, with workers); the copy then exits. Nothing is used up: the real
        epoch 0 begins when the training loop asks for it, from the state the loader still has.
        """
        with self._io:
            send(self._conn, Probe())
            msg, _ = self._receive(
                self._conn,
                None,
                "the first batch of epoch 0",
                lambda: "the pipeline's loader process exited while making epoch 0's first batch",
            )
        if isinstance(msg, End):
            return NO_BATCH
        self._first, self.first_samples, self._has_first = msg.batch, msg.samples, True
        # num_workers=0: the copy that made it waits, suspended, to carry on as epoch 0 (see _processes._probe)
        self._probe_kept = self.spec.num_workers == 0
        return msg.batch

    def rows(self, consumer: Consumer | None):
        """Generator for one MindSpore epoch of a source copy bound to ``consumer`` (MindSpore calls ``iter(source)``).

        Without a consumer (a copy MindSpore made for a getter such as ``output_shapes``) it is epoch 0's
        first row only, and no epoch begins. With one, it waits until the consumer asks for the epoch's
        first row (:meth:`_arrive`), then produces the epoch.
        """
        if consumer is None:
            if self._has_first:
                yield self.structure.to_row(self._first, 0)
            return
        epoch = None
        try:
            if not self._await_arrival(consumer):
                yield from self._filler(consumer, None)  # superseded or closed before it asked: never begins
                return
            try:
                epoch = self._open_epoch(consumer)
            except _Abandoned:
                yield from self._filler(consumer, None)
                return
            except Exception as exc:
                if self.interrupted is not None or self._closed:
                    yield from self._filler(consumer, None)  # nobody waits for this epoch any more
                    return
                raise self.raise_into_mindspore(exc) from None
            yield from self._produce_rows(epoch)
            if not epoch.exhausted:
                yield from self._filler(consumer, epoch)
        finally:
            with self._cv:  # a loop waiting in wait_for_row: MindSpore's next() will not wait on the pipeline now
                if epoch is None:
                    consumer.source_returned += 1
                else:
                    epoch.ended = True
                self._cv.notify_all()

    def _filler(self, consumer: Consumer, epoch: _Epoch | None):
        """Rows nobody reads, completing an abandoned epoch of a sized source (``epoch``: None if it never began).

        MindSpore raises in a tree whose sized source ends an epoch short, and keeps that error, unread, in
        the caller's thread: it is reported later in place of another pipeline's own error (a KeyError of
        yours would read "The actual amount of data read from generator ... is different from
        generator.len"). A tree nobody may read from is given the epoch's full count instead: an abandoned
        iterator's (its consumer closed or superseded) and every iterator of a dataset closed or stopped by
        Ctrl-C. Those iterators refuse to hand out rows (they raise the error that says why, before reading),
        so these rows are never seen; MindSpore's queue takes a few and the tree is dropped with its iterator.
        """
        row = self.structure.to_row(self._first, 0) if self._has_first else self.first_row_made
        readable = not (consumer.closed or self._closed or self.interrupted is not None)
        if self.length is None or row is None or readable:
            return
        for _ in range(0 if epoch is None else epoch.produced, self.length):
            yield row

    def _produce_rows(self, epoch: _Epoch):
        self._io.acquire()
        try:
            yield from self._produce(epoch)
        except _Abandoned:
            return
        except Exception as exc:
            if self.interrupted is not None or self._closed:
                # Nobody may read this epoch any more; close() from the loop's thread also closes the pipes
                # under a receive in progress here (multiprocessing then raises TypeError or OSError). The
                # filler completes the epoch: an error raised now would stay unread in MindSpore.
                return
            # Raised here, in MindSpore's thread: kept, so the iterator re-raises it with its own type.
            if not isinstance(exc, SourceError) and not isinstance(exc, WorkerError):
                exc = wrap_exception(exc, f"epoch {epoch.number} of the pipeline")
            raise self.raise_into_mindspore(exc) from None
        finally:
            self._io.release()

    def wait_for_row(self, consumer: Consumer) -> None:
        """Wait, in the loop's thread and in Python, until MindSpore's ``next()`` for ``consumer`` cannot wait
        on the pipeline's processes: a row of its epoch was handed to MindSpore, or its source is done.

        The wait is torch's: signal handlers run while it lasts (a SIGTERM handler of yours, Ctrl-C's
        ``KeyboardInterrupt``), however long a torch worker is stuck in ``__getitem__``. Before the epoch's
        source has begun (MindSpore pulls only once ``next()`` is called) it returns at once: that first
        ``next()`` is watched for Ctrl-C by :mod:`adapters.engine._interrupt` instead.
        """
        with self._cv:
            while not self._row_or_end(consumer):
                self._cv.wait(_POLL)

    def _row_or_end(self, consumer: Consumer) -> bool:
        if consumer.closed or self._closed or self.interrupted is not None:
            return True
        p = consumer.position
        if p >= len(consumer.epochs):
            # Its epoch has not begun: MindSpore starts pulling from the source only once next() is called.
            return True
        cur = self._current
        if cur is None or cur.number != consumer.epochs[p]:
            return True  # not the epoch being produced: MindSpore decides
        return self._row_waiting(cur, consumer) or cur.ended

    def _row_waiting(self, epoch: _Epoch, consumer: Consumer) -> bool:
        """Whether a row of ``epoch`` was handed to MindSpore that ``consumer`` has not taken yet."""
        return epoch.produced > epoch.consumed

    def _took_row(self, epoch: _Epoch, consumer: Consumer) -> None:
        """``consumer``, which counts rows, took a row of ``epoch`` (called with the lock held)."""
        epoch.consumed += 1

    def _await_arrival(self, consumer: Consumer) -> bool:
        with self._cv:
            while consumer.arrived <= len(consumer.epochs):
                if consumer.closed or self._closed or self.interrupted is not None:
                    return False
                self._cv.wait(_POLL)
        return True

    def _yield(self, epoch: _Epoch, row, *, check_abort: bool = True):
        """Hand a row to MindSpore, letting other producers use the processes meanwhile."""
        with self._cv:
            epoch.produced += 1
            epoch.rows += 1
            self._cv.notify_all()  # (a loop waiting in wait_for_row)
        self._io.release()
        try:
            yield row
        finally:
            self._io.acquire()
        if check_abort and epoch.aborted:
            raise _Abandoned

    def _emit(self, epoch: _Epoch, msg: Batch, k: int):
        row = self.structure.to_row(msg.batch, k)
        if self.first_row_made is None:
            self.first_row_made = row  # (declared columns: the shapes MindSpore's getters answer)
        yield from self._yield(epoch, row)

    # ------------------------------------------------------------------ epochs
    def _open_epoch(self, consumer: Consumer) -> _Epoch:
        with self._cv:
            prev = self._current
            if prev is not None and not prev.closed:
                prev.aborted = True
                self._cv.notify_all()
                c = prev.consumer
                while not (prev.saw_end or c.closed or self._closed or self.interrupted):
                    self._cv.wait(_POLL)
            number = self._next_epoch
            self._next_epoch += 1
            start = self._global_consumed if self.schedule.continuous else 0
            epoch = _Epoch(number, consumer, start)
            resume = self._resume
            if resume is not None and number == resume.epoch:
                # A loaded state: the batches before its position count as taken (how far torch's iterator got)
                epoch.produced = epoch.consumed = epoch.rows = resume.batch
            elif not consumer.epochs:
                epoch.consumed = consumer.skipped  # set_init_step: rows MindSpore pulled were taken from torch
            consumer.epochs.append(number)
            consumer.source_returned = 0
            changes, self._sync = self._sync, []
        with self._io:
            if prev is not None and not prev.closed:
                self._close(prev)
            if changes:
                self._send_changes(changes, number)
            with self._cv:
                self._current = epoch
        return epoch

    def _send_changes(self, changes: list, number: int) -> None:
        """Apply the loop's changes in the loader process before epoch ``number`` begins."""
        if self.schedule.continuous and self._stream_open:
            # num_workers=0, one torch iterator: the loader's stream of the sampler's pass must have ended here
            # (whole epochs: its end marker is next), else batches of the new epoch were made with the old state.
            if isinstance(self._recv_loader(None, f"the end of the sampler's pass before epoch {number}"), End):
                self._stream_open = False
        if self.schedule.continuous and self._stream_open:
            names = ", ".join(".".join((owner, *map(str, path))) for owner, path, _ in changes)
            raise RuntimeError(
                f"to_mindspore: {names} changed before epoch {number}, but the loader's stream is in the middle of a "
                "pass of the sampler (infinite=True after a partial epoch, num_workers=0): batches of it were made "
                "with the old value, where torch would make them with the new one. Consume whole epochs here."
            )
        self._probe_kept = False  # (the probe's copy hands this message back and exits)
        try:
            send(self._conn, SyncState(changes))
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            names = ", ".join(".".join((owner, *map(str, path))) for owner, path, _ in changes)
            raise TypeError(
                f"to_mindspore: your loop changed {names} before epoch {number}; torch would use the new value, but "
                f"it cannot be sent to the pipeline's loader process ({type(exc).__name__}: {exc})"
            ) from None
        self._recv_loader(None, f"applying the loop's changes before epoch {number}")

    def _close(self, prev: _Epoch) -> None:
        """Settle ``prev`` as torch would after the consumer stopped where it did."""
        prev.closed = True
        consumed, finished = prev.consumed, prev.finished
        if not prev.consumer.counts_rows and not finished and prev.produced > 0:
            raise RuntimeError(
                f"to_mindspore: epoch {prev.number} was left after {prev.produced} of its batches had been "
                "produced, by an iterator of a pipeline that does not keep one row per batch (batch, filter, take, "
                "skip, shuffle, zip, concat, repeat on this dataset). How many batches the loop used is unknown, so "
                "the next epoch cannot be given exactly. Consume whole epochs through such pipelines, or break out "
                "of iterators of this dataset itself or of map / project / rename on it (their rows are counted)."
            )
        if (
            self.schedule.mode == "repeat"
            and self.sets_sampler_epochs
            and not finished
            and (self.length is None or consumed < self.length)
        ):
            raise RuntimeError(
                f"to_mindspore: epoch {prev.number} was left after {consumed} batches. With infinite=True (one torch "
                "iterator over all epochs) and a sampler whose set_epoch is called each epoch, a partial epoch "
                "moves torch's epoch boundaries against the sampler's passes, and which epoch each later pass "
                "shuffles with is not reproduced; the next epoch cannot be given exactly. Consume whole epochs, "
                "or pass set_epoch=False if the loop does not call set_epoch."
            )
        if self.schedule.continuous:
            if not prev.consumer.counts_rows:
                self._global_consumed = prev.start + prev.produced
            return
        if prev.what == "seed":
            verdict = Settle(0, True)  # IterableDataset with workers: the loader only drew the seed
        elif prev.what == "stream":
            verdict = Settle(consumed, finished)
        elif prev.total is not None:
            self._catch_up_dispatch(prev, consumed, finished)
            verdict = Settle(self.schedule.dispatched(consumed=consumed, total=prev.total, finished=finished), finished)
        else:  # the plan was not drawn to its end: torch had drawn prefetch + consumed (or fewer, at the end)
            self._catch_up_dispatch(prev, consumed, finished)
            verdict = Settle(self.schedule.max_outstanding + consumed, finished)
        send(self._conn, verdict)
        if prev.what == "stream" and not prev.stream_ended:
            while not isinstance(self._recv_loader(None, "the end of an epoch left early"), End):
                pass  # batches played ahead of the consumer: dropped
        self._recv_loader(None, f"settling epoch {prev.number}")

    def _produce(self, epoch: _Epoch):
        spec, sched = self.spec, self.schedule
        if sched.continuous:
            yield from self._produce_continuous(epoch)
            return
        skip = self._skip(epoch)
        if spec.num_workers == 0:
            epoch.what = "stream"
            self._uncredited = 0  # (what an earlier stream left uncredited is no credit for this one)
            send(self._conn, StartEpoch(epoch.number, "stream", None, skip))  # the loader makes and drops `skip`
            self._take_anchor(epoch)
            k = skip
            if self._probe_kept:  # epoch 0: the probe's copy made batch 0 and goes on from batch 1
                self._probe_kept = False
                yield from self._emit(epoch, Batch(0, self._first, self.first_samples), 0)
                k = 1
            while True:
                msg = self._recv_loader(epoch, f"batch {k} of epoch {epoch.number}")
                if isinstance(msg, End):
                    epoch.stream_ended = True
                    epoch.total = msg.n_batches
                    self._check_length(epoch, msg.n_batches)
                    break
                if self.length is not None and k >= self.length:
                    self._check_length(epoch, k + 1, at_least=True)
                yield from self._emit(epoch, msg, k)
                k += 1
        elif spec.kind == "iterable":
            epoch.what = "seed"
            send(self._conn, StartEpoch(epoch.number, "seed", None))
            self._take_anchor(epoch)
            seed = _expect(self._recv_loader(epoch, f"the start of epoch {epoch.number}"), Seed)
            self._begin_workers(epoch, seed.base_seed)
            yield from self._iterable_rows(epoch, drop=skip)  # an iterator cannot be saved: made again, dropped
        else:
            first = max(_FIRST_CHUNK, 2 * sched.max_outstanding)
            send(self._conn, StartEpoch(epoch.number, "lazyplan", first))
            self._take_anchor(epoch)
            plan = _expect(self._recv_loader(epoch, f"the start of epoch {epoch.number}"), Plan)
            self._plan_grew(epoch, plan.batches, plan.done)
            self._begin_workers(epoch, plan.base_seed)
            yield from self._map_rows(epoch, plan.batches, plan.done, start=skip)  # no batch before it is made
        epoch.exhausted = True

    def _check_length(self, epoch: _Epoch, count: int, *, at_least: bool = False) -> None:
        if self.length is None or count == self.length:
            return
        sampler = type(self.spec.index_sampler).__name__
        raise RuntimeError(
            f"to_mindspore: the sampler yielded {'more than ' + str(count - 1) if at_least else count} batches in "
            f"epoch {epoch.number} but len(sampler) is {self.length} ({sampler}); a MindSpore dataset has one "
            "size, and no batch may be dropped or invented. If your sampler's batch count changes from epoch to "
            "epoch (bucketing), pass fixed_length=False."
        )

    def _plan_grew(self, epoch: _Epoch, batches: list, done: bool) -> None:
        if done:
            epoch.total = len(batches)
            self._check_length(epoch, len(batches))
        elif self.length is not None and len(batches) > self.length:
            self._check_length(epoch, len(batches), at_least=True)

    def _where(self, epoch: _Epoch, k: int) -> str:
        w = self.schedule.worker_of(start=0, k=k)
        assert epoch.batches is not None  # (named only for a batch _map_rows or _catch_up_dispatch dispatches)
        return (
            f"batch {k} of epoch {epoch.number}, torch worker {w} of {self.spec.num_workers}, "
            f"indices {epoch.batches[k]!r}"
        )

    def _more_indices(self, epoch: _Epoch) -> bool:
        """The loader draws the plan in chunks as the dispatch needs them (a million-sample sampler
        costs no start-up); the sampler's own order is unchanged. Returns whether it ended."""
        send(self._conn, Chunk(_CHUNK))
        more = _expect(self._recv_loader(None, f"index batches of epoch {epoch.number}"), Indices)
        assert epoch.batches is not None  # (the plan's first chunk, set before more is asked for)
        epoch.batches.extend(more.batches)
        epoch.plan_done = more.done
        self._plan_grew(epoch, epoch.batches, more.done)
        return more.done

    def _catch_up_dispatch(self, epoch: _Epoch, consumed: int, finished: bool) -> None:
        """Persistent workers, epoch left early: hand out the tasks torch had dispatched by then.

        torch keeps ``prefetch_factor * num_workers`` tasks in flight, so its workers had produced
        (and advanced their streams over) that many batches past where the loop stopped.
        """
        if not self.schedule.keeps_workers or epoch.batches is None:
            return
        target = self.schedule.max_outstanding + consumed
        while epoch.sent < target and not finished:
            if epoch.sent >= len(epoch.batches):
                if epoch.plan_done:
                    break  # the sampler ended: torch dispatched every batch
                self._more_indices(epoch)
                continue
            k = epoch.sent
            self._dispatch(self.schedule.worker_of(start=0, k=k), k, epoch.batches[k], self._where(epoch, k))
            epoch.sent += 1

    def _map_rows(self, epoch: _Epoch, batches, done: bool, start: int = 0):
        sched = self.schedule
        wheres: dict[int, str] = {}
        sent = k = start  # a resumed epoch dispatches from its saved position (the workers' streams put back)
        epoch.batches, epoch.sent, epoch.plan_done = batches, start, done
        while k < len(batches) or not done:
            if not done and sent + sched.max_outstanding >= len(batches):
                done = self._more_indices(epoch)
                continue
            if k >= len(batches):
                break
            while sent < len(batches) and sent < k + sched.max_outstanding:
                self._gate(epoch, sent)
                w = sched.worker_of(start=0, k=sent)
                wheres[sent] = self._where(epoch, sent)
                self._dispatch(w, sent, batches[sent], wheres[sent])
                sent += 1
                epoch.sent = sent
            w = sched.worker_of(start=0, k=k)
            msg = self._recv_worker(w, epoch, wheres.pop(k))
            self._outstanding[w].popleft()
            yield from self._emit(epoch, msg, k)
            k += 1

    def _iterable_rows(self, epoch: _Epoch, drop: int = 0):
        # torch: tasks go round-robin to the workers still active; a worker whose shard ended
        # drops out, so the others' batches follow on (in-order, one batch per task). ``drop``: a resumed
        # epoch's batches before the saved position, made again (from the workers' saved streams) and dropped.
        n = self.spec.num_workers
        cycle = self.schedule.worker_cycle()
        k = 0
        for w in cycle:
            where = f"batch {k} of epoch {epoch.number}, torch worker {w} of {n}"
            send(self._worker(w)[1], Next(k, where))
            msg = self._recv_worker(w, epoch, where)
            if isinstance(msg, End):
                cycle.stop(w)
                continue
            if k >= drop:
                yield from self._emit(epoch, msg, k)
            k += 1
        epoch.total = k

    def _gate(self, epoch: _Epoch, dispatched: int) -> None:
        """Persistent workers + a consumer counting rows: dispatch no further ahead than torch would."""
        if not epoch.consumer.counts_rows or not self.schedule.keeps_workers:
            return
        limit = self.schedule.max_outstanding
        self._io.release()
        try:
            with self._cv:
                while dispatched >= limit + epoch.consumed:
                    if epoch.aborted or epoch.consumer.closed:
                        break
                    self._cv.wait(_POLL)
        finally:
            self._io.acquire()
        if dispatched >= limit + epoch.consumed:
            raise _Abandoned  # the loop left this epoch: torch would not have dispatched this task

    # ------------------------------------------------------------------ continuous modes
    def _produce_continuous(self, epoch: _Epoch):
        """One torch iterator over all epochs: global order kept; rows left unconsumed come first."""
        length = self._steps if self.schedule.mode == "steps" else len(self.spec.index_sampler)
        assert length is not None  # (steps mode is made with steps_per_epoch)
        start = epoch.start
        self._history = collections.deque((g, r) for g, r in self._history if g >= start)
        for _, row in list(self._history):
            if epoch.produced >= length:
                return
            yield from self._yield(epoch, row)
        g = start + epoch.produced
        while epoch.produced < length:
            msg = self._next_continuous_batch(epoch, g)
            row = self.structure.to_row(msg.batch, g - start)
            if self.first_row_made is None:
                self.first_row_made = row
            self._history.append((g, row))
            while self._history and self._history[0][0] < self._global_consumed:
                self._history.popleft()
            g += 1
            yield from self._yield(epoch, row)
        epoch.exhausted = True
        epoch.total = epoch.produced

    def _next_continuous_batch(self, epoch: _Epoch, g: int):
        n = self.spec.num_workers
        if n == 0:
            while True:
                if not self._stream_open:
                    count = self._steps if self.schedule.mode == "steps" else None
                    op = StartEpoch if (self.schedule.mode == "repeat" or self._passes == 0) else MoreIndices
                    self._uncredited = 0
                    resume = self._resume
                    skip = 0 if resume is None else resume.position - resume.anchor_start
                    if op is StartEpoch:
                        send(self._conn, StartEpoch(self._passes, "stream", count, skip))
                        self._take_pass_anchor(epoch, g - skip)
                    else:
                        send(self._conn, MoreIndices(self._passes, "stream", count))
                    self._passes += 1
                    self._stream_open = True
                    if self._probe_kept:  # the probe's copy made batch 0 and is the loader now
                        self._probe_kept = False
                        return Batch(0, self._first, self.first_samples)
                msg = self._recv_loader(epoch, f"batch {g} of the loader's stream")
                if isinstance(msg, End):
                    self._stream_open = False
                    continue
                return msg
        if not self._workers:
            self._request_indices(epoch)
            assert self._base_seed is not None  # (the plan just received carries it)
            self._begin_workers(epoch, self._base_seed)
        while sum(len(d) for d in self._outstanding.values()) < self.schedule.max_outstanding:
            if not self._index_queue:
                self._request_indices(epoch)
            gi, index = self._index_queue.popleft()
            w = self.schedule.worker_of(start=0, k=gi)  # one torch iterator: the cycle goes on across epochs
            self._dispatch(
                w, gi, index, f"batch {gi} of the loader's stream, torch worker {w} of {n}, indices {index!r}"
            )
        w = self.schedule.worker_of(start=0, k=g)
        msg = self._recv_worker(w, epoch, f"batch {g} of the loader's stream, torch worker {w} of {n}")
        self._outstanding[w].popleft()
        return msg

    def _request_indices(self, epoch: _Epoch) -> None:
        if self.schedule.mode == "repeat" or self._passes == 0:
            send(self._conn, StartEpoch(self._passes, "plan", None if self.schedule.mode == "repeat" else self._steps))
            self._take_pass_anchor(epoch, self._queued)
        else:
            send(self._conn, MoreIndices(self._passes, "plan", self._steps))
        plan = _expect(self._recv_loader(epoch, "the loader's next index batches"), Plan)
        batches = plan.batches
        if not batches:
            raise RuntimeError("to_mindspore: the sampler yields no batch")
        self._passes += 1
        self._base_seed = plan.base_seed
        resume = self._resume  # a loaded state: its position is the first task (the ones before it were done)
        self._index_queue.extend(
            (self._queued + i, b)
            for i, b in enumerate(batches)
            if resume is None or self._queued + i >= resume.position
        )
        self._queued += len(batches)

    # ------------------------------------------------------------------ processes
    def _credit(self) -> None:
        """num_workers=0: give the loader back room for the stream bytes taken (STREAM_AHEAD_BYTES)."""
        if self._uncredited:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                send(self._conn, Credit(self._uncredited))  # (a dead loader is reported by the next receive)
            self._uncredited = 0

    def _receive(self, conn, epoch: _Epoch | None, what: str, died, *, timeout=None, before_wait=None):
        """The next message on ``conn`` as ``(msg, nbytes)``; an :class:`Error`'s exception raised.

        While nothing has come: Ctrl-C is watched for, and the wait ends (``_Abandoned``) when the epoch
        is given up, the loop was interrupted or the dataset closed; ``timeout`` is torch's. The
        process at the other end exiting raises :class:`WorkerError` with the message ``died()``.
        """
        try:
            if not conn.poll(0):
                if before_wait is not None:
                    before_wait()
                deadline = None if timeout is None else time.monotonic() + timeout
                self.waiting_for = what  # named if the loop is interrupted meanwhile
                while not conn.poll(_POLL):
                    self._watch_sigint(what)
                    if epoch is not None and (epoch.aborted or epoch.consumer.closed):
                        raise _Abandoned  # given up, or its iterator dropped (MindSpore's stop() waits for us)
                    if self.interrupted is not None or self._closed:
                        raise _Abandoned
                    if deadline is not None and time.monotonic() > deadline:
                        raise RuntimeError(f"DataLoader timed out after {timeout} seconds (waiting for {what})")
            msg, nbytes = recv_sized(conn)
            self.waiting_for = None
        except (EOFError, OSError):
            if self._closed:
                raise _Abandoned from None  # close() from another thread: this epoch ends, quietly
            raise WorkerError(died()) from None
        if isinstance(msg, Error):
            raise msg.error
        return msg, nbytes

    def _recv_loader(self, epoch: _Epoch | None, what: str):
        msg, nbytes = self._receive(
            self._conn,
            epoch,
            what,
            lambda: f"the pipeline's loader process exited unexpectedly while waiting for {what}",
            before_wait=self._credit,  # about to wait: the loader may be waiting for room
        )
        if isinstance(msg, Batch):  # the stream (num_workers=0): credit in half windows, or before waiting
            self._uncredited += nbytes
            if self._uncredited >= STREAM_AHEAD_BYTES // 2:
                self._credit()
        return msg

    def _worker(self, w: int) -> tuple:
        """Worker ``w``'s ``(pid, pipe)``; close() from another thread stops the workers: this epoch then ends."""
        found = self._workers.get(w)
        if found is None:
            if self._closed or self.interrupted is not None:
                raise _Abandoned
            raise WorkerError(f"to_mindspore: torch worker {w} is not running (a fault of the pipeline)")
        return found

    def _recv_worker(self, w: int, epoch: _Epoch | None, where: str):
        pid, conn = self._worker(w)
        died = lambda: format_worker_death(pid, where)  # noqa: E731
        msg = self._receive(conn, epoch, where, died, timeout=self.spec.timeout or None)[0]
        streams = getattr(msg, "streams", None)
        if streams is not None:
            self._record(w, msg, streams)
        return msg

    def _record(self, w: int, msg, streams: bytes) -> None:
        """Keep worker ``w``'s streams at its start and after its recent tasks (for :meth:`state_dict`)."""
        with self._cv:
            if isinstance(msg, Ready):
                self._ready[w] = streams
                self._after[w] = collections.deque()
                return
            kept = self._after.setdefault(w, collections.deque())
            kept.append((msg.k if isinstance(msg, Batch) else msg.n_batches, streams))
            cur = self._current
            low = 0 if cur is None else (cur.start + cur.consumed if self.schedule.continuous else cur.consumed)
            # a position to save is never before `low`: only the last state before it is needed
            while len(kept) > 1 and kept[1][0] < low or len(kept) > _KEPT_STATES:
                kept.popleft()

    def _dispatch(self, w: int, k: int, index, where: str) -> None:
        pid, conn = self._worker(w)
        try:
            send(conn, Task(k, index, where))
        except (BrokenPipeError, ConnectionResetError, OSError):
            if self._closed:
                raise _Abandoned from None  # close() from another thread closed the pipe
            # The worker died: name what it was producing then (its oldest task), as the receive would.
            outstanding = self._outstanding.get(w)
            oldest = outstanding[0][1] if outstanding else where
            raise WorkerError(format_worker_death(pid, oldest)) from None
        self._outstanding.setdefault(w, collections.deque()).append((k, where))

    def _start_workers(self, epoch: _Epoch) -> None:
        """Have the spawner (or the loader process) fork the torch workers and take their pipes.

        With a known consumer, wait until the loop has started this epoch: the spawner it forked then
        holds the dataset as the loop left it (torch's new workers see changes made between epochs).
        """
        from multiprocessing.reduction import recv_handle

        c = epoch.consumer
        if c is not None and epoch.number in c.epochs and not self.schedule.keeps_workers:
            index = c.epochs.index(epoch.number)
            self._io.release()
            try:
                with self._cv:
                    while c.arrived <= index and not (c.closed or epoch.aborted or self._closed):
                        self._cv.wait(_POLL)
            finally:
                self._io.acquire()
            if epoch.aborted:
                raise _Abandoned
        with self._cv:
            spawner = self._holder["spawner"]
        conn = self._conn if spawner is None else spawner[1]
        # A spawner first sets the epoch on its samplers, as the loop's set_epoch did before torch forked its
        # workers: what set_epoch changes besides the order (a dataset it holds) is what the workers see.
        send(conn, Spawn(self.spec.num_workers, None if spawner is None else epoch.number))
        for _ in range(self.spec.num_workers):
            msg = recv(conn) if spawner is not None else self._recv_loader(None, "the start of the torch workers")
            if not isinstance(msg, WorkerStarted):
                raise WorkerError(f"expected a started torch worker from the pipeline, got {type(msg).__name__}")
            conn_w = multiprocessing.connection.Connection(recv_handle(conn))
            self._workers[msg.worker_id] = (msg.pid, conn_w)
            self._outstanding[msg.worker_id] = collections.deque()

    def _stop_workers(self) -> None:
        _stop(self._workers)
        self._outstanding.clear()

    def _begin_workers(self, epoch: _Epoch, base_seed: int) -> None:
        fresh = self.schedule.starts_workers(epoch.number) or not self._workers
        if fresh:
            self._stop_workers()
            self._start_workers(epoch)
        self._drain_outstanding()
        resume = self._resume
        for w in range(self.spec.num_workers):
            # a loaded state: the worker's streams where the saved run's worker had them
            streams = resume.workers[w] if resume is not None and resume.workers is not None else None
            send(self._worker(w)[1], Begin(epoch.number, base_seed, fresh, streams, self._capture))
        for w in range(self.spec.num_workers):
            self._recv_worker(w, None, f"the start of torch worker {w} (worker_init_fn) in epoch {epoch.number}")
        self._resume = None

    def _drain_outstanding(self) -> None:
        """Persistent workers after an epoch left early: receive (and drop) the results torch's prefetch made."""
        for w in range(self.spec.num_workers):
            while self._outstanding.get(w):
                self._outstanding[w].popleft()
                with contextlib.suppress(Exception):
                    self._recv_worker(w, None, "a result of an epoch left early")

    # ------------------------------------------------------------------ resumable positions
    def _skip(self, epoch: _Epoch) -> int:
        """Batches of ``epoch`` before a loaded state's position (0 unless it is the resumed epoch)."""
        resume = self._resume
        return resume.batch if resume is not None and resume.epoch == epoch.number else 0

    def _take_anchor(self, epoch: _Epoch) -> None:
        """Receive the loader's state before ``iter(loader)`` of ``epoch`` (sent first for every StartEpoch)."""
        snap = _expect(self._recv_loader(epoch, f"the start of epoch {epoch.number}"), Snapshot)
        with self._cv:
            self._anchor = (epoch.number, snap.state)
            self._loaded = None
            if self.spec.num_workers == 0:
                self._resume = None  # (with workers: once they have their streams, in _begin_workers)

    def _take_pass_anchor(self, epoch: _Epoch, start: int) -> None:
        """Continuous modes: the loader's state before the sampler pass whose first batch is global ``start``."""
        snap = _expect(self._recv_loader(epoch, f"the start of the sampler's pass {self._passes}"), Snapshot)
        with self._cv:
            self._pass_anchors.append((self._passes, start, snap.state))
            # passes are begun ahead of the loop (prefetch): keep from the last one begun before where it is
            while len(self._pass_anchors) > 1 and self._pass_anchors[1][1] <= self._global_consumed:
                self._pass_anchors.pop(0)
            self._loaded = None
            if self.spec.num_workers == 0:
                self._resume = None

    def state_dict(self) -> dict:
        """Where the stream is now, as a state :meth:`load_state` resumes from (see ``adapters.engine._state``).

        Raises:
            ValueError: the pipeline cannot save its position (``steps_per_epoch``; a value that cannot be
                written as data), saying why.
            RuntimeError: the dataset was closed or interrupted.
        """
        self.check_usable()
        if self._closed:
            raise RuntimeError("to_mindspore: this dataset was closed (close()); it has no position to save")
        if self.schedule.mode == "steps":
            raise ValueError(
                "to_mindspore: state_dict() with steps_per_epoch (an infinite sampler) is not supported: the "
                "sampler's iterator cannot be saved, and resuming would mean drawing every index batch since the "
                "first epoch again. Save and restore your sampler's own state, or use whole passes (infinite=True)."
            )
        with self._cv:
            cur, loaded = self._current, self._loaded
            # Every row handed out was taken: whether the epoch has more is not known until its producer has gone on
            # (MindSpore pulls it at once: its queues are empty). Then the position is the next epoch's start, or this
            # epoch's next batch.
            while (
                cur is not None
                and not self.schedule.continuous
                and cur.produced <= cur.consumed
                and not (cur.closed or cur.consumer.closed or cur.saw_end or cur.exhausted or cur.ended)
                and not (self._closed or self.interrupted is not None)
            ):
                self._cv.wait(_POLL)
        if loaded is not None:
            return copy.deepcopy(loaded)  # loaded and not yet begun: the same position
        if cur is not None and not cur.consumer.counts_rows and not (cur.closed or cur.saw_end or cur.consumer.closed):
            raise ValueError(
                f"to_mindspore: state_dict() inside epoch {cur.number}, read through a pipeline that does not keep one "
                "row per batch (batch, filter, take, ... on this dataset): how many torch batches the loop has taken "
                "is unknown. Take the state between epochs, or read through map / project / rename."
            )
        if self.schedule.continuous:
            return self._continuous_state(cur)
        taken_all = cur is not None and cur.exhausted and cur.consumed >= cur.produced
        if cur is None or cur.closed or cur.consumer.closed or cur.saw_end or taken_all:
            return self._boundary_state(cur)
        return self._mid_epoch_state(cur)

    def _state(self, epoch: int, batch: int, replay: int, loader: dict, workers, anchor) -> dict:
        if "unsaved" in loader:
            raise ValueError(f"to_mindspore: the loader's state at epoch {epoch} cannot be saved ({loader['unsaved']})")
        return copy.deepcopy(
            {
                "format": FORMAT,
                "version": VERSION,
                "config": self.config,
                "epoch": epoch,
                "batch": batch,
                "replay": replay,
                "loader": loader,
                # (kept as the workers pickled them: read only now, from the pipeline's own processes)
                "workers": None
                if workers is None
                else [w if w is None else encode_streams(pickle.loads(w)) for w in workers],
                "anchor": anchor,
            }
        )

    def _snapshot_now(self) -> dict:
        """The loader's state now (between epochs; called with ``_io`` held)."""
        self._probe_kept = False  # (num_workers=0: the probe's copy hands this over and exits)
        send(self._conn, TakeSnapshot())
        return _expect(self._recv_loader(None, "the loader's state"), Snapshot).state

    def _boundary_state(self, cur: _Epoch | None) -> dict:
        """Between two epochs: the loop took all of ``cur`` (or left it): the next epoch begins at batch 0."""
        with self._io:
            if cur is not None and not cur.closed:
                if cur.exhausted and cur.consumed >= cur.produced:
                    cur.finished = True  # every batch was taken: torch's loop sees the end next
                self._close(cur)  # settled now, as the next epoch's start would: the loader's state after it
                self._drain_outstanding()
            snapshot = self._snapshot_now()
        workers = None
        if self.schedule.keeps_workers and self._workers:  # persistent: their streams after their last tasks
            workers = [self._last_streams(w) for w in range(self.spec.num_workers)]
        return self._state(self._next_epoch, 0, 0, snapshot, workers, None)

    def _mid_epoch_state(self, cur: _Epoch) -> dict:
        b = cur.consumed
        with self._cv:
            anchor = self._anchor
        if anchor is None or anchor[0] != cur.number:
            raise RuntimeError(f"to_mindspore: the state at the start of epoch {cur.number} was not kept (a fault)")
        if self.spec.num_workers == 0:
            return self._state(cur.number, b, b, anchor[1], None, None)  # the loader makes b batches again
        if self.spec.kind == "iterable":  # its iterators cannot be saved: made again from the epoch's start
            return self._state(cur.number, b, b, anchor[1], [self._ready.get(w) for w in self._worker_ids()], None)
        return self._state(cur.number, b, 0, anchor[1], [self._streams_before(w, b) for w in self._worker_ids()], None)

    def _continuous_state(self, cur: _Epoch | None) -> dict:
        """One torch iterator over all epochs: the global position, the last pass begun before it, the workers."""
        length = len(self.spec.index_sampler)
        with self._cv:
            if cur is None:
                g, epoch, b = self._global_consumed, self._next_epoch, 0
            else:
                g = cur.start + cur.consumed
                complete = cur.consumed >= length or cur.closed or cur.consumer.closed
                epoch, b = (cur.number + 1, 0) if complete else (cur.number, cur.consumed)
            anchors = [a for a in self._pass_anchors if a[1] <= g]
        if anchors:
            q, start, snapshot = max(anchors, key=lambda a: a[1])
        elif g == 0 and self._passes == 0:
            with self._io:
                q, start, snapshot = 0, 0, self._snapshot_now()
        else:
            raise RuntimeError(f"to_mindspore: the state of the sampler's pass before batch {g} was not kept (a fault)")
        workers = [self._streams_before(w, g) for w in self._worker_ids()] if self._workers else None
        replay = g - start if self.spec.num_workers == 0 else 0
        return self._state(epoch, b, replay, snapshot, workers, {"pass": q, "start": start, "position": g})

    def _worker_ids(self) -> range:
        return range(self.spec.num_workers)

    def _streams_before(self, w: int, k: int) -> bytes:
        """Worker ``w``'s streams before batch ``k`` (of the epoch; global in continuous modes)."""
        with self._cv:
            kept = list(self._after.get(w, ()))
            ready = self._ready.get(w)
        before = [st for j, st in kept if j < k]
        if before:
            return before[-1]
        had_task = k > w  # torch worker w made batches w, w + n, ... (the cycle starts at worker 0)
        if had_task or ready is None:
            raise RuntimeError(f"to_mindspore: torch worker {w}'s streams before batch {k} were not kept (a fault)")
        return ready

    def _last_streams(self, w: int) -> bytes:
        with self._cv:
            kept = self._after.get(w)
            last = kept[-1][1] if kept else self._ready.get(w)
        if last is None:
            raise RuntimeError(f"to_mindspore: torch worker {w}'s streams were not kept (a fault)")
        return last

    def load_state(self, state: dict) -> None:
        """Resume from ``state`` (:meth:`state_dict`): the next epoch begins at its position.

        Raises:
            TypeError / ValueError: ``state`` is not a loader state, or is from another loader configuration
                (naming what differs), or this pipeline cannot resume (``steps_per_epoch``).
            RuntimeError: an epoch has begun, or a state was loaded already.
        """
        self.check_usable()
        state = validate(state)
        if self.schedule.mode == "steps":
            raise ValueError("to_mindspore: resuming with steps_per_epoch is not supported (see state_dict())")
        assert self.config is not None  # (set by build_engine)
        check_config(state["config"], self.config)
        e, b, workers, anchor = state["epoch"], state["batch"], state["workers"], state["anchor"]
        position, anchor_start = check_position(state, self.spec.num_workers, self.schedule.continuous)
        with self._cv:
            if (
                self._loaded is not None
                or self._current is not None
                or self._next_epoch > 0
                or any(c.arrived for c in self._consumers)
            ):
                raise RuntimeError(
                    "to_mindspore: load_state_dict() must come before the dataset's first epoch (and only once): "
                    "build a new dataset with to_mindspore(loader, state=state)"
                )
        loader = dict(state["loader"])
        check = loader.pop("check")
        with self._io:
            self._probe_kept = False  # (num_workers=0: the probe's copy hands the state over and exits)
            send(self._conn, Restore(loader, check))
            try:
                _expect(self._recv_loader(None, "loading the saved state into the loader process"), Settled)
            except SourceError as err:
                raise err.exception() from None  # (its original type: a refusal is the user's to read)
        with self._cv:
            self._next_epoch = e
            if self.schedule.continuous:
                self._global_consumed = position - b
                self._passes = anchor["pass"]
                self._queued = anchor_start
            self._resume = _Resume(e, b, position, anchor_start, workers)
            self._loaded = copy.deepcopy(state)

    @property
    def next_epoch(self) -> int:
        """The number of the next epoch to begin (torch's epochs since the start, a resumed run's included)."""
        return self._next_epoch

    @property
    def resumes_mid_epoch(self) -> bool:
        """A loaded state's first epoch begins after its batch 0 (MindSpore must not expect a full epoch)."""
        resume = self._resume
        return resume is not None and resume.batch > 0


_LIVE: weakref.WeakSet = weakref.WeakSet()  # engines of this process, closed at interpreter exit
_AT_EXIT = False


def _close_live_engines() -> None:
    """At interpreter exit: close every pipeline first, so that the source MindSpore's own exit clean-up
    waits for returns (it would otherwise poll a stuck worker forever), and no process is left behind."""
    for engine in list(_LIVE):
        with contextlib.suppress(Exception):
            engine.close()


def _register(engine: Engine) -> None:
    global _AT_EXIT
    if not _AT_EXIT:
        # Registered after mindspore.dataset was imported (atexit runs the last registered first): this runs
        # before MindSpore's clean-up.
        atexit.register(_close_live_engines)
        _AT_EXIT = True
    _LIVE.add(engine)


def _stop(workers: dict) -> None:
    """Ask the workers to exit; closing their pipe ends one blocked in sending, too."""
    for w in list(workers):
        _, conn = workers.pop(w)
        with contextlib.suppress(Exception):
            send(conn, Exit())
        conn.close()


def _fork_until_up(ctx, target, make_args, pgid: int, name: str):
    """Fork a process of the pipeline from this process and wait until it runs; returns ``(process, our pipe)``.

    A fork of a multithreaded process can deadlock in the child before any of its code runs: CPython 3.11's
    after-fork clean-up takes the runtime's thread-state lock, which another thread (one of MindSpore's,
    entering Python) may have held at that instant (seen once in about ten full test runs: the child asleep
    in ``_PyThreadState_DeleteExcept`` for good). The child says it runs (:class:`ProcessUp`); one that does
    not within ``_START_TIMEOUT`` seconds is killed and forked again, ``_START_TRIES`` times in all.

    Raises:
        RuntimeError: ``"forked from this process, did not start in ..."`` (the caller names the process).
    """
    for _ in range(_START_TRIES):
        ours, theirs = ctx.Pipe(duplex=True)
        proc = ctx.Process(target=target, args=make_args(theirs, ours), daemon=True, name=name)
        proc.start()
        assert proc.pid is not None  # (a started process has one)
        join_group(pgid, proc.pid)
        theirs.close()
        if _process_up(ours):
            return proc, ours
        with contextlib.suppress(OSError):
            os.kill(proc.pid, signal.SIGKILL)
        ours.close()
        threading.Thread(target=_join, args=(proc,), daemon=True, name="torch2ms-reap").start()
    raise RuntimeError(
        f"forked from this process, did not start in {_START_TRIES} tries of {_START_TIMEOUT:g} s (a fork of this "
        "multithreaded process deadlocked, or the machine is overloaded)"
    )


def _process_up(conn) -> bool:
    """Whether a newly forked process said it runs within ``_START_TIMEOUT`` seconds."""
    try:
        return conn.poll(_START_TIMEOUT) and isinstance(recv(conn), ProcessUp)
    except (EOFError, OSError):
        return False  # it died at once: fork another


def _retire(spawner) -> None:
    proc, conn = spawner
    with contextlib.suppress(Exception):
        send(conn, Exit())
    conn.close()
    threading.Thread(target=_join, args=(proc,), daemon=True, name="torch2ms-reap").start()


def _join(proc) -> None:
    """Reap a process of the pipeline made by multiprocessing, and free its two descriptors at once.

    (Until joined, multiprocessing keeps it in its list of children and its pipes open.) The guardian kills
    whatever of the pipeline is left a second after the caller lets go, so this returns soon.
    """
    proc.join(30)
    if proc.exitcode is not None:
        with contextlib.suppress(ValueError):
            proc.close()


def _shutdown(owner: int, conn, workers: dict, holder: dict) -> None:
    if os.getpid() != owner:
        # A process forked from the caller (a torch DataLoader worker, multiprocessing) that collects an
        # engine the caller had dropped: the pipeline is not this process's to stop (its pipes are copies).
        return
    if holder.get("spawner") is not None:
        _retire(holder["spawner"])
    _stop(workers)
    with contextlib.suppress(Exception):
        send(conn, Exit())
    conn.close()
    loader = holder.pop("loader", None)
    if loader is not None:
        threading.Thread(target=_join, args=(loader,), daemon=True, name="torch2ms-reap").start()
    guardian = holder.pop("guardian", None)
    if guardian is not None:
        pid, lifeline = guardian
        close_lifeline(lifeline)  # the guardian stops whatever of the group is left after its grace
        threading.Thread(target=_reap, args=(pid,), daemon=True, name="torch2ms-reap").start()


def _reap(pid: int) -> None:
    with contextlib.suppress(OSError):
        os.waitpid(pid, 0)
