"""Turn MindSpore's reaction to a dead worker process into an exception that names the batch.

When a MindSpore worker process dies (segfault, ``os._exit``, OOM kill), MindSpore's SIGCHLD
handler sends SIGTERM to the main process, which then dies with exit code 143 — nothing the
user can catch, and no word about which sample was being loaded. Worse, if the main process
survives the signal, its iterator waits forever for the dead worker's result.

While one of our iterators is being advanced in the main thread we catch that SIGTERM: the C
level signal handler writes to a wake-up socket, a watchdog thread reads it and terminates the
MindSpore pipeline (which unblocks the main thread), and the Python-level handler then raises
:class:`WorkerError`. Each worker process records, in shared memory, the batch it is producing,
so the error can say which one it was.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import signal
import socket
import threading

from adapters._errors import WorkerError

__all__ = ["DeathWatch"]

_SLOT = 256


class DeathWatch:
    """Shared slots (one per MindSpore worker process) holding what each process is producing."""

    def __init__(self, processes: int):
        self._processes = processes
        # Anonymous shared memory, created before MindSpore forks its workers.
        self._slots = multiprocessing.Array(ctypes.c_char, processes * _SLOT, lock=False)
        self._wake: tuple[socket.socket, socket.socket] | None = None
        self._terminate = None  # what the watchdog calls to unblock the main thread

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_wake"] = state["_terminate"] = None
        return state

    def record(self, process: int, where: str) -> None:
        data = where.encode("utf-8", "replace")[: _SLOT - 1].ljust(_SLOT, b"\0")
        start = process * _SLOT
        self._slots[start : start + _SLOT] = data

    def last_seen(self) -> list[str]:
        out = []
        for p in range(self._processes):
            raw = bytes(self._slots[p * _SLOT : (p + 1) * _SLOT]).split(b"\0", 1)[0]
            if raw:
                out.append(f"process {p}: {raw.decode('utf-8', 'replace')}")
        return out

    def _watchdog(self, sock: socket.socket) -> None:
        while True:
            try:
                data = sock.recv(64)
            except OSError:
                return
            if not data:
                return
            if signal.SIGTERM in data and self._terminate is not None:
                terminate, self._terminate = self._terminate, None
                terminate()

    def _ensure_watchdog(self) -> socket.socket:
        if self._wake is None:
            reader, writer = socket.socketpair()
            writer.setblocking(False)
            self._wake = (reader, writer)
            threading.Thread(target=self._watchdog, args=(reader,), daemon=True, name="torch2ms-deathwatch").start()
        return self._wake[1]

    @contextlib.contextmanager
    def armed(self, terminate):
        """While active (main thread only), a SIGTERM ends the pipeline and raises WorkerError.

        Args:
            terminate: stops the MindSpore pipeline, so a main thread blocked on it wakes up.
        """
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        writer = self._ensure_watchdog()

        def on_sigterm(signum, frame):
            raise WorkerError(
                "a MindSpore worker process exited unexpectedly (MindSpore then terminates the main process; "
                "adapters.to_mindspore turned that into this error). Last work seen per worker process: "
                + ("; ".join(self.last_seen()) or "none recorded")
            )

        self._terminate = terminate
        previous_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        previous = signal.signal(signal.SIGTERM, on_sigterm)
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, previous)
            signal.set_wakeup_fd(previous_fd)
            self._terminate = None
