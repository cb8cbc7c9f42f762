"""Run python snippets in fresh interpreters (optionally with torch made unimportable)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Makes `import torch` (and its submodules) fail the way it does when torch is not installed.
BLOCK_TORCH = """
import sys
class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked for this test)", name=name)
        return None
sys.meta_path.insert(0, _NoTorch())
"""


def run_python(code: str, *, block_torch: bool = False, env: dict | None = None, timeout: float = 300) -> str:
    """Run ``code`` in a new interpreter and return its stdout; raise with stderr on failure."""
    src = (BLOCK_TORCH if block_torch else "") + textwrap.dedent(code)
    full_env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-c", src], capture_output=True, text=True, env=full_env, timeout=timeout, cwd=ROOT
    )
    if proc.returncode != 0:
        raise AssertionError(f"subprocess failed with exit code {proc.returncode}:\n{proc.stderr[-4000:]}")
    return proc.stdout


def run_json(code: str, **kwargs) -> Any:
    """Run ``code`` (which prints one JSON document as its last stdout line) and parse it."""
    out = run_python(code, **kwargs)
    return json.loads(out.strip().splitlines()[-1])


def run_ranks(script_path, args: list[str], *, world: int = 2, timeout: float = 300) -> None:
    """Run ``script_path`` once per rank (``RANK``/``LOCAL_RANK``/``WORLD_SIZE`` set, as torchrun does).

    Each rank's output goes to a file next to the script (a full pipe cannot stall a rank); a rank
    that fails or outlives ``timeout`` fails the call with its stderr, and no rank is left running.
    """
    import pathlib

    script = pathlib.Path(script_path)
    procs, logs = [], []
    try:
        for rank in range(world):
            log = open(script.with_name(f"{script.stem}.rank{rank}.log"), "w+")
            logs.append(log)
            env = {**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world),
                   "PYTHONPATH": ROOT}  # fmt: skip
            procs.append(subprocess.Popen([sys.executable, str(script), *args], env=env, cwd=ROOT, stdout=log,
                                          stderr=subprocess.STDOUT))  # fmt: skip
        for rank, p in enumerate(procs):
            p.wait(timeout=timeout)
            logs[rank].seek(0)
            assert p.returncode == 0, f"rank {rank} exited with {p.returncode}:\n{logs[rank].read()[-3000:]}"
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for log in logs:
            log.close()
