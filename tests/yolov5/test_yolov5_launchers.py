"""The 2-rank case under the real launchers: ``yolov5_pt`` under ``torchrun`` (gloo) and ``yolov5_ms`` under ``msrun``.

Two processes on CPU each; every rank writes one sha256 per batch (image bytes and shape, label bytes, paths,
shapes) over 2 epochs, with ``train.py``'s loop (``sampler.set_epoch(epoch)`` on the torch side). Each rank's
stream must be the same under both launchers, and the two ranks must split every epoch's images between them.
msrun starts its workers with the first ``python`` on ``PATH``: the venv's ``bin`` goes first.
"""

from __future__ import annotations

import os
import pickle
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests._helpers.subproc import ROOT

BIN = Path(sys.executable).parent
WORKERS = 2

_COMMON = f"""
import hashlib, os, pickle, random, sys
import numpy as np
from yolov5_core import load_hyp
out_dir, data = sys.argv[1], sys.argv[2]
hyp = load_hyp("scratch-low"); hyp.update(mixup=0.5, degrees=5.0, flipud=0.3)
KW = dict(hyp=hyp, augment=True, workers={WORKERS}, shuffle=True, seed=1)
def digest(b):
    img, labels = np.asarray(b[0]), np.asarray(b[1])
    h = hashlib.sha256(b"".join([img.tobytes(), repr(img.shape).encode(), labels.tobytes(),
                                 repr(tuple(b[2])).encode(), repr(tuple(b[3])).encode()]))
    return h.hexdigest(), tuple(b[2])
"""

_TORCHRUN = _COMMON + textwrap.dedent(
    """
    import torch, torch.distributed as dist
    dist.init_process_group("gloo")
    rank, local_rank = dist.get_rank(), int(os.environ["LOCAL_RANK"])
    import yolov5_pt
    random.seed(0); np.random.seed(0); torch.manual_seed(0)
    loader, ds = yolov5_pt.create_dataloader(data, 64, 4, 32, rank=local_rank, **KW)
    out = []
    for epoch in range(2):
        loader.sampler.set_epoch(epoch)
        out += [digest(b) for b in loader]
    with open(f"{out_dir}/torchrun{rank}.pkl", "wb") as f:
        pickle.dump(out, f)
    dist.destroy_process_group()
    """
)

_MSRUN = _COMMON + textwrap.dedent(
    """
    from mindspore.communication import get_rank, init
    init()
    rank = get_rank()
    import yolov5_ms
    random.seed(0); np.random.seed(0)
    pipeline, ds = yolov5_ms.create_dataloader(data, 64, 4, 32, rank=rank, **KW)  # world and rank from MindSpore
    it = pipeline.create_tuple_iterator(num_epochs=2, output_numpy=True)
    out = [digest(pipeline.structure.rebuild(row)) for _ in range(2) for row in it]
    with open(f"{out_dir}/msrun{rank}.pkl", "wb") as f:
        pickle.dump(out, f)
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(cmd: list[str], tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    logs = (
        "".join(p.read_text()[-3000:] for p in sorted((tmp_path / "logs").glob("*.log")))
        if (tmp_path / "logs").exists()
        else ""
    )
    assert proc.returncode == 0, (
        f"{cmd[0]} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}\n{logs}"
    )


@pytest.fixture(scope="module")
def data(synthetic_dataset, tmp_path_factory) -> str:
    return str(synthetic_dataset.copy_to(tmp_path_factory.mktemp("launch") / "ds").images)


def test_msrun_and_torchrun_give_each_rank_the_same_stream(data, tmp_path):
    (tmp_path / "torchrun.py").write_text(_TORCHRUN)
    (tmp_path / "msrun.py").write_text(_MSRUN)
    launch(
        [
            str(BIN / "torchrun"),
            "--nproc_per_node",
            "2",
            "--master_addr",
            "127.0.0.1",
            "--master_port",
            str(free_port()),
            str(tmp_path / "torchrun.py"),
            str(tmp_path),
            data,
        ],
        tmp_path,
    )
    launch(
        [
            str(BIN / "msrun"),
            "--worker_num",
            "2",
            "--local_worker_num",
            "2",
            "--master_addr",
            "127.0.0.1",
            "--master_port",
            str(free_port()),
            "--log_dir",
            str(tmp_path / "logs"),
            "--join",
            "True",
            str(tmp_path / "msrun.py"),
            str(tmp_path),
            data,
        ],
        tmp_path,
    )
    streams = {
        name: [pickle.loads((tmp_path / f"{name}{r}.pkl").read_bytes()) for r in (0, 1)]
        for name in ("torchrun", "msrun")
    }
    for rank in (0, 1):
        torch_side, ms_side = streams["torchrun"][rank], streams["msrun"][rank]
        assert len(torch_side) == len(ms_side) == 4, f"rank {rank}: {len(ms_side)} batches, torch {len(torch_side)}"
        for k, (a, b) in enumerate(zip(ms_side, torch_side, strict=True)):
            assert a == b, (
                f"rank {rank} batch {k}: msrun/yolov5_ms {a[0][:12]} {a[1]} != torchrun/yolov5_pt {b[0][:12]} {b[1]}"
            )
    for epoch in range(2):  # 16 images split between the 2 ranks, 2 batches of 4 each per epoch
        paths = [p for r in (0, 1) for _, ps in streams["torchrun"][r][2 * epoch : 2 * epoch + 2] for p in ps]
        assert len(paths) == len(set(paths)) == 16
    assert streams["torchrun"][0][:2] != streams["torchrun"][0][2:]
