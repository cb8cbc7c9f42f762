"""``get_worker_info()`` inside MindSpore workers, as torch's ``get_worker_info`` works in its workers."""

from __future__ import annotations

import sys

from adapters.torch_data._worker_seeding import WorkerInfo

__all__ = ["get_worker_info", "set_worker_info"]

_current: WorkerInfo | None = None
_torch_synced = False  # torch's _worker_info reflects _current


def get_worker_info() -> WorkerInfo | None:
    """Return the current (virtual) worker's info, or ``None`` in the main process / num_workers=0.

    Inside a pipeline made by :func:`adapters.to_mindspore` this reports the torch worker that
    would have produced the current batch (``id``, ``num_workers``, ``seed``, ``dataset``).
    ``torch.utils.data.get_worker_info()`` reports the same when torch is imported.

    Example:
        >>> get_worker_info() is None  # not inside a worker
        True
    """
    return _current


def set_worker_info(info: WorkerInfo | None) -> None:
    """Make ``info`` what both ``adapters.get_worker_info`` and torch's ``get_worker_info`` return."""
    global _current, _torch_synced
    torch = sys.modules.get("torch")
    if info is _current and (_torch_synced or torch is None):
        return  # called around every batch: nothing to rebuild when the worker did not change
    _current = info
    _torch_synced = False
    if torch is not None:
        from torch.utils.data._utils import worker as torch_worker

        torch_worker._worker_info = (
            None
            if info is None
            else torch_worker.WorkerInfo(id=info.id, num_workers=info.num_workers, seed=info.seed, dataset=info.dataset)
        )
        _torch_synced = True
