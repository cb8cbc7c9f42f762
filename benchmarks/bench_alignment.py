"""What ``porting.align`` and the float64 verdicts cost on real model zoos, against the plain passes, same run.

Models (random init, built from the installed packages as the tests build them, tests/porting/_zoo.py): torch
ResNet-18 (torchvision's names) / mindcv 0.3.0 ``resnet18``, and upstream YOLOv5 v7.0 ``yolov5s`` / mindyolo
0.5.0 ``yolov5s``. Timed, best of ``--repeat``:

* ``align`` in definition order (no forward) and in execution order (one traced forward on each side),
  against one plain forward on both sides;
* ``diff_layers`` elementwise and with ``reference="float64"`` (a third, float64 torch pass), against one plain
  forward + backward on both sides (torch ``backward``, MindSpore ``value_and_grad``), training mode.

Run: ``.venv/bin/python benchmarks/bench_alignment.py [--batch 2] [--size 64] [--repeat 3]
[--models resnet18,yolov5s]``.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
from _bench_util import best_time, print_table  # noqa: E402

__all__ = ["main"]


def _pair(name: str):
    import mindspore as ms
    import torch

    from tests.porting import _zoo

    torch.manual_seed(0)
    if name == "resnet18":
        t, m = _zoo.torch_resnet18(), _zoo.mindcv_resnet18()

        def t_loss(out):
            return out.sum()

        def m_loss(out):
            return out.sum()
    else:
        t, m = _zoo.torch_yolov5s(), _zoo.mindyolo_yolov5s()

        def t_loss(out):
            return sum(o.sum() for o in out)

        def m_loss(out):
            total = out[0].sum()
            for o in out[1:]:
                total = total + o.sum()
            return total

    del ms
    return t, m, t_loss, m_loss


def _rows(name: str, x: np.ndarray, repeat: int) -> list[tuple[str, str, str]]:
    """Time one model's plain passes, ``align`` and ``diff_layers``; the table rows, ratios against the plain pass."""
    import mindspore as ms
    import torch

    import porting

    t, m, t_loss, m_loss = _pair(name)
    a = porting.align(t, m, x)
    porting.load_torch_state_dict(m, t.state_dict(), alignment=a)
    t.train()
    m.set_train(True)
    grad_fn = ms.value_and_grad(lambda xs: m_loss(m(xs)), None, m.trainable_params())

    def forward():
        with torch.no_grad():
            t(torch.from_numpy(x))
        m(ms.Tensor(x))

    def forward_backward():
        t.zero_grad()
        t_loss(t(torch.from_numpy(x))).backward()
        loss, _ = grad_fn(ms.Tensor(x))
        loss.asnumpy()

    def align_definition():
        porting.align(t, m)

    def align_execution():
        porting.align(t, m, x)

    def diff_elementwise():
        porting.diff_layers(t, m, x, alignment=a)

    def diff_float64():
        porting.diff_layers(t, m, x, alignment=a, reference="float64")

    fns = (forward, forward_backward, align_definition, align_execution, diff_elementwise, diff_float64)
    for fn in fns:  # warm-up: MindSpore compiles its kernels on the first call
        fn()
    fwd, fwd_bwd, a_def, a_exec, d_elem, d_f64 = (best_time(fn, repeat) for fn in fns)
    print(f"{name}: {a.summary()}", flush=True)
    return [
        (f"{name}: plain forward, both sides", f"{fwd:.3f}", "1.00"),
        (f"{name}: align, definition order", f"{a_def:.3f}", f"{a_def / fwd:.2f}"),
        (f"{name}: align, execution order (traced)", f"{a_exec:.3f}", f"{a_exec / fwd:.2f}"),
        (f"{name}: plain forward+backward, both sides", f"{fwd_bwd:.3f}", "1.00"),
        (f"{name}: diff_layers, elementwise", f"{d_elem:.3f}", f"{d_elem / fwd_bwd:.2f}"),
        (f"{name}: diff_layers, reference=float64", f"{d_f64:.3f}", f"{d_f64 / fwd_bwd:.2f}"),
    ]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=2, help="batch size")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, best taken")
    parser.add_argument("--models", default="resnet18,yolov5s", help="comma-separated: resnet18, yolov5s")
    args = parser.parse_args(argv)

    x = np.random.default_rng(0).standard_normal((args.batch, 3, args.size, args.size)).astype(np.float32)
    rows = []
    for name in args.models.split(","):  # one function per model: its closures bind that model, not the loop's
        rows += _rows(name, x, args.repeat)
    print(
        f"\nbatch {args.batch}, {args.size} px, training mode; best of {args.repeat}; ratios against the plain "
        "pass above them"
    )
    print_table(("what", "seconds", "ratio"), rows)


if __name__ == "__main__":
    main()
