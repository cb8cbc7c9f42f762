"""The README's Python snippets and the examples run as written: they can never drift from the code."""

import pathlib
import re
import subprocess
import sys

import pytest

from tests._helpers.subproc import ROOT, run_python

README = pathlib.Path(ROOT, "README.md").read_text()
SNIPPETS = re.findall(r"^```python\n(.*?)^```", README, flags=re.S | re.M)


def test_readme_has_python_snippets():
    assert SNIPPETS, "the README's ```python blocks were not found"


@pytest.mark.parametrize("index", range(len(SNIPPETS)))
def test_readme_snippet_runs(index):
    run_python(SNIPPETS[index])


def test_readme_usage_snippet_prints_its_verdict():
    [usage] = [s for s in SNIPPETS if "assert_pipelines_equivalent(ds, loader" in s]
    out = run_python(usage)
    assert out.splitlines()[-1] == "bit-identical 8"


def test_training_example_runs_and_checks_the_labels_the_network_saw():
    proc = subprocess.run([sys.executable, "examples/train_mindspore.py"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "value_and_grad loop: 8 batches, images and labels bit-identical to torch's" in proc.stdout
    assert "Model.train: 8 batches, images and labels bit-identical to torch's" in proc.stdout


def test_docstring_examples_run():
    """Every docstring example in the packages runs as written (``pytest --doctest-modules``)."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--doctest-modules", "-o", "addopts=",
         "porting", "adapters", "yolov5_core", "yolov5_pt", "yolov5_ms"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert " passed" in proc.stdout.splitlines()[-1]
