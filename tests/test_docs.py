"""The documentation's Python snippets, commands and links work as written: they can never drift from the code.

Every ```python block of README.md, CONTRIBUTING.md, CHANGELOG.md and docs/*.md runs in a fresh interpreter
(as a file would), and is also fed line by line to an interactive Python shell (``code.InteractiveConsole``):
a blank line inside a class body, or a statement right after an indented block, breaks a paste there. A block
that cannot run here (it needs a GPU, or the reader's own files) is marked ```python no-run, and nothing else
is skipped. The README's `torch2ms` commands run as written, and every relative link points at a file and heading.
"""

import code
import os
import pathlib
import re
import shlex
import subprocess
import sys

import pytest

from tests._helpers.subproc import ROOT, run_python

PAGES = {name: pathlib.Path(ROOT, name).read_text() for name in ("README.md", "CONTRIBUTING.md", "CHANGELOG.md")}
PAGES.update({f"docs/{p.name}": p.read_text() for p in sorted(pathlib.Path(ROOT, "docs").glob("*.md"))})
FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```", flags=re.S | re.M)
PYTHON_INFO = {"python": True, "python no-run": False}  # info string -> runs here


def _blocks(page: str, language: str) -> list[tuple[str, str]]:
    """``(info string, code)`` of every fenced block of ``page`` whose info string starts with ``language``."""
    return [(info.strip(), body) for info, body in FENCE.findall(PAGES[page]) if info.split(" ")[0] == language]


SNIPPETS = {page: [body for info, body in _blocks(page, "python") if PYTHON_INFO.get(info)] for page in PAGES}
README_SNIPPETS = SNIPPETS["README.md"]
# Snippets another test runs, checking what they print as well (running them twice costs ~30 s).
RUN_ELSEWHERE = {("docs/model-alignment.md", 0): "tests/porting/test_docs_alignment.py"}
CASES = [(page, i) for page in SNIPPETS for i in range(len(SNIPPETS[page]))]


def test_readme_has_python_snippets():
    assert README_SNIPPETS, "the README's ```python blocks were not found"


def test_every_python_block_is_runnable_or_marked_not_runnable():
    for page in PAGES:
        for info, _ in _blocks(page, "python"):
            assert info in PYTHON_INFO, f"{page}: ```{info}: expected one of {sorted(PYTHON_INFO)}"


@pytest.mark.parametrize("page, index", [c for c in CASES if c not in RUN_ELSEWHERE], ids=lambda v: str(v))
def test_snippet_runs(page, index):
    run_python(SNIPPETS[page][index])


def test_snippets_run_elsewhere_are_run_there():
    for (page, index), test_file in RUN_ELSEWHERE.items():
        assert index < len(SNIPPETS[page]), f"{page} has no snippet {index}"
        source = pathlib.Path(ROOT, test_file).read_text()
        assert pathlib.Path(page).name in source and "run_python(" in source, f"{test_file} does not run {page}"


class _Shell(code.InteractiveConsole):
    """Python's interactive shell, compiling each statement as a paste would, running nothing."""

    def __init__(self):
        super().__init__()
        self.errors = []

    def runcode(self, code_object):  # running is test_snippet_runs' job
        pass

    def showsyntaxerror(self, filename=None, **kwargs):
        self.errors.append(sys.exc_info()[1])

    def write(self, data):
        pass


def _paste(snippet: str) -> str | None:
    """The first error a Python shell reports when ``snippet`` is pasted into it, or None."""
    shell, more = _Shell(), False
    for number, line in enumerate(snippet.splitlines(), 1):
        more = shell.push(line)
        if shell.errors:
            return f"line {number} ({line.strip()!r}): {shell.errors[0]}"
    if more:
        shell.push("")  # the Enter that ends the last block
    return str(shell.errors[0]) if shell.errors else None


@pytest.mark.parametrize("page, index", CASES, ids=lambda v: str(v))
def test_snippet_pastes_into_a_python_shell(page, index):
    error = _paste(SNIPPETS[page][index])
    assert error is None, f"{page}, python snippet {index}: pasted into a Python shell: {error}"


def test_the_paste_check_catches_what_breaks_a_paste():
    assert _paste("class A:\n    def f(self):\n        return 1\n\n    def g(self):\n        return 2\n")
    assert _paste("for i in range(2):\n    x = i\nprint(x)\n")
    assert _paste("class A:\n    def f(self):\n        return 1\n    def g(self):\n        return 2\n\nA()\n") is None


def _anchor(heading: str) -> str:
    """GitHub's anchor for a markdown heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_relative_links_point_at_files_and_headings():
    for page, text in PAGES.items():
        prose = FENCE.sub("", text)
        for target in re.findall(r"\]\(([^)\s]+)\)", prose):
            if re.match(r"[a-z]+://", target):
                continue
            path, _, anchor = target.partition("#")
            file = pathlib.Path(ROOT, page).parent.joinpath(path).resolve() if path else pathlib.Path(ROOT, page)
            assert file.exists(), f"{page}: link ({target}): no file {file}"
            if anchor:
                headings = re.findall(r"^#+ (.*)$", FENCE.sub("", file.read_text()), flags=re.M)
                assert anchor in {_anchor(h) for h in headings}, f"{page}: link ({target}): no such heading"


def test_readme_usage_snippet_prints_its_verdict():
    [usage] = [s for s in README_SNIPPETS if "assert_pipelines_equivalent(ds, loader" in s]
    out = run_python(usage)
    assert out.splitlines()[-1] == "bit-identical 8"


def _readme_commands() -> list[str]:
    lines = [line.split("#")[0].strip() for _, body in _blocks("README.md", "bash") for line in body.splitlines()]
    return [line for line in lines if line]


def test_readme_says_how_torch2ms_is_reached():
    commands = _readme_commands()
    assert commands[:2] == ["bash scripts/demo.sh", "bash scripts/test.sh"]
    first_torch2ms = next(i for i, c in enumerate(commands) if c.startswith("torch2ms"))
    assert "source .venv/bin/activate" in commands[:first_torch2ms]
    assert "`.venv/bin/torch2ms" in PAGES["README.md"]
    assert pathlib.Path(sys.executable).with_name("torch2ms").exists(), "setup.sh installs torch2ms next to python"


@pytest.mark.parametrize("command", [c for c in _readme_commands() if c.startswith("torch2ms")])
def test_readme_torch2ms_command_runs_as_written(command, tmp_path):
    """Each `torch2ms ...` line of the README, after `source .venv/bin/activate`, from a clone's root.

    It runs in a copy of the root's relevant parts (examples/, and demo_out/data as `bash scripts/demo.sh`
    leaves it), so that the reports it writes land in tmp_path.
    """
    os.symlink(pathlib.Path(ROOT, "examples"), tmp_path / "examples")
    if "demo_out/" in command:
        from yolov5_core import make_synthetic_dataset

        make_synthetic_dataset(tmp_path / "demo_out" / "data", n_images=16, seed=0)  # what the demo writes
    env = {**os.environ, "PATH": f"{pathlib.Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run(shlex.split(command), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{command}: exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"


def test_training_example_runs_and_checks_the_labels_the_network_saw():
    proc = subprocess.run(
        [sys.executable, "examples/train_mindspore.py"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "value_and_grad loop: 8 batches, images and labels bit-identical to torch's" in proc.stdout
    assert "Model.train: 8 batches, images and labels bit-identical to torch's" in proc.stdout


def test_docstring_examples_run():
    """Every docstring example in the packages runs as written (``pytest --doctest-modules``)."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--doctest-modules", "-o", "addopts=",
         "torch2ms_base", "porting", "adapters", "yolov5_core", "yolov5_pt", "yolov5_ms"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert " passed" in proc.stdout.splitlines()[-1]
