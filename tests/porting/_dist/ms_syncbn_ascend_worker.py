"""msrun worker (2 Ascend devices): mindspore.nn.SyncBatchNorm's real kernel vs porting.ReferenceSyncBatchNormCell.

Usage: msrun --worker_num=2 --local_worker_num=2 --master_port=PORT --join=True ms_syncbn_ascend_worker.py OUT_DIR
"""

import os
import sys

import mindspore as ms
import numpy as np
from mindspore import nn
from mindspore.communication import get_rank, init

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from syncbn_data import (  # type: ignore[import-not-found]  # the sibling module, through sys.path above
    MOMENTUM,
    global_batches,
    rank_slice,
    record_mindspore,
)

import porting


def main(out_dir: str) -> None:
    ms.set_context(device_target="Ascend", mode=ms.PYNATIVE_MODE)
    init()
    rank = get_rank()
    steps, x_eval = global_batches("2d")
    sl = rank_slice("unequal", rank)
    rec = {}
    for name, build in (
        ("native", lambda: nn.SyncBatchNorm(3, momentum=1 - MOMENTUM)),
        ("reference", lambda: porting.ReferenceSyncBatchNormCell(3, momentum=1 - MOMENTUM)),
    ):
        # mindspore.nn.SyncBatchNorm keeps no batch counter: compared on everything else
        rec.update(
            {
                f"{name}_{k}": v
                for k, v in record_mindspore(build(), steps, x_eval, sl).items()
                if not k.startswith("count")
            }
        )
    np.savez(os.path.join(out_dir, f"ascend_rank{rank}.npz"), **rec)


if __name__ == "__main__":
    main(sys.argv[1])
