"""porting.convert_batchnorm / copy_batchnorm_state against torch's real BatchNorm1d/2d/3d, compared on state.

Every training step compares outputs, gradients (input, weight, bias) AND running statistics: a momentum
left unflipped gives right outputs and wrong statistics, which only the statistics comparison catches.

Tolerances (float32). Measured here over every case and variant below (inputs of mean 3 / std 2, PyNative):
outputs and dx <= 1.1e-6, running stats <= 9.5e-7, dgamma/dbeta <= 4.8e-6 (shared/notes, unit-scale inputs:
1e-6, 5e-7, 5e-7, 4e-6). The two kernels reduce over the N*spatial values per channel in different orders, so
each side carries a few float32 ulps of the reduced quantity; the error in the variance grows with |mean|/std
(cancellation), so the atol is scaled by ``scale = 1 + |mean|/std`` of the input (2.5 here):
* outputs and dx (O(1) values): atol 2e-6 * scale = 5e-6 (~5x the worst measured), rtol 1e-5;
* running stats (O(|mean|) and O(std^2)): rtol 1e-5, atol 2e-6 * scale (~5x);
* dgamma/dbeta, sums over N*spatial terms of O(1): atol 1e-5 * scale = 2.5e-5 (~5x), rtol 1e-5.
The linear scaling holds across magnitudes (measured the same way, every case and variant, 5 training steps):
mean 0 / std 1: outputs 4.8e-7, dx 9.5e-7, dgamma/dbeta 3.3e-6; mean 100 / std 1: 2.8e-5, 2.4e-5, 2.2e-4;
mean 1e4 / std 1: 2.8e-3, 3.3e-3, 1.6e-2 - each 5-7x below its scaled atol; running stats stay within 2.2e-6
relative (rtol 1e-5) at every mean.
An unflipped momentum misses the running stats by > 1 (test below): far outside any of these.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("mindspore")
import mindspore as ms
import torch

import porting
from porting import assert_equivalent, compare, convert_batchnorm, copy_batchnorm_state

STEPS = 5

CASES: list[tuple[str, tuple[int, ...]]] = [  # (torch class, input shape)
    ("BatchNorm1d", (8, 3)),
    ("BatchNorm1d", (6, 3, 5)),
    ("BatchNorm2d", (4, 3, 5, 5)),
    ("BatchNorm3d", (3, 3, 2, 4, 4)),
]
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "momentum0.3": {"momentum": 0.3},
    "momentum_None": {"momentum": None},
    "affine_False": {"affine": False},
    "no_running_stats": {"track_running_stats": False},
}


@pytest.fixture
def ms_mode(request, tmp_path, monkeypatch):
    """Run in the requested MindSpore mode and restore the caller's afterwards (GRAPH writes IR next to cwd)."""
    monkeypatch.chdir(tmp_path)
    old = ms.get_context("mode")
    ms.set_context(mode=request.param)
    yield request.param
    ms.set_context(mode=old)


def _stats(cell):
    bn = getattr(cell, "bn2d", cell)
    return {"running_mean": bn.moving_mean, "running_var": bn.moving_variance}


def _tolerances(mean: float, std: float) -> dict:
    scale = 1.0 + abs(mean) / std
    return {
        "out": dict(rtol=1e-5, atol=2e-6 * scale),
        "stats": dict(rtol=1e-5, atol=2e-6 * scale),
        "dparam": dict(rtol=1e-5, atol=1e-5 * scale),
    }


def _train_and_compare(module, cell, shape, *, mean=3.0, std=2.0, seed=0):
    """K training steps: outputs, dx, dgamma/dbeta and running stats compared after every step; then eval."""
    rng = np.random.default_rng(seed)
    tol = _tolerances(mean, std)
    weights = [p for p in cell.trainable_params()]
    affine = bool(weights)

    def loss(x, g):
        y = cell(x)
        return (y * g).sum(), y

    grad_fn = ms.value_and_grad(loss, grad_position=0, weights=weights if affine else None, has_aux=True)
    for step in range(STEPS):
        x = (rng.standard_normal(shape) * std + mean).astype(np.float32)
        g = rng.standard_normal(shape).astype(np.float32)  # a cotangent that weighs every output differently
        xt = torch.from_numpy(x).requires_grad_(True)
        yt = module(xt)
        (yt * torch.from_numpy(g)).sum().backward()
        if affine:
            (_, y), (dx, (dgamma, dbeta)) = grad_fn(ms.Tensor(x), ms.Tensor(g))
        else:
            (_, y), dx = grad_fn(ms.Tensor(x), ms.Tensor(g))
        assert_equivalent(y, yt.detach(), **tol["out"])
        assert_equivalent(dx, xt.grad, **tol["out"])
        if affine:
            assert_equivalent(
                {"weight": dgamma, "bias": dbeta},
                {"weight": module.weight.grad, "bias": module.bias.grad},
                **tol["dparam"],
            )
            module.weight.grad = module.bias.grad = None
        if module.track_running_stats:
            expected = {"running_mean": module.running_mean, "running_var": module.running_var}
            assert_equivalent(_stats(cell), expected, **tol["stats"])
            # every cell convert_batchnorm returns carries torch's counter and advances it as torch does
            assert int(cell.num_batches_tracked.asnumpy()) == int(module.num_batches_tracked) == step + 1
    module.eval()
    cell.set_train(False)
    x = (rng.standard_normal(shape) * std + mean).astype(np.float32)
    assert_equivalent(cell(ms.Tensor(x)), module(torch.from_numpy(x)).detach(), **tol["out"])


def _forward_steps(module, cell, shape, *, mean=3.0, std=2.0, seed=1):
    """K training forwards (no gradient): outputs and running stats every step."""
    rng = np.random.default_rng(seed)
    tol = _tolerances(mean, std)
    for _ in range(STEPS):
        x = (rng.standard_normal(shape) * std + mean).astype(np.float32)
        with torch.no_grad():
            yt = module(torch.from_numpy(x))
        assert_equivalent(cell(ms.Tensor(x)), yt, **tol["out"])
        if module.track_running_stats:
            assert_equivalent(
                _stats(cell), {"running_mean": module.running_mean, "running_var": module.running_var}, **tol["stats"]
            )


def _pair(kind, variant, seed=0):
    torch.manual_seed(seed)
    module = getattr(torch.nn, kind)(3, **VARIANTS[variant])
    if module.affine:  # non-trivial weights so a gamma/beta mix-up shows
        with torch.no_grad():
            module.weight.uniform_(0.5, 1.5)
            module.bias.uniform_(-0.5, 0.5)
    if module.track_running_stats:
        with torch.no_grad():
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
    return module, convert_batchnorm(module)


@pytest.mark.parametrize("ms_mode", [ms.PYNATIVE_MODE], indirect=True)
@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("kind, shape", CASES, ids=lambda v: v if isinstance(v, str) else "x".join(map(str, v)))
def test_train_steps_outputs_stats_and_gradients_match_torch_pynative(ms_mode, kind, shape, variant):
    module, cell = _pair(kind, variant)
    twin_module, twin_cell = _pair(kind, variant)
    assert cell.training and module.training
    _train_and_compare(module, cell, shape)
    _forward_steps(twin_module, twin_cell, shape)


def _graph_case(kind, shape, variant):
    module, cell = _pair(kind, variant)
    _forward_steps(module, cell, shape)
    module2, cell2 = _pair(kind, variant)
    _train_and_compare(module2, cell2, shape)


_CASE_IDS = {1: "1d_NC", 2: "1d_NCL", 3: "2d", 4: "3d"}
# Default run: every input layout and every variant at least once in GRAPH mode (each case compiles
# its graphs, ~1 s); the full product is @slow.
GRAPH_DEFAULT = [
    (0, "default"),
    (0, "momentum_None"),
    (1, "default"),
    (1, "momentum_None"),
    (1, "affine_False"),
    (1, "no_running_stats"),
    (2, "default"),
    (2, "momentum0.3"),
    (2, "affine_False"),
    (2, "no_running_stats"),
    (3, "default"),
    (3, "momentum_None"),
]


@pytest.mark.parametrize("ms_mode", [ms.GRAPH_MODE], indirect=True)
@pytest.mark.parametrize("case, variant", GRAPH_DEFAULT, ids=[f"{_CASE_IDS[c + 1]}-{v}" for c, v in GRAPH_DEFAULT])
def test_train_steps_match_torch_graph_mode(ms_mode, case, variant):
    kind, shape = CASES[case]
    _graph_case(kind, shape, variant)


@pytest.mark.slow
@pytest.mark.parametrize("ms_mode", [ms.GRAPH_MODE], indirect=True)
@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("kind, shape", CASES, ids=lambda v: v if isinstance(v, str) else "x".join(map(str, v)))
def test_every_case_and_variant_in_graph_mode(ms_mode, kind, shape, variant):
    _graph_case(kind, shape, variant)


@pytest.mark.parametrize("mean, std", [(0.0, 1.0), (100.0, 1.0), (1e4, 1.0)])
def test_tolerance_scales_with_mean_over_std(mean, std):
    module, cell = _pair("BatchNorm2d", "default")
    _forward_steps(module, cell, (4, 3, 5, 5), mean=mean, std=std)


def test_unflipped_momentum_passes_outputs_but_fails_running_stats():
    tol = _tolerances(3.0, 2.0)  # the inputs below: mean 3, std 2 (the module docstring's figures)
    torch.manual_seed(0)
    module = torch.nn.BatchNorm2d(3)  # torch momentum 0.1
    wrong = ms.nn.BatchNorm2d(3, momentum=0.1)  # the classic mistake: MindSpore 0.1 means torch 0.9
    wrong.set_train(True)
    rng = np.random.default_rng(0)
    out_ok, stats = True, None
    for _ in range(STEPS):
        x = (rng.standard_normal((4, 3, 5, 5)) * 2 + 3).astype(np.float32)
        with torch.no_grad():
            yt = module(torch.from_numpy(x))
        out_ok &= compare(wrong(ms.Tensor(x)), yt, **tol["out"]).ok
        stats = compare(
            _stats(wrong), {"running_mean": module.running_mean, "running_var": module.running_var}, **tol["stats"]
        )
    assert out_ok, "outputs in train mode do not depend on momentum"
    assert not stats.ok
    assert {m.path for m in stats.mismatches} == {("running_mean",), ("running_var",)}
    assert stats.worst_abs_diff > 1.0  # not a rounding question
    # ... and the conversion report names it.
    report = porting.load_torch_state_dict(wrong, {f"{k}": v for k, v in module.state_dict().items()})
    assert len(report.warnings) == 1 and "looks unflipped" in report.warnings[0]
    assert not porting.load_torch_state_dict(convert_batchnorm(module), module.state_dict()).warnings


def test_stock_mindspore_is_silently_wrong_on_one_value_per_channel_and_ours_raises():
    x = np.full((1, 3, 1, 1), 2.0, np.float32)
    stock = ms.nn.BatchNorm2d(3)
    stock.set_train(True)
    y = stock(ms.Tensor(x)).asnumpy()
    # the fact the guard exists for (re-checked): zeros out, NaN moving variance, no error
    assert np.all(y == 0) and np.isnan(stock.moving_variance.asnumpy()).all()
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        torch.nn.BatchNorm2d(3)(torch.from_numpy(x))
    for variant in ("default", "momentum_None", "no_running_stats"):
        for kind, shape in [("BatchNorm1d", (1, 3)), ("BatchNorm2d", (1, 3, 1, 1)), ("BatchNorm3d", (1, 3, 1, 1, 1))]:
            cell = convert_batchnorm(getattr(torch.nn, kind)(3, **VARIANTS[variant]))
            with pytest.raises(ValueError, match="more than 1 value per channel"):
                cell(ms.Tensor(np.ones(shape, np.float32)))
    cell = convert_batchnorm(torch.nn.BatchNorm2d(3).eval())  # eval with running stats: fine in both
    assert cell(ms.Tensor(x)).shape == (1, 3, 1, 1)


@pytest.mark.parametrize("ms_mode", [ms.GRAPH_MODE], indirect=True)
def test_one_value_per_channel_raises_in_graph_mode_too(ms_mode):
    # the check is on the (static) input shape, so a compiled graph raises as PyNative does
    for variant in ("default", "momentum_None", "no_running_stats"):
        cell = convert_batchnorm(torch.nn.BatchNorm2d(3, **VARIANTS[variant]))
        with pytest.raises(ValueError, match="more than 1 value per channel"):
            cell(ms.Tensor(np.ones((1, 3, 1, 1), np.float32)))


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("kind", ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d"])
def test_round_trip_through_the_converted_cell_is_exact(kind, variant):
    """torch -> convert_batchnorm -> copy_batchnorm_state back into a fresh torch layer: every entry bit for bit."""
    torch.manual_seed(1)
    src = getattr(torch.nn, kind)(3, **VARIANTS[variant])
    with torch.no_grad():
        for value in src.state_dict().values():
            if value.is_floating_point():
                value.copy_(torch.rand(value.shape) + 0.5)
            else:
                value.fill_(17)
    expected = {k: v.clone() for k, v in src.state_dict().items()}  # written here, not by the code under test
    back = getattr(torch.nn, kind)(3, **VARIANTS[variant])
    copy_batchnorm_state(convert_batchnorm(src), back)
    assert sorted(back.state_dict()) == sorted(expected)  # no key added (track_running_stats=False has no counter)
    assert_equivalent(dict(back.state_dict()), expected, rtol=0, atol=0)


def test_convert_mirrors_mode_and_settings():
    cell = convert_batchnorm(torch.nn.BatchNorm2d(5, eps=1e-3, momentum=0.25))
    assert cell.training
    assert cell.eps == pytest.approx(1e-3)
    assert cell.bn_train.momentum == pytest.approx(0.25)  # the op mixes in torch's fraction
    assert not convert_batchnorm(torch.nn.BatchNorm1d(5).eval()).training
    with pytest.raises(TypeError, match="expected a torch.nn.BatchNorm1d, BatchNorm2d or BatchNorm3d, got LayerNorm"):
        convert_batchnorm(torch.nn.LayerNorm(3))
    with pytest.raises(ValueError, match="float64"):
        convert_batchnorm(torch.nn.BatchNorm2d(3).double())


def test_copy_state_both_directions_is_exact():
    torch.manual_seed(0)
    src = torch.nn.BatchNorm3d(4)
    with torch.no_grad():
        for t in (src.weight, src.bias, src.running_mean):
            t.normal_()
        src.running_var.uniform_(0.5, 2)
        src.num_batches_tracked.fill_(17)
    cell = convert_batchnorm(torch.nn.BatchNorm3d(4))
    copy_batchnorm_state(src, cell)
    back = torch.nn.BatchNorm3d(4)
    keep = back.running_mean
    copy_batchnorm_state(cell, back)
    assert back.running_mean is keep  # updated in place
    for key, value in src.state_dict().items():
        assert torch.equal(back.state_dict()[key], value), key
    assert_equivalent(
        {
            "gamma": cell.bn2d.gamma,
            "beta": cell.bn2d.beta,
            "mean": cell.bn2d.moving_mean,
            "var": cell.bn2d.moving_variance,
        },
        {"gamma": src.weight.detach(), "beta": src.bias.detach(), "mean": src.running_mean, "var": src.running_var},
        rtol=0,
        atol=0,
    )


def test_copy_state_refuses_different_configs_listing_each():
    cell = ms.nn.BatchNorm2d(3, eps=1e-3, momentum=0.1)
    with pytest.raises(ValueError) as info:
        copy_batchnorm_state(torch.nn.BatchNorm2d(3), cell)
    text = str(info.value)
    assert "eps: torch 1e-05, MindSpore 0.001" in text and "momentum: torch 0.1, MindSpore 0.9" in text
    with pytest.raises(TypeError, match="one torch BatchNorm and one MindSpore"):
        copy_batchnorm_state(torch.nn.BatchNorm2d(3), torch.nn.BatchNorm2d(3))
