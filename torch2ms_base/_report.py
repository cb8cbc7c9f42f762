"""The one report protocol: every report of the toolkit answers ``ok``, ``verdict``, ``str()``,
``to_markdown()`` and ``to_dict()`` the same way.

A report class subclasses :class:`Report` and defines ``ok`` and ``verdict``; ``summary`` (one line),
``__str__`` (the text a terminal shows), ``to_markdown`` and ``to_dict`` have defaults that reports
override where they have more to say (a table, a first mismatch). ``to_dict()`` is JSON-ready.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import pathlib
from typing import Any

__all__ = ["Report", "jsonable", "markdown_table"]


class Report:
    """Base of every report: ``ok``, ``verdict``, ``summary()``, ``str()``, ``to_markdown()``, ``to_dict()``.

    Example:
        >>> import dataclasses
        >>> @dataclasses.dataclass
        ... class Count(Report):
        ...     n: int
        ...     @property
        ...     def ok(self): return self.n > 0
        ...     @property
        ...     def verdict(self): return "counted" if self.ok else "nothing counted"
        >>> r = Count(3)
        >>> str(r), r.to_dict()
        ('counted', {'ok': True, 'verdict': 'counted', 'n': 3})
    """

    @property
    def ok(self) -> bool:
        """Whether the report is a pass."""
        raise NotImplementedError

    @property
    def verdict(self) -> str:
        """The outcome in a few words (``bit-identical``, ``DIFFER``, ``loaded``, ...)."""
        raise NotImplementedError

    def summary(self) -> str:
        """One line (default: the verdict)."""
        return self.verdict

    def __str__(self) -> str:
        return self.summary()

    def to_markdown(self) -> str:
        """The report as GitHub markdown (default: the verdict in bold, then the text report)."""
        text = str(self)
        body = "" if text == self.verdict else f"\n\n```text\n{text}\n```"
        return f"**{self.verdict}**{body}\n"

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data: ``ok``, ``verdict``, then the report's fields."""
        fields: dict[str, Any] = {}
        if dataclasses.is_dataclass(self):
            fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.repr}
        return {"ok": self.ok, "verdict": self.verdict, **jsonable(fields)}


def jsonable(value: Any) -> Any:  # noqa: C901 - one flat type dispatch, its order the rule
    """``value`` as JSON-ready data: dataclasses as dicts, tuples as lists, numpy scalars as numbers,
    non-finite floats as strings (``"inf"``, ``"nan"``: JSON has no such numbers), the rest as ``str``.

    Example:
        >>> jsonable({"a": (1, float("inf")), "b": None})
        {'a': [1, 'inf'], 'b': None}
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Report):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, pathlib.PurePath):
        return str(value)
    item = getattr(value, "item", None)  # numpy scalars and 0-d arrays
    if callable(item) and getattr(value, "ndim", 1) == 0:
        return jsonable(item())
    return str(value)


def markdown_table(header, rows) -> str:
    """A GitHub markdown table; ``|`` and newlines in cells are escaped so that a cell stays one cell.

    Example:
        >>> print(markdown_table(["a", "b"], [["1", "x|y"]]))
        | a | b |
        |---|---|
        | 1 | x\\|y |
    """

    def cell(value) -> str:
        return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", "<br>")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
