"""``LoadImagesAndLabels`` for MindSpore: upstream YOLOv5 v7.0's dataset, numpy out, no torch.

``indices`` and the pipeline's processes. train.py (``--image-weights``) rewrites ``dataset.indices``
in its own process before each epoch. What torch's DataLoader reads afterwards depends on where the
samples are made: with ``num_workers=0`` in the caller's process (it sees every rewrite); in fresh
workers of a plain loader (they see the rewrite made before their epoch); in the persistent workers of
``InfiniteDataLoader`` (they keep the copy they were forked with and never see it). The adapters
engine makes samples in processes it owns: its fresh workers are forked when the loop reaches an
epoch (as torch's), its persistent workers at construction (as torch's), but its ``num_workers=0``
loader process holds a copy taken at construction. So where torch would read the caller's value
(``num_workers=0``), :meth:`LoadImagesAndLabels.share_indices` puts ``indices`` in memory shared
with those processes, and a rewrite reaches them as it reaches torch's main process.

One thing cannot be mirrored: the engine starts epoch 0 when the pipeline is built (it computes the
first batch to learn the columns), where torch starts it at the first ``iter(loader)``. A rewrite
that torch would see in epoch 0 is therefore refused (``RuntimeError``) until epoch 0 has been
consumed; give epoch 0's indices to ``create_dataloader(..., indices=...)`` instead.
"""

from __future__ import annotations

import multiprocessing
import weakref

import numpy as np

from yolov5_core._collate import collate_fn, collate_fn4
from yolov5_core._dataset import YoloDatasetCore

__all__ = ["LoadImagesAndLabels"]


class _SharedIndices:
    """``indices`` in anonymous shared memory (inherited by forked processes): capacity, length, version."""

    def __init__(self, capacity: int, values) -> None:
        self.capacity = capacity
        self._buf = multiprocessing.RawArray("q", max(capacity, 1))
        self._meta = multiprocessing.RawArray("q", 3)  # length, version, samples read since construction
        self._view = np.frombuffer(self._buf, dtype=np.int64)
        self._cache: tuple[int, list] | None = None
        # Held by a rewrite (check + write) and by a sample's read (count + snapshot): a rewrite either
        # precedes a sample entirely or is refused because that sample was counted.
        self.lock = multiprocessing.Lock()
        self.write(values)

    def write(self, values) -> None:
        values = [int(v) for v in values]
        if len(values) > self.capacity:
            raise ValueError(
                f"LoadImagesAndLabels.indices: at most {self.capacity} entries (the dataset length) can be shared "
                f"with the pipeline's processes, got {len(values)}")
        self._view[: len(values)] = values
        self._meta[0] = len(values)
        self._meta[1] += 1

    @property
    def samples_read(self) -> int:
        return self._meta[2]

    def begin_sample(self) -> list:
        """Count one sample and return the indices it reads (one consistent snapshot)."""
        with self.lock:
            self._meta[2] += 1
            return self.read()

    def read(self) -> list:
        version = self._meta[1]
        if self._cache is None or self._cache[0] != version:
            self._cache = (version, self._view[: self._meta[0]].tolist())
        return self._cache[1]


class LoadImagesAndLabels(YoloDatasetCore):
    """YOLOv5 v7.0 ``LoadImagesAndLabels`` as a MindSpore ``GeneratorDataset`` source.

    :class:`yolov5_core.YoloDatasetCore` itself (same constructor, attributes — ``labels``,
    ``shapes``, ``batch_shapes``, ``indices``, ``mosaic``, ... — and random-stream order as upstream);
    ``__getitem__`` returns numpy ``(img uint8 (3, H, W), labels float32 (n, 6), im_file, shapes)``.
    ``collate_fn`` / ``collate_fn4`` are upstream's, in numpy. See the module docstring for how a
    rewrite of ``indices`` reaches the pipeline.

    Example:
        >>> ds = LoadImagesAndLabels('data/images/train', 320, augment=True, hyp=hyp)  # doctest: +SKIP
        >>> img, labels, path, shapes = ds[0]  # doctest: +SKIP
        >>> img.dtype, labels.dtype  # doctest: +SKIP
        (dtype('uint8'), dtype('float32'))
    """

    collate_fn = staticmethod(collate_fn)
    collate_fn4 = staticmethod(collate_fn4)

    _shared: _SharedIndices | None = None
    _pinned: list | None = None  # the indices the sample being made reads
    _pipeline = None  # weakref to the pipeline whose epoch 0 a rewrite must not follow

    @property
    def indices(self):
        """Positions ``__getitem__`` reads through (``range(n)`` until rewritten, as upstream)."""
        if self._pinned is not None:
            return self._pinned
        return self._indices if self._shared is None else self._shared.read()

    @indices.setter
    def indices(self, values) -> None:
        pipeline = self._pipeline() if self._pipeline is not None else None
        if pipeline is not None and pipeline.epochs_completed == 0:
            raise RuntimeError(
                "LoadImagesAndLabels.indices: rewritten before the pipeline's first epoch was consumed. torch's "
                "DataLoader would use the new indices in epoch 0, but the MindSpore pipeline (adapters' engine) "
                "started epoch 0 when create_dataloader built it, with the old ones. Pass epoch 0's indices as "
                "create_dataloader(..., indices=...) (a sequence, or a function of the dataset); rewrite them "
                "here from epoch 1 on.")
        if self._shared is not None:
            with self._shared.lock:
                if pipeline is not None:
                    self._check_not_ahead(pipeline)
                self._shared.write(values)
        else:
            self._indices = values

    def _check_not_ahead(self, pipeline) -> None:
        expected = pipeline.epochs_completed * self.samples_per_epoch
        ahead = self._shared.samples_read - expected
        if ahead > 0:
            raise RuntimeError(
                f"LoadImagesAndLabels.indices: rewritten after epoch {pipeline.epochs_completed - 1}, but the "
                f"MindSpore pipeline has already made {ahead} sample(s) of the next epoch with the old indices (one "
                "iterator over several epochs runs ahead into the next one; torch's num_workers=0 loader makes each "
                "sample when it is asked for). Create one iterator per epoch "
                "(ds.create_tuple_iterator(num_epochs=1, ...) after the rewrite), as train.py's `for epoch` loop does.")

    def __getitem__(self, index: int):
        """``(img uint8 (3, H, W), labels float32 (n, 6), im_file, shapes)``: see :class:`yolov5_core.YoloDatasetCore`."""
        if self._shared is None:
            return super().__getitem__(index)
        self._pinned = self._shared.begin_sample()
        try:
            return super().__getitem__(index)
        finally:
            self._pinned = None

    def share_indices(self, pipeline=None, *, samples_per_epoch: int | None = None) -> None:
        """Put ``indices`` in shared memory, so a rewrite here reaches processes forked from now on.

        Args:
            pipeline: the pipeline reading this dataset; rewrites before its epoch 0 was consumed are then
                refused (see the module docstring). ``None``: not guarded (yet).
            samples_per_epoch: samples the pipeline reads an epoch (its sampler's length; default
                ``len(self)``): a rewrite after the pipeline has read into the next epoch is refused.
        """
        if self._shared is None:
            self._shared = _SharedIndices(len(self), self._indices)
        self.samples_per_epoch = len(self) if samples_per_epoch is None else samples_per_epoch
        self.guard(pipeline)

    def guard(self, pipeline) -> None:
        """Refuse rewrites of ``indices`` until ``pipeline`` has completed an epoch (``None``: stop guarding)."""
        self._pipeline = None if pipeline is None else weakref.ref(pipeline)

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_pipeline", None)  # a weakref does not pickle; copies are not guarded
        state.pop("_pinned", None)
        if state.get("_shared") is not None:
            state["_indices"] = state.pop("_shared").read()  # a pickled copy is a snapshot, not shared
        return state
