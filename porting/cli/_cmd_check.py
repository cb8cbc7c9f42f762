"""``torch2ms check MODULE:FACTORY``: is your loader ported exactly? Torch and MindSpore side by side."""

from __future__ import annotations

import argparse
import sys

from porting.cli._args import HelpFormatter, at_least

__all__ = ["register"]

_EPILOG = """\
FACTORY is a function of MODULE (a dotted module importable from the current folder, or a .py
path) that takes no arguments and returns a torch DataLoader, or (dataset, dataloader_kwargs).

Endless loaders are refused up front: a sampler without __len__ needs --steps; an IterableDataset
without __len__ needs --steps (an endless stream) or --max-batches-per-epoch (a finite one).

exit status: 0 every batch matched (at least one compared); 1 a mismatch; 2 bad invocation
(module, factory, options, an empty or endless loader, a target that calls sys.exit; one line on
stderr); 3 the torch side is not reproducible (two torch runs with the same seeds differ: the port
cannot be judged); 4 the loader raised an error (its first line names side, epoch, batch, sample).
"""


def _run(args: argparse.Namespace) -> int:
    from porting.cli._check import run_check
    from porting.cli._exit import ExitCode

    result = run_check(args.target, epochs=args.epochs, seed=args.seed, loop=args.loop, steps=args.steps,
                       tolerance=args.tolerance, equal_nan=args.equal_nan, set_epoch=not args.no_set_epoch,
                       progress=not args.no_progress, max_batches_per_epoch=args.max_batches_per_epoch,
                       speed=args.speed, resume_at=args.resume_at)  # fmt: skip
    if result.status == ExitCode.USAGE:  # nothing was checked: one line, no report
        print(f"torch2ms check: error: {result.error}", file=sys.stderr)
        return result.status
    print("\n".join(result.lines()))
    if result.first_mismatch_text:
        print("\n" + result.first_mismatch_text)
    js, md = result.write(args.out)
    print(f"  report: {md} and {js}")
    return result.status


def _resume_at(text: str) -> tuple[int, int]:
    from porting.cli._check_resume import parse_resume_at

    try:
        return parse_resume_at(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--resume-at: ")) from None


def register(sub) -> None:
    """Add the ``check`` sub-command to ``sub`` (an argparse sub-parsers object)."""
    p = sub.add_parser(
        "check",
        help="compare your own torch DataLoader with its MindSpore port, batch by batch",
        description="Build your loader twice with the same seeds, check that torch reproduces itself, then walk "
        "torch and adapters.to_mindspore side by side and compare every batch, element by element.",
        epilog=_EPILOG,
        formatter_class=HelpFormatter,
    )
    p.add_argument(
        "target", metavar="MODULE:FACTORY", help="where your loader factory is, e.g. my_project.data:make_loader"
    )
    p.add_argument("--epochs", type=at_least(1), default=2, help="epochs to compare")
    p.add_argument("--seed", type=at_least(0), default=0, help="seed for porting.seed_everything before each build")
    p.add_argument(
        "--loop",
        choices=("one-iterator", "per-epoch"),
        default="one-iterator",
        help="MindSpore loop shape: one iterator over all epochs (as Model.train) or one per epoch",
    )
    p.add_argument(
        "--steps",
        type=at_least(1),
        default=None,
        help="batches per epoch, for an infinite sampler (detectron2's TrainingSampler, ...) or an endless "
        "IterableDataset: one iterator cut into epochs",
    )
    p.add_argument(
        "--max-batches-per-epoch",
        type=at_least(1),
        default=None,
        metavar="N",
        help="for a finite IterableDataset without __len__: walk each epoch to its end, stopping with an "
        "error past N batches",
    )
    p.add_argument(
        "--speed",
        action="store_true",
        help="afterwards, time each side alone on the same epochs (building the loader and starting its "
        "workers included) and print batches/s",
    )
    p.add_argument(
        "--resume-at",
        type=_resume_at,
        default=None,
        metavar="EPOCH:BATCH",
        help="stop the MindSpore side after that batch, save its state_dict(), and compare the rest of the stream "
        "from a port resumed from it in a new process (exact resume; BATCH 0: before the epoch)",
    )
    p.add_argument(
        "--tolerance",
        default="exact",
        metavar="exact|default|RTOL,ATOL",
        help="exact: bit for bit; default: torch.testing's per-dtype tolerances; or RTOL,ATOL",
    )
    p.add_argument("--equal-nan", action="store_true", help="NaN equals NaN")
    p.add_argument(
        "--no-set-epoch",
        action="store_true",
        help="do not call set_epoch(e) on the loader's samplers before each epoch (both sides)",
    )
    p.add_argument("--out", default="torch2ms_check", help="folder for check.md and check.json")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)
