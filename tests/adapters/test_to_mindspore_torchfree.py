"""to_mindspore with torch NOT installed: a plain dataset still gets torch's exact order and worker streams."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from tests._helpers.subproc import run_json

PLAIN = """
import random, numpy as np

class Plain:  # only __getitem__ / __len__: no torch anywhere
    def __len__(self):
        return 19

    def __getitem__(self, i):
        info = get_worker_info()  # adapters' in the torch-free child, torch's in the parent
        worker = np.array([-1, -1] if info is None else [info.id, info.seed])
        return {"i": i, "py": random.random(), "np": np.random.rand(2), "worker": worker}
"""

CHILD = (
    "from adapters import get_worker_info\n"
    + PLAIN
    + """
import json, sys
import adapters, porting
porting.seed_everything(SEED)  # seeds adapters.default_generator in place of torch's
ds = adapters.to_mindspore(Plain(), batch_size=4, shuffle=True, num_workers=NW, persistent_workers=PERSIST, GEN)
it = ds.create_tuple_iterator(num_epochs=2, output_numpy=True)
epochs = []
for _ in range(2):
    epochs.append([{k: v.tolist() for k, v in ds.structure.rebuild(row).items()} for row in it])
assert "torch" not in sys.modules
print(json.dumps(epochs))
"""
)


def _torch_expected(seed, num_workers, persistent, generator_seed):
    namespace: dict = {"get_worker_info": torch.utils.data.get_worker_info}
    exec(PLAIN, namespace)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    g = None if generator_seed is None else torch.Generator().manual_seed(generator_seed)
    loader = DataLoader(
        namespace["Plain"](),
        batch_size=4,
        shuffle=True,
        num_workers=num_workers,
        persistent_workers=persistent,
        generator=g,
    )
    return [[{k: v.tolist() for k, v in b.items()} for b in loader] for _ in range(2)]


@pytest.mark.parametrize("num_workers, persistent", [(0, False), (2, False), (2, True)])
@pytest.mark.parametrize("generator_seed", [None, 77], ids=["global", "seeded"])
def test_plain_dataset_without_torch_matches_torch(num_workers, persistent, generator_seed):
    gen = "" if generator_seed is None else f"seed={generator_seed}"
    code = (
        CHILD.replace("SEED", "3")
        .replace("NW", str(num_workers))
        .replace("PERSIST", str(persistent))
        .replace(", GEN", f", {gen}" if gen else "")
    )
    actual = run_json(code, block_torch=True)
    expected = json.loads(json.dumps(_torch_expected(3, num_workers, persistent, generator_seed)))
    assert actual == expected
