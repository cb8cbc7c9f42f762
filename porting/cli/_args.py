"""Argument types shared by the ``torch2ms`` sub-commands: one-line errors instead of tracebacks."""

from __future__ import annotations

import argparse

__all__ = ["HelpFormatter", "at_least"]


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


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """argparse's defaults formatter, without ``(default: None)``: an option whose help already says
    what happens when it is left out keeps that one sentence."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or isinstance(action.default, bool):
            return action.help or ""
        return super()._get_help_string(action)
