"""Test hygiene for every suite: torch DataLoaders and MindSpore pipelines run in one process."""

import gc
import os
import sys

import pytest

# Make `tests._helpers` importable regardless of how pytest was started.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="session", autouse=True)
def _freeze_import_time_objects():
    # Everything alive now (modules, torch, MindSpore) is moved out of the collector's reach, so
    # the per-test collection below only walks what the tests allocate.
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


@pytest.fixture(autouse=True)
def _collect_garbage_between_tests():
    # torch's DataLoader forks its workers from this process, and a forked worker may run the
    # cyclic garbage collector on whatever garbage it inherited: an earlier test's MindSpore
    # iterator or failed torch iterator would then be finalised inside torch's worker (aborting
    # it, or stopping that iterator's own workers). Collect here, in the test process, first.
    yield
    gc.collect()
