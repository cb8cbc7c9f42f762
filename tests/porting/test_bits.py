"""Words mean what they say: "bit-identical" only after comparing bit patterns; integer differences never overflow.

Values that are equal but not identical (``-0.0`` and ``0.0``, two NaNs with different payloads under
``equal_nan``) still pass an exact comparison, as in ``torch.testing.assert_close``, but the verdict says
"equal" with the count, never "bit-identical". The expected bit patterns below are written by hand.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("mindspore")
import mindspore as ms
import torch

from porting import compare, compare_pipelines

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
NAN_BITS = {
    "float16": (0x7E00, 0x7E01),
    "float32": (0x7FC00000, 0x7FC00001),
    "float64": (0x7FF8000000000000, 0x7FF8000000000001),
}
UINT = {"float16": np.uint16, "float32": np.uint32, "float64": np.uint64}


def _verdict(a, b, **kw):
    return compare_pipelines([[a]], [[b]], progress=False, **kw).verdict


def _as(framework, array, dtype=None):
    if framework == "numpy":
        return array
    if framework == "torch":
        t = torch.from_numpy(np.array(array))
        return t if dtype is None else t.to(getattr(torch, dtype))
    t = ms.Tensor(np.array(array))
    return t if dtype is None else t.astype(getattr(ms, dtype))


@pytest.mark.parametrize("framework", ["numpy", "torch", "mindspore"])
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "complex64", "complex128"])
def test_signed_zero_is_equal_but_never_bit_identical(framework, dtype):
    a = _as(framework, np.array([1.0, -0.0, 2.0], dtype=dtype))
    b = _as(framework, np.array([1.0, 0.0, 2.0], dtype=dtype))
    assert _verdict(a, b) == "equal, not bit-identical (1 element differs only in the sign of zero)"
    assert _verdict(b, b) == "bit-identical"
    report = compare_pipelines([[a]], [[b]], progress=False)
    assert report.ok and report.signed_zeros == 1 and report.nan_payloads == 0
    assert report.not_identical_location == "batch 0 / column 0 / [1]"


@pytest.mark.parametrize("pair", ["torch-torch", "mindspore-torch", "mindspore-mindspore"])
def test_bfloat16_signed_zero(pair):
    fa, fb = pair.split("-")
    a = _as(fa, np.array([0.5, -0.0], np.float32), "bfloat16")
    b = _as(fb, np.array([0.5, 0.0], np.float32), "bfloat16")
    assert _verdict(a, b) == "equal, not bit-identical (1 element differs only in the sign of zero)"
    assert _verdict(b, _as(fb, np.array([0.5, 0.0], np.float32), "bfloat16")) == "bit-identical"


def test_complex_signed_zero_in_the_imaginary_part_counts_once():
    a = np.array([1 + 0j, complex(2, -0.0)], np.complex64)
    b = np.array([1 + 0j, complex(2, 0.0)], np.complex64)
    assert _verdict(a, b) == "equal, not bit-identical (1 element differs only in the sign of zero)"


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_nan_payloads_are_equal_under_equal_nan_but_not_identical(dtype):
    one, other = (np.array([bits, bits], UINT[dtype]).view(dtype) for bits in NAN_BITS[dtype])
    one, other = np.concatenate([one, [3.0]]).astype(dtype), np.concatenate([other[:1], one[1:2], [3.0]]).astype(dtype)
    assert np.isnan(one[0]) and np.isnan(other[0])
    assert one[:1].view(UINT[dtype])[0] != other[:1].view(UINT[dtype])[0]
    assert (
        _verdict(one, other, equal_nan=True) == "equal, not bit-identical (1 element differs only in its NaN payload)"
    )
    assert _verdict(one, one.copy(), equal_nan=True) == "bit-identical"  # same payloads: identical
    assert _verdict(one, one.copy()) == "DIFFER"  # NaN != NaN without equal_nan, bits or not


def test_both_kinds_and_large_arrays_across_chunks():
    a = np.zeros(3 * 2**18 + 5, np.float32)
    b = a.copy()
    b[-1] = -0.0  # in the last, partial chunk
    b[2**18] = -0.0  # first element of the second chunk
    a[7] = np.array([0x7FC00000], np.uint32).view(np.float32)[0]
    b[7] = np.array([0x7FC0BEEF], np.uint32).view(np.float32)[0]
    r = compare_pipelines([[a]], [[b]], equal_nan=True, progress=False)
    assert r.verdict == (
        "equal, not bit-identical (2 elements differ only in the sign of zero, 1 only in its NaN payload)"
    )
    assert r.not_identical_location == "batch 0 / column 0 / [7]"


def test_strided_views_and_nested_batches():
    base = np.zeros((4, 6), np.float64)
    other = base.copy()
    other[2, 4] = -0.0
    batches_a = [{"x": base[:, ::2], "y": [np.float32(1.0)]}]
    batches_b = [{"x": other[:, ::2], "y": [np.float32(1.0)]}]
    r = compare_pipelines(batches_a, batches_b, progress=False)
    assert r.verdict.startswith("equal, not bit-identical (1 element")
    assert r.not_identical_location == "batch 0 / column 'x' / [2, 2]"


def test_python_floats_and_numpy_scalars():
    assert _verdict(-0.0, 0.0) == "equal, not bit-identical (1 element differs only in the sign of zero)"
    assert _verdict(np.float32(-0.0), np.float32(0.0)).startswith("equal, not bit-identical")
    assert _verdict(complex(1, -0.0), complex(1, 0.0)).startswith("equal, not bit-identical")
    assert _verdict(1.5, 1.5) == "bit-identical"


def test_tolerance_verdicts_are_unchanged_and_compare_counts_too():
    a, b = np.array([-0.0, 1.0], np.float32), np.array([0.0, 1.0], np.float32)
    assert _verdict(a, b, rtol=1e-6, atol=0) == "equivalent within rtol=1e-06, atol=0"
    c = compare(a, b)
    assert c.ok and c.signed_zeros == 1 and c.nan_payloads == 0
    assert "1 element(s) equal but not bit-identical" in c.summary()


# ----------------------------------------------------------------------------- integers: no overflow


def test_int64_extremes_difference_is_exact():
    a, e = np.array([INT64_MIN, 0], np.int64), np.array([INT64_MAX, 0], np.int64)
    m = compare(a, e).mismatches[0]
    assert m.abs_diff == 2**64 - 1 and type(m.abs_diff) is int
    assert "Greatest absolute difference: 18446744073709551615 at index (0,)" in m.message
    assert m.rel_diff is not None and m.rel_diff == pytest.approx((2**64 - 1) / (2**63 - 1), rel=1e-6)
    assert m.rel_diff > 0
    assert compare(e, a).mismatches[0].rel_diff == pytest.approx(2.0, rel=1e-6)  # |int64 min| = 2**63, no overflow


def test_int64_extremes_never_pass_a_small_atol():
    # |min - max| wrapped to 1 in int64 would pass atol=1: it is 2**64 - 1.
    a, e = np.array([INT64_MIN], np.int64), np.array([INT64_MAX], np.int64)
    assert not compare(a, e, rtol=0, atol=1).ok
    assert compare(np.array([5], np.int64), np.array([6], np.int64), rtol=0, atol=1).ok


def test_uint64_above_int64_is_not_wrapped():
    a, e = np.array([2**63, 1], np.uint64), np.array([0, 1], np.uint64)
    m = compare(a, e).mismatches[0]
    assert m.abs_diff == 2**63 and m.rel_diff == float("inf")
    m = compare(e, a).mismatches[0]
    assert m.abs_diff == 2**63 and m.rel_diff == 1.0
    assert compare(np.array([2**64 - 1], np.uint64), np.array([2**64 - 1], np.uint64)).ok
    t = compare(torch.tensor([INT64_MIN]), torch.tensor([INT64_MAX]))
    assert t.mismatches[0].abs_diff == 2**64 - 1


def test_uint64_meeting_signed_integers_is_refused_not_wrapped():
    # No integer dtype holds both; torch's int64 upcast would call 2**64 - 1 and -1 equal.
    r = compare(np.array([2**64 - 1], np.uint64), np.array([-1], np.int64), check_dtype=False)
    assert not r.ok and r.mismatches[0].kind == "dtype"
    assert "no integer dtype holds both" in r.mismatches[0].message


def test_integer_worst_difference_in_pipeline_reports():
    r = compare_pipelines([[np.array([INT64_MIN], np.int64)]], [[np.array([INT64_MAX], np.int64)]], progress=False)
    assert r.worst_abs_diff == 2**64 - 1 and r.worst_rel_diff > 0
