"""Messages between the pipeline's processes: pickle protocol 5, array buffers sent out of band.

Small messages travel inline on the pipe. A large batch's array buffers are written once into an
anonymous shared-memory file (``memfd``) whose descriptor crosses the pipe; the receiver maps it
copy-on-write, so its arrays are writable views of that memory (one copy in all, as torch's
shared-memory tensors). torch tensors are turned into numpy arrays in the process that made them,
so the receiver never needs torch to read a batch.
"""

from __future__ import annotations

import collections.abc
import mmap
import os
import pickle
import struct
import sys
from multiprocessing.reduction import recv_handle, send_handle
from typing import Any

import numpy as np

__all__ = ["send", "recv", "numpy_tree"]

_COUNT = struct.Struct("<I")
_SIZE = struct.Struct("<Q")
_SHARED_BIT = 1 << 31


_SHARED_FROM = 1 << 20  # bytes of array data from which a message goes through shared memory
_ALIGN = 64


def _aligned(n: int) -> int:
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


def _write_all(fd: int, view: memoryview) -> None:
    view = view.cast("B")
    while view.nbytes:
        written = os.write(fd, view)
        view = view[written:]


def send(conn, obj: Any) -> None:
    """Send ``obj`` on ``conn`` (a socket-based ``multiprocessing`` Connection), buffers out of band."""
    buffers: list[pickle.PickleBuffer] = []
    head = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
    views = [b.raw() for b in buffers]
    sizes = b"".join(_SIZE.pack(v.nbytes) for v in views)
    total = sum(_aligned(v.nbytes) for v in views)
    shared = total >= _SHARED_FROM and hasattr(os, "memfd_create")
    conn.send_bytes(_COUNT.pack(len(views) | (_SHARED_BIT if shared else 0)) + sizes + head)
    if shared:
        fd = os.memfd_create("torch2ms-batch", os.MFD_CLOEXEC)
        try:
            for v in views:  # the kernel copies into the file's pages: no page faults here
                _write_all(fd, v)
                pad = _aligned(v.nbytes) - v.nbytes
                if pad:
                    os.write(fd, bytes(pad))
            send_handle(conn, fd, 0)
        finally:
            os.close(fd)
        return
    for view in views:
        conn.send_bytes(view)


def recv(conn) -> Any:
    """Receive one object sent by :func:`send` (arrays land in fresh writable buffers)."""
    head = conn.recv_bytes()
    (count,) = _COUNT.unpack_from(head)
    shared = bool(count & _SHARED_BIT)
    count &= ~_SHARED_BIT
    offset = _COUNT.size
    sizes = []
    for _ in range(count):
        (size,) = _SIZE.unpack_from(head, offset)
        offset += _SIZE.size
        sizes.append(size)
    if shared:
        fd = recv_handle(conn)
        try:
            total = sum(_aligned(n) for n in sizes)
            # Copy-on-write: the arrays are writable and private to this process.
            mm = mmap.mmap(fd, total, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        finally:
            os.close(fd)
        whole = memoryview(mm)
        buffers, start = [], 0
        for n in sizes:
            buffers.append(whole[start : start + n])
            start += _aligned(n)
        return pickle.loads(memoryview(head)[offset:], buffers=buffers)
    buffers = []
    for size in sizes:
        buf = bytearray(size)
        if size:
            conn.recv_bytes_into(buf)
        else:
            conn.recv_bytes()
        buffers.append(buf)
    return pickle.loads(memoryview(head)[offset:], buffers=buffers)


def _is_tensor(x: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def numpy_tree(obj: Any) -> Any:
    """Replace torch tensors by numpy arrays anywhere in a batch; everything else is kept as it is."""
    if _is_tensor(obj):
        from adapters.torch_data._collate import to_numpy

        obj = to_numpy(obj)
    if isinstance(obj, np.ndarray):
        # Pickle sends only contiguous arrays out of band; anything else would be copied in band.
        return obj if (obj.flags.c_contiguous or obj.flags.f_contiguous) else np.ascontiguousarray(obj)
    if isinstance(obj, (str, bytes)) or obj is None:
        return obj
    if isinstance(obj, collections.abc.Mapping):
        items = {k: numpy_tree(v) for k, v in obj.items()}
        if type(obj) is dict:
            return items
        try:
            return type(obj)(items)
        except Exception:
            return items
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(numpy_tree(v) for v in obj))
    if type(obj) in (list, tuple):
        return type(obj)(numpy_tree(v) for v in obj)
    return obj
