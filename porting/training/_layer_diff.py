"""``diff_layers``: one forward + backward on both sides, every layer compared, the first divergence named.

Per layer (in forward-completion order, so a leaf comes before the container around it): the forward
output, the gradient w.r.t. that output, the gradients of the layer's own parameters, and its buffers
(BatchNorm running stats) before and after the forward. Layers are matched by their path in the module
tree (the port keeps torch's attribute names) or by an :class:`~porting.Alignment` (``alignment=``, for a port
written independently); parameters and buffers by the checkpoint rename rules
(``porting.convert._checkpoint.torch_to_mindspore_names``) or the alignment, never by definition order. A layer
shared under several paths (upstream YOLOv5's one ``SiLU`` in 57 ``Conv`` layers) is logged once per call,
under the path of the layer that called it. Every comparison is ``porting.compare``'s, elementwise, per-dtype
tolerances unless given; with ``reference="float64"`` each is judged against a float64 run of the torch model
instead (:mod:`porting.training._reference`: MindSpore's RMS distance to it at most twice torch float32's, plus
a small floor).

The first divergence is looked for in the order things happen: forward (buffers before, output, buffers
after, layer by layer), the loss, then backward (gradient w.r.t. the output, then parameter gradients, from
the last layer back to the first). The caller's objects come back as they were: buffers and ``.grad`` are
restored, hooks removed, training modes untouched.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from porting.convert._align import CallTracer, as_alignment, ms_named_cells
from porting.harness._compare import Comparison, Mismatch, compare
from porting.harness._format import text_table
from porting.training._reference import ReferenceComparison, compare_to_reference
from torch2ms_base._report import Report, markdown_table

__all__ = ["LayerDiff", "LayerReport", "diff_layers"]

#: a comparison of tensors: elementwise (``Comparison``) or against a float64 run (``ReferenceComparison``,
#: which reads the same where reports read it)
Judged = Comparison | ReferenceComparison

# (attribute of LayerDiff, label) in forward order, then backward order
_FORWARD = (("buffers_before", "buffers before"), ("output", "forward output"), ("buffers_after", "buffers after"))
_BACKWARD = (("grad_output", "gradient w.r.t. output"), ("param_grads", "parameter gradients"))


@dataclasses.dataclass(frozen=True)
class LayerDiff:
    """One layer call compared on both sides.

    Attributes:
        index: position in forward-completion order.
        path: the layer's path in the module tree (``''`` for the top module).
        call: 0 for the first call of that layer, 1 for the second (a shared layer), ...
        torch_type, ms_type: class names on each side.
        output, grad_output, param_grads, buffers_before, buffers_after: :class:`~porting.Comparison`
            (MindSpore as ``actual``, torch as ``expected``) or ``None`` when the layer has none of that.
    """

    index: int
    path: str
    call: int
    torch_type: str
    ms_type: str
    output: Judged | None = None
    grad_output: Judged | None = None
    param_grads: Judged | None = None
    buffers_before: Judged | None = None
    buffers_after: Judged | None = None

    @property
    def name(self) -> str:
        """``path`` (``<top>`` for the root), with ``#n`` for a repeated call."""
        return (self.path or "<top>") + (f"#{self.call}" if self.call else "")

    @property
    def ok(self) -> bool:
        """True when every comparison of this layer passed."""
        return all(c is None or c.ok for c in (getattr(self, a) for a, _ in (*_FORWARD, *_BACKWARD)))

    def worst_abs_diff(self) -> float:
        """The largest absolute difference over everything compared for this layer."""
        return max(
            (float(c.worst_abs_diff) for c in (getattr(self, a) for a, _ in (*_FORWARD, *_BACKWARD)) if c is not None),
            default=0.0,
        )

    def worst_check(self):
        """With ``reference="float64"``: the :class:`ReferenceCheck` closest to its allowance, or ``None``."""
        checks = [
            c.worst
            for c in (getattr(self, a) for a, _ in (*_FORWARD, *_BACKWARD))
            if c is not None and getattr(c, "worst", None) is not None
        ]
        return max(checks, key=lambda c: c.ms_error / c.allowed if c.allowed else float("inf"), default=None)


@dataclasses.dataclass(frozen=True)
class LayerReport(Report):
    """What :func:`diff_layers` found.

    Attributes:
        layers: every matched layer call, in forward-completion order.
        loss: the loss values compared.
        not_compared: ``(path, reason)`` for layers run on one side only (parameter-free ones, e.g. a torch
            ``nn.ReLU`` the port calls as a function), so nothing is dropped silently.
        first: the first divergent layer (see the module docstring for the order), or ``None``.
        first_what: which of its comparisons diverged (``'forward output'``, ``'buffers after'``, ...).
        first_mismatch: the :class:`~porting.Mismatch` with the assert_close-style figures.
        reference: ``"float64"`` when every comparison was judged against a float64 run (the table then shows,
            per layer, its worst tensor's RMS distance to float64 for MindSpore and torch float32 and their
            ratio), else ``None``.
    """

    layers: tuple[LayerDiff, ...]
    loss: Judged
    not_compared: tuple[tuple[str, str], ...] = ()
    first: LayerDiff | None = None
    first_what: str | None = None
    first_mismatch: Mismatch | None = None
    reference: str | None = None

    @property
    def ok(self) -> bool:
        """True when every layer and the loss matched."""
        return self.first is None and self.loss.ok

    def _rows(self) -> list[list[str]]:
        def cell(c):
            return "-" if c is None else ("ok" if c.ok else "DIFF")

        rows = []
        for d in self.layers:
            buffers = [c for c in (d.buffers_before, d.buffers_after) if c is not None]
            buf = "-" if not buffers else ("ok" if all(c.ok for c in buffers) else "DIFF")
            row = [
                str(d.index),
                d.name,
                d.torch_type,
                d.ms_type,
                cell(d.output),
                cell(d.grad_output),
                cell(d.param_grads),
                buf,
            ]
            if self.reference:
                w = d.worst_check()
                row += ["-", "-", "-"] if w is None else [f"{w.ms_error:.3g}", f"{w.torch_error:.3g}", f"{w.ratio:.3g}"]
            else:
                row.append(f"{d.worst_abs_diff():.3g}")
            rows.append(row)
        return rows

    _HEADER = ["#", "layer", "torch", "MindSpore", "output", "grad out", "param grads", "buffers", "worst |diff|"]
    _REF_HEADER = [*_HEADER[:-1], "MS err", "torch32 err", "ratio"]

    @property
    def _header(self) -> list[str]:
        return self._REF_HEADER if self.reference else self._HEADER

    @property
    def verdict(self) -> str:
        """``all N layer calls match`` or ``DIVERGES at layer '...'``."""
        if self.ok:
            return f"all {len(self.layers)} layer calls match"
        return f"DIVERGES at layer {self.first.name!r}" if self.first is not None else "DIVERGES"

    def summary(self) -> str:
        """One line: the headline."""
        return self.headline()

    def headline(self) -> str:
        """One line: all matched, or where the first divergence is."""
        if self.first is not None:
            return f"first divergence: layer {self.first.name!r} ({self.first.torch_type}), {self.first_what}"
        if not self.loss.ok:
            return "every layer matched but the loss differs"
        return f"all {len(self.layers)} layer calls match" + (" (float64 rule)" if self.reference else "")

    def _detail(self) -> str:
        parts = []
        if self.first_mismatch is not None:
            parts.append(str(self.first_mismatch))
        elif not self.loss.ok:
            parts.append("loss: " + self.loss.failure_text())
        for path, reason in self.not_compared:
            parts.append(f"not compared: {path or '<top>'}: {reason}")
        return "\n".join(parts)

    def __str__(self) -> str:
        detail = self._detail()
        legend = (
            [
                "(MS err, torch32 err: RMS distance of the layer's worst tensor to a float64 run of the torch "
                "model; MindSpore passes within 2-3x torch float32's, plus a floor)"
            ]
            if self.reference
            else []
        )
        return "\n".join(
            [text_table(self._header, self._rows()), *legend, "", self.headline(), *([detail] if detail else [])]
        )

    def to_markdown(self) -> str:
        """The table as GitHub markdown, the headline and the first mismatch's figures below it."""
        detail = self._detail()
        text = markdown_table(self._header, self._rows()) + f"\n\n**{self.headline()}**\n"
        return text + (f"\n```\n{detail}\n```\n" if detail else "")


def _as_numpy(value: Any, where: str) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    mod = type(value).__module__
    if mod.startswith("torch"):
        return value.detach().cpu().numpy()
    if mod.startswith("mindspore"):
        return value.asnumpy()
    raise TypeError(f"{where}: expected a numpy array, torch tensor or mindspore Tensor, got {type(value).__name__}")


def _flat_tensors(out: Any, is_tensor) -> list:
    if is_tensor(out):
        return [out]
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _flat_tensors(o, is_tensor)]
    if isinstance(out, dict):
        return [t for o in out.values() for t in _flat_tensors(o, is_tensor)]
    return []


def _sum_all(out: Any, is_tensor, where: str):
    """The default loss: the sum of every element of every tensor in the (nested) output."""
    tensors = (
        [t for t in _flat_tensors(out, is_tensor) if t.dtype.is_floating_point]
        if where == "torch"
        else _flat_tensors(out, is_tensor)
    )
    if not tensors:
        raise ValueError(
            f"loss=None sums the model's output, but the {where} output holds no tensor "
            f"({type(out).__name__}): pass loss=(torch_loss, mindspore_loss)"
        )
    total = tensors[0].sum()
    for t in tensors[1:]:
        total = total + t.sum()
    return total


def _losses(loss: Any):
    """(torch_fn, ms_fn), each (output, target) -> scalar."""
    import mindspore as ms
    import torch

    if loss is None:
        # a tuple / list / dict output (a detector's heads) is summed over all its tensors
        return (
            (lambda out, target: _sum_all(out, torch.is_tensor, "torch")),
            (lambda out, target: _sum_all(out, lambda t: isinstance(t, ms.Tensor), "MindSpore")),
        )
    if loss == "mse":
        return (lambda o, t: torch.nn.functional.mse_loss(o, t)), (lambda o, t: ((o - t) ** 2).mean())
    if loss == "cross_entropy":
        return (lambda o, t: torch.nn.functional.cross_entropy(o, t)), (lambda o, t: ms.ops.cross_entropy(o, t))
    if isinstance(loss, tuple) and len(loss) == 2 and all(callable(f) for f in loss):
        return loss
    raise ValueError(
        f"loss: expected None (sum of the output), 'mse', 'cross_entropy' or a pair "
        f"(torch_loss, mindspore_loss) of callables (output, target) -> scalar, got {loss!r}"
    )


class _Recorder:
    """Per-side record of layer calls: path, call number, output, grads w.r.t. output, buffers."""

    def __init__(self, named: list) -> None:
        self.tracer = CallTracer(named)
        self.calls: list[dict] = []
        self._pending: dict[str, list] = {}

    @property
    def counts(self) -> dict[str, int]:
        return self.tracer.counts

    def start(self, obj, buffers_of) -> None:
        path = self.tracer.enter(obj)
        self._pending.setdefault(path, []).append(buffers_of(path, obj))

    def finish(self, obj, outputs: list, buffers_of) -> dict:
        path, index = self.tracer.exit(obj)
        call = {
            "path": path,
            "call": index,
            "type": type(obj).__name__,
            "output": outputs,
            "grads": [None] * len(outputs),
            "before": self._pending[path].pop(),
            "after": buffers_of(path, obj),
        }
        self.calls.append(call)
        return call


def _once(named: list) -> list:
    """The distinct objects of ``[(path, obj)]``: each is hooked once, however many paths it has."""
    seen, out = set(), []
    for _, obj in named:
        if id(obj) not in seen:
            seen.add(id(obj))
            out.append(obj)
    return out


def _torch_side(module, inputs, target, loss_fn):  # noqa: C901 - its hooks are closures (each counts); linear
    import torch

    named = list(module.named_modules(remove_duplicate=False))
    rec = _Recorder(named)
    handles = []
    buffers = dict(module.named_buffers())

    def own_buffers(path, mod):
        prefix = f"{path}." if path else ""
        return {
            prefix + n: b.detach().clone()
            for n, b in mod.named_buffers(recurse=False)
            if not n.endswith("num_batches_tracked")
        }

    def pre(m, args):
        rec.start(m, own_buffers)

    def post(m, args, out):
        tensors = _flat_tensors(out, torch.is_tensor)
        call = rec.finish(m, [t.detach().clone() for t in tensors], own_buffers)
        for k, t in enumerate(tensors):
            if t.requires_grad:

                def hook(g, _call=call, _k=k):
                    _call["grads"][_k] = g.detach().clone()

                t.register_hook(hook)

    for mod in _once(named):
        handles += [mod.register_forward_pre_hook(pre), mod.register_forward_hook(post)]
    saved_buffers = {n: b.detach().clone() for n, b in buffers.items()}
    params = dict(module.named_parameters())
    saved_grads = {n: (None if p.grad is None else p.grad.clone()) for n, p in params.items()}
    try:
        for p in params.values():
            p.grad = None
        out = module(*[torch.from_numpy(x.copy()) for x in inputs])
        loss = loss_fn(out, None if target is None else torch.from_numpy(target.copy()))
        loss.backward()
        grads = {n: (None if p.grad is None else p.grad.detach().clone()) for n, p in params.items()}
    finally:
        for h in handles:
            h.remove()
        with torch.no_grad():
            for n, b in buffers.items():
                b.copy_(saved_buffers[n])
        for n, p in params.items():
            p.grad = saved_grads[n]
    return rec, float(loss.detach()), grads


def _ms_side(cell, inputs, target, loss_fn):
    import mindspore as ms

    named = ms_named_cells(cell)
    rec = _Recorder(named)
    handles = []
    frozen = {n: p for n, p in cell.parameters_and_names() if not p.requires_grad}

    def pre(c_, args):
        rec.start(c_, _own_frozen)

    def post(c_, args, out):
        tensors = _flat_tensors(out, lambda t: isinstance(t, ms.Tensor))
        call = rec.finish(c_, [t.asnumpy().copy() for t in tensors], _own_frozen)
        for k, t in enumerate(tensors):

            def hook(g, _call=call, _k=k):
                _call["grads"][_k] = g.asnumpy().copy()

            t.register_hook(hook)
        return out

    for c in _once(named):
        handles += [c.register_forward_pre_hook(pre), c.register_forward_hook(post)]
    saved = {n: p.asnumpy().copy() for n, p in frozen.items()}
    weights = cell.trainable_params()
    ms_inputs = [ms.Tensor(x) for x in inputs]
    ms_target = None if target is None else ms.Tensor(target)

    def forward(*xs):
        return loss_fn(cell(*xs), ms_target)

    try:
        loss, grads = ms.value_and_grad(forward, None, weights)(*ms_inputs)
    finally:
        for h in handles:
            h.remove()
        for n, p in frozen.items():
            p.set_data(ms.Tensor(saved[n]))
    return rec, float(loss.asnumpy()), {p.name: g.asnumpy() for p, g in zip(weights, grads, strict=True)}


def _own_frozen(path: str, cell) -> dict:
    # The non-trainable parameters (BatchNorm's moving statistics) of the cell and its children: a port may
    # nest them (MindSpore's BatchNorm3d keeps them in 'x.bn2d'); _buffers keeps those the torch layer owns.
    return {p.name: p.asnumpy().copy() for p in cell.get_parameters() if not p.requires_grad}


def mode_message(torch_training: bool, ms_training: bool) -> str:
    """The refusal for two sides in different modes, with the call that fixes it."""
    t, m = ("train" if torch_training else "eval"), ("train" if ms_training else "eval")
    fix = (
        "call cell.set_train(True) (a MindSpore Cell starts in eval mode, a torch Module in train mode), or "
        "module.eval() to compare inference"
        if torch_training
        else "call cell.set_train(False), or module.train() and keep the cell training"
    )
    return f"the torch module is in {t} mode, the MindSpore cell in {m} mode: {fix}"


def float64_copy(module: Any):
    """A float64 deep copy of a torch module (parameters and buffers; the caller's module is untouched)."""
    import copy

    import torch

    twin = copy.deepcopy(module)
    return twin.to(torch.float64)


class _Float64Default:
    """torch's default dtype float64 inside the block (tensors a forward creates, e.g. a grid), then restored."""

    def __enter__(self):
        import torch

        self._old = torch.get_default_dtype()
        torch.set_default_dtype(torch.float64)

    def __exit__(self, *exc):
        import torch

        torch.set_default_dtype(self._old)


def as_float64(array: np.ndarray) -> np.ndarray:
    """Float arrays as float64 (the reference run's inputs); integer ones (class targets) as they are."""
    return array.astype(np.float64) if array.dtype.kind == "f" else array


def diff_layers(
    torch_module: Any,
    ms_cell: Any,
    inputs: Any,
    *,
    loss: Any = None,
    target: Any = None,
    rtol: float | None = None,
    atol: float | None = None,
    alignment: Any = None,
    reference: str | None = None,
) -> LayerReport:
    """Run one forward + backward through ``torch_module`` and ``ms_cell`` and compare every layer.

    Both sides must already hold the same weights (e.g. via ``porting.load_torch_state_dict``) and be in
    the same mode (``module.train()`` ↔ ``cell.set_train(True)``; a MindSpore cell starts in eval mode).
    torch's global random stream is restored afterwards (MindSpore's random ops have no restorable state;
    dropout masks never match across frameworks: compare with dropout off or in eval mode).

    Args:
        torch_module: the reference ``torch.nn.Module``.
        ms_cell: its MindSpore port (same attribute structure, or any with ``alignment``).
        inputs: one array (numpy / torch / mindspore) or a tuple of them, the positional inputs.
        loss: ``None`` (backward from the sum of every tensor of the output, nested tuples / lists / dicts
            included), ``'mse'``, ``'cross_entropy'``, or a pair ``(torch_loss, mindspore_loss)`` of callables
            ``(output, target) -> scalar``.
        target: the loss target (array), if the loss takes one.
        rtol, atol: tolerances for every comparison (both or neither; default per dtype, as
            ``porting.compare``); not with ``reference``.
        alignment: an :class:`~porting.Alignment` (:func:`porting.align`) or the path of a saved one, for a
            port whose names differ from torch's: layers, parameters and buffers are paired by it, and torch
            layers it leaves unpaired are listed as not compared.
        reference: ``"float64"``: also run a float64 copy of the torch module (inputs and float targets in
            float64) and judge every comparison by MindSpore's RMS distance to it relative to torch float32's
            (:mod:`porting.training._reference`: within ``2 x`` (``3 x`` under 1000 elements) plus a floor of
            ``1e-5 + 1.3e-6 x RMS``), as ``torch._dynamo.utils.same(fp64_ref=...)`` does. ``None``: elementwise.

    Returns:
        A :class:`LayerReport`: ``str(report)`` is a table, ``report.to_markdown()`` the same in markdown,
        ``report.first`` the first divergent layer.

    Raises:
        ValueError: the two sides are in different modes (the message names ``cell.set_train(True)``), a bad
            ``loss`` (or a target it would not use, or none where it needs one), a bad ``reference``,
            tolerances with ``reference``, or, without ``alignment``, a torch layer with parameters or buffers
            that has no MindSpore cell at its path.
        TypeError: an input that is not an array.
        RuntimeError: MindSpore is in GRAPH mode (cell hooks run in PyNative mode only).

    Example:
        >>> import numpy as np, torch, mindspore as ms
        >>> t = torch.nn.Linear(3, 2); m = ms.nn.Dense(3, 2)
        >>> from porting import load_torch_state_dict
        >>> _ = load_torch_state_dict(m, t.state_dict()); _ = m.set_train(True)
        >>> diff_layers(t, m, np.ones((4, 3), np.float32)).ok
        True
        >>> diff_layers(t, m, np.ones((4, 3), np.float32), reference="float64").ok
        True
    """
    import torch

    from porting.convert._checkpoint import torch_to_mindspore_names  # the one place the rename rules live

    _check_modes(torch_module, ms_cell)
    check_reference(reference, rtol, atol)
    alignment = as_alignment(alignment, "diff_layers")
    inputs = inputs if isinstance(inputs, (tuple, list)) else (inputs,)
    inputs = [_as_numpy(x, f"inputs[{i}]") for i, x in enumerate(inputs)]
    target = None if target is None else _as_numpy(target, "target")
    _check_loss_target(loss, target)
    t_loss_fn, m_loss_fn = _losses(loss)
    names = torch_to_mindspore_names(torch_module, ms_cell, alignment=alignment)
    if alignment is not None:
        unpaired = unpaired_entries(torch_module, names, alignment, "diff_layers")
    else:
        unpaired = {}  # without an alignment a missing layer is refused below, by its path

    with torch.random.fork_rng(devices=[]):  # the caller's torch random stream stays as it was (dropout draws)
        t_rec, t_loss, t_grads = _torch_side(torch_module, inputs, target, t_loss_fn)
    r_grads = r_calls = None
    r_loss = 0.0
    if reference:
        r_rec, r_loss, r_grads = _float64_run(torch_module, inputs, target, t_loss_fn)
        r_calls = {(c["path"], c["call"]): c for c in r_rec.calls}
    m_rec, m_loss, m_grads = _ms_side(ms_cell, inputs, target, m_loss_fn)

    tol: dict[str, Any] = dict(rtol=rtol, atol=atol)

    def judge(actual, expected, key, field):
        if r_calls is None:
            return compare(actual, expected, **tol)
        return compare_to_reference(actual, expected, r_calls[key][field] if field else key)

    def ms_path_of(path: str) -> str | None:
        return path if alignment is None else alignment.layers.get(path)

    m_calls = {(c["path"], c["call"]): c for c in m_rec.calls}
    t_modules = dict(torch_module.named_modules(remove_duplicate=False))
    layers: list[LayerDiff] = []
    not_compared: list[tuple[str, str]] = []
    missing = "<no MindSpore counterpart under the checkpoint rules>"
    for c in t_rec.calls:
        mod = t_modules[c["path"]]
        own = [n for n, _ in mod.named_parameters(recurse=False)] + [
            n for n, _ in mod.named_buffers(recurse=False) if not n.endswith("num_batches_tracked")
        ]
        m_path = ms_path_of(c["path"])
        key = (m_path, c["call"])
        if key not in m_calls:
            reason = _why_not_compared(c, m_path, own, t_rec, m_rec, alignment)
            not_compared.append((c["path"] + (f"#{c['call']}" if c["call"] else ""), f"{c['type']}: {reason}"))
            continue
        m = m_calls[key]
        tkey = (c["path"], c["call"])
        prefix = f"{c['path']}." if c["path"] else ""
        p_names = [prefix + n for n, _ in mod.named_parameters(recurse=False) if prefix + n not in unpaired]
        param_grads = None
        if p_names and c["call"] == t_rec.counts[c["path"]] - 1:  # gradients are totals: compare once, at the last call
            actual = {n: m_grads.get(names.get(n), missing) for n in p_names}
            param_grads = _param_grads(actual, mod, prefix, t_grads, r_grads, tol)
        r = r_calls[tkey] if r_calls is not None else None
        b_before = _buffers(
            {k: v for k, v in c["before"].items() if k not in unpaired}, m["before"], names, tol, r and r["before"]
        )
        b_after = _buffers(
            {k: v for k, v in c["after"].items() if k not in unpaired}, m["after"], names, tol, r and r["after"]
        )
        grads_seen = any(g is not None for g in c["grads"])
        layers.append(
            LayerDiff(
                index=len(layers),
                path=c["path"],
                call=c["call"],
                torch_type=c["type"],
                ms_type=m["type"],
                output=judge(m["output"], c["output"], tkey, "output") if c["output"] else None,
                grad_output=(judge(m["grads"], c["grads"], tkey, "grads") if grads_seen else None),
                param_grads=param_grads,
                buffers_before=b_before,
                buffers_after=b_after,
            )
        )
    not_compared += [(n, f"no counterpart: {why}") for n, why in unpaired.items()]
    paired_m = {ms_path_of(p) for p in t_rec.counts}
    not_compared += [
        (path, "MindSpore cell with no torch module paired with it (an internal of the port)")
        for path in m_rec.counts
        if path not in paired_m
    ]
    loss_cmp = judge(np.float32(m_loss), np.float32(t_loss), np.float64(r_loss), None)  # the loss is its own key
    first, first_what, first_mismatch = _first_divergence(layers, loss_cmp)
    return LayerReport(
        layers=tuple(layers),
        loss=loss_cmp,
        not_compared=tuple(not_compared),
        first=first,
        first_what=first_what,
        first_mismatch=first_mismatch,
        reference=reference,
    )


def _check_modes(torch_module: Any, ms_cell: Any) -> None:
    """PyNative mode (cell hooks run there only), and both sides training or both in eval mode."""
    import mindspore as ms

    if ms.get_context("mode") != ms.PYNATIVE_MODE:
        raise RuntimeError(
            "diff_layers records every cell call with forward hooks, which MindSpore runs in "
            "PyNative mode only; the context is in GRAPH mode: call "
            "mindspore.set_context(mode=mindspore.PYNATIVE_MODE) first (a GRAPH-mode port computes "
            "the same numbers, the mode changes only how they are run)"
        )
    if bool(torch_module.training) != bool(ms_cell.training):
        raise ValueError(mode_message(bool(torch_module.training), bool(ms_cell.training)))


def _float64_run(torch_module: Any, inputs: list, target: np.ndarray | None, loss_fn: Any):
    """The forward + backward of a float64 copy of ``torch_module``: ``(recorder, loss, gradients)``."""
    import torch

    twin = float64_copy(torch_module)
    with torch.random.fork_rng(devices=[]), _Float64Default():
        return _torch_side(
            twin, [as_float64(x) for x in inputs], None if target is None else as_float64(target), loss_fn
        )


def check_reference(reference: str | None, rtol: float | None, atol: float | None) -> None:
    """Refuse a ``reference`` other than ``None`` / ``"float64"``, and tolerances given with ``"float64"``."""
    if reference not in (None, "float64"):
        raise ValueError(f"reference: expected None (elementwise tolerances) or 'float64', got {reference!r}")
    if reference is not None and (rtol is not None or atol is not None):
        raise ValueError(
            "rtol/atol apply to elementwise comparisons; reference='float64' judges by the float64 "
            "rule instead: pass one or the other"
        )


def _check_loss_target(loss: Any, target: np.ndarray | None) -> None:
    """A named loss needs a target; the default (sum of the output) takes none."""
    if loss in ("mse", "cross_entropy") and target is None:
        raise ValueError(f"loss={loss!r} compares the output with a target: pass target= (an array)")
    if loss is None and target is not None:
        raise ValueError(
            "target was given but loss=None backpropagates the sum of the output, which ignores it: "
            "pass loss='mse', 'cross_entropy' or your own (torch_loss, mindspore_loss) pair"
        )


def _why_not_compared(c: dict, m_path: str | None, own: list[str], t_rec: Any, m_rec: Any, alignment: Any) -> str:
    """Why torch call ``c`` has no MindSpore call to compare with; raises when a layer with state has no cell."""
    if m_path is None:
        reason = "the alignment pairs it with no MindSpore cell"
    elif m_path not in m_rec.counts:
        reason = (
            "no MindSpore cell at this path"
            if alignment is None
            else f"its MindSpore counterpart {m_path or '<top>'!r} was not called"
        )
    else:
        reason = f"called {t_rec.counts[c['path']]} times in torch, {m_rec.counts[m_path]} in MindSpore"
    if own and alignment is None and c["path"] not in m_rec.counts:
        raise ValueError(
            f"torch layer {c['path']!r} ({c['type']}) holds {own} but the MindSpore cell has no "
            "cell at that path: diff_layers matches layers by their path in the module tree; "
            "for a port whose names differ pass alignment=porting.align(torch_module, ms_cell, "
            "inputs)"
        )
    return reason


def _param_grads(actual: dict, mod: Any, prefix: str, t_grads: dict, r_grads: dict | None, tol: dict) -> Judged:
    """MindSpore's gradients of a layer's own parameters (``actual``, by torch name) against torch's."""

    def grads_of(store, n, dtype):
        # torch leaves an unused parameter's grad None, MindSpore returns zeros: both mean "no gradient"
        g = store.get(n)
        return np.zeros(tuple(mod.get_parameter(n[len(prefix) :]).shape), dtype) if g is None else g

    expected = {n: grads_of(t_grads, n, np.float32) for n in actual}
    if r_grads is None:
        return compare(actual, expected, **tol)
    return compare_to_reference(actual, expected, {n: grads_of(r_grads, n, np.float64) for n in actual})


def _first_divergence(layers: list[LayerDiff], loss: Judged):
    """Forward first (layer by layer), then - if the loss matched - backward from the last layer."""
    for d in layers:
        for attr, label in _FORWARD:
            c = getattr(d, attr)
            if c is not None and not c.ok:
                return d, label, c.mismatches[0]
    if not loss.ok:
        return None, None, None  # every layer matched forward: the loss functions differ (LayerReport says so)
    for d in reversed(layers):
        for attr, label in _BACKWARD:
            c = getattr(d, attr)
            if c is not None and not c.ok:
                return d, label, c.mismatches[0]
    return None, None, None


def _buffers(torch_buffers: dict, ms_buffers: dict, names: dict, tol: dict, reference: dict | None = None):
    """The torch layer's own buffers against the MindSpore statistics the checkpoint rules map them to."""
    if not torch_buffers:
        return None
    actual = {n: ms_buffers.get(names.get(n), "<no MindSpore counterpart>") for n in torch_buffers}
    if reference is not None:
        return compare_to_reference(actual, dict(torch_buffers), {n: reference[n] for n in torch_buffers})
    return compare(actual, dict(torch_buffers), **tol)


def unpaired_entries(torch_module: Any, names: dict, alignment: Any, where: str) -> dict[str, str]:
    """Torch parameters and buffers without a MindSpore counterpart: refused, unless an alignment lists them.

    Returns ``{torch name: reason}`` for those the alignment lists as unmatched (left out of the comparison
    and reported); raises ``ValueError`` naming the others ("no counterpart for X").
    """
    state = [n for n, _ in torch_module.named_parameters()] + [
        n for n, _ in torch_module.named_buffers() if not n.endswith("num_batches_tracked")
    ]
    gaps = [n for n in state if n not in names]
    listed = alignment.unmatched_torch if alignment is not None else {}
    refused = [n for n in gaps if n not in listed]
    if refused:
        more = f" (and {len(refused) - 5} more)" if len(refused) > 5 else ""
        hint = (
            "the alignment neither pairs nor lists them: edit its 'state' section"
            if alignment is not None
            else "the MindSpore cell has no parameter of that name under the checkpoint rules; for a port whose "
            "names differ pass alignment=porting.align(torch_module, ms_cell)"
        )
        raise ValueError(f"{where}: no counterpart for {', '.join(repr(n) for n in refused[:5])}{more}: {hint}")
    return {n: listed[n] for n in gaps}
