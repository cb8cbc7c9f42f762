"""Small helpers shared by the benchmark scripts: seeding, batch conversion, digests, memory, timing, tables."""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["seed_all", "to_numpy_tree", "batch_digest", "tree_memory", "best_time", "print_table"]


def seed_all(seed: int) -> None:
    """Seed python ``random``, numpy's global RandomState and torch's default generator (if importable).

    Example:
        >>> seed_all(0)
    """
    random.seed(seed)
    np.random.seed(seed)
    import torch

    torch.manual_seed(seed)


def to_numpy_tree(obj: Any) -> Any:
    """A torch batch with numpy leaves (zero-copy ``Tensor.numpy()``); other leaves unchanged.

    Example:
        >>> to_numpy_tree((np.zeros(1), [1]))
        (array([0.]), [1])
    """
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.numpy()
    if isinstance(obj, dict):
        return {k: to_numpy_tree(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_numpy_tree(v) for v in obj)
    return obj


def batch_digest(batch: Any) -> str:
    """sha256 over every leaf's dtype, shape and bytes, in tree order: equal digests ⇔ identical batches.

    Example:
        >>> batch_digest((np.zeros(2),)) == batch_digest((np.zeros(2),))
        True
    """
    h = hashlib.sha256()

    def walk(x: Any) -> None:
        if isinstance(x, dict):
            for k in x:
                h.update(repr(k).encode())
                walk(x[k])
        elif isinstance(x, (list, tuple)):
            h.update(f"{type(x).__name__}{len(x)}".encode())
            for v in x:
                walk(v)
        else:
            a = np.asarray(x)
            h.update(f"{a.dtype.str}{a.shape}".encode())
            h.update(np.ascontiguousarray(a).tobytes())

    walk(batch)
    return h.hexdigest()


def tree_memory(pid: int | None = None) -> tuple[int, int, int, int]:
    """(RSS, PSS, USS, process count) summed over a process and all its descendants, in bytes.

    RSS counts shared pages once per process (it overstates forked workers, and grows as shared pages
    such as shared-memory queues get touched); PSS splits shared pages between their users; USS is
    each process's private memory only (what a leak would grow). Processes that exit while being read
    are skipped.
    """
    import psutil

    root = psutil.Process(pid)
    rss = pss = uss = count = 0
    for proc in [root, *root.children(recursive=True)]:
        try:
            info = proc.memory_full_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        rss += info.rss
        pss += getattr(info, "pss", info.rss)
        uss += getattr(info, "uss", info.rss)
        count += 1
    return rss, pss, uss, count


def best_time(fn: Callable[[], Any], repeat: int) -> float:
    """The fastest of ``repeat`` calls of ``fn``, in seconds (``perf_counter``; the least-disturbed run).

    Example:
        >>> best_time(lambda: None, 3) < 1.0
        True
    """
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print a left-aligned first column and right-aligned others, widths fitted to the content."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for n, r in enumerate(cells):
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))))
        if n == 0:
            print("  ".join("-" * w for w in widths))
