"""Checkpoint files: ``.pt/.pth`` (``weights_only=True``), ``.safetensors`` and ``.ckpt`` read and written, dtypes kept.

This is the layer below :mod:`porting.convert._checkpoint` (which decides names, layouts and what matches): it
knows file formats and the tensor types of torch, MindSpore and numpy, and nothing about cells or rule
tables. torch, MindSpore and safetensors are imported only by the functions that need them.

* :func:`read_tensors` / :func:`write_tensors` — a file to ``{name: tensor}`` and back;
* :func:`file_ext` and ``TORCH_EXT`` / ``ST_EXT`` / ``MS_EXT`` — which format a path names;
* :func:`dtype_name`, :func:`shape_of`, :func:`to_numpy`, :func:`torch_tensor`, :func:`ms_tensor` — one
  dtype vocabulary and the conversions between the three array types (bfloat16 through float32).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = [
    "MS_EXT",
    "ST_EXT",
    "TORCH_EXT",
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
        return text[len("torch."):]
    if isinstance(value, np.ndarray) or isinstance(dtype, np.dtype):
        return np.dtype(dtype).name
    return {"Float32": "float32", "Float16": "float16", "Float64": "float64", "BFloat16": "bfloat16",
            "Int64": "int64", "Int32": "int32", "Int8": "int8", "UInt8": "uint8", "Bool": "bool",
            "Int16": "int16"}.get(text, text.lower())


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

    if adopt and dtype != "bfloat16" and array.dtype == np.dtype(dtype) and array.ndim \
            and array.flags.c_contiguous and array.flags.writeable:
        return mindspore.Tensor.from_numpy(array)
    if dtype == "bfloat16":
        return mindspore.Tensor(np.asarray(array, dtype=np.float32, order="C")).astype(mindspore.bfloat16)
    return mindspore.Tensor(np.asarray(array, dtype=np.dtype(dtype), order="C"))


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


_ST_DTYPES = {"F16": "float16", "F32": "float32", "F64": "float64", "BF16": "bfloat16", "I64": "int64",
              "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool"}


class _LazySafetensors(Mapping):
    """A read-only mapping over a .safetensors file: each tensor read when asked for."""

    def __init__(self, path: str) -> None:
        from safetensors import safe_open

        self._path = path
        self._numpy = safe_open(path, framework="numpy")
        self._torch = None  # opened at the first bfloat16 entry
        self._keys = list(self._numpy.keys())
        slices = {k: self._numpy.get_slice(k) for k in self._keys}
        self._dtypes = {k: sl.get_dtype() for k, sl in slices.items()}
        self._shapes = {k: tuple(int(d) for d in sl.get_shape()) for k, sl in slices.items()}

    def meta(self, key: str) -> tuple[tuple[int, ...], str]:
        """Shape and dtype name from the header, without reading the data."""
        return self._shapes[key], _ST_DTYPES.get(self._dtypes[key], self._dtypes[key].lower())

    def __getitem__(self, key: str):
        if key not in self._dtypes:
            raise KeyError(key)
        if self._dtypes[key] == "BF16":  # numpy has no bfloat16: read it as a torch tensor
            return self._torch_handle(key).get_tensor(key)
        return self._numpy.get_tensor(key)

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
        ValueError: an unsupported extension, a file that is not a flat mapping of tensors, or a .pt
            that ``torch.load(weights_only=True)`` refuses (pickled objects other than tensors).

    Example:
        >>> import numpy as np, tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "a.safetensors")
        >>> write_tensors(p, {"w": np.ones(2, np.float32)})
        >>> dict(read_tensors(p))["w"].tolist()
        [1.0, 1.0]
    """
    path = os.fspath(path)
    ext = file_ext(path)
    if ext in TORCH_EXT:
        import pickle

        import torch

        try:
            try:
                data = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
            except RuntimeError:
                if not mmap:
                    raise
                data = torch.load(path, map_location="cpu", weights_only=True)  # legacy (non-zip): no mmap
        except pickle.UnpicklingError as exc:
            # never falls back to a full unpickle: that runs whatever code the file names
            lines = [ln.strip() for ln in str(exc).splitlines() if "Unsupported" in ln or "error:" in ln]
            raise ValueError(
                f"{path}: torch.load(weights_only=True) refused it (it holds objects other than tensors: "
                f"{(lines[0].split('. ')[0] if lines else type(exc).__name__)}); save only the state dict "
                "(torch.save(model.state_dict(), path)), or load it yourself if you trust the file"
            ) from exc
        if not isinstance(data, Mapping):
            raise ValueError(f"{path}: expected a state dict (a mapping of names to tensors), got {type(data).__name__}")
        for key, value in data.items():
            if not isinstance(value, torch.Tensor):
                raise ValueError(f"{path}: entry {key!r} is a {type(value).__name__}, expected a tensor")
        return data
    if ext in ST_EXT:
        mapping = _LazySafetensors(path)
        return mapping if lazy else {k: mapping[k] for k in mapping}
    if ext in MS_EXT:
        import mindspore

        return mindspore.load_checkpoint(path)
    raise ValueError(f"{path}: expected a .pt, .pth, .safetensors or .ckpt file, got extension {ext or '(none)'!r}")


def write_tensors(path: str | os.PathLike, tensors: Mapping[str, Any], *, dtypes: Mapping[str, str] | None = None) -> None:
    """Write ``{name: array-like}`` to a ``.pt/.pth``, ``.safetensors`` or ``.ckpt`` file, dtypes kept.

    Args:
        path: destination; its extension picks the format.
        tensors: names to numpy arrays / torch or MindSpore tensors.
        dtypes: per-name dtype to store (default: each value's own); used to store bfloat16 held as float32.

    Raises:
        ValueError: an unsupported extension, or bfloat16 to .safetensors without torch installed.

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
    if ext in TORCH_EXT:
        import torch

        torch.save({k: torch_tensor(to_numpy(v), names[k]) for k, v in tensors.items()}, path)
    elif ext in ST_EXT:
        if "bfloat16" in names.values():
            try:
                from safetensors.torch import save_file
            except ImportError:
                raise ValueError(f"{path}: writing bfloat16 to .safetensors needs torch") from None
            save_file({k: torch_tensor(to_numpy(v), names[k]).contiguous() for k, v in tensors.items()}, path)
        else:
            from safetensors.numpy import save_file

            save_file({k: np.asarray(to_numpy(v), order="C") for k, v in tensors.items()}, path)
    elif ext in MS_EXT:
        import mindspore

        mindspore.save_checkpoint([{"name": k, "data": ms_tensor(to_numpy(v), names[k])} for k, v in tensors.items()], path)
    else:
        raise ValueError(f"{path}: expected a .pt, .pth, .safetensors or .ckpt destination, got {ext or '(none)'!r}")
