"""Command-line tool: ``python -m porting`` / ``torch2ms``.

Each sub-command lives in its own module, ``porting.cli._cmd_<name>``, with a ``register(subparsers)``
function that adds its parser and sets ``func``; the modules import their heavy dependencies only
when the command runs, so ``torch2ms --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from porting.cli._args import HelpFormatter

__all__ = ["main", "build_parser"]

# Order is the order of ``torch2ms --help``.
_COMMANDS = ("demo", "check", "align", "convert_ckpt", "diff", "env")


def _version() -> str:
    from torch2ms_base import __version__

    return __version__


def build_parser() -> argparse.ArgumentParser:
    """The ``torch2ms`` argument parser, with every available sub-command."""
    parser = argparse.ArgumentParser(
        prog="torch2ms",
        description="Move PyTorch training code to MindSpore and prove, tensor by tensor, that nothing changed.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _COMMANDS:
        try:
            module = importlib.import_module(f"porting.cli._cmd_{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"porting.cli._cmd_{name}":
                raise
            continue  # a command whose module is not part of this build
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``torch2ms`` with ``argv`` (default ``sys.argv[1:]``); return the exit status.

    An unexpected exception (a defect of ``torch2ms``, not of the input) prints its traceback and returns
    ``ExitCode.INTERNAL_ERROR`` (70): left alone, Python would exit with 1, which reads as "mismatch".
    """
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except Exception as exc:
        import traceback

        from porting.cli._exit import ExitCode

        traceback.print_exc()
        first = (str(exc).strip().splitlines() or ["(no message)"])[0]
        print(f"torch2ms {args.command}: internal error, not a verdict: {type(exc).__name__}: {first} "
              f"(exit status {int(ExitCode.INTERNAL_ERROR)}; please report it with the traceback above)",
              file=sys.stderr)  # fmt: skip
        return ExitCode.INTERNAL_ERROR


if __name__ == "__main__":
    sys.exit(main())
