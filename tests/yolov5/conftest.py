"""Session fixtures for the YOLOv5 tests: upstream's modules and the synthetic datasets."""

from __future__ import annotations

import pytest

from yolov5_core import SyntheticDataset, make_synthetic_dataset


def pytest_collection_modifyitems(config, items):
    # Every test that compares against upstream is selectable with `-m upstream` (and deselectable).
    for item in items:
        if "upstream" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.upstream)


@pytest.fixture(scope="session")
def upstream():
    """Upstream YOLOv5 v7.0's ``dataloaders``/``augmentations``/``general`` modules (fails if not installed)."""
    from yolov5_pt.upstream import load_upstream

    return load_upstream()


@pytest.fixture(scope="session")
def synthetic_dataset(tmp_path_factory) -> SyntheticDataset:
    """16 clean images (2 backgrounds), made once per session. Do not modify: copy it with ``copy_to``."""
    return make_synthetic_dataset(tmp_path_factory.mktemp("synthetic") / "ds", n_images=16, seed=0)


@pytest.fixture(scope="session")
def faulty_dataset(tmp_path_factory) -> SyntheticDataset:
    """The clean dataset plus every fault of the manifest. Pristine: scans rewrite files, so use ``copy_to``."""
    return make_synthetic_dataset(tmp_path_factory.mktemp("faulty") / "ds", n_images=16, seed=0, faults=True)
