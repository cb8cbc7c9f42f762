"""Processes the pipeline owns: where user code (samplers, datasets, collate, worker_init_fn) runs.

Nothing of the caller's process is touched: its random streams, its dataset and sampler objects,
its ``get_worker_info()`` and its signal handlers stay as they were. Two kinds of process:

* a **torch worker** (``worker_loop``), one process per torch worker, forked from the caller when
  torch would start it (each epoch, or once with persistent workers): its own copy of the dataset
  (fork, as torch's workers get theirs), streams seeded from ``base_seed + id``, ``WorkerInfo`` and
  ``worker_init_fn``, then torch's fetcher for each task it is sent;
* the **loader process** (``loader_loop``), torch's main-process side, forked once when
  ``to_mindspore`` is called: it owns a snapshot of the sampler, the generator and the global
  streams (and, for ``num_workers=0``, runs the whole single-process loop). For each epoch it forks a
  runner that plays the epoch ahead; once the consumer's position is known the runner either becomes
  the loader (the epoch was consumed as played) or is dropped, and the loader replays exactly as much
  of the epoch as torch would have drawn (a partial epoch).

All of them live in one process group of their own, led by a **guardian** (``start_guardian``): a
tiny process that waits for the caller to close the pipeline or to die (the end of a pipe only the
caller holds) and then, after a short grace, kills the whole group — a torch worker stuck in
``__getitem__`` included. The caller's own process group is never changed.
"""

from __future__ import annotations

import collections
import gc
import os
import pickle
import random
import multiprocessing.connection
import signal
import socket
import sys
import time

from adapters.engine._errors import WorkerError, wrap_exception
from adapters.torch_data._worker_seeding import draw_base_seed
from adapters.engine._fetch import collate, fetch_iterable, fetch_map
from adapters.torch_data._rng_streams import seed_streams_like_torch_worker
from adapters.torch_data._worker_info import set_worker_info
from adapters.torch_data._worker_seeding import WorkerInfo
from adapters.engine._transport import adopt, numpy_tree, recv, reset, send

__all__ = [
    "worker_loop", "loader_loop", "EpochRunner", "start_guardian", "join_group", "close_lifeline",
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


def _error(exc: BaseException, where: str):
    return ("error", wrap_exception(exc, where))


def _count(spec, items) -> int | None:
    """Samples in a batch (what a custom collate's per-sample lists are as long as)."""
    return len(items) if spec.auto_collation else None


def _fetch_and_collate(spec, index, where: str):
    data = fetch_map(spec.dataset, index, spec.auto_collation, where)
    return numpy_tree(collate(spec.collate_fn, data, where))


# ----------------------------------------------------------------------------------- torch worker


def worker_loop(conn, spec, worker_id: int) -> None:
    """Body of one torch worker process.

    Messages in: ``("begin", epoch, base_seed, restart)``, ``("task", k, index, where)`` (map-style),
    ``("next", k, where)`` (iterable), ``("exit",)``. Out: ``("batch", k, batch)``, ``("end", k)``
    (iterable shard exhausted), ``("error", SourceError)``.
    """
    n = spec.num_workers
    ds_iter = None
    epoch = None
    while True:
        try:
            msg = recv(conn)
        except (EOFError, OSError):
            return
        op = msg[0]
        try:
            if op == "begin":
                _, epoch, base_seed, restart = msg
                if restart:
                    seed = seed_streams_like_torch_worker(base_seed, worker_id)
                    set_worker_info(WorkerInfo(id=worker_id, num_workers=n, seed=seed, dataset=spec.dataset))
                    if spec.worker_init_fn is not None:
                        try:
                            spec.worker_init_fn(worker_id)
                        except Exception as exc:
                            send(conn, _error(exc, f"worker_init_fn({worker_id}) in torch worker {worker_id} of {n}, epoch {epoch}"))
                            continue
                if spec.kind == "iterable":
                    try:
                        ds_iter = iter(spec.dataset)  # a new fetcher every epoch, as torch's workers
                    except Exception as exc:
                        send(conn, _error(exc, f"iter(dataset) in torch worker {worker_id} of {n}, epoch {epoch}"))
                        continue
                send(conn, ("ready", worker_id))
            elif op == "task":
                _, k, index, where = msg
                try:
                    batch = _fetch_and_collate(spec, index, where)
                except Exception as exc:
                    send(conn, ("error", exc if type(exc).__name__ == "SourceError" else wrap_exception(exc, where)))
                    continue
                send(conn, ("batch", k, batch, _count(spec, index)))
            elif op == "next":
                _, k, where = msg
                try:
                    data = fetch_iterable(ds_iter, spec.iterable_index, spec.auto_collation, spec.drop_last, where)
                except StopIteration:
                    send(conn, ("end", k))
                    continue
                except Exception as exc:
                    send(conn, ("error", exc if type(exc).__name__ == "SourceError" else wrap_exception(exc, where)))
                    continue
                try:
                    batch = numpy_tree(collate(spec.collate_fn, data, where))
                except Exception as exc:
                    send(conn, ("error", exc if type(exc).__name__ == "SourceError" else wrap_exception(exc, where)))
                    continue
                send(conn, ("batch", k, batch, _count(spec, data)))
            elif op == "exit":
                return
        except (BrokenPipeError, EOFError, OSError):
            return
        except Exception as exc:  # a batch that cannot be sent (unpicklable leaf, ...)
            try:
                send(conn, _error(exc, f"sending batch from torch worker {worker_id} of {n}, epoch {epoch}"))
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
        self._it = None  # the index iterator of the running epoch / pass
        self._ds_iter = None  # num_workers=0, IterableDataset

    def start(self, epoch: int) -> int:
        """Begin ``epoch`` as ``iter(loader)`` would; return the base seed in force."""

        before, after = self.schedule.iter_calls(epoch)
        self.drawn, self.exhausted = 0, False
        if before or after:
            self.set_epoch(self._sampler_epoch(epoch))
        if before:
            self._it = iter(self.spec.index_sampler)
        if self.schedule.draws_base_seed(epoch):
            self.base_seed = draw_base_seed(self.spec.generator, self.spec.backend)
        if after:
            self._it = iter(self.spec.index_sampler)
        if self.spec.num_workers == 0 and self.spec.kind == "iterable" and (before or after):
            self._ds_iter = iter(self.spec.dataset)
        return self.base_seed

    def next_index(self):
        """The next index batch (``StopIteration`` at the end of the sampler)."""
        self.drawn += 1
        try:
            return next(self._it)
        except StopIteration:
            self.exhausted = True
            raise

    def draw(self, count: int | None) -> list:
        """Up to ``count`` more index batches (all that are left when ``None``)."""
        out = []
        while not self.exhausted and (count is None or len(out) < count):
            try:
                out.append(self.next_index())
            except StopIteration:
                break
        return out

    def settle(self, target: int, finished: bool) -> bool:
        """Advance to where torch's iterator is (``target`` draws, or the end); False if already past it."""
        if finished:
            target = float("inf")
        if self.drawn > target:
            return False
        while self.drawn < target and not self.exhausted:
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
    sends ``("credit", nbytes)`` for what it took off the pipe — when half a window has come
    together, and whenever it is about to wait for the loader — so credits can arrive at any point:
    every read counts them and skips them.
    """

    def __init__(self, conn) -> None:
        self.conn = conn
        self.room = 0  # bytes the loader may still send before it waits for a credit
        self._pending: collections.deque = collections.deque()

    def _read(self) -> None:
        msg = recv(self.conn)
        if msg[0] == "credit":
            self.room += msg[1]
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


def _serve_epoch(ctl: Control, runner: EpochRunner, msg) -> None:
    """Play one epoch ahead, sending what the engine asked for.

    ``("epoch", e, what, count)`` starts epoch ``e`` as ``iter(loader)`` would; ``("more", ...)``
    continues the running iterator (``steps_per_epoch``). In ``"stream"`` mode a message from the
    engine arriving between two batches (its verdict on an epoch left early) stops the stream.
    """
    conn = ctl.conn
    op, epoch, what, count = msg
    try:
        base_seed = runner.start(epoch) if op == "epoch" else runner.base_seed
        if what == "seed":  # workers fetch (IterableDataset / map-style): only the seed and indices
            send(conn, ("seed", epoch, base_seed))
        elif what == "lazyplan":  # the first index batches now, more on request (("chunk", n))
            batches = runner.draw(count)
            send(conn, ("plan", epoch, base_seed, batches, runner.exhausted))
        elif what == "plan":
            batches = []
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
            send(conn, ("plan", epoch, base_seed, batches))
        elif what == "stream":  # num_workers == 0: the whole single-process loop
            k = 0
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
                ctl.room -= send(conn, ("batch", k, batch, samples))
                k += 1
                if ctl.message_waiting():
                    break  # the engine gave its verdict early: the consumer left this epoch
            send(conn, ("end", k))
    except (BrokenPipeError, EOFError):
        raise
    except Exception as exc:
        err = exc if type(exc).__name__ == "SourceError" else wrap_exception(exc, f"epoch {epoch}, main process")
        send(conn, ("error", err))


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


def loader_loop(conn, runner: EpochRunner, close_fds=(), python_state=None, pgid=None) -> None:
    """Body of the loader process (see the module docstring).

    Messages in: ``("epoch", e, what, count)`` — play epoch ``e`` in a runner (``what``: ``"plan"``
    index batches, ``"seed"`` only the base seed, ``"stream"`` whole batches); ``("more", e, "more",
    count)`` — continuous modes, more index batches from the same iterator; ``("commit",)`` /
    ``("rewind", dispatched)`` — the verdict on the runner's epoch; ``("exit",)``.
    """
    join_group(pgid)
    _child_setup()
    for c in close_fds:
        c.close()
    if python_state is not None:
        random.setstate(python_state)  # python's random reseeds itself in a forked child
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # workers forked here are reaped automatically
    ctl = Control(conn)
    while True:
        try:
            msg = ctl.recv()
        except (EOFError, OSError):
            os._exit(0)
        op = msg[0]
        if op == "exit":
            os._exit(0)
        if op == "spawn":
            spawn_workers(conn, runner.spec, msg[1])
            continue
        if op == "more":
            try:
                _serve_epoch(ctl, runner, msg)
            except (BrokenPipeError, EOFError, OSError):
                os._exit(0)
            continue
        if op != "epoch":
            continue
        if runner.schedule.mode != "epochs":
            # One torch iterator over all epochs: nothing to rewind, play in place.
            try:
                _serve_epoch(ctl, runner, msg)
            except (BrokenPipeError, EOFError, OSError):
                os._exit(0)
            continue
        read_fd, write_fd = os.pipe()
        python_state = random.getstate()
        pid = os.fork()
        if pid == 0:  # the runner: play the epoch, then wait for the verdict
            gc.freeze()
            random.setstate(python_state)
            os.close(read_fd)
            adopt(conn)  # it sends on the pipe now, into the loader's shared-memory files
            try:
                _serve_epoch(ctl, runner, msg)
                verdict = ctl.recv()
                while verdict[0] in ("spawn", "chunk"):
                    if verdict[0] == "spawn":
                        spawn_workers(conn, runner.spec, verdict[1], (write_fd,))
                    else:
                        send(conn, ("chunk", runner.draw(verdict[1]), runner.exhausted))
                    verdict = ctl.recv()
                if verdict[0] == "settle":
                    # Where the consumer stopped, torch's sampler had been drawn ``target`` times:
                    # this runner carries on as the loader if it can get exactly there.
                    _, target, finished = verdict
                    if msg[2] == "seed":  # IterableDataset with workers: its sampler draws nothing
                        exact = True
                    elif msg[2] == "stream":
                        exact = finished or runner.drawn == target
                    else:
                        exact = runner.settle(target, finished)
                    verdict = ("commit",) if exact else ("rewind", target)
            except (BrokenPipeError, EOFError, OSError):
                os._exit(0)
            except Exception as exc:  # a sampler raising while settling
                send(conn, ("error", wrap_exception(exc, f"settling epoch {msg[1]} in the loader process")))
                verdict = ("rewind", 0)
            if verdict[0] == "commit":
                os.write(write_fd, b"C")
                os.close(write_fd)
                send(conn, ("committed",))
                continue  # this process is the loader now
            os.write(write_fd, pickle.dumps(verdict))
            os._exit(0)
        os.close(write_fd)
        chunks = []
        while True:
            chunk = os.read(read_fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
        os.close(read_fd)
        data = b"".join(chunks)
        if data == b"C":
            os._exit(0)  # the runner carries on as the loader
        reset(conn)  # the runner wrote into this process's shared-memory files: the engine may hold any
        if data:
            verdict = pickle.loads(data)
            if verdict[0] != "rewind":
                os._exit(0)  # ("exit",): the pipeline is shutting down
            try:
                _replay(runner, msg[1], msg[2], verdict[1])
                send(conn, ("rewound",))
            except (BrokenPipeError, EOFError, OSError):
                os._exit(0)
            except Exception as exc:
                send(conn, ("error", wrap_exception(exc, f"replaying epoch {msg[1]} in the loader process")))
            continue
        # The runner died before a verdict (killed, segfault in user code).
        try:
            send(conn, ("error", WorkerError(f"the loader process running epoch {msg[1]} (pid {pid}) died")))
        except Exception:
            os._exit(0)


def spawn_workers(conn, spec, count: int, close_fds=()) -> None:
    """Fork ``count`` torch workers from this (single-threaded) loader process; hand their pipes over.

    Forking here, not in the caller: the caller runs MindSpore's threads, and a process forked from
    one of them loses every other thread's frames, running finalizers of the caller's objects (a
    torch DataLoader iterator's ``__del__`` stops *its* workers) in the child.
    For each worker the engine gets ``("worker", id, pid)`` and then the pipe's file descriptor.
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
        send(conn, ("worker", w, pid))
        send_handle(conn, ours.fileno(), 0)
        ours.close()


def spawner_loop(conn, spec, close_fds=(), pgid=None) -> None:
    """Body of a spawner: a process forked from the training loop's thread when an epoch starts.

    It holds the dataset as it is at that moment (what torch's freshly forked workers see) and forks
    that epoch's torch workers from it on request (``("spawn", n)``), then waits for ``("exit",)``.
    """
    join_group(pgid)
    _child_setup()
    for c in close_fds:
        c.close()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    while True:
        try:
            msg = recv(conn)
        except (EOFError, OSError):
            os._exit(0)
        if msg[0] == "spawn":
            spawn_workers(conn, spec, msg[1])
        else:
            os._exit(0)


def format_worker_death(pid: int, where: str) -> str:
    return f"DataLoader worker (pid {pid}) exited unexpectedly while producing {where}"

