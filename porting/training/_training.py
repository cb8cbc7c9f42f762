"""``compare_training``: K training steps on identical batches, both frameworks, compared after every step.

Per step: the loss, every parameter's gradient, every parameter after the update, every buffer
(BatchNorm running stats) and the learning rate of every group. Names are matched through the checkpoint
rules (``porting.convert._checkpoint.torch_to_mindspore_names``) or an :class:`~porting.Alignment`. It stops at
the first step that diverges and names it (step, what, tensor, assert_close-style figures). With
``reference="float64"`` a float64 copy of the torch side trains alongside, and MindSpore is judged by its
distance to it relative to torch float32's (:mod:`porting.training._reference`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from porting.convert._align import as_alignment
from porting.harness._compare import Mismatch, compare
from porting.harness._format import text_table
from porting.training._layer_diff import (
    Judged,
    _Float64Default,
    as_float64,
    check_reference,
    mode_message,
    unpaired_entries,
)
from porting.training._reference import compare_to_reference
from torch2ms_base._report import Report, markdown_table

__all__ = ["StepRecord", "TrainingReport", "compare_training"]

# what is compared each step, in the order a step produces it
_WHAT = ("learning rate", "loss", "gradients", "parameters", "buffers")


@dataclasses.dataclass(frozen=True)
class StepRecord:
    """One step on both sides.

    Attributes:
        step: 0-based step number.
        torch_loss, ms_loss: the two losses.
        comparisons: ``{what: Comparison}`` for ``_WHAT`` (MindSpore as actual, torch as expected).
    """

    step: int
    torch_loss: float
    ms_loss: float
    comparisons: dict

    @property
    def ok(self) -> bool:
        """True when everything of this step matched."""
        return all(c.ok for c in self.comparisons.values())


@dataclasses.dataclass(frozen=True)
class TrainingReport(Report):
    """What :func:`compare_training` found.

    Attributes:
        steps: the :class:`StepRecord` of every step run (the last one is the divergent one, if any).
        first_step, first_what, first_mismatch: where the first divergence is (``None`` when all matched).
        not_compared: ``(torch name, reason)`` for state an alignment lists as having no counterpart.
        reference: ``"float64"`` when judged against a float64 run (the table then shows MindSpore's and torch
            float32's RMS distance to it for the worst gradient and parameter, and their ratio), else ``None``.
    """

    steps: tuple[StepRecord, ...]
    first_step: int | None = None
    first_what: str | None = None
    first_mismatch: Mismatch | None = None
    not_compared: tuple = ()
    reference: str | None = None

    @property
    def ok(self) -> bool:
        """True when every step matched."""
        return self.first_step is None

    @property
    def torch_losses(self) -> list[float]:
        """The torch loss curve."""
        return [s.torch_loss for s in self.steps]

    @property
    def ms_losses(self) -> list[float]:
        """The MindSpore loss curve."""
        return [s.ms_loss for s in self.steps]

    @property
    def verdict(self) -> str:
        """``all N steps match`` or ``DIVERGES at step k``."""
        return f"all {len(self.steps)} steps match" if self.ok else f"DIVERGES at step {self.first_step}"

    def summary(self) -> str:
        """One line: the headline."""
        return self.headline()

    def headline(self) -> str:
        """One line: all steps matched, or the first divergence."""
        if self.ok:
            rule = ", float64 rule" if self.reference else ""
            return f"all {len(self.steps)} steps match (loss, gradients, parameters, buffers, learning rate{rule})"
        where = self.first_mismatch.where if self.first_mismatch is not None else ""
        return f"first divergence: step {self.first_step}, {self.first_what} {where}".rstrip()

    _HEADER = ("step", "torch loss", "MindSpore loss", "|loss diff|", "worst grad", "worst param", "worst buffer", "lr")
    _REF_HEADER = (
        "step",
        "torch loss",
        "MindSpore loss",
        "grad MS/torch32 err",
        "ratio",
        "param MS/torch32 err",
        "ratio",
        "buffer ratio",
        "lr",
    )

    def _rows(self) -> list[list[str]]:
        rows = []
        for s in self.steps:
            c = s.comparisons
            lr = "ok" if c["learning rate"].ok else "DIFF"
            if self.reference:

                def errs(cmp):
                    w = getattr(cmp, "worst", None)
                    return ["-", "-"] if w is None else [f"{w.ms_error:.3g}/{w.torch_error:.3g}", f"{w.ratio:.3g}"]

                buf = getattr(c["buffers"], "worst", None)
                rows.append(
                    [
                        str(s.step),
                        f"{s.torch_loss:.7g}",
                        f"{s.ms_loss:.7g}",
                        *errs(c["gradients"]),
                        *errs(c["parameters"]),
                        "-" if buf is None else f"{buf.ratio:.3g}",
                        lr,
                    ]
                )
                continue
            rows.append(
                [
                    str(s.step),
                    f"{s.torch_loss:.7g}",
                    f"{s.ms_loss:.7g}",
                    f"{abs(s.torch_loss - s.ms_loss):.3g}",
                    f"{float(c['gradients'].worst_abs_diff):.3g}",
                    f"{float(c['parameters'].worst_abs_diff):.3g}",
                    f"{float(c['buffers'].worst_abs_diff):.3g}",
                    lr,
                ]
            )
        return rows

    @property
    def _header(self):
        return self._REF_HEADER if self.reference else self._HEADER

    def __str__(self) -> str:
        lines = [text_table(self._header, self._rows()), "", self.headline()]
        if self.first_mismatch is not None:
            lines.append(str(self.first_mismatch))
        lines += [f"not compared: {n}: {why}" for n, why in self.not_compared]
        return "\n".join(lines)

    def to_markdown(self) -> str:
        """The per-step table as GitHub markdown, the headline and the first mismatch's figures."""
        text = markdown_table(self._header, self._rows()) + f"\n\n**{self.headline()}**\n"
        return text + (f"\n```\n{self.first_mismatch}\n```\n" if self.first_mismatch is not None else "")


def _side(side: Any, label: str) -> tuple:
    if not isinstance(side, (tuple, list)) or len(side) not in (3, 4):
        raise TypeError(
            f"{label}: expected (model, loss_fn, optimizer[, scheduler]), got {type(side).__name__}"
            + (f" of length {len(side)}" if isinstance(side, (tuple, list)) else "")
        )
    model, loss_fn, optimizer, *rest = side
    if not callable(loss_fn):
        raise TypeError(
            f"{label}[1] (loss_fn): expected a callable (output, target) -> scalar loss, got {type(loss_fn).__name__}"
        )
    return model, loss_fn, optimizer, (rest[0] if rest else None)


def _batch(batch: Any, index: int) -> tuple[list[np.ndarray], np.ndarray]:
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise TypeError(f"batches[{index}]: expected (inputs, target), got {type(batch).__name__}")
    inputs, target = batch
    inputs = list(inputs) if isinstance(inputs, (tuple, list)) else [inputs]
    for k, x in enumerate([*inputs, target]):
        if not isinstance(x, np.ndarray):
            raise TypeError(
                f"batches[{index}]: expected numpy arrays (fed to both frameworks), got "
                f"{type(x).__name__} at position {k}"
            )
    return inputs, target


def compare_training(
    torch_side: Any,
    ms_side: Any,
    batches: Iterable,
    *,
    steps: int,
    rtol: float | None = None,
    atol: float | None = None,
    alignment: Any = None,
    reference: str | None = None,
) -> TrainingReport:
    """Train both sides ``steps`` steps on the same batches; compare everything after each step.

    Each step on torch: ``zero_grad``, forward, ``loss_fn(output, target)``, ``backward``, ``optimizer.step()``,
    ``scheduler.step()``; on MindSpore the same through ``mindspore.value_and_grad`` over
    ``optimizer.parameters``. The models train: pass the objects you mean to train (e.g. fresh copies).
    torch's global random stream is restored afterwards; MindSpore's random ops (dropout) have no state
    that can be saved and restored (``mindspore.set_rng_state`` does not replay ``ops.rand``), and their
    masks never match torch's anyway: compare with dropout off.

    Args:
        torch_side: ``(module, loss_fn, optimizer, scheduler)``; the scheduler may be left out or ``None``.
        ms_side: ``(cell, loss_fn, optimizer, scheduler)`` (e.g. from :func:`porting.convert_optimizer` and
            :func:`porting.convert_lr_scheduler`), the cell in training mode.
        batches: iterable of ``(inputs, target)`` numpy arrays (inputs may be a tuple of arrays).
        steps: steps to run (``batches`` must have at least that many).
        rtol, atol: tolerances for loss, gradients, parameters and buffers (both or neither; default per
            dtype). Learning rates are compared exactly as the float32 the kernels use.
        alignment: an :class:`~porting.Alignment` (or the path of a saved one) pairing the names of a port
            written independently; state it lists as unmatched is left out and reported as not compared.
        reference: ``"float64"``: a deep copy of the torch model, optimizer and scheduler trains in float64
            on the same batches (float inputs and targets in float64), and loss, gradients, parameters and
            buffers are judged by MindSpore's RMS distance to it relative to torch float32's (within 2x, 3x
            under 1000 elements, plus a floor of ``1e-5 + 1.3e-6 x RMS``; the rule of
            ``torch._dynamo.utils.same(fp64_ref=...)``, see :mod:`porting.training._reference`). The caller's
            torch objects train as usual, the copy is discarded.

    Returns:
        A :class:`TrainingReport`; it stops at the first divergent step.

    Raises:
        ValueError: fewer batches than ``steps``, ``steps < 1``, sides in different modes (the message names
            ``cell.set_train(True)``), a torch parameter or buffer with no counterpart ("no counterpart for X")
            that no alignment lists, a bad ``reference``, tolerances with ``reference``.
        TypeError: malformed sides or batches.

    Example:
        >>> import numpy as np, torch, mindspore as ms, porting
        >>> t = torch.nn.Linear(2, 1); m = ms.nn.Dense(2, 1); _ = porting.load_torch_state_dict(m, t.state_dict())
        >>> _ = m.set_train(True)
        >>> to = torch.optim.SGD(t.parameters(), lr=0.1); mo = porting.convert_optimizer(to, m, torch_module=t)
        >>> mse_t = lambda o, y: ((o - y) ** 2).mean(); mse_m = lambda o, y: ((o - y) ** 2).mean()
        >>> b = [(np.ones((4, 2), np.float32), np.zeros((4, 1), np.float32))] * 3
        >>> compare_training((t, mse_t, to), (m, mse_m, mo), b, steps=3).ok
        True
    """
    import mindspore as ms
    import torch

    from porting.convert._checkpoint import torch_to_mindspore_names  # the one place the rename rules live

    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps: expected an integer >= 1, got {steps!r}")
    t_model, t_loss_fn, t_opt, t_sched = _side(torch_side, "torch_side")
    m_model, m_loss_fn, m_opt, m_sched = _side(ms_side, "ms_side")
    _check_sides(t_model, m_model, m_opt, reference, rtol, atol)
    alignment = as_alignment(alignment, "compare_training")
    names = torch_to_mindspore_names(t_model, m_model, alignment=alignment)
    unpaired = unpaired_entries(t_model, names, alignment, "compare_training")
    t_params = {n: p for n, p in t_model.named_parameters() if n not in unpaired}
    t_buffers = {
        n: b for n, b in t_model.named_buffers() if not n.endswith("num_batches_tracked") and n not in unpaired
    }
    m_all = {p.name: p for p in m_model.get_parameters()}
    tol: dict[str, Any] = dict(rtol=rtol, atol=atol)
    twin = _Float64Twin(t_model, t_opt, t_sched) if reference else None
    not_compared = tuple((n, f"no counterpart: {why}") for n, why in unpaired.items())

    def forward(*xs):
        return m_loss_fn(m_model(*xs[:-1]), xs[-1])

    grad_fn = ms.value_and_grad(forward, None, m_opt.parameters)
    # the caller's torch random stream stays as it was (dropout and other draws happen inside)
    with torch.random.fork_rng(devices=[]):
        records = []
        it = iter(batches)
        for step in range(steps):
            try:
                batch = next(it)
            except StopIteration:
                raise ValueError(f"batches ran out after {step} batches; steps={steps}") from None
            inputs, target = _batch(batch, step)
            t_lr, m_lr = _learning_rates(t_opt, m_opt)
            t_loss, t_grads = _torch_step(t_model, t_loss_fn, t_opt, t_sched, t_params, inputs, target)
            ref: dict[str, Any] = {"loss": None, "gradients": None, "parameters": None, "buffers": None}
            if twin is not None:
                ref = twin.step(t_loss_fn, inputs, target, t_grads, t_params, t_buffers)
            m_loss, m_grads = _ms_step(grad_fn, m_opt, m_sched, inputs, target)

            missing = "<no MindSpore counterpart under the checkpoint rules>"
            comparisons = {
                "learning rate": compare(m_lr, t_lr, rtol=0.0, atol=0.0),
                "loss": _judge(np.float32(m_loss.asnumpy()), np.float32(t_loss.item()), ref["loss"], tol),
                "gradients": _judge(
                    {n: m_grads.get(names.get(n), missing) for n in t_grads},
                    {n: g for n, g in t_grads.items()},
                    ref["gradients"],
                    tol,
                ),
                "parameters": _judge(
                    {n: m_all.get(names.get(n), missing) for n in t_params},
                    {n: p.detach() for n, p in t_params.items()},
                    ref["parameters"],
                    tol,
                ),
                "buffers": _judge(
                    {n: m_all.get(names.get(n), missing) for n in t_buffers},
                    {n: b for n, b in t_buffers.items()},
                    ref["buffers"],
                    tol,
                ),
            }
            record = StepRecord(
                step=step, torch_loss=float(t_loss.item()), ms_loss=float(m_loss.asnumpy()), comparisons=comparisons
            )
            records.append(record)
            for what in _WHAT:
                c: Judged = comparisons[what]
                if not c.ok:
                    return TrainingReport(
                        steps=tuple(records),
                        first_step=step,
                        first_what=what,
                        first_mismatch=c.mismatches[0],
                        not_compared=not_compared,
                        reference=reference,
                    )
        return TrainingReport(steps=tuple(records), not_compared=not_compared, reference=reference)


def _check_sides(
    t_model: Any, m_model: Any, m_opt: Any, reference: str | None, rtol: float | None, atol: float | None
) -> None:
    """Both sides in the same mode, a valid ``reference``, a torch-style MindSpore optimizer."""
    if bool(t_model.training) != bool(m_model.training):
        raise ValueError(mode_message(bool(t_model.training), bool(m_model.training)))
    check_reference(reference, rtol, atol)
    if not hasattr(m_opt, "param_groups") or not hasattr(m_opt, "parameters"):
        raise TypeError(
            f"ms_side optimizer: expected a torch-style MindSpore optimizer with param_groups and "
            f"parameters (porting.convert_optimizer's, or mindspore.experimental.optim's), got "
            f"{type(m_opt).__name__}"
        )


def _judge(actual: Any, expected: Any, ref: Any, tol: dict) -> Judged:
    """Elementwise within ``tol`` without a reference; by the float64 rule against ``ref`` with one."""
    return compare(actual, expected, **tol) if ref is None else compare_to_reference(actual, expected, ref)


def _learning_rates(t_opt: Any, m_opt: Any) -> tuple[list[np.float32], list[np.float32]]:
    """The lr of every group this step uses, as float32 (what both frameworks' kernels compute with)."""
    import mindspore as ms

    t_lr = [np.float32(float(g["lr"])) for g in t_opt.param_groups]
    m_lr = [
        np.float32(float(g["lr"].asnumpy()) if isinstance(g["lr"], ms.Tensor) else g["lr"]) for g in m_opt.param_groups
    ]
    return t_lr, m_lr


def _torch_step(model: Any, loss_fn: Any, opt: Any, sched: Any, params: dict, inputs: list, target: np.ndarray):
    """One torch step: ``(loss, {name: gradient})`` (the gradients before the update)."""
    import torch

    opt.zero_grad()
    loss = loss_fn(model(*[torch.from_numpy(x.copy()) for x in inputs]), torch.from_numpy(target.copy()))
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in params.items() if p.grad is not None}
    opt.step()
    if sched is not None:
        sched.step()
    return loss, grads


def _ms_step(grad_fn: Any, opt: Any, sched: Any, inputs: list, target: np.ndarray):
    """One MindSpore step: ``(loss, {parameter name: gradient})``."""
    import mindspore as ms

    loss, grads = grad_fn(*[ms.Tensor(x) for x in inputs], ms.Tensor(target))
    named = {p.name: g.asnumpy().copy() for p, g in zip(opt.parameters, grads, strict=True)}
    opt(grads)
    if sched is not None:
        sched.step()
    return loss, named


class _Float64Twin:
    """A float64 deep copy of the torch model, optimizer and scheduler that trains alongside (the reference)."""

    def __init__(self, model: Any, opt: Any, sched: Any) -> None:
        import copy

        import torch

        # one deepcopy of the three keeps the optimizer's (and scheduler's) references to the copied parameters
        self.model, self.opt, self.sched = copy.deepcopy((model, opt, sched))
        self.model.to(torch.float64)  # in place: the copied optimizer still holds these Parameter objects
        self.params = dict(self.model.named_parameters())
        self.buffers = dict(self.model.named_buffers())

    def step(
        self, loss_fn: Any, inputs: list, target: np.ndarray, grads: Mapping, params: Mapping, buffers: Mapping
    ) -> dict[str, Any]:
        """One float64 step on the same batch; the loss and the entries named by ``grads``/``params``/``buffers``."""
        import torch

        with _Float64Default():  # tensors the forward creates
            self.opt.zero_grad()
            loss = loss_fn(
                self.model(*[torch.from_numpy(as_float64(x)) for x in inputs]), torch.from_numpy(as_float64(target))
            )
            loss.backward()
            gradients = {n: self.params[n].grad.detach().clone() for n in grads}
            self.opt.step()
            if self.sched is not None:
                import warnings

                with warnings.catch_warnings():
                    # a deep-copied optimizer loses the scheduler's step counter wrapper, not its order
                    warnings.filterwarnings("ignore", message=r"Seems like `optimizer.step\(\)` has been")
                    self.sched.step()
        return {
            "loss": np.float64(loss.item()),
            "gradients": gradients,
            "parameters": {n: self.params[n].detach() for n in params},
            "buffers": {n: self.buffers[n].detach() for n in buffers},
        }
