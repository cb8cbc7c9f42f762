"""``torch2ms env``: check that the installed packages work together and print their versions."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def _run(args: argparse.Namespace) -> int:
    from porting.cli._exit import ExitCode
    from torch2ms_base import check_environment

    print(check_environment())
    return ExitCode.OK


def register(sub) -> None:
    """Add the ``env`` sub-command to ``sub`` (an argparse sub-parsers object)."""
    p = sub.add_parser(
        "env",
        help="check that the installed packages work together and print their versions",
        description=__doc__.split(": ", 1)[1],
    )
    p.set_defaults(func=_run)
