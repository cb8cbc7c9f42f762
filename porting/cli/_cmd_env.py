"""``torch2ms env``: check that the installed packages work together and print their versions."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def _run(args: argparse.Namespace) -> int:
    from torch2ms_base._environment import check_environment

    print("\n".join(check_environment().lines()))
    return 0


def register(sub) -> None:
    """Add the ``env`` sub-command to ``sub`` (an argparse sub-parsers object)."""
    p = sub.add_parser("env", help="check that the installed packages work together and print their versions",
                       description=__doc__.split(": ", 1)[1])
    p.set_defaults(func=_run)
