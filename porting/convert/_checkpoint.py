"""torch state dicts <-> MindSpore cells and checkpoint files, by the rule tables of
:mod:`porting.convert._checkpoint_rules`.

* :func:`torch_to_mindspore_names` — which MindSpore parameter each torch key becomes.
* :func:`load_torch_state_dict` — load a torch state dict (or ``.pt/.pth/.safetensors`` file) into a cell;
  strict by default: every missing, unexpected or mis-shaped entry is listed in one
  :class:`CheckpointMismatchError`, raised before anything is changed.
* :func:`torch_state_dict` — the reverse: the torch-named state dict of a cell.
* :func:`convert_checkpoint` — file to file, dtypes preserved.

Reading and writing the files themselves (``.pt/.pth`` with ``weights_only=True``, ``.safetensors``, ``.ckpt``)
is :mod:`porting.convert._checkpoint_files`, the layer below this one.

``num_batches_tracked`` (torch BatchNorm's counter, which MindSpore has not) is carried as an extra
non-trainable int64 ``Parameter`` named ``num_batches_tracked`` on the BatchNorm cell, so it is in
``cell.parameters_dict()``, in ``mindspore.save_checkpoint`` files and back in :func:`torch_state_dict`.
MindSpore's own BatchNorm does not advance it while training (porting's ``momentum=None`` cell does, as torch).
"""

from __future__ import annotations

import bisect
import dataclasses
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from porting.convert._align import as_alignment
from porting.convert._checkpoint_files import (
    MS_EXT,
    ST_EXT,
    TORCH_EXT,
    cast_loss,
    dtype_name,
    file_ext,
    ms_tensor,
    read_tensors,
    shape_of,
    to_numpy,
    torch_tensor,
    write_tensors,
)
from porting.convert._checkpoint_rules import CARRIED, CELL_RULES, KEY_SIGNATURES, MOMENTUM_SUSPECT_ABOVE, RULES, Entry
from porting.harness._format import text_table
from torch2ms_base._report import Report, markdown_table

__all__ = [
    "CheckpointMismatchError",
    "CheckpointReport",
    "convert_checkpoint",
    "load_torch_state_dict",
    "torch_state_dict",
    "torch_to_mindspore_names",
]


# ---------------------------------------------------------------------------------------------- planning


@dataclasses.dataclass(frozen=True)
class _Item:
    """One MindSpore parameter and the torch key it corresponds to."""

    ms: str  # parameter name, as in cell.parameters_dict()
    torch: str | None  # full torch state-dict key (None: an alignment names none for it)
    entry: Entry | None  # None: no rule names it, same name and layout
    cell: Any
    param: Any


@dataclasses.dataclass(frozen=True)
class _Carried:
    torch: str | None  # full torch key, e.g. 'bn.num_batches_tracked' (None: an alignment names none for it)
    attr: str  # attribute on the cell
    cell: Any
    active: bool  # torch has the key for this cell (False: track_running_stats=False, no counter)
    ms: str | None  # the cell's own counter Parameter's name, if it carries one
    ms_path: str = ""  # the MindSpore name the counter has or gets (the cell's path + attribute)


def _rule_name(cell: Any) -> str | None:
    own = getattr(type(cell), "torch_rule", None)
    if own is not None:
        return own
    for cls in type(cell).__mro__:
        if cls.__module__.startswith("mindspore.nn") and cls.__name__ in CELL_RULES:
            return CELL_RULES[cls.__name__]
    return None


def _resolve(cell: Any, path: str) -> Any:
    obj = cell
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


# C901 (below): one pass applying the rule tables to every cell, filling the lists it returns
def _plan(cell: Any, alignment: Any = None) -> tuple[list[_Item], list[_Carried], list[str]]:  # noqa: C901
    """Every parameter of ``cell`` with its torch key; the carried keys; momentum warnings.

    With an :class:`~porting.Alignment` the torch keys are the alignment's (``None`` where it names none);
    without one, a parameter's torch key is its own path with the rule's torch name.
    """
    params = cell.parameters_dict()
    name_of = {id(p): n for n, p in params.items()}  # Parameter.name is a slow property
    claimed: dict[str, _Item] = {}
    carried: list[_Carried] = []
    carried_names: set[str] = set()
    warnings: list[str] = []
    ruled: list[str] = []
    for prefix, sub in cell.cells_and_names():
        rule = _rule_name(sub)
        if rule is None or any(prefix.startswith(r + ".") or not r for r in ruled):
            continue  # a cell inside a rule's cell (BatchNorm3d's bn2d) is part of that rule
        ruled.append(prefix)
        for entry in RULES[rule]:
            name = name_of.get(id(_resolve(sub, entry.ms)))
            if name is not None and name not in claimed:
                claimed[name] = _Item(name, _join(prefix, entry.torch), entry, sub, params[name])
        for entry in CARRIED.get(rule, ()):
            name = name_of.get(id(getattr(sub, entry.ms, None)))
            active = entry.when is None or _condition(entry.when, sub, for_save=False)
            carried.append(_Carried(_join(prefix, entry.torch), entry.ms, sub, active, name, _join(prefix, entry.ms)))
            if name is not None:
                carried_names.add(name)
        warning = _momentum_warning(prefix, sub, rule)
        if warning:
            warnings.append(warning)
    items = []
    for name, param in params.items():
        if name in carried_names:
            continue
        items.append(claimed.get(name) or _Item(name, name, None, None, param))
    if alignment is not None:
        torch_of = {ms: key for key, ms in alignment.state.items()}
        items = [dataclasses.replace(item, torch=torch_of.get(item.ms)) for item in items]
        carried = [
            dataclasses.replace(c, torch=torch_of.get(c.ms_path), active=c.active and c.ms_path in torch_of)
            for c in carried
        ]
    return items, carried, warnings


def _momentum_warning(prefix: str, cell: Any, rule: str) -> str | None:
    if not rule.startswith("batchnorm"):
        return None
    bn = getattr(cell, "bn2d", cell) if rule == "batchnorm3d" else cell
    op = getattr(bn, "bn_train", None)
    # The op's momentum is the fraction of each batch mixed in (torch's convention), whatever the
    # cell's constructor called it.
    mixed = getattr(op, "momentum", getattr(bn, "mixed_momentum", None))
    if mixed is None or getattr(bn, "use_batch_statistics", None) is True:
        return None
    if float(mixed) > MOMENTUM_SUSPECT_ABOVE:
        return (
            f"{prefix or 'the cell'}: BatchNorm mixes {float(mixed):.3g} of each batch into its running statistics "
            f"(MindSpore momentum={1 - float(mixed):.3g}); this looks unflipped — torch momentum m is MindSpore "
            f"momentum 1 - m (torch's default 0.1 is MindSpore's 0.9)"
        )
    return None


def torch_to_mindspore_names(torch_module: Any, cell: Any, *, alignment: Any = None) -> dict[str, str]:
    """Map each key of ``torch_module.state_dict()`` that has a MindSpore counterpart to its name in ``cell``.

    Matching is by the name rules (:mod:`porting.convert._checkpoint_rules`, the ones :func:`load_torch_state_dict`
    applies) on the same attribute paths, or by ``alignment`` for a port whose names differ; never by
    definition order. Keys without a counterpart (``num_batches_tracked``) and keys the cell has no
    parameter for are absent.

    Args:
        torch_module: a ``torch.nn.Module``.
        cell: a ``mindspore.nn.Cell`` with the same attribute structure (or any, with ``alignment``).
        alignment: an :class:`~porting.Alignment` (:func:`porting.align`) or the path of a saved one.

    Returns:
        ``{torch key: MindSpore parameter name}`` in the torch state dict's order.

    Example:
        >>> import torch, mindspore
        >>> class Net(mindspore.nn.Cell):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.bn = mindspore.nn.BatchNorm3d(3)
        >>> torch_to_mindspore_names(torch.nn.ModuleDict({"bn": torch.nn.BatchNorm3d(3)}), Net())["bn.weight"]
        'bn.bn2d.gamma'
    """
    items, _, _ = _plan(cell, as_alignment(alignment, "torch_to_mindspore_names"))
    by_torch = {item.torch: item.ms for item in items if item.torch is not None}
    return {key: by_torch[key] for key in torch_module.state_dict() if key in by_torch}


# ------------------------------------------------------------------------------------------------ report


class CheckpointMismatchError(ValueError):
    """A strict load found missing, unexpected or mis-shaped entries; ``.report`` has all of them."""

    def __init__(self, report: CheckpointReport, where: str) -> None:
        self.report = report
        hint = (
            "; names on both sides that nothing pairs: for a port written independently pass "
            "alignment=porting.align(torch_module, cell)"
            if report.missing and report.unexpected
            else ""
        )
        super().__init__(
            f"{where}: the checkpoint does not match the cell ({report.verdict}){hint}\n"
            + "\n".join(report.problem_lines())
        )


@dataclasses.dataclass(frozen=True)
class CheckpointReport(Report):
    """What a conversion did, entry by entry.

    Attributes:
        loaded: MindSpore names taken as they were (same name, layout and dtype).
        renamed: ``(torch key, MindSpore name)`` pairs whose name changed (layout and dtype unchanged).
        converted: ``(torch key, MindSpore name, how)`` whose layout or dtype changed.
        carried: ``(torch key, MindSpore name)`` kept as an extra MindSpore parameter (``num_batches_tracked``).
        filled: ``(MindSpore name, how)`` set without a torch entry (affine=False gamma/beta).
        unused: MindSpore names torch has no entry for and MindSpore never reads (the statistics and batch
            counter of a track_running_stats=False layer).
        missing: MindSpore names the checkpoint has no entry for.
        unexpected: checkpoint keys nothing in the cell corresponds to.
        mis_shaped: ``(torch key, MindSpore name, shape in the checkpoint, shape expected)``.
        warnings: other findings (a BatchNorm momentum that looks unflipped; a batch counter the checkpoint
            lacks, which the cell keeps as torch's ``load_state_dict`` does; a dtype cast that changes values:
            imaginary parts dropped, overflow to inf, underflow to 0, integers out of range).
        kept: ``(MindSpore name, note)`` left as the cell has them: the derived constants an
            :class:`~porting.Alignment` lists (no torch entry; e.g. mindyolo's ``stride``).
        names_kept: a file conversion without ``like=`` kept every name as it was (no rule applied).
    """

    loaded: tuple = ()
    renamed: tuple = ()
    converted: tuple = ()
    carried: tuple = ()
    filled: tuple = ()
    unused: tuple = ()
    missing: tuple = ()
    unexpected: tuple = ()
    mis_shaped: tuple = ()
    warnings: tuple = ()
    kept: tuple = ()
    names_kept: bool = False

    @property
    def ok(self) -> bool:
        """True when nothing is missing, unexpected or mis-shaped."""
        return not (self.missing or self.unexpected or self.mis_shaped)

    @property
    def verdict(self) -> str:
        """``every entry matched`` or ``MISMATCH: <counts>``."""
        if self.ok:
            return "every entry matched"
        return (
            f"MISMATCH: {len(self.missing)} missing, {len(self.unexpected)} unexpected, "
            f"{len(self.mis_shaped)} mis-shaped"
        )

    def to_markdown(self) -> str:
        """The table as GitHub markdown, the warnings and the counts."""
        lines = [markdown_table(("status", "source", "destination", "detail"), self.rows()), ""]
        lines += [f"- warning: {w}" for w in self.warnings]
        return "\n".join(lines + [f"**{self.verdict}** ({self.summary()})"]) + "\n"

    def problem_lines(self) -> list[str]:
        """One line per missing / unexpected / mis-shaped entry, every one of them."""
        lines = [f"  missing (in the cell, not in the checkpoint): {n}" for n in self.missing]
        lines += [f"  unexpected (in the checkpoint, nothing in the cell): {k}" for k in self.unexpected]
        lines += [
            f"  mis-shaped: {k} -> {n}: checkpoint has shape {tuple(got)}, the cell expects {tuple(want)}"
            for k, n, got, want in self.mis_shaped
        ]
        return lines

    def rows(self) -> list[tuple[str, str, str, str]]:
        """``(status, source name, destination name, detail)`` for every entry."""
        rows = [("kept name" if self.names_kept else "loaded", n, n, "") for n in self.loaded]
        rows += [("renamed", k, n, "") for k, n in self.renamed]
        rows += [("converted", k, n, how) for k, n, how in self.converted]
        rows += [("carried", k, n, "extra int64 parameter") for k, n in self.carried]
        rows += [("filled", "", n, how) for n, how in self.filled]
        rows += [("unused", "", n, "MindSpore never reads it") for n in self.unused]
        rows += [("kept", "", n, note) for n, note in self.kept]
        rows += [("MISSING", "", n, "not in the checkpoint") for n in self.missing]
        rows += [("UNEXPECTED", k, "", "nothing in the cell") for k in self.unexpected]
        rows += [("MIS-SHAPED", k, n, f"{tuple(got)} != expected {tuple(want)}") for k, n, got, want in self.mis_shaped]
        return rows

    def table(self) -> str:
        """The report as an aligned text table, then the warnings and a one-line summary."""
        lines = [text_table(("status", "source", "destination", "detail"), self.rows())]
        lines += [f"warning: {w}" for w in self.warnings]
        lines.append(self.summary())
        return "\n".join(lines)

    def summary(self) -> str:
        """Counts per status."""
        counts = [
            (len(self.loaded), "names kept" if self.names_kept else "loaded"),
            (len(self.renamed), "renamed"),
            (len(self.converted), "converted"),
            (len(self.carried), "carried"),
            (len(self.filled), "filled"),
            (len(self.unused), "unused"),
            *([(len(self.kept), "kept")] if self.kept else []),
            (len(self.missing), "missing"),
            (len(self.unexpected), "unexpected"),
            (len(self.mis_shaped), "mis-shaped"),
        ]
        warnings = f", {len(self.warnings)} warning(s)" if self.warnings else ""
        return ", ".join(f"{n} {what}" for n, what in counts) + warnings

    def __str__(self) -> str:
        return self.table()


# ---------------------------------------------------------------------------------------------- layouts


def _apply_layout(array: np.ndarray, layout: tuple | None, to_ms: bool) -> np.ndarray:
    if layout is None:
        return array
    kind, axis = layout
    if kind != "axis":
        raise ValueError(f"unknown layout rule {layout!r}")
    return np.expand_dims(array, axis) if to_ms else np.squeeze(array, axis)


def _layout_shape(shape: tuple[int, ...], layout: tuple | None) -> tuple[int, ...] | None:
    """torch shape -> MindSpore shape under ``layout`` (None if the layout cannot apply)."""
    if layout is None:
        return shape
    _, axis = layout
    if axis > len(shape):
        return None
    return shape[:axis] + (1,) + shape[axis:]


def _describe_layout(layout: tuple | None) -> str:
    return "" if layout is None else f"size-1 axis {layout[1]} inserted/removed"


# ----------------------------------------------------------------------------------------------- loading


class _Claims:
    """Byte ranges of memory already given to a parameter: a range is claimed once."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []

    def claim(self, array: np.ndarray) -> bool:
        lo = array.__array_interface__["data"][0]
        hi = lo + array.nbytes
        i = bisect.bisect_right(self._starts, lo)
        if (i and self._ends[i - 1] > lo) or (i < len(self._starts) and self._starts[i] < hi):
            return False
        self._starts.insert(i, lo)
        self._ends.insert(i, hi)
        return True


def _source_mapping(source: Any, where: str) -> tuple[Mapping[str, Any], bool]:
    """The entries, and whether their arrays are porting's own (read from a file), so they may be adopted."""
    if isinstance(source, Mapping):
        return source, False
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        ext = file_ext(path)
        if ext not in TORCH_EXT + ST_EXT:
            raise ValueError(f"{where}: expected a state dict or a .pt/.pth/.safetensors file, got {path!r}")
        # .pt read whole (not memory-mapped) and .safetensors tensor by tensor: arrays nobody else holds,
        # adopted by the cell without a copy, so loading needs no second copy of the checkpoint
        return read_tensors(path, lazy=ext in ST_EXT, mmap=False), True
    raise TypeError(f"{where}: expected a state dict (mapping) or a file path, got {type(source).__name__}")


def _meta(source: Mapping[str, Any], key: str) -> tuple[tuple[int, ...], str]:
    """Shape and dtype name of ``source[key]`` (from a file's header when the source is lazy: no data read)."""
    meta = getattr(source, "meta", None)
    if meta is not None:
        return meta(key)
    value = source[key]
    return shape_of(value), dtype_name(value)


def _match(cell: Any, source: Mapping[str, Any], alignment: Any = None) -> tuple[CheckpointReport, list, list]:
    """Decide every entry without touching the cell: the report, the loads and the carried counters."""
    items, carried, warnings = _plan(cell, alignment)
    derived = alignment.derived if alignment is not None else {}
    keys = set(source.keys())
    used: set[str] = set()
    loaded, renamed, converted, filled, unused, missing, mis_shaped, kept = [], [], [], [], [], [], [], []
    loads: list[tuple[_Item, str | None, str | None]] = []  # (item, torch key, dtype note)
    for item in items:
        key = item.torch
        entry = item.entry
        if item.ms in derived and (key is None or key not in keys):
            kept.append((item.ms, derived[item.ms]))
            continue
        if key is None:
            missing.append(item.ms)
            continue
        if key not in keys:
            if entry is not None and entry.when is not None and not _condition(entry.when, item.cell, for_save=False):
                if entry.fill is None:
                    unused.append(item.ms)
                else:
                    filled.append((item.ms, f"{entry.fill:g} ({entry.when}=False in torch)"))
                    loads.append((item, None, None))
                continue
            missing.append(item.ms)
            continue
        used.add(key)
        got, src_dtype = _meta(source, key)
        layout = entry.layout if entry else None
        want = shape_of(item.param)
        if _layout_shape(got, layout) != want:
            mis_shaped.append((key, item.ms, got, want))
            continue
        hows = _conversions(source, key, item, layout, src_dtype, warnings)
        if hows:
            converted.append((key, item.ms, "; ".join(hows)))
        elif key != item.ms:
            renamed.append((key, item.ms))
        else:
            loaded.append(item.ms)
        loads.append((item, key, None))
    carried_rows, counters = _match_counters(carried, source, keys, used, unused, mis_shaped, warnings)
    unexpected = [k for k in source.keys() if k not in used]
    report = CheckpointReport(
        loaded=tuple(loaded),
        renamed=tuple(renamed),
        converted=tuple(converted),
        carried=tuple(carried_rows),
        filled=tuple(filled),
        unused=tuple(unused),
        missing=tuple(missing),
        unexpected=tuple(unexpected),
        mis_shaped=tuple(mis_shaped),
        warnings=tuple(warnings),
        kept=tuple(kept),
    )
    return report, loads, counters


def _conversions(
    source: Mapping[str, Any], key: str, item: Any, layout: Any, src_dtype: str, warnings: list[str]
) -> list[str]:
    """How ``source[key]`` is converted for ``item`` (layout, dtype, a lossy cast: also a warning)."""
    dst_dtype = dtype_name(item.param)
    cast = f"{src_dtype} -> {dst_dtype}" if src_dtype != dst_dtype else ""
    hows = [h for h in (_describe_layout(layout), cast) if h]
    loss = cast_loss(to_numpy(source[key]), dst_dtype) if src_dtype != dst_dtype else None
    if loss:  # named in the row and as a warning: a cast that changes values is not just "converted"
        hows.append(f"LOSSY: {loss}")
        warnings.append(f"{key} -> {item.ms}: {src_dtype} -> {dst_dtype} changes values: {loss}")
    return hows


def _match_counters(
    carried: list,
    source: Mapping[str, Any],
    keys: set[str],
    used: set[str],
    unused: list,
    mis_shaped: list,
    warnings: list[str],
) -> tuple[list, list]:
    """The carried counters (``num_batches_tracked``): ``(report rows, (counter, torch key) to load)``."""
    carried_rows, counters = [], []
    for c in carried:
        if not c.active:  # torch has no counter here; a key of that name stays unexpected
            if c.ms is not None:
                unused.append(c.ms)
            continue
        if c.torch not in keys and c.ms is not None:
            # as torch's own load_state_dict (which fills a missing counter with the module's own)
            warnings.append(
                f"{c.torch}: not in the checkpoint, so not loaded (the cell's own count, "
                f"{int(to_numpy(getattr(c.cell, c.attr)))}, stays, as torch's load_state_dict "
                "keeps the module's)"
            )
        if c.torch in keys:
            used.add(c.torch)
            shape, _ = _meta(source, c.torch)
            if shape != ():
                mis_shaped.append((c.torch, c.ms_path, shape, ()))
                continue
            carried_rows.append((c.torch, c.ms_path))
            counters.append((c, c.torch))
    return carried_rows, counters


def _condition(name: str, cell: Any, *, for_save: bool) -> bool:
    """Whether torch has the entries guarded by condition ``name`` for this MindSpore cell."""
    bn = getattr(cell, "bn2d", cell)
    if name == "tracks_running_stats":
        return getattr(bn, "use_batch_statistics", None) is not True
    if name == "affine":
        gamma, beta = getattr(bn, "gamma", None), getattr(bn, "beta", None)
        if gamma is None or beta is None:
            return False
        frozen = not gamma.requires_grad and not beta.requires_grad
        if not frozen:
            return True
        if not for_save:
            return False
        # Frozen gamma/beta that moved from 1/0 (a fine-tuning freeze) are still written out.
        return not (np.all(to_numpy(gamma) == 1) and np.all(to_numpy(beta) == 0))
    raise ValueError(f"unknown rule condition {name!r}")


def _counter_parameter(cell: Any, attr: str, name: str, value: int):
    """Set (or attach) the carried int64 counter ``attr`` on ``cell``."""
    import mindspore
    from mindspore import Parameter

    data = mindspore.Tensor(np.array(value, dtype=np.int64))
    own = getattr(cell, attr, None)
    if isinstance(own, Parameter):
        own.set_data(data)
        return
    setattr(cell, attr, Parameter(data, name=name, requires_grad=False))


def load_torch_state_dict(
    cell: Any, state_dict_or_path: Any, *, strict: bool = True, copy: bool = True, alignment: Any = None
) -> CheckpointReport:
    """Load a torch state dict into a MindSpore cell by the rule tables; report every entry.

    Names and layouts are mapped by :mod:`porting.convert._checkpoint_rules` (BatchNorm, LayerNorm, GroupNorm,
    Embedding, Conv1d, BatchNorm3d nesting, Linear/Dense, LSTM/GRU); dtypes are cast to the
    parameter's (reported as ``converted``). ``num_batches_tracked`` is carried as an extra int64
    parameter on the BatchNorm cell (see the module docstring).

    Args:
        cell: the ``mindspore.nn.Cell`` to load into (its parameters are replaced in place).
        state_dict_or_path: a mapping of torch keys to tensors/arrays, or a ``.pt``/``.pth`` file
            (read with ``torch.load(weights_only=True)``) or a ``.safetensors`` file.
        strict: raise on any missing, unexpected or mis-shaped entry (nothing is loaded then); with
            ``False`` load what matches and report the rest.
        copy: for a state dict passed in, give the cell its own copy of each tensor (default). ``False``
            shares the memory instead where layout and dtype allow (as ``load_param_into_net`` shares its
            dict's): faster and no second copy, but training the cell then writes into the torch tensors.
            Tensors read from a file are never shared with anyone, so they are adopted without a copy.
            Either way no two parameters share memory: of entries on one storage (tied weights), all but
            the first are copied.
        alignment: for a port whose names differ from torch's (mindcv, mindyolo), an
            :class:`~porting.Alignment` from :func:`porting.align` or the path of a saved one: each torch
            key goes to the MindSpore parameter it names; its derived constants are ``kept``.

    Returns:
        A :class:`CheckpointReport` (``.table()`` prints it; ``.warnings`` lists momenta that look unflipped).

    Raises:
        CheckpointMismatchError: ``strict`` and something does not match; the message lists every entry.
        ValueError / TypeError: an unsupported file type or object.

    Example:
        >>> import numpy as np, mindspore
        >>> class Net(mindspore.nn.Cell):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.fc = mindspore.nn.Dense(2, 1)
        >>> state = {"fc.weight": np.ones((1, 2), np.float32), "fc.bias": np.zeros(1, np.float32)}
        >>> r = load_torch_state_dict(Net(), state)
        >>> r.loaded
        ('fc.weight', 'fc.bias')
    """
    where = "load_torch_state_dict"
    alignment = as_alignment(alignment, where)
    source, owned = _source_mapping(state_dict_or_path, where)
    adopt = owned or not copy
    report, loads, counters = _match(cell, source, alignment)
    if strict and not report.ok:
        raise CheckpointMismatchError(report, where)
    adopted = _Claims()
    for item, key, _ in loads:
        dtype = dtype_name(item.param)
        if key is None:
            array = np.full(shape_of(item.param), item.entry.fill, dtype=np.float32)
        else:
            array = _apply_layout(to_numpy(source[key]), item.entry.layout if item.entry else None, to_ms=True)
        # Tied weights (two keys on one torch storage) must not become two parameters on one buffer:
        # an optimizer would update it twice. The second one gets a copy.
        item.param.set_data(ms_tensor(array, dtype, adopt=adopt and key is not None and adopted.claim(array)))
    for carried, key in counters:
        _counter_parameter(
            carried.cell,
            carried.attr,
            getattr(getattr(carried.cell, carried.attr, None), "name", carried.ms_path),
            int(to_numpy(source[key])),
        )
    return report


# ------------------------------------------------------------------------------------------ the way back


def _torch_named(cell: Any, arrays: Mapping[str, Any] | None, num_batches_tracked: int | None, alignment: Any = None):
    """``[(torch key, MindSpore name, array-like, layout)]`` for the cell (or for ``arrays`` named like it),
    plus the MindSpore names ``arrays`` lacks and its mis-shaped entries."""
    items, carried, _ = _plan(cell, alignment)
    derived = alignment.derived if alignment is not None else {}
    out, missing, mis_shaped, uncounted = [], [], [], []
    unnamed = [item.ms for item in items if item.torch is None and item.ms not in derived]
    if unnamed:
        raise ValueError(
            f"the alignment names no torch key for {len(unnamed)} MindSpore parameter(s): "
            f"{', '.join(unnamed[:5])}{' ...' if len(unnamed) > 5 else ''}; pair them in the map "
            "(its 'state' section) or list them under 'derived'"
        )
    for item in items:
        if item.torch is None:
            continue  # a derived constant: torch has no entry for it
        entry = item.entry
        if entry is not None and entry.when is not None and not _condition(entry.when, item.cell, for_save=True):
            continue  # torch has no such entry (affine=False / track_running_stats=False)
        value = item.param if arrays is None else arrays.get(item.ms)
        if value is None:
            missing.append(item.ms)
            continue
        if shape_of(value) != shape_of(item.param):
            mis_shaped.append((item.ms, item.torch, shape_of(value), shape_of(item.param)))
            continue
        out.append((item.torch, item.ms, value, entry.layout if entry else None))
    for c in carried:
        if not c.active:
            continue  # torch has no counter with track_running_stats=False
        counter = _torch_counter(c, arrays, num_batches_tracked)
        if counter is not None:
            out.append(counter)
        else:
            # left out (never a made-up count); torch's load_state_dict would set it to 0 without a word,
            # so torch_state_dict warns by name.
            uncounted.append(c.torch)
    return out, missing, mis_shaped, uncounted


def _torch_counter(c: _Carried, arrays: Mapping[str, Any] | None, num_batches_tracked: int | None) -> tuple | None:
    """``(torch key, MindSpore name, value, None)`` for a carried counter, or ``None`` when there is no count."""
    from mindspore import Parameter

    own = getattr(c.cell, c.attr, None)
    if arrays is not None and c.ms_path in arrays:
        return c.torch, c.ms_path, arrays[c.ms_path], None
    if arrays is None and isinstance(own, Parameter):
        return c.torch, own.name, own, None
    if num_batches_tracked is not None:
        return c.torch, c.ms_path, np.array(num_batches_tracked, dtype=np.int64), None
    return None


def torch_state_dict(cell: Any, *, num_batches_tracked: int | None = None, alignment: Any = None) -> dict:
    """The torch-named state dict of a MindSpore cell (the reverse of :func:`load_torch_state_dict`).

    Every parameter goes back under its torch key, in torch's layout and its own dtype; the carried
    ``num_batches_tracked`` counters come back as int64 0-d tensors, so torch -> MindSpore -> torch is
    exact. affine=False gamma/beta and track_running_stats=False statistics are left out, as torch has none.

    A BatchNorm cell that carries no counter (built in MindSpore, or loaded from a ``.ckpt`` with
    ``mindspore.load_param_into_net`` into a fresh cell, which drops the file's counters: it lists them in
    its second return value) has no count to give: its key is left out unless ``num_batches_tracked`` is
    given, and a ``UserWarning`` names every such key, because torch's ``load_state_dict`` does not: even
    with ``strict=True`` it fills a missing counter with 0 and says "All keys matched successfully".

    Args:
        cell: a ``mindspore.nn.Cell``.
        num_batches_tracked: the count to write for BatchNorm cells that carry none; ``None`` leaves those
            keys out (with the warning).
        alignment: for a port whose names differ from torch's, an :class:`~porting.Alignment` or the path
            of a saved one: every parameter goes back under the torch key it names (derived constants are
            left out; a parameter it names no key for is refused).

    Returns:
        ``{torch key: torch.Tensor}``.

    Raises:
        ValueError: ``alignment`` names no torch key for a parameter (and does not list it as derived).

    Example:
        >>> import mindspore
        >>> sd = torch_state_dict(mindspore.nn.BatchNorm2d(2), num_batches_tracked=0)
        >>> sorted(sd)
        ['bias', 'num_batches_tracked', 'running_mean', 'running_var', 'weight']
    """
    named, _, _, uncounted = _torch_named(cell, None, num_batches_tracked, as_alignment(alignment, "torch_state_dict"))
    if uncounted:
        import warnings

        warnings.warn(
            f"torch_state_dict: {len(uncounted)} BatchNorm layer(s) carry no num_batches_tracked, left out: "
            f"{', '.join(uncounted[:8])}{' ...' if len(uncounted) > 8 else ''}; torch's load_state_dict sets a "
            "missing counter to 0 without a word (strict or not). Pass num_batches_tracked=N, or load the "
            "checkpoint with porting.load_torch_state_dict, which keeps the counters on the cell",
            UserWarning,
            stacklevel=2,
        )
    out = {}
    for key, _, value, layout in named:
        out[key] = torch_tensor(_apply_layout(to_numpy(value), layout, to_ms=False), dtype_name(value))
    return out


def _naming(src: str, dst: str) -> str:
    """'to_ms' or 'to_torch': which way the names go (with ``like``)."""
    s, d = file_ext(src), file_ext(dst)
    if d in MS_EXT or (d in ST_EXT and s in TORCH_EXT):
        return "to_ms"
    if d in TORCH_EXT or (d in ST_EXT and s in MS_EXT):
        return "to_torch"
    raise ValueError(
        f"convert_checkpoint: with like=, one side must be a .pt/.pth (torch names) or .ckpt (MindSpore names) "
        f"file to tell the direction, got {src!r} -> {dst!r}"
    )


def _implied_renames(keys: list[str], to_ms: bool) -> dict[str, str]:
    """``{key: new key}`` for the layers a bare state dict's own keys identify (:data:`KEY_SIGNATURES`)."""
    present = set(keys)
    renames: dict[str, str] = {}
    for rule, signature in KEY_SIGNATURES.items():
        entries = RULES[rule]
        by_name = {e.torch: e.ms for e in entries} if to_ms else {e.ms: e.torch for e in entries}
        ms_of = {e.torch: e.ms for e in entries}
        sig = signature if to_ms else tuple(ms_of[n] for n in signature)  # in the source's own naming
        prefixes = {k[: -len(sig[0]) - 1] for k in keys if k.endswith("." + sig[0]) or k == sig[0]}
        for prefix in prefixes:
            if all(_join(prefix, n) in present for n in sig):
                for old, new in by_name.items():
                    if _join(prefix, old) in present:
                        renames[_join(prefix, old)] = _join(prefix, new)
    return renames


def _convert_by_keys(src: str, dst: str, source: Mapping[str, Any]) -> CheckpointReport:
    """``convert_checkpoint`` without ``like``: BatchNorm groups renamed (their keys say what they are), the
    other names kept, and the report says which."""
    s, d = file_ext(src), file_ext(dst)
    direction = (
        "to_ms"
        if d in MS_EXT or (d in ST_EXT and s in TORCH_EXT)
        else "to_torch"
        if d in TORCH_EXT or (d in ST_EXT and s in MS_EXT)
        else None
    )
    keys = list(source.keys())
    renames = _implied_renames(keys, direction == "to_ms") if direction else {}
    out = {renames.get(k, k): source[k] for k in keys}
    write_tensors(dst, out, dtypes={renames.get(k, k): dtype_name(source[k]) for k in keys})
    kept = tuple(k for k in keys if k not in renames)
    warnings = []
    if direction and kept:
        warnings.append(
            f"no like=: {len(kept)} name(s) kept as they were; only BatchNorm groups (running_mean/running_var "
            "or moving_mean/moving_variance keys) were renamed. Layers whose MindSpore names differ in ways their "
            "keys cannot show (LayerNorm/GroupNorm gamma/beta, Embedding embedding_table, BatchNorm3d bn2d.*, "
            "Conv1d's extra axis) keep torch's: pass like= (the MindSpore cell) to name them by the rules"
        )
    return CheckpointReport(loaded=kept, renamed=tuple(renames.items()), warnings=tuple(warnings), names_kept=True)


def convert_checkpoint(
    src: str | os.PathLike, dst: str | os.PathLike, *, like: Any = None, strict: bool = True, alignment: Any = None
) -> CheckpointReport:
    """Convert a checkpoint file: ``.pt/.pth/.safetensors`` <-> ``.ckpt/.safetensors``, dtypes preserved.

    Without ``like`` layouts are kept (a format change; fp16/fp32/fp64 stored as they are, bfloat16
    through float32 and back) and so are the names, except what the keys themselves show: a group with
    ``running_mean`` and ``running_var`` is a BatchNorm and gets MindSpore's names (``gamma``, ``beta``,
    ``moving_mean``, ``moving_variance``; the reverse towards ``.pt/.pth``); the report lists every name
    kept (status ``kept name``) and says which layers would need ``like=``. With ``like`` (a
    ``mindspore.nn.Cell``) names and layouts follow the rule tables: torch -> MindSpore when the
    destination is ``.ckpt`` (or the source is ``.pt/.pth``), MindSpore -> torch when the destination is
    ``.pt/.pth`` (or the source is ``.ckpt``).

    Args:
        src: source file.
        dst: destination file (overwritten).
        like: optional MindSpore cell whose structure gives the names (its parameters are not changed).
        strict: with ``like``, raise :class:`CheckpointMismatchError` on any missing, unexpected or
            mis-shaped entry (nothing is written then).
        alignment: with ``like``, an :class:`~porting.Alignment` (or the path of a saved one) naming the
            torch key of each MindSpore parameter, for a port whose names differ from torch's.

    Returns:
        A :class:`CheckpointReport` of every entry.

    Raises:
        CheckpointMismatchError: see ``strict``.
        ValueError: unsupported extensions, ``like`` with no side telling the naming, ``alignment``
            without ``like``.

    Example:
        >>> import numpy as np, tempfile, os
        >>> d = tempfile.mkdtemp()
        >>> write_tensors(os.path.join(d, "a.safetensors"), {"w": np.ones(2, np.float16)})
        >>> convert_checkpoint(os.path.join(d, "a.safetensors"), os.path.join(d, "a.ckpt")).loaded
        ('w',)
    """
    src, dst = os.fspath(src), os.fspath(dst)
    for path, role in ((src, "source"), (dst, "destination")):
        if file_ext(path) not in TORCH_EXT + ST_EXT + MS_EXT:
            raise ValueError(f"convert_checkpoint: {role} {path!r}: expected .pt, .pth, .safetensors or .ckpt")
    where = f"convert_checkpoint({src!r} -> {dst!r})"
    source = read_tensors(src, lazy=True)
    alignment = as_alignment(alignment, "convert_checkpoint")
    if like is None:
        if alignment is not None:
            raise ValueError(
                "convert_checkpoint: alignment= needs like= too (the MindSpore cell: its rules give the "
                "layouts and dtypes the names alone do not)"
            )
        return _convert_by_keys(src, dst, source)
    if _naming(src, dst) == "to_ms":
        return _convert_to_ms(dst, source, like, strict, alignment, where)
    return _convert_to_torch(dst, source, like, strict, alignment, where)


def _convert_to_ms(
    dst: str, source: Mapping[str, Any], like: Any, strict: bool, alignment: Any, where: str
) -> CheckpointReport:
    """convert_checkpoint towards MindSpore names, by ``like``'s rules."""
    report, loads, counters = _match(like, source, alignment)
    if strict and not report.ok:
        raise CheckpointMismatchError(report, where)
    out, dtypes = {}, {}
    for item, key, _ in loads:
        dtypes[item.ms] = dtype_name(item.param)
        if key is None:
            out[item.ms] = np.full(shape_of(item.param), item.entry.fill, dtype=np.float32)
        else:
            layout = item.entry.layout if item.entry else None
            out[item.ms] = _apply_layout(to_numpy(source[key]), layout, to_ms=True)
    for carried, key in counters:
        out[carried.ms_path], dtypes[carried.ms_path] = to_numpy(source[key]).astype(np.int64), "int64"
    write_tensors(dst, out, dtypes=dtypes)
    return report


def _convert_to_torch(
    dst: str, source: Mapping[str, Any], like: Any, strict: bool, alignment: Any, where: str
) -> CheckpointReport:
    """convert_checkpoint towards torch names, by ``like``'s rules."""
    items, missing, mis_shaped, uncounted = _torch_named(like, source, None, alignment)
    derived = alignment.derived if alignment is not None else {}
    used = {ms for _, ms, _, _ in items} | {ms for ms, *_ in mis_shaped} | set(derived)
    unexpected = tuple(k for k in source if k not in used)
    counted = {c.torch for c in _plan(like, alignment)[1] if c.active}
    plain = [(key, ms, layout) for key, ms, _, layout in items if key not in counted]
    report = CheckpointReport(
        loaded=tuple(ms for key, ms, layout in plain if key == ms and layout is None),
        renamed=tuple((ms, key) for key, ms, layout in plain if key != ms and layout is None),
        converted=tuple((ms, key, _describe_layout(layout)) for key, ms, layout in plain if layout is not None),
        carried=tuple((ms, key) for key, ms, _, _ in items if key in counted),
        missing=tuple(missing),
        unexpected=unexpected,
        mis_shaped=tuple(mis_shaped),
        kept=tuple((n, note) for n, note in derived.items() if n in source),
        warnings=tuple(
            f"{key}: no counter in the source, left out (torch's load_state_dict would set it to 0)"
            for key in uncounted
        ),
    )
    if strict and not report.ok:
        raise CheckpointMismatchError(report, where)
    out = {key: _apply_layout(to_numpy(value), layout, to_ms=False) for key, _, value, layout in items}
    write_tensors(dst, out, dtypes={key: dtype_name(value) for key, _, value, _ in items})
    return report
