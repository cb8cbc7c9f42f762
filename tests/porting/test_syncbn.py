"""SyncBatchNorm semantics with real process groups on CPU: 2 torch processes over gloo (torchrun) and 2 MindSpore
workers under msrun, each with porting's reference SyncBN, against BatchNorm over the concatenated global batch.

Compared every training step: outputs, dx, dweight/dbias (summed over ranks, as DDP sums them), running
statistics and the batch counter; then eval outputs; equal (4+4) and unequal (3+5) splits; then the two frameworks
with each other. The real SyncBN kernels need CUDA (torch) or Ascend (MindSpore): those tests are skipped on CPU.

Tolerances (float32, inputs of mean 3 / std 2). The reference reduces per rank and then across ranks (a
different summation order from BatchNorm's single pass), and MindSpore's kernels differ from torch's as in
test_batchnorm.py. Measured worst here (same figures for torch/gloo, MindSpore PyNative and GRAPH): outputs
1.7e-6, dx 1.8e-6 (outputs are O(3) after the affine), running stats 4.8e-7, dweight/dbias 3.8e-6 (the reference
takes the variance from shifted sums Σ(x-s)², Σ(x-s); BatchNorm's kernel from a two-pass/Welford form).
Outputs, dx and running stats: rtol 1e-5, atol 5e-6 (= 2e-6 * (1 + |mean|/std), the scaling test_batchnorm.py
uses; ~3x the worst measured); dweight/dbias, sums over the 8*H*W values of a channel: rtol 1e-5, atol 2.5e-5
(same scaling with 1e-5; ~6x the worst measured). A per-rank (unsynchronised) BatchNorm misses by 0.53 here.
"""

from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("mindspore")
import mindspore as ms
import torch

import porting
from porting import assert_equivalent
from tests.porting._dist.syncbn_data import (
    MOMENTUM,
    MS_NAMES,
    SHAPES,
    SPLITS,
    STEPS,
    global_batches,
    initial_state,
    rank_slice,
    record_torch,
)

ROOT = pathlib.Path(__file__).resolve().parents[2]
DIST = pathlib.Path(__file__).resolve().parent / "_dist"
VENV_BIN = pathlib.Path(sys.executable).parent
TOL: dict[str, Any] = dict(rtol=1e-5, atol=5e-6)
TOL_PARAM: dict[str, Any] = dict(rtol=1e-5, atol=2.5e-5)
MODES = ("pynative", "graph")


def _env() -> dict:
    env = dict(os.environ)
    # msrun starts its workers with the first `python` on PATH: make it this venv's
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = f"{ROOT}{os.pathsep}{env.get('PYTHONPATH', '')}"
    env.setdefault("GLOG_v", "3")  # MindSpore: errors only
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(cmd: list[str], cwd: pathlib.Path, what: str) -> None:
    proc = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        logs = "".join(p.read_text(errors="replace")[-3000:] for p in sorted(cwd.glob("mslog/*.log")))
        raise AssertionError(
            f"{what} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}\n{logs}"
        )


@pytest.fixture(scope="module")
def torch_runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("torch_syncbn")
    _launch(
        [
            str(VENV_BIN / "torchrun"),
            "--standalone",
            "--nproc_per_node=2",
            str(DIST / "torch_syncbn_worker.py"),
            str(out),
        ],
        out,
        "torchrun (gloo)",
    )
    return out


@pytest.fixture(scope="module")
def ms_runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("ms_syncbn")
    _launch(
        [
            str(VENV_BIN / "msrun"),
            "--worker_num=2",
            "--local_worker_num=2",
            f"--master_port={_free_port()}",
            f"--log_dir={out / 'mslog'}",
            "--join=True",
            "--cluster_time_out=120",
            str(DIST / "ms_syncbn_worker.py"),
            str(out),
            ",".join(MODES),
        ],
        out,
        "msrun (CPU)",
    )
    return out


def _load(folder: pathlib.Path, prefix: str, kind: str, split: str) -> list[dict]:
    return [dict(np.load(folder / f"{prefix}_{kind}_{split}_rank{r}.npz")) for r in range(2)]


def _reference(kind: str) -> dict:
    """torch.nn.BatchNorm over the whole global batch, in this process (the expected values)."""
    steps, x_eval = global_batches(kind)
    bn = getattr(torch.nn, "BatchNorm2d" if kind == "2d" else "BatchNorm1d")(SHAPES[kind][1], momentum=MOMENTUM)
    return record_torch(bn, steps, x_eval)


def _assert_matches_global_batch(ranks: list[dict], ref: dict, split: str) -> None:
    for i in range(STEPS):
        for key in ("y", "dx"):  # each rank holds its slice of the global batch
            for r, rec in enumerate(ranks):
                assert_equivalent(rec[f"{key}{i}"], ref[f"{key}{i}"][rank_slice(split, r)], **TOL)
        for key in ("dw", "db"):  # each rank holds its share: the sum is the global gradient
            assert_equivalent(ranks[0][f"{key}{i}"] + ranks[1][f"{key}{i}"], ref[f"{key}{i}"], **TOL_PARAM)
        for rec in ranks:  # every rank keeps the global running statistics
            assert_equivalent(
                {"mean": rec[f"mean{i}"], "var": rec[f"var{i}"]},
                {"mean": ref[f"mean{i}"], "var": ref[f"var{i}"]},
                **TOL,
            )
            assert int(rec[f"count{i}"]) == int(ref[f"count{i}"]) == i + 1
    for r, rec in enumerate(ranks):
        assert_equivalent(rec["eval"], ref["eval"][rank_slice(split, r)], **TOL)


@pytest.mark.parametrize("split", sorted(SPLITS))
@pytest.mark.parametrize("kind", sorted(SHAPES))
def test_torch_reference_over_gloo_equals_bn_over_the_global_batch(torch_runs, kind, split):
    _assert_matches_global_batch(_load(torch_runs, "torch", kind, split), _reference(kind), split)


@pytest.mark.parametrize("split", sorted(SPLITS))
@pytest.mark.parametrize("kind", sorted(SHAPES))
@pytest.mark.parametrize("mode", MODES)
def test_mindspore_reference_under_msrun_equals_bn_over_the_global_batch(ms_runs, mode, kind, split):
    ranks = _load(ms_runs, f"ms_{mode}", kind, split)
    assert [int(r["world"]) for r in ranks] == [2, 2]  # really synchronised, not two plain BatchNorms
    _assert_matches_global_batch(ranks, _reference(kind), split)


@pytest.mark.parametrize("split", sorted(SPLITS))
@pytest.mark.parametrize("kind", sorted(SHAPES))
def test_the_two_frameworks_agree_rank_by_rank(torch_runs, ms_runs, kind, split):
    for t, m in zip(_load(torch_runs, "torch", kind, split), _load(ms_runs, "ms_pynative", kind, split), strict=True):
        keys = [k for k in t if not k.startswith(("dw", "db"))]
        assert_equivalent({k: m[k] for k in keys}, {k: t[k] for k in keys}, **TOL)
        keys = [k for k in t if k.startswith(("dw", "db"))]
        assert_equivalent({k: m[k] for k in keys}, {k: t[k] for k in keys}, **TOL_PARAM)


def test_an_unsynchronised_batchnorm_would_be_caught(torch_runs):
    """Per-rank BatchNorm (what a port without SyncBN computes) differs from the global batch: the check can fail."""
    steps, _ = global_batches("2d")
    x, _ = steps[0]
    local = torch.nn.BatchNorm2d(3)(torch.from_numpy(x[rank_slice("unequal", 0)])).detach().numpy()
    ranks = _load(torch_runs, "torch", "2d", "unequal")
    assert not porting.compare(local, ranks[0]["y0"], **TOL).ok


def test_torch_native_syncbn_cannot_train_on_cpu_with_a_group(torch_runs):
    for r in range(2):
        text = (torch_runs / f"torch_native_rank{r}.txt").read_text()
        assert text.startswith("ValueError: SyncBatchNorm expected input tensor to be on GPU"), text


def test_without_a_process_group_both_references_are_plain_batchnorm():
    steps, x_eval = global_batches("2d")
    ref = _reference("2d")
    m = porting.ReferenceSyncBatchNorm(3, momentum=MOMENTUM)
    assert isinstance(m, porting.ReferenceSyncBatchNorm) and isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
    cell = porting.ReferenceSyncBatchNormCell(3, momentum=1 - MOMENTUM)
    with torch.no_grad():
        for k, v in initial_state().items():
            getattr(m, k).copy_(torch.from_numpy(v))
            getattr(cell, MS_NAMES[k]).set_data(ms.Tensor(v))
    cell.set_train(True)
    for i, (x, _) in enumerate(steps):
        with torch.no_grad():
            assert_equivalent(m(torch.from_numpy(x)), ref[f"y{i}"], **TOL)
        assert_equivalent(cell(ms.Tensor(x)), ref[f"y{i}"], **TOL)
        assert_equivalent(
            {"mean": cell.moving_mean, "var": cell.moving_variance, "m2": m.running_mean},
            {"mean": ref[f"mean{i}"], "var": ref[f"var{i}"], "m2": ref[f"mean{i}"]},
            **TOL,
        )
    # state names are BatchNorm's: checkpoints load both ways through the rule tables
    sd = porting.torch_state_dict(cell)
    assert sorted(sd) == sorted(m.state_dict())
    assert int(sd["num_batches_tracked"]) == STEPS
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        porting.ReferenceSyncBatchNorm(3)(torch.ones(1, 3))
    with pytest.raises(ValueError, match="more than 1 value per channel"):  # alone, as torch (not zeros and NaN)
        cell(ms.Tensor(np.ones((1, 3), np.float32)))


def test_torch_native_syncbn_equals_bn_in_eval_and_without_a_group():
    torch.manual_seed(0)
    bn, sync = torch.nn.BatchNorm2d(3), torch.nn.SyncBatchNorm(3)
    sync.load_state_dict(bn.state_dict())
    x = torch.randn(4, 3, 2, 2) * 2 + 3
    for mode in (True, False):
        bn.train(mode), sync.train(mode)
        with torch.no_grad():
            assert_equivalent(sync(x), bn(x), rtol=0, atol=0)


@pytest.mark.skipif(
    not (torch.cuda.is_available() and torch.cuda.device_count() >= 2),
    reason="torch.nn.SyncBatchNorm's kernels need >= 2 CUDA devices (CPU-only here)",
)
def test_reference_equals_torch_native_syncbn_on_cuda(tmp_path):  # pragma: no cover - needs GPUs
    _launch(
        [
            str(VENV_BIN / "torchrun"),
            "--standalone",
            "--nproc_per_node=2",
            str(DIST / "torch_syncbn_cuda_worker.py"),
            str(tmp_path),
        ],
        tmp_path,
        "torchrun (nccl)",
    )
    for r in range(2):
        rec = dict(np.load(tmp_path / f"cuda_rank{r}.npz"))
        native = {k[len("native_") :]: v for k, v in rec.items() if k.startswith("native_")}
        reference = {k[len("reference_") :]: v for k, v in rec.items() if k.startswith("reference_")}
        assert_equivalent(reference, native, **TOL_PARAM)


def _ascend_available() -> bool:
    try:
        return bool(ms.hal.is_available("Ascend")) and ms.hal.device_count("Ascend") >= 2
    except Exception:  # no Ascend backend in this build: MindSpore raises rather than answering False
        return False


@pytest.mark.skipif(
    not _ascend_available(),
    reason="mindspore.nn.SyncBatchNorm's kernel needs >= 2 Ascend devices (on CPU under msrun it "
    "fails: 'Unsupported op [SyncBatchNorm] on CPU')",
)
def test_reference_cell_equals_mindspore_native_syncbn_on_ascend(tmp_path):  # pragma: no cover - needs Ascend
    _launch(
        [
            str(VENV_BIN / "msrun"),
            "--worker_num=2",
            "--local_worker_num=2",
            f"--master_port={_free_port()}",
            f"--log_dir={tmp_path / 'mslog'}",
            "--join=True",
            str(DIST / "ms_syncbn_ascend_worker.py"),
            str(tmp_path),
        ],
        tmp_path,
        "msrun (Ascend)",
    )
    for r in range(2):
        rec = dict(np.load(tmp_path / f"ascend_rank{r}.npz"))
        native = {k[len("native_") :]: v for k, v in rec.items() if k.startswith("native_")}
        reference = {k[len("reference_") :]: v for k, v in rec.items() if k.startswith("reference_")}
        assert_equivalent(reference, native, **TOL_PARAM)
