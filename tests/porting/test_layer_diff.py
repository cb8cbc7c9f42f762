"""diff_layers on a correct port and on four ports with one deliberate mistake each.

Each mistaken port must be named exactly at the mistaken layer as the first divergence. Tolerances are the
per-dtype defaults of porting.compare (float32: rtol 1.3e-6, atol 1e-5): on this small net the correct port's
worst difference is below them (asserted), and each mistake exceeds them by orders of magnitude (asserted).
"""

import numpy as np
import pytest

import porting
from porting.convert._checkpoint import load_torch_state_dict

pytest.importorskip("torch")
pytest.importorskip("mindspore")
import mindspore as ms
import torch
from mindspore import nn as mnn
from mindspore import ops


class TorchNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.bn1 = torch.nn.BatchNorm2d(8)
        self.act = torch.nn.ReLU()
        self.conv2 = torch.nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.ln = torch.nn.LayerNorm(8)
        self.fc = torch.nn.Linear(8, 8)
        self.head = torch.nn.Linear(8, 4)

    def forward(self, x):
        x = self.act(self.bn1(self.conv1(x)))
        x = self.conv2(x).mean((2, 3))
        return self.head(torch.tanh(self.fc(self.ln(x))))


class MsNet(mnn.Cell):
    def __init__(self, *, ln_eps=1e-5, bn_momentum=0.9, conv1_pad="pad"):
        super().__init__()
        # the head defined first on purpose: matching is by path, not by definition order
        self.head = mnn.Dense(8, 4)
        pad = dict(pad_mode="pad", padding=1) if conv1_pad == "pad" else dict(pad_mode=conv1_pad)
        self.conv1 = mnn.Conv2d(3, 8, 3, stride=2, has_bias=True, **pad)
        self.bn1 = mnn.BatchNorm2d(8, momentum=bn_momentum)
        self.act = mnn.ReLU()
        self.conv2 = mnn.Conv2d(8, 8, 3, pad_mode="pad", padding=1, has_bias=False)
        self.ln = mnn.LayerNorm((8,), epsilon=ln_eps)
        self.fc = mnn.Dense(8, 8)

    def construct(self, x):
        x = self.act(self.bn1(self.conv1(x)))
        x = self.conv2(x).mean((2, 3))
        return self.head(ops.tanh(self.fc(self.ln(x))))


def _pair(transpose_fc=False, **mistake):
    torch.manual_seed(0)
    t = TorchNet()
    with torch.no_grad():  # LayerNorm input with a small variance, so that its epsilon matters
        t.conv2.weight.mul_(0.05)
    m = MsNet(**mistake)
    load_torch_state_dict(m, t.state_dict())
    if transpose_fc:
        m.fc.weight.set_data(ms.Tensor(t.fc.weight.detach().numpy().T.copy()))
    m.set_train(True)
    return t, m


X = np.random.default_rng(0).standard_normal((4, 3, 16, 16)).astype(np.float32)
Y = np.array([0, 3, 1, 2], np.int64)


def test_correct_port_every_layer_passes():
    t, m = _pair()
    r = porting.diff_layers(t, m, X, loss="cross_entropy", target=Y)
    assert r.ok, str(r)
    assert [d.path for d in r.layers] == ["conv1", "bn1", "act", "conv2", "ln", "fc", "head", ""]
    assert all(d.output is not None and d.grad_output is not None for d in r.layers)
    bn = r.layers[1]
    assert bn.buffers_before.tensors == 2 and bn.buffers_after.tensors == 2 and bn.param_grads.tensors == 2
    assert r.first is None and "all 8 layer calls match" in str(r)
    assert "| conv1 | Conv2d | Conv2d | ok | ok | ok | - |" in r.to_markdown()


def test_caller_state_restored():
    t, m = _pair()
    before_t = {k: v.clone() for k, v in t.state_dict().items()}
    before_m = {p.name: p.asnumpy().copy() for p in m.get_parameters()}
    porting.diff_layers(t, m, X)
    assert all(torch.equal(before_t[k], v) for k, v in t.state_dict().items())
    assert all(np.array_equal(before_m[p.name], p.asnumpy()) for p in m.get_parameters())
    assert all(p.grad is None for p in t.parameters())
    assert not t._forward_hooks and not t.conv1._forward_pre_hooks


@pytest.mark.parametrize(
    "mistake, layer, what",
    [
        (dict(ln_eps=1e-7), "ln", "forward output"),  # MindSpore's LayerNorm default epsilon left in
        (dict(conv1_pad="same"), "conv1", "forward output"),  # pad_mode='same' pads (0, 1) at stride 2, torch (1, 1)
        (dict(transpose_fc=True), "fc", "forward output"),
    ],
)
def test_mistake_is_named_at_its_layer(mistake, layer, what):
    t, m = _pair(**mistake)
    r = porting.diff_layers(t, m, X, loss="cross_entropy", target=Y)
    assert not r.ok
    assert (r.first.path, r.first_what) == (layer, what), str(r)
    # well beyond the float32 tolerance, not a rounding accident
    assert r.first_mismatch.abs_diff is not None and r.first_mismatch.abs_diff > 1e-4
    assert f"first divergence: layer {layer!r}" in str(r) and "Mismatched elements" in str(r)
    earlier = r.layers[: r.first.index]
    assert all(d.output.ok for d in earlier)


def test_bn_momentum_unflipped_is_caught_by_buffers_only():
    t, m = _pair(bn_momentum=0.1)  # torch's 0.1 passed as is: MindSpore's momentum is 1 - torch's
    r = porting.diff_layers(t, m, X, loss="cross_entropy", target=Y)
    assert all(d.output.ok for d in r.layers) and all(d.grad_output.ok for d in r.layers)
    assert all(d.param_grads is None or d.param_grads.ok for d in r.layers)
    assert (r.first.path, r.first_what) == ("bn1", "buffers after"), str(r)
    assert r.first_mismatch.path[0] in ("bn1.running_mean", "bn1.running_var")
    assert r.layers[1].buffers_before.ok


def test_torch_random_stream_restored_and_graph_mode_refused(tmp_path, monkeypatch):
    t, m = _pair()
    t_drop = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Dropout(0.5))
    m_drop = mnn.SequentialCell([mnn.Dense(3, 3), mnn.Dropout(p=0.5)])
    load_torch_state_dict(m_drop, t_drop.state_dict())
    m_drop.set_train(True)
    torch.manual_seed(123)
    expected = torch.rand(3)  # what the caller's next draw would be without diff_layers in between
    torch.manual_seed(123)
    porting.diff_layers(t_drop, m_drop, np.ones((4, 3), np.float32))  # torch's dropout draws from the stream
    assert torch.equal(torch.rand(3), expected)
    monkeypatch.chdir(tmp_path)  # GRAPH mode may write IR files
    old = ms.get_context("mode")
    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        with pytest.raises(RuntimeError, match="PyNative mode only; the context is in GRAPH mode"):
            porting.diff_layers(t, m, X)
    finally:
        ms.set_context(mode=old)


def test_modes_must_agree():
    t, m = _pair()
    m.set_train(False)
    with pytest.raises(ValueError, match="torch module is in train mode, the MindSpore cell in eval mode"):
        porting.diff_layers(t, m, X)


def test_bad_loss_and_inputs():
    t, m = _pair()
    with pytest.raises(ValueError, match="loss: expected None"):
        porting.diff_layers(t, m, X, loss="hinge")
    with pytest.raises(TypeError, match=r"inputs\[0\]: expected a numpy array"):
        porting.diff_layers(t, m, [[1.0]])
    with pytest.raises(ValueError, match="loss='cross_entropy' compares the output with a target: pass target="):
        porting.diff_layers(t, m, X, loss="cross_entropy")
    with pytest.raises(ValueError, match="target was given but loss=None .* ignores it"):
        porting.diff_layers(t, m, X, target=Y)


class _TShared(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 4)
        self.act = torch.nn.ReLU()

    def forward(self, x):
        return self.fc(self.act(self.fc(x)))


class _MShared(mnn.Cell):
    def __init__(self):
        super().__init__()
        self.fc = mnn.Dense(4, 4)

    def construct(self, x):
        return self.fc(ops.relu(self.fc(x)))  # the port calls ReLU as a function: no cell at 'act'


def test_shared_layer_and_a_layer_only_torch_has():
    torch.manual_seed(0)
    t, m = _TShared(), _MShared()
    load_torch_state_dict(m, t.state_dict())
    m.set_train(True)
    r = porting.diff_layers(t, m, np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32))
    assert r.ok, str(r)
    assert [d.name for d in r.layers] == ["fc", "fc#1", "<top>"]
    # the total gradient of a shared layer is compared once, at its last call
    assert r.layers[0].param_grads is None and r.layers[1].param_grads.tensors == 2
    assert r.not_compared == (("act", "ReLU: no MindSpore cell at this path"),)
    assert "not compared: act: ReLU: no MindSpore cell at this path" in str(r)
