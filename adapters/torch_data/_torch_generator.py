"""``Generator``: torch's CPU random generator (MT19937) and the draws samplers make, in numpy.

Torch-free: nothing here imports torch (``Generator.to_torch`` imports it lazily, on call).
Every draw below reproduces ``torch.Generator`` (CPU, torch 2.13) bit for bit and leaves the
generator in the same state; ``tests/adapters/test_torch_generator.py`` checks each against torch.

How torch draws (ATen ``CPUGeneratorImpl`` / ``DistributionsHelper.h``):

* the engine is MT19937 seeded with ``init_genrand(seed & 0xffffffff)`` -- numpy's *legacy*
  seeding (``RandomState(seed)``), so the raw 32-bit stream comes from ``np.random.MT19937``;
* ``random()`` is one 32-bit output; ``random64()`` is ``(first << 32) | second``.
"""

from __future__ import annotations

import array
import ctypes
import importlib
import math
import operator
import secrets
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["DEFAULT_SEED", "Generator", "default_generator"]

DEFAULT_SEED = 67280421310721
"""``c10::default_rng_seed_val``: the seed of every new ``torch.Generator()``."""

_MT_N = 624
_U64 = 2**64
# ``randperm`` switches to a 64-bit inside-out shuffle from here on (``n < UINT32_MAX / 20``).
_RANDPERM_SMALL_N_LIMIT = (2**32 - 1) // 20
_LIST_SHUFFLE_MAX_N = 2**18  # randperm's swap loop: list below, array.array from here (speed only)
# ``uniform_int_from_to_distribution`` draws ``random64()`` from this range size on.
_RANDINT_64BIT_RANGE = 2**28
_MAX_CATEGORIES = 2**24  # torch: "number of categories cannot exceed 2^24"

# Byte layout of ``CPUGeneratorImplState`` (what ``torch.Generator.get_state()`` returns):
# legacy_pod {u64 the_initial_seed; i32 left; i32 seeded; u64 next; u64 state[624];
# f64 normal_x, normal_y, normal_rho; i32 normal_is_valid; (pad 4)} ;
# f32 next_float_normal_sample; bool is_next_float_normal_sample_valid; (pad 3).
_HEAD = struct.Struct("<QiiQ")
_TAIL = struct.Struct("<dddi4xf?3x")
_STATE_BYTES = _HEAD.size + 8 * _MT_N + _TAIL.size  # 5056
_ZERO_TAIL = _TAIL.pack(0.0, 0.0, 0.0, 0, 0.0, False)


def _as_seed(seed: Any) -> int:
    """Validate a seed like ``torch.Generator.manual_seed`` and map it into ``[0, 2**64)``."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"manual_seed expected an int, but got {type(seed).__name__} ({seed!r})")
    seed = operator.index(seed)
    if not -(2**63) <= seed < _U64:
        raise ValueError(f"seed must be in [-2**63, 2**64 - 1], got {seed}")
    return seed % _U64  # torch wraps negative seeds: -1 -> 2**64 - 1


def _as_size(size: Any, where: str) -> tuple[int, ...]:
    """Normalise an int or a sequence of ints into a shape tuple, refusing negatives."""
    try:
        dims = (operator.index(size),) if not isinstance(size, Sequence) else tuple(map(operator.index, size))
    except TypeError:
        raise TypeError(f"{where}: size must be an int or a sequence of ints, got {size!r}") from None
    if any(d < 0 for d in dims):
        raise ValueError(f"{where}: size must be non-negative, got {dims}")
    return dims


class Generator:
    """A numpy emulation of torch's CPU ``torch.Generator`` (MT19937), torch-free.

    Draws the same numbers as torch for ``random_``, ``randperm``, ``randint``, ``rand``,
    ``exponential`` and ``multinomial``, and keeps the same state: ``get_state()`` returns the
    very bytes ``torch.Generator.get_state()`` would.

    Args:
        device: only ``"cpu"`` (the generator torch's samplers use).

    Raises:
        ValueError: for any other device.

    Example:
        >>> g = Generator().manual_seed(0)
        >>> g.randperm(5).tolist()  # == torch.randperm(5, generator=torch.Generator().manual_seed(0))
        [4, 0, 1, 3, 2]
    """

    def __init__(self, device: str = "cpu") -> None:
        if str(device) != "cpu":
            raise ValueError(f"Generator emulates torch's CPU generator only; got device={device!r}")
        self._bitgen = np.random.MT19937(0)  # its state is replaced by manual_seed right away
        self._initial_seed = 0
        self._fresh = True  # torch keeps next_=0 until the first draw after seeding
        self._normal_tail = _ZERO_TAIL
        # get_state()'s answer until the state changes (a torch worker reads the streams after every batch)
        self._state_bytes: np.ndarray | None = None
        self.manual_seed(DEFAULT_SEED)

    @property
    def device(self) -> str:
        """Always ``"cpu"``."""
        return "cpu"

    def __repr__(self) -> str:
        return f"adapters.Generator(initial_seed={self._initial_seed})"

    # ------------------------------------------------------------------ seeding and state

    def manual_seed(self, seed: int) -> Generator:
        """Seed like ``torch.Generator.manual_seed``: MT19937 ``init_genrand(seed & 0xffffffff)``.

        Args:
            seed: an int in ``[-2**63, 2**64)``; negatives wrap modulo ``2**64`` as in torch.

        Returns:
            ``self``.

        Raises:
            TypeError: ``seed`` is not an int (bool and float are refused, as torch does).
            ValueError: ``seed`` is out of range.

        Example:
            >>> Generator().manual_seed(-1).initial_seed() == 2**64 - 1
            True
        """
        seed = _as_seed(seed)
        # RandomState(int) is numpy's public route to init_genrand (legacy seeding).
        legacy = np.random.RandomState(seed & 0xFFFFFFFF).get_state(legacy=False)
        self._bitgen.state = {"bit_generator": "MT19937", "state": legacy["state"]}
        self._initial_seed = seed
        self._fresh = True
        self._normal_tail = _ZERO_TAIL  # torch resets its cached normal samples on reseed
        self._state_bytes = None
        return self

    def initial_seed(self) -> int:
        """Return the seed last given to :meth:`manual_seed` (after wrapping), like torch."""
        return self._initial_seed

    def seed(self) -> int:
        """Reseed from OS entropy (64 bits, like torch's ``getNonDeterministicRandom``).

        Returns:
            The new seed; ``Generator().manual_seed(returned)`` reproduces the stream.

        Example:
            >>> g = Generator(); s = g.seed(); g.initial_seed() == s
            True
        """
        new = secrets.randbits(64)
        self.manual_seed(new)
        return new

    def get_state(self) -> np.ndarray:
        """Return the state as the 5056 ``uint8`` bytes ``torch.Generator.get_state()`` returns.

        Returns:
            A fresh ``np.ndarray`` (dtype uint8); ``torch.from_numpy`` of it can be handed to
            ``torch.Generator.set_state``.

        Example:
            >>> Generator().get_state().shape
            (5056,)
        """
        if self._state_bytes is None:
            key32, pos = mt19937_key_pos(self._bitgen)
            left, nxt = (1, 0) if self._fresh else (_MT_N + 1 - pos, pos)
            key = key32.astype("<u8")
            raw = _HEAD.pack(self._initial_seed, left, 1, nxt) + key.tobytes() + self._normal_tail
            self._state_bytes = np.frombuffer(raw, dtype=np.uint8).copy()
        return self._state_bytes.copy()

    def set_state(self, new_state: Any) -> Generator:
        """Restore a state from :meth:`get_state` or from ``torch.Generator.get_state()``.

        Args:
            new_state: 5056 bytes (uint8 array, ``bytes``, or a torch ByteTensor).

        Returns:
            ``self``.

        Raises:
            ValueError: wrong size, or an MT19937 state torch itself could not have produced.

        Example:
            >>> a = Generator().manual_seed(3); b = Generator().set_state(a.get_state().tobytes())
            >>> a.randperm(10).tolist() == b.randperm(10).tolist()
            True
        """
        if isinstance(new_state, (bytes, bytearray, memoryview)):
            raw = bytes(new_state)
        else:
            raw = np.ascontiguousarray(np.asarray(new_state, dtype=np.uint8)).tobytes()
        if len(raw) != _STATE_BYTES:
            raise ValueError(f"set_state expected {_STATE_BYTES} bytes (torch CPU generator state), got {len(raw)}")
        seed, left, _seeded, nxt = _HEAD.unpack_from(raw, 0)
        key = np.frombuffer(raw, dtype="<u8", count=_MT_N, offset=_HEAD.size)
        if key.max() > 0xFFFFFFFF:
            bad = int(np.argmax(key > 0xFFFFFFFF))
            raise ValueError(f"set_state: MT19937 word state[{bad}]={int(key[bad])} does not fit in 32 bits")
        fresh = left == 1 and nxt == 0
        # numpy's MT19937 keeps one cursor ``pos``; torch keeps ``left`` and ``next`` that move together.
        if not (1 <= left <= _MT_N and (fresh or nxt == _MT_N + 1 - left)):
            raise ValueError(
                f"set_state: inconsistent MT19937 cursor left={left}, next={nxt} "
                f"(expected 1 <= left <= {_MT_N} and next == {_MT_N + 1} - left, or left=1, next=0)"
            )
        pos = _MT_N + 1 - left
        self._bitgen.state = {"bit_generator": "MT19937", "state": {"key": key.astype(np.uint32), "pos": pos}}
        self._initial_seed = seed
        self._fresh = fresh
        self._normal_tail = raw[_STATE_BYTES - _TAIL.size :]
        self._state_bytes = None
        return self

    @classmethod
    def from_torch(cls, generator: Any) -> Generator:
        """Copy the state of a CPU ``torch.Generator`` (the torch generator is not advanced).

        Args:
            generator: a ``torch.Generator`` on CPU.

        Returns:
            A new :class:`Generator` that draws what ``generator`` would draw next.

        Raises:
            TypeError: ``generator`` has no ``get_state`` / is not on CPU.

        Example:
            >>> import torch  # doctest: +SKIP
            >>> Generator.from_torch(torch.Generator().manual_seed(1)).initial_seed()  # doctest: +SKIP
            1
        """
        if not hasattr(generator, "get_state") or str(getattr(generator, "device", "cpu")) != "cpu":
            raise TypeError(f"from_torch expects a CPU torch.Generator, got {generator!r}")
        return cls().set_state(np.asarray(generator.get_state()))

    def to_torch(self) -> Any:
        """Return a new CPU ``torch.Generator`` in this generator's state (needs torch installed).

        Raises:
            ImportError: torch is not installed.

        Example:
            >>> Generator().manual_seed(1).to_torch().initial_seed()  # doctest: +SKIP
            1
        """
        torch = importlib.import_module("torch")  # lazily: this module must import without torch
        out = torch.Generator()
        out.set_state(torch.from_numpy(self.get_state()))
        return out

    # ------------------------------------------------------------------ raw MT19937 output

    def _random32(self, count: int) -> np.ndarray:
        """``count`` successive ``random()`` outputs (uint64 array holding 32-bit values)."""
        if count <= 0:
            return np.zeros(0, dtype=np.uint64)
        self._fresh = False
        self._state_bytes = None
        return self._bitgen.random_raw(count)

    def _random64(self, count: int) -> np.ndarray:
        """``count`` successive ``random64()`` outputs: ``(first << 32) | second``."""
        raw = self._random32(2 * count)
        return (raw[0::2] << np.uint64(32)) | raw[1::2]

    # ------------------------------------------------------------------ draws

    def random_(self) -> int:
        """The int64 seed draw ``torch.empty((), dtype=torch.int64).random_(generator=g)``.

        This is the draw a DataLoader iterator (base seed) and ``RandomSampler(generator=None)``
        make: ``random64() % 2**63``.

        Returns:
            An int in ``[0, 2**63)``.

        Example:
            >>> 0 <= Generator().manual_seed(0).random_() < 2**63
            True
        """
        return int(self._random64(1)[0]) % 2**63

    def randperm(self, n: int) -> np.ndarray:
        """``torch.randperm(n, generator=g)`` (int64).

        torch's CPU kernel for ``n < 2**32 // 20`` swaps ``i`` with ``i + random() % (n - i)`` for
        ``i = 0 .. n-2``; the raw draws are vectorised, the swaps are a sequential loop.

        Args:
            n: permutation size, ``0 <= n < 214748364``.

        Returns:
            ``np.ndarray`` of int64, a permutation of ``range(n)``.

        Raises:
            ValueError: ``n`` is negative.
            NotImplementedError: ``n >= 214748364`` (torch's 64-bit inside-out branch; not emulated
                because it could not be checked against torch at a practical cost).

        Example:
            >>> sorted(Generator().manual_seed(0).randperm(4).tolist())
            [0, 1, 2, 3]
        """
        n = operator.index(n)
        if n < 0:
            raise ValueError(f"randperm: n must be non-negative, got {n}")
        if n >= _RANDPERM_SMALL_N_LIMIT:
            raise NotImplementedError(
                f"randperm(n={n}): torch uses a different 64-bit shuffle for n >= {_RANDPERM_SMALL_N_LIMIT}; "
                "that branch is not emulated"
            )
        if n < 2:
            return np.arange(n, dtype=np.int64)
        offsets = self._random32(n - 1) % np.arange(n, 1, -1, dtype=np.uint64)
        targets = (offsets.astype(np.int64) + np.arange(n - 1, dtype=np.int64)).tolist()
        # Each swap depends on the previous ones, so this stays a loop. A list is fastest while it
        # fits the caches; past that a contiguous int64 array.array wins (about 2x at n = 1e6).
        perm: list[int] | array.array = list(range(n)) if n < _LIST_SHUFFLE_MAX_N else array.array("q", range(n))
        for i, j in enumerate(targets):
            perm[i], perm[j] = perm[j], perm[i]
        return np.array(perm, dtype=np.int64) if isinstance(perm, list) else np.frombuffer(perm, dtype=np.int64)

    def randint(self, *args: Any, low: int | None = None, high: int | None = None, size: Any = None) -> np.ndarray:
        """``torch.randint`` (int64): ``randint(high, size)`` or ``randint(low, high, size)``.

        Each element is ``low + random() % (high - low)``, or ``random64()`` instead of
        ``random()`` when ``high - low >= 2**28`` (torch's threshold).

        Args:
            *args: ``(high, size)`` or ``(low, high, size)`` positionally, as in torch.
            low: lowest value (default 0).
            high: one above the highest value.
            size: output shape (int or tuple).

        Returns:
            ``np.ndarray`` of int64 with shape ``size``.

        Raises:
            TypeError: missing/extra arguments.
            ValueError: ``low >= high`` or a negative size.

        Example:
            >>> Generator().manual_seed(0).randint(10, (3,)).shape
            (3,)
        """
        given = {"low": low, "high": high, "size": size}
        # Positionals fill the slots not given by keyword; one short means ``low`` was left out.
        free = [name for name in ("low", "high", "size") if given[name] is None]
        if len(args) == len(free) - 1 and free[0] == "low":
            free = free[1:]
        if len(args) != len(free):
            raise TypeError(
                f"randint needs high and size: randint(high, size) or randint(low, high, size), "
                f"got {len(args)} positional argument(s) and keywords "
                f"{sorted(k for k, v in given.items() if v is not None)}"
            )
        given.update(zip(free, args, strict=True))
        lo = operator.index(given["low"] if given["low"] is not None else 0)
        hi = operator.index(given["high"])
        if lo >= hi:
            raise ValueError(f"random_ expects 'from' to be less than 'to', but got from={lo} >= to={hi}")
        if not (-(2**63) <= lo and hi < 2**63):
            raise ValueError(f"randint: low and high must be int64 values, got low={lo}, high={hi}")
        shape = _as_size(given["size"], "randint")
        count = math.prod(shape)
        span = hi - lo
        raw = self._random64(count) if span >= _RANDINT_64BIT_RANGE else self._random32(count)
        # torch: static_cast<int64_t>((val % range) + base), computed in uint64 (wraps) then cast.
        out = (raw % np.uint64(span)) + np.uint64(lo % _U64)
        return out.view(np.int64).reshape(shape)

    def rand(self, size: Any, dtype: Any = np.float32) -> np.ndarray:
        """``torch.rand(size, dtype=dtype, generator=g)`` for float32 (torch's default) or float64.

        float32: ``(random() & (2**24-1)) * 2**-24``; float64: ``(random64() & (2**53-1)) * 2**-53``.

        Args:
            size: output shape.
            dtype: ``np.float32`` or ``np.float64``.

        Returns:
            ``np.ndarray`` of ``dtype`` in ``[0, 1)``.

        Raises:
            TypeError: another dtype.

        Example:
            >>> Generator().manual_seed(0).rand(2).dtype
            dtype('float32')
        """
        shape = _as_size(size, "rand")
        count = math.prod(shape)
        dt = np.dtype(dtype)
        if dt == np.float32:
            vals = (self._random32(count) & np.uint64(2**24 - 1)).astype(np.float32) * np.float32(2.0**-24)
        elif dt == np.float64:
            vals = (self._random64(count) & np.uint64(2**53 - 1)).astype(np.float64) * 2.0**-53
        else:
            raise TypeError(f"rand supports float32 and float64, got dtype={dt}")
        return vals.reshape(shape)

    def exponential(self, size: Any, lambd: float = 1.0, dtype: Any = np.float64) -> np.ndarray:
        """``torch.empty(size, dtype=dtype).exponential_(lambd, generator=g)``.

        torch computes ``-1/lambd * log1p(-u)`` in double with ``u`` a float64 uniform (for every
        dtype), one element at a time with libm's ``log1p``. ``math.log1p`` is that libm call;
        numpy's vectorised ``log1p`` differs by 1-2 ulp on some inputs, so it is not used.

        Args:
            size: output shape.
            lambd: rate, ``> 0``.
            dtype: ``np.float32`` or ``np.float64`` (the double result is cast, as in torch).

        Returns:
            ``np.ndarray`` of ``dtype``.

        Raises:
            ValueError: ``lambd <= 0``.
            TypeError: another dtype.

        Example:
            >>> (Generator().manual_seed(0).exponential(3) >= 0).all()
            True
        """
        if not lambd > 0:
            raise ValueError(f"exponential_ expects lambda > 0.0, but found lambda={lambd}")
        dt = np.dtype(dtype)
        if dt not in (np.float32, np.float64):
            raise TypeError(f"exponential supports float32 and float64, got dtype={dt}")
        shape = _as_size(size, "exponential")
        count = math.prod(shape)
        uniform = ((self._random64(count) & np.uint64(2**53 - 1)).astype(np.float64) * 2.0**-53).tolist()
        scale = -1.0 / float(lambd)
        log1p = math.log1p
        vals = np.fromiter((scale * log1p(-u) for u in uniform), dtype=np.float64, count=count)
        return vals.astype(dt).reshape(shape)

    def multinomial(self, input: Any, num_samples: int, replacement: bool = False) -> np.ndarray:
        """``torch.multinomial(input, num_samples, replacement, generator=g)`` (int64).

        With replacement and ``num_samples > 1``: per row, the cumsum of the weights (in the input
        dtype) normalised by its last value, then one float64 uniform per sample and a left binary
        search. Otherwise: ``q = input / exponential`` over all elements, then ``argmax`` for one
        sample or torch's ``topk`` (libstdc++ ``partial_sort``/``nth_element``; ties such as
        zero weights come out in the order that code puts them).

        Args:
            input: 1-D or 2-D float32/float64 non-negative weights (need not sum to 1).
            num_samples: samples per row, ``> 0``; ``<= input.shape[-1]`` without replacement.
            replacement: draw with replacement.

        Returns:
            ``np.ndarray`` of int64, shape ``(num_samples,)`` or ``(rows, num_samples)``.

        Raises:
            TypeError: weights not float32/float64.
            ValueError: the conditions torch checks (dims, counts, negative/inf/nan, zero sum).

        Example:
            >>> Generator().manual_seed(0).multinomial([0.0, 1.0, 0.0], 2, replacement=True).tolist()
            [1, 1]
        """
        weights = np.asarray(input)
        if weights.dtype not in (np.float32, np.float64):
            raise TypeError(f"multinomial supports float32/float64 weights, got dtype={weights.dtype}")
        if weights.ndim not in (1, 2):
            raise ValueError(f"prob_dist must be 1 or 2 dim, got shape {weights.shape}")
        k = operator.index(num_samples)
        if k <= 0:
            raise ValueError(f"cannot sample n_sample <= 0 samples, got num_samples={k}")
        n_cat = weights.shape[-1]
        if not replacement and k > n_cat:
            raise ValueError(
                f"cannot sample n_sample > prob_dist.size(-1) samples without replacement, "
                f"got num_samples={k} > {n_cat} categories"
            )
        if n_cat > _MAX_CATEGORIES:
            raise ValueError(f"number of categories cannot exceed 2^24, got {n_cat}")
        rows = weights.reshape(-1, n_cat)
        if not replacement or k == 1:
            out = self._multinomial_exponential(rows, k)
        else:
            out = np.stack([self._multinomial_cumsum(row, k, r) for r, row in enumerate(rows)])
        return out.reshape(k) if weights.ndim == 1 else out

    def _multinomial_cumsum(self, row: np.ndarray, k: int, r: int) -> np.ndarray:
        """One row of torch's with-replacement kernel (validated as torch does, row by row)."""
        bad = np.flatnonzero(~(row >= 0) | ~np.isfinite(row))
        if bad.size:
            j = int(bad[0])
            what = "< 0" if not row[j] >= 0 else "= infinity or NaN"  # torch checks `>= 0` first
            raise ValueError(
                f"invalid multinomial distribution (encountering probability entry {what}): "
                f"got {row[j]} at row {r}, index {j}"
            )
        cum = np.cumsum(row, dtype=row.dtype)  # sequential, in the input dtype, like torch
        total = cum[-1]
        if not total > 0:
            raise ValueError(f"invalid multinomial distribution (sum of probabilities <= 0): row {r} sums to {total}")
        cum = cum / total
        cum[-1] = 1
        uniform = (self._random64(k) & np.uint64(2**53 - 1)).astype(np.float64) * 2.0**-53
        return np.searchsorted(cum.astype(np.float64), uniform, side="left").astype(np.int64)

    def _multinomial_exponential(self, rows: np.ndarray, k: int) -> np.ndarray:
        """torch's no-replacement / single-sample path: top-k of ``w / Exp(1)``."""
        if not (np.all(rows < np.inf) and np.all(rows >= 0)):  # NaN fails both, as in torch
            bad = np.argwhere(~((rows < np.inf) & (rows >= 0)))[0]
            raise ValueError(
                f"probability tensor contains either `inf`, `nan` or element < 0: got {rows[tuple(bad)]} "
                f"at (row, index) {tuple(int(b) for b in bad)}"
            )
        zero_rows = np.flatnonzero(np.all(rows == 0, axis=1))
        if zero_rows.size:
            raise ValueError(
                f"invalid multinomial distribution (sum of probabilities <= 0): rows {zero_rows.tolist()} are all zero"
            )
        q = rows / self.exponential(rows.shape, dtype=rows.dtype)
        if k == 1:
            return np.argmax(q, axis=1).astype(np.int64)[:, None]  # first max; NaN wins, as in torch
        return np.stack([_topk_indices(row, k) for row in q])


# ---------------------------------------------------------------------- torch's CPU topk
# ``topk_impl_loop`` (ATen/native/TopKImpl.h) ranks (value, index) pairs with libstdc++'s
# ``std::partial_sort`` when ``k * 64 <= n`` and ``std::nth_element`` + ``std::sort`` of the first
# ``k - 1`` otherwise, comparing ``(isnan(x) and not isnan(y)) or x > y``. Those algorithms are not
# stable, so equal values (e.g. every zero weight) come out in an order only a faithful copy of
# them reproduces. The copy below follows GCC's bits/stl_algo.h and bits/stl_heap.h line by line.
# With no NaN and no tie among the top k + 1 values the order is unique, and numpy's argsort gives it.


def _topk_indices(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of ``torch.topk(values, k).indices`` (largest, sorted) for a 1-D float array."""
    n = values.size
    if not np.isnan(values).any():
        order = np.argsort(-values, kind="stable")
        head = values[order[: min(k + 1, n)]]
        if np.all(head[:-1] > head[1:]):
            return order[:k].astype(np.int64)
    queue = list(zip(values.tolist(), range(n), strict=True))
    if k * 64 <= n:
        _heap_select(queue, 0, k, n)
        _sort_heap(queue, 0, k)
    else:
        _nth_element(queue, 0, k - 1, n)
        _sort(queue, 0, k - 1)
    return np.array([idx for _, idx in queue[:k]], dtype=np.int64)


def _comp(x: tuple[float, int], y: tuple[float, int]) -> bool:
    a, b = x[0], y[0]
    return (a != a and b == b) or a > b


def _lg(n: int) -> int:
    return n.bit_length() - 1


def _move_median_to_first(q: list, result: int, a: int, b: int, c: int) -> None:
    if _comp(q[a], q[b]):
        if _comp(q[b], q[c]):
            pick = b
        elif _comp(q[a], q[c]):
            pick = c
        else:
            pick = a
    elif _comp(q[a], q[c]):
        pick = a
    elif _comp(q[b], q[c]):
        pick = c
    else:
        pick = b
    q[result], q[pick] = q[pick], q[result]


def _unguarded_partition(q: list, first: int, last: int, pivot: int) -> int:
    while True:
        while _comp(q[first], q[pivot]):
            first += 1
        last -= 1
        while _comp(q[pivot], q[last]):
            last -= 1
        if not first < last:
            return first
        q[first], q[last] = q[last], q[first]
        first += 1


def _unguarded_partition_pivot(q: list, first: int, last: int) -> int:
    mid = first + (last - first) // 2
    _move_median_to_first(q, first, first + 1, mid, last - 1)
    return _unguarded_partition(q, first + 1, last, first)


def _unguarded_linear_insert(q: list, last: int) -> None:
    val = q[last]
    nxt = last - 1
    while _comp(val, q[nxt]):
        q[last] = q[nxt]
        last = nxt
        nxt -= 1
    q[last] = val


def _insertion_sort(q: list, first: int, last: int) -> None:
    for i in range(first + 1, last):
        if _comp(q[i], q[first]):
            val = q[i]
            q[first + 1 : i + 1] = q[first:i]
            q[first] = val
        else:
            _unguarded_linear_insert(q, i)


def _final_insertion_sort(q: list, first: int, last: int) -> None:
    threshold = 16  # libstdc++ _S_threshold
    if last - first > threshold:
        _insertion_sort(q, first, first + threshold)
        for i in range(first + threshold, last):
            _unguarded_linear_insert(q, i)
    else:
        _insertion_sort(q, first, last)


def _adjust_heap(q: list, first: int, hole: int, length: int, value: tuple[float, int]) -> None:
    top = hole
    child = hole
    while child < (length - 1) // 2:
        child = 2 * (child + 1)
        if _comp(q[first + child], q[first + child - 1]):
            child -= 1
        q[first + hole] = q[first + child]
        hole = child
    if length % 2 == 0 and child == (length - 2) // 2:
        child = 2 * (child + 1)
        q[first + hole] = q[first + child - 1]
        hole = child - 1
    parent = (hole - 1) // 2  # __push_heap
    while hole > top and _comp(q[first + parent], value):
        q[first + hole] = q[first + parent]
        hole = parent
        parent = (hole - 1) // 2
    q[first + hole] = value


def _make_heap(q: list, first: int, last: int) -> None:
    length = last - first
    if length < 2:
        return
    parent = (length - 2) // 2
    while True:
        _adjust_heap(q, first, parent, length, q[first + parent])
        if parent == 0:
            return
        parent -= 1


def _pop_heap(q: list, first: int, last: int, result: int) -> None:
    value = q[result]
    q[result] = q[first]
    _adjust_heap(q, first, 0, last - first, value)


def _heap_select(q: list, first: int, middle: int, last: int) -> None:
    _make_heap(q, first, middle)
    for i in range(middle, last):
        if _comp(q[i], q[first]):
            _pop_heap(q, first, middle, i)


def _sort_heap(q: list, first: int, last: int) -> None:
    while last - first > 1:
        last -= 1
        _pop_heap(q, first, last, last)


def _introsort_loop(q: list, first: int, last: int, depth: int) -> None:
    while last - first > 16:
        if depth == 0:
            _heap_select(q, first, last, last)  # std::__partial_sort(first, last, last)
            _sort_heap(q, first, last)
            return
        depth -= 1
        cut = _unguarded_partition_pivot(q, first, last)
        _introsort_loop(q, cut, last, depth)
        last = cut


def _sort(q: list, first: int, last: int) -> None:
    if first != last:
        _introsort_loop(q, first, last, _lg(last - first) * 2)
        _final_insertion_sort(q, first, last)


def _nth_element(q: list, first: int, nth: int, last: int) -> None:
    if first == last or nth == last:
        return
    depth = _lg(last - first) * 2
    while last - first > 3:
        if depth == 0:
            _heap_select(q, first, nth + 1, last)
            q[first], q[nth] = q[nth], q[first]
            return
        depth -= 1
        cut = _unguarded_partition_pivot(q, first, last)
        if cut <= nth:
            first = cut
        else:
            last = cut
    _insertion_sort(q, first, last)


def mt19937_key_pos(bitgen: np.random.BitGenerator) -> tuple[np.ndarray, int]:
    """An MT19937 bit generator's key (a copy, ``uint32[624]``) and position, read from its C state.

    Its ``state`` property gives the same, but copies the key one element at a time (about 30 µs); a torch
    worker reads its streams after every batch (``adapters.engine._state``), so the struct
    (``uint32_t key[624]; int pos``) is copied in one go here (about 2 µs).

    Example:
        >>> bg = np.random.MT19937(5); key, pos = mt19937_key_pos(bg)
        >>> bool((key == bg.state["state"]["key"]).all()), pos == bg.state["state"]["pos"]
        (True, True)
    """
    raw = np.ctypeslib.as_array((ctypes.c_uint32 * (_MT_N + 1)).from_address(bitgen.ctypes.state_address)).copy()
    return raw[:_MT_N], int(raw[_MT_N].view(np.int32))


default_generator = Generator()
"""Stands in for ``torch.default_generator``.

torch seeds its default CPU generator from OS entropy at start-up (only a fresh
``torch.Generator()`` starts at 67280421310721), so this one is seeded with :meth:`Generator.seed`
on import too; call ``default_generator.manual_seed(s)`` where torch code calls ``torch.manual_seed(s)``.
"""
default_generator.seed()
