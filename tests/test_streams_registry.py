"""One list of global random streams: seeding, capturing and worker seeding all read it."""

import random

import numpy as np
import torch

import adapters
import porting
from adapters.torch_data._rng_streams import seed_streams_like_torch_worker
from adapters.torch_data._worker_seeding import worker_seeds
from torch2ms_base import RandomStream, StreamState, register_stream, streams


def test_every_stream_appears_once_and_python_numpy_are_seeded_last():
    names = [s.name for s in streams()]
    assert len(names) == len(set(names))
    assert names[-2:] == ["python.random", "numpy.random"]  # MindSpore's seeding reseeds these two
    assert "adapters.default_generator" in names


def test_seed_everything_reports_every_stream_seeded_or_skipped():
    report = porting.seed_everything(3)
    assert set(report.seeded) | set(report.skipped) >= {s.name for s in streams()}
    assert adapters.default_generator.initial_seed() == 3


def test_stream_state_captures_every_capturable_stream_including_the_emulated_generator():
    state = StreamState.capture()
    assert {"python.random", "numpy.random", "torch", "adapters.default_generator"} <= set(state.states)
    a = (random.random(), np.random.rand(), torch.rand(1).item(), adapters.default_generator.random_())
    state.restore()
    b = (random.random(), np.random.rand(), torch.rand(1).item(), adapters.default_generator.random_())
    assert a == b


def test_worker_seeding_seeds_every_live_stream_torch_reseeds_in_a_worker():
    seed = seed_streams_like_torch_worker(1234, 1)
    expected = worker_seeds(1234, 1)
    assert seed == expected.torch == torch.initial_seed() == adapters.default_generator.initial_seed()
    np_state = np.random.get_state()
    np.random.seed(expected.numpy)
    assert np.array_equal(np.random.get_state()[1], np_state[1])  # type: ignore[index]  # the legacy tuple (numpy's stub also allows a dict)
    py = random.getstate()
    random.seed(expected.python)
    assert random.getstate() == py


def test_a_stream_registered_after_seeding_is_seeded_at_once_and_then_listed():
    porting.seed_everything(5)
    got: list[int] = []
    register_stream(RandomStream("tests.late_stream", got.append))
    try:
        assert got == [5]
        assert "tests.late_stream" in porting.seed_everything(6).seeded and got == [5, 6]
    finally:
        import torch2ms_base._streams as registry

        registry._REGISTERED[:] = [s for s in registry._REGISTERED if s.name != "tests.late_stream"]
