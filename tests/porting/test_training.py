"""compare_training on a small Conv-BN-ReLU classifier, 20 steps, against torch's real optimizers/schedulers.

Tolerance: porting.compare's float32 defaults (rtol 1.3e-6, atol 1e-5, torch's assert_close table) for loss,
gradients, parameters and running stats, at every one of the 20 steps. Why that is enough: the frameworks'
conv / BatchNorm / cross-entropy kernels differ by float32 ulps, and the converted optimizers apply torch's
formulas op for op, so nothing grows: measured worst over both runs 1.2e-6 (loss, from the first step on),
1.5e-7 (gradients), 1.8e-7 (parameters), 6.6e-7 (running stats). Learning rates are compared exactly.
"""

import numpy as np
import pytest

import porting

pytest.importorskip("torch")
pytest.importorskip("mindspore")
import torch
from mindspore import nn as mnn
from mindspore import ops

RTOL = ATOL = None  # the per-dtype defaults, see the module docstring
STEPS = 20


class TorchClassifier(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(8)
        self.conv2 = torch.nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(16)
        self.fc = torch.nn.Linear(16, 10)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        return self.fc(x.mean((2, 3)))


class MsClassifier(mnn.Cell):
    def __init__(self):
        super().__init__()
        self.conv1 = mnn.Conv2d(3, 8, 3, pad_mode="pad", padding=1, has_bias=False)
        self.bn1 = mnn.BatchNorm2d(8, momentum=0.9)
        self.conv2 = mnn.Conv2d(8, 16, 3, stride=2, pad_mode="pad", padding=1, has_bias=False)
        self.bn2 = mnn.BatchNorm2d(16, momentum=0.9)
        self.fc = mnn.Dense(16, 10)

    def construct(self, x):
        x = ops.relu(self.bn1(self.conv1(x)))
        x = ops.relu(self.bn2(self.conv2(x)))
        return self.fc(x.mean((2, 3)))


def _batches(n=STEPS, seed=0):
    # four batches, cycled (five epochs in 20 steps), so that the loss falls as the net fits them
    rng = np.random.default_rng(seed)
    four = [
        (rng.standard_normal((8, 3, 16, 16)).astype(np.float32), rng.integers(0, 10, 8).astype(np.int64))
        for _ in range(4)
    ]
    return [four[i % 4] for i in range(n)]


def _groups(net):
    # YOLOv5's three groups: BN weights without decay, other weights with decay, biases
    bn_w = [m.weight for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    w = [net.conv1.weight, net.conv2.weight, net.fc.weight]
    b = [m.bias for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)] + [net.fc.bias]
    return [{"params": bn_w}, {"params": w, "weight_decay": 5e-4}, {"params": b}]


def _run(make_opt, make_sched):
    torch.manual_seed(0)
    t = TorchClassifier()
    m = MsClassifier()
    porting.load_torch_state_dict(m, t.state_dict())
    m.set_train(True)
    t_opt = make_opt(_groups(t))
    t_sched = make_sched(t_opt)
    m_opt = porting.convert_optimizer(t_opt, m, torch_module=t)
    m_sched = porting.convert_lr_scheduler(t_sched, m_opt)
    return porting.compare_training(
        (t, torch.nn.functional.cross_entropy, t_opt, t_sched),
        (m, ops.cross_entropy, m_opt, m_sched),
        _batches(),
        steps=STEPS,
        rtol=RTOL,
        atol=ATOL,
    )


CASES = {
    "SGD-nesterov-cosine": (
        lambda g: torch.optim.SGD(g, lr=0.05, momentum=0.937, nesterov=True),
        lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=STEPS),
    ),
    "AdamW-one-cycle": (
        lambda g: torch.optim.AdamW(g, lr=1e-3, weight_decay=1e-2),
        lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=1e-2, total_steps=STEPS),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_twenty_steps_match(case):
    r = _run(*CASES[case])
    assert r.ok, str(r)
    assert len(r.steps) == STEPS
    t_curve, m_curve = np.array(r.torch_losses, np.float32), np.array(r.ms_losses, np.float32)
    porting.assert_equivalent(m_curve, t_curve)  # the float32 defaults, as every step above
    assert t_curve[-4:].mean() < t_curve[:4].mean() - 0.1  # it really trained
    text = str(r)
    assert f"all {STEPS} steps match" in text and text.count("\n") > STEPS


def test_divergence_is_named_with_step_and_tensor():
    # The same port, but the MindSpore side gets MindSpore's own Adam, which adds eps before the bias
    # correction: with eps=1e-3 the parameters part at the first step, and the report says so.
    from mindspore.experimental import optim as mo

    torch.manual_seed(0)
    t, m = TorchClassifier(), MsClassifier()
    porting.load_torch_state_dict(m, t.state_dict())
    m.set_train(True)
    t_opt = torch.optim.Adam(t.parameters(), lr=1e-2, eps=1e-3)
    m_opt = mo.Adam(m.trainable_params(), lr=1e-2, eps=1e-3)
    state = torch.get_rng_state()

    def t_loss(o, y):  # draws from torch's global stream each step, as a dropout layer would
        return torch.nn.functional.cross_entropy(o, y) + 0.0 * torch.rand(())

    r = porting.compare_training(
        (t, t_loss, t_opt), (m, ops.cross_entropy, m_opt), _batches(3), steps=3, rtol=RTOL, atol=ATOL
    )
    assert torch.equal(torch.get_rng_state(), state)  # the caller's torch random stream is left as it was
    assert not r.ok
    assert (r.first_step, r.first_what) == (0, "parameters"), str(r)
    assert len(r.steps) == 1  # it stopped there
    name = r.first_mismatch.path[0]
    assert name in dict(t.named_parameters())
    assert f"first divergence: step 0, parameters ['{name}']" in str(r) and "Mismatched elements" in str(r)


def test_bad_arguments():
    t, m = TorchClassifier(), MsClassifier()
    t_ce, m_ce = torch.nn.functional.cross_entropy, ops.cross_entropy
    with pytest.raises(ValueError, match="steps: expected an integer >= 1"):
        porting.compare_training((t, t_ce, None), (m, m_ce, None), [], steps=0)
    with pytest.raises(TypeError, match=r"torch_side: expected \(model, loss_fn, optimizer\[, scheduler\]\)"):
        porting.compare_training(t, (m, m_ce, None), [], steps=1)
    with pytest.raises(TypeError, match=r"ms_side\[1\] \(loss_fn\): expected a callable .* got NoneType"):
        porting.compare_training((t, t_ce, None), (m, None, None), [], steps=1)
    with pytest.raises(ValueError, match="torch module is in train mode, the MindSpore cell in eval mode"):
        porting.compare_training((t, t_ce, None), (m, m_ce, None), [], steps=1)
    m.set_train(True)
    with pytest.raises(TypeError, match="expected a torch-style MindSpore optimizer.*got SGD"):
        porting.compare_training((t, t_ce, None), (m, m_ce, mnn.SGD(m.trainable_params())), [], steps=1)
