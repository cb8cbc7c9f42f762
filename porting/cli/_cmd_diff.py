"""``torch2ms diff MODULE:FACTORY``: one forward + backward through your model and its port, layer by layer."""

from __future__ import annotations

import argparse
import sys

from porting.cli._args import HelpFormatter

__all__ = ["register"]

_EPILOG = """\
FACTORY is a function of MODULE (a dotted module importable from the current folder, or a .py path)
that takes no arguments and returns (torch_module, mindspore_cell, inputs) or
(torch_module, mindspore_cell, inputs, target): both models holding the same weights and in the same
mode, inputs an array or a tuple of arrays (numpy / torch / mindspore).

Verdicts: by default (--reference float64) each tensor is judged against a float64 run of the torch
model: MindSpore passes when its RMS distance to float64 is within 2x torch float32's (3x under 1000
elements) plus a floor of 1e-5 + 1.3e-6 x RMS (torch._dynamo.utils.same's fp64_ref rule). A correct port
passes; a real difference (padding, epsilon, a transposed weight, a BatchNorm momentum) fails at its
layer. --reference none, or --tolerance, compares element by element instead.

exit status: 0 every layer matched; 1 a divergence (the first one is named); 2 bad invocation
(module, factory, what it returned, options, models in different modes, map file).
"""

_LOSSES = {"sum": None, "mse": "mse", "cross_entropy": "cross_entropy"}


def _unpack(result, target: str):
    from porting.cli._check import CheckError

    if not isinstance(result, tuple) or len(result) not in (3, 4):
        length = f" of length {len(result)}" if isinstance(result, tuple) else ""
        raise CheckError(
            f"{target}: must return (torch_module, mindspore_cell, inputs[, target]); got "
            f"{type(result).__name__}{length}"
        )
    t, m, inputs, *rest = result
    if not (type(t).__module__.startswith("torch") or hasattr(t, "named_modules")):
        raise CheckError(f"{target}: item 0 must be a torch.nn.Module, got {type(t).__name__}")
    if not hasattr(m, "cells_and_names"):
        raise CheckError(f"{target}: item 1 must be a mindspore.nn.Cell, got {type(m).__name__}")
    return t, m, inputs, (rest[0] if rest else None)


def _run(args: argparse.Namespace) -> int:
    from porting.cli._check import CheckError, call_factory, load_factory, parse_tolerance
    from porting.cli._exit import ExitCode
    from porting.training._layer_diff import diff_layers

    try:
        reference = args.reference
        if reference is None:  # the float64 rule, unless tolerances were asked for
            reference = "none" if args.tolerance != "default" else "float64"
        if reference == "float64" and args.tolerance != "default":
            raise CheckError("--tolerance applies to elementwise comparisons: use it with --reference none")
        tol = parse_tolerance(args.tolerance)
        if tol.get("tolerance") == "exact":
            tol = {"rtol": 0.0, "atol": 0.0}
        tol.pop("tolerance", None)
        alignment = None
        if args.map:
            from porting.convert._align import Alignment

            alignment = Alignment.load(args.map)
        factory = load_factory(args.target)
        result = call_factory(factory, args.target, "(torch_module, mindspore_cell, inputs)")
        t, m, inputs, target = _unpack(result, args.target)
        if _LOSSES[args.loss] is not None and target is None:
            raise CheckError(
                f"--loss {args.loss} needs a target: return (torch_module, mindspore_cell, inputs, target)"
            )
        loss = _LOSSES[args.loss]
        report = diff_layers(
            t,
            m,
            inputs,
            loss=loss,
            target=None if loss is None else target,
            alignment=alignment,
            reference=None if reference == "none" else reference,
            **tol,
        )
    except (CheckError, ValueError, TypeError, OSError) as exc:
        print(
            f"torch2ms diff: error: {exc}".splitlines()[0]
            if isinstance(exc, CheckError)
            else f"torch2ms diff: error: {type(exc).__name__}: {exc}",
            file=sys.stderr,
        )
        return ExitCode.USAGE
    unused = " (the factory's target is not used with --loss sum)" if loss is None and target is not None else ""
    print(f"torch2ms diff {args.target}: {'OK' if report.ok else 'DIVERGES'}{unused}\n")
    print(report)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as f:
            f.write(f"# torch2ms diff {args.target}\n\n{report.to_markdown()}")
        print(f"\n  report: {args.markdown}")
    return ExitCode.OK if report.ok else ExitCode.MISMATCH


def register(sub) -> None:
    """Add the ``diff`` sub-command to ``sub`` (an argparse sub-parsers object)."""
    p = sub.add_parser(
        "diff",
        help="compare your model and its MindSpore port layer by layer (forward, backward, buffers)",
        description="Run one forward + backward through the torch module and the MindSpore cell your factory "
        "returns; compare every layer's output, gradient w.r.t. its output, parameter gradients and "
        "buffers before/after, and name the first divergent layer.",
        epilog=_EPILOG,
        formatter_class=HelpFormatter,
    )
    p.add_argument("target", metavar="MODULE:FACTORY", help="where your factory is, e.g. my_project.port:make_pair")
    p.add_argument(
        "--loss",
        choices=sorted(_LOSSES),
        default="sum",
        help="loss to backpropagate: the sum of the output, or mse / cross_entropy against the target",
    )
    p.add_argument(
        "--reference",
        choices=("float64", "none"),
        default=None,
        help="float64 (the default without --tolerance): judge against a float64 run of the torch model; "
        "none: element by element with --tolerance",
    )
    p.add_argument(
        "--tolerance",
        default="default",
        metavar="default|exact|RTOL,ATOL",
        help="with --reference none: torch.testing's per-dtype tolerances; exact: bit for bit; or RTOL,ATOL",
    )
    p.add_argument(
        "--map",
        default=None,
        metavar="FILE",
        help="an alignment (YAML, from `torch2ms align` or porting.Alignment.save) pairing the names of a "
        "port written independently",
    )
    p.add_argument("--markdown", default=None, metavar="PATH", help="also write the report as markdown to PATH")
    p.set_defaults(func=_run)
