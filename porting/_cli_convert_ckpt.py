"""``torch2ms convert-ckpt``: convert a checkpoint file between torch and MindSpore and print the report as a table."""

from __future__ import annotations

import argparse
import importlib
import sys

__all__ = ["register"]


def _load_like(spec: str):
    """``package.module:factory`` -> the MindSpore cell ``factory()`` returns."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise SystemExit(f"torch2ms convert-ckpt: --like expects MODULE:FACTORY (e.g. mypkg.nets:build), got {spec!r}")
    factory = getattr(importlib.import_module(module_name), attr, None)
    if factory is None:
        raise SystemExit(f"torch2ms convert-ckpt: --like {spec!r}: module {module_name!r} has no {attr!r}")
    return factory() if callable(factory) else factory


def _run(args: argparse.Namespace) -> int:
    from porting._checkpoint import CheckpointMismatchError, convert_checkpoint

    like = _load_like(args.like) if args.like else None
    try:
        report = convert_checkpoint(args.src, args.dst, like=like, strict=not args.no_strict)
    except CheckpointMismatchError as exc:
        print(exc.report.table())
        print(f"torch2ms convert-ckpt: {str(exc).splitlines()[0]}; nothing written", file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError) as exc:
        print(f"torch2ms convert-ckpt: {exc}", file=sys.stderr)
        return 2
    print(report.table())
    print(f"wrote {args.dst}")
    return 0 if report.ok else 1


def register(sub) -> None:
    """Add the ``convert-ckpt`` sub-command to ``sub`` (an argparse sub-parsers object)."""
    p = sub.add_parser(
        "convert-ckpt", help="convert a checkpoint (.pt/.pth/.safetensors <-> .ckpt/.safetensors), dtypes kept",
        description="Convert SRC to DST (format from the extensions; fp16/fp32/fp64 kept, bfloat16 through float32 "
                    "and back). With --like, names and layouts follow porting's rule tables for that MindSpore "
                    "cell, and every missing, unexpected or mis-shaped entry is listed.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("src", metavar="SRC", help="source checkpoint: .pt, .pth, .safetensors or .ckpt")
    p.add_argument("dst", metavar="DST", help="destination checkpoint: .ckpt, .safetensors, .pt or .pth (overwritten)")
    p.add_argument("--like", metavar="MODULE:FACTORY", default=None,
                   help="a callable returning the MindSpore cell whose names to map to (or from); without it names "
                        "and layouts are kept")
    p.add_argument("--no-strict", action="store_true",
                   help="with --like, write what matches even if entries are missing, unexpected or mis-shaped")
    p.set_defaults(func=_run)
