"""Fetch one batch the way torch's ``_MapDatasetFetcher`` / ``_IterableDatasetFetcher`` do."""

from __future__ import annotations

from adapters.engine._errors import wrap_exception

__all__ = ["fetch_map", "fetch_iterable", "collate"]


def fetch_map(dataset, index, auto_collation: bool, where: str):
    """Return the samples for ``index`` (a batch of indices, or one index without auto-collation).

    Uses ``dataset.__getitems__`` when the dataset defines it (as torch does). An error is re-raised
    with the sample index in ``where``.
    """
    if auto_collation:
        getitems = getattr(dataset, "__getitems__", None)
        if getitems:
            try:
                return getitems(index)
            except Exception as exc:
                raise wrap_exception(exc, f"dataset.__getitems__({list(index)!r}) for {where}") from None
        data = []
        for i in index:
            try:
                data.append(dataset[i])
            except Exception as exc:
                raise wrap_exception(exc, f"dataset[{i!r}] (sample of {where})") from None
        return data
    try:
        return dataset[index]
    except Exception as exc:
        raise wrap_exception(exc, f"dataset[{index!r}] ({where})") from None


def fetch_iterable(ds_iter, index, auto_collation: bool, drop_last: bool, where: str):
    """Take the next batch from ``ds_iter``; raise StopIteration where torch's fetcher does."""
    try:
        if not auto_collation:
            return next(ds_iter)
        data = []
        for _ in index:
            try:
                data.append(next(ds_iter))
            except StopIteration:
                break
    except StopIteration:
        raise
    except Exception as exc:
        raise wrap_exception(exc, f"next(iter(dataset)) ({where})") from None
    if len(data) == 0 or (drop_last and len(data) < len(index)):
        raise StopIteration
    return data


def collate(collate_fn, data, where: str):
    """Apply ``collate_fn``; an error names the batch."""
    try:
        return collate_fn(data)
    except Exception as exc:
        raise wrap_exception(exc, f"collate_fn ({where})") from None
