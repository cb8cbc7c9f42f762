"""``convert_lr_scheduler``: a ``torch.optim.lr_scheduler`` schedule driving a converted MindSpore optimizer.

Each schedule is torch's own recurrence (``get_lr`` reads and rescales the groups' current lr, as torch's
does), run on python floats, so the learning rates are torch's bit for bit; after every step the float32
``lr`` Parameter of each MindSpore group is assigned (torch's kernels also use lr as float32). The
converted schedule starts from the torch scheduler's state (``last_epoch``, ``base_lrs``, step count) and
the groups' current values; the torch objects are only read.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable
from typing import Any

__all__ = ["SCHEDULER_RULES", "LRSchedule", "convert_lr_scheduler"]

# {torch class name: attributes copied from the torch scheduler besides the common state}
SCHEDULER_RULES: dict[str, tuple[str, ...]] = {
    "StepLR": ("step_size", "gamma"),
    "MultiStepLR": ("milestones", "gamma"),
    "ExponentialLR": ("gamma",),
    "CosineAnnealingLR": ("T_max", "eta_min"),
    "LambdaLR": ("lr_lambdas",),
    "LinearLR": ("start_factor", "end_factor", "total_iters"),
    "OneCycleLR": ("total_steps", "_schedule_phases", "_anneal_func_type", "cycle_momentum", "use_beta1"),
    "SequentialLR": ("_milestones",),
    "ChainedScheduler": (),
}
_COMMON = ("base_lrs", "last_epoch", "_step_count", "_last_lr")
# group entries a schedule reads or writes (OneCycleLR keeps its phase ends and momenta in the groups)
_GROUP_KEYS = ("lr", "initial_lr", "max_lr", "min_lr", "max_momentum", "base_momentum", "momentum", "betas")
_REFUSED = {
    "ReduceLROnPlateau": "it steps on a metric (step(metrics)), not on a count: call it yourself and assign "
    "the MindSpore groups' lr",
}


class _Groups:
    """The python-float view of the optimizer's groups that torch's recurrences read, mirrored to MindSpore."""

    def __init__(self, torch_groups: list[dict], ms_optimizer: Any) -> None:
        self.groups = [{k: _number(g[k]) for k in _GROUP_KEYS if k in g} for g in torch_groups]
        self.ms_optimizer = ms_optimizer

    def push(self, momentum: bool = False) -> None:
        import mindspore as ms
        import numpy as np

        for group, ms_group in zip(self.groups, self.ms_optimizer.param_groups, strict=True):
            lr = ms_group["lr"]
            if isinstance(lr, ms.Parameter):
                lr.set_data(ms.Tensor(np.float32(group["lr"])))
            else:
                ms_group["lr"] = group["lr"]
            if momentum:
                for key in ("momentum", "betas"):
                    if key in group:
                        ms_group[key] = group[key]


def _number(value: Any) -> Any:
    if isinstance(value, tuple):
        return tuple(_number(v) for v in value)
    if type(value).__module__.startswith("torch") and hasattr(value, "item"):
        return value.item()
    return value


class LRSchedule:
    """torch's ``LRScheduler`` step logic on python floats; subclasses hold one schedule's ``get_lr``.

    Attributes:
        base_lrs, last_epoch: as torch's.
    """

    _closed_form = False
    # torch's scheduler state, set by __init__ from what _convert copied (_COMMON and the class's rule)
    base_lrs: list[float]
    last_epoch: int
    _step_count: int
    _last_lr: list[float]

    def __init__(self, groups: _Groups, state: dict) -> None:
        self._groups = groups
        self._is_initial = False
        self.__dict__.update(state)

    def get_last_lr(self) -> list[float]:
        """The learning rates of the last step, one per group (torch's ``get_last_lr``)."""
        return list(self._last_lr)

    def step(self) -> None:
        """Advance one step (call after the optimizer's), as torch's ``scheduler.step()``."""
        self._step_count += 1
        self._update_lr()

    def _update_lr(self, epoch: int | None = None) -> None:
        if epoch is None:
            self.last_epoch += 1
            values = self.get_lr()
        else:
            self.last_epoch = epoch
            values = self._get_closed_form_lr() if self._closed_form else self.get_lr()
        for group, lr in zip(self._groups.groups, values, strict=True):
            group["lr"] = lr
        self._last_lr = [g["lr"] for g in self._groups.groups]
        self._groups.push(momentum=getattr(self, "cycle_momentum", False))

    def _lrs(self) -> list[float]:
        return [g["lr"] for g in self._groups.groups]

    def get_lr(self) -> list[float]:  # pragma: no cover - every rule has one
        raise NotImplementedError

    def _get_closed_form_lr(self) -> list[float]:  # pragma: no cover - only where _closed_form is set
        raise NotImplementedError


class StepLR(LRSchedule):
    """torch's StepLR recurrence."""

    _closed_form = True
    step_size: int
    gamma: float

    def get_lr(self):
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._lrs()
        return [lr * self.gamma for lr in self._lrs()]

    def _get_closed_form_lr(self):
        return [b * self.gamma ** (self.last_epoch // self.step_size) for b in self.base_lrs]


class MultiStepLR(LRSchedule):
    """torch's MultiStepLR recurrence."""

    _closed_form = True
    milestones: Counter[int]
    gamma: float

    def get_lr(self):
        if self.last_epoch not in self.milestones:
            return self._lrs()
        return [lr * self.gamma ** self.milestones[self.last_epoch] for lr in self._lrs()]

    def _get_closed_form_lr(self):
        ms = sorted(self.milestones.elements())
        return [b * self.gamma ** bisect_right(ms, self.last_epoch) for b in self.base_lrs]


class ExponentialLR(LRSchedule):
    """torch's ExponentialLR recurrence."""

    _closed_form = True
    gamma: float

    def get_lr(self):
        if self._is_initial:
            return self._lrs()
        return [lr * self.gamma for lr in self._lrs()]

    def _get_closed_form_lr(self):
        return [b * self.gamma**self.last_epoch for b in self.base_lrs]


class CosineAnnealingLR(LRSchedule):
    """torch's CosineAnnealingLR recurrence (not the closed form: torch's numbers come from the recurrence)."""

    _closed_form = True
    T_max: int
    eta_min: float

    def get_lr(self):
        lrs = self._lrs()
        if self._is_initial:
            return lrs
        if self._step_count == 1 and self.last_epoch > 0:
            return [
                self.eta_min + (b - self.eta_min) * (1 + math.cos(self.last_epoch * math.pi / self.T_max)) / 2
                for b in self.base_lrs
            ]
        if (self.last_epoch - 1 - self.T_max) % (2 * self.T_max) == 0:
            return [
                lr + (b - self.eta_min) * (1 - math.cos(math.pi / self.T_max)) / 2
                for b, lr in zip(self.base_lrs, lrs, strict=True)
            ]
        return [
            (1 + math.cos(math.pi * self.last_epoch / self.T_max))
            / (1 + math.cos(math.pi * (self.last_epoch - 1) / self.T_max))
            * (lr - self.eta_min)
            + self.eta_min
            for lr in lrs
        ]

    def _get_closed_form_lr(self):
        return [
            self.eta_min + (b - self.eta_min) * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
            for b in self.base_lrs
        ]


class LambdaLR(LRSchedule):
    """torch's LambdaLR: ``base_lr * lr_lambda(last_epoch)`` with the user's own functions."""

    lr_lambdas: list[Callable[[int], float]]

    def get_lr(self):
        return [b * f(self.last_epoch) for f, b in zip(self.lr_lambdas, self.base_lrs, strict=True)]


class LinearLR(LRSchedule):
    """torch's LinearLR recurrence."""

    _closed_form = True
    start_factor: float
    end_factor: float
    total_iters: int

    def get_lr(self):
        lrs = self._lrs()
        if self.last_epoch == 0:
            return [lr * self.start_factor for lr in lrs]
        if self._is_initial or self.last_epoch > self.total_iters:
            return lrs
        d = self.end_factor - self.start_factor
        return [lr * (1.0 + d / (self.total_iters * self.start_factor + (self.last_epoch - 1) * d)) for lr in lrs]

    def _get_closed_form_lr(self):
        d = self.end_factor - self.start_factor
        return [
            b * (self.start_factor + d * min(self.total_iters, self.last_epoch) / self.total_iters)
            for b in self.base_lrs
        ]


class OneCycleLR(LRSchedule):
    """torch's OneCycleLR (cos or linear anneal, two or three phases, momentum / beta1 cycling)."""

    total_steps: int
    _schedule_phases: list[dict[str, Any]]
    _anneal_func_type: str
    cycle_momentum: bool
    use_beta1: bool

    def _anneal(self, start, end, pct):
        if self._anneal_func_type == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self):
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(f"Tried to step {step} times. The specified number of total steps is {self.total_steps}")
        lrs = []
        for group in self._groups.groups:
            start_step = 0.0
            for i, phase in enumerate(self._schedule_phases):
                end_step = phase["end_step"]
                if step <= end_step or i == len(self._schedule_phases) - 1:
                    pct = (step - start_step) / (end_step - start_step)
                    lr = self._anneal(group[phase["start_lr"]], group[phase["end_lr"]], pct)
                    if self.cycle_momentum:
                        momentum = self._anneal(group[phase["start_momentum"]], group[phase["end_momentum"]], pct)
                    break
                start_step = phase["end_step"]
            lrs.append(lr)
            if self.cycle_momentum:
                if self.use_beta1:
                    group["betas"] = (momentum, *group["betas"][1:])
                else:
                    group["momentum"] = momentum
        return lrs


class SequentialLR(LRSchedule):
    """torch's SequentialLR: one child schedule per milestone interval, restarted at its milestone."""

    _milestones: list[int]
    _schedulers: list[LRSchedule]

    def step(self):
        self.last_epoch += 1
        idx = bisect_right(self._milestones, self.last_epoch)
        child = self._schedulers[idx]
        if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
            child._update_lr(0)
        else:
            child.step()
        self._last_lr = child.get_last_lr()


class ChainedScheduler(LRSchedule):
    """torch's ChainedScheduler: every child steps, each on the lr the previous one left."""

    _schedulers: list[LRSchedule]

    def step(self):
        for child in self._schedulers:
            child.step()
        self._last_lr = [g["lr"] for g in self._groups.groups]


def _convert(torch_scheduler: Any, groups: _Groups, where: str) -> LRSchedule:
    cls = type(torch_scheduler)
    name = cls.__name__
    if cls.__module__ == "torch.optim.lr_scheduler" and name in _REFUSED:
        raise ValueError(f"{where}: {name} is not converted: {_REFUSED[name]}")
    if cls.__module__ != "torch.optim.lr_scheduler" or name not in SCHEDULER_RULES:
        raise TypeError(
            f"{where}: no conversion rule for scheduler {cls.__module__}.{name} (torch's own classes "
            f"only: a subclass may change get_lr); supported: {', '.join(sorted(SCHEDULER_RULES))}"
        )
    attrs = vars(torch_scheduler)
    state = {}
    for key in (*_COMMON, *SCHEDULER_RULES[name]):
        if key in attrs:
            value = attrs[key]
            state[key] = [_number(v) for v in value] if key in ("base_lrs", "_last_lr") else value
    if name == "LambdaLR":
        state["lr_lambdas"] = list(attrs["lr_lambdas"])
    if name == "MultiStepLR":
        state["milestones"] = type(attrs["milestones"])(attrs["milestones"])
    if name in ("SequentialLR", "ChainedScheduler"):
        state["_schedulers"] = [
            _convert(s, groups, f"{where}._schedulers[{i}]") for i, s in enumerate(attrs["_schedulers"])
        ]
        state["_milestones"] = list(attrs.get("_milestones", ()))
    return globals()[name](groups, state)


def convert_lr_scheduler(torch_scheduler: Any, ms_optimizer: Any) -> LRSchedule:
    """Drive ``ms_optimizer``'s learning rates with ``torch_scheduler``'s schedule, from its current state.

    Supported: StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR, OneCycleLR (momentum / beta1
    cycling included), LambdaLR (the user's functions, called as torch calls them), LinearLR, and
    SequentialLR / ChainedScheduler of these. Call ``step()`` after each optimizer step, as in torch.

    Args:
        torch_scheduler: a ``torch.optim.lr_scheduler`` scheduler (only read).
        ms_optimizer: the optimizer :func:`porting.convert_optimizer` made from the scheduler's optimizer
            (same groups, same order).

    Returns:
        An :class:`LRSchedule` with ``step()`` and ``get_last_lr()``; the MindSpore groups' lr (and, for
        OneCycleLR with ``cycle_momentum``, momentum / betas) are set to the torch optimizer's current values.

    Raises:
        TypeError: a scheduler class without a rule (named with its place in a chain).
        ValueError: ReduceLROnPlateau (metric-driven), or a group count that differs.

    Example:
        >>> import torch, mindspore as ms, numpy as np
        >>> from porting import convert_optimizer
        >>> t = torch.optim.SGD([torch.nn.Parameter(torch.ones(2))], lr=1.0)
        >>> s = torch.optim.lr_scheduler.StepLR(t, step_size=1, gamma=0.5)
        >>> m = convert_optimizer(t, [ms.Parameter(ms.Tensor(np.ones(2, np.float32)), name="w")])
        >>> ms_s = convert_lr_scheduler(s, m)
        >>> ms_s.step(); ms_s.get_last_lr()
        [0.5]
    """
    torch_groups = torch_scheduler.optimizer.param_groups
    ms_groups = getattr(ms_optimizer, "param_groups", None)
    if ms_groups is None:
        raise TypeError(f"ms_optimizer: expected an optimizer with param_groups, got {type(ms_optimizer).__name__}")
    if len(ms_groups) != len(torch_groups):
        raise ValueError(
            f"the torch optimizer has {len(torch_groups)} parameter groups, the MindSpore one "
            f"{len(ms_groups)}: convert the scheduler's own optimizer"
        )
    groups = _Groups(torch_groups, ms_optimizer)
    schedule = _convert(torch_scheduler, groups, type(torch_scheduler).__name__)
    groups.push(momentum=True)
    return schedule
