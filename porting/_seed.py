"""``seed_everything``: seed every random stream a ported training run draws from, and say which."""

from __future__ import annotations

import dataclasses
import importlib
import os
import random
from typing import Callable, Any

import numpy as np

__all__ = ["SeedReport", "seed_everything"]

_MAX_SEED = 2**32 - 1  # numpy's legacy seeding and mindspore.set_seed both refuse larger seeds


@dataclasses.dataclass
class SeedReport:
    """What :func:`seed_everything` did.

    Attributes:
        seed: the seed given.
        seeded: stream name → the value it was seeded with (or the setting made).
        skipped: stream name → why it was not seeded.
        notes: things the caller should know (e.g. PYTHONHASHSEED only reaches child processes).
    """

    seed: int
    seeded: dict[str, Any] = dataclasses.field(default_factory=dict)
    skipped: dict[str, str] = dataclasses.field(default_factory=dict)
    notes: list[str] = dataclasses.field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"seed_everything({self.seed})"]
        lines += [f"  seeded  {k}: {v}" for k, v in self.seeded.items()]
        lines += [f"  skipped {k}: {v}" for k, v in self.skipped.items()]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _optional(name: str):
    """Import ``name`` or return the reason it cannot be imported."""
    try:
        return importlib.import_module(name), None
    except ImportError as exc:  # not installed, or blocked on purpose
        return None, f"{name} is not importable ({exc.__class__.__name__}: {exc})"


def _seed_mindspore(seed: int, deterministic: bool, report: SeedReport) -> None:
    ms, why = _optional("mindspore")
    if ms is None:
        report.skipped["mindspore"] = why
        report.skipped["mindspore.dataset"] = why
        return
    # Seeds MindSpore's initialisers/ops and also numpy's global RNG (re-seeded below on purpose).
    ms.set_seed(seed)
    report.seeded["mindspore"] = seed
    import mindspore.dataset as msds

    # Also re-seeds python `random` and numpy in this process; they are re-seeded after this.
    msds.config.set_seed(seed)
    report.seeded["mindspore.dataset"] = seed
    if deterministic:
        report.seeded["mindspore.deterministic"] = _mindspore_deterministic(ms)


def _mindspore_deterministic(ms) -> str:
    # MindSpore raises on a second set_deterministic call, so make ours idempotent.
    try:
        from mindspore._c_expression import DeviceManagerConf  # type: ignore[attr-defined]

        if DeviceManagerConf.get_instance().is_deterministic_configured():
            return "already on"
    except (ImportError, AttributeError):
        pass
    try:
        ms.set_deterministic(True)
    except RuntimeError as exc:
        if "repeatedly" not in str(exc):
            raise
        return "already on"
    return "on"


def _seed_torch(seed: int, deterministic: bool, report: SeedReport) -> None:
    torch, why = _optional("torch")
    if torch is None:
        report.skipped["torch"] = why
        return
    torch.manual_seed(seed)  # CPU, and every CUDA device when CUDA is initialised
    report.seeded["torch"] = seed
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
        report.seeded["torch.cuda"] = seed
    else:
        report.skipped["torch.cuda"] = "CUDA is not available"
    if deterministic:
        # cuBLAS needs this before its first call to be deterministic.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        report.seeded["torch.deterministic"] = "on"


# Streams of packages built on porting (adapters' emulated torch generator), registered by them:
# porting imports none of them. name -> function(seed).
_REGISTERED: dict[str, Callable[[int], None]] = {}
_last_seed: int | None = None


def register_stream(name: str, seed_fn: Callable[[int], None]) -> None:
    """Have :func:`seed_everything` seed one more stream (called by packages that own one).

    A stream registered after ``seed_everything`` ran is seeded at once with that seed, so the
    order of imports does not matter.

    Args:
        name: how the stream appears in :class:`SeedReport` (``"adapters.default_generator"``).
        seed_fn: called with the seed.

    Example:
        >>> register_stream("example.stream", lambda seed: None)
    """
    _REGISTERED[name] = seed_fn
    if _last_seed is not None:
        seed_fn(_last_seed)


def seed_everything(seed: int, *, deterministic: bool = False) -> SeedReport:
    """Seed python, numpy, torch and mindspore (whichever are importable) with one seed.

    Order: mindspore (``set_seed`` and the dataset engine's ``config.set_seed``), torch (CPU,
    CUDA if available), the streams registered by other packages (:func:`register_stream`:
    ``adapters.default_generator``, the numpy emulation of torch's CPU generator that stands in for
    torch when it is not installed), then python ``random`` and numpy's global RNG last, because
    MindSpore's seeding also reseeds those two.

    Args:
        seed: an int in [0, 2**32 - 1] (numpy's and MindSpore's limit).
        deterministic: also turn on deterministic algorithms in torch and MindSpore. Safe to
            call more than once (MindSpore itself refuses a second ``set_deterministic``).

    Returns:
        A :class:`SeedReport` listing every stream seeded, with its value, and every stream
        skipped, with the reason.

    Raises:
        TypeError: ``seed`` is not an int.
        ValueError: ``seed`` is outside [0, 2**32 - 1].

    Example:
        >>> report = seed_everything(0)
        >>> report.seeded["python.random"], report.seeded["numpy.random"]
        (0, 0)
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed_everything: seed must be an int, got {type(seed).__name__} ({seed!r})")
    seed = int(seed)
    if not 0 <= seed <= _MAX_SEED:
        raise ValueError(f"seed_everything: seed must be in [0, {_MAX_SEED}], got {seed}")
    report = SeedReport(seed)
    _seed_mindspore(seed, deterministic, report)
    _seed_torch(seed, deterministic, report)
    global _last_seed
    _last_seed = seed
    for name, seed_fn in _REGISTERED.items():
        seed_fn(seed)
        report.seeded[name] = seed
    random.seed(seed)
    report.seeded["python.random"] = seed
    np.random.seed(seed)
    report.seeded["numpy.random"] = seed
    os.environ["PYTHONHASHSEED"] = str(seed)
    report.seeded["PYTHONHASHSEED"] = str(seed)
    report.notes.append(
        "PYTHONHASHSEED is set for child processes only: the running interpreter's str/bytes hash "
        "randomisation was fixed at start-up (start python with PYTHONHASHSEED set to cover it)."
    )
    return report
