"""Messages between the pipeline's processes: pickle protocol 5, array buffers sent out of band.

Small messages travel inline on the pipe. A large batch's array buffers are copied once into a
shared-memory file (``memfd``) whose descriptor crosses the pipe; the receiver maps it
copy-on-write, so its arrays are writable views of that memory, private to it (one copy in all,
as torch's shared-memory tensors).

The files are reused: a fresh file costs the kernel a page allocation and zeroing per 4 KiB, about
four times the copy itself. Each sending process keeps its files (``_SendPool``) and writes a batch
into one the receiver has let go of. The receiver knows exactly when that is: every message gets
its own mapping, and a mapping object is freed only once no array, view or buffer made from it is
left (the mmap object's exports keep it alive); its finaliser queues the file's id, and the
receiver's next message on the same connection carries the ids back. A file is never written while
any mapping of it in the receiver is alive. Its descriptor crosses with every message and the
receiver closes it once mapped, so a file the sender closes (idle ones beyond ``_KEEP_IDLE``) is gone.
A process forked from the receiver inherits its mappings, which nothing tracks: so the files mapped
when a fork happens are retired instead (the sender closes them once the receiver lets go; the child
keeps what it inherited, as torch's forked workers keep their copy of everything).

An array that already lives in torch's shared memory — what torch's ``default_collate`` makes
inside a worker, e.g. called from a custom ``collate_fn`` — is not copied at all: its storage's
descriptor crosses the pipe (torch's own ``file_descriptor`` sharing), and the receiver maps that.
torch tensors are turned into numpy arrays in the process that made them, so the receiver never
needs torch to read a batch.
"""

from __future__ import annotations

import collections
import collections.abc
import io
import mmap
import os
import pickle
import struct
import sys
import threading
import types
import weakref
from multiprocessing.reduction import recv_handle, send_handle
from typing import Any

import numpy as np

__all__ = ["send", "recv", "recv_sized", "numpy_tree", "adopt", "reset", "register_roots", "found_by_name"]

# buffers (| _SHARED_BIT), torch shared-memory files, freed ids, slot id (0: a one-off file)
_HEAD = struct.Struct("<IIIQ")
_SIZE = struct.Struct("<Q")
_SHARED_BIT = 1 << 31  # the buffers are in a shared-memory file, whose descriptor follows
_RETIRED_BIT = 1 << 63  # on a freed id: the file must not be written again (see _retire_leases)

_SHARED_FROM = 1 << 20  # bytes of array data from which a message goes through shared memory
_ALIGN = 64
_SLOT_ROUND = 1 << 20  # slot capacities are rounded up to this
_MAX_SLOTS = 32  # per sending process and connection; beyond, one-off files (busy receivers)
_KEEP_IDLE = 8  # files kept for reuse when the receiver has let go of more (after a burst)


def _aligned(n: int) -> int:
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


def _write_all(fd: int, view: memoryview) -> None:
    view = view.cast("B")
    while view.nbytes:
        written = os.write(fd, view)
        view = view[written:]


def _write_views(fd: int, views: list) -> None:
    for v in views:  # the kernel copies into the file's pages: no page faults here
        _write_all(fd, v)
        pad = _aligned(v.nbytes) - v.nbytes
        if pad:
            os.write(fd, bytes(pad))


# The pages of a new file are made by write() (in bulk; a page fault per 4 KiB costs twice as much),
# then mapped with their page tables filled in, so that each later reuse is a plain copy.
_POPULATE = getattr(mmap, "MAP_POPULATE", 0)


class _Slot:
    __slots__ = ("id", "fd", "capacity", "mapping", "busy")

    def __init__(self, slot_id: int, capacity: int, views: list) -> None:
        self.id = slot_id
        self.fd = os.memfd_create("torch2ms-batch", os.MFD_CLOEXEC)
        self.mapping: mmap.mmap  # made by _fill
        self._fill(capacity, views)
        self.busy = False

    def _fill(self, capacity: int, views: list) -> None:
        os.lseek(self.fd, 0, os.SEEK_SET)
        _write_views(self.fd, views)
        os.ftruncate(self.fd, max(capacity, os.lseek(self.fd, 0, os.SEEK_CUR)))
        self.capacity = capacity
        self.mapping = mmap.mmap(self.fd, capacity, flags=mmap.MAP_SHARED | _POPULATE,
                                 prot=mmap.PROT_READ | mmap.PROT_WRITE)  # fmt: skip

    def grow(self, capacity: int, views: list) -> None:
        self.mapping.close()
        self._fill(capacity, views)

    def close(self) -> None:
        self.mapping.close()
        os.close(self.fd)

    def write(self, views: list) -> None:
        start = 0
        for v in views:
            v = v.cast("B")
            self.mapping[start : start + v.nbytes] = v  # the pages exist already: a plain copy
            start += _aligned(v.nbytes)


class _SendPool:
    """The shared-memory files one process writes its messages on one connection into."""

    def __init__(self) -> None:
        self.token = int.from_bytes(os.urandom(4), "little") >> 1  # 31 bits: ids stay clear of _RETIRED_BIT
        self.slots: dict[int, _Slot] = {}
        self._counter = 0

    def put(self, total: int, views: list) -> _Slot | None:
        """Write ``views`` (``total`` bytes, aligned) into a file the receiver holds no mapping of."""
        free = [s for s in self.slots.values() if not s.busy and s.capacity >= total]
        capacity = -(-total // _SLOT_ROUND) * _SLOT_ROUND
        if free:
            slot = min(free, key=lambda s: s.capacity)
            slot.write(views)
        elif len(self.slots) < _MAX_SLOTS:
            self._counter += 1
            slot = _Slot(self.token << 32 | self._counter, capacity, views)
            self.slots[slot.id] = slot
        else:
            idle = [s for s in self.slots.values() if not s.busy]
            if not idle:
                return None  # the receiver holds every file: a one-off one
            slot = max(idle, key=lambda s: s.capacity)
            slot.grow(capacity, views)  # (the receiver maps each message's own length of the same file)
        slot.busy = True
        return slot

    def release(self, ids) -> None:
        for slot_id in ids:
            retired = bool(slot_id & _RETIRED_BIT)
            slot = self.slots.get(slot_id & ~_RETIRED_BIT)
            if slot is None:
                continue  # (ids of an earlier pool on this connection are ignored)
            if retired:  # a process forked from the receiver may still map it: never written again
                del self.slots[slot.id]
                slot.close()
            else:
                slot.busy = False
        idle = sorted((s for s in self.slots.values() if not s.busy), key=lambda s: s.capacity)
        for slot in idle[_KEEP_IDLE:]:  # the largest go first
            del self.slots[slot.id]
            slot.close()

    def close(self) -> None:
        for slot in self.slots.values():
            slot.close()
        self.slots.clear()


class _Lease:
    """The receiver's hold on one file: reported back when its mapping is freed."""

    __slots__ = ("freed", "slot_id", "retired", "__weakref__")

    def __init__(self, freed: collections.deque, slot_id: int) -> None:
        self.freed = freed
        self.slot_id = slot_id
        self.retired = False

    def done(self) -> None:
        self.freed.append(self.slot_id | (_RETIRED_BIT if self.retired else 0))


_LEASES: weakref.WeakSet[_Lease] = weakref.WeakSet()  # leases whose mapping is alive in this process


def _retire_leases() -> None:
    # Before a fork: the child inherits every live mapping, and its copies of the arrays would see a
    # file written again after this process lets go of it. Those files are not reused.
    for lease in list(_LEASES):
        lease.retired = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_retire_leases)


class _State:
    __slots__ = ("pid", "pool", "freed")

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.pool: _SendPool | None = None  # the files this process sends in
        self.freed: collections.deque = collections.deque()  # the other side's files let go of (any thread)


def _state(conn) -> _State:
    st = conn.__dict__.get("_torch2ms_transport")
    if st is None or st.pid != os.getpid():
        # A process forked with this connection starts afresh: the files it inherited are its parent's
        # (see adopt() for the one hand-over there is).
        st = _State()
        conn.__dict__["_torch2ms_transport"] = st
    return st


def adopt(conn) -> None:
    """This process (forked) takes over ``conn`` from its parent, which will not send on it meanwhile."""
    st = conn.__dict__.get("_torch2ms_transport")
    if st is not None:
        st.pid = os.getpid()


def reset(conn) -> None:
    """Forget ``conn``'s files: a forked child used them in the meantime (its receiver may hold any)."""
    st = conn.__dict__.pop("_torch2ms_transport", None)
    if st is not None and st.pool is not None:
        st.pool.close()  # this process's copies only: the receiver's mappings and descriptors are its own


def _torch_shared_file(arr: np.ndarray):
    """``(fd, file size, byte offset)`` if ``arr`` is a C-contiguous view of a torch storage in shared
    memory shared by file descriptor (torch's default strategy); else None."""
    base: Any = arr.base  # (a torch tensor, when arr is a view of one)
    if not _is_tensor(base) or not arr.flags.c_contiguous or arr.nbytes == 0:
        return None
    torch = sys.modules["torch"]
    storage = base.untyped_storage()
    if storage.device.type != "cpu" or not storage.is_shared():
        return None
    if torch.multiprocessing.get_sharing_strategy() != "file_descriptor":
        return None
    try:
        fd, size = storage._share_fd_cpu_()  # the storage's own descriptor: shared already, nothing is copied
    except Exception:
        return None
    offset = arr.ctypes.data - storage.data_ptr()
    # A small view of a big storage (a dataset's shared tensor) is copied: the receiver would map the whole file.
    if offset < 0 or offset + arr.nbytes > size or 2 * arr.nbytes < size:
        return None
    return fd, size, offset


class _Pickler(pickle.Pickler):
    """Protocol 5 with buffers out of band; arrays in torch's shared memory become references to its files.

    Only where torch is loaded (only its tensors can be in such files), and through ``reducer_override``,
    which pickle calls for arrays but not for the builtin types that make up most of a message.
    """

    def __init__(self, file, buffers: list) -> None:
        super().__init__(file, protocol=5, buffer_callback=buffers.append)
        self.files: list[tuple[int, int]] = []  # (fd, size) per torch shared-memory file referenced

    def reducer_override(self, obj):
        if type(obj) is np.ndarray:
            found = _torch_shared_file(obj)
            if found is not None:
                fd, size, offset = found
                self.files.append((fd, size))
                return _from_shared_file, (len(self.files) - 1, offset, obj.dtype.str, obj.shape)
        elif isinstance(obj, type) and not found_by_name(obj):
            return _class_by_identity, (obj.__module__, obj.__qualname__, id(obj))
        return NotImplemented


def found_by_name(cls: type) -> bool:
    """Whether pickle can refer to ``cls`` by module and qualified name (not a class made inside a function)."""
    obj: Any = sys.modules.get(cls.__module__)
    for part in cls.__qualname__.split("."):
        obj = getattr(obj, part, None)
    return obj is cls


# Where classes that cannot be found by name are looked for (the pipeline's dataset, collate_fn, samplers):
# every process of a pipeline is a fork of the caller, so a class that existed when the pipeline was made is
# the same object, at the same address, in the caller. Registered by the engine.
_ROOTS: weakref.WeakValueDictionary[int, Any] = weakref.WeakValueDictionary()
_CLASSES: dict[tuple, type] = {}


def register_roots(*objects: Any) -> None:
    """Objects from which a class made inside a function (a batch's NamedTuple, say) is found again here."""
    for obj in objects:
        try:
            _ROOTS[id(obj)] = obj
        except TypeError:  # not weak-referenceable: kept for the process's life
            _STRONG_ROOTS.append(obj)


_STRONG_ROOTS: list = []
_PROXIES = (weakref.ProxyType, weakref.CallableProxyType)


def _class_by_identity(module: str, qualname: str, ident: int) -> type:
    """The class a sending process of this pipeline pickled by identity: the same object here (a fork)."""
    import gc

    key = (module, qualname, ident)
    cls = _CLASSES.get(key)
    if cls is not None:
        return cls
    seen: set[int] = set()
    stack = list(_ROOTS.values()) + _STRONG_ROOTS + [sys.modules.get("__main__")]
    while stack:  # the objects reachable from the pipeline's own (frozen objects included, unlike gc.get_objects)
        obj = stack.pop()
        if id(obj) in seen or type(obj) in _PROXIES:  # (a dead weak proxy raises on any use)
            continue
        seen.add(id(obj))
        if isinstance(obj, type) and id(obj) == ident and obj.__qualname__ == qualname and obj.__module__ == module:
            _CLASSES[key] = obj
            return obj
        if isinstance(obj, types.ModuleType) and obj.__name__ != "__main__":
            continue  # (a class findable from a module would have been pickled by name)
        stack.extend(gc.get_referents(obj))
    raise pickle.UnpicklingError(
        f"a batch holds an instance of {module}.{qualname}, a class made inside a function after the pipeline was "
        "built (in the pipeline's own process): it does not exist in this process. Define it before calling "
        "to_mindspore (at module level, or in the function that builds the loader)."
    )


_LOADING = threading.local()  # the torch shared-memory files of the message being unpickled


def _from_shared_file(k: int, offset: int, dtype: str, shape: tuple) -> np.ndarray:
    mapping = _LOADING.maps[k]
    count = int(np.prod(shape, dtype=np.int64))
    return np.frombuffer(mapping, np.dtype(dtype), count, offset).reshape(shape)


def _dumps(obj: Any, buffers: list) -> tuple[bytes | memoryview, list]:
    """``obj``'s pickle (its buffers appended to ``buffers``) and the torch shared-memory files it references."""
    if "torch" not in sys.modules:
        try:
            return pickle.dumps(obj, protocol=5, buffer_callback=buffers.append), []
        except (pickle.PicklingError, AttributeError):  # a class made inside a function: by identity
            del buffers[:]
    out = io.BytesIO()
    pickler = _Pickler(out, buffers)
    pickler.dump(obj)
    return out.getbuffer(), pickler.files


def _loads(body, buffers: list, maps: list) -> Any:
    if not maps:
        return pickle.loads(body, buffers=buffers)
    _LOADING.maps = maps
    try:
        return pickle.loads(body, buffers=buffers)
    finally:
        _LOADING.maps = None


def _map_private(fd: int, size: int) -> mmap.mmap:
    # Copy-on-write: the arrays are writable and private to this process.
    try:
        return mmap.mmap(fd, size, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    finally:
        os.close(fd)


def send(conn, obj: Any) -> int:
    """Send ``obj`` on ``conn`` (a socket-based ``multiprocessing`` Connection), buffers out of band.

    Returns the message's size: its pickle plus its array buffers, in bytes (what :func:`recv_sized`
    reports on the other side).
    """
    st = _state(conn)
    buffers: list[pickle.PickleBuffer] = []
    head, torch_files = _dumps(obj, buffers)
    views = [b.raw() for b in buffers]
    sizes = b"".join(_SIZE.pack(v.nbytes) for v in views)
    files = b"".join(_SIZE.pack(size) for _, size in torch_files)
    freed = []
    while st.freed:
        freed.append(st.freed.popleft())
    total = sum(_aligned(v.nbytes) for v in views)
    shared = total >= _SHARED_FROM and hasattr(os, "memfd_create")
    slot = None
    if shared:
        if st.pool is None:
            st.pool = _SendPool()
        slot = st.pool.put(total, views)  # before the header goes: the receiver may map it at once
    header = _HEAD.pack(len(views) | (_SHARED_BIT if shared else 0), len(torch_files), len(freed),
                        slot.id if slot is not None else 0)  # fmt: skip
    conn.send_bytes(header + sizes + files + b"".join(_SIZE.pack(i) for i in freed) + head)
    for fd, _ in torch_files:
        send_handle(conn, fd, 0)
    nbytes = len(head) + sum(v.nbytes for v in views)
    if slot is not None:
        send_handle(conn, slot.fd, 0)
    elif shared:  # every file of the pool is mapped by the receiver: a one-off file
        fd = os.memfd_create("torch2ms-batch", os.MFD_CLOEXEC)
        try:
            _write_views(fd, views)
            send_handle(conn, fd, 0)
        finally:
            os.close(fd)
    else:
        for view in views:
            conn.send_bytes(view)
    return nbytes


def _ids(head: bytes, offset: int, count: int) -> tuple[list[int], int]:
    out = []
    for _ in range(count):
        (value,) = _SIZE.unpack_from(head, offset)
        offset += _SIZE.size
        out.append(value)
    return out, offset


def recv(conn) -> Any:
    """Receive one object sent by :func:`send` (arrays land in fresh writable buffers)."""
    return recv_sized(conn)[0]


def recv_sized(conn) -> tuple[Any, int]:
    """:func:`recv`, and the message's size as :func:`send` returned it."""
    st = _state(conn)
    head = conn.recv_bytes()
    count, nfiles, nfreed, slot_id = _HEAD.unpack_from(head)
    shared = bool(count & _SHARED_BIT)
    count &= ~_SHARED_BIT
    sizes, offset = _ids(head, _HEAD.size, count)
    file_sizes, offset = _ids(head, offset, nfiles)
    freed, offset = _ids(head, offset, nfreed)
    if freed and st.pool is not None:
        st.pool.release(freed)  # our files the other side has let go of
    maps = [_map_private(recv_handle(conn), size) for size in file_sizes]
    buffers: list[memoryview | bytearray] = []
    if shared:
        mm = _map_private(recv_handle(conn), sum(_aligned(n) for n in sizes))
        if slot_id:
            # Called only once nothing made from this mapping is left: then the sender may reuse the file.
            lease = _Lease(st.freed, slot_id)
            _LEASES.add(lease)  # (the finaliser holds the lease: alive exactly as long as the mapping)
            weakref.finalize(mm, lease.done).atexit = False
        whole = memoryview(mm)
        start = 0
        for n in sizes:
            buffers.append(whole[start : start + n])
            start += _aligned(n)
    else:
        for size in sizes:
            buf = bytearray(size)
            if size:
                conn.recv_bytes_into(buf)
            else:
                conn.recv_bytes()
            buffers.append(buf)
    body = memoryview(head)[offset:]
    return _loads(body, buffers, maps), len(body) + sum(sizes)


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
            # obj's own class, as the collate made it (else a dict); mypy sees the abstract Mapping
            return type(obj)(items)  # type: ignore[call-arg]
        except Exception:
            return items
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(numpy_tree(v) for v in obj))
    if type(obj) in (list, tuple):
        return type(obj)(numpy_tree(v) for v in obj)
    return obj
