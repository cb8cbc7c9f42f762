"""Batches of 1 MiB and more cross in shared-memory files that are reused: never while anything maps them.

Each test holds rows while iterating on (the files of held rows must not be written again), drops rows
(their files are reused) and leaves an epoch early at num_workers=0 (the loader process takes its
shared-memory files back from the epoch's runner) — always against torch's own DataLoader.
"""

from __future__ import annotations

import gc

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

import adapters
from tests.adapters._torch_side import to_numpy_tree


class BigAugmented(Dataset):
    """~300 KB per sample, numpy's global stream per sample: 4 samples make a 1.2 MB batch."""

    def __len__(self):
        return 24

    def __getitem__(self, i):
        img = np.random.rand(3, 160, 160).astype(np.float32) + i
        return img, i


def _loader(num_workers, persistent=False):
    return DataLoader(BigAugmented(), batch_size=4, shuffle=True, num_workers=num_workers,
                      persistent_workers=persistent, generator=torch.Generator().manual_seed(3))  # fmt: skip


def _torch_epochs(num_workers, persistent, epochs):
    torch.manual_seed(0)
    np.random.seed(0)
    loader = _loader(num_workers, persistent)
    return [[to_numpy_tree(b) for b in loader] for _ in range(epochs)]


def _port(num_workers, persistent):
    torch.manual_seed(0)
    np.random.seed(0)
    return adapters.to_mindspore(_loader(num_workers, persistent))


def _same(row, batch, where):
    img, label = row
    img, label = (
        np.asarray(img if isinstance(img, np.ndarray) else img.asnumpy()),
        np.asarray(label if isinstance(label, np.ndarray) else label.asnumpy()),
    )
    assert img.dtype == batch[0].dtype and np.array_equal(img, batch[0]), where
    assert np.array_equal(label, batch[1]), where


@pytest.mark.parametrize("num_workers,persistent", [(0, False), (2, False), (2, True)])
@pytest.mark.parametrize("output_numpy", [True, False], ids=["numpy", "Tensor"])
def test_rows_held_across_epochs_stay_intact(num_workers, persistent, output_numpy):
    expected = _torch_epochs(num_workers, persistent, 3)
    ds = _port(num_workers, persistent)
    held: list[tuple] = []
    it = ds.create_tuple_iterator(num_epochs=3, output_numpy=output_numpy)
    for e in range(3):
        for row in it:
            held.append((e, len([h for h in held if h[0] == e]), row))
    assert len(held) == 18
    for e, k, row in held:  # checked only at the end: after every later batch was written
        _same(row, expected[e][k], f"epoch {e} / batch {k}")
    ds.close()


@pytest.mark.parametrize("num_workers,persistent", [(0, False), (2, False), (2, True)])
def test_rows_dropped_as_taken_reuse_files_and_stay_exact(num_workers, persistent):
    expected = _torch_epochs(num_workers, persistent, 3)
    ds = _port(num_workers, persistent)
    it = ds.create_tuple_iterator(num_epochs=3, output_numpy=True)
    for e in range(3):
        k = 0
        for row in it:
            _same(row, expected[e][k], f"epoch {e} / batch {k}")
            k += 1
        assert k == 6
    ds.close()


def _torch_epochs_left_early(loader, plan: list[int | None]) -> list[list]:
    """torch's batches of each epoch, the epoch left after ``plan[e]`` batches (``None``: all)."""
    expected: list[list] = []
    for take in plan:
        expected.append([])
        for k, b in enumerate(loader):
            expected[-1].append(to_numpy_tree(b))
            if take is not None and k + 1 == take:
                break
    return expected


@pytest.mark.parametrize("num_workers,persistent", [(0, False), (1, True), (2, False), (3, True), (4, False)])
def test_an_epoch_left_early_then_continued_keeps_held_rows_and_torch_order(num_workers, persistent):
    # num_workers=0: each epoch's runner writes into the loader's files; after epoch 1 is left early
    # the loader replays it and takes over with new files, while every row taken so far is still held.
    plan = [None, 2, None, None]  # batches taken per epoch (None: all)
    torch.manual_seed(0)
    np.random.seed(0)
    expected = _torch_epochs_left_early(_loader(num_workers, persistent), plan)
    ds = _port(num_workers, persistent)
    held: list[list] = []
    for e, take in enumerate(plan):
        held.append([])
        for k, row in enumerate(ds.create_tuple_iterator(num_epochs=1, output_numpy=True)):
            if take is None:
                held[-1].append(row)
            else:  # the partial epoch's rows are checked and let go at once: their files come free
                _same(row, expected[e][k], f"epoch {e} / batch {k}")
            del row
            if take is not None and k + 1 == take:
                break
        gc.collect()
    for e, rows in enumerate(held):  # checked only at the end: after every later batch was written
        if plan[e] is None:
            assert len(rows) == len(expected[e])
        for k, row in enumerate(rows):
            _same(row, expected[e][k], f"epoch {e} / batch {k}")
    ds.close()


def _model_train_rows(ds, epochs):
    from mindspore import Parameter, Tensor, nn
    from mindspore.train import Callback, Model

    class Net(nn.Cell):
        def __init__(self):
            super().__init__()
            self.w = Parameter(Tensor(np.float32(1.0)))

        def construct(self, img, label):
            return (img.mean() * self.w) ** 2

    class Recorder(Callback):
        def __init__(self):
            self.seen = []

        def on_train_step_end(self, run_context):
            self.seen.append(tuple(run_context.original_args().train_dataset_element))

    net, recorder = Net(), Recorder()
    Model(net, optimizer=nn.SGD(net.trainable_params(), 0.0)).train(epochs, ds, callbacks=[recorder],
                                                                      dataset_sink_mode=False)  # fmt: skip
    return recorder.seen


@pytest.mark.parametrize("num_workers,persistent", [(0, False), (1, False), (2, True), (3, False), (4, True)])
@pytest.mark.parametrize("loop", ["one-iterator", "per-epoch", "Model.train", "map"])
def test_every_loop_shape_and_worker_count_with_held_rows(num_workers, persistent, loop):
    # 1.2 MB batches (the shared files, reused), every row held to the end, then compared with torch.
    expected = [b for epoch in _torch_epochs(num_workers, persistent, 3) for b in epoch]
    ds = _port(num_workers, persistent)
    if loop == "one-iterator":
        it = ds.create_tuple_iterator(num_epochs=3)
        held = [row for _ in range(3) for row in it]
    elif loop == "per-epoch":
        held = [row for _ in range(3) for row in ds.create_tuple_iterator(num_epochs=1)]
    elif loop == "Model.train":
        held = _model_train_rows(ds, 3)
    else:
        mapped = ds.map(lambda x: x, input_columns=[ds.structure.names[0]])
        it = mapped.create_tuple_iterator(num_epochs=3)
        held = [row for _ in range(3) for row in it]
    assert len(held) == len(expected) == 18
    for k, row in enumerate(held):
        _same(row, expected[k], f"row {k} ({loop})")
    ds.close()
