"""Real model zoos for the alignment tests: a torch ResNet-18 with torchvision's names, mindcv's resnet18,
upstream YOLOv5 v7.0's ``models/yolo.py`` (``yolov5s.yaml``, random init) and mindyolo's yolov5s.

Everything is built from the installed packages (scripts/setup.sh installs them; nothing is downloaded at test
time) and imported lazily; a package that is missing makes the test skip with the install line, so a checkout
without the test extras still runs the rest. Random init on both sides: the weights cross by
``porting.load_torch_state_dict`` (torch -> MindSpore), as a user's would.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import sys
import types
from typing import Any

import pytest

MINDCV_VERSION = "0.3.0"
MINDYOLO_VERSION = "0.5.0"


def _require(name: str, version: str):
    import importlib.metadata

    try:
        got = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(f"{name}=={version} is not installed (bash scripts/setup.sh installs the test extras)")
    if got != version:
        pytest.skip(f"expected {name}=={version}, got {got} (bash scripts/setup.sh installs the pinned one)")


# ------------------------------------------------------------------------------------------------ ResNet-18


def torch_resnet18(num_classes: int = 10):  # noqa: C901 - the model's classes are built inside: their methods count
    """torchvision's ResNet-18 (BasicBlock, [2, 2, 2, 2]) with torchvision's attribute names and init.

    torchvision's wheel on the index is a CUDA build that does not import with CPU torch, so the model is
    written here, attribute for attribute (conv1, bn1, relu, maxpool, layer1-4 with conv1/bn1/relu/conv2/bn2/
    downsample, avgpool, fc).
    """
    import torch
    from torch import nn

    class BasicBlock(nn.Module):
        expansion = 1

        def __init__(self, inplanes, planes, stride=1, downsample=None):
            super().__init__()
            self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.downsample = downsample
            self.stride = stride

        def forward(self, x):
            identity = x
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            if self.downsample is not None:
                identity = self.downsample(x)
            out += identity
            return self.relu(out)

    class ResNet(nn.Module):
        def __init__(self, layers=(2, 2, 2, 2), num_classes=1000):
            super().__init__()
            self.inplanes = 64
            self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
            self.layer1 = self._make_layer(64, layers[0])
            self.layer2 = self._make_layer(128, layers[1], stride=2)
            self.layer3 = self._make_layer(256, layers[2], stride=2)
            self.layer4 = self._make_layer(512, layers[3], stride=2)
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(512, num_classes)
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.constant_(m.weight, 1)
                    nn.init.constant_(m.bias, 0)

        def _make_layer(self, planes, blocks, stride=1):
            downsample = None
            if stride != 1 or self.inplanes != planes:
                downsample = nn.Sequential(
                    nn.Conv2d(self.inplanes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
                )
            layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
            self.inplanes = planes
            layers += [BasicBlock(self.inplanes, planes) for _ in range(1, blocks)]
            return nn.Sequential(*layers)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    return ResNet(num_classes=num_classes)


def mindcv_resnet18(num_classes: int = 10):
    """mindcv 0.3.0's ``resnet18`` (random init; mindcv imports under MindSpore 2.10)."""
    _require("mindcv", MINDCV_VERSION)
    import mindcv

    return mindcv.create_model("resnet18", pretrained=False, num_classes=num_classes)


# ------------------------------------------------------------------------------------------------ YOLOv5

# Modules upstream's model code imports for plotting and downloads only (utils.plots, utils.downloads):
# stand-ins while models/yolo.py imports, any use of them raises (yolov5_pt.upstream's rule).
_PLOTTING_STAND_INS: dict[str, dict[str, Any]] = {
    "matplotlib": {"rc": lambda *a, **k: None, "use": lambda *a, **k: None},
    "matplotlib.pyplot": {},
    "pandas": {"options": types.SimpleNamespace(display=types.SimpleNamespace())},
    "seaborn": {},
    "requests": {},
}
_upstream_yolo = None


def upstream_yolo():
    """Upstream YOLOv5 v7.0's ``yolov5.models.yolo`` module (``yolov5==7.0.14``, installed --no-deps)."""
    global _upstream_yolo
    if _upstream_yolo is not None:
        return _upstream_yolo
    from yolov5_pt.upstream import UpstreamNotInstalledError, _StandIn, load_upstream

    try:
        load_upstream()  # utils.general & co. with their own stand-ins (the data path's)
    except UpstreamNotInstalledError as exc:
        pytest.skip(str(exc))
    added: dict[str, types.ModuleType] = {}
    for name, attrs in _PLOTTING_STAND_INS.items():
        if name in sys.modules:
            continue
        module: types.ModuleType = _StandIn(name)
        module.__spec__ = importlib.machinery.ModuleSpec(name, loader=None, is_package=True)
        module.__path__ = []
        module.__dict__.update(attrs)
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(added.get(parent) or sys.modules[parent], child, module)
        added[name] = module
        sys.modules[name] = module
    before = set(sys.modules)
    try:
        _upstream_yolo = importlib.import_module("yolov5.models.yolo")
    finally:
        for name, module in added.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]
        # The model modules stay reachable through _upstream_yolo; out of sys.modules they leave the process as
        # yolov5_pt.upstream leaves it (its tests check that upstream's model zoo was never imported).
        for name in set(sys.modules) - before:
            if name.startswith("yolov5."):
                del sys.modules[name]
    return _upstream_yolo


def torch_yolov5s(nc: int = 80, seed: int = 0):
    """Upstream's ``DetectionModel('yolov5s.yaml')`` (random init, upstream's own BN eps/momentum)."""
    import contextlib
    import io

    import torch

    yolo = upstream_yolo()
    LOGGER = yolo.LOGGER  # upstream's name

    torch.manual_seed(seed)
    disabled, LOGGER.disabled = LOGGER.disabled, True  # upstream logs the model table on every build
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return yolo.DetectionModel(os.path.join(os.path.dirname(yolo.__file__), "yolov5s.yaml"), ch=3, nc=nc)
    finally:
        LOGGER.disabled = disabled


# mindyolo's configs/yolov5/yolov5s.yaml, its `network:` section (the wheel ships no configs).
MINDYOLO_YOLOV5S = {
    "model_name": "yolov5",
    "depth_multiple": 0.33,
    "width_multiple": 0.50,
    "stride": [8, 16, 32],
    "anchors": [[10, 13, 16, 30, 33, 23], [30, 61, 62, 45, 59, 119], [116, 90, 156, 198, 373, 326]],
    "backbone": [
        [-1, 1, "ConvNormAct", [64, 6, 2, 2]],
        [-1, 1, "ConvNormAct", [128, 3, 2]],
        [-1, 3, "C3", [128]],
        [-1, 1, "ConvNormAct", [256, 3, 2]],
        [-1, 6, "C3", [256]],
        [-1, 1, "ConvNormAct", [512, 3, 2]],
        [-1, 9, "C3", [512]],
        [-1, 1, "ConvNormAct", [1024, 3, 2]],
        [-1, 3, "C3", [1024]],
        [-1, 1, "SPPF", [1024]],
    ],
    "head": [
        [-1, 1, "ConvNormAct", [512, 1, 1]],
        [-1, 1, "Upsample", [None, 2, "nearest"]],
        [[-1, 6], 1, "Concat", [1]],
        [-1, 3, "C3", [512, False]],
        [-1, 1, "ConvNormAct", [256, 1, 1]],
        [-1, 1, "Upsample", [None, 2, "nearest"]],
        [[-1, 4], 1, "Concat", [1]],
        [-1, 3, "C3", [256, False]],
        [-1, 1, "ConvNormAct", [256, 3, 2]],
        [[-1, 14], 1, "Concat", [1]],
        [-1, 3, "C3", [512, False]],
        [-1, 1, "ConvNormAct", [512, 3, 2]],
        [[-1, 10], 1, "Concat", [1]],
        [-1, 3, "C3", [1024, False]],
        [[17, 20, 23], 1, "YOLOv5Head", ["nc", "anchors", "stride"]],
    ],
}


def _import_mindyolo():
    """Import mindyolo with a ``pkg_resources`` stand-in in ``sys.modules`` only while it imports.

    ``mindyolo.data.albumentations`` does ``import pkg_resources as pkg`` (setuptools >= 81 has none) and calls
    it only when albumentations augmentation is configured, which the model path never is; the stand-in is
    taken out again afterwards (pytest's monkeypatch, among others, treats a ``pkg_resources`` module as real).
    """
    if "mindyolo" in sys.modules:
        return sys.modules["mindyolo"]
    from yolov5_pt.upstream import _StandIn

    added = None
    if "pkg_resources" not in sys.modules and importlib.util.find_spec("pkg_resources") is None:
        added = _StandIn("pkg_resources")
        added.__spec__ = importlib.machinery.ModuleSpec("pkg_resources", loader=None)
        sys.modules["pkg_resources"] = added
    try:
        return importlib.import_module("mindyolo")
    finally:
        if added is not None and sys.modules.get("pkg_resources") is added:
            del sys.modules["pkg_resources"]


def mindyolo_yolov5s(nc: int = 80):
    """mindyolo 0.5.0's yolov5s from its config (random init)."""
    _require("mindyolo", MINDYOLO_VERSION)
    _import_mindyolo()
    import contextlib
    import io

    from mindyolo.models.model_factory import create_model
    from mindyolo.utils.config import Config

    with contextlib.redirect_stdout(io.StringIO()):
        return create_model(model_name="yolov5", model_cfg=Config(MINDYOLO_YOLOV5S), num_classes=nc)


# ------------------------------------------------------------------------------------------------ CLI factories


def resnet18_input(batch: int = 2, size: int = 64):
    import numpy as np

    return np.random.default_rng(0).standard_normal((batch, 3, size, size)).astype(np.float32)


def resnet18_pair():
    """``torch2ms align`` factory: torch ResNet-18 and mindcv's resnet18 (weights as built) and an input."""
    import torch

    torch.manual_seed(0)
    return torch_resnet18(), mindcv_resnet18(), resnet18_input()


def resnet18_loaded():
    """``torch2ms diff --map`` factory: the pair with torch's weights loaded through the saved alignment
    (``RESNET18_MAP`` in the environment), both in eval mode."""
    import porting

    t, m, x = resnet18_pair()
    porting.load_torch_state_dict(m, t.state_dict(), alignment=os.environ["RESNET18_MAP"])
    t.eval()
    m.set_train(False)
    return t, m, x
