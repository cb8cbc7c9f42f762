"""torchrun worker: porting.ReferenceSyncBatchNorm over gloo; saves each rank's outputs, gradients and running stats.

Usage: torchrun --standalone --nproc_per_node=2 torch_syncbn_worker.py OUT_DIR
"""

import os
import sys

import numpy as np
import torch
import torch.distributed as dist

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from syncbn_data import MOMENTUM, SHAPES, SPLITS, global_batches, initial_state, rank_slice  # noqa: E402

import porting  # noqa: E402


def main(out_dir: str) -> None:
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    for kind in SHAPES:
        steps, x_eval = global_batches(kind)
        for split in SPLITS:
            sl = rank_slice(split, rank)
            m = porting.ReferenceSyncBatchNorm(SHAPES[kind][1], momentum=MOMENTUM)
            with torch.no_grad():
                for k, v in initial_state().items():
                    getattr(m, k).copy_(torch.from_numpy(v))
            rec = {}
            for i, (x, g) in enumerate(steps):
                xt = torch.from_numpy(x[sl]).requires_grad_(True)
                y = m(xt)
                (y * torch.from_numpy(g[sl])).sum().backward()
                rec[f"y{i}"], rec[f"dx{i}"] = y.detach().numpy(), xt.grad.numpy()
                rec[f"dw{i}"], rec[f"db{i}"] = m.weight.grad.numpy().copy(), m.bias.grad.numpy().copy()
                m.weight.grad = m.bias.grad = None
                rec[f"mean{i}"], rec[f"var{i}"] = m.running_mean.numpy().copy(), m.running_var.numpy().copy()
                rec[f"count{i}"] = m.num_batches_tracked.numpy().copy()
            m.eval()
            with torch.no_grad():
                rec["eval"] = m(torch.from_numpy(x_eval[sl])).numpy()
            np.savez(os.path.join(out_dir, f"torch_{kind}_{split}_rank{rank}.npz"), **rec)
    # the fact the reference exists for: torch's own SyncBatchNorm cannot train on CPU with a process group
    try:
        torch.nn.SyncBatchNorm(3).train()(torch.ones(4, 3, 2, 2))
        message = "no error"
    except Exception as exc:  # noqa: BLE001 - recorded for the test to check
        message = f"{type(exc).__name__}: {exc}"
    with open(os.path.join(out_dir, f"torch_native_rank{rank}.txt"), "w") as f:
        f.write(message)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
