"""``diff_layers``: one forward + backward on both sides, every layer compared, the first divergence named.

Per layer (in forward-completion order, so a leaf comes before the container around it): the forward
output, the gradient w.r.t. that output, the gradients of the layer's own parameters, and its buffers
(BatchNorm running stats) before and after the forward. Layers are matched by their path in the module
tree (the port keeps torch's attribute names); parameters and buffers by the checkpoint rename rules
(``porting.convert._checkpoint.torch_to_mindspore_names``), never by definition order. Every comparison is
``porting.compare``'s, elementwise, per-dtype tolerances unless given.

The first divergence is looked for in the order things happen: forward (buffers before, output, buffers
after, layer by layer), the loss, then backward (gradient w.r.t. the output, then parameter gradients, from
the last layer back to the first). The caller's objects come back as they were: buffers and ``.grad`` are
restored, hooks removed, training modes untouched.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from porting.harness._compare import Comparison, Mismatch, compare
from porting.harness._format import text_table

from torch2ms_base._report import Report, markdown_table
__all__ = ["LayerDiff", "LayerReport", "diff_layers"]

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
    output: Comparison | None = None
    grad_output: Comparison | None = None
    param_grads: Comparison | None = None
    buffers_before: Comparison | None = None
    buffers_after: Comparison | None = None

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
        return max((float(c.worst_abs_diff) for c in (getattr(self, a) for a, _ in (*_FORWARD, *_BACKWARD))
                    if c is not None), default=0.0)


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
    """

    layers: tuple[LayerDiff, ...]
    loss: Comparison
    not_compared: tuple[tuple[str, str], ...] = ()
    first: LayerDiff | None = None
    first_what: str | None = None
    first_mismatch: Mismatch | None = None

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
            rows.append([str(d.index), d.name, d.torch_type, d.ms_type, cell(d.output), cell(d.grad_output),
                         cell(d.param_grads), buf, f"{d.worst_abs_diff():.3g}"])
        return rows

    _HEADER = ["#", "layer", "torch", "MindSpore", "output", "grad out", "param grads", "buffers", "worst |diff|"]

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
        return f"all {len(self.layers)} layer calls match"

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
        return "\n".join([text_table(self._HEADER, self._rows()), "", self.headline(), *([detail] if detail else [])])

    def to_markdown(self) -> str:
        """The table as GitHub markdown, the headline and the first mismatch's figures below it."""
        detail = self._detail()
        text = markdown_table(self._HEADER, self._rows()) + f"\n\n**{self.headline()}**\n"
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


def _losses(loss: Any):
    """(torch_fn, ms_fn), each (output, target) -> scalar."""
    import mindspore as ms
    import torch

    if loss is None:
        return (lambda out, target: out.sum()), (lambda out, target: out.sum())
    if loss == "mse":
        return (lambda o, t: torch.nn.functional.mse_loss(o, t)), (lambda o, t: ((o - t) ** 2).mean())
    if loss == "cross_entropy":
        return (lambda o, t: torch.nn.functional.cross_entropy(o, t)), (
            lambda o, t: ms.ops.cross_entropy(o, t))
    if isinstance(loss, tuple) and len(loss) == 2 and all(callable(f) for f in loss):
        return loss
    raise ValueError(f"loss: expected None (sum of the output), 'mse', 'cross_entropy' or a pair "
                     f"(torch_loss, mindspore_loss) of callables (output, target) -> scalar, got {loss!r}")


class _Recorder:
    """Per-side record of layer calls: path, call number, output, grads w.r.t. output, buffers."""

    def __init__(self) -> None:
        self.calls: list[dict] = []
        self.counts: dict[str, int] = {}

    def start(self, path: str, buffers: dict) -> None:
        self.counts.setdefault(path, 0)
        self._pending = getattr(self, "_pending", {})
        self._pending.setdefault(path, []).append(buffers)

    def finish(self, path: str, type_name: str, outputs: list, buffers: dict) -> dict:
        call = {"path": path, "call": self.counts[path], "type": type_name, "output": outputs,
                "grads": [None] * len(outputs), "before": self._pending[path].pop(), "after": buffers}
        self.counts[path] += 1
        self.calls.append(call)
        return call


def _torch_side(module, inputs, target, loss_fn):
    import torch

    rec = _Recorder()
    handles = []
    buffers = dict(module.named_buffers())

    def own_buffers(path, mod):
        prefix = f"{path}." if path else ""
        return {prefix + n: b.detach().clone() for n, b in mod.named_buffers(recurse=False)
                if not n.endswith("num_batches_tracked")}

    for path, mod in module.named_modules(remove_duplicate=False):
        def pre(m, args, _path=path):
            rec.start(_path, own_buffers(_path, m))

        def post(m, args, out, _path=path):
            tensors = _flat_tensors(out, torch.is_tensor)
            call = rec.finish(_path, type(m).__name__, [t.detach().clone() for t in tensors],
                              own_buffers(_path, m))
            for k, t in enumerate(tensors):
                if t.requires_grad:
                    def hook(g, _call=call, _k=k):
                        _call["grads"][_k] = g.detach().clone()
                    t.register_hook(hook)

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

    rec = _Recorder()
    handles = []
    frozen = {n: p for n, p in cell.parameters_and_names() if not p.requires_grad}

    for path, c in cell.cells_and_names():
        def pre(c_, args, _path=path):
            rec.start(_path, _own_frozen(_path, c_))

        def post(c_, args, out, _path=path):
            tensors = _flat_tensors(out, lambda t: isinstance(t, ms.Tensor))
            call = rec.finish(_path, type(c_).__name__, [t.asnumpy().copy() for t in tensors],
                              _own_frozen(_path, c_))
            for k, t in enumerate(tensors):
                def hook(g, _call=call, _k=k):
                    _call["grads"][_k] = g.asnumpy().copy()
                t.register_hook(hook)
            return out

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


def diff_layers(torch_module: Any, ms_cell: Any, inputs: Any, *, loss: Any = None, target: Any = None,
                rtol: float | None = None, atol: float | None = None) -> LayerReport:
    """Run one forward + backward through ``torch_module`` and ``ms_cell`` and compare every layer.

    Both sides must already hold the same weights (e.g. via ``porting.load_torch_state_dict``) and be in
    the same mode (``module.train()`` ↔ ``cell.set_train(True)``; a MindSpore cell starts in eval mode).
    torch's global random stream is restored afterwards (MindSpore's random ops have no restorable state;
    dropout masks never match across frameworks: compare with dropout off or in eval mode).

    Args:
        torch_module: the reference ``torch.nn.Module``.
        ms_cell: its MindSpore port (same attribute structure).
        inputs: one array (numpy / torch / mindspore) or a tuple of them, the positional inputs.
        loss: ``None`` (backward from the sum of the output), ``'mse'``, ``'cross_entropy'``, or a pair
            ``(torch_loss, mindspore_loss)`` of callables ``(output, target) -> scalar``.
        target: the loss target (array), if the loss takes one.
        rtol, atol: tolerances for every comparison (both or neither; default per dtype, as
            ``porting.compare``).

    Returns:
        A :class:`LayerReport`: ``str(report)`` is a table, ``report.to_markdown()`` the same in markdown,
        ``report.first`` the first divergent layer.

    Raises:
        ValueError: the two sides are in different modes, a bad ``loss`` (or a target it would not use, or
            none where it needs one), or a torch layer with parameters or buffers that has no MindSpore cell
            at its path.
        TypeError: an input that is not an array.
        RuntimeError: MindSpore is in GRAPH mode (cell hooks run in PyNative mode only).

    Example:
        >>> import numpy as np, torch, mindspore as ms
        >>> t = torch.nn.Linear(3, 2); m = ms.nn.Dense(3, 2)
        >>> from porting import load_torch_state_dict
        >>> _ = load_torch_state_dict(m, t.state_dict()); _ = m.set_train(True)
        >>> diff_layers(t, m, np.ones((4, 3), np.float32)).ok
        True
    """
    import mindspore as ms
    import torch

    from porting.convert._checkpoint import torch_to_mindspore_names  # the one place the rename rules live

    if ms.get_context("mode") != ms.PYNATIVE_MODE:
        raise RuntimeError("diff_layers records every cell call with forward hooks, which MindSpore runs in "
                           "PyNative mode only; the context is in GRAPH mode: call "
                           "mindspore.set_context(mode=mindspore.PYNATIVE_MODE) first (a GRAPH-mode port computes "
                           "the same numbers, the mode changes only how they are run)")
    if bool(torch_module.training) != bool(ms_cell.training):
        raise ValueError(f"the torch module is in {'train' if torch_module.training else 'eval'} mode, the "
                         f"MindSpore cell in {'train' if ms_cell.training else 'eval'} mode: put both in the same "
                         "mode (module.train() and cell.set_train(True), or eval() and set_train(False))")
    inputs = inputs if isinstance(inputs, (tuple, list)) else (inputs,)
    inputs = [_as_numpy(x, f"inputs[{i}]") for i, x in enumerate(inputs)]
    target = None if target is None else _as_numpy(target, "target")
    if loss in ("mse", "cross_entropy") and target is None:
        raise ValueError(f"loss={loss!r} compares the output with a target: pass target= (an array)")
    if loss is None and target is not None:
        raise ValueError("target was given but loss=None backpropagates the sum of the output, which ignores it: "
                         "pass loss='mse', 'cross_entropy' or your own (torch_loss, mindspore_loss) pair")
    t_loss_fn, m_loss_fn = _losses(loss)
    names = torch_to_mindspore_names(torch_module, ms_cell)

    with torch.random.fork_rng(devices=[]):  # the caller's torch random stream stays as it was (dropout draws)
        t_rec, t_loss, t_grads = _torch_side(torch_module, inputs, target, t_loss_fn)
    m_rec, m_loss, m_grads = _ms_side(ms_cell, inputs, target, m_loss_fn)

    tol = dict(rtol=rtol, atol=atol)
    m_calls = {(c["path"], c["call"]): c for c in m_rec.calls}
    t_modules = dict(torch_module.named_modules(remove_duplicate=False))
    layers, not_compared = [], []
    for c in t_rec.calls:
        key = (c["path"], c["call"])
        mod = t_modules[c["path"]]
        own = [n for n, _ in mod.named_parameters(recurse=False)] + [
            n for n, _ in mod.named_buffers(recurse=False) if not n.endswith("num_batches_tracked")]
        if key not in m_calls:
            reason = ("no MindSpore cell at this path" if c["path"] not in m_rec.counts
                      else f"called {t_rec.counts[c['path']]} times in torch, {m_rec.counts[c['path']]} in MindSpore")
            if own and c["path"] not in m_rec.counts:
                raise ValueError(f"torch layer {c['path']!r} ({c['type']}) holds {own} but the MindSpore cell has no "
                                 "cell at that path: diff_layers matches layers by their path in the module tree")
            not_compared.append((c["path"] + (f"#{c['call']}" if c["call"] else ""), f"{c['type']}: {reason}"))
            continue
        m = m_calls[key]
        prefix = f"{c['path']}." if c["path"] else ""
        p_names = [prefix + n for n, _ in mod.named_parameters(recurse=False)]
        param_grads = None
        if p_names and c["call"] == t_rec.counts[c["path"]] - 1:  # gradients are totals: compare once, at the last call
            # torch leaves an unused parameter's grad None, MindSpore returns zeros: both mean "no gradient"
            expected = {n: (np.zeros(tuple(mod.get_parameter(n[len(prefix):]).shape), np.float32)
                            if t_grads.get(n) is None else t_grads[n]) for n in p_names}
            actual = {n: m_grads.get(names.get(n)) for n in p_names}
            param_grads = compare(actual, expected, **tol)
        b_before = _buffers(c["before"], m["before"], names, tol)
        b_after = _buffers(c["after"], m["after"], names, tol)
        layers.append(LayerDiff(
            index=len(layers), path=c["path"], call=c["call"], torch_type=c["type"], ms_type=m["type"],
            output=compare(m["output"], c["output"], **tol) if c["output"] else None,
            grad_output=(compare(m["grads"], c["grads"], **tol)
                         if any(g is not None for g in c["grads"]) else None),
            param_grads=param_grads, buffers_before=b_before, buffers_after=b_after))
    for path, count in m_rec.counts.items():
        if path not in t_rec.counts:
            not_compared.append((path, "MindSpore cell with no torch module at this path (an internal of the port)"))
    loss_cmp = compare(np.float32(m_loss), np.float32(t_loss), **tol)
    first, first_what, first_mismatch = _first_divergence(layers, loss_cmp)
    return LayerReport(layers=tuple(layers), loss=loss_cmp, not_compared=tuple(not_compared), first=first,
                       first_what=first_what, first_mismatch=first_mismatch)


def _first_divergence(layers: list[LayerDiff], loss: Comparison):
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


def _buffers(torch_buffers: dict, ms_buffers: dict, names: dict, tol: dict) -> Comparison | None:
    """The torch layer's own buffers against the MindSpore statistics the checkpoint rules map them to."""
    if not torch_buffers:
        return None
    missing = "<no MindSpore counterpart under the checkpoint rules>"
    actual = {n: ms_buffers.get(names.get(n), missing) for n in torch_buffers}
    return compare(actual, dict(torch_buffers), **tol)
