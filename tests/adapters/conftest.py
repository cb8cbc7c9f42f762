"""Test hygiene for suites that run torch DataLoaders and MindSpore pipelines in one process."""

import gc

import pytest


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
