"""convert_optimizer against torch's real optimizers: 10 steps, same init, same batches, every parameter compared.

Tolerance (rtol=1e-5, atol=1e-6), why that size: the two frameworks' forward/backward kernels (tanh, matmul
accumulation order) give gradients a few float32 ulps apart (~1e-7 relative) each step, and 10 optimizer steps
accumulate them; Adam/RMSprop divide by sqrt(v) + eps, which scales those ulps up. Measured worst over this file:
3.6e-7 absolute. The smallest formula difference we know of (MindSpore's own Adam placing eps before the bias
correction, eps=1e-3) is 2.7e-3 after 10 steps and is caught below (test_mindspore_adam_eps_placement_is_caught).
"""

from typing import Any

import numpy as np
import pytest

import porting
from tests.porting._step_helpers import initial_arrays, ms_model, run_pair, three_groups, torch_model

pytest.importorskip("torch")
pytest.importorskip("mindspore")
import mindspore as ms
import torch

RTOL, ATOL = 1e-5, 1e-6

OPTIMIZERS = {
    "SGD": lambda p: torch.optim.SGD(three_groups(p, 0.05, 1e-2), lr=0.05),
    "SGD-momentum-dampening-wd": lambda p: torch.optim.SGD(
        three_groups(p, 0.05, 1e-2), lr=0.05, momentum=0.9, dampening=0.3
    ),
    "SGD-nesterov-wd": lambda p: torch.optim.SGD(three_groups(p, 0.05, 5e-4), lr=0.05, momentum=0.937, nesterov=True),
    "SGD-maximize": lambda p: torch.optim.SGD(three_groups(p, 0.05, 1e-2), lr=0.05, momentum=0.5, maximize=True),
    "Adam": lambda p: torch.optim.Adam(three_groups(p, 0.01, 0.0), lr=0.01),
    "Adam-wd-eps-amsgrad": lambda p: torch.optim.Adam(
        three_groups(p, 0.01, 1e-2), lr=0.01, betas=(0.8, 0.99), eps=1e-3, amsgrad=True
    ),
    "AdamW": lambda p: torch.optim.AdamW(three_groups(p, 0.01, 1e-1), lr=0.01),
    "AdamW-eps-amsgrad": lambda p: torch.optim.AdamW(three_groups(p, 0.01, 5e-2), lr=0.01, eps=1e-3, amsgrad=True),
    "RMSprop": lambda p: torch.optim.RMSprop(three_groups(p, 0.01, 0.0), lr=0.01),
    "RMSprop-centered-momentum-wd": lambda p: torch.optim.RMSprop(
        three_groups(p, 0.01, 1e-2), lr=0.01, alpha=0.9, eps=1e-3, momentum=0.9, centered=True
    ),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_ten_steps_match_torch(name):
    worst, _ = run_pair(OPTIMIZERS[name], rtol=RTOL, atol=ATOL)
    assert len(worst) == 10
    assert max(worst) > 0 or name.startswith("SGD")  # the frameworks really did compute separately


def test_three_groups_keep_their_hyperparameters():
    arrays = initial_arrays()
    net = torch_model(arrays)
    m_net = ms_model(arrays)
    p = dict(net.named_parameters())
    t = torch.optim.SGD(three_groups(p, 0.01, 5e-4), lr=0.01, momentum=0.937, nesterov=True)
    m_params = dict(m_net.parameters_and_names())
    order = [n for g in t.param_groups for q in g["params"] for n, v in p.items() if v is q]
    m = porting.convert_optimizer(t, [m_params[n] for n in order])
    assert [g["weight_decay"] for g in m.param_groups] == [0.0, 5e-4, 0.0]
    assert [float(g["lr"].asnumpy()) for g in m.param_groups] == [np.float32(0.01), np.float32(0.01), np.float32(0.02)]
    assert [[q.name for q in g["params"]] for g in m.param_groups] == [
        ["scale"],
        ["fc1.weight", "fc2.weight"],
        ["fc1.bias", "fc2.bias"],
    ]
    assert all(g["nesterov"] and g["momentum"] == 0.937 for g in m.param_groups)


def test_mindspore_adam_eps_placement_is_caught():
    # MindSpore's own Adam adds eps before the bias correction: the harness at this tolerance must see it.
    from mindspore.experimental import optim as mo

    def ms_adam(t_opt, params):
        return mo.Adam(params, lr=0.01, eps=1e-3)

    with pytest.raises(AssertionError, match=r"step \d: parameters differ[\s\S]*Mismatched elements"):
        run_pair(
            lambda p: torch.optim.Adam(list(p.values()), lr=0.01, eps=1e-3),
            rtol=RTOL,
            atol=ATOL,
            convert=lambda t, m: ms_adam(t, [m[i] for i in range(len(m))]),
        )


def _params(n=1):
    return [torch.nn.Parameter(torch.ones(2)) for _ in range(n)], [
        ms.Parameter(ms.Tensor(np.ones(2, np.float32)), name=f"p{i}") for i in range(n)
    ]


def test_refuses_an_optimizer_that_has_stepped():
    t_p, m_p = _params()
    t = torch.optim.SGD(t_p, lr=0.1, momentum=0.9)
    t_p[0].grad = torch.ones(2)
    t.step()
    with pytest.raises(ValueError, match="already stepped"):
        porting.convert_optimizer(t, m_p)


def test_refuses_unknown_optimizers_and_differentiable():
    t_p, m_p = _params()
    with pytest.raises(TypeError, match="no conversion rule for optimizer torch.optim.*Adagrad"):
        porting.convert_optimizer(torch.optim.Adagrad(t_p), m_p)
    with pytest.raises(ValueError, match=r"param_groups\[0\]\['differentiable'\] = True is refused"):
        porting.convert_optimizer(torch.optim.SGD(t_p, lr=0.1, differentiable=True), m_p)


def test_a_setting_torch_reads_without_a_rule_is_refused():
    # as a future torch release adding a hyperparameter would look: in the defaults, so torch reads it
    t_p, m_p = _params()
    t = torch.optim.SGD(t_p, lr=0.1)
    t.defaults["new_knob"] = 0.5
    t.param_groups[0]["new_knob"] = 0.5
    with pytest.raises(ValueError, match=r"param_groups\[0\]\['new_knob'\] = 0.5: torch's SGD reads this setting"):
        porting.convert_optimizer(t, m_p)
    # a key torch does not read (user metadata, e.g. a group name) is carried over
    t = torch.optim.SGD([{"params": t_p, "name": "weights"}], lr=0.1)
    assert porting.convert_optimizer(t, m_p).param_groups[0]["name"] == "weights"


def test_count_and_shape_mismatches_are_named():
    t_p, m_p = _params(2)
    groups: list[dict[str, Any]] = [{"params": [t_p[0]]}, {"params": [t_p[1]], "lr": 0.2}]
    t = torch.optim.SGD(groups, lr=0.1)
    with pytest.raises(ValueError, match="expected 2 MindSpore parameters"):
        porting.convert_optimizer(t, m_p[:1])
    bad = ms.Parameter(ms.Tensor(np.ones(3, np.float32)), name="bad")
    with pytest.raises(ValueError, match=r"param_groups\[1\]\['params'\]\[0\].*shape \(3,\).*\(2,\) in torch"):
        porting.convert_optimizer(t, [m_p[0], bad])
    with pytest.raises(ValueError, match="already used"):
        porting.convert_optimizer(t, [m_p[0], m_p[0]])
    with pytest.raises(TypeError, match="expected a mindspore.Parameter, got Tensor"):
        porting.convert_optimizer(t, [m_p[0], ms.Tensor(np.ones(2, np.float32))])
    with pytest.raises(ValueError, match="without torch_module"):
        porting.convert_optimizer(t, ms.nn.Dense(2, 2))
    t_p[1].requires_grad_(False)  # frozen: torch never moves it, a MindSpore optimizer would (decay, momentum)
    with pytest.raises(ValueError, match=r"param_groups\[1\]\['params'\]\[0\].*requires_grad=False"):
        porting.convert_optimizer(t, m_p)


def test_caller_objects_untouched():
    t_p, m_p = _params()
    t = torch.optim.SGD(t_p, lr=0.1, momentum=0.9)
    before = [dict((k, v) for k, v in g.items() if k != "params") for g in t.param_groups]
    porting.convert_optimizer(t, m_p)
    assert [dict((k, v) for k, v in g.items() if k != "params") for g in t.param_groups] == before
    assert not t.state


def test_cell_parameters_matched_by_name():
    # Through the checkpoint rules (porting.convert._checkpoint, built by the checkpoint issue): a model with a
    # BatchNorm, whose torch names differ from MindSpore's, and the definition order reversed on one side.
    from mindspore import nn as mnn

    class T(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3, bias=False)
            self.bn = torch.nn.BatchNorm2d(4)
            self.fc = torch.nn.Linear(4, 2)

    class M(mnn.Cell):
        def __init__(self):
            super().__init__()
            self.fc = mnn.Dense(4, 2)  # defined first on purpose
            self.bn = mnn.BatchNorm2d(4, momentum=0.9)
            self.conv = mnn.Conv2d(3, 4, 3, pad_mode="valid", has_bias=False)

    t_net, m_net = T(), M()
    g_bn = [t_net.bn.weight]
    g_w = [t_net.conv.weight, t_net.fc.weight]
    g_b = [t_net.bn.bias, t_net.fc.bias]
    groups: list[dict[str, Any]] = [{"params": g_bn}, {"params": g_w, "weight_decay": 5e-4}, {"params": g_b}]
    t = torch.optim.SGD(groups, lr=0.01, momentum=0.937, nesterov=True)
    m = porting.convert_optimizer(t, m_net, torch_module=t_net)
    assert [[q.name for q in g["params"]] for g in m.param_groups] == [
        ["bn.gamma"],
        ["conv.weight", "fc.weight"],
        ["bn.beta", "fc.bias"],
    ]
