"""The pipeline's message transport: every kind of leaf arrives equal, writable and private."""

from __future__ import annotations

import socket
from multiprocessing.connection import Connection

import numpy as np
import pytest
import torch

from adapters.engine import _transport
from adapters.engine._transport import recv, send


@pytest.fixture
def pipe():
    a, b = socket.socketpair()
    ends = Connection(a.detach()), Connection(b.detach())
    yield ends
    for c in ends:
        c.close()


def _roundtrip(pipe, obj):
    send(pipe[0], obj)
    return recv(pipe[1])


@pytest.mark.parametrize("nbytes", [0, 1000, 3 << 20], ids=["empty", "inline", "memfd"])
def test_arrays_arrive_equal_writable_and_private(pipe, nbytes):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, nbytes, dtype=np.uint8)
    batch = {"img": img, "f": rng.random((3, 5)).astype(np.float32), "meta": ["a", 1, None, 2.5], "t": (np.int64(7),)}
    got = _roundtrip(pipe, batch)
    assert got["meta"] == ["a", 1, None, 2.5] and got["t"] == (np.int64(7),)
    for key in ("img", "f"):
        assert got[key].dtype == batch[key].dtype and np.array_equal(got[key], batch[key])
        assert got[key].flags.writeable
    if nbytes:
        got["img"][0] ^= 0xFF  # the receiver's copy is its own
        assert got["img"][0] != img[0]


def test_a_tensor_in_torch_shared_memory_crosses_by_descriptor_not_copied(pipe, monkeypatch):
    # What torch's default_collate makes inside a worker: the batch already lives in a shared file.
    t = torch.arange(1 << 20, dtype=torch.float32).reshape(256, 4096)
    t.share_memory_()
    copied = []
    real_write = _transport._write_all

    def counted_write(fd, v):
        copied.append(v.nbytes)
        real_write(fd, v)

    monkeypatch.setattr(_transport, "_write_all", counted_write)
    got = _roundtrip(pipe, (t.numpy(), np.arange(3)))
    assert copied == []  # no byte of the 4 MiB went through the memfd copy
    assert got[0].dtype == np.float32 and got[0].shape == (256, 4096)
    assert np.array_equal(got[0], t.numpy()) and np.array_equal(got[1], np.arange(3))
    got[0][0, 0] = -1.0  # copy-on-write: writable here, unchanged for the sender
    assert t[0, 0].item() == 0.0


def test_a_small_view_of_a_big_shared_storage_is_copied_not_mapped_whole(pipe, monkeypatch):
    t = torch.zeros(1 << 20, dtype=torch.float32)
    t.share_memory_()
    view = t[1000:1010].numpy()
    assert _transport._torch_shared_file(view) is None
    got = _roundtrip(pipe, view)
    assert np.array_equal(got, view)


def test_a_shared_tensor_with_an_offset_arrives_at_its_offset(pipe):
    t = torch.arange(1 << 20, dtype=torch.int32)
    t.share_memory_()
    part = t[1 << 18 :].numpy()  # 3/4 of the storage, starting 1 MiB in
    assert _transport._torch_shared_file(part) is not None
    got = _roundtrip(pipe, part)
    assert np.array_equal(got, part) and got[0] == 1 << 18


def _pool(conn):
    return conn.__dict__["_torch2ms_transport"].pool


def _ack(pipe):
    send(pipe[1], ("ack",))  # the receiver's next message carries the ids of the files it let go of
    assert recv(pipe[0]) == ("ack",)


def test_files_are_reused_once_the_receiver_let_go_and_never_before(pipe):
    big = [np.full((1 << 18,), k, np.float32) for k in range(40)]  # 1 MiB each
    held = []
    for k in range(6):  # every batch kept alive: each needs a file of its own
        held.append(_roundtrip(pipe, {"x": big[k], "k": k}))
        _ack(pipe)
    assert len(_pool(pipe[0]).slots) == 6
    for k in range(6, 30):  # dropped as soon as received: the same file again and again
        got = _roundtrip(pipe, {"x": big[k], "k": k})
        assert got["k"] == k and np.array_equal(got["x"], big[k])
        del got
        _ack(pipe)
    assert len(_pool(pipe[0]).slots) == 7
    for k, batch in enumerate(held):  # the held ones were never written over
        assert batch["k"] == k and np.array_equal(batch["x"], big[k])


def test_a_view_of_a_view_keeps_its_file_from_being_reused(pipe):
    a = np.arange(1 << 18, dtype=np.float32)
    got = _roundtrip(pipe, a)
    view = memoryview(got.base)[10:20]  # made from the buffer, with no reference to `got` itself
    before = bytes(view)
    assert before == a[10:20].tobytes() or before == a.view(np.uint8)[10:20].tobytes()
    del got
    _ack(pipe)
    got2 = _roundtrip(pipe, -a)
    assert bytes(view) == before  # its file was not the one written for got2
    assert np.array_equal(got2, -a)
    del got2, view


def test_a_larger_message_grows_an_idle_file_or_takes_a_new_one(pipe):
    for n in (1 << 18, 1 << 20, 1 << 19, 3 << 20):
        x = np.arange(n, dtype=np.float32)
        got = _roundtrip(pipe, x)
        assert np.array_equal(got, x)
        del got
        _ack(pipe)


def test_a_parent_that_lent_its_files_to_a_forked_child_starts_new_ones_after_reset(pipe):
    # The loader process at num_workers=0: each epoch's runner (a fork) adopts its files and writes into
    # them; when the runner is dropped (epoch left early) the loader must not trust its own view of them.
    import gc
    import os

    first = [_roundtrip(pipe, np.full(1 << 18, k, np.float32)) for k in range(2)]  # parent's files, held
    _ack(pipe)
    pid = os.fork()
    if pid == 0:
        try:
            _transport.adopt(pipe[0])
            for k in (10, 11):
                send(pipe[0], np.full(1 << 18, k, np.float32))
        finally:
            os._exit(0)
    from_child = [recv(pipe[1]) for _ in range(2)]
    os.waitpid(pid, 0)
    _transport.reset(pipe[0])
    mine = [_roundtrip(pipe, np.full(1 << 18, k, np.float32)) for k in (20, 21)]  # held
    del from_child
    gc.collect()  # the child's files come free: their ids go back with the next message
    _ack(pipe)
    later = _roundtrip(pipe, np.full(1 << 18, 30, np.float32))
    assert [a[0] for a in first] == [0, 1] and [a[0] for a in mine] == [20, 21] and later[0] == 30
    assert all(np.all(a == a[0]) for a in first + mine + [later])


def test_after_a_burst_only_a_few_idle_files_are_kept(pipe):
    held = [_roundtrip(pipe, np.full(1 << 18, k, np.float32)) for k in range(_transport._KEEP_IDLE + 4)]
    _ack(pipe)
    assert len(_pool(pipe[0]).slots) == _transport._KEEP_IDLE + 4
    del held
    import gc

    gc.collect()
    _ack(pipe)  # every file let go of: the pool closes what it does not keep
    assert len(_pool(pipe[0]).slots) == _transport._KEEP_IDLE
    got = _roundtrip(pipe, np.full(1 << 18, 99, np.float32))  # a kept one, reused
    assert np.all(got == 99)
    assert len(_pool(pipe[0]).slots) == _transport._KEEP_IDLE


def test_a_process_forked_while_a_batch_is_held_keeps_that_batch_as_it_was(pipe):
    # The child's inherited mapping is not tracked: once the parent lets go, the file must not be written
    # again (torch's forked workers keep their copy of everything as it was at the fork).
    import gc
    import os

    got = _roundtrip(pipe, np.full(1 << 18, 7, np.float32))
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(w)
        os.read(r, 1)  # the parent has let go and sent more in the meantime
        os._exit(0 if np.all(got == 7) else 1)
    os.close(r)
    del got
    gc.collect()
    _ack(pipe)  # the file comes back retired: the sender closes it
    for k in range(3):
        assert np.all(_roundtrip(pipe, np.full(1 << 18, 100 + k, np.float32)) == 100 + k)
        _ack(pipe)
    os.write(w, b"x")
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the forked child's batch was written over"
