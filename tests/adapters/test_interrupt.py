"""Ctrl-C on a hung pipeline, and no pipeline process outliving its caller (issue 7, item 11).

Each scenario runs in its own interpreter (tests/adapters/_interrupt_scenario.py), its output in
files (a stuck process holding a pipe would make a captured run wait for it), always with a
timeout. A SIGINT is sent from inside the scenario: background processes of a non-interactive
shell ignore SIGINT, and Ctrl-C at a terminal is the same signal to the same process. Every process
of a scenario is found by a token on its command line (they are all forks of it, whoever their
parent is now) and killed at the end whatever happened.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import numpy as np
import psutil
import pytest

import adapters

SCENARIO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_interrupt_scenario.py")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GONE_WITHIN = 6.0  # seconds: the guardian's 1 s grace, plus a loaded 2-core machine's scheduling


def _processes(token: str) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline", "status"]):
        try:
            if token in (p.info["cmdline"] or []) and p.info["status"] != psutil.STATUS_ZOMBIE:
                found.append(p)
        except psutil.Error:
            continue
    return found


def _wait_gone(token: str, within: float) -> list[int]:
    deadline = time.monotonic() + within
    while True:
        alive = [p.pid for p in _processes(token)]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


class Scenario:
    def __init__(self, tmp_path, case: str, num_workers: int, action: str) -> None:
        self.token = f"torch2ms-test-{uuid.uuid4().hex}"
        self.marker = str(tmp_path / "hung")
        self.out, self.err = tmp_path / "out.txt", tmp_path / "err.txt"
        env = {**os.environ, "PYTHONPATH": ROOT, "GLOG_v": "3"}
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, SCENARIO, self.token, self.marker, case, str(num_workers), action],
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=ROOT,
            )

    def wait_hung(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.marker):
            assert self.proc.poll() is None, f"the scenario exited ({self.proc.returncode}):\n{self.stderr()[-3000:]}"
            assert time.monotonic() < deadline, "the scenario never reached its hanging sample"
            time.sleep(0.1)

    def wait(self, timeout: float = 120) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the scenario did not exit within {timeout} s (hung):\n{self.stderr()[-3000:]}")

    def stderr(self) -> str:
        return self.err.read_text()

    def records(self) -> dict:
        out = {}
        for line in self.out.read_text().splitlines():
            out.update(json.loads(line))
        return out

    def kill_all(self) -> None:
        for p in _processes(self.token):
            try:
                p.kill()
            except psutil.Error:
                pass
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def scenario(tmp_path):
    made = []

    def make(case, num_workers, action):
        s = Scenario(tmp_path, case, num_workers, action)
        made.append(s)
        return s

    yield make
    for s in made:
        s.kill_all()


@pytest.mark.timeout(200)
@pytest.mark.parametrize(
    "case, num_workers",
    [("getitem", 0), ("getitem", 2), ("epoch1", 2), ("map", 2), ("probe", 2)],
    ids=[
        "getitem-0-workers",
        "getitem-2-workers",
        "first-batch-of-epoch-1-persistent",
        "through-map",
        "in-to_mindspore",
    ],
)
def test_ctrl_c_on_a_hung_pipeline_interrupts_promptly_and_leaves_nothing(scenario, case, num_workers):
    s = scenario(case, num_workers, "sigint")
    s.wait_hung()
    rc = s.wait(60)
    err = s.stderr()
    # Python's exit for an uncaught KeyboardInterrupt is death by SIGINT: not a segfault, not a hang.
    assert rc == -signal.SIGINT, f"exit status {rc}:\n{err[-3000:]}"
    assert "KeyboardInterrupt" in err and "Segmentation fault" not in err and "Fatal Python error" not in err
    rec = s.records()
    assert rec["interrupt_after"] is not None and rec["interrupt_after"] < 5.0, rec
    if case != "probe":  # to_mindspore() itself waits in Python: the interrupt is torch's own path there
        assert "to_mindspore: interrupted while waiting for batch" in err, err[-3000:]
    # The caller's state is as it was: its process group, SIGINT's handler, no wake-up fd left set.
    assert rec["pgrp_same"] and rec["sigint_default"] and rec["wakeup_fd"] == -1, rec
    assert _wait_gone(s.token, GONE_WITHIN) == []


@pytest.mark.timeout(200)
def test_after_a_caught_interrupt_the_dataset_refuses_to_continue_and_its_processes_are_gone(scenario):
    s = scenario("getitem", 2, "sigint-catch")
    s.wait_hung()
    assert s.wait(60) == 0, s.stderr()[-3000:]
    rec = s.records()
    assert "stopped by a KeyboardInterrupt (batch 6 of epoch 0, torch worker 0 of 2" in rec["reuse"], rec
    assert "Build a new dataset with to_mindspore" in rec["reuse"]
    assert _wait_gone(s.token, GONE_WITHIN) == []


@pytest.mark.timeout(200)
@pytest.mark.parametrize("case, num_workers", [("getitem", 0), ("getitem", 2), ("epoch1", 2)])
def test_a_hung_pipeline_does_not_outlive_its_caller_killed_by_sigkill(scenario, case, num_workers):
    s = scenario(case, num_workers, "wait")
    s.wait_hung()
    with open(s.marker) as f:
        stuck = int(f.read())
    pipeline = [p.pid for p in _processes(s.token) if p.pid != s.proc.pid]
    assert stuck in pipeline and len(pipeline) >= 3, pipeline  # guardian, loader (+ runner), the stuck one
    os.kill(s.proc.pid, signal.SIGKILL)  # no finaliser, no atexit: only the kernel closing its files
    assert s.wait(30) == -signal.SIGKILL
    assert _wait_gone(s.token, GONE_WITHIN) == []


class _StuckAt:
    def __init__(self, index: int) -> None:
        self.index = index

    def __len__(self) -> int:
        return 40

    def __getitem__(self, i: int):
        if i == self.index:
            time.sleep(1000)
        return np.array([i])


def _pipeline_pids(ds) -> list[int]:
    pgid = ds._engine._pgid
    out = []
    for p in psutil.Process().children(recursive=True):
        try:
            if os.getpgid(p.pid) == pgid and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p.pid)
        except (OSError, psutil.Error):
            continue
    return out


def _alive(pids: list[int]) -> list[int]:
    """The processes of ``pids`` still running (neither gone nor a zombie): one may exit while it is looked at."""
    out = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except psutil.NoSuchProcess:
            continue
    return out


@pytest.mark.timeout(120)
def test_close_kills_a_worker_stuck_in_getitem():
    # Two rows taken, then the loop leaves; a worker prefetching ahead is stuck on sample 8 by then.
    ds = adapters.to_mindspore(_StuckAt(8), batch_size=2, num_workers=2)
    it = ds.create_tuple_iterator(output_numpy=True, num_epochs=1)
    assert [next(it)[0].ravel().tolist() for _ in range(2)] == [[0, 1], [2, 3]]
    pids = _pipeline_pids(ds)
    assert len(pids) >= 4, pids  # guardian, loader, runner, 2 workers (one stuck)
    ds.close()
    # The epoch ends; reading to that end also takes MindSpore's error for it (left unread, MindSpore
    # would report its text with the next pipeline error of this process, whichever pipeline).
    with pytest.raises(RuntimeError, match=r"this dataset was closed \(close\(\)\)"):
        for _ in range(20):
            next(it)
    deadline = time.monotonic() + GONE_WITHIN
    while _alive(pids):
        assert time.monotonic() < deadline, f"still alive after close(): {pids}"
        time.sleep(0.1)
    assert os.getpgrp() != ds._engine._pgid  # the pipeline's group, never the caller's
    del it


def test_iterating_leaves_the_callers_signal_state_and_process_group_alone():
    r, w = os.pipe()
    os.set_blocking(w, False)
    before = (os.getpgrp(), signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    ds = adapters.to_mindspore(list(range(8)), batch_size=2, num_workers=1)
    # A wake-up fd of the caller's own (asyncio's, say) is never replaced, not even during next().
    old = signal.set_wakeup_fd(w)
    try:
        rows = [r[0].tolist() for r in ds.create_tuple_iterator(output_numpy=True, num_epochs=1)]
        assert signal.set_wakeup_fd(w) == w
    finally:
        signal.set_wakeup_fd(old)
        os.close(r)
        os.close(w)
    assert rows == [[0, 1], [2, 3], [4, 5], [6, 7]]
    # Without one, none is left behind either.
    rows = [r[0].tolist() for r in ds.create_tuple_iterator(output_numpy=True, num_epochs=1)]
    assert rows == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert signal.set_wakeup_fd(-1) == -1
    assert (os.getpgrp(), signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


@pytest.mark.timeout(300)
@pytest.mark.parametrize("action, status", [("raise", 1), ("exit0", 0)])
@pytest.mark.parametrize("num_workers", [0, 2])
def test_interpreter_exit_with_a_busy_pipeline_finishes_in_seconds(scenario, action, status, num_workers):
    # An uncaught error (or sys.exit) in the loop while the pipeline is busy: MindSpore's clean-up of the
    # dropped iterator waits for the source, which must stop waiting on the pipeline's processes then.
    for _ in range(3):  # it used to hang in 4 runs of 5
        s = scenario("getitem", num_workers, action)
        started = time.monotonic()
        assert s.wait(30) == status, s.stderr()[-3000:]
        assert time.monotonic() - started < 30
        assert _wait_gone(s.token, GONE_WITHIN) == []


@pytest.mark.timeout(200)
@pytest.mark.parametrize("num_workers", [0, 2])
def test_a_sigterm_handler_of_yours_runs_while_a_worker_hangs(scenario, num_workers):
    # torch's loop waits in Python, so a SIGTERM handler runs at once; so does the port's.
    s = scenario("getitem", num_workers, "sigterm")
    s.wait_hung()
    time.sleep(0.5)
    sent = time.monotonic()
    s.proc.send_signal(signal.SIGTERM)
    assert s.wait(30) == 7, s.stderr()[-3000:]
    assert time.monotonic() - sent < 10
    assert s.records().get("handler_ran") is True
    assert _wait_gone(s.token, GONE_WITHIN) == []
