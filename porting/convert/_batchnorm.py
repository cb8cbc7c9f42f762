"""torch BatchNorm1d/2d/3d -> MindSpore cells with the same numbers: momentum translated, guards where MindSpore is
silent.

* :func:`convert_batchnorm` builds the cell: MindSpore momentum = 1 - torch momentum; ``affine=False``
  (MindSpore keeps frozen gamma=1/beta=0); ``track_running_stats=False`` is ``use_batch_statistics=True``;
  ``momentum=None`` (torch's cumulative moving average, which MindSpore has not) is
  :class:`CumulativeBatchNorm`, a small cell that counts batches like torch and works in PyNative and GRAPH mode.
  The cell is put in the torch module's mode (a MindSpore cell starts in eval mode, a torch module in train).
* Every cell it returns refuses to train on one value per channel, as torch does: MindSpore's own BatchNorm
  returns zeros and sets the moving variance to NaN without a word.
* :func:`copy_batchnorm_state` copies weight/bias/running statistics/``num_batches_tracked`` either way,
  after checking that the two layers are configured alike.

Only the layers themselves live here (they need mindspore at class-definition time, so they are built on
first use); torch is imported only by the functions that receive torch modules.
"""

from __future__ import annotations

import functools
from typing import Any

__all__ = ["convert_batchnorm", "copy_batchnorm_state", "batchnorm_classes", "add_batchnorm_parameters"]

_DIMS = {"BatchNorm1d": 1, "BatchNorm2d": 2, "BatchNorm3d": 3}
_INPUT_NDIM = {1: (2, 3), 2: (4,), 3: (5,)}


def _values_per_channel(shape: tuple) -> int:
    size = 1
    for i, d in enumerate(shape):
        if i != 1:
            size *= d
    return size


def add_batchnorm_parameters(cell: Any, num_features: int, affine: bool) -> None:
    """Give ``cell`` BatchNorm's state, named as ``mindspore.nn.BatchNorm2d``'s, plus torch's batch counter.

    gamma/beta (ones/zeros, frozen without ``affine``), moving_mean/moving_variance (zeros/ones) and the
    int64 ``num_batches_tracked`` (0), so the checkpoint rules map them to torch's names.

    Args:
        cell: the ``mindspore.nn.Cell`` being built (in its ``__init__``).
        num_features: channels (C).
        affine: whether gamma and beta are trained.

    Example:
        >>> import mindspore
        >>> cell = mindspore.nn.Cell(); add_batchnorm_parameters(cell, 2, affine=False)
        >>> sorted(cell.parameters_dict()), cell.gamma.requires_grad
        (['beta', 'gamma', 'moving_mean', 'moving_variance', 'num_batches_tracked'], False)
    """
    import mindspore
    from mindspore import Parameter, Tensor, ops

    c = int(num_features)
    cell.gamma = Parameter(ops.ones(c, mindspore.float32), name="gamma", requires_grad=affine)
    cell.beta = Parameter(ops.zeros(c, mindspore.float32), name="beta", requires_grad=affine)
    cell.moving_mean = Parameter(ops.zeros(c, mindspore.float32), name="moving_mean", requires_grad=False)
    cell.moving_variance = Parameter(ops.ones(c, mindspore.float32), name="moving_variance", requires_grad=False)
    cell.num_batches_tracked = Parameter(Tensor(0, mindspore.int64), name="num_batches_tracked", requires_grad=False)


@functools.cache
def batchnorm_classes() -> dict[str, Any]:  # noqa: C901 - classes built on first call: their methods count
    """The MindSpore cells :func:`convert_batchnorm` returns, by name (built on first call).

    ``BatchNorm1d``/``BatchNorm2d``/``BatchNorm3d`` are ``mindspore.nn``'s with torch's one-value-per-channel
    check; ``CumulativeBatchNorm`` is torch's ``momentum=None``.

    Example:
        >>> sorted(batchnorm_classes())
        ['BatchNorm1d', 'BatchNorm2d', 'BatchNorm3d', 'CumulativeBatchNorm']
    """
    import mindspore
    from mindspore import Parameter, Tensor, nn, ops

    def guarded(base: type, dims: int) -> type:
        class Guarded(base):
            __doc__ = (
                f"``mindspore.nn.{base.__name__}`` that raises, as torch does, when training on one value per "
                "channel (MindSpore would return zeros and a NaN moving variance), and counts training batches "
                "in ``num_batches_tracked`` as torch does."
            )

            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                # torch's batch counter, advanced like torch's (MindSpore's BatchNorm keeps none)
                self.num_batches_tracked = Parameter(
                    Tensor(0, mindspore.int64), name="num_batches_tracked", requires_grad=False
                )

            def construct(self, x):
                bn = self.bn2d if dims == 3 else self  # BatchNorm3d keeps its settings in its BatchNorm2d
                uses_batch = bn.use_batch_statistics or (self.training and bn.use_batch_statistics is None)
                if uses_batch and _values_per_channel(x.shape) == 1:
                    raise ValueError(f"Expected more than 1 value per channel when training, got input size {x.shape}")
                if self.training and bn.use_batch_statistics is None:
                    ops.assign(self.num_batches_tracked, self.num_batches_tracked + 1)
                return super().construct(x)

        Guarded.__name__ = Guarded.__qualname__ = base.__name__
        Guarded.__module__ = __name__
        return Guarded

    class CumulativeBatchNorm(nn.Cell):
        """torch BatchNorm with ``momentum=None``: running statistics are the plain average over all batches seen.

        Parameters are named like ``mindspore.nn.BatchNorm2d``'s (gamma, beta, moving_mean, moving_variance) plus
        the int64 ``num_batches_tracked`` counter torch keeps, advanced by every training step. The update is
        written with ``ops.assign`` on parameters, so it happens in PyNative and in GRAPH mode alike (swapping the
        momentum of ``ops.BatchNorm`` per step works in PyNative only; GRAPH mode bakes it in).

        Args:
            num_features: channels (C).
            dims: 1, 2 or 3 (BatchNorm1d / 2d / 3d input ranks).
            eps: added to the variance.
            affine: learnable gamma/beta (False: frozen ones/zeros, as MindSpore represents it).
        """

        torch_rule = "batchnorm"

        def __init__(self, num_features: int, dims: int = 2, eps: float = 1e-5, affine: bool = True) -> None:
            super().__init__()
            self.num_features = int(num_features)
            self.dims = int(dims)
            self.eps = float(eps)
            self.affine = bool(affine)
            add_batchnorm_parameters(self, self.num_features, self.affine)

        def construct(self, x):
            ndim = len(x.shape)
            c = self.num_features
            view = (1, c) + (1,) * (ndim - 2)
            axes = (0,) + tuple(range(2, ndim))
            if self.training:
                n = _values_per_channel(x.shape)
                if n == 1:
                    raise ValueError(f"Expected more than 1 value per channel when training, got input size {x.shape}")
                mean = x.mean(axis=axes, keep_dims=True)
                centred = x - mean
                var = (centred * centred).mean(axis=axes, keep_dims=True)
                y = centred / ops.sqrt(var + self.eps)
                count = self.num_batches_tracked + 1
                factor = 1.0 / ops.cast(count, mindspore.float32)
                batch_mean = ops.stop_gradient(mean.reshape((c,)))
                # running_var takes the unbiased batch variance, as torch (normalising uses the biased one)
                batch_var = ops.stop_gradient(var.reshape((c,))) * (n / (n - 1))
                ops.assign(self.moving_mean, factor * batch_mean + (1.0 - factor) * self.moving_mean)
                ops.assign(self.moving_variance, factor * batch_var + (1.0 - factor) * self.moving_variance)
                ops.assign(self.num_batches_tracked, count)
            else:
                y = (x - self.moving_mean.reshape(view)) / ops.sqrt(self.moving_variance.reshape(view) + self.eps)
            return y * self.gamma.reshape(view) + self.beta.reshape(view)

        def extend_repr(self):
            return (
                f"num_features={self.num_features}, dims={self.dims}, eps={self.eps}, momentum=None, "
                f"affine={self.affine}"
            )

    return {
        "BatchNorm1d": guarded(nn.BatchNorm1d, 1),
        "BatchNorm2d": guarded(nn.BatchNorm2d, 2),
        "BatchNorm3d": guarded(nn.BatchNorm3d, 3),
        "CumulativeBatchNorm": CumulativeBatchNorm,
    }


def _torch_kind(module: Any) -> str:
    import torch

    for name in _DIMS:
        if type(module) is getattr(torch.nn, name):
            return name
    raise TypeError(
        f"convert_batchnorm: expected a torch.nn.BatchNorm1d, BatchNorm2d or BatchNorm3d, got {type(module).__name__}"
        + (
            " (convert SyncBatchNorm with torch.nn.SyncBatchNorm.revert_sync_batchnorm or use "
            "porting.ReferenceSyncBatchNorm)"
            if type(module).__name__ == "SyncBatchNorm"
            else ""
        )
    )


def convert_batchnorm(module: Any):
    """A MindSpore cell equivalent to a torch ``BatchNorm1d/2d/3d``, with its state copied and its mode mirrored.

    Args:
        module: a ``torch.nn.BatchNorm1d``, ``BatchNorm2d`` or ``BatchNorm3d`` (float32).

    Returns:
        A ``mindspore.nn.Cell``: ``mindspore.nn.BatchNorm{1,2,3}d`` (with torch's one-value-per-channel check)
        with momentum ``1 - module.momentum``, or :class:`CumulativeBatchNorm` for ``momentum=None``.
        In train mode if the module is.

    Raises:
        TypeError: not one of those torch layers.
        ValueError: a dtype other than float32 (what the equivalence tests cover; MindSpore's CPU BatchNorm
            refuses bfloat16).

    Example:
        >>> import torch
        >>> cell = convert_batchnorm(torch.nn.BatchNorm2d(4, momentum=0.2))
        >>> round(1 - cell.bn_train.momentum, 6), cell.training
        (0.8, True)
    """
    import torch

    kind = _torch_kind(module)
    dims = _DIMS[kind]
    for name, tensor in list(module.named_parameters()) + list(module.named_buffers()):
        if tensor.is_floating_point() and tensor.dtype != torch.float32:
            raise ValueError(
                f"convert_batchnorm: {name} is {tensor.dtype}; only float32 BatchNorm is converted "
                "(MindSpore's CPU BatchNorm refuses bfloat16; cast the module with .float())"
            )
    classes = batchnorm_classes()
    if not module.track_running_stats:
        cell = classes[kind](module.num_features, eps=module.eps, affine=module.affine, use_batch_statistics=True)
    elif module.momentum is None:
        cell = classes["CumulativeBatchNorm"](module.num_features, dims=dims, eps=module.eps, affine=module.affine)
    else:
        cell = classes[kind](
            module.num_features, eps=module.eps, momentum=1.0 - float(module.momentum), affine=module.affine
        )
    copy_batchnorm_state(module, cell)
    cell.set_train(module.training)
    return cell


def _torch_config(module: Any) -> dict:
    return {
        "num_features": module.num_features,
        "eps": float(module.eps),
        "affine": bool(module.affine),
        "track_running_stats": bool(module.track_running_stats),
        # torch ignores momentum without running statistics
        "momentum": None if (module.momentum is None or not module.track_running_stats) else float(module.momentum),
    }


def _ms_config(cell: Any) -> dict:
    bn = getattr(cell, "bn2d", cell)
    if isinstance(cell, batchnorm_classes()["CumulativeBatchNorm"]):
        return {
            "num_features": cell.num_features,
            "eps": cell.eps,
            "affine": bool(cell.gamma.requires_grad),
            "track_running_stats": True,
            "momentum": None,
        }
    if not hasattr(bn, "bn_train") or not hasattr(bn, "moving_mean"):
        raise TypeError(f"copy_batchnorm_state: expected a MindSpore BatchNorm cell, got {type(cell).__name__}")
    track = bn.use_batch_statistics is not True
    return {
        "num_features": int(bn.moving_mean.shape[0]),
        "eps": float(bn.eps),
        "affine": bool(bn.gamma.requires_grad),
        "track_running_stats": track,
        # the op's momentum is the fraction of the batch mixed in: torch's convention
        "momentum": float(bn.bn_train.momentum) if track else None,
    }


def _check_same_config(t: dict, m: dict, torch_side: str) -> None:
    bad = []
    for key in t:
        a, b = t[key], m[key]
        same = (a is None and b is None) or (
            a is not None and b is not None and abs(float(a) - float(b)) <= 1e-6 * max(1.0, abs(float(a)))
        )
        if not same:
            bad.append(
                f"{key}: torch {a!r}, MindSpore {b!r}"
                + (" (torch momentum m is MindSpore momentum 1 - m)" if key == "momentum" else "")
            )
    if bad:
        raise ValueError(
            f"copy_batchnorm_state: the two layers are configured differently ({torch_side}): " + "; ".join(bad)
        )


def copy_batchnorm_state(src: Any, dst: Any) -> None:
    """Copy BatchNorm state between a torch layer and a MindSpore cell, either way, after checking their config.

    weight/bias <-> gamma/beta, running_mean/running_var <-> moving_mean/moving_variance, and
    ``num_batches_tracked`` (carried on the MindSpore cell as an extra int64 parameter; a MindSpore cell that
    carries none leaves the torch counter as it is). The torch side is updated in place (its tensors keep
    their identity); the MindSpore side through ``set_data``.

    Args:
        src: a torch ``BatchNorm1d/2d/3d`` or a MindSpore BatchNorm cell.
        dst: the other framework's layer.

    Raises:
        TypeError: not a torch BatchNorm and a MindSpore BatchNorm cell.
        ValueError: num_features, eps, momentum (translated), affine or track_running_stats differ (all listed).
        porting.CheckpointMismatchError: the state does not fit (shapes).

    Example:
        >>> import torch
        >>> t = torch.nn.BatchNorm1d(3)
        >>> cell = convert_batchnorm(t)
        >>> t.running_mean.fill_(2.0) is not None
        True
        >>> copy_batchnorm_state(t, cell); cell.moving_mean.asnumpy().tolist()
        [2.0, 2.0, 2.0]
    """
    from porting.convert._checkpoint import load_torch_state_dict, torch_state_dict

    src_is_torch = type(src).__module__.startswith("torch")
    dst_is_torch = type(dst).__module__.startswith("torch")
    if src_is_torch == dst_is_torch:
        raise TypeError(
            "copy_batchnorm_state: expected one torch BatchNorm and one MindSpore BatchNorm cell, got "
            f"{type(src).__name__} and {type(dst).__name__}"
        )
    module, cell = (src, dst) if src_is_torch else (dst, src)
    _torch_kind(module)
    _check_same_config(
        _torch_config(module), _ms_config(cell), "torch -> MindSpore" if src_is_torch else "MindSpore -> torch"
    )
    if src_is_torch:
        load_torch_state_dict(cell, module.state_dict(), strict=True)
        return
    import torch

    own = module.state_dict()
    # a cell without a counter of its own leaves torch's as it is
    state = torch_state_dict(
        cell, num_batches_tracked=(int(own["num_batches_tracked"]) if "num_batches_tracked" in own else None)
    )
    with torch.no_grad():
        module.load_state_dict(state, strict=True)
