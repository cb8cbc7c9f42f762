"""The samplers run where torch cannot be imported, and still give torch's DataLoader order."""

from __future__ import annotations

import torch
import torch.utils.data as tud
from torch.utils.data._utils.worker import _generate_state

from tests._helpers.subproc import run_json

SEED, SIZE, BATCH, EPOCHS = 20240521, 29, 4, 3

CHILD = f"""
import json, sys
try:
    import torch
except ImportError:
    pass
else:
    raise SystemExit("torch is importable: this test would prove nothing")

from adapters.torch_data._samplers import BatchSampler, RandomSampler
from adapters.torch_data._torch_generator import Generator, default_generator
from adapters.torch_data._worker_seeding import worker_seeds


class MapDataset:  # only __getitem__ and __len__, as a user's dataset may be
    def __len__(self):
        return {SIZE}

    def __getitem__(self, index):
        return 1000 + index


def run(generator):
    data = MapDataset()
    batches = BatchSampler(RandomSampler(data, generator=generator), {BATCH}, False)
    out = []
    for _ in range({EPOCHS}):
        # a DataLoader iterator draws its base seed before the sampler draws
        base_seed = (generator or default_generator).random_()
        out.append({{"base_seed": base_seed, "batches": [[data[i] for i in b] for b in batches]}})
    return out


seeded = run(Generator().manual_seed({SEED}))
default_generator.manual_seed({SEED})
on_default = run(None)
try:
    Generator().to_torch()
except ImportError as exc:
    to_torch_error = type(exc).__name__
else:
    to_torch_error = None
print(json.dumps({{
    "seeded": seeded,
    "on_default": on_default,
    "worker_numpy_seed": worker_seeds(seeded[0]["base_seed"], 1).numpy.tolist(),
    "to_torch_error": to_torch_error,
    "torch_modules": sorted(m for m in sys.modules if m == "torch" or m.startswith("torch.")),
}}))
"""


class MapDataset(tud.Dataset):
    def __len__(self):
        return SIZE

    def __getitem__(self, index):
        return 1000 + index


def torch_epochs(loader):
    out = []
    for _ in range(EPOCHS):
        it = iter(loader)
        out.append({"base_seed": it._base_seed, "batches": [b.tolist() for b in it]})
    return out


def test_torch_free_sampling_reproduces_torchs_dataloader():
    child = run_json(CHILD, block_torch=True)
    assert child["torch_modules"] == []
    assert child["to_torch_error"] in ("ImportError", "ModuleNotFoundError")

    seeded = tud.DataLoader(MapDataset(), batch_size=BATCH, shuffle=True, generator=torch.Generator().manual_seed(SEED))
    assert child["seeded"] == torch_epochs(seeded)

    saved = torch.default_generator.get_state()
    try:
        torch.manual_seed(SEED)
        assert child["on_default"] == torch_epochs(tud.DataLoader(MapDataset(), batch_size=BATCH, shuffle=True))
    finally:
        torch.default_generator.set_state(saved)

    assert child["worker_numpy_seed"] == _generate_state(child["seeded"][0]["base_seed"], 1)
