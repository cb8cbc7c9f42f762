"""The global batches every SyncBatchNorm check uses, and the one way each side records its training steps.

Batches are generated once from a fixed seed, identically in each process. Importing this needs numpy only
(the recorders import their framework when called), so the torch workers, the MindSpore workers and the test
process share it.
"""

import numpy as np

__all__ = [
    "CHANNELS",
    "SHAPES",
    "SPLITS",
    "STEPS",
    "MOMENTUM",
    "MS_NAMES",
    "global_batches",
    "initial_state",
    "rank_slice",
    "record_torch",
    "record_mindspore",
]

CHANNELS = 3
STEPS = 4
MOMENTUM = 0.1  # torch's convention
SHAPES = {"2d": (8, CHANNELS, 3, 4), "1d": (8, CHANNELS)}  # global batch of 8
SPLITS = {"equal": (4, 4), "unequal": (3, 5)}
MS_NAMES = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}


def global_batches(kind: str):
    """``[(x, g)] * STEPS`` then the eval batch: inputs (mean 3, std 2) and the loss cotangents."""
    rng = np.random.default_rng({"2d": 10, "1d": 11}[kind])
    shape = SHAPES[kind]
    steps = [
        ((rng.standard_normal(shape) * 2 + 3).astype(np.float32), rng.standard_normal(shape).astype(np.float32))
        for _ in range(STEPS)
    ]
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


def record_torch(module, steps, x_eval, sl: slice = slice(None), device: str = "cpu") -> dict:
    """Load :func:`initial_state` into a torch BatchNorm-like ``module``, train it on ``x[sl]`` for every step,
    then eval: ``y{i}, dx{i}, dw{i}, db{i}, mean{i}, var{i}, count{i}`` and ``eval`` as numpy arrays."""
    import torch

    with torch.no_grad():
        for k, v in initial_state().items():
            getattr(module, k).copy_(torch.from_numpy(v))
    module.train()
    rec = {}
    for i, (x, g) in enumerate(steps):
        xt = torch.from_numpy(x[sl]).to(device).requires_grad_(True)
        y = module(xt)
        (y * torch.from_numpy(g[sl]).to(device)).sum().backward()
        rec[f"y{i}"], rec[f"dx{i}"] = y.detach().cpu().numpy(), xt.grad.cpu().numpy()
        rec[f"dw{i}"], rec[f"db{i}"] = module.weight.grad.cpu().numpy().copy(), module.bias.grad.cpu().numpy().copy()
        module.weight.grad = module.bias.grad = None
        rec[f"mean{i}"] = module.running_mean.cpu().numpy().copy()
        rec[f"var{i}"] = module.running_var.cpu().numpy().copy()
        rec[f"count{i}"] = module.num_batches_tracked.cpu().numpy().copy()
    module.eval()
    with torch.no_grad():
        rec["eval"] = module(torch.from_numpy(x_eval[sl]).to(device)).cpu().numpy()
    return rec


def record_mindspore(cell, steps, x_eval, sl: slice = slice(None)) -> dict:
    """:func:`record_torch` for a MindSpore BatchNorm-like cell (gradients through ``value_and_grad``);
    ``count{i}`` only where the cell carries torch's counter."""
    import mindspore as ms

    for k, v in initial_state().items():
        getattr(cell, MS_NAMES[k]).set_data(ms.Tensor(v))
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
        if hasattr(cell, "num_batches_tracked"):  # the native SyncBatchNorm keeps no counter (not an assertion)
            rec[f"count{i}"] = cell.num_batches_tracked.asnumpy().copy()
    cell.set_train(False)
    rec["eval"] = cell(ms.Tensor(x_eval[sl])).asnumpy()
    return rec
