"""Checkpoint conversion: rule tables, strict loading, exact round trip, files, the CLI — against torch's real layers.

Tolerances (float32 forward of small conv nets, weights copied exactly): torch's and MindSpore's CPU conv kernels
accumulate the C*k*k products in different orders and the BatchNorm reductions differ as in test_batchnorm.py;
measured worst |diff| here: outputs 9.5e-7 (ResNet block; 1.8e-7 Conv-BN-ReLU-Linear) on O(1) activations, running
statistics 1.2e-7, so both use rtol 1e-5 / atol 1e-5 (~10x the measured worst, still far below any real porting
error: a wrong padding, epsilon or momentum gives >= 1e-3). Everything that is a copy
(the round trip, file conversions) is compared exactly: rtol=0, atol=0, dtypes checked.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("mindspore")
import mindspore as ms
import torch
from mindspore import nn

import porting
from porting import (
    CheckpointMismatchError,
    assert_equivalent,
    convert_checkpoint,
    load_torch_state_dict,
    torch_state_dict,
    torch_to_mindspore_names,
)

EXACT: dict[str, Any] = dict(rtol=0, atol=0)
NET_TOL: dict[str, Any] = dict(rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------------------ every layer kind


class TorchZoo(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1d = torch.nn.Conv1d(2, 3, 3)
        self.convt1d = torch.nn.ConvTranspose1d(3, 2, 3)
        self.conv = torch.nn.Conv2d(2, 3, 3)
        self.bn1 = torch.nn.BatchNorm1d(3)
        self.bn = torch.nn.BatchNorm2d(3)
        self.bn3 = torch.nn.BatchNorm3d(3)
        self.ln = torch.nn.LayerNorm(4)
        self.gn = torch.nn.GroupNorm(2, 4)
        self.emb = torch.nn.Embedding(5, 3)
        self.fc = torch.nn.Linear(3, 4)
        self.lstm = torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True)
        self.gru = torch.nn.GRU(3, 4)
        self.head = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.BatchNorm1d(4))


class MsZoo(nn.Cell):
    """Attributes defined in another order than torch's: matching is by name, never by position."""

    def __init__(self):
        super().__init__()
        self.head = nn.SequentialCell([nn.Dense(4, 4), nn.ReLU(), nn.BatchNorm1d(4)])
        self.gru = nn.GRU(3, 4)
        self.lstm = nn.LSTM(3, 4, num_layers=2, bidirectional=True)
        self.fc = nn.Dense(3, 4)
        self.emb = nn.Embedding(5, 3)
        self.gn = nn.GroupNorm(2, 4)
        self.ln = nn.LayerNorm((4,), epsilon=1e-5)
        self.bn3 = nn.BatchNorm3d(3)
        self.bn = nn.BatchNorm2d(3)
        self.bn1 = nn.BatchNorm1d(3)
        self.conv = nn.Conv2d(2, 3, 3, pad_mode="pad", has_bias=True)
        self.convt1d = nn.Conv1dTranspose(3, 2, 3, pad_mode="pad", has_bias=True)
        self.conv1d = nn.Conv1d(2, 3, 3, pad_mode="pad", has_bias=True)


# Written out by hand (the expected values must not come from the code under test).
ZOO_NAMES = {
    "conv1d.weight": "conv1d.weight",
    "conv1d.bias": "conv1d.bias",
    "convt1d.weight": "convt1d.weight",
    "convt1d.bias": "convt1d.bias",
    "conv.weight": "conv.weight",
    "conv.bias": "conv.bias",
    "bn1.weight": "bn1.gamma",
    "bn1.bias": "bn1.beta",
    "bn1.running_mean": "bn1.moving_mean",
    "bn1.running_var": "bn1.moving_variance",
    "bn.weight": "bn.gamma",
    "bn.bias": "bn.beta",
    "bn.running_mean": "bn.moving_mean",
    "bn.running_var": "bn.moving_variance",
    "bn3.weight": "bn3.bn2d.gamma",
    "bn3.bias": "bn3.bn2d.beta",
    "bn3.running_mean": "bn3.bn2d.moving_mean",
    "bn3.running_var": "bn3.bn2d.moving_variance",
    "ln.weight": "ln.gamma",
    "ln.bias": "ln.beta",
    "gn.weight": "gn.gamma",
    "gn.bias": "gn.beta",
    "emb.weight": "emb.embedding_table",
    "fc.weight": "fc.weight",
    "fc.bias": "fc.bias",
    **{
        f"lstm.{w}_l{layer}{rev}": f"lstm.{w}_l{layer}{rev}"
        for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        for layer in (0, 1)
        for rev in ("", "_reverse")
    },
    **{f"gru.{w}_l0": f"gru.{w}_l0" for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")},
    "head.0.weight": "head.0.weight",
    "head.0.bias": "head.0.bias",
    "head.2.weight": "head.2.gamma",
    "head.2.bias": "head.2.beta",
    "head.2.running_mean": "head.2.moving_mean",
    "head.2.running_var": "head.2.moving_variance",
}
COUNTERS = [
    "bn1.num_batches_tracked",
    "bn.num_batches_tracked",
    "bn3.num_batches_tracked",
    "head.2.num_batches_tracked",
]


def _randomised(module, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for value in module.state_dict().values():
            if value.is_floating_point():
                value.copy_(torch.rand(value.shape, generator=g) + 0.5)
            else:
                value.fill_(int(torch.randint(1, 1000, (), generator=g)))
    return module


def test_names_follow_the_rule_tables_not_the_order():
    names = torch_to_mindspore_names(TorchZoo(), MsZoo())
    assert names == ZOO_NAMES
    assert list(names) == [k for k in TorchZoo().state_dict() if k in ZOO_NAMES]  # torch's order
    assert not set(COUNTERS) & set(names)  # no MindSpore counterpart
    assert set(ZOO_NAMES.values()) == set(MsZoo().parameters_dict())  # every MindSpore parameter covered


def test_load_puts_every_value_where_torch_had_it_and_round_trips_exactly():
    module = _randomised(TorchZoo())
    cell = MsZoo()
    report = load_torch_state_dict(cell, module.state_dict())
    assert report.ok and not report.warnings
    assert {k for k, _ in report.carried} == set(COUNTERS)
    assert {k for k, _, _ in report.converted} == {"conv1d.weight", "convt1d.weight"}
    params = cell.parameters_dict()
    sd = module.state_dict()
    for key, name in ZOO_NAMES.items():
        expected = sd[key].numpy()
        if key in ("conv1d.weight", "convt1d.weight"):  # (O, I, K) -> (O, I, 1, K), per the notes
            expected = expected[:, :, None, :]
        assert_equivalent(params[name], expected, **EXACT)
    for key in COUNTERS:  # carried as an extra int64 parameter of the same name
        assert_equivalent(params[key], sd[key], **EXACT)
    back = torch_state_dict(cell)
    assert_equivalent(back, dict(sd), **EXACT)  # every parameter and buffer, counters included
    fresh = TorchZoo()
    fresh.load_state_dict(back, strict=True)


def test_counters_survive_a_mindspore_checkpoint_file(tmp_path):
    module = _randomised(TorchZoo())
    cell = MsZoo()
    load_torch_state_dict(cell, module.state_dict())
    ms.save_checkpoint(cell, str(tmp_path / "zoo.ckpt"))
    other = MsZoo()
    load_torch_state_dict(other, module.state_dict())  # so `other` carries counters too, then overwrite them
    for p in other.get_parameters():
        p.set_data(ms.ops.zeros_like(p))
    not_loaded, unused = ms.load_param_into_net(other, ms.load_checkpoint(str(tmp_path / "zoo.ckpt")))
    assert not_loaded == [] and unused == []
    assert_equivalent(torch_state_dict(other), dict(module.state_dict()), **EXACT)


def test_strict_load_lists_every_offender_and_changes_nothing():
    module = _randomised(TorchZoo())
    sd = dict(module.state_dict())
    sd["extra.weight"] = torch.zeros(2)
    sd["bn.extra_buffer"] = torch.zeros(1)
    del sd["fc.bias"], sd["ln.weight"]
    sd["emb.weight"] = torch.zeros(6, 3)
    sd["bn3.running_var"] = torch.zeros(4)
    cell = MsZoo()
    before = {k: v.asnumpy().copy() for k, v in cell.parameters_dict().items()}
    with pytest.raises(CheckpointMismatchError) as info:
        load_torch_state_dict(cell, sd)
    report, text = info.value.report, str(info.value)
    assert set(report.missing) == {"fc.bias", "ln.gamma"}
    assert set(report.unexpected) == {"extra.weight", "bn.extra_buffer"}
    assert {(k, n) for k, n, _, _ in report.mis_shaped} == {
        ("emb.weight", "emb.embedding_table"),
        ("bn3.running_var", "bn3.bn2d.moving_variance"),
    }
    for name in ("fc.bias", "ln.gamma", "extra.weight", "bn.extra_buffer", "emb.weight", "bn3.running_var"):
        assert name in text
    assert "checkpoint has shape (6, 3), the cell expects (5, 3)" in text
    assert_equivalent({k: v for k, v in cell.parameters_dict().items()}, before, **EXACT)  # nothing loaded
    # non-strict: what matches is loaded, the rest reported
    report = load_torch_state_dict(cell, sd, strict=False)
    assert not report.ok and set(report.missing) == {"fc.bias", "ln.gamma"}
    assert_equivalent(cell.parameters_dict()["fc.weight"], module.fc.weight.detach(), **EXACT)


def test_mindspore_own_loader_does_not_raise_on_missing_names():
    """The fact strict loading exists for (re-checked): load_param_into_net(strict_load=True) returns lists."""
    cell = MsZoo()
    params = {k: v for k, v in cell.parameters_dict().items() if k != "fc.bias"}
    params["nonsense"] = ms.Parameter(ms.Tensor(np.zeros(1, np.float32)), name="nonsense")
    not_loaded, unused = ms.load_param_into_net(cell, params, strict_load=True)
    assert not_loaded == ["fc.bias"] and unused == ["nonsense"]


def test_affine_false_and_no_running_stats_round_trip():
    t = torch.nn.Sequential(torch.nn.BatchNorm2d(3, affine=False), torch.nn.BatchNorm1d(3, track_running_stats=False))
    _randomised(t)
    cell = nn.SequentialCell([nn.BatchNorm2d(3, affine=False), nn.BatchNorm1d(3, use_batch_statistics=True)])
    for p in cell.get_parameters():
        p.set_data(ms.ops.full_like(p, 7))  # fill must really happen, not rely on the init
    report = load_torch_state_dict(cell, t.state_dict())
    assert {n for n, _ in report.filled} == {"0.gamma", "0.beta"}
    assert set(report.unused) == {"1.moving_mean", "1.moving_variance"}
    assert_equivalent(cell[0].gamma, np.ones(3, np.float32), **EXACT)
    assert_equivalent(cell[0].beta, np.zeros(3, np.float32), **EXACT)
    assert_equivalent(torch_state_dict(cell), dict(t.state_dict()), **EXACT)


def test_a_counter_the_checkpoint_lacks_is_kept_and_reported():
    t = torch.nn.BatchNorm2d(3)
    cell = porting.convert_batchnorm(t)
    cell.num_batches_tracked.set_data(ms.Tensor(np.array(9, np.int64)))
    state = {k: v for k, v in t.state_dict().items() if k != "num_batches_tracked"}
    report = load_torch_state_dict(cell, state)
    # torch's own load_state_dict keeps the module's counter then: so does the cell, and the report says so
    assert report.ok and report.warnings == (
        "num_batches_tracked: not in the checkpoint, so not loaded (the cell's "
        "own count, 9, stays, as torch's load_state_dict keeps the module's)",
    )
    assert int(cell.num_batches_tracked.asnumpy()) == 9


def test_torch_state_dict_of_a_mindspore_built_cell_leaves_unknown_counters_out():
    sd = torch_state_dict(nn.BatchNorm2d(2))
    assert "num_batches_tracked" not in sd  # never a made-up count
    # torch's BatchNorm (2.13) then keeps its own counter, even with strict=True (re-checked fact)
    target = torch.nn.BatchNorm2d(2)
    counter = target.num_batches_tracked
    assert counter is not None
    counter.fill_(5)
    target.load_state_dict(sd, strict=True)
    assert int(counter) == 5
    assert int(torch_state_dict(nn.BatchNorm2d(2), num_batches_tracked=3)["num_batches_tracked"]) == 3


# ------------------------------------------------------------------------------------------------------ files

DTYPES = ["float16", "float32", "float64", "bfloat16"]


def _dtype_dict():
    g = torch.Generator().manual_seed(1)
    out = {f"w_{d}": (torch.randn(3, 4, generator=g) * 100).to(getattr(torch, d)) for d in DTYPES}
    out["count"] = torch.tensor(12345678901, dtype=torch.int64)
    return out


@pytest.mark.parametrize(
    "chain",
    [
        (".pt", ".ckpt", ".pt"),
        (".pt", ".safetensors", ".pt"),
        (".safetensors", ".ckpt", ".safetensors"),
        (".pth", ".ckpt", ".safetensors", ".pt"),
    ],
)
def test_convert_checkpoint_keeps_every_dtype_bit_for_bit(tmp_path, chain):
    state = _dtype_dict()
    first = tmp_path / f"f0{chain[0]}"
    if chain[0] == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(first))
    else:
        torch.save(state, str(first))
    path = first
    for i, ext in enumerate(chain[1:], 1):
        nxt = tmp_path / f"f{i}{ext}"
        report = convert_checkpoint(path, nxt)
        assert set(report.loaded) == set(state)
        path = nxt
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        back = load_file(str(path))
    else:
        back = torch.load(str(path), weights_only=True)
    assert {k: str(v.dtype) for k, v in back.items()} == {k: str(v.dtype) for k, v in state.items()}
    for key in state:  # bit for bit, bf16 included (compared through int views of the bytes)
        assert torch.equal(
            back[key].view(-1).view(torch.uint8) if back[key].dim() else back[key],
            state[key].view(-1).view(torch.uint8) if state[key].dim() else state[key],
        ), key


def test_ckpt_file_holds_mindspore_dtypes(tmp_path):
    torch.save(_dtype_dict(), str(tmp_path / "a.pt"))
    convert_checkpoint(tmp_path / "a.pt", tmp_path / "a.ckpt")
    loaded = ms.load_checkpoint(str(tmp_path / "a.ckpt"))
    assert {k: str(v.dtype) for k, v in loaded.items()} == {
        "w_float16": "Float16",
        "w_float32": "Float32",
        "w_float64": "Float64",
        "w_bfloat16": "BFloat16",
        "count": "Int64",
    }


def test_load_from_pt_and_safetensors_files(tmp_path):
    module = _randomised(TorchZoo())
    torch.save(module.state_dict(), str(tmp_path / "zoo.pt"))
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(tmp_path / "zoo.safetensors"))
    for name in ("zoo.pt", "zoo.safetensors"):
        cell = MsZoo()
        assert load_torch_state_dict(cell, str(tmp_path / name)).ok
        assert_equivalent(torch_state_dict(cell), dict(module.state_dict()), **EXACT)
    with pytest.raises(ValueError, match=r"expected a state dict or a \.pt/\.pth/\.safetensors file, got '.*zoo\.npz'"):
        load_torch_state_dict(MsZoo(), str(tmp_path / "zoo.npz"))
    torch.save({"a": 1}, str(tmp_path / "bad.pt"))
    with pytest.raises(ValueError, match="entry 'a' is a int, expected a tensor"):
        load_torch_state_dict(MsZoo(), str(tmp_path / "bad.pt"))
    # .pt files are read with weights_only=True: a pickled object is refused (never unpickled), the file named
    torch.save({"fc.weight": torch.zeros(4, 3), "extra": _Pickled()}, str(tmp_path / "pickled.pt"))
    with pytest.raises(ValueError, match=r"pickled\.pt: torch\.load\(weights_only=True\) refused it .*_Pickled"):
        load_torch_state_dict(MsZoo(), str(tmp_path / "pickled.pt"))
    assert not _Pickled.unpickled


class _Pickled:
    """An object whose unpickling would be noticed."""

    unpickled = False

    def __setstate__(self, state):
        type(self).unpickled = True


# --------------------------------------------------------------------------- small networks, through files


class TorchConvNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(8)
        self.fc = torch.nn.Linear(8 * 6 * 6, 5)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).flatten(1))


class MsConvNet(nn.Cell):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, pad_mode="pad", padding=1, has_bias=True)
        self.bn = nn.BatchNorm2d(8, momentum=0.9)  # torch's 0.1, flipped by hand as a user would
        self.fc = nn.Dense(8 * 6 * 6, 5)

    def construct(self, x):
        return self.fc(ms.ops.relu(self.bn(self.conv(x))).reshape(x.shape[0], -1))


class TorchBasicBlock(torch.nn.Module):
    """torchvision's ResNet BasicBlock (stride 2, with the downsample branch)."""

    def __init__(self, inplanes=4, planes=8, stride=2):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(planes)
        self.conv2 = torch.nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(planes)
        self.downsample = torch.nn.Sequential(
            torch.nn.Conv2d(inplanes, planes, 1, stride, bias=False), torch.nn.BatchNorm2d(planes)
        )

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.downsample(x))


class MsBasicBlock(nn.Cell):
    def __init__(self, inplanes=4, planes=8, stride=2):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, pad_mode="pad", padding=1, has_bias=False)
        self.bn1 = nn.BatchNorm2d(planes, momentum=0.9)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, pad_mode="pad", padding=1, has_bias=False)
        self.bn2 = nn.BatchNorm2d(planes, momentum=0.9)
        self.downsample = nn.SequentialCell(
            [
                nn.Conv2d(inplanes, planes, 1, stride, pad_mode="valid", has_bias=False),
                nn.BatchNorm2d(planes, momentum=0.9),
            ]
        )

    def construct(self, x):
        out = ms.ops.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return ms.ops.relu(out + self.downsample(x))


NETS = {
    "conv_bn_relu_linear": (TorchConvNet, MsConvNet, (4, 3, 6, 6)),
    "resnet_basic_block": (TorchBasicBlock, MsBasicBlock, (4, 4, 8, 8)),
}


def _running_stats(state):
    return {k: v for k, v in state.items() if "running_" in k}


@pytest.mark.parametrize("net", sorted(NETS))
def test_network_through_a_checkpoint_file(tmp_path, net):
    torch_cls, ms_cls, shape = NETS[net]
    torch.manual_seed(0)
    module = torch_cls()
    with torch.no_grad():  # trained-looking statistics, so eval really uses them
        for name, buf in module.named_buffers():
            if name.endswith("running_mean"):
                buf.uniform_(-0.5, 0.5)
            elif name.endswith("running_var"):
                buf.uniform_(0.5, 2.0)
    torch.save(module.state_dict(), str(tmp_path / "net.pt"))
    report = convert_checkpoint(tmp_path / "net.pt", tmp_path / "net.ckpt", like=ms_cls())
    assert report.ok and not report.warnings
    cell = ms_cls()
    not_loaded, unused = ms.load_param_into_net(cell, ms.load_checkpoint(str(tmp_path / "net.ckpt")))
    # MindSpore's loader lists the carried counters as unused (a stock BatchNorm has no counter); the file
    # keeps them for the way back (below)
    counters = sorted(k for k in module.state_dict() if k.endswith("num_batches_tracked"))
    assert not_loaded == [] and sorted(unused) == counters

    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    module.eval()
    cell.set_train(False)
    assert_equivalent(cell(ms.Tensor(x)), module(torch.from_numpy(x)).detach(), **NET_TOL)

    # train mode: K steps, outputs and running statistics after every one
    module.train()
    cell.set_train(True)
    for _ in range(5):
        x = (rng.standard_normal(shape) * 1.5 + 0.5).astype(np.float32)
        with torch.no_grad():
            yt = module(torch.from_numpy(x))
        assert_equivalent(cell(ms.Tensor(x)), yt, **NET_TOL)
        assert_equivalent(_running_stats(torch_state_dict(cell)), _running_stats(module.state_dict()), **NET_TOL)

    # round trip torch -> MindSpore -> torch, exact, counters included
    fresh_cell = ms_cls()
    load_torch_state_dict(fresh_cell, str(tmp_path / "net.pt"))
    saved = dict(torch.load(str(tmp_path / "net.pt"), weights_only=True))
    assert_equivalent(torch_state_dict(fresh_cell), saved, **EXACT)
    back = tmp_path / "back.pt"
    convert_checkpoint(tmp_path / "net.ckpt", back, like=ms_cls())
    assert_equivalent(
        dict(torch.load(str(back), weights_only=True)),
        dict(torch.load(str(tmp_path / "net.pt"), weights_only=True)),
        **EXACT,
    )


@pytest.mark.parametrize("net", sorted(NETS))
def test_network_strictness_each_offence_raises(tmp_path, net):
    torch_cls, ms_cls, _ = NETS[net]
    sd = dict(torch_cls().state_dict())
    first_weight = next(k for k in sd if k.endswith("weight"))
    cases = {
        "extra": (
            {**sd, "bonus.weight": torch.zeros(3)},
            "unexpected (in the checkpoint, nothing in the cell): bonus.weight",
        ),
        "missing": (
            {k: v for k, v in sd.items() if k != first_weight},
            f"missing (in the cell, not in the checkpoint): {first_weight}",
        ),
        "shape": ({**sd, first_weight: torch.zeros(1, 1)}, f"mis-shaped: {first_weight} -> {first_weight}"),
    }
    for name, (state, expected) in cases.items():
        with pytest.raises(CheckpointMismatchError) as info:
            load_torch_state_dict(ms_cls(), state)
        assert expected in str(info.value), name
        assert len(info.value.report.problem_lines()) == 1, name
        torch.save(state, str(tmp_path / f"{name}.pt"))
        with pytest.raises(CheckpointMismatchError):
            convert_checkpoint(tmp_path / f"{name}.pt", tmp_path / f"{name}.ckpt", like=ms_cls())
        assert not (tmp_path / f"{name}.ckpt").exists()  # nothing written


# ------------------------------------------------------------------------------------------------------- CLI


def test_cli_convert_ckpt_prints_the_table_and_fails_listing_offenders(tmp_path, monkeypatch):
    from porting.cli import main

    module = _randomised(TorchConvNet())
    torch.save(module.state_dict(), str(tmp_path / "net.pt"))
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "i10_like_nets.py").write_text(
        "from tests.porting.test_checkpoint import MsConvNet\n\ndef build():\n    return MsConvNet()\n\n"
        "def not_a_cell():\n    return 3\n"
    )
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(
            ["convert-ckpt", str(tmp_path / "net.pt"), str(tmp_path / "net.ckpt"), "--like", "i10_like_nets:build"]
        )
    text = out.getvalue()
    assert code == 0, text
    assert "renamed" in text and "bn.running_var" in text and "bn.moving_variance" in text
    assert "carried" in text and "bn.num_batches_tracked" in text
    back = io.StringIO()
    with contextlib.redirect_stdout(back):
        code = main(
            ["convert-ckpt", str(tmp_path / "net.ckpt"), str(tmp_path / "back.pt"), "--like", "i10_like_nets:build"]
        )
    assert code == 0, back.getvalue()
    back_sd = dict(torch.load(str(tmp_path / "back.pt"), weights_only=True))
    assert_equivalent(back_sd, dict(module.state_dict()), **EXACT)

    bad = dict(module.state_dict())
    bad.pop("fc.bias")
    bad["junk"] = torch.zeros(1)
    torch.save(bad, str(tmp_path / "bad.pt"))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(
            ["convert-ckpt", str(tmp_path / "bad.pt"), str(tmp_path / "bad.ckpt"), "--like", "i10_like_nets:build"]
        )
    assert code == 1
    assert "MISSING" in out.getvalue() and "fc.bias" in out.getvalue() and "UNEXPECTED" in out.getvalue()
    assert "nothing written" in err.getvalue() and not (tmp_path / "bad.ckpt").exists()

    out = io.StringIO()
    with contextlib.redirect_stdout(out):  # no --like: a format change, names kept
        assert main(["convert-ckpt", str(tmp_path / "net.pt"), str(tmp_path / "same.safetensors")]) == 0
    assert "fc.weight" in out.getvalue()

    for like, message in [
        ("no_colon", "expected MODULE:FACTORY"),
        ("i10_like_nets:nope", "has no attribute 'nope'"),
        ("i10_like_nets:not_a_cell", "expected the factory to return a mindspore.nn.Cell, got int"),
    ]:
        err = io.StringIO()
        with contextlib.redirect_stderr(err):  # bad invocations: exit 2, one line naming the problem
            code = main(["convert-ckpt", str(tmp_path / "net.pt"), str(tmp_path / "x.ckpt"), "--like", like])
        assert code == 2 and message in err.getvalue() and err.getvalue().count("\n") == 1, err.getvalue()
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(["convert-ckpt", str(tmp_path / "missing.pt"), str(tmp_path / "x.ckpt")]) == 2
    assert "missing.pt" in err.getvalue()


def test_cli_convert_ckpt_help_covers_every_option(capsys):
    from porting.cli import main

    with pytest.raises(SystemExit):
        main(["convert-ckpt", "--help"])
    out = capsys.readouterr().out
    for text in ("SRC", "DST", "--like", "--no-strict", "exit status"):
        assert text in out


# ----------------------------------------------------------------------------------------- memory sharing


def test_copy_semantics_default_copies_and_files_are_adopted_safely(tmp_path):
    import gc

    module = _randomised(TorchConvNet())
    expected = {k: v.clone() for k, v in module.state_dict().items()}
    cell = MsConvNet()
    load_torch_state_dict(cell, module.state_dict())  # default: the cell owns copies
    with torch.no_grad():
        module.fc.weight.add_(1.0)
    assert_equivalent(cell.fc.weight, expected["fc.weight"], **EXACT)  # the caller's later change does not leak in

    shared = MsConvNet()
    load_torch_state_dict(shared, module.state_dict(), copy=False)  # opted in: memory shared, as documented
    with torch.no_grad():
        module.fc.weight.add_(1.0)
    assert_equivalent(shared.fc.weight, module.fc.weight.detach(), **EXACT)

    torch.save(expected, str(tmp_path / "net.pt"))
    from safetensors.torch import save_file

    save_file(expected, str(tmp_path / "net.safetensors"))
    for name in ("net.pt", "net.safetensors"):
        cell = MsConvNet()
        load_torch_state_dict(cell, str(tmp_path / name))
        (tmp_path / name).unlink()  # adopted arrays must not depend on the file
        gc.collect()
        _ = [np.ones(1 << 16) for _ in range(50)]  # reuse freed memory, if anything had been freed
        assert_equivalent(torch_state_dict(cell), expected, **EXACT)
        ms.save_checkpoint(cell, str(tmp_path / f"{name}.ckpt"))  # and MindSpore can still use them


@pytest.mark.parametrize("copy", [True, False])
def test_tied_weights_load_into_parameters_of_their_own(tmp_path, copy):
    # A tied embedding / output projection: two keys on one storage. Two parameters on one buffer would
    # be updated twice per step by a MindSpore optimizer.
    class Two(nn.Cell):
        def __init__(self):
            super().__init__()
            self.a = nn.Dense(3, 4)
            self.b = nn.Dense(3, 4)

    w = torch.arange(12, dtype=torch.float32).reshape(4, 3)
    state = {"a.weight": w, "b.weight": w, "a.bias": torch.zeros(4), "b.bias": torch.zeros(4)}
    torch.save(state, str(tmp_path / "tied.pt"))
    sources = [str(tmp_path / "tied.pt")] if copy else [{k: v.numpy() for k, v in state.items()}]
    for source in sources:
        cell = Two()
        assert load_torch_state_dict(cell, source, copy=copy).ok
        ms.ops.assign_add(cell.b.weight, ms.Tensor(np.ones((4, 3), np.float32)))  # an update, in place
        assert np.array_equal(cell.b.weight.asnumpy(), w.numpy() + 1)
        assert np.array_equal(cell.a.weight.asnumpy(), w.numpy()), "a.weight moved with b.weight: one buffer"
