"""Load YOLOv5 hyperparameter files: the bundled upstream ``hyp.scratch-*.yaml`` or a user file."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import yaml

__all__ = ["HYP_NAMES", "load_hyp"]

HYP_NAMES = ("scratch-low", "scratch-med", "scratch-high")


def _bundled(name: str) -> str | None:
    # Accept 'scratch-low', 'hyp.scratch-low' and 'hyp.scratch-low.yaml' for the bundled files.
    stem = name.removesuffix(".yaml").removeprefix("hyp.")
    return stem if stem in HYP_NAMES else None


def load_hyp(name_or_path: str | os.PathLike) -> dict:
    """Load a hyperparameter dict.

    Args:
        name_or_path: a bundled name (``'scratch-low'``, ``'hyp.scratch-med'``, ``'hyp.scratch-high.yaml'``;
            upstream v7.0's values) or the path of a YAML file mapping names to values.

    Returns:
        A new dict (safe to modify), e.g. ``{'lr0': 0.01, ..., 'mosaic': 1.0, 'mixup': 0.0, ...}``.

    Raises:
        FileNotFoundError: neither a bundled name nor an existing file (the message lists the bundled names).
        ValueError: the file is not a YAML mapping with string keys.

    Example:
        >>> load_hyp('scratch-low')['fliplr']
        0.5
    """
    stem = _bundled(str(name_or_path)) if not isinstance(name_or_path, Path) else None
    if stem is not None:
        text = resources.files("yolov5_core").joinpath("hyps", f"hyp.{stem}.yaml").read_text()
        source = f"bundled hyp.{stem}.yaml"
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise FileNotFoundError(
                f"load_hyp: expected a bundled name {list(HYP_NAMES)} or an existing YAML file, got {str(path)!r}"
            )
        text = path.read_text()
        source = str(path)
    hyp = yaml.safe_load(text)
    if not isinstance(hyp, dict) or not all(isinstance(k, str) for k in hyp):
        raise ValueError(f"load_hyp: expected a mapping of names to values in {source}, got {type(hyp).__name__}")
    return hyp
