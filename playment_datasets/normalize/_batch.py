"""The rows of many jobs waiting for one flush, merged as each job is added.

A job's rows arrive per table as a list of row tuples or as one list per column
(:class:`~playment_datasets.normalize._base.Columns`). Keeping those per-job containers
until the flush left a dozen tracked objects per job for the cyclic garbage collector
to walk again and again; merging them at once into one list per column leaves it next
to nothing (the values are strings, numbers and None, which it does not track), and the
flush converts each column with one ``pa.array``.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import repeat
from typing import Any

import pyarrow as pa

from playment_datasets.normalize._base import (
    _EMPTY,
    _TYPES,
    ARROW_TABLES,
    Columns,
    append_row,
    column_array,
)
from playment_datasets.schema import TABLE_NAMES, TABLES

#: Where one job's rows lie in a :class:`BatchRows`: table name → (start, end).
Span = dict[str, tuple[int, int]]


class BatchRows:
    """One store per table: full-width columns (``job_id`` first), or Arrow tables."""

    __slots__ = ("_columns", "_arrow")

    def __init__(self) -> None:
        self._columns: dict[str, tuple[list[Any], ...]] = {}
        self._arrow: dict[str, list[pa.Table]] = {}

    def merge(self, rows: Mapping[str, Any]) -> Span:
        """Append one job's rows; return where they lie (for :meth:`job_rows`).

        A table's rows may come as :class:`Columns` from one job and as row tuples from
        the next; both land in the same columns.
        """
        span: Span = {}
        for name, part in rows.items():
            if name in ARROW_TABLES:
                store = self._arrow.setdefault(name, [])
                start = len(store)
                store.extend(part)
                span[name] = (start, len(store))
                continue
            cols = self._columns.get(name)
            if cols is None:
                cols = self._columns[name] = tuple([] for _ in range(len(TABLES[name])))
            start = len(cols[0])
            if type(part) is Columns:
                cols[0].extend(repeat(part.job_id, len(part)))
                for col, values in zip(cols[1:], part.cols, strict=True):
                    col.extend(values)
            elif len(part) == 1:
                append_row(cols, part[0])
            else:
                for col, column in zip(cols, zip(*part, strict=True), strict=True):
                    col.extend(column)
            span[name] = (start, len(cols[0]))
        return span

    def job_rows(self, span: Span) -> dict[str, list[Any]]:
        """The rows of one job again, as row tuples (the slow path of a failed flush)."""
        rows: dict[str, list[Any]] = {}
        for name, (start, end) in span.items():
            if name in self._arrow:
                rows[name] = self._arrow[name][start:end]
            else:
                rows[name] = list(zip(*(col[start:end] for col in self._columns[name]),
                                      strict=True))
        return rows

    def tables(self) -> dict[str, pa.Table]:
        """One Arrow table per table name, in canonical order, with its exact schema."""
        result = {}
        for name in TABLE_NAMES:
            if name in self._arrow:
                result[name] = pa.concat_tables(self._arrow[name])
            elif name in self._columns:
                cols = self._columns[name]
                n = len(cols[0])
                arrays = [_job_ids(cols[0], n)]
                arrays += [column_array(col, n, typ)
                           for col, typ in zip(cols[1:], _TYPES[name], strict=True)]
                result[name] = pa.Table.from_arrays(arrays, schema=TABLES[name])
            else:
                result[name] = _EMPTY[name]
        return result


def _job_ids(job_ids: Any, n: int) -> pa.Array:
    first = job_ids[0]
    if job_ids.count(first) == n:  # one job (or all rows of one job): a constant
        return (pa.nulls(n, pa.string()) if first is None
                else pa.repeat(pa.scalar(first, pa.string()), n))
    return pa.array(job_ids, type=pa.string())
