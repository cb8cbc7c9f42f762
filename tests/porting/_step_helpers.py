"""A tiny two-framework regression model and a K-step loop, shared by the optimizer and schedule tests.

Weights, inputs and targets are drawn once with numpy and fed to both frameworks (the frameworks'
own seeds give different numbers). The model has three kinds of parameters, as YOLOv5 groups them:
a per-feature scale (like a BN weight, no decay), weights (decay) and biases.
"""

from __future__ import annotations

import numpy as np

import porting

IN, HID, OUT, BATCH = 6, 5, 3, 8


def initial_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "scale": (1 + 0.1 * rng.standard_normal(HID)).astype(np.float32),
        "fc1.weight": (0.4 * rng.standard_normal((HID, IN))).astype(np.float32),
        "fc1.bias": (0.1 * rng.standard_normal(HID)).astype(np.float32),
        "fc2.weight": (0.4 * rng.standard_normal((OUT, HID))).astype(np.float32),
        "fc2.bias": (0.1 * rng.standard_normal(OUT)).astype(np.float32),
    }


def batches(steps: int, seed: int = 1) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [
        (rng.standard_normal((BATCH, IN)).astype(np.float32), rng.standard_normal((BATCH, OUT)).astype(np.float32))
        for _ in range(steps)
    ]


def torch_model(arrays):
    import torch

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = torch.nn.Linear(IN, HID)
            self.scale = torch.nn.Parameter(torch.ones(HID))
            self.fc2 = torch.nn.Linear(HID, OUT)

        def forward(self, x):
            return self.fc2(torch.tanh(self.fc1(x)) * self.scale)

    net = Net()
    with torch.no_grad():
        for name, p in net.named_parameters():
            p.copy_(torch.from_numpy(arrays[name]))
    return net


def ms_model(arrays):
    import mindspore as ms
    from mindspore import nn, ops

    class Net(nn.Cell):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Dense(IN, HID)
            self.scale = ms.Parameter(ms.Tensor(np.ones(HID, np.float32)), name="scale")
            self.fc2 = nn.Dense(HID, OUT)

        def construct(self, x):
            return self.fc2(ops.tanh(self.fc1(x)) * self.scale)

    net = Net()
    params = dict(net.parameters_and_names())
    for name, value in arrays.items():
        params[name].set_data(ms.Tensor(value))
    return net


def three_groups(params: dict, lr: float, weight_decay: float) -> list[dict]:
    """YOLOv5's grouping: scale (BN-weight-like) without decay, weights with decay, biases (own lr)."""
    return [
        {"params": [params["scale"]], "weight_decay": 0.0},
        {"params": [params["fc1.weight"], params["fc2.weight"]], "weight_decay": weight_decay},
        {"params": [params["fc1.bias"], params["fc2.bias"]], "lr": lr * 2, "weight_decay": 0.0},
    ]


ORDER = ["scale", "fc1.weight", "fc2.weight", "fc1.bias", "fc2.bias"]  # three_groups' parameter order


def run_pair(make_torch_optimizer, make_torch_scheduler=None, *, steps=10, rtol, atol, seed=0, convert=None):
    """Run both sides ``steps`` steps; after each, compare every parameter and the learning rates.

    ``convert(torch_optimizer, ms_params)`` replaces porting.convert_optimizer (to show what another
    MindSpore optimizer does). Returns the per-step worst absolute parameter difference and the list of
    (torch lrs, MindSpore lrs).
    Raises AssertionError (assert_close-style text from porting.compare) at the first divergent step.
    """
    import mindspore as ms
    import torch

    arrays = initial_arrays(seed)
    t_net, m_net = torch_model(arrays), ms_model(arrays)
    t_params = dict(t_net.named_parameters())
    m_params = dict(m_net.parameters_and_names())
    t_opt = make_torch_optimizer(t_params)
    t_sched = make_torch_scheduler(t_opt) if make_torch_scheduler else None
    # parameters in the torch optimizer's order, by name (the names are the same on this model)
    t_names = {id(p): n for n, p in t_params.items()}
    m_list = [m_params[t_names[id(p)]] for g in t_opt.param_groups for p in g["params"]]
    m_opt = (convert or porting.convert_optimizer)(t_opt, m_list)
    m_sched = porting.convert_lr_scheduler(t_sched, m_opt) if t_sched else None

    def forward(x, y):
        return ((m_net(x) - y) ** 2).mean()

    grad_fn = ms.value_and_grad(forward, None, m_opt.parameters)
    worst, lrs = [], []
    for step, (x, y) in enumerate(batches(steps, seed + 1)):
        t_opt.zero_grad()
        loss = ((t_net(torch.from_numpy(x)) - torch.from_numpy(y)) ** 2).mean()
        loss.backward()
        t_opt.step()
        _, grads = grad_fn(ms.Tensor(x), ms.Tensor(y))
        m_opt(grads)
        if t_sched:
            t_sched.step()
            m_sched.step()
            t_lr, m_lr = t_sched.get_last_lr(), m_sched.get_last_lr()
            lrs.append((t_lr, m_lr))
            # the schedule is torch's own recurrence on python floats: equal, not close
            r = porting.compare(m_lr, t_lr, rtol=0.0, atol=0.0)
            assert r.ok, f"step {step}: learning rates differ\n{r}"
            m_group_lrs = [np.float32(g["lr"].asnumpy()) for g in m_opt.param_groups]
            r = porting.compare(m_group_lrs, [np.float32(v) for v in t_lr], rtol=0.0, atol=0.0)
            assert r.ok, f"step {step}: the MindSpore groups' float32 lr differ\n{r}"
        actual = {n: m_params[n] for n in arrays}
        expected = {n: p.detach() for n, p in t_params.items()}
        r = porting.compare(actual, expected, rtol=rtol, atol=atol)
        assert r.ok, f"step {step}: parameters differ\n{r}"
        worst.append(r.worst_abs_diff)
    return worst, lrs
