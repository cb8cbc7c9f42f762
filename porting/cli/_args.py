"""Argument types shared by the ``torch2ms`` sub-commands: one-line errors instead of tracebacks."""

from __future__ import annotations

import argparse

__all__ = ["at_least"]


def at_least(minimum: int):
    """An argparse ``type`` accepting integers ``>= minimum``.

    Example:
        >>> at_least(1)("3")
        3
    """

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse
