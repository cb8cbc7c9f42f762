"""The training step: optimizer and LR-schedule translation, per-layer and per-step diffs.

``convert_optimizer`` / ``convert_lr_scheduler`` give MindSpore objects that apply torch's formulas;
``diff_layers`` compares one forward/backward layer by layer, ``compare_training`` whole steps.
"""

from porting.training._layer_diff import LayerDiff, LayerReport, diff_layers
from porting.training._lr_scheduler import LRSchedule, convert_lr_scheduler
from porting.training._optim import convert_optimizer
from porting.training._training import StepRecord, TrainingReport, compare_training

__all__ = [
    "LRSchedule",
    "LayerDiff",
    "LayerReport",
    "StepRecord",
    "TrainingReport",
    "compare_training",
    "convert_lr_scheduler",
    "convert_optimizer",
    "diff_layers",
]
