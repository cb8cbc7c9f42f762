"""Fail early, and clearly, on dependency sets that are known to crash deep inside MindSpore."""

from __future__ import annotations

import dataclasses
import importlib.metadata as metadata
import platform

from torch2ms_base._report import Report

__all__ = ["IncompatibleEnvironmentError", "EnvironmentReport", "check_environment", "environment_report"]


class IncompatibleEnvironmentError(ImportError):
    """The installed packages cannot work together (e.g. mindspore 2.10 with numpy 2)."""


@dataclasses.dataclass(frozen=True)
class EnvironmentReport(Report):
    """Versions of the packages this toolkit depends on (``None`` = not installed)."""

    python: str
    numpy: str | None
    mindspore: str | None
    torch: str | None
    torch_cuda: str | None
    opencv: str | None
    albumentations: str | None

    def lines(self) -> list[str]:
        """One line per package: name, version (``-``: not installed)."""
        return [f"{f.name:15s} {getattr(self, f.name) or '-'}" for f in dataclasses.fields(self)]

    def problem(self) -> str | None:
        """Why these versions cannot work together, with the fix; ``None`` when they can."""
        if self.mindspore and self.numpy and _major(self.mindspore) == 2 and _major(self.numpy) >= 2:
            return (
                f"mindspore {self.mindspore} is built against NumPy 1.x but numpy {self.numpy} is installed; "
                "its ops would crash with SystemError. Install 'numpy<2' (and opencv-python-headless==4.9.0.80, "
                "the last OpenCV wheel for NumPy 1.x): pip install -c constraints.txt 'numpy<2'"
            )
        return None

    @property
    def ok(self) -> bool:
        """Whether the versions are known to work together."""
        return self.problem() is None

    @property
    def verdict(self) -> str:
        """``compatible`` or ``INCOMPATIBLE: <why>``."""
        return "compatible" if self.ok else f"INCOMPATIBLE: {self.problem()}"

    def __str__(self) -> str:
        return "\n".join(self.lines())


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _major(version: str) -> int:
    return int(version.split(".")[0])


def environment_report() -> EnvironmentReport:
    """Collect the versions that matter, without importing the heavy packages.

    Example:
        >>> environment_report().python.startswith("3.")
        True
    """
    torch = _version("torch")
    return EnvironmentReport(
        python=platform.python_version(),
        numpy=_version("numpy"),
        mindspore=_version("mindspore"),
        torch=torch,
        # The local version tag says which build pip chose: "+cpu" or a CUDA build.
        torch_cuda=None if torch is None else ("cpu" if "+cpu" in torch else "unknown or CUDA build"),
        opencv=_version("opencv-python-headless") or _version("opencv-python"),
        albumentations=_version("albumentations"),
    )


def check_environment(report: EnvironmentReport | None = None) -> EnvironmentReport:
    """Raise if the installed versions are a combination known not to work.

    mindspore 2.10's compiled ops are built against NumPy 1.x: with numpy 2 even ``Tensor + 1``
    ends in ``SystemError ... pyboost_*`` and GeneratorDataset rejects python scalars. We check
    the versions from package metadata so the message comes before MindSpore is imported.

    Args:
        report: versions to check; default: what is installed.

    Returns:
        The report that was checked.

    Raises:
        IncompatibleEnvironmentError: naming the packages, their versions and the fix.

    Example:
        >>> check_environment().numpy.startswith("1.")
        True
    """
    report = report or environment_report()
    if not report.ok:
        raise IncompatibleEnvironmentError(report.problem())
    return report
