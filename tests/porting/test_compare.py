"""assert_equivalent / compare: pinned failure texts, every supported type, framework mixes, torch parity."""

import collections
import re
import tracemalloc
from typing import Any

import mindspore as ms
import numpy as np
import pytest
import torch
from torch.testing._comparison import _DTYPE_PRECISIONS

import porting
from porting import Comparison, Mismatch, assert_equivalent, compare
from porting.harness._tolerances import DTYPE_PRECISIONS
from tests._helpers.subproc import run_json

Point = collections.namedtuple("Point", "x y")


def to(framework, arr):
    """The same values as a numpy array, torch tensor or mindspore Tensor."""
    arr = np.asarray(arr)
    if framework == "numpy":
        return arr
    if framework == "torch":
        return torch.from_numpy(arr.copy())
    return ms.Tensor(arr)


def torch_message(actual, expected, **kw):
    with pytest.raises(AssertionError) as info:
        torch.testing.assert_close(actual, expected, **kw)
    return str(info.value)


def our_message(actual, expected, **kw):
    with pytest.raises(AssertionError) as info:
        assert_equivalent(actual, expected, **kw)
    return str(info.value)


# ----------------------------------------------------------------------------- pinned texts


def test_values_message_pinned_with_path():
    expected: dict[str, Any] = {
        "targets": [np.zeros((2, 3), np.float32) for _ in range(4)],
        "img": np.ones(2, np.uint8),
    }
    actual = {"targets": [x.copy() for x in expected["targets"]], "img": expected["img"].copy()}
    actual["targets"][3][1, 2] = 0.5
    assert our_message(actual, expected) == (
        "Tensor-likes are not close!\n\n"
        "Mismatched elements: 1 / 6 (16.7%)\n"
        "Greatest absolute difference: 0.5 at index (1, 2) (up to 1e-05 allowed)\n"
        "Greatest relative difference: inf at index (1, 2) (up to 1.3e-06 allowed)\n\n"
        "The failure occurred for item ['targets'][3]"
    )


def test_integer_message_says_equal_and_has_no_allowance():
    assert our_message(np.array([[1, 2], [3, 4]]), np.array([[1, 2], [3, 8]])) == (
        "Tensor-likes are not equal!\n\n"
        "Mismatched elements: 1 / 4 (25.0%)\n"
        "Greatest absolute difference: 4 at index (1, 1)\n"
        "Greatest relative difference: 0.5 at index (1, 1)"
    )


def test_scalar_message_for_0d_and_numbers():
    text = (
        "Scalars are not close!\n\nExpected 2.0 but got 1.0.\n"
        "Absolute difference: 1.0 (up to 1e-07 allowed)\nRelative difference: 0.5 (up to 1e-07 allowed)"
    )
    assert our_message(np.float64(1.0), np.array(2.0)) == text
    assert our_message(1.0, 2.0) == text


@pytest.mark.parametrize(
    ("actual", "expected", "text"),
    [
        ({"a": 1, "b": 2, "z": 0}, {"a": 1, "c": 2, "d": 3, "z": 0},
         "The keys of the mappings do not match:\nMissing keys in the actual mapping: ['c', 'd']\n"
         "Additional keys in the actual mapping: ['b']"),
        ([1, 2], (1, 2, 3), "The length of the sequences mismatch: 2 != 3"),
        (np.zeros((2, 3)), torch.zeros(3, 2, dtype=torch.float64),
         "The values for attribute 'shape' do not match: (2, 3) != (3, 2)."),
        (torch.zeros(2), np.zeros(2), "The values for attribute 'dtype' do not match: torch.float32 != numpy.float64."),
        (ms.Tensor(np.zeros(2, np.float32)), torch.zeros(2, dtype=torch.float16),
         "The values for attribute 'dtype' do not match: mindspore.float32 != torch.float16."),
        (1.0, np.float32(1.0),
         "The values for attribute 'dtype' do not match: python number (float64) != numpy.float32."),
        (1, 1.0, "The (d)types do not match: <class 'int'> != <class 'float'>."),
        (True, False, "Booleans mismatch: True is not False"),
        ("img/cat.jpg", "img/cap.jpg",
         "Strings do not match: 'img/cat.jpg' != 'img/cap.jpg' (first difference at position 6)."),
        (b"ab", b"abc", "Bytes do not match: b'ab' != b'abc' (first difference at position 2)."),
        (None, 0, "None mismatch: None is not 0"),
        ({"a": 1}, [1], "The types do not match: <class 'dict'> != <class 'list'>."),
        ("1", 1, "The types do not match: <class 'str'> != <class 'int'>."),
        (np.array(["a", "b", "c"]), np.array(["a", "x", "c"]),
         "String arrays are not equal!\n\nMismatched elements: 1 / 3 (33.3%)\n"
         "The first mismatched element is at index (1,): 'b' != 'x'."),
        (np.zeros(2, np.float32), np.array(["a", "b"]),
         "The values for attribute 'dtype' do not match: numpy.float32 != numpy.str32."),
    ],
)  # fmt: skip
def test_structural_messages_pinned(actual, expected, text):
    assert our_message(actual, expected) == text


def test_every_mismatch_is_reported_with_its_path():
    actual = {"a": np.ones(3), "b": ["x", 2], "c": {"d": 1}}
    expected = {"a": np.array([1.0, 1.0, 3.0]), "b": ["y", 2], "c": {"e": 1}}
    r = compare(actual, expected)
    assert [(m.path, m.kind) for m in r.mismatches] == [(("a",), "values"), (("b", 0), "string"), (("c",), "keys")]
    assert r.mismatches[2].missing_keys == ("e",) and r.mismatches[2].extra_keys == ("d",)
    text = our_message(actual, expected)
    assert text.startswith(str(r.mismatches[0]))
    assert "\n\n--- 2 more mismatch(es) ---\n\n" in text
    assert text.endswith("The failure occurred for item ['c']")
    assert "The failure occurred for item ['b'][0]" in text


def test_common_keys_are_still_compared_when_keys_differ():
    r = compare({"x": 1, "extra": 0}, {"x": 2})
    assert [(m.path, m.kind) for m in r.mismatches] == [((), "keys"), (("x",), "values")]


def test_namedtuple_list_tuple_mix_like_torch():
    assert_equivalent(Point(np.ones(2), [1, 2]), [np.ones(2), (1, 2)])
    assert compare(Point(1, 2), Point(1, 3)).mismatches[0].path == (1,)


def test_unsupported_types_raise_typeerror_naming_path_and_type():
    with pytest.raises(TypeError, match=re.escape("unsupported type builtins.set at item ['a'][1]")):
        compare({"a": [1, {1}]}, {"a": [1, {1}]})
    with pytest.raises(TypeError, match=re.escape("unsupported type builtins.object at the top level")):
        compare(object(), 1)
    with pytest.raises(TypeError, match=r"unsupported numpy dtype dtype\('O'\) at item \[0\]"):
        compare([np.array([1, None])], [np.array([1, None])])
    with pytest.raises(TypeError, match=r"does not fit int64"):
        compare(2**70, np.array(1))


def test_tolerances_both_or_neither_like_torch():
    with pytest.raises(ValueError, match="Both 'rtol' and 'atol' must be either specified or omitted, but got no atol"):
        compare(1.0, 1.0, rtol=0.1)
    with pytest.raises(ValueError, match="but got no rtol"):
        compare(1.0, 1.0, atol=0.1)
    with pytest.raises(ValueError, match="atol must be a finite number >= 0, got -1"):
        compare(1.0, 1.0, rtol=0.0, atol=-1)


def test_our_tolerance_table_is_torchs():
    for dtype, value in _DTYPE_PRECISIONS.items():
        name = str(dtype).removeprefix("torch.")
        if name in DTYPE_PRECISIONS:
            assert DTYPE_PRECISIONS[name] == value, name
    assert set(DTYPE_PRECISIONS) == {
        str(d).removeprefix("torch.") for d in _DTYPE_PRECISIONS if d.is_floating_point or d.is_complex
    }


# ----------------------------------------------------------------------------- torch parity on representative cases


@pytest.mark.parametrize(
    ("actual", "expected", "kw"),
    [
        (torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, 2.5, 3.0]), {}),
        (torch.tensor([[1, 2], [3, 4]]), torch.tensor([[1, 2], [3, 5]]), {}),
        (torch.tensor([1, 5]), torch.tensor([4, 5]), dict(rtol=0.1, atol=0.5)),
        (torch.tensor(1.0), torch.tensor(2.0), {}),
        (torch.tensor([1.0, float("nan")]), torch.tensor([1.0, float("nan")]), {}),
        (torch.tensor([1.0, float("inf")]), torch.tensor([1.0, float("-inf")]), {}),
        (torch.tensor([1.0, float("inf")]), torch.tensor([1.0, 3e38]), {}),
        (torch.tensor([1.0, 2.0], dtype=torch.bfloat16), torch.tensor([1.0, 2.1], dtype=torch.bfloat16), {}),
        (torch.tensor([1.0, 2.0], dtype=torch.float16), torch.tensor([1.0, 2.1], dtype=torch.float16), {}),
        (torch.tensor([True, False]), torch.tensor([True, True]), {}),
        (torch.tensor([1 + 1j, 2]), torch.tensor([1 + 2j, 2]), {}),
        (torch.tensor([1, 2]), torch.tensor([1.0, 2.5]), dict(check_dtype=False)),
        (torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.5], dtype=torch.float64), dict(check_dtype=False)),
        (torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0], dtype=torch.float64), {}),
        ({"a": torch.zeros(2), "b": [torch.ones(3)]}, {"a": torch.zeros(2), "b": [torch.zeros(3)]}, {}),
        ({"a": 1, "b": 2}, {"a": 1, "c": 2}, {}),
        ([torch.zeros(1)], [torch.zeros(1), torch.zeros(1)], {}),
        (1.0, 1.1, {}),
        (1, 1.0, {}),
        (True, False, {}),
        (2.0, 2.5, dict(rtol=0.1, atol=0.0)),
    ],
)  # fmt: skip
def test_same_text_as_torch(actual, expected, kw):
    ours, torchs = our_message(actual, expected, **kw), torch_message(actual, expected, **kw)
    hint = "\n1 element(s) are NaN on both sides at the same index; NaN equals NaN only with equal_nan=True"
    # Our one addition to torch's text: the hint that equal_nan would make NaN pairs equal.
    both_nan = isinstance(actual, torch.Tensor) and bool((torch.isnan(actual) & torch.isnan(expected)).any())
    assert ours == (torchs + hint if both_nan else torchs)


def test_nan_hint_only_where_both_sides_are_nan():
    nan = float("nan")
    assert "equal_nan=True" in compare(np.array([nan, 1.0]), np.array([nan, 2.0])).failure_text()
    assert "equal_nan=True" not in compare(np.array([nan, 1.0]), np.array([0.0, 1.0])).failure_text()
    assert "equal_nan=True" in compare(nan, nan).failure_text()
    assert compare(np.array([nan]), np.array([nan]), equal_nan=True).ok


@pytest.mark.parametrize(
    ("actual", "expected", "kw"),
    [
        (torch.tensor([1.0, float("nan")]), torch.tensor([1.0, float("nan")]), dict(equal_nan=True)),
        (torch.tensor([1.0, float("inf")]), torch.tensor([1.0, float("inf")]), {}),
        (torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0 + 1e-6]), {}),
        (torch.tensor([1, 5]), torch.tensor([2, 5]), dict(rtol=0.0, atol=1.0)),
        (torch.tensor([1, 2]), torch.tensor([1.0, 2.0]), dict(check_dtype=False)),
        (2.0, 2.5, dict(rtol=0.3, atol=0.0)),
        (1, 1.0, dict(check_dtype=False)),
        (torch.tensor([-0.0]), torch.tensor([0.0]), {}),
    ],
)  # fmt: skip
def test_passes_where_torch_passes(actual, expected, kw):
    torch.testing.assert_close(actual, expected, **kw)
    assert_equivalent(actual, expected, **kw)


# ----------------------------------------------------------------------------- every type, every framework pair

FRAMEWORKS = ["numpy", "torch", "mindspore"]
DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64", "complex64"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fa", FRAMEWORKS)
@pytest.mark.parametrize("fe", FRAMEWORKS)
def test_framework_pairs_equal_and_one_change(fa, fe, dtype):
    rng = np.random.default_rng(0)
    base = (rng.random((3, 4)) * 10).astype(dtype)
    r = compare(to(fa, base), to(fe, base))
    assert r.ok and r.tensors == 1 and r.elements == 12 and r.bytes == base.nbytes
    changed = base.copy()
    changed[2, 1] = (not changed[2, 1]) if dtype == "bool" else changed[2, 1] + 3
    r = compare(to(fa, changed), to(fe, base))
    assert len(r.mismatches) == 1
    m = r.mismatches[0]
    assert (m.kind, m.path, m.mismatched, m.numel, m.abs_index) == ("values", (), 1, 12, (2, 1))
    # The text does not depend on which frameworks held the values.
    assert str(m) == our_message(changed, base)


@pytest.mark.parametrize("fa", ["torch", "mindspore"])
def test_bfloat16_across_frameworks(fa):
    values = np.random.default_rng(1).standard_normal(50).astype(np.float32)
    t = torch.from_numpy(values).bfloat16()
    other = t if fa == "torch" else ms.Tensor(values, dtype=ms.bfloat16)
    assert_equivalent(other, t)
    r = compare(other, torch.from_numpy(values))
    assert r.mismatches[0].message.endswith("do not match: " + ("torch" if fa == "torch" else "mindspore")
                                            + ".bfloat16 != torch.float32.")  # fmt: skip
    # Without the dtype check, bf16-vs-f32 is judged with bf16's tolerance, as torch does.
    torch.testing.assert_close(t, torch.from_numpy(values), check_dtype=False)
    assert_equivalent(other, torch.from_numpy(values), check_dtype=False)


def test_parameters_and_requires_grad_tensors():
    p = torch.nn.Parameter(torch.ones(2))
    q = ms.Parameter(ms.Tensor(np.ones(2, np.float32)), name="w")
    assert_equivalent(q, p)
    assert_equivalent(p * 2, np.full(2, 2, np.float32))


def test_python_scalar_against_0d():
    assert_equivalent(2.5, torch.tensor(2.5, dtype=torch.float64))
    assert_equivalent(3, np.array(3))
    assert_equivalent(True, ms.Tensor(True))
    assert_equivalent(2.5, torch.tensor(2.5), check_dtype=False)
    r = compare(2.5, torch.tensor([2.5], dtype=torch.float64))
    assert r.mismatches[0].message == "The values for attribute 'shape' do not match: () != (1,)."


def test_numpy_scalars_keep_their_dtype():
    assert_equivalent(np.float32(1.5), torch.tensor(1.5))
    assert compare(np.float32(1.5), np.float64(1.5)).mismatches[0].kind == "dtype"
    assert_equivalent(np.float32(1.5), np.float64(1.5), check_dtype=False)
    assert_equivalent(np.str_("a"), "a")


def test_string_arrays_against_lists_of_str():
    assert_equivalent(np.array(["a.jpg", "b.jpg"]), ["a.jpg", "b.jpg"])
    assert_equivalent(("a.jpg", "b.jpg"), np.array(["a.jpg", "b.jpg"]))
    assert compare(np.array(["a", "b"]), ["a", "c"]).mismatches[0].path == (1,)
    assert_equivalent(np.array("x"), "x")


def test_nan_and_inf():
    nan = np.array([1.0, np.nan])
    assert not compare(nan, nan).ok
    assert compare(nan, nan, equal_nan=True).ok
    assert compare(float("nan"), float("nan"), equal_nan=True).ok
    assert not compare(float("nan"), float("nan")).ok
    assert compare(np.array([np.inf, -np.inf]), np.array([np.inf, -np.inf])).ok
    m = compare(np.array([np.inf]), np.array([-np.inf]), rtol=1.0, atol=1.0).mismatches[0]
    assert (m.abs_diff, m.abs_index) == (float("inf"), (0,))
    assert not compare(np.array([np.inf]), np.array([1e308]), rtol=1.0, atol=1.0).ok
    assert not compare(np.array([np.nan]), np.array([1.0]), equal_nan=True).ok


def test_tolerance_override_and_dtype_defaults():
    a, e = np.array([1.0, 2.0], np.float32), np.array([1.0, 2.001], np.float32)
    assert not compare(a, e).ok
    assert compare(a, e, rtol=1e-3, atol=0.0).ok
    assert not compare(a, e, rtol=0.0, atol=0.0).ok
    assert compare(a.astype(np.float16), e.astype(np.float16)).ok  # float16's rtol is 1e-3
    m = compare(np.array([10, 20]), np.array([10, 22]), rtol=0.05, atol=0.5).mismatches[0]
    assert (m.rtol, m.atol, m.abs_diff) == (0.05, 0.5, 2)
    assert compare(np.array([10, 20]), np.array([10, 22]), rtol=0.1, atol=0.0).ok
    # |3 - 5| = 2 is within atol=3 for uint8 (torch's isclose wraps to 254 here; we do not).
    assert compare(np.array([3], np.uint8), np.array([5], np.uint8), rtol=0.0, atol=3.0).ok


def test_summary_figures_for_within_tolerance_data():
    a = {"x": np.array([1.0, 2.0, 3.0], np.float32)}
    e = {"x": np.array([1.0, 2.0 + 2e-6, 3.0], np.float32)}
    r = compare(a, e)
    assert r.ok and isinstance(r, Comparison)
    assert (r.worst_abs_path, r.worst_abs_index) == (("x",), (1,))
    assert r.worst_abs_diff == float(np.abs(a["x"][1] - e["x"][1]))
    assert "worst absolute difference" in str(r) and "['x'] / [1]" in str(r)
    assert str(compare(a, a)).endswith("; all equal")


def test_mismatch_fields():
    m = compare({"img": np.zeros((2, 2))}, {"img": np.array([[0.0, 0.0], [0.0, 4.0]])}).mismatches[0]
    assert isinstance(m, Mismatch)
    assert (m.where, m.location, m.abs_diff, m.rel_diff, m.rtol, m.atol) == (
        "['img']",
        "['img'] / [1, 1]",
        4.0,
        1.0,
        1e-7,
        1e-7,
    )


def test_equal_float32_fast_path_makes_no_big_temporary():
    a = np.random.default_rng(0).standard_normal(4_000_000, dtype=np.float32)
    b = a.copy()
    tracemalloc.start()
    try:
        assert compare(a, b).ok
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < a.nbytes // 20, peak  # a 256 KiB chunk buffer, not a 16 MB copy or 4 MB bool array


@pytest.mark.parametrize("dtype", ["uint8", "bool", "int32", "float32", "float16"])
@pytest.mark.parametrize("size", [2**20, 3 * 2**18 + 5])
def test_large_arrays_find_a_single_change_anywhere(dtype, size):
    base = np.zeros(size, dtype)
    assert compare(base, base.copy()).ok
    for flat in (0, 2**18 - 1, 2**18, size - 1):  # chunk edges
        changed = base.copy()
        changed[flat] = 1
        [m] = compare(torch.from_numpy(changed), base).mismatches
        assert (m.abs_index, m.mismatched) == ((flat,), 1)


def test_public_names():
    for name in ("assert_equivalent", "compare", "Comparison", "Mismatch", "compare_pipelines",
                 "assert_pipelines_equivalent", "PipelineReport", "BatchMismatch"):  # fmt: skip
        assert name in porting.__all__ and hasattr(porting, name)


NO_FRAMEWORK = """
import json, sys
import numpy as np
import porting
r = porting.compare({"a": np.ones(3), "b": [1, "s", None]}, {"a": np.ones(3), "b": [1, "s", None]})
try:
    porting.assert_equivalent([np.zeros(2)], [np.ones(2)])
    text = ""
except AssertionError as exc:
    text = str(exc)
print(json.dumps({"ok": r.ok, "text": text, "torch": "torch" in sys.modules, "ms": "mindspore" in sys.modules}))
"""

MS_WITHOUT_TORCH = """
import json
import numpy as np, mindspore as ms
import porting
r = porting.compare([ms.Tensor(np.ones(3, np.float32))], [np.array([1, 1, 2], np.float32)])
print(json.dumps({"path": list(r.mismatches[0].path), "index": list(r.mismatches[0].abs_index)}))
"""


def test_frameworks_not_imported_for_numpy_data():
    out = run_json(NO_FRAMEWORK)
    assert out == {"ok": True, "torch": False, "ms": False, "text": out["text"]}
    assert out["text"].startswith("Tensor-likes are not close!\n\nMismatched elements: 2 / 2 (100.0%)")
    assert out["text"].endswith("The failure occurred for item [0]")


def test_works_without_torch_installed():
    assert run_json(MS_WITHOUT_TORCH, block_torch=True) == {"path": [0], "index": [2]}
