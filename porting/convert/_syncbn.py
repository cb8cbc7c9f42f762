"""Reference SyncBatchNorm for torch and MindSpore: the semantics of synchronised BatchNorm with plain collectives.

Neither framework's SyncBatchNorm kernel runs on CPU (torch's needs CUDA, MindSpore's Ascend), so checking a
data-parallel port on a CPU cluster needs a SyncBN made of collectives that do run there:

* :class:`ReferenceSyncBatchNorm` (torch): all-reduces ``[Σ(x-s), Σ(x-s)², n]`` per channel over a process group
  with the differentiable ``torch.distributed.nn.functional.all_reduce`` (gloo works);
* :class:`ReferenceSyncBatchNormCell` (MindSpore): the same with ``ops.AllReduce`` (works under ``msrun`` on CPU).

``s`` is the running mean (identical on every rank, not differentiated): shifting the sums keeps
E[x²]-E[x]² from cancelling when |mean| >> std. Outputs, gradients and running statistics then equal BatchNorm
over the concatenated global batch (equal or unequal per-rank batches). Without a process group (or with one
process) both are plain BatchNorm. Eval mode uses the running statistics, no communication, as torch's SyncBN.
State names are BatchNorm's (torch: weight/bias/running_mean/running_var/num_batches_tracked; MindSpore:
gamma/beta/moving_mean/moving_variance/num_batches_tracked), so checkpoints load either way.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

__all__ = ["ReferenceSyncBatchNorm", "ReferenceSyncBatchNormCell"]


@functools.cache
def _torch_class() -> type:  # noqa: C901 - a class built on first call (torch imported late): its methods count
    import torch
    import torch.distributed as dist

    class _ReferenceSyncBatchNorm(torch.nn.modules.batchnorm._BatchNorm):
        def __init__(
            self,
            num_features: int,
            eps: float = 1e-5,
            momentum: float | None = 0.1,
            affine: bool = True,
            track_running_stats: bool = True,
            process_group: Any = None,
            device=None,
            dtype=None,
        ) -> None:
            super().__init__(num_features, eps, momentum, affine, track_running_stats, device=device, dtype=dtype)
            self.process_group = process_group

        def _check_input_dim(self, input):
            if input.dim() < 2:
                raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

        def _world(self) -> int:
            if not (dist.is_available() and dist.is_initialized()):
                return 1
            return dist.get_world_size(self.process_group)

        def forward(self, x):
            self._check_input_dim(x)
            use_batch = self.training or not self.track_running_stats
            if not use_batch:
                return torch.nn.functional.batch_norm(
                    x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
                )
            c = self.num_features
            dims = [0] + list(range(2, x.dim()))
            view = [1, c] + [1] * (x.dim() - 2)
            # _BatchNorm registers the running buffers exactly when track_running_stats is set
            stats = self.running_mean if self.track_running_stats else None
            shift = (x.new_zeros(c) if stats is None else stats.detach()).to(x.dtype)
            xs = x - shift.view(view)
            local_n = x.numel() // c
            stats = torch.stack([xs.sum(dims), (xs * xs).sum(dims), x.new_full((c,), float(local_n))])
            if self._world() > 1:
                from torch.distributed.nn.functional import all_reduce

                stats = all_reduce(stats, op=dist.ReduceOp.SUM, group=self.process_group)
            s1, s2, n = stats[0], stats[1], stats[2]
            count = int(round(float(n[0].detach())))
            if count <= 1:
                raise ValueError(
                    f"Expected more than 1 value per channel when training, got {count} over all ranks "
                    f"(local input size {tuple(x.shape)})"
                )
            mean_s = s1 / n
            var = s2 / n - mean_s * mean_s  # biased, for normalising
            mean = mean_s + shift
            y = (x - mean.view(view)) * torch.rsqrt(var.view(view) + self.eps)
            if self.affine:
                y = y * self.weight.view(view) + self.bias.view(view)
            if self.training and self.track_running_stats:
                tracked, running_mean, running_var = self.num_batches_tracked, self.running_mean, self.running_var
                assert tracked is not None and running_mean is not None and running_var is not None  # see above
                with torch.no_grad():
                    tracked.add_(1)
                    factor = (1.0 / float(tracked)) if self.momentum is None else self.momentum
                    running_mean.mul_(1 - factor).add_(mean.detach() * factor)
                    running_var.mul_(1 - factor).add_(var.detach() * (count / (count - 1)) * factor)
            return y

    _ReferenceSyncBatchNorm.__name__ = _ReferenceSyncBatchNorm.__qualname__ = "ReferenceSyncBatchNorm"
    _ReferenceSyncBatchNorm.__module__ = __name__
    return _ReferenceSyncBatchNorm


class _LazyClass(type):
    """Metaclass: the real class is built on first use, so ``import porting`` stays free of torch/mindspore."""

    _real: Callable[[], type]  # each class of this metaclass builds its real class (a staticmethod)

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:  # an instance of the real class (torch's or MindSpore's)
        return cls._real()(*args, **kwargs)

    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, cls._real())


class ReferenceSyncBatchNorm(metaclass=_LazyClass):
    """torch SyncBatchNorm made of gloo-capable collectives: BatchNorm over the batch of every rank in the group.

    Constructor arguments are ``torch.nn.SyncBatchNorm``'s. Inputs of any rank >= 2 (N, C, *). The module is a
    ``torch.nn.modules.batchnorm._BatchNorm`` (``isinstance(m, porting.ReferenceSyncBatchNorm)`` works).
    In training, each step all-reduces ``[Σ(x-s), Σ(x-s)², n]`` per channel (``s`` = running mean) with the
    differentiable ``torch.distributed.nn.functional.all_reduce``, so ``dx`` is the global batch's gradient;
    weight/bias gradients are each rank's share (sum them across ranks, as DDP does). Without an initialised
    process group it is plain BatchNorm.

    Args:
        num_features: C.
        eps: added to the variance.
        momentum: torch's convention (fraction of the batch mixed in); ``None``: cumulative average.
        affine: learnable weight and bias.
        track_running_stats: keep running statistics (else batch statistics in eval too).
        process_group: the group to synchronise over (default: the whole world).

    Raises:
        ValueError: one value per channel over all ranks in training (as torch).

    Example:
        >>> import torch
        >>> m = ReferenceSyncBatchNorm(3)   # no process group: plain BatchNorm
        >>> x = torch.randn(4, 3, 2, 2)
        >>> torch.allclose(m(x), torch.nn.BatchNorm2d(3)(x), atol=1e-6)
        True
    """

    @staticmethod
    def _real() -> type:
        return _torch_class()

    if TYPE_CHECKING:  # an instance is the real class's, made by the metaclass: any arguments, any attribute

        def __init__(self, *args: Any, **kwargs: Any) -> None: ...
        def __getattr__(self, name: str) -> Any: ...
        def __call__(self, *args: Any, **kwargs: Any) -> Any: ...


@functools.cache
def _ms_class() -> type:  # noqa: C901 - a class built on first call (MindSpore imported late): its methods count
    from mindspore import nn, ops

    from porting.convert._batchnorm import add_batchnorm_parameters

    class _ReferenceSyncBatchNormCell(nn.Cell):
        torch_rule = "batchnorm"

        def __init__(
            self,
            num_features: int,
            eps: float = 1e-5,
            momentum: float = 0.9,
            affine: bool = True,
            use_batch_statistics: bool | None = None,
            group: str | None = None,
        ) -> None:
            super().__init__()
            if not 0.0 <= momentum <= 1.0:
                raise ValueError(f"ReferenceSyncBatchNormCell: momentum must be in [0, 1], got {momentum}")
            c = int(num_features)
            self.num_features = c
            self.eps = float(eps)
            self.use_batch_statistics = use_batch_statistics
            # the fraction of each batch mixed into the running statistics (torch's momentum)
            self.mixed_momentum = 1.0 - float(momentum)
            add_batchnorm_parameters(self, c, affine)
            self.world = _ms_world_size(group)
            if self.world > 1:
                from mindspore.communication import GlobalComm

                self.all_reduce = ops.AllReduce(ops.ReduceOp.SUM, group or GlobalComm.WORLD_COMM_GROUP)
            else:
                self.all_reduce = None

        def construct(self, x):
            ndim = len(x.shape)
            c = self.num_features
            view = (1, c) + (1,) * (ndim - 2)
            axes = (0,) + tuple(range(2, ndim))
            use_batch = self.use_batch_statistics or (self.training and self.use_batch_statistics is None)
            if not use_batch:
                y = (x - self.moving_mean.reshape(view)) / ops.sqrt(self.moving_variance.reshape(view) + self.eps)
                return y * self.gamma.reshape(view) + self.beta.reshape(view)
            tracking = self.use_batch_statistics is None
            shift = ops.stop_gradient(self.moving_mean) if tracking else ops.zeros(c, x.dtype)
            xs = x - shift.reshape(view)
            local_n = 1
            for i in range(ndim):
                if i != 1:
                    local_n = local_n * x.shape[i]
            # Shapes are static: alone, one value per channel is known here. With more ranks every one holds
            # >= 1 value, so the global count is >= 2 (torch's reference checks the all-reduced count).
            if self.world == 1 and local_n == 1:
                raise ValueError(f"Expected more than 1 value per channel when training, got input size {x.shape}")
            stats = ops.stack([xs.sum(axis=axes), (xs * xs).sum(axis=axes), ops.full((c,), local_n, dtype=x.dtype)])
            if self.world > 1:
                stats = self.all_reduce(stats)
            s1, s2, n = stats[0], stats[1], stats[2]
            mean_s = s1 / n
            var = s2 / n - mean_s * mean_s
            mean = mean_s + shift
            y = (x - mean.reshape(view)) / ops.sqrt(var.reshape(view) + self.eps)
            y = y * self.gamma.reshape(view) + self.beta.reshape(view)
            if self.training and tracking:
                count = ops.stop_gradient(n)
                unbiased = ops.stop_gradient(var) * count / (count - 1)
                m = self.mixed_momentum
                ops.assign(self.moving_mean, (1.0 - m) * self.moving_mean + m * ops.stop_gradient(mean))
                ops.assign(self.moving_variance, (1.0 - m) * self.moving_variance + m * unbiased)
                ops.assign(self.num_batches_tracked, self.num_batches_tracked + 1)
            return y

    _ReferenceSyncBatchNormCell.__name__ = _ReferenceSyncBatchNormCell.__qualname__ = "ReferenceSyncBatchNormCell"
    _ReferenceSyncBatchNormCell.__module__ = __name__
    return _ReferenceSyncBatchNormCell


def _ms_world_size(group: str | None) -> int:
    """Ranks in ``group`` if MindSpore's communication is initialised, else 1 (plain BatchNorm)."""
    from mindspore.communication import GlobalComm, get_group_size

    if not GlobalComm.INITED:  # a single process: plain BatchNorm
        return 1
    return int(get_group_size(group) if group else get_group_size())  # (a bad group name raises)


class ReferenceSyncBatchNormCell(metaclass=_LazyClass):
    """MindSpore SyncBatchNorm from ``ops.AllReduce`` (runs under ``msrun`` on CPU): BatchNorm over every rank's batch.

    Parameters as ``mindspore.nn.BatchNorm2d`` (gamma, beta, moving_mean, moving_variance) plus torch's
    ``num_batches_tracked``; ``momentum`` in MindSpore's convention (0.9 == torch's 0.1). Inputs (N, C, *).
    Communication must be initialised (``mindspore.communication.init()``) before construction to synchronise;
    otherwise it is plain BatchNorm. Gradients of gamma/beta are each rank's share (sum them across ranks).
    One value per channel in training raises when running alone, as torch; with two or more ranks the global
    count is at least the number of ranks (each holds a value), so it cannot be one.

    Args:
        num_features: C.
        eps: added to the variance.
        momentum: MindSpore's convention (1 - torch's).
        affine: learnable gamma and beta.
        use_batch_statistics: as ``mindspore.nn.BatchNorm2d`` (True == torch's track_running_stats=False).
        group: communication group (default: the world group).

    Raises:
        ValueError: momentum outside [0, 1]; training on one value per channel in a single process.

    Example:
        >>> import numpy as np, mindspore
        >>> cell = ReferenceSyncBatchNormCell(3)   # no communication initialised: plain BatchNorm
        >>> cell.set_train(True) is cell
        True
        >>> cell(mindspore.Tensor(np.ones((2, 3, 2), np.float32))).shape
        (2, 3, 2)
    """

    @staticmethod
    def _real() -> type:
        return _ms_class()

    if TYPE_CHECKING:  # an instance is the real class's, made by the metaclass: any arguments, any attribute

        def __init__(self, *args: Any, **kwargs: Any) -> None: ...
        def __getattr__(self, name: str) -> Any: ...
        def __call__(self, *args: Any, **kwargs: Any) -> Any: ...
