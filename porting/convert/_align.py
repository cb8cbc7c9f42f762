"""``align``: which MindSpore parameter, buffer and layer each torch one is, for two independently written models.

A port written from scratch keeps torch's structure but rarely its names (mindcv's ResNet-18 says ``down_sample``
and ``classifier`` for torchvision's ``downsample`` and ``fc``; mindyolo's YOLOv5 nests ``model.N`` one level
deeper as ``model.model.N`` and says ``convK`` for ``cvK``). :func:`align` derives the name map from what the two
models share, in this order:

1. **Layers with trainable parameters** (convolutions, BatchNorm, Linear/Dense, ...) in execution order (a traced
   forward on both sides, when ``inputs`` are given) or definition order, each described by its kind
   (:data:`LAYER_KINDS`) and the shapes of its trainable parameters in torch's layout; the two sequences are
   aligned as a longest common subsequence. A pair is kept only when *every* longest alignment contains it;
   layers that could pair otherwise are listed as ambiguous with their candidates.
2. **Layers without parameters** (activations, pooling, upsampling, ...) between those, by kind and, when traced,
   output shape, under the same rule.
3. **Containers**: a torch module and a MindSpore cell holding exactly the same matched layers (wrappers that
   hold the same set are paired by kind, the roots with each other; a leftover is listed, never guessed).
4. **Parameters and buffers** inside each pair of layers: by name after porting's rename rules
   (``weight``/``gamma``, ``running_mean``/``moving_mean``...), then by shape when that is unique.

MindSpore parameters that are not trainable, that no rule names and that have no torch state entry are
**derived constants** (mindyolo keeps ``stride`` and ``anchor_grid`` as parameters, torch computes them): listed
as such, with their value checked against a torch tensor attribute of the same name when the torch layer has one.

The result is data, an :class:`Alignment`: a table to read, a YAML file to save, edit and load back
(:meth:`Alignment.save`, :meth:`Alignment.load`), accepted as ``alignment=`` by every function that matches
names (:func:`porting.load_torch_state_dict`, :func:`porting.convert_checkpoint`, :func:`porting.torch_state_dict`,
:func:`porting.torch_to_mindspore_names`, :func:`porting.convert_optimizer`, :func:`porting.diff_layers`,
:func:`porting.compare_training`) and ``--map FILE`` by the ``torch2ms`` commands.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from porting.convert._checkpoint_rules import CARRIED
from porting.harness._format import text_table
from torch2ms_base._report import Report, markdown_table

__all__ = ["Alignment", "CallTracer", "LAYER_KINDS", "align", "as_alignment", "ms_named_cells"]

#: class name (torch or MindSpore) -> kind: two layers can pair only when their kinds are equal. A class not
#: listed is its own kind (its lower-cased name), except that two unlisted classes owning trainable
#: parameters may pair ("custom") when their parameter shapes agree.
LAYER_KINDS: dict[str, str] = {
    # convolutions (same weight layout both sides; Conv1d through the rule tables' size-1 axis)
    "Conv1d": "conv1d",
    "Conv2d": "conv2d",
    "Conv3d": "conv3d",
    "ConvTranspose1d": "conv_transpose1d",
    "Conv1dTranspose": "conv_transpose1d",
    "ConvTranspose2d": "conv_transpose2d",
    "Conv2dTranspose": "conv_transpose2d",
    "ConvTranspose3d": "conv_transpose3d",
    "Conv3dTranspose": "conv_transpose3d",
    "Linear": "linear",
    "Dense": "linear",
    "BatchNorm1d": "batchnorm",
    "BatchNorm2d": "batchnorm",
    "BatchNorm3d": "batchnorm",
    "SyncBatchNorm": "batchnorm",
    "LayerNorm": "layernorm",
    "GroupNorm": "groupnorm",
    "Embedding": "embedding",
    "LSTM": "lstm",
    "GRU": "gru",
    "RNN": "rnn",
    # without parameters
    "ReLU": "relu",
    "ReLU6": "relu6",
    "SiLU": "silu",
    "GELU": "gelu",
    "Sigmoid": "sigmoid",
    "Tanh": "tanh",
    "LeakyReLU": "leaky_relu",
    "Hardswish": "hardswish",
    "HSwish": "hardswish",
    "Hardsigmoid": "hardsigmoid",
    "HSigmoid": "hardsigmoid",
    "Mish": "mish",
    "Softmax": "softmax",
    "ELU": "elu",
    "PReLU": "prelu",
    "MaxPool1d": "maxpool1d",
    "MaxPool2d": "maxpool2d",
    "MaxPool3d": "maxpool3d",
    "AvgPool1d": "avgpool1d",
    "AvgPool2d": "avgpool2d",
    "AvgPool3d": "avgpool3d",
    "AdaptiveAvgPool2d": "adaptive_avgpool2d",
    "AdaptiveMaxPool2d": "adaptive_maxpool2d",
    "Upsample": "upsample",
    "Dropout": "dropout",
    "Dropout2d": "dropout2d",
    "Identity": "identity",
    "Flatten": "flatten",
    "Concat": "concat",
    # containers
    "Sequential": "sequence",
    "SequentialCell": "sequence",
    "ModuleList": "sequence",
    "CellList": "sequence",
    "ModuleDict": "mapping",
    "CellDict": "mapping",
}

_NO_RULE_PARAMETER = None  # marker: an MindSpore parameter no rule names (its torch key is its own name)


def _kind(type_name: str) -> str:
    return LAYER_KINDS.get(type_name, type_name.lower())


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _parent(path: str) -> str:
    return path.rpartition(".")[0]


def _under(path: str, prefix: str) -> bool:
    return not prefix or path == prefix or path.startswith(prefix + ".")


# ------------------------------------------------------------------------------------------------ walking


def ms_named_cells(cell: Any) -> list[tuple[str, Any]]:
    """Every ``(path, cell)`` of a MindSpore cell tree, a shared cell under each of its paths (torch's
    ``named_modules(remove_duplicate=False)``; MindSpore's ``cells_and_names`` lists a shared cell once).

    Example:
        >>> import mindspore
        >>> act = mindspore.nn.ReLU()
        >>> [p for p, _ in ms_named_cells(mindspore.nn.SequentialCell([act, act]))]
        ['', '0', '1']
    """
    out: list[tuple[str, Any]] = []

    def walk(prefix: str, c: Any, active: frozenset) -> None:
        out.append((prefix, c))
        # _cells, not name_cells(): name_cells() lists a cell held twice once
        for name, child in getattr(c, "_cells", {}).items():
            if child is None or id(child) in active:
                continue  # a cycle: listed once
            walk(_join(prefix, name), child, active | {id(child)})

    walk("", cell, frozenset({id(cell)}))
    return out


class CallTracer:
    """Attributes each call of a layer to one of its paths, also for a layer shared under several paths.

    A module reachable under several paths (upstream YOLOv5's 57 ``Conv`` layers all hold ONE ``SiLU``,
    ``Conv.default_act``) is hooked once; each call is logged under the path whose parent is the innermost
    layer running at that moment (``model.1.act`` when ``model.1`` calls it), else under its first path.
    Used with forward pre-hooks (:meth:`enter`) and forward hooks (:meth:`exit`), torch's or MindSpore's.

    Example:
        >>> top, a, b, act = object(), object(), object(), object()
        >>> t = CallTracer([("", top), ("a", a), ("a.act", act), ("b", b), ("b.act", act)])
        >>> _ = t.enter(top), t.enter(b), t.enter(act)
        >>> t.exit(act)
        ('b.act', 0)
    """

    def __init__(self, named: list[tuple[str, Any]]) -> None:
        self.paths_of: dict[int, list[str]] = {}
        for path, obj in named:
            self.paths_of.setdefault(id(obj), []).append(path)
        self.stack: list[str] = []
        self.counts: dict[str, int] = {}

    def enter(self, obj: Any) -> str:
        paths = self.paths_of.get(id(obj), [""])
        path = paths[0]
        if len(paths) > 1:
            for active in reversed(self.stack):
                below = [p for p in paths if _parent(p) == active]
                if below:
                    path = below[0]
                    break
        self.stack.append(path)
        return path

    def exit(self, obj: Any) -> tuple[str, int]:
        path = self.stack.pop() if self.stack else self.paths_of.get(id(obj), [""])[0]
        call = self.counts.get(path, 0)
        self.counts[path] = call + 1
        return path, call


# ------------------------------------------------------------------------------------------------ the sides


@dataclasses.dataclass
class _Layer:
    path: str
    type: str
    kind: str
    leaf: bool
    trainable: tuple  # sorted torch-layout shapes of the layer's own trainable parameters
    entries: dict  # own entries: local torch-style name -> (full name, torch-layout shape, trainable, rule-named)
    obj: Any = None


def _torch_side(module: Any) -> dict[str, _Layer]:
    state = module.state_dict(keep_vars=True)
    layers: dict[str, _Layer] = {}
    for path, mod in module.named_modules(remove_duplicate=False):
        prefix = f"{path}." if path else ""
        params = dict(mod.named_parameters(recurse=False))
        entries = {}
        for local in [*params, *(n for n, _ in mod.named_buffers(recurse=False))]:
            key = prefix + local
            if key in state and not local.endswith("num_batches_tracked"):
                value = state[key]
                entries[local] = (key, tuple(value.shape), local in params and value.requires_grad, True)
        trainable = tuple(sorted(shape for _, shape, tr, _ in entries.values() if tr))
        has_children = any(True for _ in mod.children())
        layers[path] = _Layer(
            path, type(mod).__name__, _kind(type(mod).__name__), not has_children, trainable, entries, mod
        )
    return layers


def _rule_cell_parts(named: list[tuple[str, Any]], rule_cells: set[str]) -> dict[str, str]:
    """``{path: the outermost rule-governed cell it is inside}`` (such a cell is one layer, its insides part of it)."""
    owner_of_rule: dict[str, str] = {}
    for p in sorted(rule_cells, key=len):
        for q, _ in named:
            if q != p and _under(q, p) and q not in owner_of_rule:
                owner_of_rule[q] = p
    return owner_of_rule


def _ms_side(cell: Any) -> tuple[dict[str, _Layer], dict[str, str]]:
    """MindSpore layers (a rule-governed cell is one leaf: BatchNorm3d's inner ``bn2d`` is not a layer) and
    ``{cell path: carried counter name}`` for the cells that would carry ``num_batches_tracked``."""
    from porting.convert._checkpoint import _plan, _rule_name

    items, _, _ = _plan(cell)
    named = ms_named_cells(cell)
    rule_cells = {p for p, c in named if _rule_name(c) is not None}
    owner_of_rule = _rule_cell_parts(named, rule_cells)
    layers: dict[str, _Layer] = {}
    for path, c in named:
        if path in owner_of_rule:
            continue
        has_children = bool(getattr(c, "_cells", None)) and path not in rule_cells
        layers[path] = _Layer(path, type(c).__name__, _kind(type(c).__name__), not has_children, (), {}, c)
    for item in items:
        if item.entry is not None:
            assert item.torch is not None  # _plan without an alignment gives every parameter a torch key
            local = item.entry.torch
            owner = item.torch[: -len(local) - 1] if item.torch != local else ""
            layout = item.entry.layout
        else:
            owner, local, layout = _parent(item.ms), item.ms.rpartition(".")[2], None
            owner = owner_of_rule.get(owner, owner)
        shape = tuple(item.param.shape)
        if layout is not None:  # torch's layout: the rule's size-1 axis removed
            shape = shape[: layout[1]] + shape[layout[1] + 1 :]
        layer = layers.get(owner)
        if layer is None:
            continue
        layer.entries[local] = (item.ms, shape, bool(item.param.requires_grad), item.entry is not None)
    for layer in layers.values():
        layer.trainable = tuple(sorted(s for _, s, tr, _ in layer.entries.values() if tr))
    carried = {
        p: _join(p, e.ms) for p, c in named if p in rule_cells for e in CARRIED.get(_rule_name(c) or "", ())
    }  # a rule cell's rule is never None
    return layers, carried


# ------------------------------------------------------------------------------------------------ tracing


def _trace_torch(module: Any, inputs: list) -> tuple[list[str], dict[str, tuple]]:
    import torch

    tracer = CallTracer(list(module.named_modules(remove_duplicate=False)))
    order: list[str] = []
    shapes: dict[str, tuple] = {}
    handles = []

    def pre(m, args):
        tracer.enter(m)

    def post(m, args, out):
        path, call = tracer.exit(m)
        if call == 0:
            order.append(path)
            shapes[path] = _shapes(out)

    seen = set()
    for _, mod in module.named_modules(remove_duplicate=False):
        if id(mod) in seen:
            continue
        seen.add(id(mod))
        handles += [mod.register_forward_pre_hook(pre), mod.register_forward_hook(post)]
    saved = {n: b.detach().clone() for n, b in module.named_buffers()}
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            module(*[torch.from_numpy(np.array(x, copy=True)) for x in inputs])
    finally:
        for h in handles:
            h.remove()
        with torch.no_grad():
            for n, b in module.named_buffers():
                if n in saved:
                    b.copy_(saved[n])
    return order, shapes


def _trace_ms(cell: Any, inputs: list) -> tuple[list[str], dict[str, tuple]]:
    import mindspore as ms

    if ms.get_context("mode") != ms.PYNATIVE_MODE:
        raise RuntimeError(
            "align(inputs=...) traces the MindSpore cell with forward hooks, which run in PyNative "
            "mode only: call mindspore.set_context(mode=mindspore.PYNATIVE_MODE) first, or leave "
            "inputs out (definition order)"
        )
    named = ms_named_cells(cell)
    tracer = CallTracer(named)
    order: list[str] = []
    shapes: dict[str, tuple] = {}
    handles = []

    def pre(c, args):
        tracer.enter(c)

    def post(c, args, out):
        path, call = tracer.exit(c)
        if call == 0:
            order.append(path)
            shapes[path] = _shapes(out)
        return out

    seen = set()
    for _, c in named:
        if id(c) in seen:
            continue
        seen.add(id(c))
        handles += [c.register_forward_pre_hook(pre), c.register_forward_hook(post)]
    frozen = [p for p in cell.get_parameters() if not p.requires_grad]
    saved = [p.asnumpy().copy() for p in frozen]
    try:
        cell(*[ms.Tensor(np.array(x, copy=True)) for x in inputs])
    finally:
        for h in handles:
            h.remove()
        for p, value in zip(frozen, saved, strict=True):
            p.set_data(ms.Tensor(value))
    return order, shapes


def _shapes(out: Any) -> tuple:
    if hasattr(out, "shape") and not isinstance(out, (tuple, list, dict)):
        return (tuple(out.shape),)
    if isinstance(out, (tuple, list)):
        return tuple(s for o in out for s in _shapes(o))
    if isinstance(out, dict):
        return tuple(s for o in out.values() for s in _shapes(o))
    return ()


def _as_arrays(inputs: Any) -> list:
    inputs = inputs if isinstance(inputs, (tuple, list)) else (inputs,)
    out = []
    for i, x in enumerate(inputs):
        mod = type(x).__module__
        if isinstance(x, np.ndarray):
            out.append(x)
        elif mod.startswith("torch"):
            out.append(x.detach().cpu().numpy())
        elif mod.startswith("mindspore"):
            out.append(x.asnumpy())
        else:
            raise TypeError(
                f"align: inputs[{i}]: expected a numpy array, torch tensor or mindspore Tensor, got {type(x).__name__}"
            )
    return out


# ------------------------------------------------------------------------------------------------ matching


def _lcs(eq: np.ndarray) -> int:
    """Length of the longest common subsequence given the match matrix ``eq`` (n x m, bool)."""
    n, m = eq.shape
    row = np.zeros(m + 1, np.int64)
    for i in range(n):
        t = np.maximum(row[1:], row[:-1] + eq[i])
        new = np.zeros(m + 1, np.int64)
        new[1:] = np.maximum.accumulate(t)
        row = new
    return int(row[-1])


def _lcs_pairs(eq: np.ndarray) -> list[tuple[int, int]]:
    n, m = eq.shape
    table = np.zeros((n + 1, m + 1), np.int64)
    for i in range(n):
        t = np.maximum(table[i, 1:], table[i, :-1] + eq[i])
        table[i + 1, 1:] = np.maximum.accumulate(t)
    pairs = []
    i, j = n, m
    while i and j:
        if eq[i - 1, j - 1] and table[i, j] == table[i - 1, j - 1] + 1:
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif table[i - 1, j] >= table[i, j - 1]:
            i -= 1
        else:
            j -= 1
    return pairs[::-1]


def _unique_pairs(eq: np.ndarray) -> tuple[list[tuple[int, int]], dict[int, set[int]]]:
    """The pairs every longest alignment contains, and for the others ``{row: candidate columns}``."""
    n, m = eq.shape
    if n == m and eq.diagonal().all():  # n pairs out of n rows and n columns: only the diagonal has n
        return [(i, i) for i in range(n)], {}
    pairs = _lcs_pairs(eq)
    best = len(pairs)
    certain: list[tuple[int, int]] = []
    seen: dict[int, set[int]] = {}  # every pairing some longest alignment makes
    for i, j in pairs:
        seen.setdefault(i, set()).add(j)
        eq[i, j] = False
        if _lcs(eq) == best:  # another longest alignment does without this pair: where else things go
            for ii, jj in _lcs_pairs(eq):
                seen.setdefault(ii, set()).add(jj)
        else:
            certain.append((i, j))
        eq[i, j] = True
    fixed = {i for i, _ in certain}
    return certain, {i: cands for i, cands in seen.items() if i not in fixed}


# ------------------------------------------------------------------------------------------------ result


@dataclasses.dataclass(frozen=True)
class Alignment(Report):
    """The name map from a torch model to its MindSpore port: parameters and buffers, layers, and what is left.

    Attributes:
        state: ``{torch state-dict key: MindSpore parameter name}`` for parameters and buffers
            (``num_batches_tracked`` to the counter porting carries on the MindSpore BatchNorm cell).
        layers: ``{torch module path: MindSpore cell path}`` (``''`` is the top of each model).
        derived: ``{MindSpore parameter: note}``: not trainable, no torch state entry, named by no rule
            (constants a port keeps as parameters, e.g. mindyolo's ``stride``): kept as the cell has them.
        unmatched_torch: ``{torch name: reason}`` for state entries and layers without a counterpart.
        unmatched_mindspore: ``{MindSpore name: reason}`` likewise.
        ambiguous: ``({"torch": name, "candidates": [MindSpore names], "reason": text}, ...)``: left out of
            the maps because more than one pairing fits equally well.
        torch_type, ms_type: the two models' class names.
        order: ``'execution'`` (traced forward) or ``'definition'`` (attribute order) or ``'file'``.
        notes: ``{torch layer path: note}`` on how a pair was made, where it is worth saying (out of order).
    """

    state: dict
    layers: dict
    derived: dict = dataclasses.field(default_factory=dict)
    unmatched_torch: dict = dataclasses.field(default_factory=dict)
    unmatched_mindspore: dict = dataclasses.field(default_factory=dict)
    ambiguous: tuple = ()
    torch_type: str = ""
    ms_type: str = ""
    order: str = "file"
    notes: dict = dataclasses.field(default_factory=dict)

    # ---- the report protocol

    @property
    def ok(self) -> bool:
        """True when every state entry on both sides is paired (or a derived constant) and nothing is ambiguous.

        Unpaired layers without state (an activation the port calls as a function) do not count.
        """
        return not (self.ambiguous or self._unmatched_state())

    def _unmatched_state(self) -> list[str]:
        return [
            n
            for n, why in (*self.unmatched_torch.items(), *self.unmatched_mindspore.items())
            if not why.startswith("layer")
        ]

    @property
    def verdict(self) -> str:
        """``aligned`` or ``INCOMPLETE: <counts>``."""
        if self.ok:
            return "aligned"
        return f"INCOMPLETE: {len(self._unmatched_state())} unmatched state entries, {len(self.ambiguous)} ambiguous"

    def summary(self) -> str:
        """One line: the counts."""
        return (
            f"{self.verdict}: {len(self.state)} parameters/buffers and {len(self.layers)} layers paired, "
            f"{len(self.derived)} derived constants, {len(self.unmatched_torch)} torch and "
            f"{len(self.unmatched_mindspore)} MindSpore names unmatched, {len(self.ambiguous)} ambiguous"
        )

    _HEADER = ("status", "torch", "MindSpore", "note")

    def rows(self) -> list[tuple[str, str, str, str]]:
        """``(status, torch name, MindSpore name, note)``: problems first, then layers, then state entries."""
        rows = [("AMBIGUOUS", a["torch"], " | ".join(a["candidates"]), a["reason"]) for a in self.ambiguous]
        rows += [("UNMATCHED", n, "", why) for n, why in self.unmatched_torch.items()]
        rows += [("UNMATCHED", "", n, why) for n, why in self.unmatched_mindspore.items()]
        rows += [("derived", "", n, note) for n, note in self.derived.items()]
        rows += [("layer", t, m, self.notes.get(t) or ("" if t == m else "renamed")) for t, m in self.layers.items()]
        # a state entry is "renamed" when its layer is (BatchNorm's weight -> gamma & co. are the rule tables')
        rows += [
            ("state", t, m, "" if self.layers.get(_parent(t), _parent(t)) == _parent(t) else "renamed")
            for t, m in self.state.items()
        ]
        return rows

    def table(self, changes_only: bool = False) -> str:
        """The rows as an aligned text table, then the counts.

        Args:
            changes_only: leave out the pairs whose names are the same on both sides (keep renamed, derived,
                ambiguous and unmatched rows).
        """
        rows = [r for r in self.rows() if not changes_only or r[0] not in ("layer", "state") or r[3]]
        return "\n".join(
            [
                text_table(
                    self._HEADER,
                    [[(c or "<top>") if i in (1, 2) and r[0] == "layer" else c for i, c in enumerate(r)] for r in rows],
                ),
                "",
                self.summary(),
            ]
        )

    def __str__(self) -> str:
        return self.table()

    def to_markdown(self) -> str:
        """The table as GitHub markdown and the counts."""
        return markdown_table(self._HEADER, self.rows()) + f"\n\n**{self.summary()}**\n"

    # ---- lookups

    def ms_name(self, torch_key: str) -> str | None:
        """The MindSpore parameter a torch state-dict key is, or ``None``."""
        return self.state.get(torch_key)

    def ms_layer(self, torch_path: str) -> str | None:
        """The MindSpore cell path a torch module path is, or ``None``."""
        return self.layers.get(torch_path)

    # ---- the file

    def to_yaml(self) -> str:
        """The alignment as YAML (what :meth:`save` writes)."""
        import yaml

        head = (
            "# torch2ms alignment: torch names -> MindSpore names (porting.align / torch2ms align).\n"
            "# Edit freely: move an entry from 'ambiguous' or 'unmatched_*' into 'state' or 'layers' to pair it.\n"
            "# state: torch state-dict key -> MindSpore parameter; layers: torch module path -> MindSpore cell path\n"
            "# ('' is the top); derived: MindSpore parameters kept as the cell has them (no torch state entry).\n"
        )
        data = {
            "torch_type": self.torch_type,
            "ms_type": self.ms_type,
            "order": self.order,
            "state": dict(self.state),
            "layers": dict(self.layers),
            "derived": dict(self.derived),
            "unmatched_torch": dict(self.unmatched_torch),
            "unmatched_mindspore": dict(self.unmatched_mindspore),
            "ambiguous": [dict(a) for a in self.ambiguous],
            "notes": dict(self.notes),
        }
        return head + yaml.safe_dump(data, sort_keys=False, width=120, allow_unicode=True)

    def save(self, path: str | os.PathLike) -> None:
        """Write the alignment to ``path`` as YAML (a file to read and edit; :meth:`load` reads it back).

        Example:
            >>> import tempfile, os
            >>> a = Alignment(state={"fc.weight": "classifier.weight"}, layers={"fc": "classifier"})
            >>> p = os.path.join(tempfile.mkdtemp(), "map.yaml"); a.save(p)
            >>> Alignment.load(p).state
            {'fc.weight': 'classifier.weight'}
        """
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.to_yaml())

    @classmethod
    def load(cls, path: str | os.PathLike) -> Alignment:
        """Read an alignment saved by :meth:`save` (or written by hand); ``yaml.safe_load`` only.

        Raises:
            FileNotFoundError: no such file.
            ValueError: not YAML, or a section that is not what :meth:`save` writes (named with the file and key).
        """
        import yaml

        path = os.fspath(path)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValueError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
        return cls.from_dict(data, where=path)

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "alignment") -> Alignment:
        """An alignment from the mapping :meth:`to_yaml` writes (``state`` and ``layers`` required)."""
        if not isinstance(data, Mapping):
            raise ValueError(f"{where}: expected a mapping with 'state' and 'layers', got {type(data).__name__}")
        known = {
            "torch_type",
            "ms_type",
            "order",
            "state",
            "layers",
            "derived",
            "unmatched_torch",
            "unmatched_mindspore",
            "ambiguous",
            "notes",
        }
        extra = sorted(set(map(str, data)) - known)
        if extra:
            raise ValueError(f"{where}: unknown key(s) {extra}; expected some of {sorted(known)}")

        def names(key: str, required: bool) -> dict[str, str]:
            return _names(data, key, required, where)

        state = names("state", True)
        dup = _duplicates(state.values())
        if dup:
            raise ValueError(f"{where}: 'state' maps several torch keys to the same MindSpore name(s) {dup}")
        ambiguous = data.get("ambiguous") or []
        if not isinstance(ambiguous, list) or not all(
            isinstance(a, Mapping) and isinstance(a.get("torch"), str) and isinstance(a.get("candidates"), list)
            for a in ambiguous
        ):
            raise ValueError(
                f"{where}: 'ambiguous': expected a list of {{torch: name, candidates: [names], reason: text}}}}"
            )
        return cls(
            state=state,
            layers=names("layers", True),
            derived=names("derived", False),
            unmatched_torch=names("unmatched_torch", False),
            unmatched_mindspore=names("unmatched_mindspore", False),
            ambiguous=tuple(
                {
                    "torch": a["torch"],
                    "candidates": [str(c) for c in a["candidates"]],
                    "reason": str(a.get("reason", "")),
                }
                for a in ambiguous
            ),
            torch_type=str(data.get("torch_type") or ""),
            ms_type=str(data.get("ms_type") or ""),
            order=str(data.get("order") or "file"),
            notes=names("notes", False),
        )


def _names(data: Mapping, key: str, required: bool, where: str) -> dict[str, str]:
    """``data[key]``, a mapping of names (text on both sides; ``None`` is the root layer ``""``), checked."""
    value = data.get(key)
    if value is None:
        if required:
            raise ValueError(f"{where}: '{key}' is missing (a mapping of names)")
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: '{key}': expected a mapping of names, got {type(value).__name__}")
    out = {}
    for k, v in value.items():
        k = "" if k is None else k
        v = "" if v is None and key == "layers" else v
        if not isinstance(k, str) or not isinstance(v, str):
            raise ValueError(f"{where}: '{key}' entry {k!r}: {v!r}: expected text on both sides")
        out[k] = v
    return out


def _duplicates(values) -> list:
    seen, dup = set(), []
    for v in values:
        if v in seen and v not in dup:
            dup.append(v)
        seen.add(v)
    return dup


def as_alignment(alignment: Any, where: str) -> Alignment | None:
    """``None``, an :class:`Alignment`, or a path to a saved one -> an :class:`Alignment` (or ``None``).

    Example:
        >>> as_alignment(None, "f") is None
        True
    """
    if alignment is None or isinstance(alignment, Alignment):
        return alignment
    if isinstance(alignment, (str, os.PathLike)):
        return Alignment.load(alignment)
    raise TypeError(
        f"{where}: alignment: expected a porting.Alignment or the path of a saved one (YAML), got "
        f"{type(alignment).__name__}"
    )


# ------------------------------------------------------------------------------------------------ align


def align(torch_module: Any, ms_cell: Any, inputs: Any = None) -> Alignment:
    """Pair the parameters, buffers and layers of a torch model with those of its independently written port.

    See the module docstring for the rules: layers with trainable parameters by kind and shapes in execution
    (``inputs`` given) or definition order, a pair kept only when every longest alignment has it; layers
    without parameters in between by kind (and output shape); containers by the layers they hold; entries
    by the rename rules, then shape. Nothing is paired on a guess: what could pair more than one way is in
    ``ambiguous``, what pairs with nothing in ``unmatched_*``.

    Args:
        torch_module: the reference ``torch.nn.Module``.
        ms_cell: its MindSpore port (``mindspore.nn.Cell``), attribute names free.
        inputs: optional example input(s) (numpy / torch / MindSpore arrays; a tuple for several): one forward
            on each side gives the execution order and output shapes. Buffers, non-trainable parameters and
            torch's random stream are restored afterwards; training modes are left as they are.

    Returns:
        An :class:`Alignment` (``print(a)`` for the table, ``a.save('map.yaml')`` to keep and edit it).

    Raises:
        TypeError: an input that is not an array.
        RuntimeError: ``inputs`` given while MindSpore is in GRAPH mode (hooks run in PyNative mode only).

    Example:
        >>> import torch, mindspore
        >>> t = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
        >>> class Port(mindspore.nn.Cell):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.hidden = mindspore.nn.Dense(3, 4)
        ...         self.act = mindspore.nn.ReLU()
        ...         self.out = mindspore.nn.Dense(4, 2)
        ...     def construct(self, x):
        ...         return self.out(self.act(self.hidden(x)))
        >>> a = align(t, Port())
        >>> a.ok, a.state["2.weight"], a.layers["1"]
        (True, 'out.weight', 'act')
    """
    t_layers = _torch_side(torch_module)
    m_layers, m_carried = _ms_side(ms_cell)
    order = "definition"
    t_order, m_order = list(t_layers), list(m_layers)
    t_shapes: dict[str, tuple] = {}
    m_shapes: dict[str, tuple] = {}
    if inputs is not None:
        arrays = _as_arrays(inputs)
        t_run, t_shapes = _trace_torch(torch_module, arrays)
        m_run, m_shapes = _trace_ms(ms_cell, arrays)
        # called layers in the order they ran, then the others in definition order
        t_order = [p for p in t_run if p in t_layers] + [p for p in t_layers if p not in t_shapes]
        m_order = [p for p in m_run if p in m_layers] + [p for p in m_layers if p not in m_shapes]
        order = "execution"

    # the four steps of the module docstring, then what is left on each side
    pairing = _Pairing(t_layers, m_layers)
    pairing.pair_anchors(t_order, m_order)
    pairing.pair_leaves(t_order, m_order, t_shapes, m_shapes, traced=inputs is not None)
    pairing.pair_containers()
    state, used_m, ambiguous_t = pairing.pair_entries(m_carried)
    t_state = torch_module.state_dict()
    derived = pairing.leftover_entries(t_state, state, used_m, ambiguous_t, ms_cell)
    pairing.leftover_layers(t_order, m_order, ambiguous_t)
    # state entries first (in the torch state dict's order), then layers
    layer_map = pairing.layer_map
    state = {k: state[k] for k in t_state if k in state}
    layers = {p: layer_map[p] for p in t_layers if p in layer_map}
    return Alignment(
        state=state,
        layers=layers,
        derived=derived,
        unmatched_torch=pairing.unmatched_t,
        unmatched_mindspore=pairing.unmatched_m,
        ambiguous=tuple(pairing.ambiguous),
        torch_type=type(torch_module).__name__,
        ms_type=type(ms_cell).__name__,
        order=order,
        notes=pairing.notes,
    )


def _anchor(layer: _Layer) -> bool:
    """Layers with trainable parameters anchor the alignment (step 1)."""
    return bool(layer.trainable)


def _inside(path: str, paired: set) -> frozenset:
    """The paired layers under ``path``."""
    return frozenset(q for q in paired if q != path and _under(q, path))


def _by_depth(paths: list[str]) -> list[str]:
    """Outermost first (the root, then by depth), then by name."""
    return sorted(paths, key=lambda p: (p.count(".") if p else -1, p))


@dataclasses.dataclass
class _Pairing:
    """What :func:`align` has decided so far; each step reads the pairs the earlier ones made."""

    t_layers: dict[str, _Layer]
    m_layers: dict[str, _Layer]
    layer_map: dict[str, str] = dataclasses.field(default_factory=dict)
    notes: dict[str, str] = dataclasses.field(default_factory=dict)
    ambiguous: list[dict] = dataclasses.field(default_factory=list)
    unmatched_t: dict[str, str] = dataclasses.field(default_factory=dict)
    unmatched_m: dict[str, str] = dataclasses.field(default_factory=dict)

    def match_sequences(self, t_seq: list[str], m_seq: list[str], same, what: str, fixed=frozenset()) -> None:
        """Pair the layers every longest alignment of the two sequences pairs; list the others as ambiguous."""
        if not t_seq or not m_seq:
            return
        eq = np.array([[same(a, b) for b in m_seq] for a in t_seq], dtype=bool)
        certain, maybe = _unique_pairs(eq)
        for i, j in certain:
            self.layer_map[t_seq[i]] = m_seq[j]
        for i, cands in maybe.items():
            if t_seq[i] in fixed:
                continue  # paired by an earlier, stricter pass
            self.ambiguous.append(
                {
                    "torch": t_seq[i],
                    "candidates": [m_seq[j] for j in sorted(cands)],
                    "reason": f"{what}: more than one MindSpore layer fits in the same place",
                }
            )

    def _same_anchor(self, a: str, b: str) -> bool:
        ta, mb = self.t_layers[a], self.m_layers[b]
        kinds_ok = ta.kind == mb.kind or (ta.type not in LAYER_KINDS and mb.type not in LAYER_KINDS)
        return kinds_ok and ta.trainable == mb.trainable

    def pair_anchors(self, t_order: list[str], m_order: list[str]) -> None:
        """Step 1: layers with trainable parameters, by kind and parameter shapes, in order."""
        t_anchor = [p for p in t_order if _anchor(self.t_layers[p])]
        m_anchor = [p for p in m_order if _anchor(self.m_layers[p])]
        self.match_sequences(t_anchor, m_anchor, self._same_anchor, "same kind and parameter shapes")
        # out of order but unique: one layer of a kind and shapes left on each side, and nowhere else to go
        undecided = {a["torch"] for a in self.ambiguous}
        t_left = [p for p in t_anchor if p not in self.layer_map and p not in undecided]
        m_left = [
            q
            for q in m_anchor
            if q not in self.layer_map.values() and not any(q in a["candidates"] for a in self.ambiguous)
        ]
        for p in t_left:
            fits = [q for q in m_left if self._same_anchor(p, q)]
            if len(fits) == 1 and sum(1 for pp in t_left if self._same_anchor(pp, fits[0])) == 1:
                self.layer_map[p] = fits[0]
                self.notes[p] = (
                    "paired by kind and parameter shapes alone (the only such layer on each side; order differs)"
                )

    def pair_leaves(
        self, t_order: list[str], m_order: list[str], t_shapes: dict, m_shapes: dict, *, traced: bool
    ) -> None:
        """Step 2: leaves without trainable parameters, between the paired ones, by kind (and output shape)."""
        t_layers, m_layers = self.t_layers, self.m_layers
        anchors_m = set(self.layer_map.values())
        anchors_t = dict(self.layer_map)

        def same_leaf(a, b):
            ta, mb = t_layers[a], m_layers[b]
            if _anchor(ta) or b in anchors_m:
                return anchors_t.get(a) == b
            if ta.kind != mb.kind:
                return False
            return a not in t_shapes or b not in m_shapes or t_shapes[a] == m_shapes[b]

        t_leaf = [p for p in t_order if t_layers[p].leaf or _anchor(t_layers[p])]
        m_leaf = [p for p in m_order if m_layers[p].leaf or _anchor(m_layers[p])]
        self.match_sequences(
            t_leaf, m_leaf, same_leaf, "same kind" + (" and output shape" if traced else ""), fixed=frozenset(anchors_t)
        )
        self.layer_map.update(anchors_t)  # the leaf pass never undoes a pair of the first

    def pair_containers(self) -> None:
        """Step 3: containers holding the same set of paired layers."""
        layer_map = self.layer_map
        paired_t, paired_m = set(layer_map), set(layer_map.values())
        by_set_m: dict[frozenset, list[str]] = {}
        for q, layer in self.m_layers.items():
            s = frozenset() if layer.leaf else _inside(q, paired_m)
            if s:
                by_set_m.setdefault(s, []).append(q)
        by_set_t: dict[frozenset, list[str]] = {}
        for p, layer in self.t_layers.items():
            s = frozenset() if layer.leaf or p in layer_map else frozenset(layer_map[q] for q in _inside(p, paired_t))
            if s:
                by_set_t.setdefault(s, []).append(p)
        for s, t_paths in by_set_t.items():
            m_paths = [q for q in by_set_m.get(s, []) if q not in layer_map.values()]
            self._pair_same_set(_by_depth(t_paths), _by_depth(m_paths), by_set_m.get(s, []))

    def _pair_same_set(self, t_left: list[str], m_left: list[str], m_holding: list[str]) -> None:
        """Pair containers that hold the same paired layers: roots, then by a kind unique on each side."""
        layer_map = self.layer_map
        if "" in t_left and "" in m_left:
            layer_map[""] = ""
            t_left.remove("")
            m_left.remove("")
        for p in list(t_left):
            kind = self.t_layers[p].kind
            same_kind = [q for q in m_left if self.m_layers[q].kind == kind]
            if len(same_kind) == 1 and kind in LAYER_KINDS.values():
                layer_map[p] = same_kind[0]
                t_left.remove(p)
                m_left.remove(same_kind[0])
        if len(t_left) == 1 and len(m_left) == 1:
            layer_map[t_left[0]] = m_left[0]
            return
        if t_left and m_left:
            for p in t_left:
                self.ambiguous.append(
                    {"torch": p, "candidates": m_left, "reason": "containers holding the same paired layers"}
                )
        if not t_left:
            for q in m_left:
                self.unmatched_m[q] = (
                    f"layer {self.m_layers[q].type}: a MindSpore wrapper around the same "
                    "layers as "
                    f"{next((k for k, v in layer_map.items() if v in m_holding), '?')!r}"
                )

    def pair_entries(self, m_carried: dict[str, str]) -> tuple[dict[str, str], set[str], set[str]]:
        """Step 4: parameters and buffers inside paired layers, by name, then by a shape unique on both sides.

        Returns ``(state: torch key -> MindSpore name, MindSpore names used, torch keys left ambiguous)``.
        """
        state: dict[str, str] = {}
        used_m: set[str] = set()
        ambiguous_t: set[str] = {a["torch"] for a in self.ambiguous}
        for p, q in self.layer_map.items():
            t_entries, m_entries = self.t_layers[p].entries, dict(self.m_layers[q].entries)
            left_t = []
            for local, (key, shape, _, _) in t_entries.items():
                hit = m_entries.get(local)
                if hit is not None and hit[1] == shape:
                    state[key] = hit[0]
                    used_m.add(hit[0])
                    del m_entries[local]
                else:
                    left_t.append((key, shape))
            for key, shape in left_t:
                same = [(lm, v) for lm, v in m_entries.items() if v[1] == shape]
                if len(same) == 1 and sum(1 for _, s in left_t if s == shape) == 1:
                    state[key] = same[0][1][0]
                    used_m.add(same[0][1][0])
                    del m_entries[same[0][0]]
                elif same:
                    self.ambiguous.append(
                        {
                            "torch": key,
                            "candidates": [v[0] for _, v in same],
                            "reason": f"entries of shape {shape} in paired layers {p!r} / {q!r}",
                        }
                    )
                    ambiguous_t.add(key)
            if getattr(self.t_layers[p].obj, "num_batches_tracked", None) is not None and q in m_carried:
                state[_join(p, "num_batches_tracked")] = m_carried[q]
        return state, used_m, ambiguous_t

    def leftover_entries(
        self, t_state: Mapping, state: dict[str, str], used_m: set[str], ambiguous_t: set[str], ms_cell: Any
    ) -> dict[str, str]:
        """List the state entries nothing paired (why, on each side); returns the derived MindSpore constants."""
        layer_map, t_layers = self.layer_map, self.t_layers
        for key in t_state:
            if key in state or key in ambiguous_t:
                continue
            owner = _parent(key)
            if owner in layer_map:
                why = f"no entry of that name or shape in MindSpore layer {layer_map[owner] or '<top>'!r}"
            elif owner in t_layers:
                why = f"its layer {owner or '<top>'!r} ({t_layers[owner].type}) has no MindSpore counterpart"
            else:
                why = "no counterpart"
            self.unmatched_t[key] = why
        derived: dict[str, str] = {}
        t_of = {v: k for k, v in layer_map.items()}
        for q, layer in self.m_layers.items():
            for local, (name, shape, trainable, ruled) in layer.entries.items():
                if name in used_m or any(name in a["candidates"] for a in self.ambiguous):
                    continue
                if not trainable and not ruled:
                    derived[name] = _derived_note(t_layers.get(t_of.get(q, "\0")), local, name, ms_cell, shape)
                elif q in t_of:
                    self.unmatched_m[name] = f"no torch entry in layer {t_of[q] or '<top>'!r}"
                else:
                    self.unmatched_m[name] = f"its layer {q or '<top>'!r} ({layer.type}) has no torch counterpart"
        return derived

    def leftover_layers(self, t_order: list[str], m_order: list[str], ambiguous_t: set[str]) -> None:
        """List the layers nothing paired (their state entries, if any, are listed one by one already)."""
        candidates = {c for a in self.ambiguous for c in a["candidates"]}
        paired_m = set(self.layer_map.values())
        for p in t_order:
            layer = self.t_layers[p]
            if p not in self.layer_map and p not in ambiguous_t:
                self.unmatched_t.setdefault(
                    p,
                    f"layer {layer.type}: "
                    + (
                        "no MindSpore layer of that kind in its place"
                        if layer.leaf
                        else "no MindSpore cell holds exactly the layers paired inside it"
                    ),
                )
        for q in m_order:
            layer = self.m_layers[q]
            if q not in paired_m and q not in candidates:
                self.unmatched_m.setdefault(
                    q,
                    f"layer {layer.type}: "
                    + (
                        "no torch layer of that kind in its place"
                        if layer.leaf
                        else "no torch module holds exactly the layers paired inside it"
                    ),
                )


def _derived_note(t_layer: _Layer | None, local: str, name: str, ms_cell: Any, shape: tuple) -> str:
    """How a derived MindSpore constant compares with the torch layer's tensor attribute of the same name."""
    base = "not trainable, no torch state entry: kept as the cell has it"
    if t_layer is None:
        return base
    value = getattr(t_layer.obj, local, None)
    if value is None or not (hasattr(value, "detach") and hasattr(value, "shape")) or value.numel() == 0:
        return base + f"; torch's {t_layer.path or '<top>'} has no tensor attribute {local!r} (computed at run time)"
    from porting.convert._checkpoint import _resolve

    param = _resolve(ms_cell, name)
    mine = param.asnumpy() if param is not None else None
    theirs = value.detach().cpu().numpy()
    where = f"torch attribute {_join(t_layer.path, local)}"
    if mine is None or mine.size != theirs.size:
        return base + f"; {where} has shape {tuple(theirs.shape)}"
    if np.array_equal(mine.reshape(-1).astype(np.float64), theirs.reshape(-1).astype(np.float64)):
        return base + f"; equal to {where}"
    return base + f"; DIFFERS from {where}"
