"""porting.align / Alignment on small models built to test one rule each; the checkpoint gaps of issue 21.

The real zoos (mindcv, mindyolo) are in test_zoo_resnet.py / test_zoo_yolov5.py.
"""

import numpy as np
import pytest

import porting

pytest.importorskip("torch")
pytest.importorskip("mindspore")
import mindspore as ms
import torch
from mindspore import nn as mnn
from mindspore import ops


class _T(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(4)
        self.act = torch.nn.ReLU()
        self.head = torch.nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.act(self.bn(self.stem(x))).mean((2, 3)))


class _M(mnn.Cell):
    """The same model written independently: other names, the head defined first, one level of nesting."""

    def __init__(self):
        super().__init__()
        self.classifier = mnn.Dense(4, 2)
        self.features = mnn.SequentialCell(
            [
                mnn.Conv2d(3, 4, 3, pad_mode="pad", padding=1, has_bias=True),
                mnn.BatchNorm2d(4, momentum=0.9),
                mnn.ReLU(),
            ]
        )

    def construct(self, x):
        return self.classifier(self.features(x).mean((2, 3)))


X = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)


@pytest.mark.parametrize("inputs", [None, X], ids=["definition", "execution"])
def test_renamed_and_reordered_port(inputs):
    a = porting.align(_T(), _M(), inputs)
    assert a.ok, str(a)
    assert a.order == ("definition" if inputs is None else "execution")
    assert a.state == {
        "stem.weight": "features.0.weight",
        "stem.bias": "features.0.bias",
        "bn.weight": "features.1.gamma",
        "bn.bias": "features.1.beta",
        "bn.running_mean": "features.1.moving_mean",
        "bn.running_var": "features.1.moving_variance",
        "bn.num_batches_tracked": "features.1.num_batches_tracked",
        "head.weight": "classifier.weight",
        "head.bias": "classifier.bias",
    }
    assert a.layers == {"": "", "stem": "features.0", "bn": "features.1", "act": "features.2", "head": "classifier"}
    # the torch model has no container around stem/bn/act: MindSpore's 'features' is listed, without state
    assert set(a.unmatched_mindspore) == {"features"}
    if inputs is None:  # the head defined first: paired as the only Linear/Dense on each side, and said so
        assert "order differs" in a.notes["head"] and "order differs" in str(a)
    assert "renamed" in str(a) and a.to_dict()["ok"] is True and "| layer |" in a.to_markdown()


def test_used_by_every_name_matching_function(tmp_path):
    torch.manual_seed(0)
    t, m = _T(), _M()
    t.bn.num_batches_tracked.fill_(7)
    a = porting.align(t, m, X)
    a.save(tmp_path / "map.yaml")
    report = porting.load_torch_state_dict(m, t.state_dict(), alignment=tmp_path / "map.yaml")
    assert report.ok and int(m.features[1].num_batches_tracked.asnumpy()) == 7
    back = porting.torch_state_dict(m, alignment=a)
    assert sorted(back) == sorted(t.state_dict()) and all(torch.equal(back[k], v) for k, v in t.state_dict().items())
    assert porting.torch_to_mindspore_names(t, m, alignment=a)["head.weight"] == "classifier.weight"
    torch.save(t.state_dict(), tmp_path / "t.pth")
    r = porting.convert_checkpoint(tmp_path / "t.pth", tmp_path / "m.ckpt", like=_M(), alignment=a)
    assert r.ok and ("bn.num_batches_tracked", "features.1.num_batches_tracked") in r.carried
    assert set(ms.load_checkpoint(str(tmp_path / "m.ckpt"))) == set(m.parameters_dict())
    report = porting.convert_checkpoint(tmp_path / "m.ckpt", tmp_path / "back.pth", like=_M(), alignment=a)
    assert report.ok
    again = torch.load(tmp_path / "back.pth", weights_only=True)
    assert all(torch.equal(again[k], v) for k, v in t.state_dict().items())
    with pytest.raises(ValueError, match="alignment= needs like= too"):
        porting.convert_checkpoint(tmp_path / "t.pth", tmp_path / "x.ckpt", alignment=a)
    m.set_train(True)
    layers = porting.diff_layers(t, m, X, alignment=a)
    assert layers.ok, str(layers)
    t_opt = torch.optim.SGD(t.parameters(), lr=0.1)
    m_opt = porting.convert_optimizer(t_opt, m, torch_module=t, alignment=a)
    batches = [(X, np.array([0, 1], np.int64))] * 2
    training = porting.compare_training(
        (t, torch.nn.functional.cross_entropy, t_opt), (m, ops.cross_entropy, m_opt), batches, steps=2, alignment=a
    )
    assert training.ok, str(training)


def test_without_the_map_the_paths_must_agree():
    t, m = _T(), _M()
    m.set_train(True)
    with pytest.raises(ValueError, match=r"torch layer 'stem' \(Conv2d\) .* pass alignment=porting.align"):
        porting.diff_layers(t, m, X)


class _TwoSame(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(4, 4)
        self.b = torch.nn.Linear(4, 4)

    def forward(self, x):
        return self.b(self.a(x))


class _OneSame(mnn.Cell):
    def __init__(self):
        super().__init__()
        self.only = mnn.Dense(4, 4)

    def construct(self, x):
        return self.only(x)


def test_ambiguity_is_listed_never_guessed():
    # two torch Linear(4, 4) for one Dense(4, 4): either could be the port's; neither is paired
    a = porting.align(_TwoSame(), _OneSame())
    assert not a.ok and "ambiguous" in a.verdict
    assert {x["torch"] for x in a.ambiguous} == {"a", "b"}
    assert all(x["candidates"] == ["only"] for x in a.ambiguous)
    assert "a.weight" not in a.state and "b.weight" not in a.state
    assert "AMBIGUOUS" in str(a)
    with pytest.raises(porting.CheckpointMismatchError):
        porting.load_torch_state_dict(_OneSame(), _TwoSame().state_dict(), alignment=a)


def test_unmatched_is_listed():
    class T(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(4, 4)
            self.extra = torch.nn.Linear(4, 3)

        def forward(self, x):
            return self.extra(self.fc(x))

    a = porting.align(T(), _OneSame())
    assert a.state == {"fc.weight": "only.weight", "fc.bias": "only.bias"}
    assert set(a.unmatched_torch) >= {"extra.weight", "extra.bias"}
    assert "has no MindSpore counterpart" in a.unmatched_torch["extra.weight"]
    assert not a.ok and "INCOMPLETE: 2 unmatched state entries" in a.verdict


def test_load_refuses_bad_files(tmp_path):
    p = tmp_path / "map.yaml"
    p.write_text("state: {a: b\n")
    with pytest.raises(ValueError, match=r"map.yaml: not valid YAML"):
        porting.Alignment.load(p)
    p.write_text("[1, 2]\n")
    with pytest.raises(ValueError, match="expected a mapping with 'state' and 'layers', got list"):
        porting.Alignment.load(p)
    p.write_text("layers: {}\n")
    with pytest.raises(ValueError, match="'state' is missing"):
        porting.Alignment.load(p)
    p.write_text("state: {a: c, b: c}\nlayers: {}\n")
    with pytest.raises(ValueError, match=r"several torch keys to the same MindSpore name\(s\) \['c'\]"):
        porting.Alignment.load(p)
    p.write_text("state: {a: 1}\nlayers: {}\n")
    with pytest.raises(ValueError, match="'state' entry 'a': 1: expected text on both sides"):
        porting.Alignment.load(p)
    p.write_text("state: {}\nlayers: {}\nstate_dict: {}\n")
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['state_dict'\]"):
        porting.Alignment.load(p)
    p.write_text("state: !!python/object/apply:os.system ['true']\nlayers: {}\n")
    with pytest.raises(ValueError, match="not valid YAML"):  # safe_load: nothing is constructed
        porting.Alignment.load(p)
    with pytest.raises(TypeError, match="alignment: expected a porting.Alignment or the path"):
        porting.torch_to_mindspore_names(_T(), _M(), alignment={"state": {}})


# ------------------------------------------------------------------------------------------ checkpoint gaps


def test_convert_checkpoint_without_like_names_batchnorm_from_its_keys(tmp_path):
    # used to keep torch's names and call every entry "loaded": the .ckpt then left a MindSpore BatchNorm at
    # random init (load_param_into_net: gamma, beta, moving_mean, moving_variance not loaded)
    torch.manual_seed(0)
    bn = torch.nn.BatchNorm2d(4)
    t = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), bn, torch.nn.LayerNorm(2))
    with torch.no_grad():
        bn.running_mean.uniform_()
        bn.weight.uniform_()
    torch.save(t.state_dict(), tmp_path / "t.pth")
    r = porting.convert_checkpoint(tmp_path / "t.pth", tmp_path / "t.ckpt")
    assert dict(r.renamed) == {
        "1.weight": "1.gamma",
        "1.bias": "1.beta",
        "1.running_mean": "1.moving_mean",
        "1.running_var": "1.moving_variance",
    }
    assert r.names_kept and set(r.loaded) == {"0.weight", "0.bias", "1.num_batches_tracked", "2.weight", "2.bias"}
    assert "kept name" in r.table() and "5 names kept" in r.summary() and " loaded" not in r.summary()
    assert any("LayerNorm/GroupNorm gamma/beta" in w and "pass like=" in w for w in r.warnings)
    cell = mnn.SequentialCell([mnn.Conv2d(3, 4, 3, has_bias=True, pad_mode="valid"), mnn.BatchNorm2d(4)])
    not_loaded, _ = ms.load_param_into_net(cell, ms.load_checkpoint(str(tmp_path / "t.ckpt")))
    assert not_loaded == []
    assert np.array_equal(cell[1].moving_mean.asnumpy(), bn.running_mean.numpy())
    # and back: MindSpore's BatchNorm names become torch's again
    r = porting.convert_checkpoint(tmp_path / "t.ckpt", tmp_path / "back.pth")
    back = torch.load(tmp_path / "back.pth", weights_only=True)
    assert set(back) == set(t.state_dict()) and all(torch.equal(back[k], v) for k, v in t.state_dict().items())


def test_torch_state_dict_warns_by_name_when_counters_are_lost(tmp_path):
    # a plain MindSpore BatchNorm model: counters carried, saved, loaded into a fresh cell by MindSpore's own
    # loader (which drops them), exported: torch's strict load said "All keys matched" with 0 instead of 1234
    bn = torch.nn.BatchNorm2d(4)
    t = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), bn)
    bn.num_batches_tracked.fill_(1234)

    def make():
        return mnn.SequentialCell([mnn.Conv2d(3, 4, 3, has_bias=True), mnn.BatchNorm2d(4)])

    m = make()
    porting.load_torch_state_dict(m, t.state_dict())
    ms.save_checkpoint(m, str(tmp_path / "m.ckpt"))
    fresh = make()
    ms.load_param_into_net(fresh, ms.load_checkpoint(str(tmp_path / "m.ckpt")))
    with pytest.warns(
        UserWarning,
        match=r"1 BatchNorm layer\(s\) carry no num_batches_tracked, left out: "
        r"1.num_batches_tracked; torch's load_state_dict sets a missing counter to 0",
    ):
        sd = porting.torch_state_dict(fresh)
    assert "1.num_batches_tracked" not in sd
    assert int(porting.torch_state_dict(fresh, num_batches_tracked=1234)["1.num_batches_tracked"]) == 1234
    # the cell that kept them exports them, without a warning
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert int(porting.torch_state_dict(m)["1.num_batches_tracked"]) == 1234
