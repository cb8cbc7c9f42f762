"""Overhead of ``porting.diff_layers`` against one plain forward + backward on both sides, same run.

Model: a 20-layer CNN (6 x Conv-BN-ReLU, adaptive average pool, Linear), batch 8, 224 px by default,
training mode, cross-entropy. "plain" is torch forward + backward plus MindSpore ``value_and_grad``
forward + backward, without hooks; "diff_layers" is the whole call (hooks, copies, both passes, every
comparison, state restored). Best of ``--repeat`` runs each.

Run: ``.venv/bin/python benchmarks/bench_diff_layers.py [--batch 8] [--size 224] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _bench_util import best_time

__all__ = ["main"]

CHANNELS = [(3, 32, 2), (32, 32, 1), (32, 64, 2), (64, 64, 1), (64, 128, 2), (128, 128, 1)]


def _models():
    import mindspore as ms
    import torch

    from porting import load_torch_state_dict

    class T(torch.nn.Module):
        def __init__(self):
            super().__init__()
            for i, (cin, cout, s) in enumerate(CHANNELS):
                setattr(self, f"conv{i}", torch.nn.Conv2d(cin, cout, 3, stride=s, padding=1, bias=False))
                setattr(self, f"bn{i}", torch.nn.BatchNorm2d(cout))
                setattr(self, f"act{i}", torch.nn.ReLU())
            self.pool = torch.nn.AdaptiveAvgPool2d(1)
            self.fc = torch.nn.Linear(128, 10)

        def forward(self, x):
            for i in range(len(CHANNELS)):
                x = getattr(self, f"act{i}")(getattr(self, f"bn{i}")(getattr(self, f"conv{i}")(x)))
            return self.fc(self.pool(x).flatten(1))

    class M(ms.nn.Cell):
        def __init__(self):
            super().__init__()
            for i, (cin, cout, s) in enumerate(CHANNELS):
                setattr(
                    self, f"conv{i}", ms.nn.Conv2d(cin, cout, 3, stride=s, pad_mode="pad", padding=1, has_bias=False)
                )
                setattr(self, f"bn{i}", ms.nn.BatchNorm2d(cout, momentum=0.9))
                setattr(self, f"act{i}", ms.nn.ReLU())
            self.pool = ms.nn.AdaptiveAvgPool2d(1)
            self.fc = ms.nn.Dense(128, 10)

        def construct(self, x):
            for i in range(len(CHANNELS)):
                x = getattr(self, f"act{i}")(getattr(self, f"bn{i}")(getattr(self, f"conv{i}")(x)))
            return self.fc(self.pool(x).flatten(start_dim=1))

    torch.manual_seed(0)
    t, m = T(), M()
    load_torch_state_dict(m, t.state_dict())
    m.set_train(True)
    return t, m


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=8, help="batch size")
    parser.add_argument("--size", type=int, default=224, help="image side in pixels")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, best taken")
    args = parser.parse_args(argv)

    import mindspore as ms
    import torch

    import porting

    t, m = _models()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.batch, 3, args.size, args.size)).astype(np.float32)
    y = rng.integers(0, 10, args.batch).astype(np.int64)
    grad_fn = ms.value_and_grad(lambda a, b: ms.ops.cross_entropy(m(a), b), None, m.trainable_params())

    def torch_plain():
        t.zero_grad()
        torch.nn.functional.cross_entropy(t(torch.from_numpy(x)), torch.from_numpy(y)).backward()

    def ms_plain():
        loss, grads = grad_fn(ms.Tensor(x), ms.Tensor(y))
        loss.asnumpy()

    report = {}

    def diff():
        report["r"] = porting.diff_layers(t, m, x, loss="cross_entropy", target=y)

    for fn in (torch_plain, ms_plain, diff):  # warm-up (MindSpore compiles its kernels on the first call)
        fn()
    t_plain, m_plain, t_diff = (best_time(fn, args.repeat) for fn in (torch_plain, ms_plain, diff))
    r = report["r"]
    plain = t_plain + m_plain
    print(f"20-layer CNN, batch {args.batch}, {args.size} px, training mode; best of {args.repeat}")
    print(f"  torch forward+backward      {t_plain:8.3f} s")
    print(f"  MindSpore forward+backward  {m_plain:8.3f} s")
    print(f"  both (plain)                {plain:8.3f} s")
    print(f"  diff_layers                 {t_diff:8.3f} s   ratio {t_diff / plain:.2f}x plain (target <= 3x)")
    print(f"  layers compared: {len(r.layers)}; verdict: {r.headline()}")


if __name__ == "__main__":
    main()
