"""Ctrl-C while the loop waits in MindSpore's ``next()``: let the pipeline's source see it.

MindSpore's ``next()`` waits in C++ with the GIL released; Python runs its SIGINT handler only
when that call returns, which is never if a torch worker is stuck in ``__getitem__``. The source
generator (in MindSpore's own thread) is waiting on the pipeline's processes meanwhile, polling.
While the loop's thread is inside ``next()`` — and only then — :func:`armed` points Python's
signal wake-up file descriptor (``signal.set_wakeup_fd``: the C-level handler writes the signal's
number there; no handler is installed or changed) at a pipe of this module; the source's poll
loops read it (:func:`sigint_received`) and end the epoch, MindSpore's ``next()`` returns, and the
caller's own SIGINT handler raises ``KeyboardInterrupt`` in the loop's thread as usual. The previous
wake-up fd is put back before ``next()`` returns.

It is armed only where that cannot change what the caller sees: in the main thread, when SIGINT's
handler is Python's default one (it raises ``KeyboardInterrupt``: the loop is over anyway) and no
wake-up fd is in use (asyncio's, say). This covers only a ``next()`` that waits inside MindSpore: the
first row of an epoch, and iterators of pipelines that do not count rows (``batch``, ...). Within an
epoch an iterator waits for its row in Python (``Engine.wait_for_row``), where every signal handler —
yours included — runs at once, as under torch.
"""

from __future__ import annotations

import _signal  # signal's C functions: signal.getsignal wraps its answer in an enum lookup (2 µs a row)
import fcntl
import os
import signal
import struct
import termios
import threading

__all__ = ["armed", "disarm", "sigint_received", "tripped", "deliver_pending_interrupt"]

_PIPE: tuple[int, int] | None = None
_LOCK = threading.Lock()
_ARMED = False
_TRIPPED = False
_SIGINT_NUM = int(signal.SIGINT)
_SIGINT = bytes([_SIGINT_NUM])
_DEFAULT_HANDLER = signal.default_int_handler
_INT = struct.Struct("i")
_MAIN = threading.main_thread().ident
_get_ident = threading.get_ident
_getsignal = _signal.getsignal
_set_wakeup_fd = _signal.set_wakeup_fd


def _pipe() -> tuple[int, int]:
    global _PIPE
    with _LOCK:
        if _PIPE is None:
            r, w = os.pipe()  # not inheritable; one per process, for its lifetime
            os.set_blocking(r, False)
            os.set_blocking(w, False)
            _PIPE = (r, w)
        return _PIPE


def _drain() -> bytes:
    """What the pipe holds (one ioctl when it is empty: this runs for every row)."""
    assert _PIPE is not None  # (called only when armed, or after checking: the pipe was made by then)
    r = _PIPE[0]
    waiting = _INT.unpack(fcntl.ioctl(r, termios.FIONREAD, b"\0\0\0\0"))[0]
    if not waiting:
        return b""
    try:
        return os.read(r, max(waiting, 512))
    except (BlockingIOError, InterruptedError):
        return b""


class _Armed:
    __slots__ = ("active",)

    def __enter__(self):
        global _ARMED, _TRIPPED
        self.active = False
        if _ARMED or _get_ident() != _MAIN or _getsignal(_SIGINT_NUM) is not _DEFAULT_HANDLER:
            return self
        w = (_PIPE or _pipe())[1]
        try:
            old = _set_wakeup_fd(w, warn_on_full_buffer=False)
        except (ValueError, OSError):
            return self
        if old != -1:  # someone else's (asyncio's): leave it alone
            _set_wakeup_fd(old)
            return self
        _TRIPPED = False
        _ARMED = self.active = True
        return self

    def __exit__(self, *exc) -> None:
        if self.active:
            disarm()


def armed() -> _Armed:
    """While active (around MindSpore's ``next()``), a SIGINT is visible to :func:`sigint_received`."""
    return _Armed()


def disarm(drain: bool = False) -> None:
    """Put the caller's (absent) wake-up fd back; idempotent.

    Called when leaving :func:`armed`, and again, with ``drain``, by the iterator when a
    KeyboardInterrupt was raised (it may land between two steps of the first call). A SIGINT's byte
    is written only while armed, and its KeyboardInterrupt is raised before the iterator's
    ``next()`` returns (the interpreter runs the handler at its next check, still inside it), so
    draining there leaves no stale byte; other signals' bytes are ignored.
    """
    global _ARMED
    _ARMED = False
    if _PIPE is None or _get_ident() != _MAIN:
        return
    current = _set_wakeup_fd(-1)
    if current != -1 and current != _PIPE[1]:
        _set_wakeup_fd(current)  # not ours: keep it
    if drain:
        _drain()


def sigint_received() -> bool:
    """Whether a SIGINT arrived while the loop's thread is waiting in an armed ``next()`` (any thread)."""
    global _TRIPPED
    if not _ARMED:
        return False
    if not _TRIPPED and _SIGINT in _drain():
        _TRIPPED = True
    return _TRIPPED and _ARMED


def tripped() -> bool:
    """Whether the last armed ``next()`` saw a SIGINT (read in the loop's thread after it returned)."""
    return _TRIPPED


def deliver_pending_interrupt() -> None:
    """Raise the ``KeyboardInterrupt`` of a SIGINT whose handler has not run yet.

    The handler runs at the interpreter's next check for pending calls (a backward jump, here); if it
    somehow already ran, the interrupt is raised directly.
    """
    global _TRIPPED
    _TRIPPED = False
    for _ in range(10000):
        pass
    raise KeyboardInterrupt
