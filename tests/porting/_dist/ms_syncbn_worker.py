"""msrun worker: porting.ReferenceSyncBatchNormCell over ops.AllReduce on CPU; saves each rank's results.

Usage: msrun --worker_num=2 --local_worker_num=2 --master_port=PORT --join=True ms_syncbn_worker.py OUT_DIR MODES
(MODES: comma-separated, of pynative and graph; one launch runs them all)
"""

import os
import sys

import mindspore as ms
import numpy as np
from mindspore.communication import get_rank, init

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from syncbn_data import (  # type: ignore[import-not-found]  # the sibling module, through sys.path above
    MOMENTUM,
    SHAPES,
    SPLITS,
    global_batches,
    rank_slice,
    record_mindspore,
)

import porting


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
            rec = record_mindspore(cell, steps, x_eval, sl)
            rec["world"] = np.array(cell.world)
            np.savez(os.path.join(out_dir, f"ms_{mode}_{kind}_{split}_rank{rank}.npz"), **rec)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
