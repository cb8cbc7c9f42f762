"""porting: the toolkit for moving PyTorch training code to MindSpore and proving nothing changed.

By concept, one subpackage each (everything public is also importable from ``porting``):

* :mod:`porting.harness` — the equivalence harness: ``compare`` / ``assert_equivalent`` (nested
  structures, any framework mix, ``torch.testing.assert_close``'s rules and wording) and
  ``compare_pipelines`` / ``assert_pipelines_equivalent`` (batch streams, exact by default);
* :mod:`porting.convert` — BatchNorm and checkpoints: ``convert_batchnorm``, ``copy_batchnorm_state``,
  ``load_torch_state_dict``, ``torch_state_dict``, ``convert_checkpoint``, ``torch_to_mindspore_names``,
  ``ReferenceSyncBatchNorm`` / ``ReferenceSyncBatchNormCell``; ``align`` / ``Alignment`` (the name map
  between a torch model and an independently written port);
* :mod:`porting.training` — the training step: ``convert_optimizer``, ``convert_lr_scheduler``,
  ``diff_layers``, ``compare_training``;
* :mod:`porting.cli` — the ``torch2ms`` command line, its reports and the YOLOv5 demo.

Seeding (``seed_everything``) and the environment check come from ``torch2ms_base``, the layer below
both ``porting`` and ``adapters``. torch and MindSpore are imported only by the functions that need
them: ``import porting`` works without torch.
"""

from torch2ms_base import (
    EnvironmentReport,
    IncompatibleEnvironmentError,
    SeedReport,
    check_environment,
    environment_report,
    seed_everything,
)
from torch2ms_base import __version__ as __version__  # re-exported; not in __all__ (the surface test pins it)

check_environment()

from porting.convert import (  # noqa: E402
    Alignment,
    CheckpointMismatchError,
    CheckpointReport,
    ReferenceSyncBatchNorm,
    ReferenceSyncBatchNormCell,
    align,
    convert_batchnorm,
    convert_checkpoint,
    copy_batchnorm_state,
    load_torch_state_dict,
    torch_state_dict,
    torch_to_mindspore_names,
)
from porting.harness import (  # noqa: E402
    BatchMismatch,
    Comparison,
    Mismatch,
    PipelineReport,
    assert_equivalent,
    assert_pipelines_equivalent,
    compare,
    compare_pipelines,
)
from porting.training import (  # noqa: E402
    LayerDiff,
    LayerReport,
    LRSchedule,
    StepRecord,
    TrainingReport,
    compare_training,
    convert_lr_scheduler,
    convert_optimizer,
    diff_layers,
)

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
    # two independently written models
    "align",
    "Alignment",
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
