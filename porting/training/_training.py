"""``compare_training``: K training steps on identical batches, both frameworks, compared after every step.

Per step: the loss, every parameter's gradient, every parameter after the update, every buffer
(BatchNorm running stats) and the learning rate of every group. Names are matched through the checkpoint
rules (``porting.convert._checkpoint.torch_to_mindspore_names``). It stops at the first step that diverges and
names it (step, what, tensor, assert_close-style figures).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import numpy as np

from porting.harness._compare import Comparison, Mismatch, compare
from porting.harness._format import text_table

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
    """

    steps: tuple[StepRecord, ...]
    first_step: int | None = None
    first_what: str | None = None
    first_mismatch: Mismatch | None = None

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
            return f"all {len(self.steps)} steps match (loss, gradients, parameters, buffers, learning rate)"
        where = self.first_mismatch.where if self.first_mismatch is not None else ""
        return f"first divergence: step {self.first_step}, {self.first_what} {where}".rstrip()

    _HEADER = ("step", "torch loss", "MindSpore loss", "|loss diff|", "worst grad", "worst param", "worst buffer", "lr")

    def _rows(self) -> list[list[str]]:
        rows = []
        for s in self.steps:
            c = s.comparisons
            rows.append([str(s.step), f"{s.torch_loss:.7g}", f"{s.ms_loss:.7g}", f"{abs(s.torch_loss - s.ms_loss):.3g}",
                         f"{float(c['gradients'].worst_abs_diff):.3g}", f"{float(c['parameters'].worst_abs_diff):.3g}",
                         f"{float(c['buffers'].worst_abs_diff):.3g}", "ok" if c["learning rate"].ok else "DIFF"])
        return rows

    def __str__(self) -> str:
        lines = [text_table(self._HEADER, self._rows()), "", self.headline()]
        if self.first_mismatch is not None:
            lines.append(str(self.first_mismatch))
        return "\n".join(lines)

    def to_markdown(self) -> str:
        """The per-step table as GitHub markdown, the headline and the first mismatch's figures."""
        text = markdown_table(self._HEADER, self._rows()) + f"\n\n**{self.headline()}**\n"
        return text + (f"\n```\n{self.first_mismatch}\n```\n" if self.first_mismatch is not None else "")


def _side(side: Any, label: str) -> tuple:
    if not isinstance(side, (tuple, list)) or len(side) not in (3, 4):
        raise TypeError(f"{label}: expected (model, loss_fn, optimizer[, scheduler]), got {type(side).__name__}"
                        + (f" of length {len(side)}" if isinstance(side, (tuple, list)) else ""))
    model, loss_fn, optimizer, *rest = side
    if not callable(loss_fn):
        raise TypeError(f"{label}[1] (loss_fn): expected a callable (output, target) -> scalar loss, got "
                        f"{type(loss_fn).__name__}")
    return model, loss_fn, optimizer, (rest[0] if rest else None)


def _batch(batch: Any, index: int) -> tuple[list[np.ndarray], np.ndarray]:
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise TypeError(f"batches[{index}]: expected (inputs, target), got {type(batch).__name__}")
    inputs, target = batch
    inputs = list(inputs) if isinstance(inputs, (tuple, list)) else [inputs]
    for k, x in enumerate([*inputs, target]):
        if not isinstance(x, np.ndarray):
            raise TypeError(f"batches[{index}]: expected numpy arrays (fed to both frameworks), got "
                            f"{type(x).__name__} at position {k}")
    return inputs, target


def compare_training(torch_side: Any, ms_side: Any, batches: Iterable, *, steps: int,
                     rtol: float | None = None, atol: float | None = None) -> TrainingReport:
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

    Returns:
        A :class:`TrainingReport`; it stops at the first divergent step.

    Raises:
        ValueError: fewer batches than ``steps``, ``steps < 1``, sides in different modes.
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
    if bool(t_model.training) != bool(m_model.training):
        raise ValueError(f"the torch module is in {'train' if t_model.training else 'eval'} mode, the MindSpore "
                         f"cell in {'train' if m_model.training else 'eval'} mode: put both in the same mode")
    if not hasattr(m_opt, "param_groups") or not hasattr(m_opt, "parameters"):
        raise TypeError(f"ms_side optimizer: expected a torch-style MindSpore optimizer with param_groups and "
                        f"parameters (porting.convert_optimizer's, or mindspore.experimental.optim's), got "
                        f"{type(m_opt).__name__}")
    names = torch_to_mindspore_names(t_model, m_model)
    t_params = dict(t_model.named_parameters())
    t_buffers = {n: b for n, b in t_model.named_buffers() if not n.endswith("num_batches_tracked")}
    m_all = {p.name: p for p in m_model.get_parameters()}
    tol = dict(rtol=rtol, atol=atol)

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
            # the lr this step uses, as float32 (what both frameworks' kernels compute with)
            t_lr = [np.float32(float(g["lr"])) for g in t_opt.param_groups]
            m_lr = [np.float32(float(g["lr"].asnumpy()) if isinstance(g["lr"], ms.Tensor) else g["lr"])
                    for g in m_opt.param_groups]

            t_opt.zero_grad()
            t_loss = t_loss_fn(t_model(*[torch.from_numpy(x.copy()) for x in inputs]), torch.from_numpy(target.copy()))
            t_loss.backward()
            t_grads = {n: p.grad.detach().clone() for n, p in t_params.items() if p.grad is not None}
            t_opt.step()
            if t_sched is not None:
                t_sched.step()

            m_loss, grads = grad_fn(*[ms.Tensor(x) for x in inputs], ms.Tensor(target))
            m_grads = {p.name: g.asnumpy().copy() for p, g in zip(m_opt.parameters, grads, strict=True)}
            m_opt(grads)
            if m_sched is not None:
                m_sched.step()

            missing = "<no MindSpore counterpart under the checkpoint rules>"
            comparisons = {
                "learning rate": compare(m_lr, t_lr, rtol=0.0, atol=0.0),
                "loss": compare(np.float32(m_loss.asnumpy()), np.float32(t_loss.item()), **tol),
                "gradients": compare({n: m_grads.get(names.get(n), missing) for n in t_grads},
                                     {n: g for n, g in t_grads.items()}, **tol),
                "parameters": compare({n: m_all.get(names.get(n), missing) for n in t_params},
                                      {n: p.detach() for n, p in t_params.items()}, **tol),
                "buffers": compare({n: m_all.get(names.get(n), missing) for n in t_buffers},
                                   {n: b for n, b in t_buffers.items()}, **tol),
            }
            record = StepRecord(step=step, torch_loss=float(t_loss.item()), ms_loss=float(m_loss.asnumpy()),
                                comparisons=comparisons)
            records.append(record)
            for what in _WHAT:
                c: Comparison = comparisons[what]
                if not c.ok:
                    return TrainingReport(steps=tuple(records), first_step=step, first_what=what,
                                          first_mismatch=c.mismatches[0])
        return TrainingReport(steps=tuple(records))
