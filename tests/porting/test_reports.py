"""Every report class follows the one protocol: ok, verdict, str(), summary(), to_markdown(), to_dict()."""

import json
import types

import numpy as np
import pytest

import porting
from porting.cli._check import CheckResult
from porting.cli._demo_report import DemoReport
from torch2ms_base import environment_report
from torch2ms_base._report import Report

pytest.importorskip("torch")
pytest.importorskip("mindspore")
import torch
from mindspore import nn as mnn
from mindspore import ops


def _reports():
    class Cell(mnn.Cell):
        def __init__(self):
            super().__init__()
            self.fc = mnn.Dense(3, 2)

        def construct(self, x):
            return self.fc(x)

    class Module(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(3, 2)

        def forward(self, x):
            return self.fc(x)

    t, m = Module(), Cell()
    m.set_train(True)
    checkpoint = porting.load_torch_state_dict(m, t.state_dict())
    x = np.ones((2, 3), np.float32)
    layers = porting.diff_layers(t, m, x)
    t_opt = torch.optim.SGD(t.parameters(), lr=0.1)
    m_opt = porting.convert_optimizer(t_opt, m, torch_module=t)
    y = np.zeros((2, 2), np.float32)
    training = porting.compare_training(
        (t, torch.nn.functional.mse_loss, t_opt), (m, ops.mse_loss, m_opt), [(x, y)], steps=1
    )
    pipelines = porting.compare_pipelines([np.arange(3)], [np.arange(3)], progress=False)
    check = CheckResult(
        target="m:f",
        status=0,
        outcome="bit-identical",
        epochs=1,
        seed=0,
        loop="one-iterator",
        steps=None,
        tolerance="exact",
    )
    demo = DemoReport([types.SimpleNamespace(title="a vs b", report=pipelines)], [("seed", 0)])
    return {
        "Comparison": porting.compare(1.0, 1.0),
        "PipelineReport": pipelines,
        "CheckpointReport": checkpoint,
        "LayerReport": layers,
        "TrainingReport": training,
        "SeedReport": porting.seed_everything(0),
        "EnvironmentReport": environment_report(),
        "CheckResult": check,
        "DemoReport": demo,
    }


def test_every_report_class_answers_the_protocol_and_serialises_to_json():
    reports = _reports()
    for name, report in reports.items():
        assert isinstance(report, Report), name
        assert report.ok is True, f"{name}: {report}"
        assert isinstance(report.verdict, str) and report.verdict, name
        assert str(report) and report.summary(), name
        assert report.verdict in report.to_markdown() or f"**{report.verdict}**" in report.to_markdown(), name
        data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
        assert data["ok"] is True and data["verdict"] == report.verdict, name


def test_a_failing_report_says_so_in_every_form():
    bad = porting.compare_pipelines([np.arange(3)], [np.arange(3) + 1], progress=False)
    assert not bad.ok and bad.verdict == "DIFFER"
    assert json.loads(json.dumps(bad.to_dict(), allow_nan=False))["ok"] is False
    assert "**DIFFER**" in bad.to_markdown()
    assert not porting.compare(1.0, 2.0).ok and porting.compare(1.0, 2.0).verdict.startswith("MISMATCH")
