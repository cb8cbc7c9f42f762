"""docs/model-alignment.md's Python snippet runs as written and prints what the page shows."""

import pathlib
import re

import pytest

from tests._helpers.subproc import ROOT, run_python

DOC = pathlib.Path(ROOT, "docs", "model-alignment.md").read_text()
SNIPPETS = re.findall(r"^```python\n(.*?)^```", DOC, flags=re.S | re.M)


def test_the_worked_example_runs_and_prints_its_findings():
    pytest.importorskip("mindcv")
    assert len(SNIPPETS) == 1
    out = run_python(SNIPPETS[0])
    shown = DOC[DOC.index("```text\nstatus") :]
    for line in (
        "aligned: 122 parameters/buffers and 67 layers paired",
        "17 loaded, 85 renamed, 0 converted, 20 carried",
        "first divergence: layer 'maxpool' (MaxPool2d), forward output",
        "all 75 layer calls match (float64 rule)",
        "layer      fc                                         classifier",
    ):
        assert line in out and line in shown, line
