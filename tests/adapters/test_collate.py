"""adapters.torch_data._collate against torch's real default_collate / default_convert (torch 2.13).

Every comparison runs torch's own function on the same input: either both raise the same exception type, or
the outputs have the same structure (container types included) and every tensor equals our array in dtype,
shape and bytes.
"""

from __future__ import annotations

import collections
import re
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402
from torch.utils.data import default_collate as torch_collate  # noqa: E402
from torch.utils.data import default_convert as torch_convert  # noqa: E402

from adapters.torch_data._collate import default_collate, default_convert, to_numpy  # noqa: E402

Pair = collections.namedtuple("Pair", "a b")
Single = collections.namedtuple("Single", "x")
Triple = collections.namedtuple("Triple", "p q r")
NAMEDTUPLES: tuple[type[Any], ...] = (Single, Pair, Triple)  # (namedtuple classes: their _fields are read)

NUMPY_DTYPES = [
    np.dtype(n)
    for n in (
        "bool",
        "uint8",
        "int8",
        "int16",
        "int32",
        "int64",
        "uint16",
        "uint32",
        "uint64",
        "float16",
        "float32",
        "float64",
        "complex64",
        "complex128",
    )
]
TORCH_OF_NUMPY = {
    np.dtype("bool"): torch.bool,
    np.dtype("uint8"): torch.uint8,
    np.dtype("int8"): torch.int8,
    np.dtype("int16"): torch.int16,
    np.dtype("int32"): torch.int32,
    np.dtype("int64"): torch.int64,
    np.dtype("uint16"): torch.uint16,
    np.dtype("uint32"): torch.uint32,
    np.dtype("uint64"): torch.uint64,
    np.dtype("float16"): torch.float16,
    np.dtype("float32"): torch.float32,
    np.dtype("float64"): torch.float64,
    np.dtype("complex64"): torch.complex64,
    np.dtype("complex128"): torch.complex128,
}
# numpy.uint64 *scalars* are left out: torch 2.13 cannot store any of them into a uint64 tensor (TypeError "an
# integer is required"); test_uint64_scalars_are_collated covers them.
SCALAR_DTYPES = [d for d in NUMPY_DTYPES if d != np.dtype("uint64")]


SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------- comparison


def assert_same(ours, theirs, where="batch"):
    """``ours`` is what torch gave, with numpy arrays where torch has tensors (bit-identical)."""
    if ours is theirs:  # an element both passed through untouched (strings lists are returned as given)
        return
    if isinstance(theirs, torch.Tensor):
        assert type(ours) is np.ndarray, f"{where}: expected np.ndarray, got {type(ours)}"
        expected = theirs.numpy(force=True)
        assert ours.dtype == expected.dtype, f"{where}: dtype {ours.dtype} != torch's {theirs.dtype}"
        assert ours.shape == expected.shape, f"{where}: shape {ours.shape} != torch's {expected.shape}"
        assert ours.tobytes() == expected.tobytes(), f"{where}: values differ:\n{ours!r}\n{expected!r}"
        return
    assert type(ours) is type(theirs), f"{where}: type {type(ours)} != torch's {type(theirs)}"
    if isinstance(theirs, collections.abc.Mapping):
        assert list(ours) == list(theirs), f"{where}: keys {list(ours)} != {list(theirs)}"
        for k in theirs:
            assert_same(ours[k], theirs[k], f"{where}[{k!r}]")
    elif isinstance(theirs, (list, tuple)):
        assert len(ours) == len(theirs), f"{where}: length {len(ours)} != {len(theirs)}"
        for i, (o, t) in enumerate(zip(ours, theirs, strict=True)):
            assert_same(o, t, f"{where}[{i}]")
    elif isinstance(theirs, np.ndarray):
        assert ours.dtype == theirs.dtype and ours.tobytes() == theirs.tobytes()
    else:
        assert ours == theirs or (ours != ours and theirs != theirs), f"{where}: {ours!r} != {theirs!r}"


def outcome(fn, arg):
    try:
        return fn(arg), None
    except Exception as exc:  # the comparison is about which exception type, not whether one happens
        return None, exc


def assert_matches_torch(ours_fn, torch_fn, make_input):
    """Run both on fresh copies of the input: same exception type, or the same result."""
    theirs, their_exc = outcome(torch_fn, make_input())
    ours, our_exc = outcome(ours_fn, make_input())
    if their_exc is not None or our_exc is not None:
        assert type(our_exc) is type(their_exc), f"torch: {their_exc!r}\nours:  {our_exc!r}"
        return
    assert_same(ours, theirs)


# --------------------------------------------------------------------------- strategies


def small_arrays(dtype, shape, half_nan=True):
    if dtype == np.dtype("float16") and not half_nan:
        # see test_float16_nan_widened_stays_nan: torch's NaN bits after float16 → wider depend on array length
        return hnp.arrays(dtype, shape, elements=st.floats(width=16, allow_nan=False))
    return hnp.arrays(dtype, shape)


leaf_schemas = st.one_of(
    st.tuples(
        st.just("array"),
        st.sampled_from(NUMPY_DTYPES),
        hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3),
    ),
    st.tuples(
        st.just("tensor"),
        st.sampled_from(NUMPY_DTYPES),
        hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3),
    ),
    st.tuples(st.just("npscalar"), st.sampled_from(SCALAR_DTYPES)),
    st.sampled_from([("int",), ("float",), ("bool",), ("str",), ("bytes",)]),
)
schemas = st.recursive(
    leaf_schemas,
    lambda inner: st.one_of(
        st.tuples(st.just("dict"), st.dictionaries(st.text("abcxyz", min_size=1, max_size=3), inner, max_size=3)),
        st.tuples(st.just("list"), st.lists(inner, max_size=3)),
        st.tuples(st.just("tuple"), st.lists(inner, max_size=3)),
        st.tuples(st.just("namedtuple"), st.sampled_from(NAMEDTUPLES)).flatmap(
            lambda t: st.tuples(
                st.just(t[0]), st.just(t[1]), st.lists(inner, min_size=len(t[1]._fields), max_size=len(t[1]._fields))
            )
        ),
    ),
    max_leaves=6,
)


def draw_sample(data, schema):  # noqa: C901 - a flat dispatch over the schema kinds, one line each
    kind = schema[0]
    if kind == "array":
        return data.draw(small_arrays(schema[1], schema[2]))
    if kind == "tensor":
        return torch.from_numpy(data.draw(small_arrays(schema[1], schema[2])).copy())
    if kind == "npscalar":
        return data.draw(small_arrays(schema[1], ()))[()]
    if kind == "int":
        return data.draw(st.integers(-(2**63), 2**63 - 1))
    if kind == "float":
        return data.draw(st.floats(allow_nan=True, allow_infinity=True))
    if kind == "bool":
        return data.draw(st.booleans())
    if kind == "str":
        return data.draw(st.text(max_size=3))
    if kind == "bytes":
        return data.draw(st.binary(max_size=3))
    if kind == "dict":
        return {k: draw_sample(data, v) for k, v in schema[1].items()}
    if kind == "list":
        return [draw_sample(data, v) for v in schema[1]]
    if kind == "tuple":
        return tuple(draw_sample(data, v) for v in schema[1])
    return schema[1](*(draw_sample(data, v) for v in schema[2]))


@SETTINGS
@given(schema=schemas, size=st.integers(1, 4), data=st.data())
def test_collate_matches_torch_on_uniform_batches(schema, size, data):
    batch = [draw_sample(data, schema) for _ in range(size)]
    assert_matches_torch(default_collate, torch_collate, lambda: batch)


@SETTINGS
@given(schema=schemas, data=st.data())
def test_convert_matches_torch(schema, data):
    sample = draw_sample(data, schema)
    assert_matches_torch(default_convert, torch_convert, lambda: sample)


# Elements that may sit next to each other at one leaf: the dtype torch infers/promotes, the values it stores
# and the exception type it raises when they cannot be collated.
def numbers(half_nan=True):
    zero_d_arrays = st.sampled_from(NUMPY_DTYPES).flatmap(lambda d: small_arrays(d, (), half_nan))
    return st.one_of(
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.integers(-100, 100),
        st.floats(),
        st.complex_numbers(max_magnitude=1e3),
        st.sampled_from(SCALAR_DTYPES).flatmap(lambda d: small_arrays(d, (), half_nan).map(lambda a: a[()])),
        zero_d_arrays,
        zero_d_arrays.map(lambda a: torch.from_numpy(a.copy())),
        zero_d_arrays.map(lambda a: a.reshape(1)),  # 1-element arrays: float() takes them, operator.index not
        st.sampled_from(
            [
                None,
                "1",
                b"1",
                np.longdouble(1),
                np.datetime64(1, "D"),
                np.timedelta64(1),
                np.str_("x"),
                [1],
                (2.0,),
                np.zeros(2),
            ]
        ),
    )


number_elements = numbers()


@SETTINGS
@given(st.lists(number_elements, min_size=1, max_size=5))
def test_collate_matches_torch_on_mixed_numbers(batch):
    assert_matches_torch(default_collate, torch_collate, lambda: list(batch))


def array_batches():
    def build(shape):
        same_shape = st.sampled_from(NUMPY_DTYPES).flatmap(lambda d: small_arrays(d, shape, half_nan=False))
        others = [same_shape, same_shape.map(lambda a: torch.from_numpy(a.copy()))]
        if shape == ():
            others.append(numbers(half_nan=False))
        if len(shape) == 1:
            others.append(
                st.lists(
                    st.one_of(st.integers(-5, 5), st.floats(-2, 2), st.booleans()), min_size=shape[0], max_size=shape[0]
                )
            )
        others.append(hnp.array_shapes(min_dims=0, max_dims=2, max_side=2).flatmap(lambda s: hnp.arrays(np.float32, s)))
        return st.tuples(same_shape, st.lists(st.one_of(*others), max_size=4)).map(lambda t: [t[0], *t[1]])

    return hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=2).flatmap(build)


@SETTINGS
@given(array_batches())
def test_collate_matches_torch_on_mixed_arrays(batch):
    assert_matches_torch(default_collate, torch_collate, lambda: list(batch))


@pytest.mark.parametrize("default", [torch.float64, torch.float16])
def test_python_floats_follow_torch_default_dtype(default):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(default)
    try:
        last = [True, 1j] if default == torch.float64 else [1]
        for batch in ([1, 2.5], [np.int8(1), 0.1], [np.zeros((), np.int64), 0.1], last):
            assert_matches_torch(default_collate, torch_collate, lambda batch=batch: list(batch))
    finally:
        torch.set_default_dtype(previous)


# --------------------------------------------------------------------------- hand-picked cases, vs torch

P = collections.namedtuple("P", "x y")

CASES = {
    "int+float→float32": lambda: [1, 2.5],
    "bool+int": lambda: [True, 1],
    "float-led casts all": lambda: [1.0, True, 3, np.float32(0.1), np.ones(1)],
    "int-led None": lambda: [1, None],
    "float-led None": lambda: [1.0, None],
    "float-led str": lambda: [1.0, "1.5"],
    "int overflow": lambda: [1, 2**63],
    "float-led huge int": lambda: [1.0, 10**400],
    "int+complex": lambda: [1, 1j],
    "complex-led": lambda: [1j, 1j],
    "None-led": lambda: [None, None],
    "double rounding int→float32": lambda: [1, 2**60 + 2**36 + 1, np.float32(1)],
    "uint16+uint8": lambda: [np.uint16(1), np.uint8(3)],
    "uint16+float32": lambda: [np.uint16(1), np.float32(3)],
    "uint16 arrays + int8 then float": lambda: [np.zeros(2, np.uint16), np.zeros(2, np.int8), np.zeros(2, np.float32)],
    "uint16 arrays + float then int8": lambda: [np.zeros(2, np.uint16), np.zeros(2, np.float32), np.zeros(2, np.int8)],
    "int64 array + float32 array": lambda: [np.array([2**60 + 2**36 + 1]), np.zeros(1, np.float32)],
    "int64 array + float16 array": lambda: [np.array([2049, 70000]), np.zeros(2, np.float16)],
    "array + python float (float32)": lambda: [np.zeros((), np.float64), 0.1],
    "array + list": lambda: [np.zeros(2), [1, 2]],
    "array + ragged list": lambda: [np.zeros((2, 1)), [[1], [2, 3]]],
    "array + empty tuple": lambda: [np.zeros(0, np.int64), ()],
    "array + None": lambda: [np.zeros(2), None],
    "array + str": lambda: [np.zeros(2), "ab"],
    "array + tensor": lambda: [np.zeros(2), torch.ones(2, dtype=torch.float32)],
    "tensor + array": lambda: [torch.ones(2), np.zeros(2)],
    "tensor + list": lambda: [torch.ones(2), [1.0, 2.0]],
    "tensor dtypes": lambda: [torch.ones(2, dtype=torch.int64), torch.ones(2, dtype=torch.float32)],
    "tensor requires_grad": lambda: [torch.ones(2, requires_grad=True), torch.zeros(2)],
    "tensor conj view": lambda: [torch.tensor([1 + 2j]).conj(), torch.tensor([3j])],
    "unicode arrays": lambda: [np.array(["a"]), np.array(["b"])],
    "float then unicode array": lambda: [np.array([1.0]), np.array(["b"])],
    "object arrays": lambda: [np.array([1], dtype=object)],
    "datetime arrays": lambda: [np.array(["2020-01-01"], dtype="M8[D]")],
    "longdouble arrays": lambda: [np.ones(1, np.longdouble)],
    "structured arrays": lambda: [np.zeros(2, dtype=[("a", "i4")])],
    "big-endian arrays": lambda: [np.zeros(2, dtype=">i4")],
    "negative strides": lambda: [np.arange(3), np.arange(3)[::-1]],
    "shape mismatch": lambda: [np.zeros((3, 4)), np.zeros((3, 4)), np.zeros((3, 5))],
    "memmap-like subclass": lambda: [np.zeros(2).view(np.memmap), np.ones(2).view(np.memmap)],
    "matrix": lambda: [np.matrix([[1, 2]]), np.matrix([[3, 4]])],
    "datetime scalar": lambda: [np.datetime64("2020-01-01")],
    "timedelta scalar": lambda: [np.timedelta64(1)],
    "longdouble scalar": lambda: [np.longdouble(1)],
    "np.str_ scalars": lambda: [np.str_("a"), np.str_("b")],
    "strings in tuples stay tuples": lambda: [("a", 1), ("b", 2)],
    "strings in dicts stay lists": lambda: [{"a": "x"}, {"a": "y"}],
    "bytes": lambda: [b"a", b"b"],
    "unequal lists": lambda: [[1, 2], [1]],
    "list then int": lambda: [[1, 2], 5],
    "missing key": lambda: [{"a": 1}, {"b": 1}],
    "extra key dropped": lambda: [{"a": 1}, {"a": 1, "b": 1}],
    "dict then list": lambda: [{"a": 1}, [1]],
    "OrderedDict kept": lambda: [collections.OrderedDict(b=1, a=2), collections.OrderedDict(b=3, a=4)],
    # (a list factory beside int values on purpose: the collate must keep the factory; mypy wants them to agree)
    "defaultdict kept": lambda: [
        collections.defaultdict(list, a=1),  # type: ignore[arg-type]
        collections.defaultdict(list, a=2),  # type: ignore[arg-type]
    ],
    "namedtuple kept": lambda: [P(1, np.zeros(2)), P(2, np.ones(2))],
    "range → list": lambda: [range(2), range(2)],
    "empty lists": lambda: [[], []],
    "empty batch": lambda: [],
    "nested tensor": lambda: [torch.nested.nested_tensor([torch.ones(2), torch.ones(3)])],
    "sparse tensor": lambda: [torch.ones(2).to_sparse()],
}


@pytest.mark.parametrize("name", CASES)
def test_collate_matches_torch_on_edge_cases(name):
    assert_matches_torch(default_collate, torch_collate, CASES[name])


CONVERT_CASES = {
    "numpy.bytes_ (torch rejects)": lambda: np.bytes_(b"ab"),
    "numpy.str_ unchanged": lambda: np.str_("ab"),
    "datetime scalar": lambda: np.datetime64("2020-01-01"),
    "unicode array unchanged": lambda: np.array(["a"]),
    "negative strides": lambda: np.arange(3)[::-1],
    "big-endian": lambda: np.zeros(2, ">i4"),
    "longdouble": lambda: np.zeros(2, np.longdouble),
    "tuple → list": lambda: (1, "a", np.float32(2)),
    "None unchanged": lambda: None,
    "range → list": lambda: range(3),
    "matrix": lambda: np.matrix([[1, 2]]),
    "memmap": lambda: np.zeros(2).view(np.memmap),
    "nested": lambda: {"a": [np.zeros(2), (np.int8(1), 2.5)], "b": P(np.ones(1), "s")},
    "tensor": lambda: torch.arange(3),
}


@pytest.mark.parametrize("name", CONVERT_CASES)
def test_convert_matches_torch_on_edge_cases(name):
    assert_matches_torch(default_convert, torch_convert, CONVERT_CASES[name])


def test_convert_shares_memory_like_torch_as_tensor():
    a = np.arange(4.0)
    assert np.shares_memory(default_convert(a), a)
    assert type(default_convert(a.view(np.memmap))) is np.ndarray


def test_collate_returns_torchs_very_string_list():
    batch = ["a", "b"]
    assert default_collate(batch) is batch is torch_collate(batch)


# --------------------------------------------------------------------------- where torch's rules are not kept


def test_bfloat16_is_refused_with_advice():
    # numpy has no bfloat16: there is no numpy array torch's result could be.
    batch = [torch.ones(2, dtype=torch.bfloat16), torch.ones(2, dtype=torch.bfloat16)]
    assert torch_collate(batch).dtype == torch.bfloat16
    with pytest.raises(
        TypeError, match=re.escape("a torch.bfloat16 tensor (at the top level of the sample) has no numpy equivalent")
    ) as info:
        default_collate(batch)
    assert "tensor.float()" in str(info.value)
    with pytest.raises(TypeError, match=re.escape("a torch.bfloat16 tensor (at ['img']) has no numpy equivalent")):
        default_convert({"img": torch.ones(1, dtype=torch.bfloat16)})


def test_namedtuple_length_mismatch_is_an_error_not_a_silent_drop():
    batch = [P(1, 2), (1, 2, 3)]
    theirs = torch_collate(batch)
    assert type(theirs) is P and theirs.x.tolist() == [1, 1] and theirs.y.tolist() == [2, 2]  # torch drops the 3
    with pytest.raises(
        RuntimeError,
        match=re.escape(
            "each element in list of batch should be of equal size; got length 2 at batch element 0 and length 3 "
            "at batch element 1 (default_collate: batch element 1, at the top level of the sample)"
        ),
    ):
        default_collate(batch)


@pytest.mark.parametrize("values", [[0], [5, 7], [2**64 - 1, 1]])
def test_uint64_scalars_are_collated(values):
    # torch 2.13 fails on every list of numpy.uint64 scalars; the numpy result is what its dtype rule gives
    # (and what torch gives for the same numbers as 0-d uint64 arrays, checked here where torch can).
    batch = [np.uint64(v) for v in values]
    with pytest.raises(TypeError, match="an integer is required"):
        torch_collate(batch)
    out = default_collate(batch)
    assert out.dtype == np.uint64 and out.tolist() == values
    assert_same(out, torch_collate([np.asarray(v, dtype=np.uint64) for v in values]))


def test_uint64_scalars_with_floats_match_torch():
    assert_matches_torch(default_collate, torch_collate, lambda: [np.uint64(2**64 - 1), np.float32(2.5), 1.5])


def test_float16_nan_widened_stays_nan():
    # torch widens float16 NaNs with a vector instruction for long arrays (sign and payload kept, quiet bit set)
    # and a scalar loop for short ones (every NaN → 0x7fffffff): the bits depend on the length, so we keep
    # numpy's conversion. Every value matches except the bits inside NaNs.
    half = np.array([0x7E00, 0xFE00, 0x7C01, 0x3C00], np.uint16).view(np.float16)  # nan, -nan, snan, 1.0
    for n in (1, 64, 1000):
        batch = [np.resize(half, n), np.zeros(n, np.float32)]
        ours, theirs = default_collate(batch), torch_collate(batch).numpy()
        assert ours.dtype == theirs.dtype == np.float32
        assert np.array_equal(np.isnan(ours), np.isnan(theirs))
        assert ours[~np.isnan(ours)].tobytes() == theirs[~np.isnan(theirs)].tobytes()


def test_arrays_nested_in_a_list_are_refused():
    with pytest.raises(
        TypeError,
        match=re.escape(
            "default_collate: arrays or tensors nested in a list are not supported (batch element 1, at ['x'])"
        ),
    ):
        default_collate([{"x": np.zeros((1, 2))}, {"x": [np.zeros(2)]}])


# --------------------------------------------------------------------------- error messages (pinned)


def raises(exc_type, text, batch, fn=default_collate):
    with pytest.raises(exc_type) as info:
        fn(batch)
    assert type(info.value) is exc_type
    message = info.value.args[0] if info.value.args else str(info.value)
    assert message == text, f"\n got: {message}\nwant: {text}"


def test_error_none_names_element_and_path():
    raises(
        TypeError,
        "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found "
        "<class 'NoneType'> (batch element 0, at ['label'])",
        [{"label": None}, {"label": 1}],
    )


def test_error_none_after_numbers_keeps_torchs_runtime_error():
    raises(
        RuntimeError,
        "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found "
        "<class 'NoneType'> (batch element 2, at ['label']; torch: 'Could not infer dtype of NoneType')",
        [{"label": 1}, {"label": 2}, {"label": None}],
    )


def test_error_object_and_complex():
    raises(
        TypeError,
        "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found "
        "<class 'object'> (batch element 0, at [1])",
        [(1, object()), (2, object())],
    )
    raises(
        TypeError,
        "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found "
        "<class 'complex'> (batch element 0, at the top level of the sample)",
        [1j, 2j],
    )


def test_error_unicode_array():
    raises(
        TypeError,
        "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found "
        "<U3 (batch element 0, at ['name'])",
        [{"name": np.array("abc")}],
    )
    raises(
        TypeError,
        "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found "
        "<U1 (batch element 1, at ['name'])",
        [{"name": np.zeros(1)}, {"name": np.array(["b"])}],
    )


def test_error_shape_mismatch_names_both_shapes_and_the_path():
    batch = [{"boxes": np.zeros((3, 4))}, {"boxes": np.zeros((3, 4))}, {"boxes": np.zeros((3, 5))}]
    raises(
        RuntimeError,
        "stack expects each tensor to be equal size, but got [3, 4] at entry 0 and [3, 5] at entry 2 "
        "(default_collate: batch element 2, at ['boxes'])",
        batch,
    )


def test_error_shape_mismatch_of_tensors_adds_the_path():
    batch = [[torch.zeros(3, 4)], [torch.zeros(3, 5)]]
    raises(
        RuntimeError,
        "stack expects each tensor to be equal size, but got [3, 4] at entry 0 and [3, 5] at entry 1 "
        "(default_collate: at [0])",
        batch,
    )


def test_error_unequal_lengths():
    raises(
        RuntimeError,
        "each element in list of batch should be of equal size; got length 2 at batch element 0 and "
        "length 1 at batch element 1 (default_collate: batch element 1, at ['targets'])",
        [{"targets": [1, 2]}, {"targets": [1]}],
    )
    raises(
        TypeError,
        "default_collate: batch element 1 at the top level is int (object has no len()), but batch "
        "element 0 is a list of length 2",
        [[1, 2], 5],
    )


def test_error_missing_key():
    with pytest.raises(KeyError) as info:
        default_collate([{"a": {"x": 1}}, {"a": {"y": 1}}])
    assert info.value.args[0] == (
        "default_collate: batch element 1 has no key 'x' at ['a'] (batch element 0 has keys "
        "['x']; batch element 1 has keys ['y'])"
    )


def test_error_int_overflow_and_strides_and_byte_order():
    raises(
        ValueError,
        f"default_collate: Overflow when unpacking long long: {2**63} does not fit int64 "
        "(batch element 1, at the top level of the sample)",
        [1, 2**63],
    )
    raises(
        ValueError,
        "default_collate: the array at batch element 1, at ['img'] has a negative stride (e.g. from "
        "a[::-1]), which torch rejects ('tensors with negative strides are not currently supported'); use "
        "np.ascontiguousarray(a)",
        [{"img": np.zeros(2)}, {"img": np.arange(2.0)[::-1]}],
    )
    raises(
        ValueError,
        "default_collate: the array at batch element 0, at the top level of the sample is >i4 "
        "(non-native byte order), which torch rejects ('Conversion between byte orders is currently not "
        "supported'); use a.astype(a.dtype.newbyteorder('='))",
        [np.zeros(1, ">i4")],
    )


def test_error_unsupported_numpy_dtype():
    raises(
        TypeError,
        "default_collate: can't convert np.ndarray of type numpy.longdouble (batch element 0, at [0]). "
        "The only supported types are: float64, float32, float16, complex64, complex128, int64, int32, int16, "
        "int8, uint64, uint32, uint16, uint8, and bool.",
        [[np.ones(1, np.longdouble)]],
    )


def test_error_promotion_of_uint16():
    raises(
        RuntimeError,
        "default_collate: Promotion for uint16, uint32, uint64 types is not supported, attempted to "
        "promote uint16 and int8 (at ['m'])",
        [{"m": np.zeros(1, np.uint16)}, {"m": np.zeros(1, np.int8)}],
    )


def test_error_empty_batch():
    raises(IndexError, "default_collate: got an empty batch (at the top level of the sample)", [])


def test_error_tensor_then_array_keeps_torchs_message_and_adds_path():
    raises(
        TypeError,
        "expected Tensor as element 1 in argument 0, but got numpy.ndarray (default_collate: at ['x'])",
        [{"x": torch.zeros(1)}, {"x": np.zeros(1)}],
    )


def test_convert_error_names_the_path():
    raises(
        TypeError,
        "default_convert: torch.as_tensor cannot convert a numpy.datetime64 (at ['meta'][1]); supported "
        "numpy types: float64, float32, float16, complex64, complex128, int64, int32, int16, int8, uint64, uint32, "
        "uint16, uint8, and bool",
        {"meta": [1, np.datetime64(1, "D")]},
        fn=default_convert,
    )


# --------------------------------------------------------------------------- to_numpy


def test_to_numpy_keeps_structure_and_converts_tensors():
    out = to_numpy({"img": torch.arange(4).reshape(2, 2), "meta": (torch.tensor([1.5]), "a", P(1, [torch.ones(1)]))})
    assert type(out["img"]) is np.ndarray and out["img"].tolist() == [[0, 1], [2, 3]]
    assert type(out["meta"]) is tuple and out["meta"][1] == "a"
    assert out["meta"][0].dtype == np.float32 and type(out["meta"][2]) is P
    assert type(out["meta"][2].y[0]) is np.ndarray


def test_to_numpy_names_the_path_of_unsupported_values():
    raises(
        TypeError,
        "to_numpy: a collate_fn's output may contain only tensors, numpy arrays and scalars, numbers, "
        "str, bytes, mappings, lists, tuples and namedtuples; found <class 'NoneType'> at ['meta'][1]",
        {"meta": [torch.ones(1), None]},
        fn=to_numpy,
    )
    raises(
        TypeError,
        "to_numpy: a collate_fn's output may contain only tensors, numpy arrays and scalars, numbers, "
        "str, bytes, mappings, lists, tuples and namedtuples; found <class 'set'> at [0]",
        ({1},),
        fn=to_numpy,
    )


def test_to_numpy_equals_collating_with_torch_then_converting():
    batch = [{"x": np.full(2, i, np.float32), "y": (i, "s")} for i in range(3)]
    assert_same(to_numpy(torch_collate(batch)), torch_collate(batch))
    assert_same(default_collate(batch), torch_collate(batch))


# --------------------------------------------------------------------------- exhaustive (pytest -m slow)

SLOW = settings(max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.mark.slow
@pytest.mark.parametrize(
    "test, strategies",
    [
        (test_collate_matches_torch_on_uniform_batches, dict(schema=schemas, size=st.integers(1, 4), data=st.data())),
        (test_convert_matches_torch, dict(schema=schemas, data=st.data())),
        (test_collate_matches_torch_on_mixed_numbers, dict(batch=st.lists(number_elements, min_size=1, max_size=5))),
        (test_collate_matches_torch_on_mixed_arrays, dict(batch=array_batches())),
    ],
    ids=["uniform", "convert", "mixed-numbers", "mixed-arrays"],
)
def test_exhaustive_against_torch(test, strategies):
    SLOW(given(**strategies)(test.hypothesis.inner_test))()


@pytest.mark.parametrize("bits", [0x7E00, 0x7C01, 0x7FFF, 0xFE00, 0xFC01, 0xFFFF, 0x7D55])
@pytest.mark.parametrize("other", [0.0, np.array(1.0), np.array(np.float32(2))], ids=["float", "float64", "float32"])
def test_float16_nans_promoted_keep_torchs_bits(bits, other):
    # found by hypothesis in the slow sweep: [np.float16 NaN, 0.0]; torch's cast makes every float16 NaN
    # 0x7fffffff in float32 and sets its quiet bit in float64, numpy keeps sign and payload
    nan = np.array(np.frombuffer(np.array([bits], np.uint16).tobytes(), np.float16)[0])
    assert_matches_torch(default_collate, torch_collate, lambda: [nan, other])
