"""Exact resume: a run stopped anywhere continues, from ``state_dict()``, the stream an uninterrupted torch run gives.

Every case compares, element for element, torch's uninterrupted DataLoader against the port's run stopped at a
position (``state_dict()`` there, the state passed through JSON) followed by a new dataset resumed from that state
(``to_mindspore(loader, state=...)``), in the loop shapes users write. The resumed dataset is built after the global
streams were seeded differently: everything the stream depends on must come from the state. One case resumes in a
new process, as a real restart does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler, Sampler

import adapters
from porting import assert_equivalent
from tests.adapters._torch_side import RandomAugDataset, ShardedIterable, seed_all, to_numpy_tree
from yolov5_pt import InfiniteDataLoader

EPOCHS = 3
N, BATCH = 14, 4  # 4 batches an epoch, the last one short
L = 4


def _kwargs(num_workers, persistent, **extra):
    return dict(
        batch_size=BATCH,
        shuffle=True,
        num_workers=num_workers,
        persistent_workers=persistent,
        generator=torch.Generator().manual_seed(7),
        **extra,
    )


def _loader(num_workers, persistent):
    return DataLoader(RandomAugDataset(N), **_kwargs(num_workers, persistent))


def _torch_stream(loader, epochs=EPOCHS, set_epoch=False):
    out = []
    for e in range(epochs):
        if set_epoch:
            loader.sampler.set_epoch(e)
        out.append([to_numpy_tree(b) for b in loader])
    return out


def _walk(ds, loop: str, epochs: int, stop=None):
    """``epochs`` epochs of ``ds`` in the loop shape ``loop``; with ``stop=(e, b)``: stop after batch ``b`` of epoch
    ``e`` has been taken (``b == L``: after the epoch's end), returning the batches so far and ``state_dict()``."""
    out: list[list] = []
    it = ds.create_tuple_iterator(num_epochs=epochs, output_numpy=True) if loop == "one_iterator" else None
    for e in range(epochs):
        rows: list = []
        out.append(rows)
        if stop == (e, 0):
            return out, ds.state_dict()
        if loop == "per_epoch":  # MindSpore's tutorial loop: a new iterator every epoch, default num_epochs
            epoch_rows = ds.create_tuple_iterator(output_numpy=True)
        elif loop == "iter_batches":
            epoch_rows = ds.iter_batches(1, output_numpy=True)
        else:
            epoch_rows = it
        for row in epoch_rows:
            rows.append(row if loop == "iter_batches" else ds.structure.rebuild(row))
            if stop == (e, len(rows)) and len(rows) < L:
                return out, ds.state_dict()
        if stop == (e, L):
            return out, ds.state_dict()
    return out, None


def _resumed(make, loop, stop, epochs=EPOCHS):
    """Run 1 stopped at ``stop``, run 2 resumed from its state in a new dataset: both runs' batches, joined."""
    seed_all(0)
    ds = make(None)
    first, state = _walk(ds, loop, epochs, stop)
    ds.close()
    assert state is not None
    state = json.loads(json.dumps(state))  # plain data: it goes through JSON unchanged
    e, b = stop
    assert (state["epoch"], state["batch"]) == ((e + 1, 0) if b == L else (e, b))
    seed_all(12345)  # the resumed process's own streams do not matter: the state carries them
    ds2 = make(state)
    rest_epochs = epochs - state["epoch"]
    second, _ = _walk(ds2, loop, rest_epochs)
    ds2.close()
    assert [len(x) for x in second] == [L - state["batch"]] + [L] * (rest_epochs - 1)
    return [x for epoch in first for x in epoch] + [x for epoch in second for x in epoch]


def _flat(epochs):
    return [x for epoch in epochs for x in epoch]


def _assert_resumes_like_torch(make_loader, loop, stop, *, set_epoch=False):
    """torch's uninterrupted stream of ``make_loader()`` == the port of another build stopped at ``stop`` and
    resumed from its state (``to_mindspore(make_loader(), state=...)``), in the loop shape ``loop``."""
    seed_all(0)
    expected = _flat(_torch_stream(make_loader(), set_epoch=set_epoch))

    def make(state):
        return adapters.to_mindspore(make_loader(), state=state)

    assert_equivalent(_resumed(make, loop, stop), expected, rtol=0, atol=0)


WORKERS = [(0, False), (1, False), (2, False), (2, True), (3, False), (4, True)]
WORKER_IDS = [f"workers{n}{'-persistent' if p else ''}" for n, p in WORKERS]
STOPS = [(1, 2), (0, L), (1, 3), (0, 0)]
STOP_IDS = ["mid-epoch", "epoch-boundary", "before-last-batch", "before-anything"]


@pytest.mark.parametrize("stop", STOPS, ids=STOP_IDS)
@pytest.mark.parametrize("num_workers, persistent", WORKERS, ids=WORKER_IDS)
def test_resume_continues_torchs_stream_one_iterator(num_workers, persistent, stop):
    _assert_resumes_like_torch(lambda: _loader(num_workers, persistent), "one_iterator", stop)


@pytest.mark.parametrize("loop", ["per_epoch", "iter_batches"])
@pytest.mark.parametrize("stop", [(1, 2), (0, L)], ids=["mid-epoch", "epoch-boundary"])
@pytest.mark.parametrize("num_workers, persistent", [(0, False), (2, False), (3, True)], ids=["w0", "w2", "w3-pers"])
def test_resume_in_every_loop_shape(num_workers, persistent, stop, loop):
    _assert_resumes_like_torch(lambda: _loader(num_workers, persistent), loop, stop)


@pytest.mark.parametrize("stop", [(1, 1), (1, 5), (1, "end")], ids=["early", "later", "epoch-boundary"])
@pytest.mark.parametrize("num_workers, persistent", [(0, False), (2, False), (3, True)], ids=["w0", "w2", "w3-pers"])
def test_resume_an_iterable_dataset(num_workers, persistent, stop):
    def loader():
        return DataLoader(ShardedIterable(15), batch_size=2, num_workers=num_workers, persistent_workers=persistent)

    seed_all(0)
    torch_epochs = _torch_stream(loader())
    taken = len(torch_epochs[1]) if stop[1] == "end" else stop[1]
    assert 0 < taken <= len(torch_epochs[1])
    seed_all(0)
    state = None
    ds = adapters.to_mindspore(loader())
    first = []
    for e in range(stop[0] + 1):
        it = ds.create_tuple_iterator(output_numpy=True, num_epochs=1)
        rows = []
        for row in it:
            rows.append(ds.structure.rebuild(row))
            if e == stop[0] and len(rows) == taken:
                break
        first.append(rows)
        if e == stop[0]:
            if stop[1] == "end":
                for _ in it:  # the epoch's end is seen
                    pass
            state = json.loads(json.dumps(ds.state_dict()))
            assert (state["epoch"], state["batch"]) == ((2, 0) if stop[1] == "end" else (1, taken))
    ds.close()
    assert state is not None
    seed_all(999)
    ds2 = adapters.to_mindspore(loader(), state=state)
    second = [
        [ds2.structure.rebuild(r) for r in ds2.create_tuple_iterator(output_numpy=True, num_epochs=1)]
        for _ in range(state["epoch"], EPOCHS)
    ]
    ds2.close()
    assert_equivalent(_flat(first) + _flat(second), _flat(torch_epochs), rtol=0, atol=0)


@pytest.mark.parametrize("stop", [(1, 2), (1, L)], ids=["mid-epoch", "epoch-boundary"])
@pytest.mark.parametrize("num_workers", [0, 2])
def test_resume_a_distributed_sampler_whose_epoch_the_loop_sets(num_workers, stop):
    def loader():
        data = RandomAugDataset(2 * N + 2)
        sampler: DistributedSampler = DistributedSampler(data, num_replicas=2, rank=1, shuffle=True, seed=3)
        return DataLoader(data, batch_size=BATCH, sampler=sampler, num_workers=num_workers)

    _assert_resumes_like_torch(loader, "per_epoch", stop, set_epoch=True)


@pytest.mark.parametrize("stop", [(1, 2), (0, L), (2, 3)], ids=["mid-epoch", "epoch-boundary", "late"])
@pytest.mark.parametrize("num_workers", [0, 2, 3])
def test_resume_yolov5s_infinite_dataloader(num_workers, stop):
    # infinite=True: one torch iterator over all epochs, workers persist, dispatch cycles across epochs
    def kwargs():
        return dict(batch_size=4, shuffle=True, num_workers=num_workers, generator=torch.Generator().manual_seed(5))

    seed_all(0)
    expected = _flat(_torch_stream(InfiniteDataLoader(RandomAugDataset(N), **kwargs())))

    def make(state):
        return adapters.to_mindspore(RandomAugDataset(N), infinite=True, state=state, **kwargs())

    assert_equivalent(_resumed(make, "one_iterator", stop), expected, rtol=0, atol=0)


@pytest.mark.parametrize("stop", [(1, 0), (1, 3)], ids=["epoch-boundary", "mid-epoch"])
def test_resume_with_model_train_initial_epoch(stop):
    import mindspore as ms
    from mindspore.train import Callback, Model

    seed_all(0)
    expected = _flat(_torch_stream(_loader(2, False)))
    seed_all(0)
    ds = adapters.to_mindspore(_loader(2, False))
    seen: list = []
    saved: list = []

    class Record(Callback):
        def on_train_step_end(self, run_context):
            row = run_context.original_args().train_dataset_element
            seen.append(ds.structure.rebuild([c.asnumpy() for c in row]))
            if not saved and stop[1] and len(seen) == stop[0] * L + stop[1]:
                saved.append(ds.state_dict())  # a checkpoint callback saving mid-epoch; then the job is stopped
                run_context.request_stop()

    class Net(ms.nn.Cell):
        def __init__(self):
            super().__init__()
            self.w = ms.Parameter(ms.Tensor(0.0, ms.float32))

        def construct(self, *columns):
            return self.w * 0

    net = Net()
    model = Model(net, optimizer=ms.nn.SGD(net.trainable_params(), 0.0))
    if stop[1]:
        model.train(EPOCHS, ds, callbacks=[Record()], dataset_sink_mode=False)
        state = json.loads(json.dumps(saved[0]))
    else:
        model.train(1, ds, callbacks=[Record()], dataset_sink_mode=False)  # epoch 0, then the run stops
        state = json.loads(json.dumps(ds.state_dict()))
    ds.close()
    assert (state["epoch"], state["batch"]) == stop
    seed_all(7)
    ds = adapters.to_mindspore(_loader(2, False), state=state)
    model.train(EPOCHS, ds, callbacks=[Record()], dataset_sink_mode=False, initial_epoch=1)
    ds.close()
    assert_equivalent(seen, expected, rtol=0, atol=0)


_NEW_PROCESS = textwrap.dedent(
    """
    import json, sys
    import numpy as np, torch
    from torch.utils.data import DataLoader
    import adapters
    from tests.adapters._torch_side import RandomAugDataset
    state = json.load(open(sys.argv[1]))
    loader = DataLoader(RandomAugDataset(14), batch_size=4, shuffle=True, num_workers=int(sys.argv[3]),
                        persistent_workers=sys.argv[4] == "1", generator=torch.Generator().manual_seed(7))
    ds = adapters.to_mindspore(loader, state=state)
    it = ds.create_tuple_iterator(output_numpy=True, num_epochs=3 - state["epoch"])
    out = {}
    for e in range(3 - state["epoch"]):
        for k, row in enumerate(it):
            for name, col in zip(ds.structure.names, row):
                out[f"{e}/{k}/{name}"] = col
    np.savez(sys.argv[2], **out)
    """
)


@pytest.mark.parametrize("num_workers, persistent", [(0, False), (2, True)], ids=["w0", "w2-persistent"])
def test_resume_in_a_new_process(tmp_path, num_workers, persistent):
    seed_all(0)
    expected = _torch_stream(_loader(num_workers, persistent))
    seed_all(0)
    ds = adapters.to_mindspore(_loader(num_workers, persistent))
    first, state = _walk(ds, "one_iterator", EPOCHS, (1, 2))
    ds.close()
    (tmp_path / "state.json").write_text(json.dumps(state))
    script = tmp_path / "resume.py"
    script.write_text(_NEW_PROCESS)
    out = tmp_path / "rest.npz"
    args = [sys.executable, str(script), str(tmp_path / "state.json"), str(out), str(num_workers), str(int(persistent))]
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    with np.load(out, allow_pickle=False) as saved:
        got = dict(saved)
    names = list(ds.structure.names)
    second = []
    for e, k in sorted({tuple(map(int, key.split("/")[:2])) for key in got}):
        second.append(ds.structure.rebuild(tuple(got[f"{e}/{k}/{n}"] for n in names)))
    assert len(second) == 2 + L
    assert_equivalent(_flat(first) + second, _flat(expected), rtol=0, atol=0)


class CountingSampler(Sampler):
    """A sampler with state of its own: each pass starts one further along (not a generator: not saved by itself)."""

    def __init__(self, n):
        self.n, self.passes = n, 0

    def __len__(self):
        return self.n

    def __iter__(self):
        start, self.passes = self.passes, self.passes + 1
        return iter([(start + i) % self.n for i in range(self.n)])


class StatefulCountingSampler(CountingSampler):
    """The same, with torchdata's protocol: its state is saved and restored."""

    def state_dict(self):
        return {"passes": self.passes}

    def load_state_dict(self, state):
        self.passes = state["passes"]


@pytest.mark.parametrize("num_workers", [0, 2])
def test_a_samplers_own_state_dict_is_saved_and_restored(num_workers):
    def loader():
        return DataLoader(
            RandomAugDataset(8), batch_size=2, sampler=StatefulCountingSampler(8), num_workers=num_workers
        )

    _assert_resumes_like_torch(loader, "per_epoch", (1, 2))


def test_a_sampler_whose_state_is_not_saved_is_refused_by_name_not_followed():
    def loader():
        return DataLoader(RandomAugDataset(8), batch_size=2, sampler=CountingSampler(8), num_workers=0)

    ds = adapters.to_mindspore(loader())
    _, state = _walk(ds, "per_epoch", EPOCHS, (1, 2))
    ds.close()
    ds2 = adapters.to_mindspore(loader(), state=state)  # its `passes` is 0 here, 1 when the state was taken
    with pytest.raises(ValueError, match=r"resuming epoch 1: sampler.passes is 0 here but was 1"):
        next(ds2.create_tuple_iterator(output_numpy=True))
    ds2.close()


def test_a_state_from_another_configuration_is_refused_naming_the_difference():
    ds = adapters.to_mindspore(_loader(2, False))
    state = ds.state_dict()
    ds.close()
    other = DataLoader(RandomAugDataset(N), **dict(_kwargs(2, False), batch_size=5))
    with pytest.raises(ValueError, match=r"batch_size: 4 in the state, 5 here.*batches_per_epoch: 4 in the state, 3"):
        adapters.to_mindspore(other, state=state)
    with pytest.raises(ValueError, match=r"num_workers: 2 in the state, 0 here"):
        adapters.to_mindspore(_loader(0, False), state=state)


def test_bad_states_and_late_loads_are_refused():
    ds = adapters.to_mindspore(_loader(0, False))
    with pytest.raises(TypeError, match=r"a loader state is a dict .* got list"):
        ds.load_state_dict([1, 2])
    with pytest.raises(ValueError, match=r"not a loader state"):
        ds.load_state_dict({"epoch": 1})
    state = ds.state_dict()
    bad = json.loads(json.dumps(state))
    bad["batch"] = -1
    with pytest.raises(ValueError, match=r"'batch' must be an int >= 0, got -1"):
        ds.load_state_dict(bad)
    next(ds.create_tuple_iterator(output_numpy=True))
    with pytest.raises(RuntimeError, match=r"load_state_dict\(\) must come before the dataset's first epoch"):
        ds.load_state_dict(state)
    ds.close()


def test_pipelines_that_cannot_save_their_position_say_so():
    class Forever(Sampler):
        def __iter__(self):
            i = 0
            while True:
                yield i % 4
                i += 1

    ds = adapters.to_mindspore(RandomAugDataset(4), batch_size=2, sampler=Forever(), steps_per_epoch=2)
    with pytest.raises(ValueError, match=r"state_dict\(\) with steps_per_epoch .* is not supported"):
        ds.state_dict()
    ds.close()
    data = RandomAugDataset(4)
    samples = adapters.sample_dataset(data, batch_size=2)
    with pytest.raises(ValueError, match=r"sample dataset .* is not supported"):
        samples.state_dict()
    batches = adapters.batch(samples, data, batch_size=2)
    with pytest.raises(ValueError, match=r"sample dataset .* is not supported"):
        batches.state_dict()
    with pytest.raises(ValueError, match=r"sample dataset .* is not supported"):
        batches.load_state_dict({})
    samples.close()
    with pytest.raises(ValueError, match=r"state= with batch_map=True is not supported"):
        adapters.to_mindspore(RandomAugDataset(4), batch_size=2, batch_map=True, state={})


def test_set_init_step_on_a_dataset_resumed_inside_an_epoch_is_refused():
    ds = adapters.to_mindspore(_loader(0, False))
    _, state = _walk(ds, "per_epoch", EPOCHS, (1, 2))
    ds.close()
    ds2 = adapters.to_mindspore(_loader(0, False), state=state)
    ds2.set_init_step(1)
    with pytest.raises(ValueError, match=r"set_init_step\(1\) on a dataset resumed from a state saved inside an epoch"):
        ds2.create_tuple_iterator(output_numpy=True, num_epochs=1)
    ds2.close()


def test_model_train_initial_epoch_on_a_dataset_not_resumed_there_is_refused():
    import mindspore as ms
    from mindspore.train import Model

    class Net(ms.nn.Cell):
        def __init__(self):
            super().__init__()
            self.w = ms.Parameter(ms.Tensor(0.0, ms.float32))

        def construct(self, *columns):
            return self.w * 0

    net = Net()
    model = Model(net, optimizer=ms.nn.SGD(net.trainable_params(), 0.0))
    ds = adapters.to_mindspore(_loader(0, False))
    with pytest.raises(
        ValueError, match=r"initial_epoch=2\) on a dataset whose next epoch is torch's epoch 0.*silently"
    ):
        model.train(3, ds, dataset_sink_mode=False, initial_epoch=2)
    for e in range(2):  # one epoch per call, numbered by initial_epoch: the dataset is at that epoch each time
        model.train(e + 1, ds, dataset_sink_mode=False, initial_epoch=e)
    ds.close()


@pytest.mark.parametrize("num_workers", [0, 2])
def test_rows_set_init_step_skips_count_as_taken_for_a_partial_epoch_and_a_state(num_workers):
    # set_init_step(2), one row taken, the loop leaves: torch's loop took 3 batches of that epoch
    seed_all(0)
    torch_loader = _loader(num_workers, False)
    expected = []
    for e in range(EPOCHS):
        for k, b in enumerate(torch_loader):
            expected.append(to_numpy_tree(b))
            if e == 0 and k == 2:
                break  # (the loop took 3 batches)
    seed_all(0)
    ds = adapters.to_mindspore(_loader(num_workers, False))
    ds.set_init_step(2)
    it = ds.create_tuple_iterator(output_numpy=True, num_epochs=1)
    got = [ds.structure.rebuild(next(it))]
    state = ds.state_dict()
    assert (state["epoch"], state["batch"]) == (0, 3)
    del it
    ds.set_init_step(0)
    got += [ds.structure.rebuild(r) for _ in range(2) for r in ds.create_tuple_iterator(output_numpy=True)]
    ds.close()
    assert_equivalent(got, expected[2:], rtol=0, atol=0)


@pytest.mark.parametrize("num_workers", [2, 4])
def test_resume_infinite_with_epochs_shorter_than_the_prefetch(num_workers):
    # 2 batches an epoch, up to 8 tasks in flight: the sampler's passes are begun epochs ahead of the loop
    def kwargs():
        return dict(batch_size=2, shuffle=True, num_workers=num_workers, generator=torch.Generator().manual_seed(1))

    seed_all(0)
    expected = _flat(_torch_stream(InfiniteDataLoader(RandomAugDataset(4), **kwargs()), epochs=6))

    def make(state):
        return adapters.to_mindspore(RandomAugDataset(4), infinite=True, state=state, **kwargs())

    seed_all(0)
    ds = make(None)
    it = ds.create_tuple_iterator(num_epochs=6, output_numpy=True)
    first = [ds.structure.rebuild(row) for _ in range(3) for row in it]
    first.append(ds.structure.rebuild(next(it)))  # epoch 3, after its first batch
    state = json.loads(json.dumps(ds.state_dict()))
    ds.close()
    assert (state["epoch"], state["batch"]) == (3, 1)
    ds2 = make(state)
    it = ds2.create_tuple_iterator(num_epochs=3, output_numpy=True)
    rest = [ds2.structure.rebuild(r) for _ in range(3) for r in it]
    ds2.close()
    assert_equivalent(first + rest, expected, rtol=0, atol=0)


class OwnGeneratorDataset(RandomAugDataset):
    """Draws from a numpy Generator it holds (not a global stream): saved as the dataset's, per process."""

    def __init__(self, n):
        super().__init__(n)
        self.rng = np.random.default_rng(42)

    def __getitem__(self, i):
        out = super().__getitem__(i)
        out["own"] = self.rng.random(2)
        return out


@pytest.mark.parametrize("num_workers, persistent", [(0, False), (2, True)], ids=["w0", "w2-persistent"])
def test_resume_a_dataset_drawing_from_its_own_generator(num_workers, persistent):
    def loader():
        return DataLoader(OwnGeneratorDataset(N), **_kwargs(num_workers, persistent))

    _assert_resumes_like_torch(loader, "one_iterator", (1, 2))


@pytest.mark.parametrize("num_workers, persistent", [(0, False), (2, True), (3, False)])
def test_a_state_after_an_epoch_left_early_begins_the_next_epoch_as_torch(num_workers, persistent):
    seed_all(0)
    torch_loader = _loader(num_workers, persistent)
    expected = []
    for e in range(EPOCHS):
        for k, b in enumerate(torch_loader):
            expected.append(to_numpy_tree(b))
            if e == 0 and k == 1:
                break  # the loop leaves epoch 0 after 2 batches
    seed_all(0)
    ds = adapters.to_mindspore(_loader(num_workers, persistent))
    it = ds.create_tuple_iterator(output_numpy=True)
    got = [ds.structure.rebuild(next(it)) for _ in range(2)]
    del it  # the iterator is dropped: the epoch was left
    state = json.loads(json.dumps(ds.state_dict()))
    ds.close()
    assert (state["epoch"], state["batch"]) == (1, 0)
    ds2 = adapters.to_mindspore(_loader(num_workers, persistent), state=state)
    got += [ds2.structure.rebuild(r) for _ in range(2) for r in ds2.create_tuple_iterator(output_numpy=True)]
    ds2.close()
    assert_equivalent(got, expected, rtol=0, atol=0)


SWEEP_WORKERS = [(0, False), (1, False), (1, True), (2, False), (2, True), (3, False), (3, True), (4, False), (4, True)]


@pytest.mark.slow
@pytest.mark.parametrize("stop", [(e, b) for e in range(EPOCHS - 1) for b in range(L + 1)])
@pytest.mark.parametrize("num_workers, persistent", SWEEP_WORKERS)
def test_sweep_every_position(num_workers, persistent, stop):
    _assert_resumes_like_torch(lambda: _loader(num_workers, persistent), "one_iterator", stop)


def test_the_tutorial_loop_saves_and_resumes_through_its_map_chain():
    # train_ds = to_mindspore(loader).map(...): the loop holds the chain, and saves / loads through it
    def chain(state=None):
        base = adapters.to_mindspore(_loader(2, False))
        train_ds = base.map(operations=lambda x: x * 1, input_columns=["np"])
        if state is not None:
            train_ds.load_state_dict(state)
        return base, train_ds

    seed_all(0)
    expected = _flat(_torch_stream(_loader(2, False)))
    seed_all(0)
    base, train_ds = chain()
    got = [base.structure.rebuild(r) for r in train_ds.create_tuple_iterator(output_numpy=True)]
    it = train_ds.create_tuple_iterator(output_numpy=True)
    got += [base.structure.rebuild(next(it)) for _ in range(3)]
    state = json.loads(json.dumps(train_ds.state_dict()))
    base.close()
    assert (state["epoch"], state["batch"]) == (1, 3)
    base, train_ds = chain(state)
    got += [base.structure.rebuild(r) for _ in range(2) for r in train_ds.create_tuple_iterator(output_numpy=True)]
    base.close()
    assert_equivalent(got, expected, rtol=0, atol=0)


def test_a_state_inside_an_epoch_read_through_a_batch_op_is_refused():
    ds = adapters.to_mindspore(RandomAugDataset(16), batch_size=4)  # 4 whole batches: MindSpore's batch op pairs them
    batched = ds.project(["index"]).batch(2)
    it = batched.create_tuple_iterator(output_numpy=True)
    next(it)
    with pytest.raises(ValueError, match=r"inside epoch 0, read through a pipeline that does not keep one row per"):
        batched.state_dict()
    ds.close()


@pytest.mark.parametrize("loop", ["one_iterator", "per_epoch"])
@pytest.mark.parametrize("num_workers, persistent", [(0, False), (2, False), (2, True)], ids=["w0", "w2", "w2-pers"])
def test_taking_states_leaves_the_running_stream_unchanged(num_workers, persistent, loop):
    # a checkpoint callback saving after every step and every epoch: the run itself goes on as torch's
    seed_all(0)
    expected = _torch_stream(_loader(num_workers, persistent))
    seed_all(0)
    ds = adapters.to_mindspore(_loader(num_workers, persistent))
    got: list = []
    states = [ds.state_dict()]
    it = ds.create_tuple_iterator(num_epochs=EPOCHS, output_numpy=True) if loop == "one_iterator" else None
    for _ in range(EPOCHS):
        rows = []
        for row in it if it is not None else ds.create_tuple_iterator(output_numpy=True):
            rows.append(ds.structure.rebuild(row))
            states.append(ds.state_dict())
        got.append(rows)
        states.append(ds.state_dict())
    ds.close()
    assert_equivalent(got, expected, rtol=0, atol=0)
    positions = [(s["epoch"], s["batch"]) for s in states]
    assert positions[:6] == [(0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (1, 0)]  # the last batch taken: the next epoch


@pytest.mark.parametrize("infinite", [False, True], ids=["epochs", "infinite"])
@pytest.mark.parametrize("num_workers, persistent", [(0, False), (2, False), (3, True)], ids=["w0", "w2", "w3-pers"])
def test_a_resumed_run_stopped_and_resumed_again(num_workers, persistent, infinite):
    def kwargs():
        return _kwargs(num_workers, persistent and not infinite)

    seed_all(0)
    make_torch = InfiniteDataLoader if infinite else DataLoader
    expected = _flat(_torch_stream(make_torch(RandomAugDataset(N), **kwargs())))

    def make(state):
        return adapters.to_mindspore(RandomAugDataset(N), infinite=infinite, state=state, **kwargs())

    got: list = []
    state = None
    seed_all(0)  # (the first run's global streams; a resumed run's come from the state)
    for stop_after in (2, 5, None):  # batches this run takes before it is stopped (None: to the end)
        ds = make(state)
        start = 0 if state is None else state["epoch"]
        it = ds.create_tuple_iterator(num_epochs=EPOCHS - start, output_numpy=True)
        taken = 0
        for _ in range(EPOCHS - start):
            for row in it:
                got.append(ds.structure.rebuild(row))
                taken += 1
                if taken == stop_after:
                    break
            if taken == stop_after:
                break
        state = json.loads(json.dumps(ds.state_dict()))
        ds.close()
    assert_equivalent(got, expected, rtol=0, atol=0)


class GaussDataset(RandomAugDataset):
    """numpy's legacy gaussian keeps a second value cached (has_gauss): an odd count of draws leaves one."""

    def __getitem__(self, i):
        out = super().__getitem__(i)
        out["gauss"] = np.random.randn(3 + i % 2)[:3]  # 3 or 4 draws: batches end with and without a cached value
        return out


@pytest.mark.parametrize("num_workers, persistent", [(0, False), (2, False), (2, True)], ids=["w0", "w2", "w2-pers"])
def test_resume_with_numpys_cached_gaussian(num_workers, persistent):
    def loader():
        return DataLoader(GaussDataset(N), **_kwargs(num_workers, persistent))

    _assert_resumes_like_torch(loader, "one_iterator", (1, 1))


def test_the_fast_stream_readers_read_what_get_state_says_and_change_nothing():
    import random as pyrandom

    from adapters.engine import _state

    np.random.seed(3)
    for draws in range(6):  # the cached gaussian set and unset, the position moving
        np.random.randn(draws)
        fast: Any = _state._as_stream_state("numpy.random", _state._numpy_state())
        slow: Any = np.random.get_state()
        assert fast[0] == slow[0] and np.array_equal(fast[1], slow[1]) and fast[2:] == slow[2:]
        assert fast[1].dtype == slow[1].dtype
    before: Any = np.random.get_state()
    _state._LEGACY.clear()
    assert _state._legacy_reader(np.random.mtrand._rand) is not None  # (found on this numpy)
    after: Any = np.random.get_state()
    assert np.array_equal(before[1], after[1]) and before[2:] == after[2:]
    version, internal, gauss = _state._python_state()
    assert (version, tuple(internal), gauss) == pyrandom.getstate()


@pytest.mark.parametrize("stop", [(1, 1), (0, 3)], ids=["mid-epoch", "epoch-boundary"])
@pytest.mark.parametrize("num_workers, persistent", [(0, False), (2, False), (2, True)], ids=["w0", "w2", "w2-pers"])
def test_resume_a_hugging_face_seeded_collator(num_workers, persistent, stop):
    # DataCollatorForLanguageModeling(seed=...) makes its generator on first use, keyed on os.getpid(), and would
    # make it again in a new process: where the state would need it, resuming is refused (loudly, never a silent
    # restart of the masks); where torch itself starts it afresh (an epoch's new workers), the resume is exact.
    from tests.adapters.test_third_party import _mlm_collator, _Sentences

    def loader():
        return DataLoader(_Sentences(), batch_size=4, collate_fn=_mlm_collator(), num_workers=num_workers,
                          persistent_workers=persistent)  # fmt: skip

    torch_loader = loader()
    expected = [to_numpy_tree(dict(b)) for _ in range(EPOCHS) for b in torch_loader]
    ds = adapters.to_mindspore(loader())
    first, state = _walk(ds, "one_iterator", EPOCHS, stop)
    ds.close()
    assert state is not None
    state = json.loads(json.dumps(state))
    refusal = r"random generator at collate_fn\.generator .* made after this object was built"
    if num_workers == 0:  # the collator runs in the loader process: refused when the state is loaded
        with pytest.raises(ValueError, match=refusal):
            adapters.to_mindspore(loader(), state=state)
        return
    ds2 = adapters.to_mindspore(loader(), state=state)
    if persistent or stop != (0, 3):  # (0, 3): epoch 0's last batch taken; mid-epoch, the workers' collators
        # would have to go on: refused at the first batch
        with pytest.raises(ValueError, match=refusal):
            _walk(ds2, "one_iterator", EPOCHS - state["epoch"])
        ds2.close()
        return
    second, _ = _walk(ds2, "one_iterator", EPOCHS - state["epoch"])
    ds2.close()
    assert_equivalent(_flat(first) + _flat(second), expected, rtol=0, atol=0)
