"""``torch2ms convert-ckpt``: convert a checkpoint file between torch and MindSpore and print the report as a table."""

from __future__ import annotations

import argparse
import sys

from porting.cli._args import HelpFormatter

__all__ = ["register"]

_EPILOG = """\
exit status: 0 converted; 1 entries missing, unexpected or mis-shaped (listed; nothing written unless
--no-strict); 2 bad invocation (files, extensions, --like).
"""


def _load_like(spec: str):
    """``MODULE:FACTORY`` -> the MindSpore cell ``FACTORY()`` returns (``porting.cli._check``'s factory loading)."""
    from porting.cli._check import CheckError, call_factory, load_factory

    cell = call_factory(load_factory(spec), f"--like {spec}", "a mindspore.nn.Cell")
    if not hasattr(cell, "parameters_dict"):
        raise CheckError(
            f"--like {spec}: expected the factory to return a mindspore.nn.Cell, got {type(cell).__name__}"
        )
    return cell


def _run(args: argparse.Namespace) -> int:
    from porting.cli._check import CheckError
    from porting.cli._exit import ExitCode
    from porting.convert._checkpoint import CheckpointMismatchError, convert_checkpoint

    try:
        like = _load_like(args.like) if args.like else None
        if args.map and like is None:
            raise CheckError("--map needs --like (the MindSpore cell: its rules give the layouts and dtypes)")
        report = convert_checkpoint(args.src, args.dst, like=like, strict=not args.no_strict, alignment=args.map)
    except CheckpointMismatchError as exc:
        print(exc.report.table())
        print(f"torch2ms convert-ckpt: {str(exc).splitlines()[0]}; nothing written", file=sys.stderr)
        return ExitCode.MISMATCH
    except (CheckError, ValueError, TypeError, OSError) as exc:
        print(f"torch2ms convert-ckpt: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return ExitCode.USAGE
    print(report.table())
    print(f"wrote {args.dst}")
    return ExitCode.OK if report.ok else ExitCode.MISMATCH


def register(sub) -> None:
    """Add the ``convert-ckpt`` sub-command to ``sub`` (an argparse sub-parsers object)."""
    p = sub.add_parser(
        "convert-ckpt",
        help="convert a checkpoint (.pt/.pth/.safetensors <-> .ckpt/.safetensors), dtypes kept",
        description="Convert SRC to DST (format from the extensions; fp16/fp32/fp64 kept, bfloat16 through float32 "
        "and back). With --like, names and layouts follow porting's rule tables for that MindSpore "
        "cell, and every missing, unexpected or mis-shaped entry is listed.",
        epilog=_EPILOG,
        formatter_class=HelpFormatter,
    )
    p.add_argument("src", metavar="SRC", help="source checkpoint: .pt, .pth, .safetensors or .ckpt")
    p.add_argument("dst", metavar="DST", help="destination checkpoint: .ckpt, .safetensors, .pt or .pth (overwritten)")
    p.add_argument(
        "--like",
        metavar="MODULE:FACTORY",
        default=None,
        help="a callable returning the MindSpore cell whose names to map to (or from): a dotted module "
        "importable from the current folder, or a .py path; without it layouts are kept, and so "
        "are names except BatchNorm groups (running_mean + running_var), which get MindSpore's",
    )
    p.add_argument(
        "--map",
        default=None,
        metavar="FILE",
        help="with --like, an alignment (YAML, from `torch2ms align`) pairing the names of a port written "
        "independently",
    )
    p.add_argument(
        "--no-strict",
        action="store_true",
        help="with --like, write what matches even if entries are missing, unexpected or mis-shaped",
    )
    p.set_defaults(func=_run)
