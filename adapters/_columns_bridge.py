"""Glue between the collated batch and MindSpore columns (provisional until _columns lands)."""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["infer_structure"]


@dataclasses.dataclass
class _Structure:
    names: list
    kind: str
    keys: list | None

    def to_row(self, batch, k):
        if self.kind == "dict":
            return tuple(np.asarray(batch[key]) for key in self.keys)
        if self.kind == "seq":
            return tuple(np.asarray(x) for x in batch)
        return (np.asarray(batch),)

    def rebuild(self, row):
        if self.kind == "dict":
            return dict(zip(self.keys, row))
        if self.kind == "seq":
            return list(row)
        return row[0]


def infer_structure(batch, column_names=None):
    if isinstance(batch, dict):
        s = _Structure([str(k) for k in batch], "dict", list(batch))
    elif isinstance(batch, (list, tuple)):
        s = _Structure([str(i) for i in range(len(batch))], "seq", None)
    else:
        s = _Structure(["0"], "leaf", None)
    if column_names is not None:
        s.names = list(column_names)
    return s
