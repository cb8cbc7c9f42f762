"""Checkpoint files: ``.pt/.pth`` (``weights_only=True``), ``.safetensors`` and ``.ckpt`` read and written, dtypes kept.

This is the layer below :mod:`porting.convert._checkpoint` (which decides names, layouts and what matches): it
knows file formats and the tensor types of torch, MindSpore and numpy, and nothing about cells or rule
tables. torch, MindSpore and safetensors are imported only by the functions that need them.

* :func:`read_tensors` / :func:`write_tensors` — a file to ``{name: tensor}`` and back;
* :func:`file_ext` and ``TORCH_EXT`` / ``ST_EXT`` / ``MS_EXT`` — which format a path names;
* :func:`dtype_name`, :func:`shape_of`, :func:`to_numpy`, :func:`torch_tensor`, :func:`ms_tensor` — one
  dtype vocabulary and the conversions between the three array types (bfloat16 through float32);
* :func:`cast_loss` — what a dtype cast would lose (named in conversion reports).

Reading never runs code and never trusts the file: ``.pt`` goes through ``torch.load(weights_only=True)``
(pickled objects other than tensors are refused, never unpickled), zip ``.pt`` records are checked against
their CRC32, ``.ckpt`` files written with a CRC are checked against it, an entry whose declared elements
overlap in memory (``expand``/``as_strided`` views that would be materialised) is refused, and every
failure of a truncated, damaged or foreign file is a one-line ``ValueError`` naming the file and what is
wrong with it. Writing goes to a temporary file in the destination's folder, renamed into place only
when complete, after refusing by name what the format cannot hold (complex entries in a ``.ckpt``, which
``mindspore.load_checkpoint`` 2.10 cannot read back; zero-element entries in a ``.ckpt``, which
``mindspore.save_checkpoint`` silently leaves out; complex128 in ``.safetensors``). float8 and
complex32 entries are refused when read: numpy has neither.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import zipfile
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = [
    "MS_EXT",
    "ST_EXT",
    "TORCH_EXT",
    "cast_loss",
    "dtype_name",
    "file_ext",
    "ms_tensor",
    "read_tensors",
    "shape_of",
    "to_numpy",
    "torch_tensor",
    "write_tensors",
]

TORCH_EXT = (".pt", ".pth")
MS_EXT = (".ckpt",)
ST_EXT = (".safetensors",)


def file_ext(path: str) -> str:
    """The lower-cased extension of ``path``, which picks its format.

    Example:
        >>> file_ext("run/Best.PT")
        '.pt'
    """
    return os.path.splitext(path)[1].lower()


# ------------------------------------------------------------------------------------------ array helpers


_DTYPE_NAMES: dict = {}


def dtype_name(value: Any) -> str:
    """'float32', 'bfloat16', ... for a torch / MindSpore tensor or numpy array (one name for all three).

    Example:
        >>> dtype_name(np.zeros(1, np.float16))
        'float16'
    """
    dtype = getattr(value, "dtype", None)
    try:
        return _DTYPE_NAMES[dtype]
    except (KeyError, TypeError):
        pass
    name = _dtype_name_uncached(value, dtype)
    try:
        _DTYPE_NAMES[dtype] = name
    except TypeError:  # an unhashable dtype object
        pass
    return name


def _dtype_name_uncached(value: Any, dtype: Any) -> str:
    text = str(dtype)
    if text.startswith("torch."):
        return text[len("torch.") :]
    if isinstance(value, np.ndarray) or isinstance(dtype, np.dtype):
        return np.dtype(dtype).name
    return {
        "Float32": "float32",
        "Float16": "float16",
        "Float64": "float64",
        "BFloat16": "bfloat16",
        "Int64": "int64",
        "Int32": "int32",
        "Int8": "int8",
        "UInt8": "uint8",
        "Bool": "bool",
        "Int16": "int16",
    }.get(text, text.lower())


def shape_of(value: Any) -> tuple[int, ...]:
    """The shape of a tensor or array as a tuple of python ints.

    Example:
        >>> shape_of(np.zeros((2, 3)))
        (2, 3)
    """
    return tuple(int(d) for d in value.shape)


def to_numpy(value: Any) -> np.ndarray:
    """A numpy view/copy of a torch tensor, MindSpore tensor or array; bfloat16 becomes float32.

    Example:
        >>> to_numpy([1, 2]).tolist()
        [1, 2]
    """
    if isinstance(value, np.ndarray):
        return value
    if type(value).__module__.startswith("torch"):
        value = value.detach().cpu()
        if str(value.dtype) == "torch.bfloat16":
            value = value.float()
        return value.numpy()
    if hasattr(value, "asnumpy"):
        if dtype_name(value) == "bfloat16":
            import mindspore

            value = value.astype(mindspore.float32)
        return value.asnumpy()
    return np.asarray(value)


def ms_tensor(array: np.ndarray, dtype: str, *, adopt: bool = False):
    """A MindSpore tensor of ``array`` as ``dtype`` (a :func:`dtype_name`); ``adopt``: share its memory if it can.

    Example:
        >>> str(ms_tensor(np.ones(2, np.float32), "bfloat16").dtype)
        'BFloat16'
    """
    import mindspore

    if (
        adopt
        and dtype != "bfloat16"
        and array.dtype == np.dtype(dtype)
        and array.ndim
        and array.flags.c_contiguous
        and array.flags.writeable
    ):
        return mindspore.Tensor.from_numpy(array)
    if array.dtype.kind == "c" and np.dtype("float32" if dtype == "bfloat16" else dtype).kind != "c":
        array = array.real  # the loss is named in the report (cast_loss); numpy would warn and do the same
    with np.errstate(over="ignore", invalid="ignore"):  # overflow to inf: named in the report too
        if dtype == "bfloat16":
            return mindspore.Tensor(np.asarray(array, dtype=np.float32, order="C")).astype(mindspore.bfloat16)
        return mindspore.Tensor(np.asarray(array, dtype=np.dtype(dtype), order="C"))


def cast_loss(array: np.ndarray, dtype: str) -> str | None:  # noqa: C901 - independent checks, one per kind of loss
    """What casting ``array`` to ``dtype`` (a :func:`dtype_name`) loses beyond rounding, or ``None``.

    Named: imaginary parts dropped (complex to real), finite values that become ``inf`` (overflow) or
    nonzero values that become 0 (underflow) in a narrower float, integers out of the target's range,
    fractions or NaN/inf cast to an integer dtype.

    Example:
        >>> cast_loss(np.array([1e300, 1.0]), "float32")
        '1 finite value(s) become inf (largest magnitude 1e+300)'
        >>> cast_loss(np.array([1 + 2j], np.complex64), "float32")
        'imaginary parts dropped (1 nonzero)'
        >>> cast_loss(np.array([0.5], np.float64), "float32") is None
        True
    """
    a = np.asarray(array)
    target = np.dtype("float32" if dtype == "bfloat16" else dtype)
    losses = []
    with np.errstate(all="ignore"):
        if a.dtype.kind == "c" and target.kind != "c":
            nonzero = int(np.count_nonzero(a.imag))
            if nonzero:
                losses.append(f"imaginary parts dropped ({nonzero} nonzero)")
            a = a.real
        if a.dtype.kind in "fc" and target.kind in "fc":
            out = a.astype(target) if dtype != "bfloat16" else _round_to_bfloat16(a)
            over = np.isfinite(a) & ~np.isfinite(out)
            if over.any():
                worst = float(np.max(np.abs(a[over])))
                losses.append(f"{int(np.count_nonzero(over))} finite value(s) become inf (largest magnitude {worst:g})")
            under = (a != 0) & (out == 0)
            if under.any():
                losses.append(f"{int(np.count_nonzero(under))} nonzero value(s) become 0 (underflow)")
        elif a.dtype.kind == "f" and target.kind in "iub":
            if not np.isfinite(a).all():
                losses.append(f"{int(np.count_nonzero(~np.isfinite(a)))} NaN/inf value(s) have no integer value")
            elif (a != np.trunc(a)).any():
                losses.append(f"{int(np.count_nonzero(a != np.trunc(a)))} value(s) lose their fraction")
        if a.dtype.kind in "iub" and target.kind in "iu" and a.size:
            info = np.iinfo(target)
            low, high = int(a.min()), int(a.max())
            if low < info.min or high > info.max:
                losses.append(f"values outside {target.name}'s range [{info.min}, {info.max}] (seen {low} .. {high})")
    return "; ".join(losses) or None


def _round_to_bfloat16(a: np.ndarray) -> np.ndarray:
    # round-to-nearest-even float32 -> bfloat16, held in float32 (what the cast stores)
    x = np.asarray(a, dtype=np.float32)
    bits = x.view(np.uint32)
    rounded = (bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))) & np.uint32(0xFFFF0000)
    return np.where(np.isnan(x), x, rounded.view(np.float32))


def torch_tensor(array: np.ndarray, dtype: str):
    """A torch tensor with its own copy of ``array``, as bfloat16 when ``dtype`` (a :func:`dtype_name`) says so.

    Example:
        >>> torch_tensor(np.ones(2, np.float32), "bfloat16").dtype
        torch.bfloat16
    """
    import torch

    tensor = torch.from_numpy(np.array(array, copy=True))
    return tensor.to(torch.bfloat16) if dtype == "bfloat16" else tensor


# ------------------------------------------------------------------------------------------------- files


_ST_DTYPES = {
    "F16": "float16",
    "F32": "float32",
    "F64": "float64",
    "BF16": "bfloat16",
    "I64": "int64",
    "I32": "int32",
    "I16": "int16",
    "I8": "int8",
    "U8": "uint8",
    "BOOL": "bool",
    "U16": "uint16",
    "U32": "uint32",
    "U64": "uint64",
    "C64": "complex64",
    "F8_E4M3": "float8_e4m3fn",
    "F8_E5M2": "float8_e5m2",
}


def _unheld_dtype(name: str) -> bool:
    """Dtypes numpy (and so this converter) cannot hold: refused by name when read."""
    return name.startswith(("float8", "float4_", "float6_")) or name in ("complex32", "e8m0")


def _unheld(path: str, key: str, dtype: str) -> ValueError:
    return ValueError(
        f"{path}: entry {key!r} is {dtype}, which numpy and a MindSpore .ckpt cannot hold, so it cannot be converted "
        f"exactly; cast it first (float8 to float16 / bfloat16 / float32, complex32 to complex64: each holds every "
        f"value exactly) and convert that"
    )


class _LazySafetensors(Mapping):
    """A read-only mapping over a .safetensors file: each tensor read when asked for."""

    def __init__(self, path: str) -> None:
        from safetensors import safe_open

        self._path = path
        try:
            self._numpy = safe_open(path, framework="numpy")
        except Exception as exc:  # safetensors' own error names no file and often not the problem either
            raise ValueError(f"{path}: not a readable .safetensors file: {_safetensors_problem(path, exc)}") from None
        self._torch: Any = None  # opened at the first bfloat16 entry (safetensors' safe_open)
        self._keys = list(self._numpy.keys())
        slices = {k: self._numpy.get_slice(k) for k in self._keys}
        self._dtypes = {k: sl.get_dtype() for k, sl in slices.items()}
        self._shapes = {k: tuple(int(d) for d in sl.get_shape()) for k, sl in slices.items()}
        for key, dtype in self._dtypes.items():
            name = _ST_DTYPES.get(dtype, dtype.lower())
            if _unheld_dtype(name) or dtype not in _ST_DTYPES:
                raise _unheld(path, key, name)

    def meta(self, key: str) -> tuple[tuple[int, ...], str]:
        """Shape and dtype name from the header, without reading the data."""
        return self._shapes[key], _ST_DTYPES.get(self._dtypes[key], self._dtypes[key].lower())

    def __getitem__(self, key: str):
        if key not in self._dtypes:
            raise KeyError(key)
        try:
            if self._dtypes[key] == "BF16":  # numpy has no bfloat16: read it as a torch tensor
                return self._torch_handle(key).get_tensor(key)
            return self._numpy.get_tensor(key)
        except ValueError:
            raise
        except Exception as exc:
            raise ValueError(
                f"{self._path}: entry {key!r} cannot be read: {type(exc).__name__}: {_first_line(exc)}"
            ) from None

    def _torch_handle(self, key: str):
        # One handle for every bfloat16 entry: each safe_open parses the whole header again.
        if self._torch is None:
            import importlib.util

            if importlib.util.find_spec("torch") is None:
                raise ValueError(f"{self._path}: {key!r} is bfloat16, which reading without torch cannot hold")
            from safetensors import safe_open

            self._torch = safe_open(self._path, framework="pt")
        return self._torch

    def __iter__(self):
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


def read_tensors(path: str | os.PathLike, *, lazy: bool = False, mmap: bool = True) -> Mapping[str, Any]:
    """Read a ``.pt/.pth`` (``weights_only=True``), ``.safetensors`` or ``.ckpt`` file into ``{name: tensor}``.

    Args:
        path: the file.
        lazy: for .safetensors, read each tensor when it is asked for.
        mmap: memory-map .pt files (zip format) instead of reading them whole.

    Returns:
        A mapping of names to torch tensors (.pt), numpy arrays (.safetensors; bfloat16 as torch
        tensors) or MindSpore Parameters (.ckpt).

    Raises:
        ValueError: an unsupported extension; an empty, truncated, damaged (CRC32 mismatch) or foreign file;
            a file that is not a flat mapping of tensors; a .pt that ``torch.load(weights_only=True)``
            refuses (pickled objects other than tensors); an entry of a dtype numpy cannot hold (float8,
            complex32) or whose elements overlap in memory. One line, naming the file (and the entry).
        OSError: the file cannot be opened (missing, no permission).

    Example:
        >>> import numpy as np, tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "a.safetensors")
        >>> write_tensors(p, {"w": np.ones(2, np.float32)})
        >>> dict(read_tensors(p))["w"].tolist()
        [1.0, 1.0]
    """
    path = os.fspath(path)
    ext = file_ext(path)
    if ext not in TORCH_EXT + ST_EXT + MS_EXT:
        raise ValueError(f"{path}: expected a .pt, .pth, .safetensors or .ckpt file, got extension {ext or '(none)'!r}")
    size = os.path.getsize(path)  # OSError (no such file, a folder, no permission) names the path itself
    if os.path.isdir(path):
        raise ValueError(f"{path}: is a folder, expected a checkpoint file")
    if size == 0:
        raise ValueError(f"{path}: empty file (0 bytes), expected a {ext} checkpoint")
    if ext in TORCH_EXT:
        return _read_torch(path, mmap)
    if ext in ST_EXT:
        mapping = _LazySafetensors(path)
        return mapping if lazy else {k: mapping[k] for k in mapping}
    return _read_ckpt(path)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "(no message)"


_ZIP_MAGIC = b"PK\x03\x04"


def _read_torch(path: str, mmap: bool) -> Mapping[str, Any]:
    data = _torch_load(path, mmap)
    _check_torch_entries(path, data)
    return data


def _torch_load(path: str, mmap: bool) -> Any:
    """``torch.load(weights_only=True)`` of a checked file; its errors as one line naming the file and the cause."""
    import torch

    with open(path, "rb") as f:
        head = f.read(4)
    is_zip = head == _ZIP_MAGIC
    if not is_zip and _ZIP_MAGIC.startswith(head):
        raise ValueError(f"{path}: truncated zip archive (torch.save's format): {len(head)} byte(s)")
    if is_zip:
        problem = _zip_problem(path)  # before torch reads it: a damaged record would load as other values
        if problem:
            raise ValueError(f"{path}: damaged zip archive (torch.save's format): {problem}")
    try:
        try:
            data = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap and is_zip)
        except (RuntimeError, OSError):
            if not (mmap and is_zip):
                raise
            data = torch.load(path, map_location="cpu", weights_only=True)  # mmap refused: read it whole
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if "Unsupported global" in text or "not an allowed global" in text:
            # never falls back to a full unpickle: that runs whatever code the file names
            lines = [ln.strip() for ln in text.splitlines() if "Unsupported global" in ln]
            raise ValueError(
                f"{path}: torch.load(weights_only=True) refused it (it holds objects other than tensors: "
                f"{(lines[0].split('. ')[0] if lines else type(exc).__name__)}); save only the state dict "
                "(torch.save(model.state_dict(), path)), or load it yourself if you trust the file"
            ) from None
        raise ValueError(
            f"{path}: not a torch checkpoint, or a damaged one: {_torch_problem(path, is_zip, exc)}"
        ) from None
    except Exception as exc:  # truncated, damaged or foreign: torch's errors often name neither file nor cause
        raise ValueError(f"{path}: not a readable torch checkpoint: {_torch_problem(path, is_zip, exc)}") from None
    return data


def _check_torch_entries(path: str, data: Any) -> None:
    """A state dict of dense tensors of a dtype we hold, none a view with overlapping elements."""
    import torch

    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: expected a state dict (a mapping of names to tensors), got {type(data).__name__}")
    for key, value in data.items():
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"{path}: entry {key!r} is a {type(value).__name__}, expected a tensor")
        dtype = str(value.dtype).removeprefix("torch.")
        if _unheld_dtype(dtype):
            raise _unheld(path, key, dtype)
        if value.layout != torch.strided:
            raise ValueError(f"{path}: entry {key!r} is a {value.layout} tensor, expected a dense one (.to_dense())")
        held = value.untyped_storage().nbytes()
        if value.numel() * value.element_size() > held:
            raise ValueError(
                f"{path}: entry {key!r} declares {value.numel()} elements of {dtype} (shape {tuple(value.shape)}) "
                f"over {held} bytes of storage: an expand()/as_strided() view whose elements overlap, which writing "
                "out would materialise; save entry.contiguous() (or clone()) if that is what you mean"
            )


def _zip_problem(path: str) -> str | None:
    """What is wrong with a zip .pt's structure or records (CRC32 of each), or None. Reads the file once."""
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
    except zipfile.BadZipFile as exc:
        return f"{_first_line(exc)} (truncated, or not a zip archive)"
    except (OSError, EOFError, ValueError, NotImplementedError, RuntimeError) as exc:
        return f"{type(exc).__name__}: {_first_line(exc)}"
    return None if bad is None else f"record {bad!r} does not match its CRC32 (its bytes changed after it was written)"


def _torch_problem(path: str, is_zip: bool, exc: BaseException) -> str:
    text = _first_line(exc)
    if isinstance(exc, pickle.UnpicklingError):
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip().startswith("Unsupported operand")]
        text = f"its pickle data does not parse ({lines[0] if lines else text})"
    elif isinstance(exc, (EOFError, IndexError)):  # the unpickler ran out of bytes
        text = "unexpected end of file (truncated?)"
    elif "unexpected EOF" in text:
        text = text.split(". ")[0] + " (truncated?)"
    fmt = "zip archive (torch.save's format)" if is_zip else "not a zip archive, read as torch's legacy format"
    return f"{text} [{fmt}]"


_ST_MAX_HEADER = 100_000_000  # safetensors' own limit


def _safetensors_problem(path: str, exc: BaseException) -> str:
    """A one-line account of why safetensors refused ``path`` (its header checked by hand)."""
    import json

    size = os.path.getsize(path)
    detail = _first_line(exc).removeprefix("Error while deserializing header: ")
    if size < 8:
        return f"{size} bytes, shorter than the 8-byte header length (truncated, or not a .safetensors file)"
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        if n > _ST_MAX_HEADER:
            return (
                f"its header length field says {n} bytes, above safetensors' {_ST_MAX_HEADER}-byte limit "
                "(not a .safetensors file, or a damaged one)"
            )
        if 8 + n > size:
            return f"its header length field says {n} bytes, the file has {size - 8} after it (truncated?)"
        raw = f.read(n)
    try:
        header = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        return f"its {n}-byte header is not valid JSON ({_first_line(err)}): damaged, or not a .safetensors file"
    if not isinstance(header, dict):
        return f"its header is a JSON {type(header).__name__}, expected an object"
    ends = [v.get("data_offsets", [0, 0])[1] for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)]
    if ends and max(ends) > size - 8 - n:
        return f"its tensors need {max(ends)} data bytes, the file has {size - 8 - n} (truncated?)"
    return f"{detail} (its header: {len(header)} entries)"


# The dtypes mindspore.load_checkpoint (2.10) reads back (serialization.tensor_to_ms_type).
_CKPT_LOADABLE = {
    "Int8": 1,
    "UInt8": 1,
    "Int16": 2,
    "UInt16": 2,
    "Int32": 4,
    "UInt32": 4,
    "Int64": 8,
    "UInt64": 8,
    "Float16": 2,
    "Float32": 4,
    "Float64": 8,
    "Bool": 1,
    "BFloat16": 2,
}


class _Quiet(logging.Filter):
    """Hides MindSpore's own log lines about one file (we raise one line of our own about it)."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def filter(self, record: logging.LogRecord) -> bool:
        return self.path not in record.getMessage()


@contextlib.contextmanager
def _quiet_mindspore_about(path: str):
    try:
        from mindspore import log

        logger = log._get_logger()
    except Exception:  # another MindSpore's log module: its lines stay
        yield
        return
    quiet = _Quiet(path)
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


def _read_ckpt(path: str) -> Mapping[str, Any]:
    import mindspore

    with open(path, "rb") as f:
        f.seek(max(os.path.getsize(path) - 17, 0))
        has_crc = f.read(7) == b"crc_num"
    try:
        with _quiet_mindspore_about(path):
            return mindspore.load_checkpoint(path, crc_check=has_crc)
    except Exception as exc:
        raise ValueError(f"{path}: not a readable MindSpore checkpoint: {_ckpt_problem(path, exc)}") from None


def _ckpt_problem(path: str, exc: BaseException) -> str:
    """Why MindSpore could not read ``path``, found by parsing it here (MindSpore's text often names neither)."""
    try:
        from google.protobuf.message import DecodeError
        from mindspore.train.checkpoint_pb2 import Checkpoint
    except ImportError:
        return _first_line(exc)
    with open(path, "rb") as f:
        content = f.read()
    if content[-17:-10] == b"crc_num":
        content, crc = content[:-17], int.from_bytes(content[-10:], "big")
        if zlib.crc32(content) != crc:
            return "its bytes do not match the CRC32 stored with them (damaged after it was written)"
    proto = Checkpoint()
    try:
        proto.ParseFromString(content)
    except DecodeError:
        return "its protobuf data does not parse (truncated or damaged, or not a .ckpt file)"
    if not proto.value:
        return "it holds no entries"
    sizes: dict[str, int] = {}
    for value in proto.value:
        tensor = value.tensor
        if tensor.tensor_type not in _CKPT_LOADABLE:
            return (
                f"entry {value.tag!r} is {tensor.tensor_type}, which mindspore.load_checkpoint cannot read "
                "(MindSpore 2.10 writes complex entries but refuses them when loading)"
            )
        sizes[value.tag] = sizes.get(value.tag, 0) + len(tensor.tensor_content)  # large entries come in slices
    for value in proto.value:
        need = int(np.prod(value.tensor.dims, dtype=np.int64)) * _CKPT_LOADABLE[value.tensor.tensor_type]
        if sizes[value.tag] != need:
            return (
                f"entry {value.tag!r}: shape {tuple(value.tensor.dims)} of {value.tensor.tensor_type} needs {need} "
                f"bytes, the file holds {sizes[value.tag]} (truncated or damaged)"
            )
    return _first_line(exc)


def write_tensors(
    path: str | os.PathLike, tensors: Mapping[str, Any], *, dtypes: Mapping[str, str] | None = None
) -> None:
    """Write ``{name: array-like}`` to a ``.pt/.pth``, ``.safetensors`` or ``.ckpt`` file, dtypes kept.

    Args:
        path: destination; its extension picks the format.
        tensors: names to numpy arrays / torch or MindSpore tensors.
        dtypes: per-name dtype to store (default: each value's own); used to store bfloat16 held as float32.

    Raises:
        ValueError: an unsupported extension, bfloat16 to .safetensors without torch installed, or an entry
            the format cannot hold (complex in a .ckpt, complex128 in a .safetensors, float8), named;
            nothing is written then.

    Example:
        >>> import numpy as np, tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "a.ckpt")
        >>> write_tensors(p, {"w": np.ones(2, np.float32)}, dtypes={"w": "bfloat16"})
        >>> str(read_tensors(p)["w"].dtype)
        'BFloat16'
    """
    path = os.fspath(path)
    ext = file_ext(path)
    names = {k: (dtypes or {}).get(k) or dtype_name(v) for k, v in tensors.items()}
    if ext not in TORCH_EXT + ST_EXT + MS_EXT:
        raise ValueError(f"{path}: expected a .pt, .pth, .safetensors or .ckpt destination, got {ext or '(none)'!r}")
    for key, name in names.items():
        if name.startswith("complex") and ext in MS_EXT:
            raise ValueError(
                f"{path}: entry {key!r} is {name}: a .ckpt cannot hold it (mindspore.save_checkpoint "
                "writes complex entries but mindspore.load_checkpoint 2.10 refuses them); write a .pt or "
                ".safetensors, or store real and imaginary parts as two entries"
            )
        if ext in MS_EXT and 0 in shape_of(tensors[key]):
            raise ValueError(
                f"{path}: entry {key!r} has no elements (shape {shape_of(tensors[key])}): "
                "mindspore.save_checkpoint leaves such entries out without a word, so a .ckpt cannot "
                "hold it; write a .pt or .safetensors, or drop the entry"
            )
        if name == "complex128" and ext in ST_EXT:
            raise ValueError(
                f"{path}: entry {key!r} is complex128, which .safetensors cannot hold (complex64 only); write a .pt"
            )
        if _unheld_dtype(name):
            raise _unheld(path, key, name)
    # Written to a temporary file next to the destination and renamed into place once complete: a failure
    # (a full disk, a refused entry) leaves no half-written checkpoint under the destination's name.
    folder, base = os.path.split(path)
    tmp = os.path.join(folder, f".{base}.{os.getpid()}.partial{ext}")
    try:
        _write(tmp, ext, tensors, names)
        os.replace(tmp, path)
    except ValueError:
        raise
    except Exception as exc:  # torch's, safetensors' and MindSpore's writers name neither the file nor the cause
        raise ValueError(f"{path}: could not be written: {type(exc).__name__}: {_first_line(exc)}") from exc
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _write(path: str, ext: str, tensors: Mapping[str, Any], names: Mapping[str, str]) -> None:
    if ext in TORCH_EXT:
        import torch

        torch.save({k: torch_tensor(to_numpy(v), names[k]) for k, v in tensors.items()}, path)
    elif ext in ST_EXT:
        if "bfloat16" in names.values():
            try:
                from safetensors.torch import save_file as save_torch_file
            except ImportError:
                raise ValueError(f"{path}: writing bfloat16 to .safetensors needs torch") from None
            save_torch_file({k: torch_tensor(to_numpy(v), names[k]).contiguous() for k, v in tensors.items()}, path)
        else:
            from safetensors.numpy import save_file as save_numpy_file

            save_numpy_file({k: np.asarray(to_numpy(v), order="C") for k, v in tensors.items()}, path)
    elif ext in MS_EXT:
        import mindspore

        # with a CRC32, which read_tensors checks (MindSpore's own loader reads such files too)
        mindspore.save_checkpoint([{"name": k, "data": ms_tensor(to_numpy(v), names[k])} for k, v in tensors.items()],
                                  path, crc_check=True)  # fmt: skip
