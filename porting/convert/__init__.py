"""Conversion: BatchNorm / SyncBatchNorm layers and checkpoints between torch and MindSpore.

Name and layout rules are data (``porting.convert._checkpoint_rules``) applied by small generic code
that reports missing, unexpected and mis-shaped entries; nothing is matched by position. For a port whose
names differ from torch's, ``align`` derives the name map (an ``Alignment``, a file to save and edit) that
every name-matching function accepts as ``alignment=``.
"""

from porting.convert._align import Alignment, align
from porting.convert._batchnorm import convert_batchnorm, copy_batchnorm_state
from porting.convert._checkpoint import (
    CheckpointMismatchError,
    CheckpointReport,
    convert_checkpoint,
    load_torch_state_dict,
    torch_state_dict,
    torch_to_mindspore_names,
)
from porting.convert._syncbn import ReferenceSyncBatchNorm, ReferenceSyncBatchNormCell

__all__ = [
    "Alignment",
    "CheckpointMismatchError",
    "CheckpointReport",
    "ReferenceSyncBatchNorm",
    "ReferenceSyncBatchNormCell",
    "align",
    "convert_batchnorm",
    "convert_checkpoint",
    "copy_batchnorm_state",
    "load_torch_state_dict",
    "torch_state_dict",
    "torch_to_mindspore_names",
]
