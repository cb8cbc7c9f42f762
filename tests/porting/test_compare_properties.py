"""Hypothesis properties: torch.testing.assert_close's decisions and texts; one change -> that path and index."""

import collections
from typing import Any
from unittest import mock

import hypothesis.extra.numpy as hnp
import mindspore as ms
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from torch.testing._comparison import _DTYPE_PRECISIONS

import porting.harness._arrays
from porting import compare

Pair = collections.namedtuple("Pair", "first second")
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TORCH_FLOATS = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32,
                "float64": torch.float64}  # fmt: skip
DEFAULTS = {name: _DTYPE_PRECISIONS[dtype] for name, dtype in TORCH_FLOATS.items()}


def _torch_verdict(actual, expected, **kw):
    try:
        torch.testing.assert_close(actual, expected, **kw)
    except AssertionError as exc:
        return str(exc)
    return None


@st.composite
def near_pairs(draw, dtypes=tuple(TORCH_FLOATS)):
    """Two float tensors whose differences straddle the tolerance boundary, plus NaN/inf sprinkles."""
    dtype = draw(st.sampled_from(dtypes))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=6))
    expected = draw(hnp.arrays(np.float64, shape, elements=st.floats(-1e3, 1e3, width=32)))
    scale = draw(st.sampled_from([1e-8, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1.0]))
    noise = draw(hnp.arrays(np.float64, shape, elements=st.floats(-3, 3)))
    actual = np.asarray(expected * (1 + noise * scale) + noise * scale)
    tol = draw(st.one_of(st.none(), st.tuples(st.sampled_from([0.0, 1e-6, 1e-3, 0.05]),
                                             st.sampled_from([0.0, 1e-6, 1e-3, 0.05]))))  # fmt: skip
    if draw(st.booleans()):
        # Right at the edge |a - e| == atol + rtol * |e|, where rounding of every op decides.
        rtol, atol = tol or DEFAULTS[dtype]
        jitter = draw(hnp.arrays(np.float64, shape, elements=st.sampled_from([-1e-2, -1e-3, 0.0, 1e-3, 1e-2])))
        sign = np.where(noise < 0, -1.0, 1.0)
        edge = atol + rtol * np.abs(expected)
        actual = np.asarray(expected + sign * edge * (1 + jitter))
    special = st.tuples(st.integers(0, expected.size - 1), st.sampled_from([np.nan, np.inf, -np.inf]), st.booleans())
    specials = draw(st.lists(special, max_size=3))
    for flat, value, both in specials:
        actual.reshape(-1)[flat] = value
        if both:
            expected.reshape(-1)[flat] = value
    kw = {"equal_nan": draw(st.booleans())}
    if tol is not None:
        kw.update(rtol=tol[0], atol=tol[1])
    t = TORCH_FLOATS[dtype]
    return torch.from_numpy(actual).to(t), torch.from_numpy(expected).to(t), kw


def _nan_hint(actual, expected, kw):
    """Our one addition to torch's text: a hint when NaN meets NaN without equal_nan."""
    shared = 0 if kw.get("equal_nan") else int((torch.isnan(actual) & torch.isnan(expected)).sum())
    if not shared:
        return ""
    return f"\n{shared} element(s) are NaN on both sides at the same index; NaN equals NaN only with equal_nan=True"


def _check_torch_parity(pair):
    actual, expected, kw = pair
    theirs = _torch_verdict(actual, expected, **kw)
    ours = compare(actual, expected, **kw)
    assert ours.ok == (theirs is None)
    if theirs is not None:
        assert ours.failure_text() == theirs + _nan_hint(actual, expected, kw)


@SETTINGS
@given(near_pairs())
def test_pass_fail_and_text_equal_torchs(pair):
    _check_torch_parity(pair)


@pytest.mark.slow
@settings(max_examples=20_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(near_pairs())
def test_pass_fail_and_text_equal_torchs_sweep(pair):
    _check_torch_parity(pair)


@SETTINGS
@given(near_pairs(), st.sampled_from([1, 2, 3, 5]))
def test_chunked_walk_gives_torchs_answer(pair, chunk):
    # Large arrays are walked in chunks; tiny chunks put every statistic across chunk boundaries.
    actual, expected, kw = pair
    theirs = _torch_verdict(actual, expected, **kw)
    with mock.patch.object(porting.harness._arrays, "_CHUNK", chunk):
        ours = compare(actual, expected, **kw)
    assert ours.ok == (theirs is None)
    if theirs is not None:
        assert ours.failure_text() == theirs + _nan_hint(actual, expected, kw)


@SETTINGS
@given(st.sampled_from(["bool", "uint8", "int16", "int64"]), st.integers(1, 40), st.data())
def test_chunked_integer_equality_finds_any_single_change(dtype, size, data):
    base = np.zeros(size, dtype)
    flat = data.draw(st.integers(0, size - 1))
    changed = base.copy()
    changed[flat] = 1
    with mock.patch.object(porting.harness._arrays, "_CHUNK", data.draw(st.sampled_from([1, 2, 8]))):
        assert compare(base, base.copy()).ok
        [m] = compare(changed, base).mismatches
    assert m.abs_index == (flat,)


@SETTINGS
@given(near_pairs(dtypes=("float16", "float32", "float64")), st.sampled_from(["numpy", "mindspore"]))
def test_same_decisions_with_other_frameworks_on_one_side(pair, framework):
    actual, expected, kw = pair
    other = actual.numpy() if framework == "numpy" else ms.Tensor(actual.numpy())
    theirs = _torch_verdict(actual, expected, **kw)
    ours = compare(other, expected, **kw)
    assert ours.ok == (theirs is None)
    if theirs is not None:
        m = ours.mismatches[0]
        # Same figures as torch's own text (dtype names aside, the message is identical).
        assert m.message == theirs + _nan_hint(actual, expected, kw)


@SETTINGS
@given(st.sampled_from([torch.int64, torch.int32, torch.uint8, torch.bool, torch.int8]),
       hnp.array_shapes(min_dims=1, max_dims=3, max_side=5), st.data())  # fmt: skip
def test_integer_and_bool_exactness_matches_torch(dtype, shape, data):
    hi = 2 if dtype == torch.bool else 100
    expected = torch.from_numpy(data.draw(hnp.arrays(np.int64, shape, elements=st.integers(0, hi - 1)))).to(dtype)
    actual = torch.from_numpy(data.draw(hnp.arrays(np.int64, shape, elements=st.integers(0, hi - 1)))).to(dtype)
    theirs = _torch_verdict(actual, expected)
    ours = compare(actual, expected)
    assert ours.ok == (theirs is None)
    if theirs is not None:
        assert ours.failure_text() == theirs


# ----------------------------------------------------------------------------- random nested structures

ARRAY_DTYPES = ["bool", "uint8", "int32", "int64", "float16", "float32", "float64", "complex64"]


def _arrays():
    def build(dtype, shape, data):
        elements: st.SearchStrategy[Any]
        if dtype == "bool":
            elements = st.booleans()
        elif dtype.startswith(("int", "uint")):
            elements = st.integers(0, 200)
        elif dtype.startswith("complex"):
            elements = st.complex_numbers(max_magnitude=100, allow_nan=False, allow_infinity=False, width=64)
        else:
            elements = st.floats(-1000, 1000, width=16)
        return hnp.arrays(dtype, shape, elements=elements)

    return st.tuples(st.sampled_from(ARRAY_DTYPES), hnp.array_shapes(min_dims=0, max_dims=3, max_side=4)).flatmap(
        lambda ds: build(ds[0], ds[1], None)
    )


LEAVES = st.one_of(
    _arrays(),
    st.integers(-1000, 1000),
    st.floats(-1e3, 1e3),
    st.booleans(),
    st.complex_numbers(max_magnitude=100, allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
    st.binary(max_size=5),
    st.none(),
)

STRUCTURES = st.recursive(
    LEAVES,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.tuples(children, children).map(lambda t: Pair(*t)),
        st.dictionaries(st.text(min_size=1, max_size=3), children, max_size=4),
    ),
    max_leaves=12,
)


def _leaves(obj, path=()):
    """Yield (path, leaf) for every leaf."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _leaves(v, (*path, i))
    else:
        yield path, obj


def _rebuild(obj, fn, path=()):
    """Copy the structure, applying fn(path, leaf) to each leaf (containers keep their types)."""
    if isinstance(obj, dict):
        return {k: _rebuild(v, fn, (*path, k)) for k, v in obj.items()}
    if isinstance(obj, Pair):
        return Pair(*(_rebuild(v, fn, (*path, i)) for i, v in enumerate(obj)))
    if isinstance(obj, (list, tuple)):
        return type(obj)(_rebuild(v, fn, (*path, i)) for i, v in enumerate(obj))
    return fn(path, obj)


def _in_framework(framework):
    def convert(path, leaf):
        if not isinstance(leaf, np.ndarray) or framework == "numpy":
            return leaf
        if framework == "torch":
            return torch.from_numpy(leaf.copy())
        return ms.Tensor(leaf)

    return convert


def _changed(leaf, flat):
    """The leaf with one element changed beyond any default tolerance; and that element's index."""
    if isinstance(leaf, np.ndarray):
        out = leaf.copy()
        index = tuple(int(i) for i in np.unravel_index(flat, leaf.shape))
        x = out[index]
        out[index] = (not x) if leaf.dtype == bool else (x + 1 + abs(x) if leaf.dtype.kind in "fc" else x + 1)
        return out, index
    if isinstance(leaf, bool):
        return not leaf, ()
    if isinstance(leaf, (int, float, complex)):
        return leaf + 1 + abs(leaf), ()
    if leaf is None:
        return 0, None
    return leaf + leaf[:0].__class__("x" if isinstance(leaf, str) else b"x"), None


@SETTINGS
@given(STRUCTURES, st.sampled_from(["numpy", "torch", "mindspore"]), st.sampled_from(["numpy", "torch", "mindspore"]))
def test_equal_structures_pass(structure, fa, fe):
    r = compare(_rebuild(structure, _in_framework(fa)), _rebuild(structure, _in_framework(fe)))
    assert r.ok, r.failure_text()
    arrays = [leaf for _, leaf in _leaves(structure) if isinstance(leaf, np.ndarray)]
    assert r.tensors == len(arrays)
    assert r.bytes == sum(a.nbytes for a in arrays)


@SETTINGS
@given(STRUCTURES, st.sampled_from(["numpy", "torch", "mindspore"]), st.data())
def test_one_changed_element_fails_at_exactly_that_path_and_index(structure, framework, data):
    leaves = [(p, leaf) for p, leaf in _leaves(structure) if not (isinstance(leaf, np.ndarray) and leaf.size == 0)]
    assume(leaves)
    path, leaf = data.draw(st.sampled_from(leaves))
    flat = data.draw(st.integers(0, leaf.size - 1)) if isinstance(leaf, np.ndarray) else 0
    new, index = _changed(leaf, flat)
    actual = _rebuild(structure, lambda p, x: new if p == path else x)
    r = compare(_rebuild(actual, _in_framework(framework)), structure)
    assert len(r.mismatches) == 1, r.failure_text()
    m = r.mismatches[0]
    assert m.path == path
    assert m.abs_index == index
    assert m.kind in ("values", "string", "none")
    if isinstance(leaf, np.ndarray):
        assert (m.mismatched, m.numel) == (1, leaf.size)
