"""Factories for ``torch2ms diff`` tests: (torch module, MindSpore cell, inputs[, target])."""

import numpy as np


def _pair(ln_eps):
    import mindspore as ms
    import torch

    from porting.convert._checkpoint import load_torch_state_dict

    torch.manual_seed(0)
    t = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.LayerNorm(8), torch.nn.Linear(8, 3))
    m = ms.nn.SequentialCell([ms.nn.Dense(6, 8), ms.nn.LayerNorm((8,), epsilon=ln_eps), ms.nn.Dense(8, 3)])
    load_torch_state_dict(m, t.state_dict())
    m.set_train(True)
    x = (0.01 * np.random.default_rng(0).standard_normal((4, 6))).astype(np.float32)
    return t, m, x, np.array([0, 1, 2, 0], np.int64)


def good():
    return _pair(1e-5)


def ln_eps_left():
    return _pair(1e-7)


def not_a_pair():
    return [1, 2]
