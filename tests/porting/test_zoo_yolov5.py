"""Upstream YOLOv5 v7.0's yolov5s (``models/yolo.py``, ``yolov5s.yaml``, random init) against mindyolo 0.5.0's yolov5s.

mindyolo nests the layers one level deeper (``model.N`` is ``model.model.N``), says ``convK`` for ``cvK``, keeps
``stride`` and ``anchor_grid`` as parameters (derived constants torch computes), and gives each ConvNormAct its
own SiLU where upstream's 57 Conv layers share ONE (``Conv.default_act``). Aligned, loaded (detections and raw
head maps compared), diffed layer by layer and trained 5 steps with YOLOv5's optimizer recipe (three SGD groups:
biases, weights with decay, BatchNorm weights without; nesterov, momentum 0.937; LambdaLR linear warm-up over
YOLOv5's minimum of 100 iterations), all within the float64 rule. Input 64x64: the three heads are 8x8, 4x4, 2x2.
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

pytestmark = pytest.mark.upstream
X = np.random.default_rng(0).standard_normal((1, 3, 64, 64)).astype(np.float32)


@pytest.fixture(scope="module")
def pair():
    t, m = _zoo.torch_yolov5s(), _zoo.mindyolo_yolov5s()
    a = porting.align(t, m, X)
    report = porting.load_torch_state_dict(m, t.state_dict(), alignment=a)
    return t, m, a, report


def test_aligned_with_derived_constants_reported(pair):
    t, m, a, _ = pair
    assert a.ok, str(a)
    assert len(a.state) == len(t.state_dict()) == 349
    assert a.layers["model.24"] == "model.model.24" and a.layers["model.2.cv1"] == "model.model.2.conv1"
    assert a.state["model.2.cv1.bn.weight"] == "model.model.2.conv1.bn.gamma"
    assert a.state["model.24.anchors"] == "model.model.24.anchors"
    # the shared SiLU, one path per calling Conv
    assert a.layers["model.0.act"] == "model.model.0.act" and a.layers["model.23.cv3.act"] == "model.model.23.conv3.act"
    assert set(a.derived) == {"model.model.24.stride", "model.model.24.anchor_grid"}
    assert "equal to torch attribute model.24.stride" in a.derived["model.model.24.stride"]
    assert "computed at run time" in a.derived["model.model.24.anchor_grid"]
    # mindyolo's Model wrapper holds the same layers as the YOLOv5 cell around it: listed as a layer, no state
    assert set(a.unmatched_mindspore) == {"model"} and a.unmatched_mindspore["model"].startswith("layer Model")
    assert not a.unmatched_torch and not a.ambiguous


def test_loaded_detections_and_head_maps(pair):
    t, m, a, report = pair
    assert report.ok and len(report.kept) == 2 and len(report.carried) == 57
    with pytest.raises(
        porting.CheckpointMismatchError,
        match=r"MISMATCH: 294 missing, 349 unexpected, 0 mis-shaped\); "
        r"names on both sides that nothing pairs: .* pass alignment=porting.align",
    ):
        porting.load_torch_state_dict(_zoo.mindyolo_yolov5s(), t.state_dict())
    t.eval()
    m.set_train(False)
    try:
        with torch.no_grad():
            det32, maps32 = t(torch.from_numpy(X))
            det64, maps64 = float64_copy(t)(torch.from_numpy(X.astype(np.float64)))
        det_ms, maps_ms = m(ms.Tensor(X))
    finally:
        t.train()
    assert tuple(det_ms.shape) == tuple(det32.shape) == (1, 3 * (64 + 16 + 4), 85)
    r = compare_to_reference(
        {"detections": det_ms, "maps": list(maps_ms)},
        {"detections": det32, "maps": list(maps32)},
        {"detections": det64, "maps": list(maps64)},
    )
    assert r.ok, str(r)
    assert r.tensors == 4


def test_diff_layers_every_call_within_the_float64_rule(pair):
    t, m, a, _ = pair
    t.train()
    m.set_train(True)
    r = porting.diff_layers(t, m, X, alignment=a, reference="float64")
    assert r.ok, str(r)
    names = [d.name for d in r.layers]
    assert len(names) == 270 and "model.1.act" in names and "model.1.act#1" not in names
    internal = "MindSpore cell with no torch module paired with it (an internal of the port)"
    assert r.not_compared == (("model", internal),)


def _yolov5_groups(model):
    # upstream v7.0 utils/torch_utils.smart_optimizer
    g: tuple[list, list, list] = [], [], []
    bn = tuple(v for k, v in torch.nn.__dict__.items() if "Norm" in k)
    for v in model.modules():
        for p_name, p in v.named_parameters(recurse=0):
            if p_name == "bias":
                g[2].append(p)
            elif p_name == "weight" and isinstance(v, bn):
                g[1].append(p)
            else:
                g[0].append(p)
    optimizer = torch.optim.SGD(g[2], lr=0.01, momentum=0.937, nesterov=True)
    optimizer.add_param_group({"params": g[0], "weight_decay": 5e-4})
    optimizer.add_param_group({"params": g[1], "weight_decay": 0.0})
    return optimizer


def _heads_loss(out, target):
    total = (out[0] ** 2).mean()
    for o in out[1:]:
        total = total + (o**2).mean()
    return total


def test_five_training_steps_with_yolov5s_recipe():
    t, m = _zoo.torch_yolov5s(), _zoo.mindyolo_yolov5s()
    a = porting.align(t, m, X)
    porting.load_torch_state_dict(m, t.state_dict(), alignment=a)
    m.set_train(True)
    t_opt = _yolov5_groups(t)
    warmup = 100  # YOLOv5: max(3 epochs, 100 iterations) of linear warm-up
    t_sched = torch.optim.lr_scheduler.LambdaLR(t_opt, lambda i: min(1.0, (i + 1) / warmup) * (1 - i / 300 * 0.99))
    m_opt = porting.convert_optimizer(t_opt, m, torch_module=t, alignment=a)
    m_sched = porting.convert_lr_scheduler(t_sched, m_opt)
    assert [len(g["params"]) for g in m_opt.param_groups] == [len(g["params"]) for g in t_opt.param_groups]
    rng = np.random.default_rng(1)
    batches = [(rng.standard_normal((2, 3, 64, 64)).astype(np.float32), np.zeros(1, np.float32)) for _ in range(5)]
    r = porting.compare_training(
        (t, _heads_loss, t_opt, t_sched),
        (m, _heads_loss, m_opt, m_sched),
        batches,
        steps=5,
        alignment=a,
        reference="float64",
    )
    assert r.ok, str(r)
    assert len(r.steps) == 5 and all(s.comparisons["learning rate"].ok for s in r.steps)
    assert r.steps[-1].comparisons["parameters"].tensors == len(list(t.parameters()))
