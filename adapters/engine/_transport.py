"""Messages between the pipeline's processes: pickle protocol 5, array buffers sent out of band.

A batch of numpy arrays crosses a pipe with one copy into a writable buffer on the receiving side
(no pickling of array bytes into one big string); torch tensors are turned into numpy arrays in
the process that made them, so the receiver never needs torch to read a batch.
"""

from __future__ import annotations

import collections.abc
import pickle
import struct
import sys
from typing import Any

__all__ = ["send", "recv", "numpy_tree"]

_COUNT = struct.Struct("<I")
_SIZE = struct.Struct("<Q")


def send(conn, obj: Any) -> None:
    """Send ``obj`` on ``conn`` (a ``multiprocessing`` Connection), buffers out of band."""
    buffers: list[pickle.PickleBuffer] = []
    head = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
    views = [b.raw() for b in buffers]
    sizes = b"".join(_SIZE.pack(v.nbytes) for v in views)
    conn.send_bytes(_COUNT.pack(len(views)) + sizes + head)
    for view in views:
        conn.send_bytes(view)


def recv(conn) -> Any:
    """Receive one object sent by :func:`send` (arrays land in fresh writable buffers)."""
    head = conn.recv_bytes()
    (count,) = _COUNT.unpack_from(head)
    offset = _COUNT.size
    buffers = []
    for _ in range(count):
        (size,) = _SIZE.unpack_from(head, offset)
        offset += _SIZE.size
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

        return to_numpy(obj)
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
