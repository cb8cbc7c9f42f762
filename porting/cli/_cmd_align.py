"""``torch2ms align MODULE:FACTORY --out map.yaml``: the name map between a torch model and its independent port."""

from __future__ import annotations

import argparse
import sys

from porting.cli._args import HelpFormatter

__all__ = ["register"]

_EPILOG = """\
FACTORY is a function of MODULE (a dotted module importable from the current folder, or a .py path)
that takes no arguments and returns (torch_module, mindspore_cell) or (torch_module, mindspore_cell,
inputs[, ...]): with inputs (an array or a tuple of arrays) one forward on each side gives the execution
order and output shapes. The map (YAML) pairs torch state-dict keys with MindSpore parameters and torch
module paths with MindSpore cell paths; edit it where it lists something ambiguous or unmatched, then pass
it as --map to `torch2ms diff` / `torch2ms convert-ckpt`, or as alignment= to porting's functions.

exit status: 0 every parameter and buffer paired (map written); 1 something ambiguous or unmatched (map
written, listed); 2 bad invocation (module, factory, what it returned, output file).
"""


def _unpack(result, target: str):
    from porting.cli._check import CheckError

    if not isinstance(result, tuple) or len(result) < 2:
        got = type(result).__name__ + (f" of length {len(result)}" if isinstance(result, tuple) else "")
        raise CheckError(f"{target}: must return (torch_module, mindspore_cell[, inputs, ...]); got {got}")
    t, m, *rest = result
    if not hasattr(t, "named_modules"):
        raise CheckError(f"{target}: item 0 must be a torch.nn.Module, got {type(t).__name__}")
    if not hasattr(m, "cells_and_names"):
        raise CheckError(f"{target}: item 1 must be a mindspore.nn.Cell, got {type(m).__name__}")
    return t, m, (rest[0] if rest else None)


def _run(args: argparse.Namespace) -> int:
    from porting.cli._check import CheckError, load_factory
    from porting.cli._exit import ExitCode
    from porting.convert._align import align

    try:
        factory = load_factory(args.target)
        try:
            result = factory()
        except Exception as exc:
            raise CheckError(f"{args.target}: the factory raised {type(exc).__name__}: {exc}") from exc
        t, m, inputs = _unpack(result, args.target)
        alignment = align(t, m, None if args.no_trace else inputs)
        alignment.save(args.out)
    except (CheckError, ValueError, TypeError, RuntimeError, OSError) as exc:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"torch2ms align: error: {text}", file=sys.stderr)
        return ExitCode.USAGE
    print(f"torch2ms align {args.target}: {alignment.verdict} ({alignment.order} order)\n")
    print(alignment.table(changes_only=not args.all))
    print(f"\n  map: {args.out}")
    return ExitCode.OK if alignment.ok else ExitCode.MISMATCH


def register(sub) -> None:
    """Add the ``align`` sub-command to ``sub`` (an argparse sub-parsers object)."""
    p = sub.add_parser(
        "align",
        help="pair the parameters, buffers and layers of your model and an independently written port",
        description="Derive the name map between a torch model and its MindSpore port from structure, order, "
        "kinds and shapes (porting.align); write it as an editable YAML file and print what was "
        "renamed, derived, ambiguous or unmatched.",
        epilog=_EPILOG,
        formatter_class=HelpFormatter,
    )
    p.add_argument("target", metavar="MODULE:FACTORY", help="where your factory is, e.g. my_project.port:make_pair")
    p.add_argument("--out", required=True, metavar="PATH", help="where to write the map (YAML)")
    p.add_argument(
        "--no-trace", action="store_true", help="ignore the factory's inputs: definition order only, no forward run"
    )
    p.add_argument("--all", action="store_true", help="print every pair, not only renamed and problem rows")
    p.set_defaults(func=_run)
