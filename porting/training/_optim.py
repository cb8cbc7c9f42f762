"""``convert_optimizer``: a ``torch.optim`` optimizer's hyperparameters and parameter groups, on MindSpore parameters.

The result applies torch's exact update formulas (``porting.training._ms_optimizers``), so the numbers match
instead of MindSpore's own optimizers' (different nesterov, weight-decay placement and Adam eps placement).
Parameters are matched by name through the checkpoint rename rules (``porting.convert._checkpoint``), never by position,
when a cell and its torch module are given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["OPTIMIZER_RULES", "convert_optimizer"]

# Keys torch's optimizers keep in a group but that choose an implementation of the same formula, not a formula:
# the converted optimizer has one implementation. 'differentiable' changes what autograd sees and is refused.
_IMPLEMENTATION_KEYS = ("foreach", "fused", "capturable")
# Keys a torch LR scheduler stores in the groups; convert_lr_scheduler reads them from the torch optimizer.
_SCHEDULER_KEYS = ("initial_lr", "max_lr", "min_lr", "max_momentum", "base_momentum")

# {torch class name: (MindSpore cell in porting.training._ms_optimizers, group keys passed through,
#                     {key: (value, why)} refused)}
OPTIMIZER_RULES: dict[str, tuple[str, tuple[str, ...], dict[str, tuple[Any, str]]]] = {
    "SGD": ("TorchSGD", ("lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize"), {}),
    "Adam": ("TorchAdam", ("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize", "decoupled_weight_decay"), {}),
    "AdamW": ("TorchAdam", ("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize", "decoupled_weight_decay"), {}),
    "RMSprop": ("TorchRMSprop", ("lr", "alpha", "eps", "weight_decay", "momentum", "centered", "maximize"), {}),
}
_REFUSED_ALWAYS = {"differentiable": (True, "a differentiable optimizer step has no MindSpore counterpart")}


def _is_tensor(value: Any) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "item")


def _scalar(value: Any, where: str) -> Any:
    # torch allows a tensor lr / betas; a 0-d one becomes the python number torch would use.
    if _is_tensor(value):
        if value.numel() != 1:
            raise ValueError(
                f"{where}: expected a number or a one-element tensor, got a tensor of shape {tuple(value.shape)}"
            )
        return value.item()
    if isinstance(value, tuple):
        return tuple(_scalar(v, where) for v in value)
    return value


def _ms_params_by_name(torch_optimizer, cell, torch_module, alignment=None) -> list[list[Any]]:
    from porting.convert._checkpoint import torch_to_mindspore_names  # the one place the rename rules live

    names = torch_to_mindspore_names(torch_module, cell, alignment=alignment)
    torch_names = {id(p): n for n, p in torch_module.named_parameters(remove_duplicate=False)}
    ms_params = dict(cell.parameters_and_names())
    out = []
    for g, group in enumerate(torch_optimizer.param_groups):
        row = []
        for i, p in enumerate(group["params"]):
            where = f"param_groups[{g}]['params'][{i}] (shape {tuple(p.shape)})"
            if id(p) not in torch_names:
                raise ValueError(
                    f"{where} is not a parameter of the torch module {type(torch_module).__name__}: "
                    "pass the module the optimizer was built on"
                )
            tname = torch_names[id(p)]
            if tname not in names:
                raise KeyError(
                    f"{where}: torch parameter {tname!r} has no counterpart in the cell "
                    f"{type(cell).__name__} "
                    + (
                        "in the alignment"
                        if alignment is not None
                        else "under the checkpoint rules (porting.convert._checkpoint); "
                        "pass alignment=porting.align(torch_module, cell)"
                    )
                )
            mname = names[tname]
            if mname not in ms_params:
                raise KeyError(
                    f"{where}: torch parameter {tname!r} maps to {mname!r}, which the cell "
                    f"{type(cell).__name__} does not have"
                )
            row.append(_checked(ms_params[mname], p, f"{where}, torch {tname!r} -> MindSpore {mname!r}"))
        out.append(row)
    return out


def _ms_params_by_shape(torch_optimizer, cell) -> list[list[Any]]:
    """Without ``torch_module``: pair by shape, when that settles every parameter (each shape once on each side).

    Same-shaped parameters cannot be told apart without names: neither the optimizer's order nor the cell's
    proves which is which (two ``Linear(64, 64)`` defined in another order have the same shape sequence), so
    those are refused with the way out (``torch_module=``, and ``alignment=`` for names that differ).
    """
    from porting.convert._checkpoint import _plan

    ms_params = [p for p in cell.trainable_params()]
    layout_of = {item.ms: item.entry.layout for item in _plan(cell)[0] if item.entry is not None and item.entry.layout}

    def torch_shape(p):
        shape = tuple(p.shape)
        layout = layout_of.get(p.name)
        return shape[: layout[1]] + shape[layout[1] + 1 :] if layout else shape

    t_params = [
        (g, i, p) for g, group in enumerate(torch_optimizer.param_groups) for i, p in enumerate(group["params"])
    ]
    t_shapes = [tuple(p.shape) for _, _, p in t_params]
    m_shapes = [torch_shape(p) for p in ms_params]
    where = "convert_optimizer(torch_optimizer, cell) without torch_module"
    if sorted(t_shapes) != sorted(m_shapes):
        only_t = sorted({s for s in t_shapes if t_shapes.count(s) > m_shapes.count(s)})
        raise ValueError(
            f"{where}: the optimizer's {len(t_shapes)} parameters and the cell's {len(m_shapes)} "
            f"trainable ones do not have the same shapes (e.g. torch has more of {only_t[:3]}); pass "
            "torch_module= (and alignment= for a port whose names differ)"
        )
    repeated = sorted({s for s in t_shapes if t_shapes.count(s) > 1})
    if repeated:
        raise ValueError(
            f"{where}: {sum(t_shapes.count(s) for s in repeated)} parameters share shapes "
            f"(e.g. {repeated[:3]}), so shapes cannot tell which MindSpore parameter each is (the "
            "optimizer's order and the cell's prove nothing); pass torch_module= (and alignment= for a "
            "port whose names differ)"
        )
    by_shape = dict(zip(m_shapes, ms_params, strict=True))
    chosen = [by_shape[s] for s in t_shapes]
    out: list[list[Any]] = [[] for _ in torch_optimizer.param_groups]
    for (g, i, p), m in zip(t_params, chosen, strict=True):
        out[g].append(
            _checked(
                m, p, f"param_groups[{g}]['params'][{i}] (MindSpore {m.name!r}, matched by shape)", shape=torch_shape(m)
            )
        )
    return out


def _ms_params_in_order(torch_optimizer, params: Sequence[Any]) -> list[list[Any]]:
    params = list(params)
    total = sum(len(g["params"]) for g in torch_optimizer.param_groups)
    if len(params) != total:
        raise ValueError(
            f"expected {total} MindSpore parameters (the torch optimizer's, group by group), got {len(params)}"
        )
    out, k = [], 0
    for g, group in enumerate(torch_optimizer.param_groups):
        row = []
        for i, p in enumerate(group["params"]):
            row.append(_checked(params[k], p, f"param_groups[{g}]['params'][{i}] (MindSpore parameter {k})"))
            k += 1
        out.append(row)
    return out


def _checked(ms_param: Any, torch_param: Any, where: str, shape: tuple | None = None) -> Any:
    import mindspore as ms

    if not isinstance(ms_param, ms.Parameter):
        raise TypeError(f"{where}: expected a mindspore.Parameter, got {type(ms_param).__name__}")
    got = tuple(ms_param.shape) if shape is None else shape
    if got != tuple(torch_param.shape):
        raise ValueError(f"{where}: shape {got} on the MindSpore side, {tuple(torch_param.shape)} in torch")
    if not torch_param.requires_grad:
        # torch skips a parameter whose .grad stays None (no decay, no momentum); MindSpore's value_and_grad
        # over the optimizer's parameters gives it a zero gradient, which weight decay and momentum still move
        raise ValueError(
            f"{where}: the torch parameter has requires_grad=False, so torch never updates it; the "
            "MindSpore optimizer would (weight decay, momentum on a zero gradient): leave frozen "
            "parameters out of the torch optimizer"
        )
    return ms_param


def _ms_groups(torch_optimizer: Any, cell_or_params: Any, torch_module: Any, alignment: Any) -> list:
    """The MindSpore parameters of each torch group: by name, by shape or in the order given."""
    import mindspore as ms

    if isinstance(cell_or_params, ms.nn.Cell):
        if torch_module is not None:
            return _ms_params_by_name(torch_optimizer, cell_or_params, torch_module, alignment)
        if alignment is not None:
            raise ValueError(
                "alignment= pairs names: pass torch_module= too (the module the optimizer was "
                "built on names its parameters)"
            )
        return _ms_params_by_shape(torch_optimizer, cell_or_params)
    if isinstance(cell_or_params, (str, bytes)) or not isinstance(cell_or_params, Sequence):
        raise TypeError(
            f"cell_or_params: expected a mindspore.nn.Cell or a sequence of mindspore.Parameter, "
            f"got {type(cell_or_params).__name__}"
        )
    return _ms_params_in_order(torch_optimizer, cell_or_params)


def _group_settings(group: Mapping, g: int, name: str, keys: tuple[str, ...], refused: dict, defaults: Mapping) -> dict:
    """A torch param group's settings for the MindSpore group (``params`` aside), by the optimizer's rule."""
    out = {}
    for key, value in group.items():
        where = f"param_groups[{g}][{key!r}]"
        if key == "params" or key in _SCHEDULER_KEYS or key in _IMPLEMENTATION_KEYS:
            continue
        if key in refused and value == refused[key][0]:
            raise ValueError(f"{where} = {value!r} is refused: {refused[key][1]}")
        if key in refused:
            continue
        if key in keys:
            out[key] = _scalar(value, where)
        elif key in defaults:
            # a hyperparameter this torch version reads that the rule does not know: never dropped silently
            raise ValueError(
                f"{where} = {value!r}: torch's {name} reads this setting but the conversion rule "
                f"(porting.training._optim.OPTIMIZER_RULES[{name!r}]) has none; it cannot be mirrored"
            )
        else:
            # A key the torch optimizer does not read (user metadata, e.g. a group name): carried over as is.
            out[key] = value
    return out


def convert_optimizer(torch_optimizer: Any, cell_or_params: Any, *, torch_module: Any = None, alignment: Any = None):
    """Build the MindSpore optimizer that makes the same steps as ``torch_optimizer``.

    Hyperparameters are copied group by group (per-group ``lr``, ``weight_decay``, momentum, betas...,
    e.g. YOLOv5's three groups), the current ``lr`` of each group included (a torch scheduler may have
    changed it already). Groups keep torch's order; the MindSpore optimizer's ``parameters`` are in that
    order: build ``mindspore.value_and_grad(..., weights=opt.parameters)`` from it.

    Args:
        torch_optimizer: a ``torch.optim.SGD``, ``Adam``, ``AdamW`` or ``RMSprop`` that has not stepped yet.
        cell_or_params: the MindSpore ``nn.Cell`` holding the converted weights, or a sequence of
            ``mindspore.Parameter`` in the torch optimizer's parameter order (group by group). With a Cell and
            ``torch_module``, parameters are matched by name (the checkpoint rules, or ``alignment``); with a
            Cell alone, by shape, when that is unambiguous (every shape once on each side); same-shaped
            parameters are refused then (no order proves which is which): pass ``torch_module``.
        torch_module: the torch module the optimizer's parameters belong to (names them).
        alignment: with ``torch_module``, an :class:`~porting.Alignment` (or a saved one's path) for a port
            whose names differ from torch's.

    Returns:
        A ``porting.training._ms_optimizers`` ``TorchSGD`` / ``TorchAdam`` / ``TorchRMSprop``
        (a ``mindspore.experimental.optim.Optimizer``).

    Raises:
        TypeError: an optimizer class without a rule, or a parameter that is not a ``mindspore.Parameter``.
        ValueError: the optimizer has state (it stepped), a refused setting or one torch reads that no rule
            covers (named with its group), a count or shape mismatch, a parameter not in ``torch_module``.
        KeyError: a torch parameter without a MindSpore name, or a name the cell lacks.

    Example:
        >>> import torch, mindspore as ms, numpy as np
        >>> w = torch.nn.Parameter(torch.ones(2))
        >>> t = torch.optim.SGD([w], lr=0.1, momentum=0.9, nesterov=True)
        >>> m = convert_optimizer(t, [ms.Parameter(ms.Tensor(np.ones(2, np.float32)), name="w")])
        >>> type(m).__name__, m.param_groups[0]["nesterov"]
        ('TorchSGD', True)
    """
    from porting.training import _ms_optimizers

    cls = type(torch_optimizer)
    name = cls.__name__
    if not cls.__module__.startswith("torch.optim") or name not in OPTIMIZER_RULES:
        raise TypeError(
            f"no conversion rule for optimizer {cls.__module__}.{name}; supported: "
            f"{', '.join('torch.optim.' + n for n in OPTIMIZER_RULES)}"
        )
    if any(torch_optimizer.state.values()):
        raise ValueError(
            f"the torch {name} has already stepped (it holds state for "
            f"{sum(1 for v in torch_optimizer.state.values() if v)} parameters); convert it before "
            "the first optimizer.step() so both sides start from the same state"
        )
    target, keys, refused = OPTIMIZER_RULES[name]
    refused = {**_REFUSED_ALWAYS, **refused}

    from porting.convert._align import as_alignment

    alignment = as_alignment(alignment, "convert_optimizer")
    ms_groups = _ms_groups(torch_optimizer, cell_or_params, torch_module, alignment)
    seen: dict[int, str] = {}
    groups = []
    for g, (group, ms_params) in enumerate(zip(torch_optimizer.param_groups, ms_groups, strict=True)):
        for k, p in enumerate(ms_params):
            if id(p) in seen:
                raise ValueError(
                    f"param_groups[{g}]['params'][{k}]: MindSpore parameter {p.name!r} already used by {seen[id(p)]}"
                )
            seen[id(p)] = f"param_groups[{g}]"
        out = {"params": ms_params, **_group_settings(group, g, name, keys, refused, torch_optimizer.defaults)}
        if name == "AdamW":
            out.setdefault("decoupled_weight_decay", True)  # torch versions whose AdamW keeps no such key
        groups.append(out)
    defaults = {k: _scalar(v, f"defaults[{k!r}]") for k, v in torch_optimizer.defaults.items() if k in keys}
    if name == "AdamW":
        defaults.setdefault("decoupled_weight_decay", True)
    return getattr(_ms_optimizers, target)(groups, **defaults)
