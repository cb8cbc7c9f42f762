"""Errors of user code in the pipeline reach the caller with their original type, never through text.

An exception raised in a torch worker or the loader process (``__getitem__``, ``collate_fn``, a
sampler, ``worker_init_fn``) is wrapped in a :class:`SourceError` that holds the exception object
itself, annotated with notes saying which sample, batch, epoch and worker it came from. It crosses
the pipeline's own pipes as an object. MindSpore turns whatever the source raises into a
``RuntimeError`` holding only text: the engine keeps the :class:`SourceError` it raised, under a
random token that the text carries, and the iterator asks the engine for it by that token. The text
is never parsed into an object, so an error message made of data (a file name, a label string) can
forge nothing: at worst it names a token the engine does not hold.

An exception that cannot cross a process boundary (an unpicklable class, or one whose ``__init__``
cannot be called again with its ``args``) is rebuilt in the caller from its type and message where
the type is loaded there, else it becomes a :class:`WorkerError` whose first line is still
``"<type>: <message>"``.
"""

from __future__ import annotations

import dataclasses
import pickle
import re
import secrets
import sys
import traceback

__all__ = ["SourceError", "WorkerError", "wrap_exception", "original_exception", "TOKEN_PATTERN"]

TOKEN_PATTERN = re.compile(r"<torch2ms-error ([0-9a-f]{32})>")


class WorkerError(RuntimeError):
    """A process of the pipeline died, or an error from it could not be rebuilt with its own type."""


@dataclasses.dataclass
class _Described:
    """What is left of an exception that cannot be pickled: its type's location, message and notes."""

    module: str
    qualname: str
    message: str
    notes: list

    def rebuild(self) -> BaseException:
        cls = _loaded_class(self.module, self.qualname)
        exc: BaseException | None = None
        if cls is not None:
            try:
                exc = cls(self.message)
            except Exception:
                exc = None
        if exc is None:
            name = self.qualname if self.module == "builtins" else f"{self.module}.{self.qualname}"
            exc = WorkerError(f"{name}: {self.message}")
            exc.add_note(f"(the original {name} could not be rebuilt in this process)")
        for note in self.notes:
            exc.add_note(note)
        return exc


def _loaded_class(module: str, qualname: str) -> type | None:
    """The exception class, if its module is already loaded here (nothing is imported)."""
    obj = sys.modules.get(module)
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    return obj if isinstance(obj, type) and issubclass(obj, BaseException) else None


def _portable(exc: BaseException):
    """``exc`` itself if it survives a pickle round trip (checked here, where its class lives), else its description."""
    try:
        back = pickle.loads(pickle.dumps(exc))
        if type(back) is type(exc):
            return exc
    except Exception:
        pass
    return _Described(type(exc).__module__, type(exc).__qualname__, str(exc), list(getattr(exc, "__notes__", [])))


def _rebuild_source_error(original, where: str, token: str) -> SourceError:
    err = SourceError.__new__(SourceError)
    err._init(original, where, token)
    return err


class SourceError(RuntimeError):
    """Raised where user code in the pipeline failed; :attr:`original` is the exception it raised.

    Attributes:
        original: the exception object (or, after crossing processes, its description if it could not be pickled).
        where: what the pipeline was doing (sample index, batch, epoch, worker).
        token: random; the text MindSpore keeps carries it, so the engine finds this error again.
    """

    def __init__(self, original: BaseException, where: str) -> None:
        self._init(original, where, secrets.token_hex(16))

    def _init(self, original, where: str, token: str) -> None:
        self.original, self.where, self.token = original, where, token
        if isinstance(original, _Described):
            head = f"{original.qualname}: {original.message}"
        else:
            head = f"{type(original).__name__}: {original}"
        RuntimeError.__init__(self, f"{head} [{where}] <torch2ms-error {token}>")

    def __reduce__(self):
        return (_rebuild_source_error, (_portable(self.original), self.where, self.token))

    def exception(self) -> BaseException:
        """The original exception, rebuilt if it had to cross processes as a description."""
        return self.original.rebuild() if isinstance(self.original, _Described) else self.original


def wrap_exception(exc: BaseException, where: str) -> SourceError:
    """Annotate ``exc`` with ``where`` and its traceback, and wrap it to raise in the pipeline."""
    if isinstance(exc, SourceError):
        return exc
    exc.add_note(f"Raised by {where} (re-raised from a MindSpore pipeline by adapters.to_mindspore).")
    tb = "".join(traceback.format_exception(exc))
    exc.add_note("Traceback in the pipeline's process:\n" + tb.rstrip())
    return SourceError(exc, where)


def original_exception(err: BaseException, errors: dict) -> BaseException | None:
    """The original exception for an error MindSpore re-raised: found by the tokens its text carries in ``errors``.

    ``errors`` maps tokens to the :class:`SourceError` objects the engine raised into MindSpore; a token
    found there is removed. Returns ``None`` when the text names none of them (not an error of this pipeline).

    Example:
        >>> e = SourceError(KeyError("k"), "dataset[3]")
        >>> type(original_exception(RuntimeError(f"MindSpore says: {e}"), {e.token: e})).__name__
        'KeyError'
        >>> original_exception(RuntimeError("<torch2ms-error " + "0" * 32 + ">"), {}) is None
        True
    """
    for token in TOKEN_PATTERN.findall(str(err)):
        source = errors.pop(token, None)
        if source is not None:
            return source.exception()
    return None
