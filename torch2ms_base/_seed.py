"""``seed_everything``: seed every random stream a ported training run draws from, and say which."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np

from torch2ms_base._report import Report
from torch2ms_base._streams import StreamUnavailable, note_seeded, streams

__all__ = ["SeedReport", "seed_everything"]

_MAX_SEED = 2**32 - 1  # numpy's legacy seeding and mindspore.set_seed both refuse larger seeds


@dataclasses.dataclass
class SeedReport(Report):
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

    @property
    def ok(self) -> bool:
        """Always True: a stream that is not there (torch not installed, no CUDA) is skipped, not failed."""
        return True

    @property
    def verdict(self) -> str:
        """``seeded N streams with S (M skipped)``."""
        return f"seeded {len(self.seeded)} streams with {self.seed} ({len(self.skipped)} skipped)"

    def __str__(self) -> str:
        lines = [f"seed_everything({self.seed})"]
        lines += [f"  seeded  {k}: {v}" for k, v in self.seeded.items()]
        lines += [f"  skipped {k}: {v}" for k, v in self.skipped.items()]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _mindspore_deterministic() -> str:
    import mindspore as ms

    # MindSpore raises on a second set_deterministic call, so make ours idempotent.
    try:
        from mindspore._c_expression import DeviceManagerConf

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


def _torch_deterministic() -> str:
    import torch

    # cuBLAS needs this before its first call to be deterministic.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    return "on"


# Settings made by ``deterministic=True`` after the stream of the same framework was seeded.
_DETERMINISTIC = {
    "mindspore": ("mindspore.deterministic", _mindspore_deterministic),
    "torch": ("torch.deterministic", _torch_deterministic),
}


def seed_everything(seed: int, *, deterministic: bool = False) -> SeedReport:
    """Seed python, numpy, torch and mindspore (whichever are importable) with one seed.

    Order: mindspore (``set_seed`` and the dataset engine's ``config.set_seed``), torch (CPU,
    CUDA if available), the streams registered by other packages (``torch2ms_base.register_stream``:
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
    for stream in streams():
        try:
            stream.seed(seed)
        except StreamUnavailable as why:
            report.skipped[stream.name] = str(why)
            continue
        report.seeded[stream.name] = seed
        if deterministic and stream.name in _DETERMINISTIC:
            name, turn_on = _DETERMINISTIC[stream.name]
            report.seeded[name] = turn_on()
    note_seeded(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    report.seeded["PYTHONHASHSEED"] = str(seed)
    report.notes.append(
        "PYTHONHASHSEED is set for child processes only: the running interpreter's str/bytes hash "
        "randomisation was fixed at start-up (start python with PYTHONHASHSEED set to cover it)."
    )
    return report
