"""The messages the pipeline's processes exchange, as named types (one place for their fields).

Three conversations, each over its own pipe (:mod:`adapters.engine._transport` carries them):

* engine (the caller's MindSpore source thread) <-> loader process (torch's main-process side):
  :class:`StartEpoch`, :class:`MoreIndices`, :class:`Chunk`, :class:`Credit`, :class:`Spawn`,
  :class:`Settle`, :class:`Probe`, :class:`SyncState`, :class:`TakeSnapshot`, :class:`Restore`,
  :class:`Exit` in; :class:`ProcessUp` (first), :class:`Snapshot`, :class:`Seed`, :class:`Plan`,
  :class:`Indices`, :class:`Batch`, :class:`End`, :class:`Settled`, :class:`WorkerStarted`, :class:`Error` out;
* engine <-> each torch worker: :class:`Begin`, :class:`Task`, :class:`Next`, :class:`Exit` in;
  :class:`Ready`, :class:`Batch`, :class:`End`, :class:`Error` out;
* engine <-> a spawner (forks fresh workers from the training loop's state): :class:`Spawn`,
  :class:`Exit` in; :class:`ProcessUp` (first), :class:`WorkerStarted` out.

A message is matched with ``isinstance``, never by a name string or a position.
"""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = [
    "Batch",
    "Begin",
    "Chunk",
    "Credit",
    "End",
    "Error",
    "Exit",
    "Indices",
    "MoreIndices",
    "Next",
    "Plan",
    "Probe",
    "ProcessUp",
    "Ready",
    "Restore",
    "Seed",
    "Settle",
    "Settled",
    "Snapshot",
    "Spawn",
    "StartEpoch",
    "SyncState",
    "TakeSnapshot",
    "Task",
    "WorkerStarted",
]


# ------------------------------------------------------------------ engine -> loader process


class StartEpoch(NamedTuple):
    """Begin ``epoch`` as ``iter(loader)`` does, and send ``what``.

    ``what``: ``"seed"`` (the base seed only: IterableDataset with workers), ``"lazyplan"`` (the base seed
    and the first ``n_batches`` index batches; more on :class:`Chunk`), ``"plan"`` (``n_batches`` index batches,
    all when ``None``), ``"stream"`` (``num_workers=0``: whole batches, ``n_batches`` of them or to the end).
    """

    epoch: int
    what: str
    n_batches: int | None  # (not `count`: a field shadowing tuple.count)
    skip: int = 0  # "stream": make this many batches first without sending them (a resumed epoch)


class MoreIndices(NamedTuple):
    """Continuous modes (one torch iterator over all epochs): more of the same iterator, as :class:`StartEpoch`."""

    epoch: int
    what: str
    n_batches: int | None


class Chunk(NamedTuple):
    """Draw up to ``n_batches`` more index batches of the running epoch (answered by :class:`Indices`)."""

    n_batches: int


class Credit(NamedTuple):
    """``num_workers=0``: the engine took ``nbytes`` of the stream off the pipe (room for more)."""

    nbytes: int


class Spawn(NamedTuple):
    """Fork ``n_workers`` torch workers and hand their pipes over (answered by :class:`WorkerStarted` each).

    ``epoch``: a spawner first runs the loop's ``set_epoch(epoch)`` on its samplers (``None``: not at all).
    """

    n_workers: int
    epoch: int | None = None


class Settle(NamedTuple):
    """The verdict on a played epoch: torch had drawn ``target`` index batches (``finished``: to the end)."""

    target: int
    finished: bool


class Probe(NamedTuple):
    """Compute epoch 0's first batch in a throwaway copy of the loader (answered by :class:`Batch` or :class:`End`)."""


class SyncState(NamedTuple):
    """Attributes the training loop changed on its objects since the last epoch began, to apply before the next.

    ``changes``: ``[(owner, path, value)]`` with ``owner`` ``"dataset"`` or ``"sampler"``/``"batch_sampler"`` and
    ``path`` a tuple of attribute names; ``value`` is :data:`DELETED` for a removed attribute.
    """

    changes: list


class TakeSnapshot(NamedTuple):
    """Answer :class:`Snapshot` with the loader's state now (between two epochs: a resumable position)."""


class Restore(NamedTuple):
    """Put the loader where a saved state's anchor was (``adapters.engine._state``); answered by :class:`Settled`.

    ``check``: the samplers' plain attributes to compare when the next epoch begins (``None``: no check).
    """

    loader: dict
    check: dict | None


class Exit(NamedTuple):
    """Stop (every process of the pipeline understands it)."""


# ------------------------------------------------------------------ loader process -> engine


class Seed(NamedTuple):
    """The base seed of ``epoch`` (``what="seed"``)."""

    epoch: int
    base_seed: int


class Plan(NamedTuple):
    """The base seed and index batches of ``epoch``; ``done``: the sampler ended (``None``: not asked)."""

    epoch: int
    base_seed: int
    batches: list
    done: bool | None = None


class Snapshot(NamedTuple):
    """The loader's state before ``iter(loader)`` of an epoch or pass (sent first for every :class:`StartEpoch`),
    or now (:class:`TakeSnapshot`); ``state["check"]``: the samplers' plain attributes after ``set_epoch``."""

    state: dict


class Indices(NamedTuple):
    """More index batches of the running epoch (answer to :class:`Chunk`); ``done``: the sampler ended."""

    batches: list
    done: bool


class Settled(NamedTuple):
    """The loader is where torch's would be after the epoch (``committed``: the played epoch was kept as is)."""

    committed: bool


class ProcessUp(NamedTuple):
    """A process forked from the training loop's process (the loader, a spawner) runs its loop: the fork completed."""

    pid: int


class WorkerStarted(NamedTuple):
    """Torch worker ``worker_id`` runs as ``pid``; its pipe's descriptor follows on the same connection."""

    worker_id: int
    pid: int


# ------------------------------------------------------------------ engine -> torch worker


class Begin(NamedTuple):
    """A torch iterator begins ``epoch`` (``restart``: fresh worker, seed its streams from ``base_seed``)."""

    epoch: int
    base_seed: int
    restart: bool
    streams: dict | None = None  # a resumed worker: its streams, put back after seeding and worker_init_fn
    capture: bool = False  # send the streams with every result (a resumable position needs them)


class Task(NamedTuple):
    """Fetch and collate batch ``k`` from ``indices`` (map-style); ``where`` names it in errors.

    ``indices``: what the batch sampler yielded (one index without auto-collation), torch's ``possibly_batched_index``.
    """

    k: int
    indices: Any  # (not `index`: a field shadowing tuple.index)
    where: str


class Next(NamedTuple):
    """Take the next batch ``k`` from the worker's dataset iterator (IterableDataset)."""

    k: int
    where: str


# ------------------------------------------------------------------ results (workers and loader)


class Ready(NamedTuple):
    """The worker began its epoch (streams seeded, ``worker_init_fn`` done); ``streams``: them then, if asked."""

    worker_id: int
    streams: bytes | None = None  # pickled (Begin.capture)


class Batch(NamedTuple):
    """Batch ``k``, collated (numpy leaves), and how many samples it holds (``None``: no auto-collation)."""

    k: int
    batch: Any
    samples: int | None
    streams: bytes | None = None  # a worker's random streams after making it, pickled (Begin.capture)


class End(NamedTuple):
    """The stream ended after ``n_batches`` batches (an IterableDataset shard, or the loader's stream)."""

    n_batches: int
    streams: bytes | None = None  # a worker's random streams at its shard's end, pickled (Begin.capture)


class Error(NamedTuple):
    """User code raised: a :class:`~adapters.engine._errors.SourceError` carrying the original exception."""

    error: BaseException


DELETED = ("<deleted attribute>",)  # a SyncState value: the attribute was removed
