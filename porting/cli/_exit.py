"""The exit status of every ``torch2ms`` command: one table, one meaning per number."""

from __future__ import annotations

import enum

__all__ = ["ExitCode"]


class ExitCode(enum.IntEnum):
    """What a ``torch2ms`` command's exit status means (the same for every sub-command).

    Example:
        >>> int(ExitCode.MISMATCH), ExitCode(2).name
        (1, 'USAGE')
    """

    OK = 0
    """Everything compared matched (at least one thing was compared)."""
    MISMATCH = 1
    """A difference was found (the first one is named)."""
    USAGE = 2
    """Bad invocation or bad input: module, factory, options, files; one line says which."""
    NOT_REPRODUCIBLE = 3
    """``check``: two torch runs with the same seeds differ, so no port can be judged."""
    LOADER_ERROR = 4
    """``check``: the loader raised (its first line names side, epoch, batch, sample index and worker)."""
    INTERNAL_ERROR = 70
    """A defect in ``torch2ms`` itself (an unexpected exception, traceback printed): never read as a verdict.
    Python's own status for an uncaught exception is 1, which here means "mismatch"; 70 is sysexits' EX_SOFTWARE."""
