"""torchrun worker: porting.ReferenceSyncBatchNorm over gloo; saves each rank's outputs, gradients and running stats.

Usage: torchrun --standalone --nproc_per_node=2 torch_syncbn_worker.py OUT_DIR
"""

import os
import sys

import numpy as np
import torch
import torch.distributed as dist

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from syncbn_data import (  # type: ignore[import-not-found]  # the sibling module, through sys.path above
    MOMENTUM,
    SHAPES,
    SPLITS,
    global_batches,
    rank_slice,
    record_torch,
)

import porting


def main(out_dir: str) -> None:
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    for kind in SHAPES:
        steps, x_eval = global_batches(kind)
        for split in SPLITS:
            sl = rank_slice(split, rank)
            m = porting.ReferenceSyncBatchNorm(SHAPES[kind][1], momentum=MOMENTUM)
            rec = record_torch(m, steps, x_eval, sl)
            np.savez(os.path.join(out_dir, f"torch_{kind}_{split}_rank{rank}.npz"), **rec)
    # the fact the reference exists for: torch's own SyncBatchNorm cannot train on CPU with a process group
    try:
        torch.nn.SyncBatchNorm(3).train()(torch.ones(4, 3, 2, 2))
        message = "no error"
    except Exception as exc:  # any exception: recorded for the test to check
        message = f"{type(exc).__name__}: {exc}"
    with open(os.path.join(out_dir, f"torch_native_rank{rank}.txt"), "w") as f:
        f.write(message)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
    # Every output is written and closed: leave without the interpreter's teardown, where gloo's threads once
    # aborted a rank ("terminate called without an active exception", exit -6) after the work was done.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
