"""msrun worker: porting.ReferenceSyncBatchNormCell over ops.AllReduce on CPU; saves each rank's results.

Usage: msrun --worker_num=2 --local_worker_num=2 --master_port=PORT --join=True ms_syncbn_worker.py OUT_DIR MODES
(MODES: comma-separated, of pynative and graph; one launch runs them all)
"""

import os
import sys

import numpy as np
import mindspore as ms
from mindspore.communication import get_rank, init

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from syncbn_data import MOMENTUM, SHAPES, SPLITS, global_batches, initial_state, rank_slice  # noqa: E402

import porting  # noqa: E402

NAMES = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}


def main(out_dir: str, modes: str) -> None:
    init()
    for mode in modes.split(","):
        ms.set_context(mode=ms.GRAPH_MODE if mode == "graph" else ms.PYNATIVE_MODE)
        run(out_dir, mode, get_rank())


def run(out_dir: str, mode: str, rank: int) -> None:
    for kind in SHAPES:
        steps, x_eval = global_batches(kind)
        for split in SPLITS:
            sl = rank_slice(split, rank)
            cell = porting.ReferenceSyncBatchNormCell(SHAPES[kind][1], momentum=1 - MOMENTUM)
            for k, v in initial_state().items():
                getattr(cell, NAMES[k]).set_data(ms.Tensor(v))
            cell.set_train(True)

            def loss(x, g):
                y = cell(x)
                return (y * g).sum(), y

            grad_fn = ms.value_and_grad(loss, grad_position=0, weights=[cell.gamma, cell.beta], has_aux=True)
            rec = {}
            for i, (x, g) in enumerate(steps):
                (_, y), (dx, (dw, db)) = grad_fn(ms.Tensor(x[sl]), ms.Tensor(g[sl]))
                rec[f"y{i}"], rec[f"dx{i}"], rec[f"dw{i}"], rec[f"db{i}"] = (t.asnumpy() for t in (y, dx, dw, db))
                rec[f"mean{i}"], rec[f"var{i}"] = cell.moving_mean.asnumpy().copy(), cell.moving_variance.asnumpy().copy()
                rec[f"count{i}"] = cell.num_batches_tracked.asnumpy().copy()
            cell.set_train(False)
            rec["eval"] = cell(ms.Tensor(x_eval[sl])).asnumpy()
            rec["world"] = np.array(cell.world)
            np.savez(os.path.join(out_dir, f"ms_{mode}_{kind}_{split}_rank{rank}.npz"), **rec)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
