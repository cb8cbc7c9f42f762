"""MindSpore optimizer cells that apply ``torch.optim``'s exact update formulas (SGD, Adam/AdamW, RMSprop).

Why not MindSpore's own: ``nn.Momentum(use_nesterov=True)`` uses the pre-update buffer, ``nn.SGD``/``nn.Adam``
skip weight decay for parameters named ``gamma``/``beta``, and ``nn.Adam`` / ``experimental.optim.Adam`` add
``eps`` before the bias correction (measured: 2.7e-3 apart after 10 steps with ``eps=1e-3``, 4e-6 with amsgrad).
These cells keep torch's order of operations, op for op, on top of ``mindspore.experimental.optim.Optimizer``
(torch-style ``param_groups``, one float32 ``lr`` Parameter per group that a scheduler can assign).

They run in PyNative mode (MindSpore's default): the first-step rule of torch's momentum buffer and the step
counters are python state. This module imports MindSpore; import it only where MindSpore is wanted.
"""

from __future__ import annotations

import mindspore as ms
from mindspore import ops
from mindspore.experimental.optim import Optimizer

__all__ = ["TorchSGD", "TorchAdam", "TorchRMSprop"]


def _require_pynative(name: str) -> None:
    if ms.get_context("mode") != ms.PYNATIVE_MODE:
        raise RuntimeError(
            f"{name} mirrors torch's update with python-side step state and needs PyNative mode "
            f"(mindspore.set_context(mode=mindspore.PYNATIVE_MODE)); the context is in GRAPH mode"
        )


def _lr(group: dict) -> float:
    # The scheduler writes the float32 Parameter; torch's kernels cast their python-double lr to float32 too.
    value = group["lr"]
    return float(value.asnumpy()) if isinstance(value, ms.Tensor) else float(value)


def _lerp(start, end, weight: float):
    # torch's lerp kernel: two formulas, chosen by |weight| < 0.5, so that both ends are exact
    if abs(weight) < 0.5:
        return start + (end - start) * weight
    return end - (end - start) * (1 - weight)


class _TorchOptimizer(Optimizer):
    """Common part: per-group iteration in PyNative, one python step counter."""

    def __init__(self, params, defaults):
        super().__init__(params, defaults)
        self.steps = 0  # torch keeps one per parameter; they are equal when every parameter gets a gradient

    def _groups(self, gradients):
        _require_pynative(type(self).__name__)
        if len(gradients) != len(self.parameters):
            raise ValueError(
                f"{type(self).__name__} expected {len(self.parameters)} gradients (one per optimizer parameter, "
                f"in optimizer.parameters order), got {len(gradients)}"
            )
        for gid, group in enumerate(self.param_groups):
            start, end = self.group_start_id[gid], self.group_start_id[gid + 1]
            yield group, range(start, end)


class TorchSGD(_TorchOptimizer):
    """``torch.optim.SGD``'s update (momentum, dampening, nesterov, L2 weight decay, maximize) in MindSpore.

    Example:
        >>> import mindspore as ms, numpy as np
        >>> p = ms.Parameter(ms.Tensor(np.ones(2, np.float32)), name="w")
        >>> opt = TorchSGD([p], lr=0.5)
        >>> _ = opt((ms.Tensor(np.ones(2, np.float32)),))
        >>> p.asnumpy().tolist()
        [0.5, 0.5]
    """

    def __init__(
        self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, *, maximize=False
    ):
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            maximize=maximize,
        )
        super().__init__(params, defaults)
        self.momentum_buffer = self.parameters.clone(prefix="momentum_buffer", init="zeros")

    def construct(self, gradients):
        first = self.steps == 0
        for group, ids in self._groups(gradients):
            lr, wd, mom = _lr(group), group["weight_decay"], group["momentum"]
            for i in ids:
                param = self.parameters[i]
                grad = -gradients[i] if group["maximize"] else gradients[i]
                if wd != 0:
                    grad = grad + param * wd
                if mom != 0:
                    buf = self.momentum_buffer[i]
                    if first:  # torch: buf = clone(grad) on the first step, no dampening
                        new_buf = grad
                    else:
                        new_buf = buf * mom + grad * (1 - group["dampening"])
                    ops.assign(buf, new_buf)
                    grad = grad + new_buf * mom if group["nesterov"] else new_buf
                ops.assign(param, param - grad * lr)
        self.steps += 1
        return True


class TorchAdam(_TorchOptimizer):
    """``torch.optim.Adam`` / ``AdamW``'s update in MindSpore (``decoupled_weight_decay=True`` is AdamW).

    Example:
        >>> import mindspore as ms, numpy as np
        >>> p = ms.Parameter(ms.Tensor(np.ones(2, np.float32)), name="w")
        >>> opt = TorchAdam([p], lr=0.1)
        >>> _ = opt((ms.Tensor(np.ones(2, np.float32)),))
        >>> [round(float(v), 6) for v in p.asnumpy()]
        [0.9, 0.9]
    """

    def __init__(
        self,
        params,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0.0,
        amsgrad=False,
        *,
        maximize=False,
        decoupled_weight_decay=False,
    ):
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
            decoupled_weight_decay=decoupled_weight_decay,
        )
        super().__init__(params, defaults)
        self.exp_avg = self.parameters.clone(prefix="exp_avg", init="zeros")
        self.exp_avg_sq = self.parameters.clone(prefix="exp_avg_sq", init="zeros")
        self.max_exp_avg_sq = self.parameters.clone(prefix="max_exp_avg_sq", init="zeros")

    def construct(self, gradients):
        step = self.steps + 1
        for group, ids in self._groups(gradients):
            lr, wd, eps = _lr(group), group["weight_decay"], group["eps"]
            beta1, beta2 = (float(b) for b in group["betas"])
            # python doubles, as torch computes them for a non-tensor step
            step_size = lr / (1 - beta1**step)
            bias_correction2_sqrt = (1 - beta2**step) ** 0.5
            for i in ids:
                param = self.parameters[i]
                grad = -gradients[i] if group["maximize"] else gradients[i]
                if wd != 0:
                    if group["decoupled_weight_decay"]:
                        param = param * (1 - lr * wd)
                    else:
                        grad = grad + param * wd
                exp_avg, exp_avg_sq = self.exp_avg[i], self.exp_avg_sq[i]
                m = _lerp(exp_avg, grad, 1 - beta1)
                v = exp_avg_sq * beta2 + grad * grad * (1 - beta2)
                ops.assign(exp_avg, m)
                ops.assign(exp_avg_sq, v)
                if group["amsgrad"]:
                    v = ops.maximum(self.max_exp_avg_sq[i], v)
                    ops.assign(self.max_exp_avg_sq[i], v)
                denom = ops.sqrt(v) / bias_correction2_sqrt + eps
                ops.assign(self.parameters[i], param - (m / denom) * step_size)
        self.steps = step
        return True


class TorchRMSprop(_TorchOptimizer):
    """``torch.optim.RMSprop``'s update (alpha, eps, L2 weight decay, momentum, centered, maximize) in MindSpore.

    Example:
        >>> import mindspore as ms, numpy as np
        >>> p = ms.Parameter(ms.Tensor(np.ones(2, np.float32)), name="w")
        >>> opt = TorchRMSprop([p], lr=0.01, alpha=0.0, eps=0.0)
        >>> _ = opt((ms.Tensor(np.ones(2, np.float32)),))
        >>> [round(float(v), 6) for v in p.asnumpy()]
        [0.99, 0.99]
    """

    def __init__(
        self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False, *, maximize=False
    ):
        defaults = dict(
            lr=lr,
            alpha=alpha,
            eps=eps,
            weight_decay=weight_decay,
            momentum=momentum,
            centered=centered,
            maximize=maximize,
        )
        super().__init__(params, defaults)
        self.square_avg = self.parameters.clone(prefix="square_avg", init="zeros")
        self.grad_avg = self.parameters.clone(prefix="grad_avg", init="zeros")
        self.momentum_buffer = self.parameters.clone(prefix="momentum_buffer", init="zeros")

    def construct(self, gradients):
        for group, ids in self._groups(gradients):
            lr, wd, alpha, eps, mom = (
                _lr(group),
                group["weight_decay"],
                group["alpha"],
                group["eps"],
                group["momentum"],
            )
            for i in ids:
                param = self.parameters[i]
                grad = -gradients[i] if group["maximize"] else gradients[i]
                if wd != 0:
                    grad = grad + param * wd
                square_avg = self.square_avg[i] * alpha + grad * grad * (1 - alpha)
                ops.assign(self.square_avg[i], square_avg)
                if group["centered"]:
                    grad_avg = _lerp(self.grad_avg[i], grad, 1 - alpha)
                    ops.assign(self.grad_avg[i], grad_avg)
                    avg = ops.sqrt(square_avg - grad_avg * grad_avg)
                else:
                    avg = ops.sqrt(square_avg)
                avg = avg + eps
                if mom > 0:
                    buf = self.momentum_buffer[i] * mom + grad / avg
                    ops.assign(self.momentum_buffer[i], buf)
                    ops.assign(param, param - buf * lr)
                else:
                    ops.assign(param, param - (grad / avg) * lr)
        self.steps += 1
        return True
