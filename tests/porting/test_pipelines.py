"""compare_pipelines: a real torch DataLoader against a real MindSpore GeneratorDataset over the same data."""

import itertools

import mindspore.dataset as msds
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from porting import BatchMismatch, PipelineReport, assert_pipelines_equivalent, compare_pipelines

N, BATCH = 10, 4


class Images:
    """Random-access source usable by both frameworks; ``bad`` perturbs one pixel of one sample."""

    def __init__(self, n=N, bad=None, as_dict=False):
        rng = np.random.default_rng(0)
        self.imgs = rng.random((n, 3, 4, 5), dtype=np.float32)
        self.labels = rng.integers(0, 80, n)
        self.bad, self.as_dict = bad, as_dict

    def __getitem__(self, i):
        img = self.imgs[i].copy()
        if i == self.bad:
            img[2, 1, 3] += 0.5
        label = np.int64(self.labels[i])
        return {"img": img, "label": label} if self.as_dict else (img, label)

    def __len__(self):
        return len(self.imgs)


def torch_loader(**kw):
    return DataLoader(Images(**kw), batch_size=BATCH, shuffle=False)  # type: ignore[arg-type]  # a map-style source


def ms_batches(drop_remainder=False, **kw):
    ds = msds.GeneratorDataset(Images(**kw), column_names=["img", "label"], shuffle=False)
    return ds.batch(BATCH, drop_remainder=drop_remainder)


def test_equal_pipelines_tuple_iterator():
    report = compare_pipelines(ms_batches().create_tuple_iterator(num_epochs=1), torch_loader(),
                               column_names=["img", "label"], progress=False)  # fmt: skip
    assert isinstance(report, PipelineReport)
    assert report.ok, str(report)
    assert (report.batches, report.tensors, report.elements) == (3, 6, N * 3 * 4 * 5 + N)
    assert report.bytes == N * 3 * 4 * 5 * 4 + N * 8
    assert report.worst_abs_location is None
    assert str(report).startswith("pipelines bit-identical: 3 batches compared, 0 with mismatches")
    assert report.verdict == "bit-identical" and report.exact


def test_injected_difference_is_located():
    report = compare_pipelines(ms_batches(bad=6).create_tuple_iterator(num_epochs=1), torch_loader(),
                               column_names=["img", "label"], progress=False)  # fmt: skip
    assert not report.ok
    [m] = report.mismatches
    assert isinstance(m, BatchMismatch)
    assert (m.batch, m.column, m.mismatch.path, m.mismatch.abs_index) == (1, "img", (), (2, 2, 1, 3))
    assert m.location == "batch 1 / column 'img' / [2, 2, 1, 3]"
    assert report.worst_abs_location == "batch 1 / column 'img' / [2, 2, 1, 3]"
    assert report.worst_abs_diff == pytest.approx(0.5, abs=1e-6)
    assert str(m) == (  # exact by default: torch's wording for rtol=atol=0
        "Tensor-likes are not equal!\n\n"
        "Mismatched elements: 1 / 240 (0.4%)\n"
        f"Greatest absolute difference: {m.mismatch.abs_diff} at index (2, 2, 1, 3)\n"
        f"Greatest relative difference: {m.mismatch.rel_diff} at index (2, 2, 1, 3)\n\n"
        "The failure occurred for batch 1 / column 'img' / [2, 2, 1, 3]"
    )
    with pytest.raises(AssertionError) as info:
        report.assert_ok()
    assert str(info.value) == report.failure_text()
    assert "1 with mismatches (1 mismatches)" in str(info.value)
    assert "[1/1] Tensor-likes are not equal!" in str(info.value)


def test_positions_name_columns_without_column_names():
    report = compare_pipelines(ms_batches(bad=1).create_tuple_iterator(num_epochs=1), torch_loader(), progress=False)
    assert report.mismatches[0].location == "batch 0 / column 0 / [1, 2, 1, 3]"


def test_dict_iterator_against_dict_loader():
    ms_iter = ms_batches(bad=9).create_dict_iterator(num_epochs=1)
    report = compare_pipelines(ms_iter, torch_loader(as_dict=True), progress=False)
    assert [m.location for m in report.mismatches] == ["batch 2 / column 'img' / [1, 2, 1, 3]"]


def test_missing_batch_is_reported_with_side():
    report = compare_pipelines(ms_batches(drop_remainder=True).create_tuple_iterator(num_epochs=1), torch_loader(),
                               progress=False)  # fmt: skip
    assert not report.ok and not report.mismatches
    assert report.batches == 2
    assert report.count_mismatch == "pipeline a ran out after 2 batches while pipeline b still yielded batch 2"
    with pytest.raises(AssertionError, match="batch count mismatch: pipeline a ran out after 2 batches"):
        assert_pipelines_equivalent(ms_batches(drop_remainder=True), torch_loader(), progress=False)
    report = compare_pipelines(torch_loader(), ms_batches(drop_remainder=True), progress=False)
    assert report.count_mismatch == "pipeline b ran out after 2 batches while pipeline a still yielded batch 2"


def test_dataset_object_iterated_directly_and_assert_returns_report():
    report = assert_pipelines_equivalent(ms_batches(), torch_loader(), progress=False)
    assert report.batches == 3


def test_structure_differences_inside_batches():
    a = [{"img": np.zeros(2), "extra": 1}, [np.zeros(2)]]
    b = [{"img": np.zeros(2)}, [np.zeros(2), np.zeros(1)]]
    report = compare_pipelines(a, b, progress=False)
    assert [(m.batch, m.column, m.mismatch.kind) for m in report.mismatches] == [(0, None, "keys"), (1, None, "length")]
    assert [m.location for m in report.mismatches] == ["batch 0", "batch 1"]


def test_nested_columns_keep_their_path():
    a = [[np.zeros(2), {"shape": (640, 480)}]]
    b = [[np.zeros(2), {"shape": (640, 512)}]]
    [m] = compare_pipelines(a, b, column_names=["img", "meta"], progress=False).mismatches
    assert m.location == "batch 0 / column 'meta' / ['shape'][1]"


def test_streams_are_not_materialised():
    produced = {"a": 0, "b": 0}

    def stream(side):
        for i in itertools.count():  # endless: materialising would never return
            produced[side] += 1
            yield [np.full(3, i, np.float32)]

    report = compare_pipelines(stream("a"), stream("b"), max_batches=5, progress=False)
    assert report.ok and report.batches == 5 and produced == {"a": 5, "b": 5}


def test_max_mismatches_stops_and_says_so():
    a = ([np.full(2, i)] for i in range(100))
    b = ([np.full(2, -1)] for _ in range(100))
    report = compare_pipelines(a, b, max_mismatches=3, progress=False)
    assert report.batches == 3 and len(report.mismatches) == 3
    assert report.stopped_early == "max_mismatches=3 reached after batch 2; later batches not compared"


def test_tolerance_options_are_passed_through():
    a, b = [[np.array([1.0], np.float32)]], [[np.array([1.01], np.float32)]]
    assert not compare_pipelines(a, b, progress=False).ok
    assert compare_pipelines(a, b, rtol=0.02, atol=0.0, progress=False).ok
    with pytest.raises(ValueError, match="Both 'rtol' and 'atol'"):
        compare_pipelines(a, b, rtol=0.02, progress=False)


def test_bad_arguments_raise_clearly():
    with pytest.raises(ValueError, match=r"column_names has 1 names \['img'\] but batch 0 of pipeline b has 2 columns"):
        compare_pipelines([[1, 2]], [[1, 2]], column_names=["img"], progress=False)
    with pytest.raises(ValueError, match="max_batches must be an int >= 0 or None, got -1"):
        compare_pipelines([], [], max_batches=-1, progress=False)
    with pytest.raises(TypeError, match=r"batch 1: unsupported type builtins.set at item \[0\]"):
        compare_pipelines([[1], [{1}]], [[1], [{1}]], progress=False)


def test_progress_bar_is_shown(capsys):
    compare_pipelines(torch_loader(), torch_loader(), total=3, progress=True)
    err = capsys.readouterr().err
    assert "compare_pipelines" in err and "3/3" in err


# ----------------------------------------------------------------------------- verdict words mean what they say


def test_one_ulp_float32_is_not_bit_identical():
    x = np.array([1.0, 2.0], np.float32)
    y = x.copy()
    y[1] = np.nextafter(y[1], np.float32(3))  # one ulp
    report = compare_pipelines([[x]], [[y]], progress=False)
    assert not report.ok and report.verdict == "DIFFER"
    assert "Tensor-likes are not equal!" in str(report) and "Mismatched elements: 1 / 2" in str(report)
    loose = compare_pipelines([[x]], [[y]], tolerance="default", progress=False)
    assert loose.ok and loose.verdict.startswith("equivalent within torch's per-dtype default tolerances")
    assert "bit-identical" not in str(loose)
    given = compare_pipelines([[x]], [[y]], rtol=1e-6, atol=0, progress=False)
    assert given.verdict == "equivalent within rtol=1e-06, atol=0" and "bit-identical" not in str(given)
    with pytest.raises(ValueError, match="tolerance must be 'exact' or 'default', got 'loose'"):
        compare_pipelines([[x]], [[y]], tolerance="loose", progress=False)


def test_nan_in_the_same_place_is_equal_only_with_equal_nan():
    a, b = [[np.array([np.nan, 1.0])]], [[np.array([np.nan, 1.0])]]
    report = compare_pipelines(a, b, progress=False)
    assert report.verdict == "DIFFER"
    assert "NaN equals NaN only with equal_nan=True" in str(report)
    assert compare_pipelines(a, b, equal_nan=True, progress=False).verdict == "bit-identical"
    moved = compare_pipelines(a, [[np.array([1.0, np.nan])]], equal_nan=True, progress=False)
    assert moved.verdict == "DIFFER"


def test_an_empty_comparison_is_an_error_unless_allowed():
    with pytest.raises(ValueError, match="both pipelines yielded no batch, so nothing was compared"):
        compare_pipelines([], [], progress=False)
    report = compare_pipelines([], [], allow_empty=True, progress=False)
    assert report.verdict == "nothing compared" and "bit-identical" not in str(report)
    one_empty = compare_pipelines([], [[np.zeros(1)]], progress=False)
    assert one_empty.verdict == "DIFFER" and one_empty.count_mismatch.startswith("pipeline a ran out after 0")


def test_long_failure_text_is_capped():
    a = [[np.full(2, i)] for i in range(30)]
    b = [[np.full(2, -1)] for _ in range(30)]
    report = compare_pipelines(a, b, progress=False)
    text = report.failure_text()
    assert len(report.mismatches) == 30
    assert "[10/30]" in text and "[11/30]" not in text
    assert text.endswith("... and 20 more mismatch(es) not shown (report.mismatches has them all)")
    assert "[30/30]" in report.failure_text(max_shown=None)


def test_num_epochs_walks_a_loader_once_per_epoch():
    report = compare_pipelines(ms_batches(), torch_loader(), num_epochs=3, progress=False)
    assert report.batches == 9 and report.verdict == "bit-identical"
    assert report.seconds_a > 0 and report.seconds_b > 0
    with pytest.raises(ValueError, match="pipeline a is an iterator .* num_epochs=2 needs a re-iterable"):
        compare_pipelines(iter([[1]]), [[1]], num_epochs=2, progress=False)
    with pytest.raises(ValueError, match="num_epochs must be an int >= 1 or None, got 0"):
        compare_pipelines([[1]], [[1]], num_epochs=0, progress=False)


def test_a_torch_loader_and_its_port_compared_over_epochs_directly():
    """compare_pipelines(port, loader, num_epochs=) must not start a torch epoch of its own (iter() draws seeds)."""
    import adapters

    class Noisy(torch.utils.data.Dataset):
        def __len__(self):
            return 10

        def __getitem__(self, i):
            return torch.rand(2), i

    torch.manual_seed(0)
    loader = DataLoader(Noisy(), batch_size=4, shuffle=True, num_workers=2)  # seeds from torch's global stream
    ds = adapters.to_mindspore(loader)
    report = assert_pipelines_equivalent(ds, loader, num_epochs=2, progress=False)
    assert report.verdict == "bit-identical" and report.batches == 6
