"""Processes the pipeline owns: where user code (samplers, datasets, collate, worker_init_fn) runs.

Nothing of the caller's process is touched: its random streams, its dataset and sampler objects,
its ``get_worker_info()`` and its signal handlers stay as they were. Two kinds of process:

* a **torch worker** (``worker_loop``), one process per torch worker, forked from the caller when
  torch would start it (each epoch, or once with persistent workers): its own copy of the dataset
  (fork, as torch's workers get theirs), streams seeded from ``base_seed + id``, ``WorkerInfo`` and
  ``worker_init_fn``, then torch's fetcher for each task it is sent;
* the **loader process** (``loader_loop``), torch's main-process side, forked once when
  ``to_mindspore`` is called: it owns a snapshot of the sampler, the generator and the global
  streams (and, for ``num_workers=0``, runs the whole single-process loop). It plays each epoch ahead
  of the consumer itself, keeping its pid from epoch to epoch as torch's main process does, after
  forking a checkpoint of its state; once the consumer's position is known the checkpoint is dropped
  (the epoch was consumed as played) or takes over and replays exactly as much of the epoch as torch
  would have drawn (a partial epoch).

All of them live in one process group of their own, led by a **guardian** (``start_guardian``): a
tiny process that waits for the caller to close the pipeline or to die (the end of a pipe only the
caller holds) and then, after a short grace, kills the whole group — a torch worker stuck in
``__getitem__`` included. The caller's own process group is never changed.
"""

from __future__ import annotations

import collections
import gc
import multiprocessing.connection
import os
import pickle
import random
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from adapters.engine._errors import SourceError, WorkerError, wrap_exception
from adapters.engine._fetch import collate, fetch_iterable, fetch_map
from adapters.engine._messages import (
    DELETED,
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
from adapters.engine._state import (
    capture_loader,
    capture_streams,
    check_attributes,
    check_owners,
    plain_attributes,
    restore_loader,
    restore_streams,
    rng_owners,
)
from adapters.engine._transport import adopt, numpy_tree, recv, reset, send
from adapters.torch_data._rng_streams import seed_streams_like_torch_worker
from adapters.torch_data._worker_info import set_worker_info
from adapters.torch_data._worker_seeding import WorkerInfo, draw_base_seed

__all__ = [
    "worker_loop",
    "loader_loop",
    "EpochRunner",
    "start_guardian",
    "join_group",
    "close_lifeline",
    "STREAM_AHEAD_BYTES",
]

GRACE = 1.0  # seconds the pipeline's processes get to exit by themselves once the caller let go
# num_workers=0: bytes of batches the loader process may have sent that the engine has not yet
# taken (and one batch more). torch makes one batch per next(); a window keeps the loader busy while
# MindSpore takes rows, and memory bounded (the loop used to play a whole epoch ahead, every batch
# of it held in shared memory). In bytes, not batches: small batches then need almost no credits.
STREAM_AHEAD_BYTES = 32 << 20

# Write ends of the live guardians' lifelines. Every process forked from the caller (ours, and the
# caller's own: a torch DataLoader's workers, multiprocessing) closes them, so that a lifeline's
# EOF means exactly "the caller closed this pipeline, or died".
_LIFELINES: set[int] = set()
_AT_FORK = False


def _close_inherited_lifelines() -> None:
    for fd in list(_LIFELINES):
        try:
            os.close(fd)
        except OSError:
            pass
    _LIFELINES.clear()


def close_lifeline(fd: int) -> None:
    """The caller lets go of a pipeline: its guardian stops the group after :data:`GRACE`."""
    if fd in _LIFELINES:
        _LIFELINES.discard(fd)  # before closing: a concurrent fork must not close a reused number
        try:
            os.close(fd)
        except OSError:
            pass


def start_guardian() -> tuple[int, int]:
    """Fork the process that leads the pipeline's process group and stops it when the caller lets go.

    Returns ``(pgid, lifeline)``: the group every process of the pipeline joins (``join_group``),
    and the write end of a pipe only the caller holds. When that end closes — ``Engine.close()``, the
    engine's finaliser, the caller's exit or death, even by SIGKILL — the guardian reads EOF, waits
    :data:`GRACE` seconds for the processes that were asked to exit, then SIGKILLs the group (itself
    last). A worker stuck in user code cannot outlive the caller. Linux's ``PR_SET_PDEATHSIG`` is not
    used: it fires when the *thread* that forked a process exits, not the process.
    """
    global _AT_FORK
    if not _AT_FORK and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_close_inherited_lifelines)
        _AT_FORK = True
    read_fd, write_fd = os.pipe()  # not inheritable: an exec'd child never holds it
    pid = os.fork()
    if pid == 0:  # only system calls from here: the caller may have had other threads running
        try:
            gc.disable()
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # multiprocessing's exit hooks are not for it
            os.setpgid(0, 0)
            os.close(write_fd)  # (the at-fork hook closed the other pipelines' lifelines)
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):  # hold none of the caller's pipes (a `cmd | tail` would wait for it)
                os.dup2(null, fd)
            while True:
                try:
                    if not os.read(read_fd, 1):
                        break
                except InterruptedError:
                    continue
            time.sleep(GRACE)
            os.killpg(os.getpid(), signal.SIGKILL)
        finally:
            os._exit(0)
    os.close(read_fd)
    try:
        os.setpgid(pid, pid)  # also from here: no process joins the group before it exists
    except OSError:
        pass  # the guardian already did (or exited)
    _LIFELINES.add(write_fd)
    return pid, write_fd


def join_group(pgid: int | None, pid: int = 0) -> None:
    """Put ``pid`` (0: this process) in the pipeline's process group; best effort."""
    if pgid is None:
        return
    try:
        os.setpgid(pid, pgid)
    except OSError:
        pass  # already in it, or exited; the pipes' EOF still ends every loop


def _look_like(name: str, identity: tuple) -> None:
    """What ``multiprocessing`` tells user code about this process: torch's main process, or one of its workers.

    torch runs ``__getitem__`` and ``collate_fn`` in the main process with ``num_workers=0`` and in its worker
    processes otherwise; code that branches on it (Hugging Face's seeded collators check
    ``current_process().name == "MainProcess"``) must take the same branch here.
    """
    import multiprocessing.process as mp_process

    current = mp_process.current_process()
    current.name = name
    current._identity = identity
    if name == "MainProcess":
        # multiprocessing.parent_process() is None in a main process (a private name typeshed does not list)
        mp_process._parent_process = None  # type: ignore[attr-defined]


def _child_setup() -> None:
    # Objects inherited from the caller must not be finalised here: a garbage cycle that was not yet
    # collected there (a torch DataLoader iterator, say, whose __del__ stops *its* workers through
    # shared queues) would otherwise be collected, and its __del__ run, in this process.
    gc.freeze()
    # Ctrl-C goes to the whole process group: the caller handles it, the pipeline's processes
    # must not print tracebacks of their own (torch's workers do the same).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)  # as torch's workers


def _error(exc: BaseException, where: str) -> Error:
    return Error(wrap_exception(exc, where))


def _count(spec, items) -> int | None:
    """Samples in a batch (what a custom collate's per-sample lists are as long as)."""
    return len(items) if spec.auto_collation else None


def _fetch_and_collate(spec, index, where: str):
    data = fetch_map(spec.dataset, index, spec.auto_collation, where)
    return numpy_tree(collate(spec.collate_fn, data, where))


def _next_iterable_batch(spec, ds_iter, k: int, where: str):
    """The next batch from an IterableDataset iterator (``StopIteration`` at its end)."""
    data = fetch_iterable(ds_iter, spec.iterable_index, spec.auto_collation, spec.drop_last, where)
    return Batch(k, numpy_tree(collate(spec.collate_fn, data, where)), _count(spec, data))


# ----------------------------------------------------------------------------------- torch worker


def begin_worker(spec, worker_id: int, base_seed: int, epoch: int):
    """What torch's ``_worker_loop`` does before its first task: seed, ``WorkerInfo``, ``worker_init_fn``.

    Returns the dataset iterator for an IterableDataset (a new one every epoch, as torch's fetcher).
    """
    n = spec.num_workers
    seed = seed_streams_like_torch_worker(base_seed, worker_id)
    set_worker_info(WorkerInfo(id=worker_id, num_workers=n, seed=seed, dataset=spec.dataset))
    if spec.worker_init_fn is not None:
        try:
            spec.worker_init_fn(worker_id)
        except Exception as exc:
            # (from None: the SourceError carries the original exception and its traceback, as in _fetch.py)
            raise wrap_exception(
                exc, f"worker_init_fn({worker_id}) in torch worker {worker_id} of {n}, epoch {epoch}"
            ) from None


class _Worker:
    """One torch worker's state between messages."""

    def __init__(self, conn, spec, worker_id: int) -> None:
        self.conn, self.spec, self.worker_id = conn, spec, worker_id
        self.ds_iter = None
        self.epoch: int | None = None
        self.capture = False  # send the streams with every result
        self._owners: dict = {}  # the objects whose generators travel with the streams (rng_owners)

    def begin(self, msg: Begin) -> None:
        self.epoch = msg.epoch
        spec, w = self.spec, self.worker_id
        if msg.restart:
            begin_worker(spec, w, msg.base_seed, msg.epoch)
        if msg.streams is not None:  # a resumed worker: where the saved run's worker was (after its own start)
            where = f"epoch {msg.epoch} in torch worker {w} of {spec.num_workers}"
            try:
                restore_streams(msg.streams, rng_owners(spec))
                check_owners(msg.streams, rng_owners(spec), where)
            except ValueError as exc:
                raise wrap_exception(exc, f"resuming {where}") from None
        self.capture = msg.capture
        self._owners = rng_owners(spec)
        # (before iter(dataset): a resumed IterableDataset epoch makes its iterator again from these streams)
        ready = Ready(w, self._streams())
        if spec.kind == "iterable":
            try:
                self.ds_iter = iter(spec.dataset)  # a new fetcher every epoch, as torch's workers
            except Exception as exc:
                raise wrap_exception(
                    exc, f"iter(dataset) in torch worker {w} of {spec.num_workers}, epoch {msg.epoch}"
                ) from None
        send(self.conn, ready)

    def _streams(self) -> bytes | None:
        """The worker's streams now, pickled here: the engine keeps them as bytes (unpickled only by a state_dict())."""
        if not self.capture:
            return None
        return pickle.dumps(capture_streams(self._owners, raw=True), protocol=pickle.HIGHEST_PROTOCOL)

    def task(self, msg: Task) -> None:
        batch = _fetch_and_collate(self.spec, msg.indices, msg.where)
        send(self.conn, Batch(msg.k, batch, _count(self.spec, msg.indices), self._streams()))

    def next(self, msg: Next) -> None:
        try:
            out = _next_iterable_batch(self.spec, self.ds_iter, msg.k, msg.where)._replace(streams=self._streams())
        except StopIteration:
            out = End(msg.k, self._streams())
        send(self.conn, out)


def worker_loop(conn, spec, worker_id: int) -> None:
    """Body of one torch worker process.

    Messages in: :class:`Begin`, :class:`Task` (map-style), :class:`Next` (iterable), :class:`Exit`.
    Out: :class:`Ready`, :class:`Batch`, :class:`End` (iterable shard exhausted), :class:`Error`.
    """
    _look_like(f"Process-{worker_id + 1}", (worker_id + 1,))  # (a torch worker is a multiprocessing.Process)
    worker = _Worker(conn, spec, worker_id)
    handlers: dict[type, Callable[[Any], None]] = {Begin: worker.begin, Task: worker.task, Next: worker.next}
    while True:
        try:
            msg = recv(conn)
        except (EOFError, OSError):
            return
        if isinstance(msg, Exit):
            return
        try:
            handlers[type(msg)](msg)
        except (BrokenPipeError, EOFError, OSError):
            return
        except SourceError as err:
            send(conn, Error(err))
        except Exception as exc:  # a batch that cannot be sent (unpicklable leaf, ...)
            try:
                send(
                    conn,
                    _error(
                        exc,
                        f"sending a batch from torch worker {worker_id} of {spec.num_workers}, epoch {worker.epoch}",
                    ),
                )
            except Exception:
                return


# ----------------------------------------------------------------------------------- loader process


class EpochRunner:
    """torch's main-process side of one epoch: sampler iterators, base seed, (num_workers=0) fetches.

    Lives in the loader process. ``start(epoch)`` does what ``iter(loader)`` does; the caller then
    takes index batches (or, without workers, whole batches) from it.
    """

    def __init__(self, spec, schedule, set_epoch) -> None:
        self.spec = spec
        self.schedule = schedule
        self.set_epoch = set_epoch
        self.base_seed: int | None = None
        self.drawn = 0  # next(sampler_iter) calls this epoch (the one that raised StopIteration too)
        self.exhausted = False
        self._it: Iterator[Any] | None = None  # the index iterator of the running epoch / pass
        self._ds_iter = None  # num_workers=0, IterableDataset
        self.snapshot: dict | None = None  # the state before the last start() (a resumable anchor)
        self.expected: dict | None = None  # a resumed run: plain attributes the next start() must find

    def start(self, epoch: int) -> int:
        """Begin ``epoch`` as ``iter(loader)`` would; return the base seed in force.

        The state before it is kept (:attr:`snapshot`, the anchor a saved position resumes from), with the
        samplers' plain attributes after the loop's ``set_epoch``; a resumed run checks those first.
        """
        try:
            self.snapshot = capture_loader(self.spec, self.base_seed)
        except Exception as exc:  # (only a state_dict() asked for at this epoch fails, saying why)
            self.snapshot = {"unsaved": f"{type(exc).__name__}: {exc}"}
        before, after = self.schedule.iter_calls(epoch)
        self.drawn, self.exhausted = 0, False
        if before or after:
            self.set_epoch(self._sampler_epoch(epoch))
        self.snapshot["check"] = plain_attributes(self.spec)
        if self.expected is not None:
            expected, self.expected = self.expected, None
            check_attributes(expected, self.snapshot["check"], f"epoch {epoch}")
        if before:
            self._it = iter(self.spec.index_sampler)
        if self.schedule.draws_base_seed(epoch):
            self.base_seed = draw_base_seed(self.spec.generator, self.spec.backend)
        if after:
            self._it = iter(self.spec.index_sampler)
        if self.spec.num_workers == 0 and self.spec.kind == "iterable" and (before or after):
            self._ds_iter = iter(self.spec.dataset)
        assert self.base_seed is not None  # drawn by epoch 0's iter(loader), the first epoch every pipeline plays
        return self.base_seed

    def next_index(self):
        """The next index batch (``StopIteration`` at the end of the sampler)."""
        self.drawn += 1
        assert self._it is not None  # made by start(), which every epoch begins with
        try:
            return next(self._it)
        except StopIteration:
            self.exhausted = True
            raise

    def draw(self, count: int | None) -> list:
        """Up to ``count`` more index batches (all that are left when ``None``)."""
        out: list = []
        while not self.exhausted and (count is None or len(out) < count):
            try:
                out.append(self.next_index())
            except StopIteration:
                break
        return out

    def settle(self, target: int, finished: bool) -> bool:
        """Advance to where torch's iterator is (``target`` draws, or the end); False if already past it."""
        limit = float("inf") if finished else target
        if self.drawn > limit:
            return False
        while self.drawn < limit and not self.exhausted:
            try:
                self.next_index()
            except StopIteration:
                break
        return True

    def restart_pass(self, epoch: int) -> None:
        """Repeat mode (InfiniteDataLoader): the sampler is exhausted, start its next pass."""
        self.set_epoch(self._sampler_epoch(epoch))
        self._it = iter(self.spec.index_sampler)

    def _sampler_epoch(self, epoch: int) -> int:
        # Repeat mode: torch's prefetching starts a pass before the loop's set_epoch for it (Schedule).
        if self.schedule.mode != "repeat":
            return epoch
        return self.schedule.sampler_epoch(epoch, len(self.spec.index_sampler))

    def next_batch(self, k: int, epoch: int):
        """num_workers=0: torch's single-process ``__next__`` (index, then fetch and collate)."""
        index = self.next_index()
        where = f"batch {k} of epoch {epoch}, main process"
        spec = self.spec
        if spec.kind == "iterable":
            data = fetch_iterable(self._ds_iter, index, spec.auto_collation, spec.drop_last, where)
            return numpy_tree(collate(spec.collate_fn, data, where)), _count(spec, data)
        return _fetch_and_collate(spec, index, where), _count(spec, index)


class Control:
    """The loader's end of its pipe to the engine: stream credits counted, other messages in order.

    In ``"stream"`` mode (``num_workers=0``) the loader makes a batch only while the bytes it has
    sent and the engine has not credited back are fewer than :data:`STREAM_AHEAD_BYTES`. The engine
    sends :class:`Credit` for the bytes it took off the pipe — when half a window has come
    together, and whenever it is about to wait for the loader — so credits can arrive at any point:
    every read counts them and skips them.
    """

    def __init__(self, conn) -> None:
        self.conn = conn
        self.room = 0  # bytes the loader may still send before it waits for a credit
        self._pending: collections.deque = collections.deque()

    def _read(self) -> None:
        msg = recv(self.conn)
        if isinstance(msg, Credit):
            self.room += msg.nbytes
        else:
            self._pending.append(msg)

    def recv(self):
        """The next message that is not a credit (blocking)."""
        while not self._pending:
            self._read()
        return self._pending.popleft()

    def message_waiting(self) -> bool:
        """Whether a message other than a credit has arrived (reads what is there, never blocks)."""
        while not self._pending and self.conn.poll(0):
            self._read()
        return bool(self._pending)

    def wait_for_room(self) -> bool:
        """Wait until the engine has room for one more batch; False if another message came first."""
        while self.room <= 0 and not self._pending:
            self._read()
        return not self._pending


def apply_changes(spec, changes: list) -> None:
    """Set (or delete) the attributes the training loop changed on its dataset / samplers (:class:`SyncState`)."""
    for owner, path, value in changes:
        obj = getattr(spec, owner)
        for step in path[:-1]:
            obj = obj[step] if isinstance(step, int) else getattr(obj, step)
        last = path[-1]
        if isinstance(last, int):
            obj[last] = value  # an item of a list of objects replaced
        elif value == DELETED:
            if hasattr(obj, last):
                delattr(obj, last)
        else:
            setattr(obj, last, value)


def _serve_epoch(ctl: Control, runner: EpochRunner, msg: StartEpoch | MoreIndices, started: bool = False) -> None:
    """Play one epoch ahead, sending what the engine asked for.

    :class:`StartEpoch` starts epoch ``e`` as ``iter(loader)`` would; :class:`MoreIndices` continues the
    running iterator (``steps_per_epoch``). In ``"stream"`` mode a message from the engine arriving
    between two batches (its verdict on an epoch left early) stops the stream. ``started``: the probe
    began this epoch and sent its first batch already (``num_workers=0``): go on from batch 1.
    """
    conn = ctl.conn
    epoch, what, count = msg.epoch, msg.what, msg.n_batches
    try:
        if started:
            send(conn, Snapshot(runner.snapshot or {}))  # (taken by the probe's start)
            _stream(ctl, runner, epoch, count, start=1)
            return
        starts = isinstance(msg, StartEpoch)
        base_seed = runner.start(epoch) if starts else runner.base_seed
        assert base_seed is not None  # (MoreIndices goes on with an epoch StartEpoch began)
        if starts:
            send(conn, Snapshot(runner.snapshot or {}))
        if what == "seed":  # workers fetch (IterableDataset / map-style): only the seed and indices
            send(conn, Seed(epoch, base_seed))
        elif what == "lazyplan":  # the first index batches now, more on request (Chunk)
            batches = runner.draw(count)
            send(conn, Plan(epoch, base_seed, batches, runner.exhausted))
        elif what == "plan":
            send(conn, Plan(epoch, base_seed, _plan(runner, epoch, count)))
        else:  # "stream", num_workers == 0: the whole single-process loop
            skip = msg.skip if isinstance(msg, StartEpoch) else 0
            for k in range(skip):  # a resumed epoch: the batches before the saved position, made and dropped
                try:
                    runner.next_batch(k, epoch)
                except StopIteration:
                    break
            _stream(ctl, runner, epoch, count, start=skip)
    except (BrokenPipeError, EOFError):
        raise
    except Exception as exc:
        send(conn, _error(exc, f"epoch {epoch}, main process"))


def _plan(runner: EpochRunner, epoch: int, count: int | None) -> list:
    batches: list = []
    while count is None or len(batches) < count:
        try:
            batches.append(runner.next_index())
        except StopIteration:
            if count is None:
                break
            if runner.schedule.mode == "repeat":
                runner.restart_pass(epoch)
                continue
            raise RuntimeError(
                f"to_mindspore: the sampler ended after {len(batches)} batches, but steps_per_epoch asks "
                f"for {count} per epoch (an infinite sampler must never end)"
            ) from None
    return batches


def _stream(ctl: Control, runner: EpochRunner, epoch: int, count: int | None, start: int = 0) -> None:
    k = start
    ctl.room = STREAM_AHEAD_BYTES  # (credits of an earlier stream were all read before this message)
    while count is None or k < count:
        if not ctl.wait_for_room():
            break  # the engine gave its verdict: the consumer left this epoch
        try:
            batch, samples = runner.next_batch(k, epoch)
        except StopIteration:
            if count is not None and runner.schedule.mode == "repeat" and runner.spec.kind == "map":
                runner.restart_pass(epoch)
                continue
            break
        ctl.room -= send(ctl.conn, Batch(k, batch, samples))
        k += 1
        if ctl.message_waiting():
            break  # the engine gave its verdict early: the consumer left this epoch
    send(ctl.conn, End(k))


def _replay(runner: EpochRunner, epoch: int, what: str, dispatched: int) -> None:
    """Redo, without sending, exactly what torch drew in a partially consumed epoch."""
    runner.start(epoch)
    for k in range(dispatched):
        try:
            if what == "stream":
                runner.next_batch(k, epoch)
            else:  # "plan" / "lazyplan" / "seed"
                runner.next_index()
        except StopIteration:
            return


def _read_all(fd: int) -> bytes:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except InterruptedError:
            continue
        if not chunk:
            break
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


class _TakeOver(BaseException):
    """Raised in a checkpoint that becomes the loader: unwinds into the loader loop with what to do first."""

    def __init__(self, action) -> None:
        super().__init__()
        self.action = action


class _Checkpoint:
    """A copy of the loader, forked before it plays something ahead that may have to be undone.

    The loader plays the epoch itself, so the process that runs your dataset, sampler and collate_fn
    keeps one pid from epoch to epoch, as torch's main process does (code that keys state on
    ``os.getpid()`` — Hugging Face's seeded collators — goes on as under torch). The copy waits,
    frozen at the state before: :meth:`discard` when what was played stands, :meth:`take_over` when it
    must be undone (a partial epoch: the copy replays exactly what torch drew, then is the loader). If
    the loader dies meanwhile (a crash in user code) the copy takes over and reports it.
    """

    def __init__(self, what: str) -> None:
        read_fd, self._w = os.pipe()
        python_state = random.getstate()
        pid = os.fork()
        if pid == 0:
            os.close(self._w)
            gc.freeze()
            random.setstate(python_state)  # python's random reseeds itself in a forked child
            data = _read_all(read_fd)  # until the loader decides (or dies)
            if data == b"X":
                os._exit(0)
            raise _TakeOver(pickle.loads(data[1:]) if data else _Died(what))  # (from its own parent)
        os.close(read_fd)
        self.pid = pid

    @property
    def fd(self) -> int:
        """The write end the loader holds (processes forked from the loader must close it)."""
        return self._w

    def discard(self) -> None:
        """What was played stands: the copy exits."""
        os.write(self._w, b"X")
        os.close(self._w)

    def take_over(self, action) -> None:
        """The copy becomes the loader and starts with ``action``; the caller (the loader) must exit now."""
        os.write(self._w, b"T" + pickle.dumps(action))
        os.close(self._w)


class _Died(NamedTuple):
    """A checkpoint's first action when the loader died: report it."""

    what: str


class _Replay(NamedTuple):
    """A checkpoint's first action after a partial epoch: replay what torch drew, then answer ``Settled``."""

    msg: StartEpoch
    target: int


class _Started(NamedTuple):
    """Serve ``msg`` whose first batch the probe already sent (one torch iterator over all epochs)."""

    msg: StartEpoch


def _take_over(ctl: Control, runner: EpochRunner, action):
    """In a checkpoint that became the loader: its first action; returns the loop's next message, if any."""
    conn = ctl.conn
    reset(conn)  # the loader sent from its own files meanwhile: start afresh (the engine's mappings stay valid)
    if isinstance(action, _Died):
        send(
            conn,
            Error(
                SourceError(WorkerError(f"the pipeline's loader process died while playing {action.what}"), action.what)
            ),
        )
        return None
    if isinstance(action, _Replay):
        try:
            _replay(runner, action.msg.epoch, action.msg.what, action.target)
            send(conn, Settled(committed=False))
        except Exception as exc:
            send(conn, _error(exc, f"replaying epoch {action.msg.epoch} in the loader process"))
        return None
    return action  # a message the loader had read: this process handles it


def _probe(ctl: Control, runner: EpochRunner):
    """Epoch 0's first batch, to learn the columns; nothing of it is used up.

    With workers it is made in a throwaway fork (torch worker 0's first batch): the real epoch 0 begins
    when the training loop asks for it, its workers forked from the loop's process then. With
    ``num_workers=0`` the loader makes it itself, a checkpoint holding the state before: if the next
    message begins epoch 0 with no change from the loop in between, the loader is exactly where that
    epoch is after its batch 0 and goes on (no batch made twice, no ``__getitem__`` called more often than
    torch calls it); any other message goes to the checkpoint, which is the loader from then on.

    Returns:
        The loop's next message (what the loader read and plays next), or None.
    """
    conn = ctl.conn
    if runner.spec.num_workers > 0:
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            adopt(conn)
            try:
                send(conn, _first_batch_or_error(runner))
            finally:
                os._exit(0)
        os.close(write_fd)
        _read_all(read_fd)  # its end
        reset(conn)  # the copy wrote into this process's shared-memory files: the engine may hold any
        return None
    checkpoint = _Checkpoint("epoch 0's first batch")
    first = _first_batch_or_error(runner)
    send(conn, first)
    nxt = ctl.recv() if isinstance(first, Batch) else None
    if not (isinstance(nxt, StartEpoch) and nxt.epoch == 0 and nxt.what == "stream"):
        checkpoint.take_over(nxt)  # the loop changed something first (or no batch): from the state before
        os._exit(0)
    if runner.schedule.mode != "epochs":  # one torch iterator, played in place: nothing to undo
        checkpoint.discard()
        return _Started(nxt)
    _play_epoch(ctl, runner, nxt, checkpoint, started=True)
    return None


def _first_batch_or_error(runner: EpochRunner):
    try:
        return _first_batch(runner)
    except SourceError as err:
        return Error(err)
    except Exception as exc:
        return _error(exc, "the first batch of epoch 0")


# True while this process (or a fork of it) makes epoch 0's first batch for the probe: a collate_fn may then
# return what the dataset's columns are learnt from besides the batch (adapters.engine._samples).
probing = False


def _first_batch(runner: EpochRunner):
    """``Batch`` 0 of epoch 0, as torch makes it (``End(0)`` if the epoch has none)."""
    global probing
    probing = True
    try:
        return _make_first_batch(runner)
    finally:
        probing = False


def _make_first_batch(runner: EpochRunner):  # noqa: C901 - engine process code (forks), kept whole
    spec = runner.spec
    base_seed = runner.start(0)
    if spec.num_workers == 0:
        try:
            batch, samples = runner.next_batch(0, 0)
        except StopIteration:
            return End(0)
        return Batch(0, batch, samples)
    if spec.kind == "map":
        try:
            index = runner.next_index()
        except StopIteration:
            return End(0)
        _look_like("Process-1", (1,))  # (a throwaway copy: it plays torch worker 0)
        begin_worker(spec, 0, base_seed, 0)
        where = f"batch 0 of epoch 0, torch worker 0 of {spec.num_workers}, indices {index!r}"
        return Batch(0, _fetch_and_collate(spec, index, where), _count(spec, index))
    # IterableDataset: torch takes the first batch from worker 0, or from the next worker whose shard is not empty.
    for w in range(spec.num_workers):
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            try:
                _look_like(f"Process-{w + 1}", (w + 1,))
                begin_worker(spec, w, base_seed, 0)
                where = f"batch 0 of epoch 0, torch worker {w} of {spec.num_workers}"
                try:
                    out = _next_iterable_batch(spec, iter(spec.dataset), 0, where)
                except StopIteration:
                    os.write(write_fd, b"E")
                    os._exit(0)
                os.write(write_fd, pickle.dumps(out))
            except SourceError as err:
                os.write(write_fd, pickle.dumps(Error(err)))
            except Exception as exc:
                os.write(write_fd, pickle.dumps(_error(exc, f"iter(dataset) in torch worker {w}, epoch 0")))
            finally:
                os._exit(0)
        os.close(write_fd)
        data = _read_all(read_fd)
        if data and data != b"E":
            return pickle.loads(data)  # from this process's own child
        if not data:
            return Error(
                SourceError(
                    WorkerError(f"torch worker {w} (pid {pid}) died making epoch 0's first batch"),
                    "the first batch of epoch 0",
                )
            )
    return End(0)


def _play_epoch(
    ctl: Control, runner: EpochRunner, msg: StartEpoch, checkpoint: _Checkpoint | None = None, started: bool = False
) -> None:
    """Play epoch ``msg.epoch`` ahead of the consumer here, a checkpoint holding the state before it.

    Once the consumer's position is known (the engine's :class:`Settle`), what was played stands if torch's
    sampler was drawn exactly that far (``Settled(committed=True)``); otherwise the checkpoint replays
    exactly as much of the epoch as torch would have drawn (a partial epoch) and is the loader from then on.
    """
    checkpoint = checkpoint or _Checkpoint(f"epoch {msg.epoch}")
    verdict = _play_and_wait(ctl, runner, msg, checkpoint.fd, started)
    if isinstance(verdict, Settled):
        checkpoint.discard()
        send(ctl.conn, verdict)
    elif isinstance(verdict, Settle):
        checkpoint.take_over(_Replay(msg, verdict.target))
        os._exit(0)
    else:  # Exit
        checkpoint.discard()
        os._exit(0)


def _play_and_wait(ctl: Control, runner: EpochRunner, msg: StartEpoch, write_fd: int, started: bool = False):
    """In the runner: play the epoch, answer the engine, return the verdict (``Settled`` to carry on)."""
    conn = ctl.conn
    try:
        _serve_epoch(ctl, runner, msg, started)
        verdict = ctl.recv()
        while isinstance(verdict, (Spawn, Chunk)):
            if isinstance(verdict, Spawn):
                spawn_workers(conn, runner.spec, verdict.n_workers, (write_fd,))
            else:
                send(conn, Indices(runner.draw(verdict.n_batches), runner.exhausted))
            verdict = ctl.recv()
        if isinstance(verdict, Settle):
            # Where the consumer stopped, torch's sampler had been drawn ``target`` times:
            # this runner carries on as the loader if it can get exactly there.
            if msg.what == "seed":  # IterableDataset with workers: its sampler draws nothing
                exact = True
            elif msg.what == "stream":
                exact = verdict.finished or runner.drawn == verdict.target
            else:
                exact = runner.settle(verdict.target, verdict.finished)
            return Settled(committed=True) if exact else verdict
        return verdict  # Exit
    except (BrokenPipeError, EOFError, OSError):
        raise
    except Exception as exc:  # a sampler raising while settling
        send(conn, _error(exc, f"settling epoch {msg.epoch} in the loader process"))
        return Settle(0, False)


def loader_loop(conn, runner: EpochRunner, close_fds=(), python_state=None, pgid=None) -> None:
    """Body of the loader process (see the module docstring).

    Messages in: :class:`Probe` (epoch 0's first batch); :class:`SyncState` (the loop's changes, applied
    before the next epoch); :class:`StartEpoch` (play epoch ``e``); :class:`MoreIndices` (continuous modes:
    more of the same iterator); :class:`Spawn`; :class:`Settle` (the verdict on a played epoch); :class:`Exit`.
    """
    join_group(pgid)
    _child_setup()
    _look_like("MainProcess", ())  # it plays torch's main-process side (the whole loop with num_workers=0)
    for c in close_fds:
        c.close()
    send(conn, ProcessUp(os.getpid()))  # past the fork: see _engine._fork_until_up
    if python_state is not None:
        random.setstate(python_state)  # python's random reseeds itself in a forked child
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # workers forked here are reaped automatically
    ctl = Control(conn)
    pending = None  # a message read by a probe, or handed to this process as a checkpoint
    while True:
        try:
            msg, pending = (pending, None) if pending is not None else (ctl.recv(), None)
            pending = _handle(ctl, runner, msg)
        except _TakeOver as takeover:  # this process was a checkpoint: it is the loader now
            try:
                pending = _take_over(ctl, runner, takeover.action)
            except (BrokenPipeError, EOFError, OSError):
                os._exit(0)
        except (BrokenPipeError, EOFError, OSError):
            os._exit(0)


def _handle(ctl: Control, runner: EpochRunner, msg):
    """One message of the loader loop; returns the next one to handle, if it is already known."""
    if isinstance(msg, Exit):
        os._exit(0)
    if isinstance(msg, _Started):
        _serve_epoch(ctl, runner, msg.msg, started=True)
    elif isinstance(msg, Spawn):
        spawn_workers(ctl.conn, runner.spec, msg.n_workers)
    elif isinstance(msg, Probe):
        return _probe(ctl, runner)
    elif isinstance(msg, (TakeSnapshot, Restore, SyncState)):
        _between_epochs(ctl, runner, msg)
    elif isinstance(msg, MoreIndices) or (isinstance(msg, StartEpoch) and runner.schedule.mode != "epochs"):
        _serve_epoch(ctl, runner, msg)  # one torch iterator over all epochs: nothing to rewind, play in place
    elif isinstance(msg, StartEpoch):
        _play_epoch(ctl, runner, msg)
    return None


def _between_epochs(ctl: Control, runner: EpochRunner, msg) -> None:
    """:class:`SyncState`: apply the loop's changes; :class:`TakeSnapshot`: send the loader's state now;
    :class:`Restore`: put a saved anchor back."""
    what = {
        SyncState: "applying the training loop's changes to the dataset / samplers",
        TakeSnapshot: "saving the loader's state",
        Restore: "loading a saved state",
    }[type(msg)]
    try:
        if isinstance(msg, SyncState):
            apply_changes(runner.spec, msg.changes)
            out: Any = Settled(committed=True)
        elif isinstance(msg, TakeSnapshot):
            snapshot = capture_loader(runner.spec, runner.base_seed)
            snapshot["check"] = None  # (the loop's set_epoch for the next epoch is not known yet)
            out = Snapshot(snapshot)
        else:
            runner.base_seed = restore_loader(runner.spec, msg.loader)
            runner.expected = msg.check
            out = Settled(committed=True)
    except Exception as exc:
        out = _error(exc, what)
    send(ctl.conn, out)


def spawn_workers(conn, spec, count: int, close_fds=()) -> None:
    """Fork ``count`` torch workers from this (single-threaded) loader process; hand their pipes over.

    Forking here, not in the caller: the caller runs MindSpore's threads, and a process forked from
    one of them loses every other thread's frames, running finalizers of the caller's objects (a
    torch DataLoader iterator's ``__del__`` stops *its* workers) in the child.
    For each worker the engine gets :class:`WorkerStarted` and then the pipe's file descriptor.
    """
    from multiprocessing.reduction import send_handle

    for w in range(count):
        ours, theirs = socket.socketpair()
        pid = os.fork()
        if pid == 0:
            try:
                _child_setup()
                ours.close()
                conn.close()  # the engine's pipe to the loader: only the loader uses it
                for fd in close_fds:  # the runner's pipe to its loader: its EOF says the runner ended
                    os.close(fd)
                worker_loop(multiprocessing.connection.Connection(theirs.detach()), spec, w)
            finally:
                os._exit(0)
        theirs.close()
        send(conn, WorkerStarted(w, pid))
        send_handle(conn, ours.fileno(), 0)
        ours.close()


def spawner_loop(conn, spec, close_fds=(), pgid=None, set_epoch=None) -> None:
    """Body of a spawner: a process forked from the training loop's thread when an epoch starts.

    It holds the dataset as it is at that moment (what torch's freshly forked workers see) and forks
    that epoch's torch workers from it on request (:class:`Spawn`), then waits for :class:`Exit`. Before
    forking it runs the loop's ``set_epoch`` for the epoch on its own copy of the samplers: a sampler's
    ``set_epoch`` that also changes the dataset (``self.dataset.epoch = epoch``) is seen by the workers, as
    torch's loop calls it before forking them.
    """
    join_group(pgid)
    _child_setup()
    for c in close_fds:
        c.close()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    send(conn, ProcessUp(os.getpid()))  # past the fork: see Engine._refresh_spawner
    while True:
        try:
            msg = recv(conn)
        except (EOFError, OSError):
            os._exit(0)
        if isinstance(msg, Spawn):
            if msg.epoch is not None and set_epoch is not None:
                try:
                    set_epoch(msg.epoch)
                except Exception:
                    pass  # the loader process runs the same call and reports its error
            spawn_workers(conn, spec, msg.n_workers)
        else:
            os._exit(0)


def format_worker_death(pid: int, where: str) -> str:
    return f"DataLoader worker (pid {pid}) exited unexpectedly while producing {where}"
