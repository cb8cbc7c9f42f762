"""msrun worker (2 Ascend devices): mindspore.nn.SyncBatchNorm's real kernel vs porting.ReferenceSyncBatchNormCell.

Usage: msrun --worker_num=2 --local_worker_num=2 --master_port=PORT --join=True ms_syncbn_ascend_worker.py OUT_DIR
"""

import os
import sys

import numpy as np
import mindspore as ms
from mindspore import nn
from mindspore.communication import get_rank, init

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from syncbn_data import MOMENTUM, global_batches, initial_state, rank_slice  # noqa: E402

import porting  # noqa: E402

NAMES = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}


def main(out_dir: str) -> None:
    ms.set_context(device_target="Ascend", mode=ms.PYNATIVE_MODE)
    init()
    rank = get_rank()
    steps, x_eval = global_batches("2d")
    sl = rank_slice("unequal", rank)
    rec = {}
    for name, build in (("native", lambda: nn.SyncBatchNorm(3, momentum=1 - MOMENTUM)),
                        ("reference", lambda: porting.ReferenceSyncBatchNormCell(3, momentum=1 - MOMENTUM))):
        cell = build()
        for k, v in initial_state().items():
            getattr(cell, NAMES[k]).set_data(ms.Tensor(v))
        cell.set_train(True)

        def loss(x, g):
            y = cell(x)
            return (y * g).sum(), y

        grad_fn = ms.value_and_grad(loss, grad_position=0, weights=[cell.gamma, cell.beta], has_aux=True)
        for i, (x, g) in enumerate(steps):
            (_, y), (dx, (dw, _)) = grad_fn(ms.Tensor(x[sl]), ms.Tensor(g[sl]))
            rec[f"{name}_y{i}"], rec[f"{name}_dx{i}"], rec[f"{name}_dw{i}"] = y.asnumpy(), dx.asnumpy(), dw.asnumpy()
            rec[f"{name}_mean{i}"] = cell.moving_mean.asnumpy().copy()
            rec[f"{name}_var{i}"] = cell.moving_variance.asnumpy().copy()
        cell.set_train(False)
        rec[f"{name}_eval"] = cell(ms.Tensor(x_eval[sl])).asnumpy()
    np.savez(os.path.join(out_dir, f"ascend_rank{rank}.npz"), **rec)


if __name__ == "__main__":
    main(sys.argv[1])
