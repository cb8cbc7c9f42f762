"""``torch2ms check``: the user's own loader against its MindSpore port, with exact verdicts."""

import json

import pytest

from porting.cli._check import run_check
from porting.cli._exit import ExitCode
from tests._helpers.subproc import run_python

M = "tests.porting._check_loaders"


def check(name, **kw):
    return run_check(f"{M}:{name}", progress=False, **kw)


def test_equal_loader_is_bit_identical():
    r = check("equal", epochs=2)
    assert (r.status, r.verdict) == (ExitCode.OK, "bit-identical"), r.lines()
    assert r.batches == 6 and r.tensors == 12 and r.bytes == 2 * (12 * 3 * 6 * 5 * 4 + 12 * 8)
    assert r.columns == [
        {"name": "img", "dtype": "float32", "shape": [4, 3, 6, 5]},
        {"name": "label", "dtype": "int64", "shape": [4]},
    ]
    # the comparison walks both sides in lock step: no speed figure comes from it
    assert r.torch_batches_per_s is r.mindspore_batches_per_s is r.ratio is None
    assert not any("batches/s" in line for line in r.lines())


def test_speed_is_timed_each_side_alone_on_the_same_batches_only_when_asked():
    r = check("equal", epochs=2, speed=True)
    assert (r.status, r.verdict, r.speed_batches) == (ExitCode.OK, "bit-identical", 6), r.lines()
    assert r.torch_batches_per_s > 0 and r.mindspore_batches_per_s > 0 and r.ratio > 0
    [line] = [line for line in r.lines() if "batches/s" in line]
    assert line.startswith(
        "  speed, each side alone on the same 6 batches, building the loader and starting its workers included: torch "
    )
    assert "(a short run is dominated by start-up" in line


@pytest.mark.parametrize("loop", ["one-iterator", "per-epoch"])
def test_dataset_and_kwargs_factory_in_both_loop_shapes(loop):
    r = check("equal_pair", epochs=3, loop=loop)
    assert (r.status, r.verdict, r.batches) == (0, "bit-identical", 9)


def test_one_changed_pixel_in_one_epoch_is_located():
    r = check("one_pixel", epochs=3)
    assert (r.status, r.verdict) == (ExitCode.MISMATCH, "MISMATCH")
    assert r.first_mismatch == "epoch 1 / batch 1 / column 'img' / [2, 2, 3, 1]"
    assert r.mismatches == 1 and r.batches == 9
    assert "Mismatched elements: 1 / 360" in r.first_mismatch_text
    assert r.worst_abs_location == r.first_mismatch


def test_tolerance_is_stated_and_never_called_bit_identical():
    r = check("equal", epochs=1, tolerance="1e-6,0")
    assert r.status == 0 and r.verdict == "equivalent within rtol=1e-06, atol=0"
    r = check("equal", epochs=1, tolerance="loose")
    assert r.status == ExitCode.USAGE and "--tolerance: expected exact, default or RTOL,ATOL" in r.error


def test_infinite_sampler_with_steps():
    r = check("endless", epochs=3, steps=4)
    assert (r.status, r.verdict, r.batches) == (0, "bit-identical", 12)


def test_distributed_sampler_gets_set_epoch_on_both_sides():
    assert check("distributed", epochs=3).verdict == "bit-identical"


def test_empty_loader_is_an_error_not_a_pass():
    r = check("empty")
    assert r.status == ExitCode.USAGE and r.verdict == "error"
    assert "yields no batch" in r.error


def test_error_in_the_dataset_keeps_its_type_and_index():
    r = check("raises")
    assert r.status == ExitCode.LOADER_ERROR
    # torch's own loader raises first (the reference run): its type, the worker's message first, torch's text kept
    assert r.error.startswith("raised by the torch side at epoch 0 / batch 1, dataset[5] ")
    assert r.error.splitlines()[0].endswith(": KeyError: 'no annotation for sample 5'")
    assert "KeyError: Caught KeyError in DataLoader worker process 1" in r.error


def test_error_only_in_the_port_names_sample_and_worker():
    r = check("raises_in_port")
    assert r.status == ExitCode.LOADER_ERROR
    assert r.error.startswith(
        "raised by the MindSpore side at dataset[5] (sample of batch 1 of epoch 0, main "
        "process): KeyError: 'no annotation for sample 5'"
    )
    assert "Raised by dataset[5] (sample of batch 1 of epoch 0, main process)" in r.error


def test_clock_seeded_worker_init_is_torch_not_reproducible():
    r = check("clock_seeded")
    assert r.status == ExitCode.NOT_REPRODUCIBLE and r.verdict == "torch side not reproducible"
    assert r.torch_not_reproducible.startswith("epoch 0 / batch 0 / column 'label' differs between two torch runs")


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("no_such_module_xyz:f", "importing module 'no_such_module_xyz' failed: ModuleNotFoundError"),
        (f"{M}:nope", "has no attribute 'nope'; its callables: ["),
        (f"{M}:NOT_CALLABLE", "'NOT_CALLABLE' is a int, not a callable factory"),
        (f"{M}:not_a_loader", "must return a torch DataLoader or (dataset, dataloader_kwargs); got list"),
        ("just_a_module", "expected MODULE:FACTORY"),
        ("missing/file.py:f", "no such file 'missing/file.py'"),
    ],
)
def test_bad_targets_are_one_line_errors(target, message):
    r = run_check(target, progress=False)
    assert r.status == ExitCode.USAGE and r.error is not None and message in r.error and "\n" not in r.error


def test_a_target_file_that_python_cannot_import_is_a_usage_error(tmp_path):
    # a file path without the .py suffix: importlib has no loader for it (it used to fail as "error in the loader")
    script = tmp_path / "loader"
    script.write_text("def build():\n    return [1]\n")
    r = run_check(f"{script}:build", progress=False)
    assert r.status == ExitCode.USAGE, r.error
    assert r.error == f"{script}:build: {script} is not a Python source file (expected a .py file)"


def test_command_line_exit_status_and_reports(tmp_path):
    code = (
        "import sys; from porting.cli import main\n"
        f"rc = main(['check', '{M}:one_pixel', '--epochs', '2', '--no-progress', '--out', r'{tmp_path}'])\n"
        "print('rc', rc)"
    )
    out = run_python(code)
    assert "torch2ms check tests.porting._check_loaders:one_pixel: MISMATCH" in out
    assert "first mismatch (1 in all): epoch 1 / batch 1 / column 'img' / [2, 2, 3, 1]" in out
    assert out.strip().endswith("rc 1")
    data = json.loads((tmp_path / "check.json").read_text())
    assert data["status"] == 1 and data["first_mismatch"] == "epoch 1 / batch 1 / column 'img' / [2, 2, 3, 1]"
    assert "| verdict | **MISMATCH** |" in (tmp_path / "check.md").read_text()


@pytest.mark.parametrize("at", ["1:2", "0:3", "0:0"], ids=["mid-epoch", "epoch-end", "start"])
@pytest.mark.parametrize("name, loop", [("equal", "one-iterator"), ("equal_pair", "per-epoch")])
def test_resume_at_compares_a_port_resumed_in_a_new_process(name, loop, at):
    from porting.cli._check_resume import parse_resume_at

    r = check(name, epochs=3, loop=loop, resume_at=parse_resume_at(at))
    assert (r.status, r.verdict, r.batches) == (ExitCode.OK, "bit-identical", 9), r.lines()
    assert r.tensors == 18
    assert r.lines()[1].endswith(f", MindSpore side resumed at {at} in a new process")


@pytest.mark.parametrize("at", [(1, 0), (2, 0)], ids=["difference-after-resume", "difference-before"])
def test_resume_at_locates_a_difference_in_either_part(at):
    r = check("one_pixel", epochs=3, resume_at=at)
    assert (r.status, r.verdict, r.batches, r.mismatches) == (ExitCode.MISMATCH, "MISMATCH", 9, 1), r.lines()
    assert r.first_mismatch == "epoch 1 / batch 1 / column 'img' / [2, 2, 3, 1]"
    assert "Mismatched elements: 1 / 360" in r.first_mismatch_text


def test_resume_at_outside_the_run_or_with_steps_is_a_usage_error(capsys):
    r = check("equal", epochs=2, resume_at=(2, 0))
    assert r.status == ExitCode.USAGE and "--resume-at 2:0: the run has 2 epoch(s) of 3 batches" in r.error
    r = check("endless", epochs=2, steps=4, resume_at=(1, 0))
    assert r.status == ExitCode.USAGE and "--resume-at with --steps" in r.error
    from porting.cli import main

    for bad in ("1", "x:1", "1:-2"):
        with pytest.raises(SystemExit) as info:
            main(["check", f"{M}:equal", "--resume-at", bad])
        assert info.value.code == 2
        assert f"argument --resume-at: expected EPOCH:BATCH (two non-negative integers), got {bad!r}" in (
            capsys.readouterr().err
        )
