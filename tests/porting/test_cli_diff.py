"""``torch2ms diff MODULE:FACTORY``: table, first divergence, exit statuses, markdown report."""

import pytest

from porting.cli import main

pytest.importorskip("torch")
pytest.importorskip("mindspore")
M = "tests.porting._diff_factories"


def test_good_pair_exit_0(capsys):
    assert main(["diff", f"{M}:good", "--loss", "cross_entropy"]) == 0
    out = capsys.readouterr().out
    assert f"torch2ms diff {M}:good: OK" in out and "all 4 layer calls match" in out


def test_divergence_exit_1_and_markdown(capsys, tmp_path):
    md = tmp_path / "diff.md"
    assert main(["diff", f"{M}:ln_eps_left", "--markdown", str(md)]) == 1  # the float64 rule by default
    out = capsys.readouterr().out
    assert "first divergence: layer '1' (LayerNorm), forward output" in out
    assert "further from the float64 reference than torch float32 allows" in out and "ratio" in out
    assert "**first divergence: layer '1' (LayerNorm), forward output**" in md.read_text()


def test_elementwise_on_request(capsys):
    assert main(["diff", f"{M}:ln_eps_left", "--reference", "none"]) == 1
    assert "Mismatched elements" in capsys.readouterr().out
    assert main(["diff", f"{M}:good", "--reference", "float64", "--tolerance", "exact"]) == 2
    assert "--tolerance applies to elementwise comparisons" in capsys.readouterr().err


@pytest.mark.parametrize(
    "target, message",
    [
        (f"{M}:not_a_pair", "must return (torch_module, mindspore_cell, inputs[, target]); got list"),
        (f"{M}:nope", "has no attribute 'nope'"),
        ("no_colon", "expected MODULE:FACTORY"),
    ],
)
def test_bad_targets_exit_2(capsys, target, message):
    assert main(["diff", target]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_help_lists_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["diff", "--help"])
    out = capsys.readouterr().out
    for opt in ("--loss", "--tolerance", "--markdown", "--reference", "--map", "exit status"):
        assert opt in out
