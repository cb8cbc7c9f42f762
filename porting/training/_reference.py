"""Verdicts against a float64 reference: is MindSpore as close to the exact answer as torch float32 is?

Element-wise tolerances fail both ways on real models: a correct ResNet-18 port differs from torch by
1e-5 somewhere in 76 layers (float32 rounding in a different order), while after a few SGD steps torch
float32 itself drifts from a float64 run as far as any port does. The rule used inside torch for the same
question (``torch._dynamo.utils.same(ref, res, fp64_ref=...)``, how torch judges a compiled model against
eager float32) measures both against a float64 run of the same model:

* ``torch_error = RMS(torch_float32 - reference_float64)``, ``ms_error = RMS(mindspore - reference_float64)``
  (root mean square over the tensor's elements, computed in float64);
* MindSpore passes when ``ms_error <= multiplier * torch_error + floor``;
* ``multiplier`` is torch's: 2.0, or 3.0 for a tensor of fewer than 1000 elements or a 4-d tensor whose
  last two dimensions are 1 (where noise dominates the error), 3.0 for float16/bfloat16;
* ``floor = FLOOR_ATOL + FLOOR_RTOL * RMS(reference)``: ``FLOOR_ATOL = 1e-5`` is torch's ``tol / 10``
  (``same``'s default ``tol=1e-4``); ``FLOOR_RTOL = 1.3e-6`` (float32's ``rtol`` in ``torch.testing``)
  scales it with the tensor's magnitude, for the case torch float32 happens to land on the float64 value
  (``torch_error`` = 0) and MindSpore's equally valid rounding is a few ulps off.

torch additionally passes anything within ``allclose(rtol=1e-4, atol=1e-4)`` first; that shortcut is left out
here (it would hide a LayerNorm epsilon of 1e-7 instead of 1e-5 on small activations). Integer and bool tensors
are compared exactly with torch float32's.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from porting.harness._compare import Mismatch
from torch2ms_base._report import Report

__all__ = [
    "FLOOR_ATOL",
    "FLOOR_RTOL",
    "ReferenceCheck",
    "ReferenceComparison",
    "compare_to_reference",
    "multiplier_for",
]

FLOOR_ATOL = 1e-5
FLOOR_RTOL = 1.3e-6


def multiplier_for(shape: tuple[int, ...], dtype: str = "float32") -> float:
    """torch's multiplier in ``same(fp64_ref=...)`` for a tensor of this shape and (result) dtype.

    Example:
        >>> multiplier_for((64, 64)), multiplier_for((10,)), multiplier_for((8, 16, 1, 1))
        (2.0, 3.0, 3.0)
    """
    if dtype in ("float16", "bfloat16"):
        return 3.0
    numel = int(np.prod(shape)) if shape else 1
    if numel < 1000 or (len(shape) == 4 and shape[-1] == shape[-2] == 1):
        return 3.0
    return 2.0


@dataclasses.dataclass(frozen=True)
class ReferenceCheck:
    """One tensor judged against the float64 reference.

    Attributes:
        name: where it is (``['layer1.0.conv1.weight']``, ``[0]``, ...).
        ms_error, torch_error: RMS distance to the float64 reference of MindSpore and of torch float32.
        allowed: ``multiplier * torch_error + floor``.
        multiplier, floor: the parts of ``allowed``.
        max_abs_diff: largest ``|MindSpore - reference|`` (where the error sits).
        numel: elements.
    """

    name: str
    ms_error: float
    torch_error: float
    allowed: float
    multiplier: float
    floor: float
    max_abs_diff: float
    numel: int

    @property
    def ok(self) -> bool:
        """``ms_error <= allowed`` (False when either error is NaN)."""
        return bool(self.ms_error <= self.allowed)

    @property
    def ratio(self) -> float:
        """``ms_error / torch_error`` (``inf`` when torch float32 is exact and MindSpore is not; 1 when both are)."""
        if self.torch_error == 0:
            return 1.0 if self.ms_error == 0 else math.inf
        return self.ms_error / self.torch_error

    def text(self) -> str:
        """The verdict in words, both distances and the ratio."""
        return (
            f"RMS distance to the float64 reference: MindSpore {self.ms_error:.3g}, torch float32 "
            f"{self.torch_error:.3g} (ratio {self.ratio:.3g}); allowed {self.multiplier:g} x "
            f"{self.torch_error:.3g} + floor {self.floor:.3g} = {self.allowed:.3g}; largest |MindSpore - "
            f"float64| {self.max_abs_diff:.3g} over {self.numel} elements"
        )


@dataclasses.dataclass(frozen=True)
class ReferenceComparison(Report):
    """Every tensor of a structure judged against float64 (duck-types :class:`porting.Comparison` where the
    reports read it: ``ok``, ``mismatches``, ``tensors``, ``worst_abs_diff``, ``failure_text()``).

    Attributes:
        checks: one :class:`ReferenceCheck` per float tensor.
        mismatches: a :class:`~porting.Mismatch` per failed check (kind ``reference``) and per structural
            problem (no counterpart, shape, exact integers), in walk order.
    """

    checks: tuple[ReferenceCheck, ...] = ()
    mismatches: tuple[Mismatch, ...] = ()

    @property
    def ok(self) -> bool:
        """True when every check passed and nothing was missing."""
        return not self.mismatches

    @property
    def verdict(self) -> str:
        """``within the float64 rule`` or ``MISMATCH (n)``."""
        return "within the float64 rule" if self.ok else f"MISMATCH ({len(self.mismatches)})"

    @property
    def tensors(self) -> int:
        """Tensors judged."""
        return len(self.checks)

    @property
    def worst(self) -> ReferenceCheck | None:
        """The check closest to (or furthest past) its allowance."""
        return max(self.checks, key=lambda c: (c.ms_error / c.allowed) if c.allowed else math.inf, default=None)

    @property
    def worst_abs_diff(self) -> float:
        """Largest ``|MindSpore - float64|`` over all checks."""
        return max((c.max_abs_diff for c in self.checks), default=0.0)

    def failure_text(self, max_shown: int | None = 20) -> str:
        """The failed checks and problems, one paragraph each."""
        shown = self.mismatches if max_shown is None else self.mismatches[: max(1, max_shown)]
        text = "\n\n".join(str(m) for m in shown)
        if len(self.mismatches) > len(shown):
            text += f"\n\n... and {len(self.mismatches) - len(shown)} more mismatch(es) not shown"
        return text

    def summary(self) -> str:
        """One line: how many tensors and the worst ratio."""
        w = self.worst
        if w is None:
            return f"{self.verdict}: nothing compared"
        return f"{self.verdict}: {self.tensors} tensors; worst {w.name}: {w.text()}"

    def __str__(self) -> str:
        return self.summary() if self.ok else self.failure_text()


_MISSING_PREFIX = "<no MindSpore counterpart"


def _to_array(value: Any) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    mod = type(value).__module__
    if mod.startswith("torch"):
        return value.detach().cpu().numpy()
    if mod.startswith("mindspore"):
        return value.asnumpy()
    return np.asarray(value)


def _fmt(path: tuple) -> str:
    return "".join(f"[{p!r}]" for p in path)


def _judge_leaf(a: Any, e: Any, r: Any, path: tuple) -> tuple[ReferenceCheck | None, Mismatch | None]:
    """One tensor: its check (float tensors) and the mismatch, if any (shape, integer values, or the rule)."""
    av, ev, rv = _to_array(a), _to_array(e), _to_array(r)
    if av.shape != ev.shape:
        return None, Mismatch(
            path,
            "shape",
            f"The values for {_fmt(path) or 'the value'} do not have the "
            f"same shape: {av.shape} in MindSpore, {ev.shape} in torch",
        )
    if ev.dtype.kind not in "fc":
        if np.array_equal(av, ev):
            return None, None
        return None, Mismatch(path, "values", f"{_fmt(path) or 'the value'}: integer values differ (compared exactly)")
    r64, e64, a64 = (np.asarray(x, np.float64) for x in (rv, ev, av))
    with np.errstate(invalid="ignore", over="ignore"):
        torch_err = float(np.sqrt(np.mean((e64 - r64) ** 2))) if r64.size else 0.0
        ms_err = float(np.sqrt(np.mean((a64 - r64) ** 2))) if r64.size else 0.0
        scale = float(np.sqrt(np.mean(r64**2))) if r64.size else 0.0
        max_abs = float(np.max(np.abs(a64 - r64))) if r64.size else 0.0
    mult = multiplier_for(tuple(ev.shape), str(ev.dtype))
    floor = FLOOR_ATOL + FLOOR_RTOL * scale
    check = ReferenceCheck(_fmt(path), ms_err, torch_err, mult * torch_err + floor, mult, floor, max_abs, int(r64.size))
    if check.ok:
        return check, None
    return check, Mismatch(
        path,
        "reference",
        f"{_fmt(path) or 'The value'}: MindSpore is further from "
        f"the float64 reference than torch float32 allows. " + check.text(),
        abs_diff=max_abs,
        numel=int(r64.size),
    )


def compare_to_reference(actual: Any, expected: Any, reference: Any) -> ReferenceComparison:
    """Judge ``actual`` (MindSpore) against ``reference`` (torch float64), relative to ``expected`` (torch float32).

    The three are the same nested structure (dicts, lists/tuples, arrays of any framework). The rule and its
    floor are in the module docstring. A MindSpore side that is missing (``None`` or a
    ``"<no MindSpore counterpart ...>"`` marker) fails as "no counterpart for X".

    Example:
        >>> import numpy as np
        >>> ref = np.linspace(0, 1, 5000)
        >>> t32 = ref.astype(np.float32)
        >>> compare_to_reference(t32 + np.float32(1e-7), t32, ref).ok
        True
        >>> compare_to_reference(t32 + np.float32(1e-3), t32, ref).ok
        False
    """
    checks: list[ReferenceCheck] = []
    problems: list[Mismatch] = []

    def walk(a, e, r, path):
        if isinstance(e, Mapping):
            a = a if isinstance(a, Mapping) else {}
            for k in e:
                walk(a.get(k), e[k], r[k], (*path, k))
            return
        if isinstance(e, (list, tuple)):
            if not isinstance(a, (list, tuple)) or len(a) != len(e):
                problems.append(
                    Mismatch(
                        path,
                        "length",
                        f"The structure differs at {_fmt(path) or 'the top'}: "
                        f"{len(e)} tensors in torch, "
                        f"{len(a) if isinstance(a, (list, tuple)) else type(a).__name__} "
                        "in MindSpore",
                    )
                )
                return
            for k, (ai, ei, ri) in enumerate(zip(a, e, r, strict=True)):
                walk(ai, ei, ri, (*path, k))
            return
        if a is None or (isinstance(a, str) and a.startswith(_MISSING_PREFIX)):
            name = path[-1] if path else "the value"
            problems.append(
                Mismatch(
                    path,
                    "missing",
                    f"no counterpart for {name!r}: the MindSpore side has no "
                    "tensor for it (pass alignment= to pair names that differ)",
                )
            )
            return
        check, problem = _judge_leaf(a, e, r, path)
        if check is not None:
            checks.append(check)
        if problem is not None:
            problems.append(problem)

    walk(actual, expected, reference, ())
    return ReferenceComparison(checks=tuple(checks), mismatches=tuple(problems))
