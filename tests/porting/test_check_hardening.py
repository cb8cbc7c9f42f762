"""``torch2ms check`` (and the other factory commands) never says "pass" wrongly and never runs unbounded.

Each case runs the real command line in a fresh interpreter, with a timeout: a target that exits must not take
the checker's exit status with it, and an endless loader must be refused before it runs (before the fix these
runs hung until the timeout, memory growing).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from porting.cli._check import run_check
from porting.cli._exit import ExitCode
from tests._helpers.subproc import ROOT

M = "tests.porting._check_loaders"
# Before the fix the endless cases ran until killed: a bound that fails them instead of hanging the run.
pytestmark = pytest.mark.timeout(240)


def cli(*argv, timeout=120, cwd=ROOT):
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-m", "porting", *argv], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=cwd)  # fmt: skip
    return proc.returncode, proc.stdout, proc.stderr


def check(name, **kw):
    return run_check(f"{M}:{name}", progress=False, **kw)


def _mindspore_noise(err: str) -> list[str]:
    """stderr lines that are not MindSpore's own log lines ([WARNING] ME(...))."""
    return [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("[WARNING] ME(")]


# ----------------------------------------------------------------------------- item 6: a target that exits


@pytest.mark.parametrize(("factory", "code"), [("exits_0", 0), ("exits_5", 5)])
def test_check_factory_calling_sys_exit_is_exit_2_with_one_line(tmp_path, factory, code):
    rc, out, err = cli("check", f"{M}:{factory}", "--no-progress", "--out", str(tmp_path))
    assert rc == ExitCode.USAGE, (rc, out, err)
    lines = _mindspore_noise(err)
    assert len(lines) == 1 and out == "", (out, err)
    assert lines[0] == (
        f"torch2ms check: error: {M}:{factory}: the factory called sys.exit({code}) instead of returning a loader"
    )


@pytest.mark.parametrize("code", [0, 5])
def test_check_module_calling_sys_exit_at_import_is_exit_2(tmp_path, code):
    (tmp_path / "script_like.py").write_text(f"import sys\n\ndef make():\n    pass\n\nsys.exit({code})\n")
    rc, out, err = cli("check", "script_like.py:make", "--no-progress", "--out", str(tmp_path / "r"), cwd=tmp_path)
    assert rc == ExitCode.USAGE, (rc, out, err)
    [line] = _mindspore_noise(err)
    assert f"importing script_like.py called sys.exit({code})" in line and out == ""


def test_diff_and_convert_ckpt_factories_calling_sys_exit_are_exit_2(tmp_path):
    (tmp_path / "factories.py").write_text("import sys\n\ndef make():\n    sys.exit(0)\n")
    rc, out, err = cli("diff", "factories.py:make", cwd=tmp_path)
    assert rc == ExitCode.USAGE and "factories.py:make: the factory called sys.exit(0)" in err, (rc, out, err)
    (tmp_path / "a.safetensors").write_bytes(b"")  # never read: the --like factory fails first
    rc, out, err = cli("convert-ckpt", "a.safetensors", "b.ckpt", "--like", "factories.py:make", cwd=tmp_path)
    assert rc == ExitCode.USAGE and "--like factories.py:make: the factory called sys.exit(0)" in err, (rc, out, err)


def test_dataset_calling_sys_exit_is_a_loader_error_naming_where(tmp_path):
    rc, out, err = cli("check", f"{M}:exits_in_getitem", "--no-progress", "--out", str(tmp_path))
    assert rc == ExitCode.LOADER_ERROR, (rc, out, err)
    assert "error: raised by the torch side at epoch 0 / batch 1" in out
    assert "SystemExit: the loader called sys.exit(0)" in out


# ----------------------------------------------------------------------------- item 7: never unbounded


@pytest.mark.parametrize(
    ("factory", "words"),
    [
        ("endless", "the loader's sampler (Endless) has no __len__, so its epochs never end: pass --steps N"),
        ("stream_endless", "the loader's dataset (Stream) is an IterableDataset without __len__"),
    ],
)
def test_endless_loaders_without_steps_are_refused_up_front(tmp_path, factory, words):
    rc, out, err = cli("check", f"{M}:{factory}", "--no-progress", "--out", str(tmp_path), timeout=90)
    assert rc == ExitCode.USAGE, (rc, out, err)
    [line] = _mindspore_noise(err)
    assert words in line and "--steps N" in line


def test_a_finite_stream_without_len_needs_a_stated_bound():
    r = check("stream_finite")
    assert r.status == ExitCode.USAGE and "--max-batches-per-epoch N" in r.error and "--steps N" in r.error
    r = check("stream_finite", max_batches_per_epoch=10, epochs=2)
    assert (r.status, r.verdict, r.batches) == (ExitCode.OK, "bit-identical", 6), r.lines()
    r = check("stream_finite", max_batches_per_epoch=2)
    assert r.status == ExitCode.USAGE
    assert r.error == (
        f"{M}:stream_finite: epoch 0 of the torch run yielded more than 2 batches "
        "(--max-batches-per-epoch 2); an endless sampler or stream? pass --steps N "
        "(batches per epoch) to cut it into epochs, or raise the bound"
    )


def test_an_endless_stream_with_steps_is_compared():
    r = check("stream_endless", steps=3, epochs=2)
    assert (r.status, r.verdict, r.batches) == (ExitCode.OK, "bit-identical", 6), r.lines()


def test_steps_on_a_stream_with_workers_is_a_usage_error_not_a_loader_error():
    r = check("stream_endless_workers", steps=3)
    assert r.status == ExitCode.USAGE, r.lines()
    assert "steps_per_epoch with an IterableDataset and num_workers > 0 is not supported" in r.error


@pytest.mark.parametrize(("factory", "claim"), [
    ("lying_sampler", "len(loader) says 2"),
    ("stream_lying_len", "len(loader) says 2 (+ 1 partial batch per worker)"),
])  # fmt: skip
def test_an_endless_loader_whose_len_lies_is_stopped(factory, claim):
    r = check(factory)
    assert r.status == ExitCode.USAGE, r.lines()
    assert "epoch 0 of the torch run yielded more than" in r.error and claim in r.error


# ----------------------------------------------------------------------------- item 8: where the loader raised


def test_torch_raising_first_names_index_batch_epoch_and_worker():
    r = check("raises")
    assert r.status == ExitCode.LOADER_ERROR
    first = r.error.splitlines()[0]
    assert first == (
        "raised by the torch side at epoch 0 / batch 1, dataset[5] (sample of batch 1 of epoch 0, "
        "torch worker 1 of 2, indices [4, 5, 6, 7]): KeyError: 'no annotation for sample 5'"
    ), r.error
    assert (
        r.error.splitlines()[1]
        == "  (sample located by replaying the MindSpore port to that batch: it raised the same error)"
    )
    assert "Caught KeyError in DataLoader worker process 1" in r.error  # torch's own text is kept below


def test_torch_raising_in_a_later_epoch_in_the_main_process():
    r = check("raises_main_process")
    assert r.error.splitlines()[0] == (
        "raised by the torch side at epoch 0 / batch 1, dataset[5] (sample of batch 1 of epoch 0, main process): "
        "KeyError: 'no annotation for sample 5'"
    ), r.error
    r = check("raises_in_epoch_1", epochs=3)
    assert r.status == ExitCode.LOADER_ERROR
    assert r.error.splitlines()[0] == (
        "raised by the torch side at epoch 1 / batch 2, dataset[13] (sample of batch 2 of epoch 1, torch worker 0 of "
        "2, indices [10, 11, 12, 13]): KeyError: 'no annotation for sample 13'"
    ), r.error


def test_mindspore_raising_first_names_the_sample_on_the_first_line():
    r = check("raises_in_port")
    assert r.status == ExitCode.LOADER_ERROR
    assert r.error.splitlines()[0] == (
        "raised by the MindSpore side at dataset[5] (sample of batch 1 of epoch 0, main process): "
        "KeyError: 'no annotation for sample 5'"
    ), r.error


def test_cli_prints_the_location_on_the_error_line(tmp_path):
    rc, out, err = cli("check", f"{M}:raises", "--no-progress", "--out", str(tmp_path))
    assert rc == ExitCode.LOADER_ERROR
    assert "  error: raised by the torch side at epoch 0 / batch 1, dataset[5]" in out


def test_sys_exit_in_a_module_is_caught_in_process_too(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exits_at_import.py").write_text(
        textwrap.dedent("""
        import sys
        sys.exit(0)
    """)
    )
    r = run_check("exits_at_import.py:f", progress=False)
    assert r.status == ExitCode.USAGE and r.error is not None and "called sys.exit(0)" in r.error


def test_a_defect_in_the_tool_is_exit_70_never_1_or_0(monkeypatch, capsys):
    # Python exits 1 on an uncaught exception, which torch2ms documents as "mismatch".
    import porting.cli._check as check_module
    from porting.cli import main

    def broken(*args, **kwargs):
        raise AttributeError("'NoneType' object has no attribute 'shape'")

    monkeypatch.setattr(check_module, "run_check", broken)
    assert main(["check", f"{M}:equal", "--no-progress"]) == ExitCode.INTERNAL_ERROR
    assert int(ExitCode.INTERNAL_ERROR) == 70
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert (
        err.rstrip()
        .splitlines()[-1]
        .startswith(
            "torch2ms check: internal error, not a verdict: AttributeError: 'NoneType' object has no attribute 'shape'"
        )
    )
