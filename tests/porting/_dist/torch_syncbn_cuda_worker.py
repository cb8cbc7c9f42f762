"""torchrun worker (2 CUDA devices, nccl): torch.nn.SyncBatchNorm's real kernels vs porting.ReferenceSyncBatchNorm.

Usage: torchrun --standalone --nproc_per_node=2 torch_syncbn_cuda_worker.py OUT_DIR
"""

import os
import sys

import numpy as np
import torch
import torch.distributed as dist

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from syncbn_data import (  # type: ignore[import-not-found]  # the sibling module, through sys.path above
    MOMENTUM,
    global_batches,
    rank_slice,
    record_torch,
)

import porting


def main(out_dir: str) -> None:
    dist.init_process_group("nccl")
    rank = dist.get_rank()
    device = torch.device("cuda", rank)
    torch.cuda.set_device(device)
    steps, x_eval = global_batches("2d")
    sl = rank_slice("unequal", rank)
    rec = {}
    for name, cls in (("native", torch.nn.SyncBatchNorm), ("reference", porting.ReferenceSyncBatchNorm)):
        rec.update(
            {
                f"{name}_{k}": v
                for k, v in record_torch(cls(3, momentum=MOMENTUM).to(device), steps, x_eval, sl, device=device).items()
            }
        )
    np.savez(os.path.join(out_dir, f"cuda_rank{rank}.npz"), **rec)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
