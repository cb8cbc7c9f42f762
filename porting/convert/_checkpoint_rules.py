"""The conversion rules between torch state-dict names/layouts and MindSpore parameter names, as data.

One row per kind of layer; :mod:`porting.convert._checkpoint` applies them with small generic code (both directions,
plus :func:`porting.torch_to_mindspore_names`), so each rule lives in exactly one place.

A row is a tuple of :class:`Entry`: ``ms`` is the parameter's path inside the MindSpore cell (it may go
through a child cell: BatchNorm3d keeps its state in ``bn2d``), ``torch`` the key inside the torch
module, ``layout`` how the array changes (``None``: same layout; ``("axis", k)``: MindSpore has an extra
size-1 axis ``k`` that torch has not), ``when`` the name of a condition (:data:`CONDITIONS`) under which
torch has the key at all; when it does not hold the MindSpore parameter is filled with ``fill`` on load
(``None``: left as it is, MindSpore never reads it) and left out on the way back.

Parameters that no row names keep their name (Dense/Linear, Conv2d/3d, LSTM/GRU/RNN, any custom
``Parameter``): torch and MindSpore spell them the same.
"""

from __future__ import annotations

import dataclasses

__all__ = ["Entry", "RULES", "CELL_RULES", "CARRIED", "CONDITIONS", "KEY_SIGNATURES", "MOMENTUM_SUSPECT_ABOVE"]


@dataclasses.dataclass(frozen=True)
class Entry:
    """One parameter's rule: MindSpore path, torch key, layout change, condition, fill value."""

    ms: str
    torch: str
    layout: tuple | None = None
    when: str | None = None
    fill: float | None = None


_BN = (
    Entry("gamma", "weight", when="affine", fill=1.0),
    Entry("beta", "bias", when="affine", fill=0.0),
    Entry("moving_mean", "running_mean", when="tracks_running_stats"),
    Entry("moving_variance", "running_var", when="tracks_running_stats"),
)

#: rule name -> entries (MindSpore path inside the cell, torch key inside the module).
RULES: dict[str, tuple[Entry, ...]] = {
    "batchnorm": _BN,
    # mindspore.nn.BatchNorm3d wraps a BatchNorm2d named ``bn2d``: x.weight <-> x.bn2d.gamma.
    "batchnorm3d": tuple(dataclasses.replace(e, ms=f"bn2d.{e.ms}") for e in _BN),
    "layernorm": (Entry("gamma", "weight"), Entry("beta", "bias")),
    "groupnorm": (Entry("gamma", "weight"), Entry("beta", "bias")),
    "embedding": (Entry("embedding_table", "weight"),),
    # torch Conv1d weight (O, I, K) <-> MindSpore (O, I, 1, K); ConvTranspose1d (I, O, K) <-> (I, O, 1, K).
    "conv1d": (Entry("weight", "weight", layout=("axis", 2)), Entry("bias", "bias")),
    # Same names and layouts (listed so the table documents every layer the issue names).
    "same": (),
}

#: MindSpore cell class name (``mindspore.nn``) -> rule name. Subclasses inherit their base's rule;
#: porting's own cells name theirs in a ``torch_rule`` class attribute.
CELL_RULES: dict[str, str] = {
    "BatchNorm1d": "batchnorm",
    "BatchNorm2d": "batchnorm",
    "BatchNorm3d": "batchnorm3d",
    "SyncBatchNorm": "batchnorm",
    "LayerNorm": "layernorm",
    "GroupNorm": "groupnorm",
    "Embedding": "embedding",
    "Conv1d": "conv1d",
    "Conv1dTranspose": "conv1d",
    "Dense": "same",
    "Conv2d": "same",
    "Conv3d": "same",
    "Conv2dTranspose": "same",
    "Conv3dTranspose": "same",
    "LSTM": "same",
    "GRU": "same",
    "RNN": "same",
}

#: rule name -> torch keys with no MindSpore counterpart, carried through MindSpore as an extra
#: non-trainable int64 ``Parameter`` of the same name on the cell (so ``cell.parameters_dict()``,
#: ``save_checkpoint`` and :func:`porting.torch_state_dict` keep them). ``ms`` and ``torch`` are the
#: same attribute name; ``when`` as for :class:`Entry` (torch's BatchNorm has no counter with
#: track_running_stats=False, so none is read or written then).
CARRIED: dict[str, tuple[Entry, ...]] = {
    "batchnorm": (Entry("num_batches_tracked", "num_batches_tracked", when="tracks_running_stats"),),
    "batchnorm3d": (Entry("num_batches_tracked", "num_batches_tracked", when="tracks_running_stats"),),
}

#: condition name -> (attribute read on the MindSpore cell, how) — evaluated by porting.convert._checkpoint:
#: ``affine``: torch has weight/bias unless the cell is affine=False, which MindSpore represents as
#: frozen gamma=1 / beta=0; ``tracks_running_stats``: torch has running stats unless
#: track_running_stats=False, which MindSpore spells ``use_batch_statistics=True``.
CONDITIONS: tuple[str, ...] = ("affine", "tracks_running_stats")

#: A BatchNorm cell that mixes more than this fraction of each batch into its running statistics
#: (torch's momentum convention) looks unflipped: torch's default 0.1 passed to MindSpore as 0.1 means 0.9.
MOMENTUM_SUSPECT_ABOVE = 0.5

#: rule name -> the torch keys that, found together under one prefix of a bare state dict, say which layer it
#: is (``convert_checkpoint`` without ``like=``): ``running_mean`` + ``running_var`` is a BatchNorm (1d/2d; a
#: BatchNorm3d's MindSpore names go through ``bn2d`` and need ``like=``). Other layers whose MindSpore names
#: differ (LayerNorm/GroupNorm gamma/beta, Embedding) cannot be told from their keys (a 1-d ``weight`` and
#: ``bias``): their names are kept, and the report says so.
KEY_SIGNATURES: dict[str, tuple[str, ...]] = {
    "batchnorm": ("running_mean", "running_var"),
}
