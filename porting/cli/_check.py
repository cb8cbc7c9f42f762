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

Exit status (:class:`porting.cli._exit.ExitCode`): 0 every batch matched and at least one was compared; 1 a mismatch;
2 bad invocation (module, factory, options, an empty loader); 3 torch side not reproducible;
4 the user's loader raised (the error keeps its type, sample index and worker in the report).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.util
import itertools
import json
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from porting.cli._exit import ExitCode
from porting.harness._pipelines import batch_location, loader_epochs
from torch2ms_base._report import Report, jsonable, markdown_table

__all__ = ["CheckError", "CheckResult", "load_factory", "parse_tolerance", "run_check"]



class CheckError(Exception):
    """A problem with the invocation (module, factory, options, an empty loader): exit status 2."""


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
        """MindSpore's batches/s over torch's (above 1: the port is faster)."""
        if not self.torch_batches_per_s or self.mindspore_batches_per_s is None:
            return None
        return self.mindspore_batches_per_s / self.torch_batches_per_s

    def to_dict(self) -> dict:
        """JSON-ready dict (for CI): the report protocol's fields, then the throughput ratio."""
        return {**super().to_dict(), "ratio": jsonable(self.ratio)}

    def lines(self) -> list[str]:
        """The human summary."""
        out = [f"torch2ms check {self.target}: {self.verdict}"]
        out.append(f"  settings: {self.epochs} epoch(s), seed {self.seed}, loop {self.loop}"
                   + (f", {self.steps} steps per epoch" if self.steps else "") + f", tolerance {self.tolerance}")
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
            out.append(f"  throughput: torch {self.torch_batches_per_s:.1f} batches/s, MindSpore "
                       f"{self.mindspore_batches_per_s:.1f} batches/s{ratio}")
        if self.error:
            out.append(f"  error: {self.error}")
        return out

    def to_markdown(self) -> str:
        """The report as Markdown."""
        rows = [("verdict", f"**{self.verdict}**"), ("exit status", str(self.status)),
                ("epochs", str(self.epochs)), ("seed", str(self.seed)), ("loop", self.loop),
                ("steps per epoch", str(self.steps or "-")), ("tolerance", self.tolerance),
                ("batches compared", str(self.batches)), ("tensors compared", str(self.tensors)),
                ("bytes compared", str(self.bytes)), ("mismatches", str(self.mismatches)),
                ("first mismatch", self.first_mismatch or "-"),
                ("worst absolute difference", "-" if self.worst_abs_location is None
                 else f"{self.worst_abs_diff} at {self.worst_abs_location}"),
                ("torch side reproducible", "no: " + self.torch_not_reproducible
                 if self.torch_not_reproducible else "yes" if self.batches else "-"),
                ("torch batches/s", _fmt(self.torch_batches_per_s)),
                ("MindSpore batches/s", _fmt(self.mindspore_batches_per_s)),
                ("ratio (MindSpore / torch)", _fmt(self.ratio, ".2f"))]  # fmt: skip
        md = [f"# torch2ms check `{self.target}`", "", markdown_table(("", ""), rows)]
        if self.columns:
            md += ["", "## Columns", "",
                   markdown_table(("name", "dtype", "shape (first batch)"),
                                  [(c["name"], c["dtype"], c["shape"]) for c in self.columns])]
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
        path = Path(module_name)
        if not path.is_file():
            raise CheckError(f"{target}: no such file {str(path)!r}")
        spec = importlib.util.spec_from_file_location(f"_torch2ms_check_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise CheckError(f"{target}: importing {path} failed: {type(exc).__name__}: {exc}") from exc
    else:
        if "" not in sys.path and str(Path.cwd()) not in sys.path:
            sys.path.insert(0, str(Path.cwd()))  # as `python -m` does: the user's project is importable
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            raise CheckError(f"{target}: importing module {module_name!r} failed: {type(exc).__name__}: {exc}") from exc
    if not hasattr(module, attr):
        names = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))
        raise CheckError(f"{target}: module {module_name!r} has no attribute {attr!r}; its callables: {names}")
    factory = getattr(module, attr)
    if not callable(factory):
        raise CheckError(f"{target}: {attr!r} is a {type(factory).__name__}, not a callable factory")
    return factory


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
    made = factory()
    if isinstance(made, DataLoader):
        return made, (made,), {}
    if (isinstance(made, tuple) and len(made) == 2 and isinstance(made[1], Mapping)
            and not isinstance(made[0], DataLoader)):  # fmt: skip
        dataset, kwargs = made
        try:
            loader = DataLoader(dataset, **kwargs)
        except Exception as exc:
            raise CheckError(f"{target}: DataLoader(dataset, **kwargs) with the factory's kwargs failed: "
                             f"{type(exc).__name__}: {exc}") from exc
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


def _torch_epochs(loader, epochs: int, steps: int | None, set_epoch: bool) -> Iterator:
    """The torch training loop that ``to_mindspore(loader, set_epoch=..., steps_per_epoch=...)`` mirrors."""
    samplers = [s for s in _samplers(loader) if callable(getattr(s, "set_epoch", None))] if set_epoch else []

    def mark(epoch: int) -> None:  # what a training loop does at the top of each epoch
        for sampler in samplers:
            sampler.set_epoch(epoch)

    if steps is None:
        return loader_epochs(loader, epochs, mark)
    # An infinite sampler: one iterator, cut into epochs of `steps` batches.
    return itertools.islice(loader_epochs(loader, 1, mark), epochs * steps)


def _samplers(loader) -> list:
    import warnings

    from adapters.engine import reachable_samplers, spec_from_loader

    with warnings.catch_warnings():  # to_mindspore warns about the same options once, for the user
        warnings.simplefilter("ignore")
        return reachable_samplers(spec_from_loader(loader))


def _mindspore_epochs(ds, epochs: int, loop: str) -> Iterator:
    if loop == "one-iterator":
        yield from ds.iter_batches(epochs, output_numpy=True)
        return
    for _ in range(epochs):  # a fresh iterator every epoch
        for row in ds.create_tuple_iterator(num_epochs=1, output_numpy=True):
            yield ds.structure.rebuild(row)


class _Reproducibility:
    """Checks a torch walk against the digests of an earlier one; remembers the first difference."""

    def __init__(self, digests: list, batches_per_epoch: int | None) -> None:
        self.digests, self.per_epoch, self.first = digests, batches_per_epoch, None

    def watch(self, batches: Iterator) -> Iterator:
        n = -1
        for n, batch in enumerate(batches):
            if self.first is None:
                if n >= len(self.digests):
                    self.first = f"the second run yielded more batches than the first ({len(self.digests)})"
                else:
                    ours = _column_digests(batch)
                    bad = next((k for (k, d), (_, e) in zip(ours, self.digests[n]) if d != e), None)
                    if bad is not None or len(ours) != len(self.digests[n]):
                        self.first = (f"{batch_location(n, self.per_epoch, bad)} differs between two torch runs "
                                      "with the same seeds (does the loader seed from the clock, uuid or "
                                      "os.urandom?)")
            yield batch
        if self.first is None and n + 1 < len(self.digests):
            self.first = f"the second run yielded {n + 1} batches, the first {len(self.digests)}"


def _side(name: str, batches: Iterator) -> Iterator:
    """Tag an error with the side that raised it (the user's error object, so its type stays)."""
    try:
        yield from batches
    except Exception as exc:
        exc._torch2ms_side = name
        raise


def _versions() -> dict:
    from importlib import metadata

    out = {}
    for dist in ("torch", "mindspore", "numpy", "torch2ms-porting"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def _error_text(exc: BaseException) -> str:
    notes = "".join(f"\n  {n}" for n in getattr(exc, "__notes__", ()))
    side = getattr(exc, "_torch2ms_side", None)
    where = f"raised by the {side} side: " if side else ""
    return where + f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}{notes}".replace("builtins.", "")


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
) -> CheckResult:
    """Run the check (see the module docstring); never raises for the user's errors.

    Args:
        target: ``MODULE:FACTORY`` (resolved with :func:`load_factory` unless ``factory`` is given).
        epochs: epochs to walk on each side.
        seed: given to :func:`porting.seed_everything` before each build.
        loop: ``one-iterator`` (one MindSpore iterator over all epochs, as ``Model.train``) or
            ``per-epoch`` (a fresh iterator every epoch).
        steps: batches per epoch for an infinite sampler (``to_mindspore(steps_per_epoch=)``).
        tolerance: ``exact``, ``default`` or ``RTOL,ATOL``.
        equal_nan: NaN equals NaN.
        set_epoch: call ``set_epoch(e)`` on every reachable sampler before torch's epoch ``e``, as
            training loops do and as ``to_mindspore(set_epoch=True)`` does.
        progress: a progress bar on stderr.
        factory: the factory itself (for use from Python; ``target`` then only names it).

    Returns:
        A :class:`CheckResult`; ``status`` is the exit status.
    """
    import adapters
    from porting.harness._pipelines import compare_pipelines

    result = CheckResult(target=target, status=ExitCode.USAGE, outcome="error", epochs=epochs, seed=seed,
                         loop=loop, steps=steps, tolerance=tolerance, versions=_versions())  # fmt: skip
    try:
        options = parse_tolerance(tolerance)
        if loop not in ("one-iterator", "per-epoch"):
            raise CheckError(f"--loop: expected one-iterator or per-epoch, got {loop!r}")
        factory = factory or load_factory(target)
        # 1. torch against itself: the reference digests.
        loader, _, _ = _build(factory, target, seed)
        digests = [_column_digests(b) for b in _side("torch", _torch_epochs(loader, epochs, steps, set_epoch))]
        del loader
        # 2. MindSpore against torch, both from a fresh build with the same seeds.
        loader, args, kwargs = _build(factory, target, seed)
        try:
            ds = adapters.to_mindspore(*args, steps_per_epoch=steps, set_epoch=set_epoch, **kwargs)
        except ValueError as exc:
            if "yields no batch" in str(exc):
                raise CheckError(f"{target}: the loader yields no batch, so there is nothing to compare "
                                 f"({exc})") from exc
            raise
        per_epoch = steps or _dataset_size(ds)
        result.columns = [{"name": n, "dtype": str(t), "shape": list(s)}
                          for n, s, t in zip(ds.structure.names, ds.output_shapes(), ds.output_types())]
        repro = _Reproducibility(digests, per_epoch)
        total = per_epoch * epochs if per_epoch else None
        ms_side = _side("MindSpore", _mindspore_epochs(ds, epochs, loop))
        torch_side = _side("torch", repro.watch(_torch_epochs(loader, epochs, steps, set_epoch)))
        report = compare_pipelines(ms_side, torch_side,
                                   progress=progress, total=total, equal_nan=equal_nan, batches_per_epoch=per_epoch,
                                   **options)  # fmt: skip
        ds.close()
    except CheckError as exc:
        result.error = str(exc)
        return result
    except ValueError as exc:
        if "nothing was compared" in str(exc):
            result.error = f"{target}: {exc}"
            return result
        result.status, result.outcome, result.error = ExitCode.LOADER_ERROR, "error in the loader", _error_text(exc)
        return result
    except Exception as exc:
        result.status, result.outcome, result.error = ExitCode.LOADER_ERROR, "error in the loader", _error_text(exc)
        return result
    result.batches, result.tensors, result.bytes = report.batches, report.tensors, report.bytes
    result.mismatches, result.count_mismatch = len(report.mismatches), report.count_mismatch
    if report.worst_abs_location is not None:
        result.worst_abs_diff, result.worst_abs_location = report.worst_abs_diff, report.worst_abs_location
    if report.mismatches:
        first = report.mismatches[0]
        result.first_mismatch = first.location
        result.first_mismatch_text = str(first)
    if report.batches:
        result.torch_batches_per_s = report.batches / max(report.seconds_b, 1e-9)
        result.mindspore_batches_per_s = report.batches / max(report.seconds_a, 1e-9)
    result.torch_not_reproducible = repro.first
    if repro.first is not None:
        result.status, result.outcome = ExitCode.NOT_REPRODUCIBLE, "torch side not reproducible"
    elif not report.ok:
        result.status, result.outcome = ExitCode.MISMATCH, "MISMATCH"
    else:
        result.status, result.outcome = ExitCode.OK, report.verdict
    return result


def _dataset_size(ds) -> int | None:
    try:
        return ds.get_dataset_size()
    except TypeError:  # epochs of varying length (IterableDataset, fixed_length=False)
        return None
