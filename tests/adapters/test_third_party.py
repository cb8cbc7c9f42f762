"""Real third-party loader code as it ships, against torch's DataLoader in the same loop shapes.

* Hugging Face ``DataCollatorForLanguageModeling(seed=...)`` (transformers, a tokenizer built in memory: nothing
  is downloaded): it creates its generator once per process — the main one with ``num_workers=0``, keyed on
  ``os.getpid()`` and ``multiprocessing.current_process().name`` — so the process that plays torch's main side
  must look like it, epoch after epoch.
* timm's ``MultiEpochsDataLoader`` and ultralytics' ``InfiniteDataLoader``: one torch iterator over all epochs,
  started at the first ``iter()``. Neither package imports here (both need torchvision, whose wheel on this index
  is a CUDA build that does not import on CPU torch): the classes are taken from the wheels ``scripts/setup.sh``
  downloads into ``.venv/third_party`` — their own source, compiled as is — with torch as their only import.
"""

from __future__ import annotations

import ast
import glob
import os
import zipfile

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import adapters
from porting import assert_equivalent
from tests.adapters._torch_side import RandomAugDataset, seed_all, to_numpy_tree

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EPOCHS = 3
WORKERS = [(0, False), (2, False), (2, True)]
WORKER_IDS = ["workers0", "workers2", "workers2-persistent"]


def _walk(ds, shape, epochs=EPOCHS):
    rebuild = ds.structure.rebuild
    if shape == "one_iterator":
        it = ds.create_tuple_iterator(num_epochs=epochs, output_numpy=True)
        return [[rebuild(r) for r in it] for _ in range(epochs)]
    if shape == "tutorial_map":
        first = ds.get_col_names()[0]
        mapped = ds.map(operations=lambda x: x, input_columns=[first])
        return [[rebuild(list(r)) for r in mapped.create_tuple_iterator(output_numpy=True)] for _ in range(epochs)]
    return [[rebuild(r) for r in ds.create_tuple_iterator(output_numpy=True)] for _ in range(epochs)]


# --------------------------------------------------------------------------- Hugging Face collators


def _mlm_collator():
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"[PAD]": 0, "[UNK]": 1, "[MASK]": 2, "[CLS]": 3, "[SEP]": 4, **{f"w{i}": 5 + i for i in range(40)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="[PAD]",
        mask_token="[MASK]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
    )
    return transformers.DataCollatorForLanguageModeling(fast, mlm_probability=0.3, seed=7)


class _Sentences(torch.utils.data.Dataset):
    def __len__(self):
        return 12

    def __getitem__(self, i):
        return {"input_ids": [5 + (i * 7 + j) % 40 for j in range(3 + i % 5)]}


@pytest.mark.parametrize("num_workers, persistent", WORKERS, ids=WORKER_IDS)
@pytest.mark.parametrize("shape", ["one_iterator", "iterator_per_epoch", "tutorial_map"])
def test_hugging_face_seeded_mlm_collator(shape, num_workers, persistent):
    def make():
        return DataLoader(
            _Sentences(),
            batch_size=4,
            collate_fn=_mlm_collator(),
            num_workers=num_workers,
            persistent_workers=persistent,
        )

    loader = make()
    expected = [[to_numpy_tree(dict(b)) for b in loader] for _ in range(EPOCHS)]
    ds = adapters.to_mindspore(make())
    actual = _walk(ds, shape)
    ds.close()
    assert_equivalent(actual, expected, rtol=0, atol=0)
    # the same samples every epoch: the masks differ from epoch to epoch where torch's generator goes on (its main
    # process, persistent workers) and repeat where each epoch's fresh workers make it anew
    labels = [np.concatenate([b["labels"].ravel() for b in e]) for e in expected]
    assert (not np.array_equal(labels[0], labels[1])) == (num_workers == 0 or persistent)


# --------------------------------------------------------------------------- timm, ultralytics


def _wheel(name: str) -> str:
    found = sorted(glob.glob(os.path.join(ROOT, ".venv", "third_party", f"{name}-*.whl")))
    if not found:
        pytest.skip(f"{name}'s wheel is not in .venv/third_party (scripts/setup.sh downloads it)")
    return found[-1]


def _classes_from_wheel(name: str, member: str, classes: list[str], namespace: dict) -> dict:
    """Compile the named classes of ``member`` in the package's own wheel, unchanged, into ``namespace``."""
    with zipfile.ZipFile(_wheel(name)) as z:
        source = z.read(member).decode()
    body = [n for n in ast.parse(source).body if isinstance(n, ast.ClassDef) and n.name in classes]
    assert sorted(n.name for n in body) == sorted(classes), f"{member} of {name} no longer defines {classes}"
    module = ast.Module(body=list(body), type_ignores=[])  # (a list of stmt, as ast types it)
    exec(compile(module, f"{name}:{member}", "exec"), namespace)
    return namespace


def _timm_loader_class():
    ns = _classes_from_wheel(
        "timm",
        "timm/data/loader.py",
        ["MultiEpochsDataLoader", "_RepeatSampler"],
        {"torch": torch, "__name__": "timm.data.loader"},
    )
    return ns["MultiEpochsDataLoader"]


def _ultralytics_loader_class():
    from collections.abc import Iterator
    from typing import Any

    from torch.utils.data import dataloader

    ns = _classes_from_wheel(
        "ultralytics",
        "ultralytics/data/build.py",
        ["InfiniteDataLoader", "_RepeatSampler"],
        {
            "torch": torch,
            "dataloader": dataloader,
            "TORCH_2_0": True,
            "Any": Any,
            "Iterator": Iterator,
            "__name__": "ultralytics.data.build",
        },
    )
    return ns["InfiniteDataLoader"]


LAZY = {"timm": _timm_loader_class, "ultralytics": _ultralytics_loader_class}


@pytest.mark.parametrize("num_workers", [0, 2])
@pytest.mark.parametrize("shape", ["one_iterator", "iterator_per_epoch", "tutorial_map"])
@pytest.mark.parametrize("package", sorted(LAZY))
def test_lazily_started_multi_epoch_loaders_are_accepted_as_they_ship(package, shape, num_workers):
    cls = LAZY[package]()

    def make():
        return cls(
            RandomAugDataset(14),
            batch_size=4,
            shuffle=True,
            num_workers=num_workers,
            generator=torch.Generator().manual_seed(5),
        )

    seed_all(0)
    loader, ms_loader = make(), make()
    assert loader.iterator is None  # these releases start their iterator at the first iter()
    ds = adapters.to_mindspore(ms_loader)
    expected = [[to_numpy_tree(b) for b in loader] for _ in range(EPOCHS)]
    actual = _walk(ds, shape)
    ds.close()
    assert [len(e) for e in expected] == [4] * EPOCHS
    assert_equivalent(actual, expected, rtol=0, atol=0)
    if num_workers:  # one torch iterator over all epochs: worker streams go on across epochs
        seeds = [{int(s) for b in e for s in b["seed"]} for e in expected]
        assert seeds[0] == seeds[1] == seeds[2]


@pytest.mark.parametrize("package", sorted(LAZY))
def test_a_multi_epoch_loader_already_started_is_refused_by_name(package):
    loader = LAZY[package]()(RandomAugDataset(8), batch_size=4, shuffle=True)
    next(iter(loader))
    with pytest.raises(TypeError, match="has already started its iterator"):
        adapters.to_mindspore(loader)


def test_a_batch_of_a_namedtuple_made_inside_a_function_as_torch_yields_it_at_num_workers_0():
    # torch's own test_dataloader.py builds its NamedTuple datasets inside the test: at num_workers=0 torch never
    # pickles a batch, so a class pickle cannot find by name must cross the port's processes too.
    from typing import NamedTuple

    class Sample(NamedTuple):
        data: np.ndarray | np.float32  # a sample's float32, the batch's array
        label: int | list[int]  # a sample's int, the batch's list

    class Pair:
        def __init__(self, left, right):
            self.left, self.right = left, right

        def __eq__(self, other):
            return type(other) is Pair and (self.left, self.right) == (other.left, other.right)

    class Data(torch.utils.data.Dataset):
        def __len__(self):
            return 6

        def __getitem__(self, i):
            return Sample(np.float32(i), i)

    def collate(batch):
        return {
            "batch": Sample(np.stack([b.data for b in batch]), [b.label for b in batch]),
            "pair": Pair(len(batch), batch[0].label),
        }

    loader = DataLoader(Data(), batch_size=4, collate_fn=collate)
    expected = [to_numpy_tree(b) for b in loader]
    ds = adapters.to_mindspore(DataLoader(Data(), batch_size=4, collate_fn=collate))
    actual = list(ds.iter_batches(1, output_numpy=True))
    ds.close()
    assert [type(b["batch"]) for b in actual] == [Sample, Sample] and actual[1]["pair"] == Pair(2, 4)
    assert [b["pair"] for b in actual] == [b["pair"] for b in expected]
    assert_equivalent([b["batch"] for b in actual], [b["batch"] for b in expected], rtol=0, atol=0)
