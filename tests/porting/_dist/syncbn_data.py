"""The global batches every SyncBatchNorm check uses: generated once from a fixed seed, identically in each process.

Framework-free (numpy only) so the torch worker, the MindSpore worker and the test process share it.
"""

import numpy as np

__all__ = ["CHANNELS", "SHAPES", "SPLITS", "STEPS", "MOMENTUM", "global_batches", "initial_state", "rank_slice"]

CHANNELS = 3
STEPS = 4
MOMENTUM = 0.1  # torch's convention
SHAPES = {"2d": (8, CHANNELS, 3, 4), "1d": (8, CHANNELS)}  # global batch of 8
SPLITS = {"equal": (4, 4), "unequal": (3, 5)}


def global_batches(kind: str):
    """``[(x, g)] * STEPS`` then the eval batch: inputs (mean 3, std 2) and the loss cotangents."""
    rng = np.random.default_rng({"2d": 10, "1d": 11}[kind])
    shape = SHAPES[kind]
    steps = [((rng.standard_normal(shape) * 2 + 3).astype(np.float32), rng.standard_normal(shape).astype(np.float32))
             for _ in range(STEPS)]
    x_eval = (rng.standard_normal(shape) * 2 + 3).astype(np.float32)
    return steps, x_eval


def initial_state():
    """weight, bias, running_mean, running_var (non-trivial, so a swap shows)."""
    rng = np.random.default_rng(5)
    return {
        "weight": rng.uniform(0.5, 1.5, CHANNELS).astype(np.float32),
        "bias": rng.uniform(-0.5, 0.5, CHANNELS).astype(np.float32),
        "running_mean": rng.uniform(-1, 1, CHANNELS).astype(np.float32),
        "running_var": rng.uniform(0.5, 2, CHANNELS).astype(np.float32),
    }


def rank_slice(split: str, rank: int) -> slice:
    sizes = SPLITS[split]
    start = sum(sizes[:rank])
    return slice(start, start + sizes[rank])
