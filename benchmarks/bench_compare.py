"""Throughput of ``porting.compare`` vs ``torch.testing.assert_close`` on the same large arrays, one thread.

Run: ``.venv/bin/python benchmarks/bench_compare.py [--mb 128] [--repeat 5]``.
Bytes per second count one side's array (``nbytes`` of ``actual``), for both tools alike.
"""

from __future__ import annotations

import os

# One core: set before numpy/torch start their thread pools.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import functools  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

import porting  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _bench_util import best_time  # noqa: E402

__all__ = ["main"]


def _cases(nbytes: int) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    rng = np.random.default_rng(0)
    f32 = rng.standard_normal(nbytes // 4, dtype=np.float32)
    close = f32 + (f32 * np.float32(1e-7))  # within float32's default tolerance, not equal
    u8 = rng.integers(0, 256, nbytes, dtype=np.uint8)
    t = torch.from_numpy
    return [
        ("float32 equal", t(f32), t(f32.copy())),
        ("float32 within tolerance", t(close), t(f32)),
        ("uint8 equal", t(u8), t(u8.copy())),
    ]


def main(argv: list[str] | None = None) -> None:
    """Print, per case, compare's and assert_close's GB/s and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=128, help="size of each array in MiB")
    parser.add_argument("--repeat", type=int, default=5, help="best of this many runs")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, numpy {np.__version__}, torch threads {torch.get_num_threads()}, "
          f"array size {args.mb} MiB, best of {args.repeat}")  # fmt: skip
    print(f"{'case':28s} {'inputs':14s} {'compare GB/s':>13s} {'assert_close GB/s':>18s} {'speed-up':>9s}")
    for name, actual, expected in _cases(args.mb * 2**20):
        torch.testing.assert_close(actual, expected)  # same verdict first: both must pass
        assert porting.compare(actual, expected).ok
        t_torch = best_time(functools.partial(torch.testing.assert_close, actual, expected), args.repeat)
        gb = actual.numel() * actual.element_size() / 1e9
        for inputs, a, e in (("torch tensors", actual, expected), ("numpy arrays", actual.numpy(), expected.numpy())):
            t_ours = best_time(functools.partial(porting.compare, a, e), args.repeat)
            print(f"{name:28s} {inputs:14s} {gb / t_ours:13.2f} {gb / t_torch:18.2f} {t_torch / t_ours:8.1f}x")


if __name__ == "__main__":
    main()
