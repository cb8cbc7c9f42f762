"""The README's main job runs end to end and finds the pipelines bit-identical."""

from porting.cli import main


def test_demo_runs_and_matches(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--images", "8", "--epochs", "2"]) == 0
    out = capsys.readouterr().out
    assert "MindSpore vs PyTorch over 2 epochs:\npipelines equivalent: 4 batches compared" in out
    assert "RESULT: bit-identical" in out
