import dataclasses

import pytest

from porting import IncompatibleEnvironmentError, check_environment, environment_report


def test_installed_environment_is_compatible():
    report = check_environment()
    assert report.numpy.startswith("1.")
    assert report.mindspore == "2.10.0"


def test_numpy2_with_mindspore_210_fails_early_with_the_fix():
    bad = dataclasses.replace(environment_report(), numpy="2.1.0", mindspore="2.10.0")
    with pytest.raises(IncompatibleEnvironmentError) as info:
        check_environment(bad)
    msg = str(info.value)
    assert "mindspore 2.10.0" in msg and "numpy 2.1.0" in msg and "numpy<2" in msg


def test_torch_is_the_cpu_build():
    # The install must never pull a CUDA build of torch (several GB).
    import torch

    assert torch.version.cuda is None
    assert environment_report().torch_cuda == "cpu"
