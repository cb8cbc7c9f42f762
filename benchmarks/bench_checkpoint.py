"""``porting.load_torch_state_dict`` vs ``mindspore.load_param_into_net`` on the same weights, in one run.

Run: ``.venv/bin/python benchmarks/bench_checkpoint.py [--params 100e6] [--repeat 3]``.

The network is ``--dense`` square Dense/Linear layers (4096 wide by default) plus ``--bn`` BatchNorm2d(512)
layers (renamed entries and carried counters), ``--params`` parameters in all. Rows:

* ``load_param_into_net``: MindSpore's loader given the already-converted dict (MindSpore names, Parameters);
* ``load_torch_state_dict(copy=False)``: porting's, given the torch state dict (renames, checks included),
  sharing memory with it as ``load_param_into_net`` shares its dict's: the like-for-like comparison;
* ``load_torch_state_dict`` (default ``copy=True``): the cell gets its own copy (the caller's tensors never
  change under it) — bounded by memcpy speed;
* ``convert then load_param_into_net``: what a user does without porting (torch -> numpy -> Parameters -> load):
  the memory figure shows the whole second copy porting avoids;
* from files: ``mindspore.load_checkpoint`` + ``load_param_into_net`` on the ``.ckpt`` vs porting reading the
  torch-side ``.safetensors`` / ``.pt`` (renames and checks included; arrays read from a file are adopted).

Peak extra memory is the process RSS high-water mark above the RSS just before the call, sampled every 2 ms
in a thread (each call also runs once unsampled first, so allocator warm-up is not counted as extra).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _bench_util import best_time

__all__ = ["main"]


class _PeakRss:
    """RSS high-water mark above the starting RSS while the block runs (sampled)."""

    def __init__(self, interval: float = 0.002) -> None:
        import psutil

        self._proc = psutil.Process()
        self._interval = interval
        self.peak_extra = 0

    def __enter__(self):
        gc.collect()
        self._base = self._proc.memory_info().rss
        self._peak = self._base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, self._proc.memory_info().rss)
            time.sleep(self._interval)

    def __exit__(self, *exc) -> None:
        self._peak = max(self._peak, self._proc.memory_info().rss)
        self._stop.set()
        self._thread.join()
        self.peak_extra = self._peak - self._base


def _networks(width: int, dense: int, bn: int):
    import mindspore
    import torch
    from mindspore import nn

    class TorchNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.ModuleList(torch.nn.Linear(width, width) for _ in range(dense))
            self.bn = torch.nn.ModuleList(torch.nn.BatchNorm2d(512) for _ in range(bn))

    class MsNet(nn.Cell):
        def __init__(self):
            super().__init__()
            # zeros: MindSpore's random init of 100M parameters would dominate the set-up time
            self.fc = nn.CellList([nn.Dense(width, width, weight_init="zeros") for _ in range(dense)])
            self.bn = nn.CellList([nn.BatchNorm2d(512) for _ in range(bn)])

    with torch.no_grad():
        module = TorchNet()
    del mindspore
    return module, MsNet


def main(argv: list[str] | None = None) -> int:  # noqa: C901 - a benchmark's sections, one after the other
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--params", type=float, default=100e6, help="parameters in all (approximately)")
    parser.add_argument("--width", type=int, default=4096, help="Dense/Linear width")
    parser.add_argument("--bn", type=int, default=64, help="BatchNorm2d(512) layers")
    parser.add_argument("--repeat", type=int, default=3, help="timed repeats (best is reported)")
    args = parser.parse_args(argv)

    import mindspore
    import torch

    import porting

    dense = max(1, round(args.params / (args.width * args.width + args.width)))
    module, MsNet = _networks(args.width, dense, args.bn)
    state = module.state_dict()
    nbytes = sum(v.numel() * v.element_size() for v in state.values())
    nparams = sum(v.numel() for v in state.values() if v.is_floating_point())
    cell = MsNet()
    names = porting.torch_to_mindspore_names(module, cell)
    print(
        f"state dict: {len(state)} entries, {nparams / 1e6:.1f} M parameters, {nbytes / 2**20:.0f} MiB "
        f"({dense} x Linear({args.width}, {args.width}) + {args.bn} x BatchNorm2d(512))"
    )

    def converted():
        return {
            names[k]: mindspore.Parameter(mindspore.Tensor(v.numpy()), name=names[k])
            for k, v in state.items()
            if k in names
        }

    ms_dict = converted()

    def ms_load():
        not_loaded, _ = mindspore.load_param_into_net(cell, ms_dict)
        assert not not_loaded

    def ours():
        porting.load_torch_state_dict(cell, state)

    def ours_shared():
        porting.load_torch_state_dict(cell, state, copy=False)

    def convert_and_load():
        mindspore.load_param_into_net(cell, converted())

    rows = []
    for label, fn in (
        ("load_param_into_net (converted dict)", ms_load),
        ("load_torch_state_dict(copy=False)", ours_shared),
        ("load_torch_state_dict (copy, default)", ours),
        ("convert then load_param_into_net", convert_and_load),
    ):
        fn()  # warm-up: first-touch allocations are not "extra"
        seconds = best_time(fn, args.repeat)
        with _PeakRss() as peak:
            fn()
        rows.append((label, seconds, peak.peak_extra))
    # correctness, not speed: what porting loaded is the torch state dict, bit for bit
    porting.assert_equivalent(porting.torch_state_dict(cell), dict(state), rtol=0, atol=0)

    # from files: MindSpore's .ckpt path vs porting reading the torch-side files itself
    import tempfile

    from safetensors.torch import save_file

    folder = tempfile.mkdtemp(prefix="bench_checkpoint_")
    paths = {ext: os.path.join(folder, f"net{ext}") for ext in (".ckpt", ".safetensors", ".pt")}
    ms_dict.clear()  # frees the converted copy before the file runs are measured
    cell = MsNet()  # parameters of its own again (nothing shared with the dicts above)
    porting.load_torch_state_dict(cell, state)
    mindspore.save_checkpoint(cell, paths[".ckpt"])  # counters included, so both sides load everything
    save_file({k: v.contiguous() for k, v in state.items()}, paths[".safetensors"])
    torch.save(state, paths[".pt"])

    def ms_file():
        not_loaded, _ = mindspore.load_param_into_net(cell, mindspore.load_checkpoint(paths[".ckpt"]))
        assert not not_loaded

    file_rows = []
    for label, fn in (
        ("ms.load_checkpoint + load_param_into_net", ms_file),
        ("load_torch_state_dict(.safetensors)", lambda: porting.load_torch_state_dict(cell, paths[".safetensors"])),
        ("load_torch_state_dict(.pt)", lambda: porting.load_torch_state_dict(cell, paths[".pt"])),
    ):
        fn()
        seconds = best_time(fn, args.repeat)
        with _PeakRss() as peak:
            fn()
        file_rows.append((label, seconds, peak.peak_extra))
    porting.assert_equivalent(porting.torch_state_dict(cell), dict(state), rtol=0, atol=0)
    for path in paths.values():
        os.remove(path)
    os.rmdir(folder)

    base = rows[0][1]
    print(f"{'':40s} {'seconds':>9s} {'vs MS':>7s} {'peak extra MiB':>15s} {'x ckpt size':>12s}")
    for label, seconds, extra in rows:
        print(f"{label:40s} {seconds:9.3f} {seconds / base:7.2f} {extra / 2**20:15.1f} {extra / nbytes:12.3f}")
    base = file_rows[0][1]
    print(
        f"{'from files (page cache warm)':40s} {'seconds':>9s} {'vs MS':>7s} {'peak extra MiB':>15s} "
        f"{'x ckpt size':>12s}"
    )
    for label, seconds, extra in file_rows:
        print(f"{label:40s} {seconds:9.3f} {seconds / base:7.2f} {extra / 2**20:15.1f} {extra / nbytes:12.3f}")
    print("targets: load_torch_state_dict <= 2.00x load_param_into_net; peak extra <= 1.1x the checkpoint size")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
