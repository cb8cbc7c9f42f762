"""``torch2ms check --resume-at EPOCH:BATCH``: the port stopped there, resumed from its state in a new process.

The MindSpore side runs to the position, saves ``state_dict()`` (JSON, in a temporary folder) and stops; a new
Python process builds the loader again from the factory, resumes the port from that state and compares the rest
of the stream against torch's uninterrupted run (built and walked in that process too, from the start). The two
parts' comparisons are added up into one report whose locations number the batches of the whole run.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from typing import Any

__all__ = ["compare_resumed", "parse_resume_at"]


def parse_resume_at(text: str) -> tuple[int, int]:
    """``"1:3"`` → ``(1, 3)``: stop after batch 3 of epoch 1 has been taken (batch 0: before the epoch).

    Raises:
        ValueError: not two non-negative integers joined by ``:``.
    """
    parts = text.split(":")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise ValueError(f"--resume-at: expected EPOCH:BATCH (two non-negative integers), got {text!r}")
    return int(parts[0]), int(parts[1])


@dataclasses.dataclass
class _RemoteMismatch:
    """A mismatch found in the resumed process (its location and text, as data)."""

    location: str
    text: str

    def __str__(self) -> str:
        return self.text


@dataclasses.dataclass
class _Joined:
    """The two parts' comparisons added up (what ``_check._record_outcome`` reads)."""

    batches: int
    tensors: int
    bytes: int
    mismatches: list
    count_mismatch: str | None
    worst_abs_diff: Any
    worst_abs_location: str | None
    ok: bool
    verdict: str


def compare_resumed(ds, walks, *, at: tuple[int, int], per_epoch: int | None, digests: list, repro,
                    options: dict) -> _Joined:  # fmt: skip
    """Compare the first part in this process, save the state, compare the rest in a new process.

    Args:
        ds: the port (``to_mindspore`` of a fresh build), not yet iterated.
        walks: ``(ms_walk, torch_walk, side)`` of this process (``side`` tags errors, see ``_check._side``).
        at: ``(epoch, batch)``: where the MindSpore side stops.
        per_epoch: batches per epoch (must be known).
        digests: torch's reference digests (the first torch run), for the resumed process's reproducibility check.
        repro: this process's reproducibility watcher (its ``first`` is set from the new process's finding).
        options: ``target``, ``seed``, ``epochs``, ``loop``, ``set_epoch``, ``tolerance``, ``equal_nan``,
            ``compare`` (compare_pipelines' tolerance keywords), ``progress``.

    Raises:
        CheckError: the position is outside the run, or the resumed process could not run (exit 2).
    """
    from porting.cli._check import CheckError
    from porting.harness._pipelines import compare_pipelines

    epoch, batch = at
    epochs = options["epochs"]
    if not per_epoch:
        raise CheckError("--resume-at needs a loader whose epochs have a known length (len(loader))")
    if epoch >= epochs or batch > per_epoch:
        raise CheckError(
            f"--resume-at {epoch}:{batch}: the run has {epochs} epoch(s) of {per_epoch} batches "
            f"(EPOCH < {epochs}, BATCH <= {per_epoch})"
        )
    first = epoch * per_epoch + batch
    ms_walk, torch_walk, side = walks
    part = None
    # Held here until the state is taken: an iterator dropped is an epoch left (the state would begin the next).
    ms_side = iter(side("MindSpore", ms_walk, ms_walk.position))
    if first:
        part = compare_pipelines(ms_side,
                                 side("torch", repro.watch(torch_walk), torch_walk.position),
                                 progress=options["progress"], total=first, max_batches=first,
                                 batches_per_epoch=per_epoch, **options["compare"])  # fmt: skip
    state = ds.state_dict()
    del ms_side
    ds.close()
    only_digests = [[d for _, d in batch] for batch in digests]  # (the watcher compares digests, not keys)
    rest = _in_new_process(state, first, per_epoch, only_digests, options)
    if rest.get("torch_not_reproducible") and repro.first is None:
        repro.first = rest["torch_not_reproducible"]
    if "error" in rest:
        raise _ResumedError(rest["error"], rest.get("error_type", "Exception"))
    theirs = [_RemoteMismatch(m["location"], m["text"]) for m in rest["mismatches"]]
    mine = list(part.mismatches) if part is not None else []
    worst = [(w, loc) for w, loc in ((rest["worst_abs_diff"], rest["worst_abs_location"]),) if loc is not None]
    if part is not None and part.worst_abs_location is not None:
        worst.append((part.worst_abs_diff, part.worst_abs_location))
    worst_abs = max(worst, key=lambda x: abs(x[0]) if isinstance(x[0], (int, float)) else 0) if worst else (0, None)
    return _Joined(
        batches=(part.batches if part else 0) + rest["batches"],
        tensors=(part.tensors if part else 0) + rest["tensors"],
        bytes=(part.bytes if part else 0) + rest["bytes"],
        mismatches=mine + theirs,
        count_mismatch=(part.count_mismatch if part else None) or rest["count_mismatch"],
        worst_abs_diff=worst_abs[0],
        worst_abs_location=worst_abs[1],
        ok=(part is None or part.ok) and rest["ok"],
        verdict=part.verdict if part is not None else rest["verdict"],  # (read only when both parts are ok)
    )


class _ResumedError(Exception):
    """The resumed process's loader raised: its first line, with the original type's name."""

    def __init__(self, text: str, type_name: str) -> None:
        super().__init__(f"{type_name}: {text}" if not text.startswith(type_name) else text)
        self._torch2ms_side = "MindSpore (resumed in a new process)"
        self._torch2ms_at = None


def _in_new_process(state: dict, first: int, per_epoch: int, digests: list, options: dict) -> dict:
    from porting.cli._check import CheckError

    with tempfile.TemporaryDirectory(prefix="torch2ms-resume-") as tmp:
        params = {
            **{k: options[k] for k in ("target", "seed", "epochs", "loop", "set_epoch", "tolerance", "equal_nan")},
            "first_batch": first,
            "per_epoch": per_epoch,
            "state": state,
            "digests": digests,
            "out": os.path.join(tmp, "rest.json"),
        }
        path = os.path.join(tmp, "params.json")
        with open(path, "w") as f:
            json.dump(params, f)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        code = "import sys; from porting.cli._check_resume import resumed_main; sys.exit(resumed_main(sys.argv[1]))"
        done = subprocess.run([sys.executable, "-c", code, path], env=env, capture_output=True, text=True)
        try:
            with open(params["out"]) as f:
                return json.load(f)
        except (OSError, ValueError):
            tail = (done.stderr or "").strip().splitlines()[-1:] or ["no output"]
            raise CheckError(
                f"--resume-at: the new process that resumes the port exited with status {done.returncode} "
                f"without a result ({tail[0]})"
            ) from None


def resumed_main(params_path: str) -> int:
    """Body of the new process: torch's uninterrupted run against the port resumed from the saved state."""
    with open(params_path) as f:
        p = json.load(f)
    out: dict[str, Any]
    try:
        out = _resumed_part(p)
    except Exception as exc:
        from porting.cli._check import _first_line, _original_message, _type_name

        out = {"error": _original_message(exc) or _first_line(exc), "error_type": _type_name(exc)}
    with open(p["out"], "w") as f:
        json.dump(out, f)
    return 0


def _resumed_part(p: dict) -> dict:
    from porting.cli._check import (
        _build,
        _MindSporeWalk,
        _port,
        _Reproducibility,
        _side,
        _TorchWalk,
        load_factory,
        parse_tolerance,
    )
    from porting.harness._pipelines import compare_pipelines

    target, seed, epochs, first, per_epoch = p["target"], p["seed"], p["epochs"], p["first_batch"], p["per_epoch"]
    factory = load_factory(target)
    loader, _, _ = _build(factory, target, seed)
    torch_walk = _TorchWalk(loader, epochs, None, p["set_epoch"], None, target)
    repro = _Reproducibility([[(None, d) for d in batch] for batch in p["digests"]], per_epoch)
    torch_side = _skip(repro.watch(torch_walk), first)
    _, args, kwargs = _build(factory, target, seed)
    ds = _port(args, {**kwargs, "state": p["state"]}, None, p["set_epoch"], target)
    try:
        ms_walk = _MindSporeWalk(ds, epochs - p["state"]["epoch"], p["loop"], per_epoch)
        report = compare_pipelines(_side("MindSpore", ms_walk, ms_walk.position),
                                   _side("torch", torch_side, torch_walk.position), progress=False,
                                   batches_per_epoch=per_epoch, first_batch=first, allow_empty=True,
                                   equal_nan=p["equal_nan"], **parse_tolerance(p["tolerance"]))  # fmt: skip
    finally:
        ds.close()
    return {
        "batches": report.batches,
        "tensors": report.tensors,
        "bytes": report.bytes,
        "mismatches": [{"location": m.location, "text": str(m)} for m in report.mismatches[:1]]
        + [{"location": m.location, "text": ""} for m in report.mismatches[1:]],
        "count_mismatch": report.count_mismatch,
        "worst_abs_diff": report.worst_abs_diff,
        "worst_abs_location": report.worst_abs_location,
        "ok": report.ok,
        "verdict": report.verdict,
        "torch_not_reproducible": repro.first,
    }


def _skip(batches, n: int):
    it = iter(batches)
    for _ in range(n):
        next(it)
    yield from it
