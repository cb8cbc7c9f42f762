"""Import upstream ultralytics YOLOv5 v7.0's data modules (PyPI ``yolov5==7.0.14``) as the reference.

The package's top-level ``__init__`` pulls in the whole model zoo, and its ``utils`` import several packages
(torchvision, pandas, matplotlib, requests, pkg_resources, ultralytics) that the detection data path never
calls. :func:`load_upstream` skips the top-level ``__init__``, puts minimal stand-ins for the missing packages
into ``sys.modules`` only while the three data modules import, and takes them out again afterwards; the
modules keep private references to the stand-ins, which fail loudly if anything actually uses them.

Importing upstream's ``utils.general`` has upstream's own process-wide side effects, kept on purpose because
they are part of the reference: numpy/torch print options (linewidth 320, ``'{:11.5g}'`` floats),
``cv2.setNumThreads(0)``, and ``NUMEXPR_MAX_THREADS``/``OMP_NUM_THREADS``/``TF_CPP_MIN_LOG_LEVEL`` in
``os.environ``.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.metadata
import importlib.util
import sys
import threading
import types
from collections.abc import Callable

__all__ = ["UPSTREAM_VERSION", "UpstreamNotInstalledError", "load_upstream"]

UPSTREAM_VERSION = "7.0.14"
_INSTALL_HINT = (
    f"install it without its (heavy) dependencies: `python -m pip install --no-deps yolov5=={UPSTREAM_VERSION}` "
    "(scripts/setup.sh does this)"
)
_DATA_MODULES = ("utils.general", "utils.augmentations", "utils.dataloaders")
_lock = threading.Lock()
_loaded: types.SimpleNamespace | None = None


class UpstreamNotInstalledError(ModuleNotFoundError):
    """The upstream ``yolov5`` package is missing or not the expected version."""


class _StandIn(types.ModuleType):
    """A module that exists only so upstream's imports succeed; any attribute not set on it raises."""

    def __getattr__(self, attr: str):
        if attr.startswith("__"):  # keep introspection (copy, pickle, inspect) working normally
            raise AttributeError(attr)
        raise AttributeError(
            f"{self.__name__}.{attr} is a stand-in made by yolov5_pt.upstream.load_upstream(): the real "
            f"{self.__name__.split('.')[0]} is not installed and upstream's detection data path should not need it"
        )


def _unavailable(qualname: str) -> Callable:
    def fail(*args, **kwargs):
        raise RuntimeError(f"{qualname} is a stand-in made by yolov5_pt.upstream.load_upstream() and cannot run")

    fail.__qualname__ = fail.__name__ = qualname.rsplit(".", 1)[-1]
    return fail


def _parse_version(v: str):
    from packaging.version import parse  # upstream's check_version results must be real comparisons

    return parse(v)


def _stand_ins() -> dict[str, dict[str, object]]:
    """Names → attributes of the stand-in modules, each with what upstream touches at import time."""

    class ImageFolder:  # base class of upstream's ClassificationDataset (classification only)
        def __init__(self, *args, **kwargs):
            raise RuntimeError("torchvision.datasets.ImageFolder is a stand-in made by load_upstream()")

    return {
        "torchvision": {},
        "torchvision.datasets": {"ImageFolder": ImageFolder},
        "torchvision.transforms": {},
        "torchvision.transforms.functional": {},
        # utils.general sets pd.options.display.max_columns at import.
        "pandas": {"options": types.SimpleNamespace(display=types.SimpleNamespace())},
        "matplotlib": {},
        "matplotlib.pyplot": {},
        "requests": {},
        "pkg_resources": {"parse_version": _parse_version},
        "ultralytics": {},
        "ultralytics.utils": {},
        "ultralytics.utils.checks": {"check_requirements": _unavailable("ultralytics.utils.checks.check_requirements")},
    }


def _is_installed(top_level: str) -> bool:
    if top_level in sys.modules:
        return True
    try:
        return importlib.util.find_spec(top_level) is not None
    except (ImportError, ValueError):
        return False


def _install_stand_ins() -> dict[str, types.ModuleType]:
    added: dict[str, types.ModuleType] = {}
    for name, attrs in _stand_ins().items():
        top = name.split(".")[0]
        if top not in added and _is_installed(top):
            continue  # the real package is there: let upstream use it
        module: types.ModuleType = _StandIn(name)
        # torch's dynamo calls importlib.util.find_spec on some of these names: a None __spec__ would raise.
        module.__spec__ = importlib.machinery.ModuleSpec(name, loader=None, is_package=True)
        module.__path__ = []
        module.__dict__.update(attrs)
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(added[parent], child, module)
        added[name] = module
    for name, module in added.items():
        sys.modules[name] = module
    return added


def _remove_stand_ins(added: dict[str, types.ModuleType]) -> None:
    for name, module in added.items():
        if sys.modules.get(name) is module:
            del sys.modules[name]


def _bare_package() -> types.ModuleType:
    """``yolov5`` as a namespace for its submodules, without running its ``__init__`` (the model zoo)."""
    existing = sys.modules.get("yolov5")
    if existing is not None:
        return existing
    try:
        spec = importlib.util.find_spec("yolov5")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise UpstreamNotInstalledError(f"upstream YOLOv5 (package 'yolov5') is not installed; {_INSTALL_HINT}")
    package = importlib.util.module_from_spec(spec)
    sys.modules["yolov5"] = package  # stays: upstream imports `yolov5.utils.*` lazily inside functions
    return package


def _check_version() -> None:
    try:
        version = importlib.metadata.version("yolov5")
    except importlib.metadata.PackageNotFoundError as e:
        raise UpstreamNotInstalledError(f"upstream YOLOv5 (package 'yolov5') is not installed; {_INSTALL_HINT}") from e
    if version != UPSTREAM_VERSION:
        raise UpstreamNotInstalledError(
            f"expected yolov5=={UPSTREAM_VERSION} (upstream v7.0), got yolov5=={version}; {_INSTALL_HINT}"
        )


def load_upstream() -> types.SimpleNamespace:
    """Import upstream YOLOv5 v7.0's data modules, once per process.

    Returns:
        A namespace with ``dataloaders``, ``augmentations`` and ``general``: upstream's ``yolov5.utils``
        modules of those names, and ``version`` (``'7.0.14'``).

    Raises:
        UpstreamNotInstalledError: ``yolov5`` is not installed, or not version 7.0.14 (the message says how to
            install it).

    Example:
        >>> up = load_upstream()  # doctest: +SKIP
        >>> up.dataloaders.img2label_paths(['/d/images/a.jpg'])  # doctest: +SKIP
        ['/d/labels/a.txt']
    """
    global _loaded
    with _lock:
        if _loaded is not None:
            return _loaded
        _check_version()
        _bare_package()
        added = _install_stand_ins()
        try:
            modules = {m.rsplit(".", 1)[-1]: importlib.import_module(f"yolov5.{m}") for m in _DATA_MODULES}
        finally:
            _remove_stand_ins(added)
        _loaded = types.SimpleNamespace(version=UPSTREAM_VERSION, **modules)
        return _loaded
