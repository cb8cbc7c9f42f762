"""porting: the toolkit for moving PyTorch training code to MindSpore and proving nothing changed.

Public surface:

* seeding: ``seed_everything``;
* the equivalence harness: ``compare`` / ``assert_equivalent`` (nested structures, any framework
  mix, ``torch.testing.assert_close``'s rules and wording) and ``compare_pipelines`` /
  ``assert_pipelines_equivalent`` (batch streams, exact by default);
* BatchNorm and checkpoints: ``convert_batchnorm``, ``copy_batchnorm_state``,
  ``load_torch_state_dict``, ``torch_state_dict``, ``convert_checkpoint``,
  ``torch_to_mindspore_names``, ``ReferenceSyncBatchNorm`` / ``ReferenceSyncBatchNormCell``;
* the training step: ``convert_optimizer``, ``convert_lr_scheduler``, ``diff_layers``,
  ``compare_training``;
* the environment check. The ``torch2ms`` command line is :mod:`porting.cli`.

torch and MindSpore are imported only by the functions that need them: ``import porting`` works
without torch.
"""

from porting._environment import (
    EnvironmentReport,
    IncompatibleEnvironmentError,
    check_environment,
    environment_report,
)

check_environment()

from porting._batchnorm import convert_batchnorm, copy_batchnorm_state  # noqa: E402
from porting._checkpoint import (  # noqa: E402
    CheckpointMismatchError,
    CheckpointReport,
    convert_checkpoint,
    load_torch_state_dict,
    torch_state_dict,
    torch_to_mindspore_names,
)
from porting._compare import Comparison, Mismatch, assert_equivalent, compare  # noqa: E402
from porting._layer_diff import LayerDiff, LayerReport, diff_layers  # noqa: E402
from porting._lr_scheduler import LRSchedule, convert_lr_scheduler  # noqa: E402
from porting._optim import convert_optimizer  # noqa: E402
from porting._pipelines import (  # noqa: E402
    BatchMismatch,
    PipelineReport,
    assert_pipelines_equivalent,
    compare_pipelines,
)
from porting._seed import SeedReport, seed_everything  # noqa: E402
from porting._syncbn import ReferenceSyncBatchNorm, ReferenceSyncBatchNormCell  # noqa: E402
from porting._training import StepRecord, TrainingReport, compare_training  # noqa: E402
from porting._version import __version__  # noqa: E402

__all__ = [
    # seeding and the harness
    "seed_everything",
    "SeedReport",
    "compare",
    "assert_equivalent",
    "Comparison",
    "Mismatch",
    "compare_pipelines",
    "assert_pipelines_equivalent",
    "PipelineReport",
    "BatchMismatch",
    # BatchNorm and checkpoints
    "convert_batchnorm",
    "copy_batchnorm_state",
    "load_torch_state_dict",
    "torch_state_dict",
    "convert_checkpoint",
    "torch_to_mindspore_names",
    "CheckpointReport",
    "CheckpointMismatchError",
    "ReferenceSyncBatchNorm",
    "ReferenceSyncBatchNormCell",
    # the training step
    "convert_optimizer",
    "convert_lr_scheduler",
    "LRSchedule",
    "diff_layers",
    "LayerDiff",
    "LayerReport",
    "compare_training",
    "TrainingReport",
    "StepRecord",
    # environment
    "check_environment",
    "environment_report",
    "EnvironmentReport",
    "IncompatibleEnvironmentError",
]
