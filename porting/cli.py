"""Command-line tool: ``python -m porting`` / ``torch2ms``."""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def _cmd_env(args: argparse.Namespace) -> int:
    from porting._environment import check_environment

    report = check_environment()
    print("\n".join(report.lines()))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from porting._demo import run_demo

    return run_demo(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="torch2ms", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_env = sub.add_parser("env", help="check that the installed packages work together and print their versions")
    p_env.set_defaults(func=_cmd_env)
    p_demo = sub.add_parser("demo", help="side-by-side equivalence demo on a generated dataset")
    p_demo.add_argument("--out", default="demo_out", help="folder for the generated dataset and report")
    p_demo.add_argument("--seed", type=int, default=0)
    p_demo.add_argument("--images", type=int, default=16, help="synthetic images to generate")
    p_demo.add_argument("--imgsz", type=int, default=320, help="training image size")
    p_demo.add_argument("--batch", type=int, default=4)
    p_demo.add_argument("--workers", type=int, default=2, help="DataLoader workers on both sides")
    p_demo.add_argument("--epochs", type=int, default=2)
    p_demo.set_defaults(func=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
