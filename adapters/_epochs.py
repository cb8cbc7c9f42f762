"""The main-process side of a DataLoader epoch: the base seed and the batches of indices.

torch's DataLoader, on every new iterator (every epoch unless workers persist), calls
``iter(index_sampler)``, then draws ``base_seed`` from ``loader.generator`` (or torch's global
generator), then consumes the sampler to its end. The worker seeds derive from ``base_seed``.

:class:`EpochPlanner` replays exactly that from a snapshot taken when ``to_mindspore`` is called,
inside an isolated copy of the global streams, so every MindSpore worker process computes the
same plan without talking to the main process and without disturbing its own streams.
"""

from __future__ import annotations

import copy
import dataclasses

from adapters import _torch_generator
from adapters._rng_streams import StreamState, capture_streams, restore_streams

__all__ = ["EpochPlan", "EpochPlanner", "draw_base_seed", "call_set_epoch", "copy_sampling_state"]


@dataclasses.dataclass(frozen=True)
class EpochPlan:
    """One epoch as the main process of torch's DataLoader sees it."""

    epoch: int
    base_seed: int
    batches: list | None  # index batches (map-style); None for an IterableDataset


def draw_base_seed(generator, backend: str) -> int:
    """Draw the int64 seed torch's DataLoader iterator draws, from ``generator`` or the global one."""
    if backend == "torch":
        import torch

        return int(torch.empty((), dtype=torch.int64).random_(generator=generator).item())
    gen = generator if generator is not None else _torch_generator.default_generator
    return int(gen.random_())


def call_set_epoch(samplers, epoch: int) -> None:
    """Call ``set_epoch(epoch)`` on the first of ``samplers`` that has it (e.g. DistributedSampler)."""
    for sampler in samplers:
        if callable(getattr(sampler, "set_epoch", None)):
            sampler.set_epoch(epoch)
            return


def copy_sampling_state(spec):
    """Deep-copy ``(sampler, index_sampler, generator)`` in one go, keeping their shared identities.

    BatchSampler → sampler → generator is ``loader.generator``: copied together they stay one object,
    so the copy draws exactly as the loader would, and iterating the loader does not disturb it.
    """
    return copy.deepcopy((spec.sampler, spec.index_sampler, spec.generator))


class EpochPlanner:
    """Replays the main process's per-epoch draws from a snapshot; memoises recent epochs.

    Args:
        spec: the resolved :class:`~adapters._spec.LoaderSpec`.
        streams: global stream states at snapshot time (what ``generator=None`` draws from).
        set_epoch: call ``sampler.set_epoch(e)`` before epoch ``e``, as a torch training loop does.
    """

    def __init__(self, spec, streams: StreamState, *, set_epoch: bool) -> None:
        self._sampler, self._index_sampler, self._generator = copy_sampling_state(spec)
        self._backend = spec.backend
        self._kind = spec.kind
        self._persistent = spec.persistent_workers or spec.continuous
        self._set_epoch = set_epoch
        self._streams = streams
        self._plans: dict[int, EpochPlan] = {}
        self._next_epoch = 0
        self._base_seed: int | None = None

    def plan(self, epoch: int) -> EpochPlan:
        """Return epoch ``epoch``'s plan, replaying any earlier epochs not yet computed."""
        if epoch in self._plans:
            return self._plans[epoch]
        if epoch < self._next_epoch:
            raise RuntimeError(f"epoch {epoch} was already replayed and forgotten (next is {self._next_epoch})")
        while self._next_epoch <= epoch:
            plan = self._replay_one(self._next_epoch)
            self._plans[plan.epoch] = plan
            self._next_epoch += 1
        for old in [e for e in self._plans if e < epoch - 1]:
            del self._plans[old]  # keep memory flat over many epochs
        return self._plans[epoch]

    def _replay_one(self, epoch: int) -> EpochPlan:
        saved = capture_streams()
        restore_streams(self._streams)
        try:
            if self._set_epoch:
                call_set_epoch((self._sampler, self._index_sampler), epoch)
            if self._kind == "iterable":
                it = None
            else:
                it = iter(self._index_sampler)  # before the seed draw, as torch does
            if self._base_seed is None or not self._persistent:
                self._base_seed = draw_base_seed(self._generator, self._backend)
            # Exhaust the sampler, as torch's loop does (RandomSampler's trailing draw happens here).
            batches = None if it is None else list(it)
            self._streams = capture_streams()
        finally:
            restore_streams(saved)
        return EpochPlan(epoch, self._base_seed, batches)
