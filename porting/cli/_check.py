"""``torch2ms check``: is *my* loader ported exactly? Torch and ``adapters.to_mindspore`` side by side.

The check, for a user function that builds a torch ``DataLoader`` (or returns ``(dataset,
dataloader_kwargs)``):

1. **Torch against itself.** Seed everything, build the loader, walk it for the chosen epochs and
   keep a digest of every batch. A loader that seeds from the clock or ``uuid`` cannot be ported
   exactly by anyone: that is reported as "torch side not reproducible", naming the first batch
   that changed, before the port is blamed.
2. **MindSpore against torch.** Seed everything again, build the loader again, convert it with
   ``adapters.to_mindspore`` (which snapshots it), then walk torch and MindSpore in lock step and
   compare every batch with :func:`porting.compare_pipelines` — exact unless a tolerance is chosen.
   The torch batches are also checked against the digests of step 1.

The walks are bounded: an epoch ends where ``len(loader)`` says (a sampler without ``__len__`` or an
``IterableDataset`` without one is refused up front, naming ``--steps`` / ``--max-batches-per-epoch``),
and an epoch that runs past its bound stops the check with an error, never runs on.

Exit status (:class:`porting.cli._exit.ExitCode`): 0 every batch matched and at least one was compared; 1 a mismatch;
2 bad invocation (module, factory, options, an empty or endless loader, a target that calls ``sys.exit``);
3 torch side not reproducible; 4 the user's loader raised (the error keeps its type; its first line names the
side, epoch, batch and, from the port's replay, the dataset index and worker).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.util
import itertools
import json
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from porting.cli._exit import ExitCode
from porting.harness._pipelines import batch_location, loader_epochs
from torch2ms_base._report import Report, jsonable, markdown_table

__all__ = ["CheckError", "CheckResult", "call_factory", "load_factory", "parse_tolerance", "run_check"]


class CheckError(Exception):
    """A problem with the invocation (module, factory, options, an empty loader): exit status 2."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "(no message)"


@dataclasses.dataclass
class CheckResult(Report):
    """What ``torch2ms check`` found; ``status`` is the exit status (:class:`~porting.cli._exit.ExitCode`)."""

    target: str
    status: int
    outcome: str = dataclasses.field(repr=False)  # what `verdict` says
    epochs: int
    seed: int
    loop: str
    steps: int | None
    tolerance: str
    resumed_at: str | None = None  # --resume-at: where the MindSpore side stopped and was resumed in a new process
    columns: list = dataclasses.field(default_factory=list)
    batches: int = 0
    tensors: int = 0
    bytes: int = 0
    first_mismatch: str | None = None
    first_mismatch_text: str | None = None
    mismatches: int = 0
    count_mismatch: str | None = None
    worst_abs_diff: float | None = None
    worst_abs_location: str | None = None
    torch_not_reproducible: str | None = None
    torch_batches_per_s: float | None = None
    mindspore_batches_per_s: float | None = None
    speed_batches: int | None = None
    error: str | None = None
    versions: dict = dataclasses.field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether the check passed (exit status 0)."""
        return self.status == ExitCode.OK

    @property
    def verdict(self) -> str:
        """``bit-identical``, ``equivalent within ...``, ``MISMATCH``, ``torch side not reproducible``, ..."""
        return self.outcome

    def summary(self) -> str:
        """The first line of :meth:`lines`."""
        return self.lines()[0]

    def __str__(self) -> str:
        return "\n".join(self.lines())

    @property
    def ratio(self) -> float | None:
        """MindSpore's batches/s over torch's (above 1: the port is faster), each side timed alone (``speed=True``)."""
        if not self.torch_batches_per_s or self.mindspore_batches_per_s is None:
            return None
        return self.mindspore_batches_per_s / self.torch_batches_per_s

    def to_dict(self) -> dict:
        """JSON-ready dict (for CI): the report protocol's fields, then the throughput ratio."""
        return {**super().to_dict(), "ratio": jsonable(self.ratio)}

    def lines(self) -> list[str]:
        """The human summary."""
        out = [f"torch2ms check {self.target}: {self.verdict}"]
        out.append(
            f"  settings: {self.epochs} epoch(s), seed {self.seed}, loop {self.loop}"
            + (f", {self.steps} steps per epoch" if self.steps else "")
            + f", tolerance {self.tolerance}"
            + (f", MindSpore side resumed at {self.resumed_at} in a new process" if self.resumed_at else "")
        )
        if self.columns:
            out.append("  columns: " + ", ".join(f"{c['name']} {c['dtype']} {c['shape']}" for c in self.columns))
        out.append(f"  compared: {self.batches} batches, {self.tensors} tensors, {self.bytes} bytes")
        if self.torch_not_reproducible:
            out.append(f"  torch side not reproducible: {self.torch_not_reproducible}")
        if self.count_mismatch:
            out.append(f"  batch count mismatch: {self.count_mismatch}")
        if self.first_mismatch:
            out.append(f"  first mismatch ({self.mismatches} in all): {self.first_mismatch}")
        if self.worst_abs_location is not None:
            out.append(f"  worst absolute difference: {self.worst_abs_diff} at {self.worst_abs_location}")
        if self.torch_batches_per_s is not None:
            ratio = f", ratio {self.ratio:.2f}" if self.ratio is not None else ""
            out.append(
                f"  speed, each side alone on the same {self.speed_batches} batches, building the loader and "
                f"starting its workers included: torch {self.torch_batches_per_s:.1f} batches/s, MindSpore "
                f"{self.mindspore_batches_per_s:.1f} batches/s{ratio} (a short run is dominated by start-up; "
                "benchmarks/bench_adapters.py measures steady-state throughput)"
            )
        if self.error:
            out.append(f"  error: {self.error}")
        return out

    def to_markdown(self) -> str:
        """The report as Markdown."""
        rows = [("verdict", f"**{self.verdict}**"), ("exit status", str(self.status)),
                ("epochs", str(self.epochs)), ("seed", str(self.seed)), ("loop", self.loop),
                ("steps per epoch", str(self.steps or "-")), ("tolerance", self.tolerance),
                ("MindSpore side resumed at (new process)", self.resumed_at or "-"),
                ("batches compared", str(self.batches)), ("tensors compared", str(self.tensors)),
                ("bytes compared", str(self.bytes)), ("mismatches", str(self.mismatches)),
                ("first mismatch", self.first_mismatch or "-"),
                ("worst absolute difference", "-" if self.worst_abs_location is None
                 else f"{self.worst_abs_diff} at {self.worst_abs_location}"),
                ("torch side reproducible", "no: " + self.torch_not_reproducible
                 if self.torch_not_reproducible else "yes" if self.batches else "-"),
                ("torch batches/s (alone, start-up included)", _fmt(self.torch_batches_per_s)),
                ("MindSpore batches/s (alone, start-up included)", _fmt(self.mindspore_batches_per_s)),
                ("ratio (MindSpore / torch)", _fmt(self.ratio, ".2f"))]  # fmt: skip
        md = [f"# torch2ms check `{self.target}`", "", markdown_table(("", ""), rows)]
        if self.columns:
            md += [
                "",
                "## Columns",
                "",
                markdown_table(
                    ("name", "dtype", "shape (first batch)"),
                    [(c["name"], c["dtype"], c["shape"]) for c in self.columns],
                ),
            ]
        for title, text in (("First mismatch", self.first_mismatch_text), ("Error", self.error)):
            if text:
                md += ["", f"## {title}", "", "```", text, "```"]
        md += ["", "## Versions", ""] + [f"- {k}: {v}" for k, v in self.versions.items()]
        return "\n".join(md) + "\n"

    def write(self, folder: str | Path) -> tuple[Path, Path]:
        """Write ``check.json`` and ``check.md`` into ``folder``; return their paths."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        js, md = folder / "check.json", folder / "check.md"
        js.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        md.write_text(self.to_markdown())
        return js, md


def _fmt(value: float | None, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


# --------------------------------------------------------------------------- the user's factory


def load_factory(target: str) -> Callable[[], Any]:
    """Resolve ``MODULE:FACTORY`` (a dotted module importable from the current folder, or a ``.py`` path).

    Args:
        target: e.g. ``my_project.data:make_loader`` or ``tools/loader.py:build``.

    Returns:
        The factory (a callable taking no arguments).

    Raises:
        CheckError: a malformed target, a module that does not import (its error named), a missing
            attribute (the module's callables listed) or one that is not callable.

    Example:
        >>> load_factory("collections:OrderedDict").__name__
        'OrderedDict'
    """
    module_name, sep, attr = target.rpartition(":")
    if not sep or not module_name or not attr:
        raise CheckError(f"expected MODULE:FACTORY (e.g. my_project.data:make_loader), got {target!r}")
    if module_name.endswith(".py") or "/" in module_name:
        module = _import_file(target, Path(module_name))
    else:
        module = _import_module(target, module_name)
    if not hasattr(module, attr):
        names = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))
        raise CheckError(f"{target}: module {module_name!r} has no attribute {attr!r}; its callables: {names}")
    factory = getattr(module, attr)
    if not callable(factory):
        raise CheckError(f"{target}: {attr!r} is a {type(factory).__name__}, not a callable factory")
    return factory


def _import_file(target: str, path: Path) -> Any:
    """The module in the file ``path`` (``MODULE`` given as a ``.py`` path)."""
    if not path.is_file():
        raise CheckError(f"{target}: no such file {str(path)!r}")
    spec = importlib.util.spec_from_file_location(f"_torch2ms_check_{path.stem}", path)
    if spec is None or spec.loader is None:  # a suffix importlib has no loader for
        raise CheckError(f"{target}: {path} is not a Python source file (expected a .py file)")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SystemExit as exc:
        raise CheckError(
            f"{target}: importing {path} called sys.exit({exc.code!r}); a module given as a "
            "target must not exit when imported (guard its script part with "
            "if __name__ == '__main__':)"
        ) from None
    except Exception as exc:
        raise CheckError(f"{target}: importing {path} failed: {type(exc).__name__}: {_first_line(exc)}") from exc
    return module


def _import_module(target: str, module_name: str) -> Any:
    """The module ``module_name``, importable from the current folder as under ``python -m``."""
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))  # as `python -m` does: the user's project is importable
    try:
        return importlib.import_module(module_name)
    except SystemExit as exc:
        raise CheckError(
            f"{target}: importing module {module_name!r} called sys.exit({exc.code!r}); a module "
            "given as a target must not exit when imported (guard its script part with "
            "if __name__ == '__main__':)"
        ) from None
    except Exception as exc:
        raise CheckError(
            f"{target}: importing module {module_name!r} failed: {type(exc).__name__}: {_first_line(exc)}"
        ) from exc


def call_factory(factory: Callable[[], Any], target: str, returns: str = "a loader") -> Any:
    """Call the user's factory; an exception or a ``sys.exit`` in it becomes a one-line :class:`CheckError`.

    A factory that calls ``sys.exit`` (a script turned into a module) must not take the command's exit
    status with it: ``sys.exit(0)`` would otherwise end ``torch2ms`` with status 0 and no report.

    Args:
        factory: the callable (from :func:`load_factory`).
        target: how the user named it (``MODULE:FACTORY`` or ``--like MODULE:FACTORY``), for the message.
        returns: what the factory should have returned, for the message.

    Returns:
        What the factory returned.

    Raises:
        CheckError: the factory raised (its type and first line named) or called ``sys.exit``.

    Example:
        >>> import sys
        >>> call_factory(lambda: sys.exit(3), "m:f")
        Traceback (most recent call last):
        ...
        porting.cli._check.CheckError: m:f: the factory called sys.exit(3) instead of returning a loader
    """
    try:
        return factory()
    except SystemExit as exc:
        raise CheckError(
            f"{target}: the factory called sys.exit({exc.code!r}) instead of returning {returns}"
        ) from None
    except Exception as exc:
        raise CheckError(f"{target}: the factory raised {type(exc).__name__}: {_first_line(exc)}") from exc


def parse_tolerance(text: str) -> dict:
    """``exact`` | ``default`` | ``RTOL,ATOL`` as :func:`porting.compare_pipelines` keywords.

    Raises:
        CheckError: anything else, or negative / non-finite numbers.

    Example:
        >>> parse_tolerance("exact"), parse_tolerance("1e-6,0")
        ({'tolerance': 'exact'}, {'rtol': 1e-06, 'atol': 0.0})
    """
    if text in ("exact", "default"):
        return {"tolerance": text}
    parts = text.split(",")
    try:
        rtol, atol = (float(p) for p in parts)
    except ValueError:
        raise CheckError(f"--tolerance: expected exact, default or RTOL,ATOL (e.g. 1e-6,1e-5), got {text!r}") from None
    if not all(np.isfinite(v) and v >= 0 for v in (rtol, atol)):
        raise CheckError(f"--tolerance: RTOL and ATOL must be finite numbers >= 0, got {text!r}")
    return {"rtol": rtol, "atol": atol}


def _build(factory: Callable, target: str, seed: int):
    """Seed everything, call the factory; return ``(torch_loader, to_mindspore_args, to_mindspore_kwargs)``."""
    from torch.utils.data import DataLoader

    from torch2ms_base._seed import seed_everything

    seed_everything(seed)
    made = call_factory(factory, target)
    if isinstance(made, DataLoader):
        return made, (made,), {}
    if (isinstance(made, tuple) and len(made) == 2 and isinstance(made[1], Mapping)
            and not isinstance(made[0], DataLoader)):  # fmt: skip
        dataset, kwargs = made
        try:
            loader = DataLoader(dataset, **kwargs)
        except Exception as exc:
            raise CheckError(
                f"{target}: DataLoader(dataset, **kwargs) with the factory's kwargs failed: "
                f"{type(exc).__name__}: {_first_line(exc)}"
            ) from exc
        return loader, (dataset,), dict(kwargs)
    raise CheckError(
        f"{target}: the factory must return a torch DataLoader or (dataset, dataloader_kwargs); "
        f"got {type(made).__name__}" + (f" of {len(made)} items" if isinstance(made, tuple) else "")
    )


# --------------------------------------------------------------------------- batch digests


def _leaf_bytes(obj: Any) -> bytes:
    if hasattr(obj, "detach"):  # torch.Tensor
        obj = obj.detach().cpu().contiguous().numpy() if str(obj.dtype) != "torch.bfloat16" else obj.float().numpy()
    elif hasattr(obj, "asnumpy"):
        obj = obj.asnumpy()
    if isinstance(obj, (np.ndarray, np.generic)):
        arr = np.ascontiguousarray(obj)
        return f"{arr.dtype.str}{arr.shape}".encode() + arr.tobytes()
    return f"{type(obj).__name__}:{obj!r}".encode()


def _digest(obj: Any, h) -> None:
    if isinstance(obj, Mapping):
        h.update(b"{")
        for k, v in obj.items():
            h.update(repr(k).encode())
            _digest(v, h)
        h.update(b"}")
    elif isinstance(obj, Sequence) and not isinstance(obj, (str, bytes)):
        h.update(f"[{type(obj).__name__}".encode())
        for v in obj:
            _digest(v, h)
        h.update(b"]")
    else:
        h.update(_leaf_bytes(obj))


def _column_digests(batch: Any) -> list[tuple[Any, str]]:
    """One digest per top-level column (dict key or position), to name what changed."""
    if isinstance(batch, Mapping):
        items = list(batch.items())
    elif isinstance(batch, Sequence) and not isinstance(batch, (str, bytes)):
        items = list(enumerate(batch))
    else:
        items = [(None, batch)]
    out = []
    for key, value in items:
        h = hashlib.blake2b(digest_size=16)
        _digest(value, h)
        out.append((key, h.hexdigest()))
    return out


# --------------------------------------------------------------------------- the walks


def _is_iterable_dataset(dataset: Any) -> bool:
    from torch.utils.data import IterableDataset

    return isinstance(dataset, IterableDataset)


def _epoch_bound(loader, steps: int | None, limit: int | None, target: str) -> Callable[[], tuple[int, str]] | None:
    """The most batches one torch epoch may yield, and why (computed at each epoch's start); ``None``: no bound
    needed (``--steps`` cuts one iterator into epochs). Raises CheckError for a loader whose epochs may never end."""
    if steps is not None:
        return None
    if limit is not None:
        return lambda: (limit, f"--max-batches-per-epoch {limit}")
    iterable = _is_iterable_dataset(loader.dataset)
    try:
        len(loader)
    except TypeError:
        if iterable:
            raise CheckError(
                f"{target}: the loader's dataset ({type(loader.dataset).__name__}) is an IterableDataset without "
                "__len__, so nothing says where its epochs end: pass --steps N to compare N batches per epoch of an "
                "endless stream, or --max-batches-per-epoch N to walk each epoch to its end, stopping with an error "
                "past N batches (a finite stream), or give the dataset a __len__"
            ) from None
        sampler = loader.batch_sampler if loader.batch_sampler is not None else loader.sampler
        raise CheckError(
            f"{target}: the loader's sampler ({type(getattr(sampler, 'sampler', sampler)).__name__}) has no __len__, "
            "so its epochs never end: pass --steps N to compare N batches per epoch (one iterator cut into "
            "epochs, as to_mindspore(steps_per_epoch=N) does)"
        ) from None
    if iterable:
        # torch lets each worker emit its own partial last batch: len(loader) + one per worker at most
        workers = max(loader.num_workers, 1)
        return lambda: (
            len(loader) + workers,
            f"len(loader) says {len(loader)} (+ {workers} partial batch{'es' if workers > 1 else ''} per worker)"
            if workers > 1
            else f"len(loader) says {len(loader)} (+ 1 partial batch per worker)",
        )
    return lambda: (len(loader), f"len(loader) says {len(loader)}")


class _TorchWalk:
    """The torch training loop that ``to_mindspore(loader, set_epoch=..., steps_per_epoch=...)`` mirrors, knowing
    where it is (``position()``: epoch and batch of the batch being fetched) and never running past its bound."""

    def __init__(self, loader, epochs: int, steps: int | None, set_epoch: bool, bound, target: str,
                 collect: bool = True) -> None:  # fmt: skip
        self.loader, self.epochs, self.steps, self.bound, self.target = loader, epochs, steps, bound, target
        self.collect = collect  # loader_epochs' gc before each epoch's fork; off when timing (a loop would not)
        self.samplers = [s for s in _samplers(loader) if callable(getattr(s, "set_epoch", None))] if set_epoch else []
        self.epoch, self.batch = 0, 0  # of the batch being fetched
        self.limit = self.why = None

    def position(self) -> tuple[int, int]:
        return self.epoch, self.batch

    def _mark(self, epoch: int) -> None:  # what a training loop does at the top of each epoch
        self.epoch, self.batch = epoch, 0
        if self.bound is not None:
            self.limit, self.why = self.bound()
        for sampler in self.samplers:
            sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator:
        epochs = loader_epochs if self.collect else _plain_epochs
        if self.steps is not None:  # an infinite sampler: one iterator, cut into epochs of `steps` batches
            for n, batch in enumerate(itertools.islice(epochs(self.loader, 1, self._mark), self.epochs * self.steps)):
                yield batch
                self.epoch, self.batch = divmod(n + 1, self.steps)
            return
        for batch in epochs(self.loader, self.epochs, self._mark):
            if self.limit is not None and self.batch >= self.limit:
                raise CheckError(
                    f"{self.target}: epoch {self.epoch} of the torch run yielded more than {self.limit} batches "
                    f"({self.why}); an endless sampler or stream? pass --steps N (batches per epoch) to cut it into "
                    "epochs" + (", or raise the bound" if self.why.startswith("--max") else "")
                )
            yield batch
            self.batch += 1


def _plain_epochs(loader, epochs: int, before_epoch: Callable[[int], None]) -> Iterator:
    for epoch in range(epochs):
        before_epoch(epoch)
        yield from loader


class _MindSporeWalk:
    """The MindSpore loop (one iterator for all epochs, or one per epoch), knowing the epoch and batch it is at
    where the epoch length is known."""

    def __init__(self, ds, epochs: int, loop: str, per_epoch: int | None) -> None:
        self.ds, self.epochs, self.loop, self.per_epoch = ds, epochs, loop, per_epoch
        self.n = self.epoch = self.batch = 0

    def position(self) -> tuple[int, int] | None:
        if self.loop == "per-epoch":
            return self.epoch, self.batch
        return divmod(self.n, self.per_epoch) if self.per_epoch else None

    def __iter__(self) -> Iterator:
        if self.loop == "one-iterator":
            for batch in self.ds.iter_batches(self.epochs, output_numpy=True):
                yield batch
                self.n += 1
            return
        for epoch in range(self.epochs):  # a fresh iterator every epoch
            self.epoch, self.batch = epoch, 0
            for row in self.ds.create_tuple_iterator(num_epochs=1, output_numpy=True):
                yield self.ds.structure.rebuild(row)
                self.batch += 1


def _samplers(loader) -> list:
    import warnings

    from adapters.engine import reachable_samplers, spec_from_loader

    with warnings.catch_warnings():  # to_mindspore warns about the same options once, for the user
        warnings.simplefilter("ignore")
        return reachable_samplers(spec_from_loader(loader))


class _Reproducibility:
    """Checks a torch walk against the digests of an earlier one; remembers the first difference."""

    def __init__(self, digests: list, batches_per_epoch: int | None) -> None:
        self.digests, self.per_epoch = digests, batches_per_epoch
        self.first: str | None = None  # what differs first between the two torch runs

    def watch(self, batches: Iterable) -> Iterator:
        n = -1
        for n, batch in enumerate(batches):
            if self.first is None:
                if n >= len(self.digests):
                    self.first = f"the second run yielded more batches than the first ({len(self.digests)})"
                else:
                    ours = _column_digests(batch)
                    # the first differing column of those both have; a different column count is checked next
                    bad = next((k for (k, d), (_, e) in zip(ours, self.digests[n], strict=False) if d != e), None)
                    if bad is not None or len(ours) != len(self.digests[n]):
                        self.first = (
                            f"{batch_location(n, self.per_epoch, bad)} differs between two torch runs "
                            "with the same seeds (does the loader seed from the clock, uuid or "
                            "os.urandom?)"
                        )
            yield batch
        if self.first is None and n + 1 < len(self.digests):
            self.first = f"the second run yielded {n + 1} batches, the first {len(self.digests)}"


def _side(name: str, batches, position: Callable[[], tuple[int, int] | None]) -> Iterator:
    """Tag an error with the side that raised it and the epoch / batch being fetched (the user's error object, so
    its type stays); a ``sys.exit`` in the loader becomes an error of its own."""
    try:
        yield from batches
    except CheckError:
        raise
    except SystemExit as exc:
        err = _LoaderExit(f"the loader called sys.exit({exc.code!r})")
        err._torch2ms_side, err._torch2ms_at = name, position()
        raise err from None
    except Exception as exc:
        if getattr(exc, "_torch2ms_side", None) is None:
            # tagged on the user's own exception object (any class), so its type stays
            exc._torch2ms_side, exc._torch2ms_at = name, position()  # type: ignore[attr-defined]
        raise


class _LoaderExit(Exception):
    """The user's loader called ``sys.exit`` while the check walked it."""

    _torch2ms_side: str
    _torch2ms_at: tuple[int, int] | None


def _versions() -> dict:
    from importlib import metadata

    out: dict[str, str | None] = {}
    for dist in ("torch", "mindspore", "numpy", "torch2ms-porting"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def _type_name(exc: BaseException) -> str:
    if isinstance(exc, _LoaderExit):
        return "SystemExit"
    return f"{type(exc).__module__}.{type(exc).__qualname__}".replace("builtins.", "")


def _original_message(exc: BaseException) -> str:
    """The error's own message: for torch's worker errors the last line of the worker's traceback
    (``KeyError: 'no annotation for sample 5'``), not torch's ``Caught KeyError in DataLoader worker process 1.``"""
    text = str(exc).strip()
    if text.startswith("Caught ") and "Original Traceback" in text:
        last = text.splitlines()[-1].strip()
        if last.split(":", 1)[0].rsplit(".", 1)[-1] == type(exc).__name__:
            return last.replace(f"{type(exc).__module__}.", "") if ":" in last else last
    first = text.splitlines()[0] if text else "(no message)"
    return f"{_type_name(exc)}: {first}"


def _sample_where(exc: BaseException) -> str | None:
    """``dataset[5] (sample of batch 1 of epoch 0, ...)`` from the note adapters.to_mindspore adds, if any."""
    for note in getattr(exc, "__notes__", ()):
        if note.startswith("Raised by "):
            return note[len("Raised by ") :].split(" (re-raised", 1)[0].splitlines()[0].rstrip(".")
    return None


def _torch_worker(exc: BaseException) -> str | None:
    import re

    match = re.search(r"in DataLoader worker process (\d+)", str(exc))
    return None if match is None else f"worker {match.group(1)}"


def _error_text(exc: BaseException, port_where: str | None = None, port_note: str | None = None) -> str:
    """First line: side, epoch / batch, sample and worker, then the original type and message; then the full text."""
    side = getattr(exc, "_torch2ms_side", None)
    at = getattr(exc, "_torch2ms_at", None)
    own = _sample_where(exc)
    if side == "MindSpore":
        # MindSpore prefetches and may raise while an earlier batch is awaited: its note names the batch.
        where = [own] if own else [f"while awaiting epoch {at[0]} / batch {at[1]}"] if at else []
    else:  # torch delivers batches (and their errors) in order: the batch awaited is the one that failed
        where = [f"epoch {at[0]} / batch {at[1]}"] if at else []
        sample = own or port_where or _torch_worker(exc)
        if sample:
            where.append(sample)
    head = f"raised by the {side} side" + (f" at {', '.join(where)}" if where else "") + ": " if side else ""
    lines = [head + _original_message(exc)]
    if port_note:
        lines.append(f"  ({port_note})")
    full = f"{_type_name(exc)}: {exc}".rstrip()
    if full != _original_message(exc):  # torch's worker text with the worker's traceback, a multi-line message
        lines.append(full)
    lines += [f"  {n}" for n in getattr(exc, "__notes__", ())]
    return "\n".join(lines)


def _port(args: tuple, kwargs: dict, steps: int | None, set_epoch: bool, target: str):
    """``adapters.to_mindspore`` of a fresh build; what it cannot mirror is a one-line CheckError (exit 2)."""
    import adapters

    try:
        return adapters.to_mindspore(*args, steps_per_epoch=steps, set_epoch=set_epoch, **kwargs)
    except (ValueError, TypeError) as exc:
        if "yields no batch" in str(exc):
            raise CheckError(
                f"{target}: the loader yields no batch, so there is nothing to compare ({_first_line(exc)})"
            ) from exc
        if str(exc).startswith("to_mindspore"):  # its own refusal (an option it cannot mirror), not the user's error
            raise CheckError(f"{target}: {_first_line(exc)}") from exc
        raise


def _locate_in_port(factory, target: str, seed: int, steps: int | None, set_epoch: bool, at: tuple[int, int],
                    expected: str) -> tuple[str | None, str]:  # fmt: skip
    """Replay the MindSpore port up to torch's failing batch ``at``: being exact, it raises there too, and it
    knows which sample and worker. Returns (where, a note on what the replay found)."""
    epoch, batch = at
    ds = None
    try:
        _, args, kwargs = _build(factory, target, seed)
        ds = _port(args, kwargs, steps, set_epoch, target)
        walk = _MindSporeWalk(ds, epoch + 1, "per-epoch", None)
        for _ in walk:
            position = walk.position()  # per-epoch: always (epoch, batch)
            if position is not None and position >= (epoch, batch):
                break
    except (Exception, SystemExit) as exc:
        got = _original_message(exc) if not isinstance(exc, SystemExit) else f"SystemExit: {exc.code!r}"
        same = "the same error" if got == expected else f"{got}, not the same error"
        return _sample_where(exc), f"sample located by replaying the MindSpore port to that batch: it raised {same}"
    finally:
        if ds is not None:
            ds.close()
    return None, "the MindSpore port, replayed to that batch, did not raise there: which sample failed is unknown"


def run_check(
    target: str,
    *,
    epochs: int = 2,
    seed: int = 0,
    loop: str = "one-iterator",
    steps: int | None = None,
    tolerance: str = "exact",
    equal_nan: bool = False,
    set_epoch: bool = True,
    progress: bool = True,
    factory: Callable | None = None,
    max_batches_per_epoch: int | None = None,
    speed: bool = False,
    resume_at: tuple[int, int] | None = None,
) -> CheckResult:
    """Run the check (see the module docstring); never raises for the user's errors.

    Args:
        target: ``MODULE:FACTORY`` (resolved with :func:`load_factory` unless ``factory`` is given).
        epochs: epochs to walk on each side.
        seed: given to :func:`porting.seed_everything` before each build.
        loop: ``one-iterator`` (one MindSpore iterator over all epochs, as ``Model.train``) or
            ``per-epoch`` (a fresh iterator every epoch).
        steps: batches per epoch for an infinite sampler or endless stream (``to_mindspore(steps_per_epoch=)``).
        tolerance: ``exact``, ``default`` or ``RTOL,ATOL``.
        equal_nan: NaN equals NaN.
        set_epoch: call ``set_epoch(e)`` on every reachable sampler before torch's epoch ``e``, as
            training loops do and as ``to_mindspore(set_epoch=True)`` does.
        progress: a progress bar on stderr.
        factory: the factory itself (for use from Python; ``target`` then only names it).
        max_batches_per_epoch: for a stream without ``__len__``: walk each epoch to its end, but stop
            with an error (exit 2) once an epoch passes this many batches.
        speed: afterwards, time each side alone on the same epochs from a fresh build (building the
            loader and starting its workers included) and report batches/s; off by default, as the
            comparison walks both sides in lock step, which says nothing about speed.
        resume_at: ``(epoch, batch)``: stop the MindSpore side after that batch, save its ``state_dict()``, and
            compare the rest of the stream from a port resumed from it in a new process (exact resume).

    Returns:
        A :class:`CheckResult`; ``status`` is the exit status.
    """
    from porting.harness._pipelines import compare_pipelines

    result = CheckResult(target=target, status=ExitCode.USAGE, outcome="error", epochs=epochs, seed=seed,
                         loop=loop, steps=steps, tolerance=tolerance, versions=_versions(),
                         resumed_at=None if resume_at is None else f"{resume_at[0]}:{resume_at[1]}")  # fmt: skip
    ds = torch_walk = None
    report: Any  # a PipelineReport, or two parts joined (--resume-at)
    try:
        options = parse_tolerance(tolerance)
        if loop not in ("one-iterator", "per-epoch"):
            raise CheckError(f"--loop: expected one-iterator or per-epoch, got {loop!r}")
        factory = factory or load_factory(target)
        # 1. torch against itself: the reference digests (the walk is bounded before it starts).
        loader, _, _ = _build(factory, target, seed)
        bound = _epoch_bound(loader, steps, max_batches_per_epoch, target)
        torch_walk = _TorchWalk(loader, epochs, steps, set_epoch, bound, target)
        digests = [_column_digests(b) for b in _side("torch", torch_walk, torch_walk.position)]
        del loader
        # 2. MindSpore against torch, both from a fresh build with the same seeds.
        loader, args, kwargs = _build(factory, target, seed)
        ds = _port(args, kwargs, steps, set_epoch, target)
        per_epoch = steps or _dataset_size(ds)
        result.columns = [
            {"name": n, "dtype": str(t), "shape": list(s)}
            for n, s, t in zip(ds.structure.names, ds.output_shapes(), ds.output_types(), strict=True)
        ]
        repro = _Reproducibility(digests, per_epoch)
        total = per_epoch * epochs if per_epoch else None
        ms_walk = _MindSporeWalk(ds, epochs, loop, per_epoch)
        torch_walk = _TorchWalk(loader, epochs, steps, set_epoch, _epoch_bound(loader, steps, max_batches_per_epoch,
                                                                               target), target)  # fmt: skip
        if resume_at is not None:
            from porting.cli._check_resume import compare_resumed

            if steps is not None:
                raise CheckError("--resume-at with --steps: an infinite sampler's position cannot be saved")
            report = compare_resumed(ds, (ms_walk, torch_walk, _side), at=resume_at, per_epoch=per_epoch,
                                     digests=digests, repro=repro,
                                     options=dict(target=target, seed=seed, epochs=epochs, loop=loop,
                                                  set_epoch=set_epoch, tolerance=tolerance, equal_nan=equal_nan,
                                                  compare=dict(equal_nan=equal_nan, **options),
                                                  progress=progress))  # fmt: skip
        else:
            report = compare_pipelines(_side("MindSpore", ms_walk, ms_walk.position),
                                       _side("torch", repro.watch(torch_walk), torch_walk.position),
                                       progress=progress, total=total, equal_nan=equal_nan,
                                       batches_per_epoch=per_epoch, **options)  # fmt: skip
        ds.close()
        ds = None
        if speed and repro.first is None and report.ok:
            _time_each_side_alone(result, factory, target, seed, epochs, loop, steps, set_epoch, bound is not None,
                                  max_batches_per_epoch)  # fmt: skip
    except CheckError as exc:
        result.error = str(exc)
        return result
    except ValueError as exc:
        if "nothing was compared" in str(exc):
            result.error = f"{target}: {exc}"
            return result
        return _loader_failed(result, exc, factory, target, seed, steps, set_epoch)
    except (Exception, SystemExit) as exc:
        return _loader_failed(result, exc, factory, target, seed, steps, set_epoch)
    finally:
        if ds is not None:
            ds.close()
    return _record_outcome(result, report, repro)


def _record_outcome(result: CheckResult, report: Any, repro: _Reproducibility) -> CheckResult:
    """The comparison's figures, first mismatch and exit status into ``result``."""
    result.batches, result.tensors, result.bytes = report.batches, report.tensors, report.bytes
    result.mismatches, result.count_mismatch = len(report.mismatches), report.count_mismatch
    if report.worst_abs_location is not None:
        result.worst_abs_diff, result.worst_abs_location = report.worst_abs_diff, report.worst_abs_location
    if report.mismatches:
        first = report.mismatches[0]
        result.first_mismatch = first.location
        result.first_mismatch_text = str(first)
    result.torch_not_reproducible = repro.first
    if repro.first is not None:
        result.status, result.outcome = ExitCode.NOT_REPRODUCIBLE, "torch side not reproducible"
    elif not report.ok:
        result.status, result.outcome = ExitCode.MISMATCH, "MISMATCH"
    else:
        result.status, result.outcome = ExitCode.OK, report.verdict
    return result


def _loader_failed(result: CheckResult, exc: BaseException, factory, target: str, seed: int, steps: int | None,
                   set_epoch: bool) -> CheckResult:  # fmt: skip
    """Exit 4: the error's first line names side, epoch, batch and (from the port's replay) sample and worker."""
    port_where = port_note = None
    at = getattr(exc, "_torch2ms_at", None)
    if (
        getattr(exc, "_torch2ms_side", None) == "torch"
        and at is not None
        and _sample_where(exc) is None
        and not isinstance(exc, _LoaderExit)
    ):  # a port replaying sys.exit would exit its own process
        # torch's reference run raised first (the usual case): torch does not say which sample; the port does.
        port_where, port_note = _locate_in_port(factory, target, seed, steps, set_epoch, at, _original_message(exc))
    result.status, result.outcome = ExitCode.LOADER_ERROR, "error in the loader"
    result.error = _error_text(exc, port_where, port_note)
    return result


def _time_each_side_alone(result: CheckResult, factory, target: str, seed: int, epochs: int, loop: str,
                          steps: int | None, set_epoch: bool, bounded: bool, limit: int | None) -> None:  # fmt: skip
    """Each side alone, same epochs, from the factory call to the last batch (loader built, workers started)."""
    import gc
    import time

    gc.collect()  # the comparison's garbage: collected before the clocks start (torch forks its workers)
    start = time.perf_counter()
    loader, args, kwargs = _build(factory, target, seed)
    bound = _epoch_bound(loader, steps, limit, target) if bounded else None
    n_torch = sum(1 for _ in _TorchWalk(loader, epochs, steps, set_epoch, bound, target, collect=False))
    torch_seconds = time.perf_counter() - start
    del loader
    gc.collect()
    start = time.perf_counter()
    _, args, kwargs = _build(factory, target, seed)
    ds = _port(args, kwargs, steps, set_epoch, target)
    try:
        n_ms = sum(1 for _ in _MindSporeWalk(ds, epochs, loop, None))
    finally:
        ds.close()
    ms_seconds = time.perf_counter() - start
    if n_torch != n_ms:  # cannot happen after a matching comparison; never print a figure for unequal work
        raise CheckError(f"{target}: timed alone, torch yielded {n_torch} batches and MindSpore {n_ms}")
    result.speed_batches = n_torch
    result.torch_batches_per_s = n_torch / max(torch_seconds, 1e-9)
    result.mindspore_batches_per_s = n_ms / max(ms_seconds, 1e-9)


def _dataset_size(ds) -> int | None:
    try:
        return ds.get_dataset_size()
    except TypeError:  # epochs of varying length (IterableDataset, fixed_length=False)
        return None
