"""Carry an exception raised in a MindSpore worker back to the user with its original type.

MindSpore turns any error in a source into ``RuntimeError`` whose text holds the traceback. We
raise, inside the source, an error whose message carries the original exception pickled, and
the iterator ``to_mindspore`` returns unpacks it: the user sees the original type and message,
with notes saying which sample, batch, epoch and worker it came from.
"""

from __future__ import annotations

import base64
import pickle
import re
import traceback

__all__ = ["SourceError", "WorkerError", "wrap_exception", "unwrap_exception"]

_MARK = "<<torch2ms-exception:"
_FIND = re.compile(re.escape(_MARK) + r"([A-Za-z0-9+/=]+)>>")


class SourceError(RuntimeError):
    """Raised inside the MindSpore source; carries the original exception (pickled) in its text."""


class WorkerError(RuntimeError):
    """An error from a MindSpore worker whose original exception could not be recovered."""


def wrap_exception(exc: BaseException, where: str) -> SourceError:
    """Annotate ``exc`` with ``where`` and pack it into a :class:`SourceError` to raise in the source."""
    exc.add_note(f"Raised by {where} (re-raised from a MindSpore pipeline by adapters.to_mindspore).")
    tb = "".join(traceback.format_exception(exc))
    exc.add_note("Traceback in the worker:\n" + tb.rstrip())
    try:
        payload = base64.b64encode(pickle.dumps(exc)).decode("ascii")
        tail = f" {_MARK}{payload}>>"
    except Exception:  # unpicklable exception: the text (with the traceback) still reaches the user
        tail = ""
    # MindSpore keeps only the text from the last "Traceback" on, so the payload goes last.
    return SourceError(f"{type(exc).__name__}: {exc} [{where}]\n{tb}{tail}")


def unwrap_exception(err: BaseException) -> BaseException | None:
    """Return the original exception packed in ``err``'s text by :func:`wrap_exception`, if any."""
    match = _FIND.search(str(err))
    if match is None:
        return None
    try:
        return pickle.loads(base64.b64decode(match.group(1)))
    except Exception:
        return WorkerError(str(err).split(_MARK)[0])
