"""torchrun worker (2 CUDA devices, nccl): torch.nn.SyncBatchNorm's real kernels vs porting.ReferenceSyncBatchNorm.

Usage: torchrun --standalone --nproc_per_node=2 torch_syncbn_cuda_worker.py OUT_DIR
"""

import os
import sys

import numpy as np
import torch
import torch.distributed as dist

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from syncbn_data import MOMENTUM, global_batches, initial_state, rank_slice  # noqa: E402

import porting  # noqa: E402


def main(out_dir: str) -> None:
    dist.init_process_group("nccl")
    rank = dist.get_rank()
    device = torch.device("cuda", rank)
    torch.cuda.set_device(device)
    steps, x_eval = global_batches("2d")
    sl = rank_slice("unequal", rank)
    rec = {}
    for name, cls in (("native", torch.nn.SyncBatchNorm), ("reference", porting.ReferenceSyncBatchNorm)):
        m = cls(3, momentum=MOMENTUM).to(device)
        with torch.no_grad():
            for k, v in initial_state().items():
                getattr(m, k).copy_(torch.from_numpy(v))
        for i, (x, g) in enumerate(steps):
            xt = torch.from_numpy(x[sl]).to(device).requires_grad_(True)
            y = m(xt)
            (y * torch.from_numpy(g[sl]).to(device)).sum().backward()
            rec[f"{name}_y{i}"], rec[f"{name}_dx{i}"] = y.detach().cpu().numpy(), xt.grad.cpu().numpy()
            rec[f"{name}_dw{i}"] = m.weight.grad.cpu().numpy().copy()
            m.weight.grad = m.bias.grad = None
            rec[f"{name}_mean{i}"], rec[f"{name}_var{i}"] = m.running_mean.cpu().numpy(), m.running_var.cpu().numpy()
        m.eval()
        with torch.no_grad():
            rec[f"{name}_eval"] = m(torch.from_numpy(x_eval[sl]).to(device)).cpu().numpy()
    np.savez(os.path.join(out_dir, f"cuda_rank{rank}.npz"), **rec)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
