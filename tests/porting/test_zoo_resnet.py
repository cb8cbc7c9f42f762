"""torchvision's ResNet-18 (written here with torchvision's names) against mindcv 0.3.0's resnet18.

mindcv was written independently: ``downsample`` is ``down_sample``, ``maxpool`` is ``max_pool``, ``fc`` is
``classifier``, and its global pooling is a cell of its own (``GlobalAvgPooling``, no torch counterpart by kind).
Aligned without a hand-written map, loaded bit-exactly through it, and compared layer by layer: as shipped,
mindcv's max-pool uses ``pad_mode='same'`` (pads (0, 1) at stride 2 where torch pads (1, 1)), and
``diff_layers`` names it as the first divergence; with torch's padding the port is within the float64 rule at
every layer, forward and backward.
"""

import numpy as np
import pytest

import porting

pytest.importorskip("torch")
pytest.importorskip("mindspore")
import mindspore as ms
import torch

from porting.training._layer_diff import float64_copy
from porting.training._reference import compare_to_reference
from tests.porting import _zoo

X = _zoo.resnet18_input()


@pytest.fixture(scope="module")
def pair():
    torch.manual_seed(0)
    t, m = _zoo.torch_resnet18(), _zoo.mindcv_resnet18()
    a = porting.align(t, m, X)
    report = porting.load_torch_state_dict(m, t.state_dict(), alignment=a)
    return t, m, a, report


def _torch_padding_max_pool():
    return ms.nn.MaxPool2d(kernel_size=3, stride=2, pad_mode="pad", padding=1)


def test_aligned_without_a_hand_written_map(pair, tmp_path):
    t, m, a, _ = pair
    assert a.ok, str(a)
    assert a.order == "execution"
    assert len(a.state) == len(t.state_dict()) == 122
    assert a.layers["maxpool"] == "max_pool" and a.layers["fc"] == "classifier"
    assert a.layers["layer2.0.downsample"] == "layer2.0.down_sample"
    assert a.state["layer2.0.downsample.1.weight"] == "layer2.0.down_sample.1.gamma"
    assert a.state["layer2.0.downsample.1.num_batches_tracked"] == "layer2.0.down_sample.1.num_batches_tracked"
    assert a.state["fc.weight"] == "classifier.weight"
    # torch's AdaptiveAvgPool2d and mindcv's GlobalAvgPooling are different kinds: listed, never paired on a guess
    assert set(a.unmatched_torch) == {"avgpool"} and set(a.unmatched_mindspore) == {"pool"}
    assert "avgpool" in str(a) and "GlobalAvgPooling" in str(a)
    assert porting.align(t, m).state == a.state  # definition order gives the same map here
    path = tmp_path / "resnet18.yaml"
    a.save(path)
    assert porting.Alignment.load(path) == porting.Alignment.from_dict(
        __import__("yaml").safe_load(path.read_text()), where=str(path)
    )
    assert porting.Alignment.load(path).state == a.state and porting.Alignment.load(path).layers == a.layers


def test_loaded_bit_exactly_through_the_alignment(pair, tmp_path):
    t, m, a, report = pair
    assert report.ok and report.summary().startswith("17 loaded, 85 renamed, 0 converted, 20 carried")
    back = porting.torch_state_dict(m, alignment=a)
    assert sorted(back) == sorted(t.state_dict())
    for k, v in t.state_dict().items():
        assert torch.equal(back[k], v), k
    # without the map a strict load refuses, listing every missing and unexpected name
    with pytest.raises(porting.CheckpointMismatchError, match="missing .*layer2.0.down_sample.0.weight"):
        porting.load_torch_state_dict(_zoo.mindcv_resnet18(), t.state_dict())
    # the map as a file works the same, for files too
    torch.save(t.state_dict(), tmp_path / "r18.pth")
    a.save(tmp_path / "map.yaml")
    r = porting.convert_checkpoint(
        tmp_path / "r18.pth", tmp_path / "r18.ckpt", like=_zoo.mindcv_resnet18(), alignment=tmp_path / "map.yaml"
    )
    assert r.ok and dict(r.renamed)["fc.weight"] == "classifier.weight"
    fresh = _zoo.mindcv_resnet18()
    assert ms.load_param_into_net(fresh, ms.load_checkpoint(str(tmp_path / "r18.ckpt")))[0] == []
    assert np.array_equal(fresh.classifier.weight.asnumpy(), t.fc.weight.detach().numpy())


def test_as_shipped_the_max_pool_is_the_first_divergence(pair):
    t, m, a, _ = pair
    t.eval()
    m.set_train(False)
    r = porting.diff_layers(t, m, X, alignment=a, reference="float64")
    assert not r.ok
    assert (r.first.path, r.first_what, r.first.ms_type) == ("maxpool", "forward output", "MaxPool2d"), str(r)
    assert all(d.output.ok for d in r.layers[: r.first.index])  # conv1, bn1, relu before it match
    assert r.first_mismatch.abs_diff is not None and r.first_mismatch.abs_diff > 0.1
    assert ("avgpool", "AdaptiveAvgPool2d: the alignment pairs it with no MindSpore cell") in r.not_compared


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_with_torch_padding_every_layer_is_within_the_float64_rule(pair, mode):
    t, m, a, _ = pair
    shipped = m.max_pool
    m.max_pool = _torch_padding_max_pool()
    try:
        t.train(mode == "train")
        m.set_train(mode == "train")
        y = np.array([1, 7], np.int64)
        r = porting.diff_layers(t, m, X, alignment=a, reference="float64", loss="cross_entropy", target=y)
        assert r.ok, str(r)
        assert len(r.layers) == 75 and r.layers[3].path == "maxpool"
        if mode == "eval":
            with torch.no_grad():
                t64 = float64_copy(t)(torch.from_numpy(X.astype(np.float64)))
                t32 = t(torch.from_numpy(X))
            logits = compare_to_reference(m(ms.Tensor(X)), t32, t64)
            assert logits.ok, str(logits)
    finally:
        m.max_pool = shipped
        t.eval()


def test_cli_align_then_diff_with_the_map(tmp_path, monkeypatch, capsys):
    from porting.cli import main

    out = tmp_path / "map.yaml"
    assert main(["align", "tests.porting._zoo:resnet18_pair", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "aligned (execution order)" in text and "max_pool" in text and "classifier" in text
    assert porting.Alignment.load(out).layers["fc"] == "classifier"
    monkeypatch.setenv("RESNET18_MAP", str(out))
    assert main(["diff", "tests.porting._zoo:resnet18_loaded", "--map", str(out)]) == 1
    text = capsys.readouterr().out
    assert "first divergence: layer 'maxpool' (MaxPool2d), forward output" in text
    t, _, _ = _zoo.resnet18_pair()
    torch.save(t.state_dict(), tmp_path / "r18.pth")
    args = [
        "convert-ckpt",
        str(tmp_path / "r18.pth"),
        str(tmp_path / "r18.ckpt"),
        "--like",
        "tests.porting._zoo:mindcv_resnet18",
    ]
    assert main(args) == 1  # without the map: every renamed entry listed, nothing written
    assert "layer2.0.down_sample.0.weight" in capsys.readouterr().out and not (tmp_path / "r18.ckpt").exists()
    assert main([*args, "--map", str(out)]) == 0
    assert "classifier.weight" in capsys.readouterr().out and (tmp_path / "r18.ckpt").exists()
    assert main(["convert-ckpt", str(tmp_path / "r18.pth"), str(tmp_path / "x.ckpt"), "--map", str(out)]) == 2
    assert "--map needs --like" in capsys.readouterr().err
    out.write_text("state: [1, 2]\nlayers: {}\n")
    assert main(["diff", "tests.porting._zoo:resnet18_loaded", "--map", str(out)]) == 2
    assert "'state': expected a mapping of names, got list" in capsys.readouterr().err
