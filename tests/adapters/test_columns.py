"""adapters.engine._columns: flatten a collated batch into named columns and rebuild it identically."""

from __future__ import annotations

import collections
import math
import pickle
import re
import textwrap
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from adapters.engine._columns import Structure, StructureMismatchError, flatten, unflatten
from adapters.torch_data._collate import default_collate, default_convert

Point = collections.namedtuple("Point", "x y")
Box = collections.namedtuple("Box", "lo hi label")
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_identical(rebuilt, original, where="batch"):
    """Same containers (exact types, key order), same arrays, same python/numpy scalar types and values."""
    assert type(rebuilt) is type(original), f"{where}: {type(rebuilt)} != {type(original)}"
    if isinstance(original, np.ndarray):
        assert rebuilt.dtype == original.dtype and rebuilt.shape == original.shape, where
        assert rebuilt.tobytes() == original.tobytes(), where
    elif isinstance(original, collections.abc.Mapping):
        assert list(rebuilt) == list(original), where
        if isinstance(original, collections.defaultdict):
            assert rebuilt.default_factory is original.default_factory, where
        for k in original:
            assert_identical(rebuilt[k], original[k], f"{where}[{k!r}]")
    elif isinstance(original, (list, tuple)):
        assert len(rebuilt) == len(original), where
        for i, (r, o) in enumerate(zip(rebuilt, original, strict=True)):
            assert_identical(r, o, f"{where}[{i}]")
    elif isinstance(original, np.generic):
        assert rebuilt.dtype == original.dtype, where
        assert np.asarray(rebuilt).tobytes() == np.asarray(original).tobytes(), where
    elif isinstance(original, float) and math.isnan(original):
        assert math.isnan(rebuilt), where
    else:
        assert rebuilt == original, f"{where}: {rebuilt!r} != {original!r}"


# --------------------------------------------------------------------------- round trips (hypothesis)

ARRAY_DTYPES = [
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
]
no_nul_text = st.text(max_size=4).filter(lambda s: not s.endswith("\0"))
no_nul_bytes = st.binary(max_size=4).filter(lambda s: not s.endswith(b"\0"))

leaves = st.one_of(
    st.sampled_from(ARRAY_DTYPES).flatmap(
        lambda d: hnp.arrays(d, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3))
    ),
    hnp.arrays(hnp.unicode_string_dtypes(), hnp.array_shapes(max_dims=2, max_side=3)),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(),
    st.sampled_from(ARRAY_DTYPES).flatmap(lambda d: hnp.arrays(d, ()).map(lambda a: a[()])),
    no_nul_text,
    no_nul_bytes,
    st.lists(no_nul_text, min_size=1, max_size=4),
    st.lists(no_nul_bytes, min_size=1, max_size=4).map(tuple),
)
keys = st.text("abcXYZ_", min_size=1, max_size=3)
batches = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.dictionaries(keys, inner, max_size=3),
        st.dictionaries(keys, inner, max_size=3).map(collections.OrderedDict),
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=3).map(tuple),
        st.builds(Point, inner, inner),
        st.builds(Box, inner, inner, inner),
    ),
    max_leaves=8,
)


def count_leaves(batch):
    if isinstance(batch, collections.abc.Mapping):
        return sum(count_leaves(v) for v in batch.values())
    if not isinstance(batch, (list, tuple)):
        return 1
    strings = (
        type(batch) in (list, tuple)
        and batch
        and (all(isinstance(s, str) for s in batch) or all(isinstance(s, bytes) for s in batch))
    )
    return 1 if strings else sum(count_leaves(v) for v in batch)


@SETTINGS
@given(batches)
def test_flatten_then_unflatten_is_identity(batch):
    columns, structure = flatten(batch)
    assert len(columns) == len(structure) == count_leaves(batch)
    assert all(type(a) is np.ndarray for _, a in columns)
    assert len(set(structure.names)) == len(structure.names)
    assert_identical(unflatten([a for _, a in columns], structure), batch)
    assert_identical(unflatten(columns, structure), batch)
    assert_identical(unflatten(dict(columns), structure), batch)
    # the batch matches its own structure, column for column
    again = structure.flatten(batch, batch_index=1)
    assert [n for n, _ in again] == list(structure.names)
    assert all(a.tobytes() == b.tobytes() and a.dtype == b.dtype for (_, a), (_, b) in zip(again, columns, strict=True))


def sample_strategy():
    """Samples as datasets return them; collated by default_collate into batches to flatten."""
    return st.tuples(
        hnp.arrays(np.uint8, (2, 3)),
        st.integers(0, 9),
        st.floats(allow_nan=False),
        st.text("abc/", min_size=1, max_size=5),
        st.tuples(st.booleans(), hnp.arrays(np.float32, (2,))),
    ).map(lambda t: dict(zip(("img", "label", "score", "path", "meta"), t, strict=True)))


@SETTINGS
@given(st.lists(sample_strategy(), min_size=1, max_size=4))
def test_collated_batches_round_trip(samples):
    batch = default_collate(samples)
    columns, structure = flatten(batch)
    assert structure.names == ("img", "label", "score", "path", "meta.0", "meta.1")
    assert_identical(unflatten([a for _, a in columns], structure), batch)


# --------------------------------------------------------------------------- naming


def names_of(batch, **kw):
    return [n for n, _ in flatten(batch, **kw)[0]]


def test_naming_rules():
    a = np.zeros(1)
    assert names_of((a, [a, a])) == ["0", "1.0", "1.1"]
    assert names_of([a, a]) == ["0", "1"]
    assert names_of({"img": a, "meta": {"size": a, "id": a}}) == ["img", "meta.size", "meta.id"]
    assert names_of({"targets": [a, a]}) == ["targets.0", "targets.1"]
    assert names_of(Point(a, {"k": a})) == ["x", "y.k"]
    assert names_of(a) == ["0"]
    assert names_of(["a", "b"]) == ["0"]  # a default_collate'd list of str is one column
    assert names_of({"paths": ("a", "b"), "n": 1}) == ["paths", "n"]


def test_names_that_would_collide_are_refused():
    with pytest.raises(
        ValueError,
        match=re.escape(
            "flatten: the leaves at ['a.b'] and ['a']['b'] would both be column 'a.b' (a key contains '.'); rename "
            "the key or pass column_names=[...]"
        ),
    ):
        flatten({"a.b": np.zeros(1), "a": {"b": np.zeros(1)}})


def test_non_str_and_empty_keys_are_refused_unless_named_by_the_user():
    batch = {"img": np.zeros(1), "cls": {3: np.ones(1)}}
    with pytest.raises(
        TypeError,
        match=re.escape(
            "flatten: the dict key 3 (int) at ['cls'][3] cannot name a column: column names are built from str keys; "
            "pass column_names=[...] to name the columns yourself"
        ),
    ):
        flatten(batch)
    columns, structure = flatten(batch, column_names=["image", "class_3"])
    assert structure.names == ("image", "class_3")
    assert_identical(unflatten([a for _, a in columns], structure), batch)
    with pytest.raises(ValueError, match=re.escape("flatten: the empty dict key at [''] cannot name a column")):
        flatten({"": np.zeros(1)})


def test_column_names_must_match_the_leaves():
    batch = {"img": np.zeros(1), "meta": (np.zeros(1), 1)}
    with pytest.raises(
        ValueError,
        match=re.escape(
            "column_names has 2 names ['a', 'b'], but the batch has 3 leaves: "
            "[\"['img']\", \"['meta'][0]\", \"['meta'][1]\"]"
        ),
    ):
        flatten(batch, column_names=["a", "b"])
    with pytest.raises(ValueError, match=re.escape("column_names must be unique; ['a'] repeat in ['a', 'b', 'a']")):
        flatten(batch, column_names=["a", "b", "a"])
    with pytest.raises(TypeError, match=re.escape("column_names must be non-empty str; got [1, ''] in ['a', 1, '']")):
        flatten(batch, column_names=["a", 1, ""])  # type: ignore[list-item]  # the refusal under test
    _, s = flatten(batch)
    with pytest.raises(ValueError, match="column_names only applies when the structure is inferred"):
        flatten(batch, s, column_names=["a", "b", "c"])


# --------------------------------------------------------------------------- later batches


def test_later_batches_are_checked_against_the_first():
    first = {"img": np.zeros((2, 3)), "meta": {"size": np.zeros(2), "id": ["a", "b"]}, "boxes": [np.zeros(2)]}
    _, s = flatten(first)
    # a smaller last batch and the same keys in another order are the same structure
    cols = s.flatten({"boxes": [np.ones(1)], "meta": {"id": ["c"], "size": np.ones(1)}, "img": np.ones((1, 3))}, 5)
    assert [n for n, _ in cols] == ["img", "meta.size", "meta.id", "boxes.0"]
    assert cols[2][1].tolist() == ["c"]

    def mismatch(batch, text):
        with pytest.raises(StructureMismatchError) as info:
            flatten(batch, s, batch_index=7)
        assert str(info.value) == text
        assert isinstance(info.value, ValueError)

    mismatch(
        {"img": first["img"], "meta": {"size": np.zeros(2), "idx": ["a"]}, "boxes": [np.zeros(2)]},
        "batch 7 is not nested like the first batch at ['meta'] (columns 'meta'...): expected a dict with keys "
        "['size', 'id'], got a dict with keys ['size', 'idx'] (new keys ['idx'], missing keys ['id'])",
    )
    mismatch(
        {"img": first["img"], "meta": first["meta"], "boxes": [np.zeros(2), np.zeros(2)]},
        "batch 7 is not nested like the first batch at ['boxes'] (columns 'boxes'...): expected a list of 1 "
        "items, got a list of 2 items",
    )
    mismatch(
        {"img": first["img"], "meta": first["meta"], "boxes": (np.zeros(2),)},
        "batch 7 is not nested like the first batch at ['boxes'] (columns 'boxes'...): expected a list of 1 "
        "items, got a tuple of 1 items",
    )
    mismatch(
        {"img": {"x": 1}, "meta": first["meta"], "boxes": [np.zeros(2)]},
        "batch 7 is not nested like the first batch at ['img'] (columns 'img'...): expected an array, got a "
        "dict with keys ['x']",
    )
    mismatch(
        {"img": first["img"], "meta": {"size": np.zeros(2), "id": [b"a"]}, "boxes": [np.zeros(2)]},
        "batch 7 is not nested like the first batch at ['meta']['id'] (columns 'meta.id'...): expected a list "
        "of str, got a list of bytes",
    )
    mismatch(
        [first],
        "batch 7 is not nested like the first batch at <top level> (columns '<all>'...): expected a "
        "dict with keys ['img', 'meta', 'boxes'], got a list of 1 items",
    )


def test_namedtuple_class_and_mapping_type_are_part_of_the_structure():
    _, s = flatten(Point(np.zeros(1), np.zeros(1)))
    with pytest.raises(StructureMismatchError, match=re.escape("expected a Point of 2 items, got a tuple of 2 items")):
        s.flatten((np.zeros(1), np.zeros(1)), 1)
    _, s = flatten(collections.OrderedDict(a=np.zeros(1)))
    with pytest.raises(StructureMismatchError, match=re.escape("expected a OrderedDict with keys ['a'], got a dict")):
        s.flatten({"a": np.zeros(1)}, 2)


def test_mapping_types_are_rebuilt():
    # (a list factory beside an array value on purpose: the rebuild must keep the factory)
    defaults = collections.defaultdict(list, a=np.zeros(1))  # type: ignore[arg-type]
    batch = {"d": defaults, "o": collections.OrderedDict(b=1, a=2)}
    columns, s = flatten(batch)
    rebuilt = unflatten([a for _, a in columns], s)
    assert_identical(rebuilt, batch)
    rebuilt["d"]["new"].append(1)  # the default_factory survived
    # a Structure pickles (MindSpore may send the row source to worker processes)
    assert_identical(unflatten([a for _, a in columns], pickle.loads(pickle.dumps(s))), batch)


# --------------------------------------------------------------------------- leaves


def test_python_scalars_become_0d_columns_with_default_collates_dtypes():
    sample = default_convert({"label": 3, "score": 0.5, "ok": True, "name": "a", "raw": b"x", "f": np.float32(2)})
    columns = dict(flatten(sample)[0])
    assert {k: (v.shape, v.dtype.str) for k, v in columns.items()} == {
        "label": ((), "<i8"),
        "score": ((), "<f8"),
        "ok": ((), "|b1"),
        "name": ((), "<U1"),
        "raw": ((), "|S1"),
        "f": ((), "<f4"),  # default_convert made the numpy scalar a 0-d array: it stays one
    }
    for key in ("label", "score", "ok"):
        assert columns[key].dtype == default_collate([sample[key]]).dtype
    rebuilt = unflatten(list(columns.values()), flatten(sample)[1])
    assert_identical(rebuilt, sample)


def test_tensors_are_flattened_as_numpy():
    torch = pytest.importorskip("torch")
    columns, s = flatten({"x": torch.arange(3), "y": [torch.ones(1, dtype=torch.float16)]})
    assert [(n, type(a), a.dtype.name) for n, a in columns] == [
        ("x", np.ndarray, "int64"),
        ("y.0", np.ndarray, "float16"),
    ]
    # bfloat16 has no numpy dtype: carried packed, rebuilt as the same torch tensor
    columns, s = flatten({"x": torch.tensor([1.5, -2.0], dtype=torch.bfloat16)})
    back = unflatten([a for _, a in columns], s)["x"]
    assert back.dtype == torch.bfloat16 and back.tolist() == [1.5, -2.0]


def test_none_is_a_packed_column_that_may_hold_anything_in_later_batches():
    # YOLOv5's collate_fn returns shapes=(None, ...) under mosaic, and tuples for the samples that were not
    # mosaics: what is None in the first batch may be a nested tuple in the next one. Carried exactly.
    batch = (np.zeros((2, 3)), (None, None), ["a.jpg", "b.jpg"])
    columns, s = flatten(batch)
    assert [n for n, _ in columns] == ["0", "1.0", "1.1", "2"]
    assert all(a.dtype == np.uint8 and a.ndim == 1 for n, a in columns if n.startswith("1."))
    rebuilt = unflatten([a for _, a in columns], s)
    assert rebuilt[1] == (None, None) and rebuilt[2] == ["a.jpg", "b.jpg"]
    later = (np.ones((2, 3)), (((640, 480), ((0.5, 0.5), (0.0, 16.0))), None), ["c.jpg", "d.jpg"])
    again = unflatten([a for _, a in s.flatten(later, batch_index=4)], s)
    assert again[1] == later[1] and type(again[1][0][1][1]) is tuple
    with pytest.raises(StructureMismatchError, match="expected an array, got None"):
        flatten([np.zeros(1)])[1].flatten([None], batch_index=1)


def test_a_packed_column_whose_bytes_were_changed_is_refused_not_unpickled():
    columns, s = flatten([np.zeros(1), None])
    arrays = [a for _, a in columns]
    forged = np.frombuffer(bytes(32) + pickle.dumps(None), dtype=np.uint8)  # an attacker's pickle, wrong signature
    with pytest.raises(ValueError, match="was not made by this pipeline"):
        unflatten([arrays[0], forged], s)
    tampered = arrays[1].copy()
    tampered[-2] ^= 1
    with pytest.raises(ValueError, match="was not made by this pipeline"):
        unflatten([arrays[0], tampered], s)


class _Label:
    def __init__(self, name):
        self.name = name

    def __eq__(self, other):
        return type(other) is _Label and other.name == self.name


@pytest.mark.parametrize(
    "value",
    [_Label("cat"), {1, 2}, 1j, np.array([1, "a"], dtype=object), np.datetime64(1, "D")],
    ids=["object", "set", "complex", "object-array", "datetime64"],
)
def test_values_no_plain_column_holds_are_carried_packed(value):
    # torch yields whatever a custom collate_fn returns: the port carries it exactly, in a packed column
    columns, s = flatten({"meta": [np.zeros(1), value]})
    assert [n for n, _ in columns] == ["meta.0", "meta.1"] and columns[1][1].dtype == np.uint8
    back = unflatten([a for _, a in columns], s)["meta"][1]
    assert type(back) is type(value)
    assert (back == value).all() if isinstance(value, np.ndarray) else back == value


def test_int_too_large_for_int64():
    with pytest.raises(
        OverflowError, match=re.escape("flatten: the python int 9223372036854775808 at ['n'] does not fit int64")
    ):
        flatten({"n": 2**63})


def test_strings_ending_in_nul_are_carried_packed_not_truncated():
    assert np.array(["a\0"]).tolist() == ["a"]  # what a plain string column would do
    columns, s = flatten({"paths": ["a", "b\0"]})
    assert columns[0][1].dtype == np.uint8 and unflatten([a for _, a in columns], s) == {"paths": ["a", "b\0"]}
    columns, s = flatten([b"\0", np.zeros(1)])
    assert columns[0][1].dtype == np.uint8 and unflatten([a for _, a in columns], s)[0] == b"\0"


# --------------------------------------------------------------------------- unflatten errors


def test_unflatten_checks_count_names_and_shapes():
    columns, s = flatten({"img": np.zeros(2), "n": 3, "paths": ["a", "b"]})
    with pytest.raises(
        ValueError, match=re.escape("unflatten: got 2 columns, the structure has 3: ['img', 'n', 'paths']")
    ):
        unflatten([np.zeros(2), np.array(1)], s)
    with pytest.raises(
        ValueError,
        match=re.escape("unflatten: got columns ['img', 'm', 'paths'], the structure has ['img', 'n', 'paths']"),
    ):
        unflatten([("img", np.zeros(2)), ("m", np.array(1)), ("paths", np.array(["a"]))], s)
    with pytest.raises(
        ValueError, match=re.escape("unflatten: got columns ['img'], the structure has ['img', 'n', 'paths']")
    ):
        unflatten({"img": np.zeros(2)}, s)
    with pytest.raises(
        ValueError,
        match=re.escape(
            "unflatten: column 'n' holds a python number, so it must be a 0-d numeric array; got shape (2,) dtype int64"
        ),
    ):
        unflatten([np.zeros(2), np.array([1, 2]), np.array(["a"])], s)
    with pytest.raises(
        ValueError,
        match=re.escape(
            "unflatten: column 'paths' holds a list of str, so it must be a 1-d string array; "
            "got shape (1,) dtype float64"
        ),
    ):
        unflatten([np.zeros(2), np.array(1), np.zeros(1)], s)
    with pytest.raises(
        ValueError,
        match=re.escape(
            "unflatten: column 'n' holds a python number, so it must be a 0-d numeric array; got shape () dtype <U1"
        ),
    ):
        unflatten([np.zeros(2), np.array("1"), np.array(["a"])], s)


def test_structure_infer_and_rebuild_methods():
    batch = {"a": np.zeros(1), "b": (2.5, "x")}
    s = Structure.infer(batch)
    assert s == flatten(batch)[1] and s.names == ("a", "b.0", "b.1")
    assert_identical(s.rebuild([a for _, a in s.flatten(batch)]), batch)
    row = s.to_row({"b": (1.5, "y"), "a": np.ones(1)}, batch_index=3)
    assert type(row) is tuple and [a.tolist() for a in row] == [[1.0], 1.5, "y"]
    with pytest.raises(StructureMismatchError, match=re.escape("batch 3 is not nested like the first batch at ['b']")):
        s.to_row({"a": np.ones(1), "b": [1.5, "y"]}, batch_index=3)


def test_columns_survive_a_mindspore_generator_dataset():
    ds = pytest.importorskip("mindspore.dataset")
    samples = [
        {"img": np.full((2, 2), i, np.uint8), "label": i, "path": f"im{i}.jpg", "box": (np.float32(i), 0.5)}
        for i in range(5)
    ]
    batches = [default_collate(samples[i : i + 2]) for i in range(0, 5, 2)]  # last batch has 1 sample
    _, structure = flatten(batches[0])

    def rows():
        for k, b in enumerate(batches):
            yield tuple(a for _, a in structure.flatten(b, k))

    dataset = ds.GeneratorDataset(rows, column_names=list(structure.names), shuffle=False)
    for k, row in enumerate(dataset.create_tuple_iterator(output_numpy=True)):
        assert_identical(unflatten(list(row), structure), batches[k])
    for k, row in enumerate(dataset.create_dict_iterator()):  # MindSpore Tensors and a dict of columns
        rebuilt = unflatten(row, structure)
        assert type(rebuilt["img"]).__name__ == "Tensor"  # array leaves stay as the iterator gave them
        assert_identical(_tensors_to_numpy(rebuilt), batches[k])


def _tensors_to_numpy(obj):
    if isinstance(obj, dict):
        return {k: _tensors_to_numpy(v) for k, v in obj.items()}
    if type(obj) in (list, tuple):
        return type(obj)(_tensors_to_numpy(v) for v in obj)
    return obj.asnumpy() if hasattr(obj, "asnumpy") else obj


@pytest.mark.slow
def test_round_trips_exhaustive():
    big = settings(max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck))
    # (.hypothesis.inner_test: the undecorated test, which hypothesis sets on the wrapper at run time)
    identity = test_flatten_then_unflatten_is_identity.hypothesis.inner_test  # type: ignore[attr-defined]
    big(given(batches)(identity))()
    collated = test_collated_batches_round_trip.hypothesis.inner_test  # type: ignore[attr-defined]
    big(given(st.lists(sample_strategy(), min_size=1, max_size=4))(collated))()


SAMPLES_SRC = """
samples = [{"img": np.full((2, 2), i, np.uint8), "y": i, "s": 0.5 * i, "p": f"p{i}", "t": (np.float32(i), True)}
           for i in range(3)]
"""


def described(columns):
    return [[n, a.dtype.str, a.tolist()] for n, a in columns]


def test_works_without_torch_and_gives_torchs_batch():
    from tests._helpers.subproc import run_json

    child = (
        textwrap.dedent("""
        import json, sys
        import numpy as np
        from adapters.torch_data._collate import default_collate, default_convert
        from adapters.engine._columns import flatten, unflatten
    """)
        + SAMPLES_SRC
        + textwrap.dedent("""
        columns, structure = flatten(default_collate(samples))
        back = unflatten([a for _, a in columns], structure)
        print(json.dumps({
            "columns": [[n, a.dtype.str, a.tolist()] for n, a in columns],
            "one": [[n, a.dtype.str, a.tolist()] for n, a in flatten(default_convert(samples[0]))[0]],
            "paths": back["p"],
            "torch_loaded": [m for m in sys.modules if m == "torch" or m.startswith("torch.")],
        }))
    """)
    )
    out = run_json(child, block_torch=True)
    assert out["torch_loaded"] == []
    torch = pytest.importorskip("torch")
    scope: dict[str, Any] = {"np": np}
    exec(SAMPLES_SRC, scope)
    samples = scope["samples"]
    # the columns of torch's own batch (flatten converts its tensors to numpy)
    assert out["columns"] == described(flatten(torch.utils.data.default_collate(samples))[0])
    assert out["one"] == described(flatten(torch.utils.data.default_convert(samples[0]))[0])
    assert out["paths"] == torch.utils.data.default_collate(samples)["p"]
