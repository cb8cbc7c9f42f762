"""A pipeline whose ``__getitem__`` hangs, run as its own process by tests/adapters/test_interrupt.py.

Usage: ``python _interrupt_scenario.py TOKEN MARKER CASE NUM_WORKERS ACTION``

* TOKEN: any string; it stays in every process's command line (they are forks), so the test can
  find every process of this scenario, whoever their parent is now.
* MARKER: a file the hanging ``__getitem__`` creates (its pid inside) before it hangs.
* CASE: ``getitem`` (sample 12 of epoch 0 hangs), ``epoch1`` (sample 0 hangs in epoch 1: its first
  batch; one iterator per epoch, persistent workers), ``map`` (as ``getitem``, through ``ds.map(...)``),
  ``probe`` (sample 0 hangs: inside ``to_mindspore()`` itself).
* ACTION: ``sigint`` (a SIGINT to this process once the marker exists; the KeyboardInterrupt is left
  uncaught), ``sigint-catch`` (the same, caught; then the dataset is used again), ``wait`` (nothing:
  the test kills this process), ``sigterm`` (a SIGTERM handler of the user's that exits with status 7;
  the test sends the SIGTERM), ``raise`` / ``exit0`` (after the first row, an uncaught ValueError /
  ``sys.exit(0)`` while the pipeline is busy).

Prints JSON lines: ``{"interrupt_after": seconds}`` (from the SIGINT to the KeyboardInterrupt),
``{"reuse": message}``, ``{"pgrp_same": bool, "sigint_default": bool, "wakeup_fd": int}``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

import adapters  # noqa: E402

_, TOKEN, MARKER, CASE, _NUM_WORKERS, ACTION = sys.argv
NUM_WORKERS = int(_NUM_WORKERS)
SENT: list[float] = []


class Hang:
    """``__getitem__(hang_at)`` hangs the ``visit``-th time this process (or the one it was forked from) gets it."""

    def __init__(self, hang_at: int, visit: int = 1) -> None:
        self.hang_at, self.visit, self.seen = hang_at, visit, 0

    def __len__(self) -> int:
        return 40

    def __getitem__(self, i: int):
        if i == self.hang_at:
            self.seen += 1
            if self.seen >= self.visit:
                with open(MARKER + ".tmp", "w") as f:
                    f.write(str(os.getpid()))
                os.replace(MARKER + ".tmp", MARKER)
                while True:
                    time.sleep(1000)
        return np.array([i])


def _interrupt_when_hung() -> None:
    while not os.path.exists(MARKER):
        time.sleep(0.05)
    time.sleep(0.3)  # let the loop's thread settle into MindSpore's next()
    SENT.append(time.monotonic())
    os.kill(os.getpid(), signal.SIGINT)


def _emit(**kw) -> None:
    print(json.dumps(kw), flush=True)


def _user_sigterm_handler(signum, frame) -> None:
    _emit(handler_ran=True)
    sys.exit(7)


def main() -> None:  # noqa: C901 - one branch per (CASE, ACTION) the tests run; `ds` is read by the handler
    pgrp = os.getpgrp()
    if ACTION.startswith("sigint"):
        threading.Thread(target=_interrupt_when_hung, daemon=True).start()
    if ACTION == "sigterm":
        signal.signal(signal.SIGTERM, _user_sigterm_handler)
    try:
        if CASE == "probe":
            adapters.to_mindspore(Hang(0), batch_size=2, num_workers=NUM_WORKERS)
            raise AssertionError("to_mindspore returned")
        if CASE == "epoch1":
            # Persistent workers (or, without workers, the loader's forks) keep the dataset object:
            # sample 0 hangs when it is fetched again, in epoch 1.
            ds = adapters.to_mindspore(
                Hang(0, visit=2), batch_size=2, num_workers=NUM_WORKERS, persistent_workers=NUM_WORKERS > 0
            )
            for _ in range(3):
                for _row in ds.create_tuple_iterator(output_numpy=True, num_epochs=1):
                    pass
        else:
            ds = adapters.to_mindspore(Hang(12), batch_size=2, num_workers=NUM_WORKERS)
            if CASE == "map":
                ds = ds.map(lambda x: x * 2, input_columns=["0"])
            for _row in ds.create_tuple_iterator(output_numpy=True, num_epochs=1):
                if ACTION == "raise":
                    raise ValueError("an error of the training loop")
                if ACTION == "exit0":
                    sys.exit(0)
        raise AssertionError("the epoch ended")
    except KeyboardInterrupt:
        _emit(interrupt_after=time.monotonic() - SENT[0] if SENT else None)
        _emit(
            pgrp_same=os.getpgrp() == pgrp,
            sigint_default=signal.getsignal(signal.SIGINT) is signal.default_int_handler,
            wakeup_fd=signal.set_wakeup_fd(-1),
        )
        if ACTION == "sigint-catch":
            try:
                ds.create_tuple_iterator(output_numpy=True, num_epochs=1)
            except RuntimeError as err:
                _emit(reuse=str(err))
            return
        raise


if __name__ == "__main__":
    main()
