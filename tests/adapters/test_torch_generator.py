"""adapters Generator vs a real torch.Generator: every draw equal, and the state after it byte-identical."""

from __future__ import annotations

import copy
import pickle
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from adapters.torch_data import _torch_generator
from adapters.torch_data._torch_generator import DEFAULT_SEED, Generator, _topk_indices
from tests._helpers.subproc import run_json

SEEDS = st.integers(min_value=0, max_value=2**64 - 1)
FAST = settings(max_examples=60, deadline=None)


def pair(seed: int) -> tuple[Generator, torch.Generator]:
    return Generator().manual_seed(seed), torch.Generator().manual_seed(seed)


def assert_same_state(ours: Generator, theirs: torch.Generator, where: str = "") -> None:
    a, b = ours.get_state(), theirs.get_state().numpy()
    assert a.shape == b.shape == (5056,)
    diff = np.flatnonzero(a != b)
    assert diff.size == 0, f"state differs from torch {where} at bytes {diff[:8].tolist()}"


# ------------------------------------------------------------------ seeding and state


def test_fresh_generator_is_torchs_fresh_generator():
    ours, theirs = Generator(), torch.Generator()
    assert ours.initial_seed() == theirs.initial_seed() == DEFAULT_SEED
    assert_same_state(ours, theirs, "for a fresh Generator()")


@FAST
@given(seed=st.integers(min_value=-(2**63), max_value=2**64 - 1))
@example(seed=0)
@example(seed=2**32)
@example(seed=2**64 - 1)
@example(seed=-1)
@example(seed=-(2**63))
def test_manual_seed_state_and_initial_seed_match(seed):
    ours, theirs = pair(seed)
    assert ours.initial_seed() == theirs.initial_seed()
    assert_same_state(ours, theirs, f"after manual_seed({seed})")


@FAST
@given(seed=st.integers(min_value=0, max_value=2**32 - 1), high_word=st.integers(min_value=1, max_value=2**32 - 1))
def test_only_the_low_32_bits_of_the_seed_pick_the_stream(seed, high_word):
    ours = Generator().manual_seed(seed + (high_word << 32))
    theirs = torch.Generator().manual_seed(seed)
    assert ours.randperm(50).tolist() == torch.randperm(50, generator=theirs).tolist()


@pytest.mark.parametrize("bad", [1.5, True, "3", None])
def test_non_int_seed_is_refused_like_torch(bad):
    with pytest.raises(RuntimeError):  # torch refuses it too
        torch.Generator().manual_seed(bad)
    with pytest.raises(TypeError, match="manual_seed expected an int"):
        Generator().manual_seed(bad)


@pytest.mark.parametrize("bad", [2**64, -(2**63) - 1])
def test_out_of_range_seed_is_refused_like_torch(bad):
    with pytest.raises(ValueError):
        torch.Generator().manual_seed(bad)
    with pytest.raises(ValueError, match=r"seed must be in \[-2\*\*63, 2\*\*64 - 1\], got"):
        Generator().manual_seed(bad)


def test_seed_is_nondeterministic_and_reproducible():
    ours = Generator()
    first, second = ours.seed(), ours.seed()
    assert first != second  # 64 random bits each: equal with probability 2**-64
    assert ours.initial_seed() == second
    assert_same_state(ours, torch.Generator().manual_seed(second), "after seed()")


def test_default_generators_start_from_os_entropy_like_torch():
    # torch seeds its default CPU generator with getNonDeterministicRandom() at start-up; only a
    # fresh torch.Generator() starts at 67280421310721. Two fresh processes show both facts.
    # The module is loaded on its own (it imports nothing from the package) to skip the package's
    # heavy imports; what is tested is its import-time seeding.
    code = f"""
    import importlib.util, json, torch
    spec = importlib.util.spec_from_file_location("tg", {_torch_generator.__file__!r})
    tg = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tg)
    print(json.dumps([torch.initial_seed(), torch.Generator().initial_seed(),
                      tg.default_generator.initial_seed(), tg.Generator().initial_seed()]))
    """
    with ThreadPoolExecutor(2) as pool:  # two fresh interpreters at once: each imports torch and mindspore
        a, b = pool.map(run_json, [code, code])
    assert a[0] != b[0], "torch's default generator seed is the same in two processes"
    assert a[2] != b[2], "default_generator's seed is the same in two processes"
    assert a[1] == b[1] == a[3] == b[3] == DEFAULT_SEED


def test_state_round_trips_through_torch_mid_stream():
    theirs = torch.Generator().manual_seed(11)
    torch.randperm(700, generator=theirs)  # cursor mid-way through a 624-word block
    torch.randn(3, dtype=torch.float64, generator=theirs)  # may fill torch's cached normal sample
    ours = Generator.from_torch(theirs)
    assert ours.initial_seed() == 11
    assert_same_state(ours, theirs, "after from_torch")
    back = ours.to_torch()
    assert torch.equal(back.get_state(), theirs.get_state())
    expected = torch.randperm(1000, generator=theirs).tolist()
    assert ours.randperm(1000).tolist() == expected
    assert torch.randperm(1000, generator=back).tolist() == expected
    assert_same_state(ours, theirs, "after drawing on both")


def test_set_state_accepts_our_own_state():
    a = Generator().manual_seed(5)
    a.rand(1000)
    b = Generator().set_state(a.get_state())
    assert b.initial_seed() == 5
    assert b.randint(0, 1000, (50,)).tolist() == a.randint(0, 1000, (50,)).tolist()


def test_copies_and_pickles_carry_the_state():
    original = Generator().manual_seed(3)
    original.rand(700)
    clones = [copy.deepcopy(original), pickle.loads(pickle.dumps(original))]
    expected = original.randperm(100).tolist()
    for clone in clones:
        assert clone.initial_seed() == 3
        assert clone.randperm(100).tolist() == expected
        assert np.array_equal(clone.get_state(), original.get_state())


def test_set_state_refuses_bad_states():
    with pytest.raises(ValueError, match="expected 5056 bytes .* got 10"):
        Generator().set_state(np.zeros(10, np.uint8))
    state = Generator().get_state()
    state[8:12] = np.frombuffer(np.int32(700).tobytes(), np.uint8)  # left = 700 > 624
    with pytest.raises(ValueError, match="inconsistent MT19937 cursor left=700, next=0"):
        Generator().set_state(state)
    state = Generator().get_state()
    state[24 + 8 * 3 + 4] = 1  # word 3 gets bit 32 set
    with pytest.raises(ValueError, match=r"state\[3\]=.* does not fit in 32 bits"):
        Generator().set_state(state)
    with pytest.raises(TypeError, match="expects a CPU torch.Generator"):
        Generator.from_torch(object())


def test_only_cpu_device():
    with pytest.raises(ValueError, match="CPU generator only; got device='cuda'"):
        Generator("cuda")


# ------------------------------------------------------------------ draws, one kind at a time


@FAST
@given(seed=SEEDS, count=st.integers(min_value=1, max_value=700))
@example(seed=0, count=625)
def test_random_int64_seed_draws(seed, count):
    ours, theirs = pair(seed)
    for i in range(count):
        expected = int(torch.empty((), dtype=torch.int64).random_(generator=theirs).item())
        assert ours.random_() == expected, f"draw {i}"
    assert_same_state(ours, theirs, f"after {count} random_()")


@FAST
@given(seed=SEEDS, sizes=st.lists(st.integers(min_value=0, max_value=3000), min_size=1, max_size=4))
@example(seed=0, sizes=[0, 1, 2, 624, 625])
def test_randperm(seed, sizes):
    ours, theirs = pair(seed)
    for n in sizes:
        got = ours.randperm(n)
        assert got.dtype == np.int64
        assert got.tolist() == torch.randperm(n, generator=theirs).tolist(), f"randperm({n})"
        assert_same_state(ours, theirs, f"after randperm({n})")


@pytest.mark.parametrize("n", [100_000, 262_147])
def test_randperm_large(n):
    ours, theirs = pair(n)
    assert np.array_equal(ours.randperm(n), torch.randperm(n, generator=theirs).numpy())
    assert_same_state(ours, theirs)


@pytest.mark.slow
@pytest.mark.parametrize("n", [1_000_000, 4_999_999])
def test_randperm_very_large(n):
    ours, theirs = pair(n + 3)
    assert np.array_equal(ours.randperm(n), torch.randperm(n, generator=theirs).numpy())
    assert_same_state(ours, theirs)


def test_randperm_refuses_what_it_does_not_emulate():
    with pytest.raises(ValueError, match="n must be non-negative, got -1"):
        Generator().randperm(-1)
    with pytest.raises(NotImplementedError, match=r"randperm\(n=214748364\).*not emulated"):
        Generator().randperm(214748364)


RANGES = st.one_of(
    st.integers(min_value=1, max_value=2**28 - 1),  # random() % range
    st.integers(min_value=2**28, max_value=2**63),  # random64() % range
    st.sampled_from([1, 2, 2**28 - 1, 2**28, 2**28 + 1, 2**32 - 1, 2**32, 2**32 + 1, 2**63]),
)


@FAST
@given(seed=SEEDS, low=st.integers(min_value=-(2**62), max_value=2**62), span=RANGES, count=st.integers(0, 200))
def test_randint(seed, low, span, count):
    high = min(low + span, 2**63 - 1)
    ours, theirs = pair(seed)
    got = ours.randint(low, high, (count,))
    expected = torch.randint(low, high, (count,), generator=theirs)
    assert got.dtype == np.int64 and got.tolist() == expected.tolist()
    assert_same_state(ours, theirs, f"after randint({low}, {high})")


def test_randint_call_forms():
    ours, theirs = pair(3)
    assert ours.randint(10, (2, 3)).tolist() == torch.randint(10, (2, 3), generator=theirs).tolist()
    assert ours.randint(-5, 5, size=(4,)).tolist() == torch.randint(-5, 5, size=(4,), generator=theirs).tolist()
    assert ours.randint(high=7, size=5).tolist() == torch.randint(high=7, size=(5,), generator=theirs).tolist()
    assert ours.randint(low=2, high=7, size=(5,)).tolist() == torch.randint(2, 7, (5,), generator=theirs).tolist()
    assert_same_state(ours, theirs)
    with pytest.raises(RuntimeError, match="random_ expects 'from' to be less than 'to'"):
        torch.randint(5, 5, (1,))
    with pytest.raises(ValueError, match="random_ expects 'from' to be less than 'to', but got from=5 >= to=5"):
        ours.randint(5, 5, (1,))
    with pytest.raises(TypeError, match="randint needs high and size"):
        ours.randint(5)
    with pytest.raises(ValueError):  # "Overflow when unpacking long long"
        torch.randint(0, 2**63, (1,))
    with pytest.raises(ValueError, match="must be int64 values, got low=0, high=9223372036854775808"):
        ours.randint(0, 2**63, (1,))


@FAST
@given(seed=SEEDS, shape=st.lists(st.integers(0, 40), min_size=0, max_size=3), wide=st.booleans())
def test_rand(seed, shape, wide):
    ours, theirs = pair(seed)
    np_dtype, torch_dtype = (np.float64, torch.float64) if wide else (np.float32, torch.float32)
    got = ours.rand(tuple(shape), dtype=np_dtype)
    expected = torch.rand(tuple(shape), dtype=torch_dtype, generator=theirs).numpy()
    assert got.dtype == expected.dtype and got.shape == expected.shape
    assert np.array_equal(got, expected)
    assert_same_state(ours, theirs)


@FAST
@given(seed=SEEDS, count=st.integers(0, 3000), wide=st.booleans(), lambd=st.sampled_from([1.0, 0.5, 3.0]))
def test_exponential(seed, count, wide, lambd):
    ours, theirs = pair(seed)
    np_dtype, torch_dtype = (np.float64, torch.float64) if wide else (np.float32, torch.float32)
    got = ours.exponential(count, lambd=lambd, dtype=np_dtype)
    expected = torch.empty(count, dtype=torch_dtype).exponential_(lambd, generator=theirs).numpy()
    assert np.array_equal(got, expected)  # bitwise: numpy's vectorised log1p would fail this
    assert_same_state(ours, theirs)


# ------------------------------------------------------------------ multinomial


@st.composite
def weights(draw, max_n=300):
    n = draw(st.integers(1, max_n))
    # >= 1e-30 so that a float32 cast keeps every non-zero weight non-zero
    values = draw(st.lists(st.floats(1e-30, 1e3), min_size=n, max_size=n))
    zeros = draw(st.lists(st.booleans(), min_size=n, max_size=n))  # many exact zeros -> topk ties
    w = np.array([0.0 if z else v for v, z in zip(values, zeros, strict=True)])
    if not w.any():
        w[draw(st.integers(0, n - 1))] = 1.0
    return w


@settings(max_examples=150, deadline=None)
@given(seed=SEEDS, w=weights(), data=st.data(), wide=st.booleans(), replacement=st.booleans())
def test_multinomial_1d(seed, w, data, wide, replacement):
    w = w.astype(np.float64 if wide else np.float32)
    k = data.draw(st.integers(1, 3 * w.size if replacement else w.size))
    ours, theirs = pair(seed)
    got = ours.multinomial(w, k, replacement)
    expected = torch.multinomial(torch.from_numpy(w), k, replacement, generator=theirs)
    assert got.dtype == np.int64 and got.tolist() == expected.tolist()
    assert_same_state(ours, theirs)


@pytest.mark.parametrize("k", [2, 3, 5, 40, 63, 64, 65, 100, 128, 200])
def test_multinomial_without_replacement_zero_weight_ties(k):
    # k * 64 <= n takes torch's partial_sort branch, larger k its nth_element + sort branch;
    # asking for more samples than non-zero weights makes the zero-weight ties decide the tail.
    w = np.zeros(4096)
    w[[5, 100, 4000]] = [0.5, 2.0, 1.0]
    for seed in range(4):
        ours, theirs = pair(seed)
        got = ours.multinomial(w, k, replacement=False)
        assert got.tolist() == torch.multinomial(torch.from_numpy(w), k, False, generator=theirs).tolist()


def test_multinomial_2d_rows():
    rng = np.random.default_rng(0)
    w = rng.random((5, 50)) * (rng.random((5, 50)) > 0.5)
    w[:, 0] += 0.1
    ours, theirs = pair(9)
    for k, replacement in [(1, True), (1, False), (7, True), (30, False), (50, False)]:
        got = ours.multinomial(w, k, replacement)
        assert got.tolist() == torch.multinomial(torch.from_numpy(w), k, replacement, generator=theirs).tolist()
    assert_same_state(ours, theirs)


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.sampled_from([0.0, 1.0, 2.0, 0.5, float("nan"), -1.0]), min_size=1, max_size=400),
    data=st.data(),
)
def test_topk_tie_and_nan_order_matches_torch(values, data):
    # Direct check of the libstdc++ partial_sort / nth_element / sort copy on heavy ties and NaN.
    v = np.array(values)
    # small k reaches the partial_sort branch (k * 64 <= n), the rest nth_element + sort
    k = data.draw(st.one_of(st.integers(1, max(1, v.size // 64)), st.integers(1, v.size)))
    assert _topk_indices(v, k).tolist() == torch.topk(torch.from_numpy(v), k).indices.tolist()


@pytest.mark.parametrize("n", [1000, 5000])
@pytest.mark.parametrize("k", [2, 15, 16, 17, 40, 80, 200, 999])
def test_topk_ties_around_the_branch_switch(n, k):
    values = np.random.default_rng(n + k).choice([0.0, 1.0, 2.0, 3.0], size=n)
    assert _topk_indices(values, k).tolist() == torch.topk(torch.from_numpy(values), k).indices.tolist()


@pytest.mark.parametrize(
    ("w", "k", "replacement", "message"),
    [
        ([0.5, -1.0], 2, True, r"encountering probability entry < 0\): got -1.0 at row 0, index 1"),
        ([0.5, float("nan")], 2, True, r"encountering probability entry < 0\): got nan at row 0, index 1"),
        ([0.5, float("inf")], 2, True, r"encountering probability entry = infinity or NaN\): got inf"),
        ([0.0, 0.0], 2, True, r"sum of probabilities <= 0"),
        ([0.5, float("inf")], 1, False, r"contains either `inf`, `nan` or element < 0: got inf"),
        ([0.0, 0.0], 1, False, r"sum of probabilities <= 0\): rows \[0\] are all zero"),
        ([0.5, 0.5], 3, False, r"cannot sample n_sample > prob_dist.size\(-1\) samples without replacement"),
        ([0.5, 0.5], 0, True, r"cannot sample n_sample <= 0 samples"),
        ([[[0.5]]], 1, True, r"prob_dist must be 1 or 2 dim"),
    ],
)
def test_multinomial_refuses_what_torch_refuses(w, k, replacement, message):
    w = np.array(w, dtype=np.float64)
    with pytest.raises(RuntimeError):
        torch.multinomial(torch.from_numpy(w), k, replacement)
    with pytest.raises(ValueError, match=message):
        Generator().multinomial(w, k, replacement)


def test_multinomial_refuses_integer_weights():
    with pytest.raises(TypeError, match="float32/float64 weights, got dtype=int64"):
        Generator().multinomial(np.array([1, 2]), 1)


# ------------------------------------------------------------------ interleaved draws


OPS = st.one_of(
    st.tuples(st.just("random_")),
    st.tuples(st.just("randperm"), st.integers(0, 1500)),
    st.tuples(st.just("randint"), st.integers(-100, 100), RANGES, st.integers(0, 40)),
    st.tuples(st.just("rand"), st.integers(0, 40), st.booleans()),
    st.tuples(st.just("multinomial"), weights(max_n=60), st.integers(1, 60), st.booleans()),
)


def _apply(op, ours: Generator, theirs: torch.Generator):
    kind, *args = op
    if kind == "random_":
        return ours.random_(), int(torch.empty((), dtype=torch.int64).random_(generator=theirs))
    if kind == "randperm":
        return ours.randperm(args[0]).tolist(), torch.randperm(args[0], generator=theirs).tolist()
    if kind == "randint":
        low, span, count = args
        high = min(low + span, 2**63 - 1)
        return ours.randint(low, high, (count,)).tolist(), torch.randint(low, high, (count,), generator=theirs).tolist()
    if kind == "rand":
        count, wide = args
        dtypes = (np.float64, torch.float64) if wide else (np.float32, torch.float32)
        return ours.rand(count, dtypes[0]).tolist(), torch.rand(count, dtype=dtypes[1], generator=theirs).tolist()
    w, k, replacement = args
    k = k if replacement else min(k, w.size)
    return (
        ours.multinomial(w, k, replacement).tolist(),
        torch.multinomial(torch.from_numpy(w), k, replacement, generator=theirs).tolist(),
    )


@settings(max_examples=80, deadline=None)
@given(seed=SEEDS, ops=st.lists(OPS, min_size=1, max_size=12))
def test_any_sequence_of_draws_stays_in_lockstep(seed, ops):
    ours, theirs = pair(seed)
    for i, op in enumerate(ops):
        got, expected = _apply(op, ours, theirs)
        assert got == expected, f"op {i}: {op[0]}"
        assert_same_state(ours, theirs, f"after op {i} ({op[0]})")


@pytest.mark.slow
@settings(max_examples=2000, deadline=None)
@given(seed=SEEDS, ops=st.lists(OPS, min_size=1, max_size=30))
def test_any_sequence_of_draws_stays_in_lockstep_exhaustive(seed, ops):
    ours, theirs = pair(seed)
    for i, op in enumerate(ops):
        got, expected = _apply(op, ours, theirs)
        assert got == expected, f"op {i}: {op[0]}"
    assert_same_state(ours, theirs)
