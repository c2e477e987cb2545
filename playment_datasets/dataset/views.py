"""Subsets and splits of a version: :class:`DatasetView` and :class:`Split`.

A view is a :class:`~playment_datasets.dataset.dataset.Dataset` restricted to some jobs
and, optionally, to some annotations. Every table is filtered consistently: ``jobs``,
``frames``, ``masks``, ``point_labels``, ``warnings`` and ``errors`` by ``job_id``;
``annotations`` by job and by the annotation filters; ``points``, ``edges``,
``attributes``, ``cuboids_3d`` and ``segments`` by the ``(job_id, annotation_key)`` of
the kept annotations (rows without an annotation key follow their job). A view is a
Dataset, so every table property, every export and ``select`` / ``split`` work on it.

Splits assign each key (a job id or a reference id) by a hash of ``(seed, key)``, not
by position: the split of a job depends on nothing else, so a later version that adds
jobs leaves every old job where it was.

Example:
    >>> cars = ds.select(labels=["car"])                                # doctest: +SKIP
    >>> parts = ds.split({"train": .8, "val": .1, "test": .1}, seed=7)  # doctest: +SKIP
    >>> parts.report                                                    # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from playment_datasets.errors import ConfigurationError

__all__ = ["Split", "filter_table", "select_members", "split_members", "split_of"]

logger = logging.getLogger(__name__)

#: Tables whose rows belong to one annotation (filtered by annotation key in a view).
ANNOTATION_TABLES = frozenset({"annotations", "points", "edges", "attributes", "cuboids_3d",
                               "segments"})
_SPLIT_KEYS = ("job_id", "reference_id")


def _string_set(values: Iterable[Any] | str | None, what: str) -> frozenset[str] | None:
    if values is None:
        return None
    if isinstance(values, str):
        values = [values]
    try:
        out = frozenset(str(v) for v in values)
    except TypeError:
        raise ConfigurationError(
            f"{what} must be a list of strings; got {type(values).__name__}; pass for "
            f"example {what}=['a', 'b']"
        ) from None
    return out


def select_members(
    ds: Any,
    *,
    job_ids: Iterable[str] | str | None = None,
    labels: Iterable[str] | str | None = None,
    types: Iterable[str] | str | None = None,
    query: str | None = None,
) -> tuple[frozenset[str], frozenset[tuple[str, str]] | None]:
    """The jobs and ``(job_id, annotation_key)`` pairs of :meth:`Dataset.select`.

    ``ds`` is a Dataset or a view (its ``annotation_keys`` is ``None`` for every
    annotation of its jobs). Returns ``(job_ids, annotation_keys)``.

    ``job_ids`` keeps those jobs. ``labels``, ``types`` and ``query`` (a
    :meth:`pandas.DataFrame.query` expression over the ``annotations`` table) keep the
    annotations matching all of them; with any of the three, only jobs that keep at
    least one annotation stay in the view. Filters combine with those of ``ds`` when
    ``ds`` is itself a view.

    Example:
        >>> view = ds.select(types="rectangle", query="x_max - x_min > 0.1")  # doctest: +SKIP
        >>> len(view.jobs), len(view.annotations)                            # doctest: +SKIP
        (31, 87)
    """
    jobs = ds.table("jobs", columns=["job_id"])["job_id"].dropna().astype(str)
    keep = set(jobs)
    wanted = _string_set(job_ids, "job_ids")
    if wanted is not None:
        unknown = sorted(wanted - keep)
        if unknown:
            raise ConfigurationError(
                f"{len(unknown)} job id(s) are not in {ds.batch_id} v{ds.version}: "
                f"{', '.join(map(repr, unknown[:5]))}; pass ids from ds.jobs['job_id']"
            )
        keep &= wanted
    keys = ds.annotation_keys
    label_set, type_set = _string_set(labels, "labels"), _string_set(types, "types")
    if label_set is not None or type_set is not None or query is not None:
        ann = ds.annotations
        ann = ann[ann["job_id"].isin(keep)]
        if label_set is not None:
            ann = ann[ann["label"].isin(label_set)]
        if type_set is not None:
            ann = ann[ann["type"].isin(type_set)]
        if query is not None:
            try:
                ann = ann.query(query)
            except Exception as exc:  # pandas raises many types for a bad expression
                raise ConfigurationError(
                    f"query {query!r} cannot be evaluated on the annotations table "
                    f"({type(exc).__name__}: {exc}); expected a DataFrame.query expression "
                    "over its columns, e.g. \"label == 'car' and x_max - x_min > 0.1\""
                ) from None
        keys = frozenset(zip(ann["job_id"].astype(str), ann["annotation_key"].astype(str),
                             strict=True))
        keep &= {job for job, _ in keys}
    return frozenset(keep), keys


def _unit_interval(seed: int | str, key: str) -> float:
    """A number in [0, 1) from ``(seed, key)``: the same on every machine and version."""
    digest = hashlib.sha256(f"{seed}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def split_of(key: str, fractions: Mapping[str, float], seed: int | str = 0) -> str:
    """The split that ``key`` falls in: cumulative ``fractions`` over a hash of ``(seed, key)``.

    Example:
        >>> split_of("job-1", {"train": 0.8, "val": 0.2}, seed=0) in {"train", "val"}
        True
    """
    u = _unit_interval(seed, key)
    total = 0.0
    name = ""
    for name, fraction in fractions.items():
        total += fraction
        if u < total:
            return name
    return name  # rounding: fractions that sum to 1 within 1e-9


def _check_fractions(fractions: Mapping[str, float]) -> dict[str, float]:
    if not isinstance(fractions, Mapping) or not fractions:
        raise ConfigurationError(
            "fractions must be a mapping of split name -> fraction; got "
            f"{fractions!r}; pass for example {{'train': 0.8, 'val': 0.1, 'test': 0.1}}"
        )
    out: dict[str, float] = {}
    for name, value in fractions.items():
        if not isinstance(name, str) or not name or any(c in name for c in "/\\\0") or name in (
                ".", ".."):
            raise ConfigurationError(
                f"split names must be non-empty names without '/' or '\\'; got {name!r}"
            )
        try:
            fraction = float(value)
        except (TypeError, ValueError):
            fraction = -1.0
        if not 0.0 < fraction <= 1.0:
            raise ConfigurationError(
                f"the fraction of split {name!r} must be a number in (0, 1]; got {value!r}"
            )
        out[name] = fraction
    total = sum(out.values())
    if abs(total - 1.0) > 1e-6:
        raise ConfigurationError(
            f"split fractions must sum to 1; got {total:g} ({', '.join(f'{k}={v:g}' for k, v in out.items())}); "  # noqa: E501
            "scale them, e.g. train=0.8,val=0.1,test=0.1"
        )
    return out


class Split(dict[str, Any]):
    """Split name → view, in the order of the fractions; see :func:`split`.

    Attributes:
        fractions: the requested fractions.
        by: the column the split is keyed on (``job_id`` or ``reference_id``).
        seed: the seed of the hash.
    """

    def __init__(self, views: Mapping[str, Any], fractions: Mapping[str, float],
                 by: str, seed: int | str) -> None:
        super().__init__(views)
        self.fractions = dict(fractions)
        self.by = by
        self.seed = seed

    @property
    def report(self) -> pd.DataFrame:
        """Class balance: one row per split with ``jobs``, ``annotations``, ``share``
        (of the jobs) and one column per label (annotation counts).

        Example:
            >>> ds.split({"train": .8, "val": .2}).report      # doctest: +SKIP
                   jobs  annotations  share  car  person
            train    41          312  0.82   201     111
            val       9           70  0.18    44      26
        """
        rows = {}
        for name, view in self.items():
            ann = view.table("annotations", columns=["label"])
            labels = ann["label"].dropna().astype(str).value_counts()
            rows[name] = {"jobs": len(view.table("jobs", columns=["job_id"])),
                          "annotations": len(ann), **labels.to_dict()}
        frame = pd.DataFrame.from_dict(rows, orient="index").fillna(0)
        label_cols = sorted(c for c in frame.columns if c not in ("jobs", "annotations"))
        frame = frame[["jobs", "annotations", *label_cols]].astype("int64")
        total = int(frame["jobs"].sum())
        frame.insert(2, "share", (frame["jobs"] / total if total else frame["jobs"] * 0.0)
                     .astype("float64"))
        frame.index.name = "split"
        frame.columns.name = None
        return frame

    def export(self, out_dir: Any, *, format: str, **options: Any) -> Any:  # noqa: A002
        """Write every split into one training folder; see :func:`training.export_splits`.

        Example:
            >>> ds.split({"train": .8, "val": .2}).export("out", format="yolo",
            ...                                           images="copy")  # doctest: +SKIP
        """
        from playment_datasets.dataset.training import export_splits

        return export_splits(self, out_dir, format=format, **options)


def split_members(
    ds: Any,
    fractions: Mapping[str, float],
    *,
    by: str = "job_id",
    seed: int | str = 0,
) -> tuple[dict[str, float], dict[str, frozenset[str]]]:
    """The checked fractions and the job ids of each split of :meth:`Dataset.split`.

    Jobs go by a hash of ``(seed, key)``, so the split is stable across versions.

    ``by="reference_id"`` keeps every job of one reference id (the same source item
    labelled twice, say) in one split; a job without a reference id is keyed by its
    job id. Fractions must be positive and sum to 1; a small split of a small dataset
    may come out empty (the hash decides, not the count).

    Example:
        >>> fractions, members = split_members(ds, {"train": .8, "val": .2})  # doctest: +SKIP
        >>> sorted(members)                                                  # doctest: +SKIP
        ['train', 'val']
    """
    wanted = _check_fractions(fractions)
    if by not in _SPLIT_KEYS:
        raise ConfigurationError(f"by must be one of {', '.join(_SPLIT_KEYS)}; got {by!r}")
    jobs = ds.table("jobs", columns=["job_id", "reference_id"])
    members: dict[str, set[str]] = {name: set() for name in wanted}
    for job_id, ref in zip(jobs["job_id"], jobs["reference_id"], strict=True):
        if job_id is None or pd.isna(job_id):
            continue
        key = str(job_id) if by == "job_id" or ref is None or pd.isna(ref) else str(ref)
        members[split_of(key, wanted, seed)].add(str(job_id))
    logger.info("split %s v%s by %s: %s", ds.batch_id, ds.version, by,
                ", ".join(f"{n}={len(v)}" for n, v in members.items()))
    return wanted, {name: frozenset(ids) for name, ids in members.items()}


def filter_table(name: str, table: pa.Table, job_ids: frozenset[str],
                 annotation_keys: frozenset[tuple[str, str]] | None) -> pa.Table:
    """Rows of ``table`` (table ``name``) that belong to the view's jobs and annotations."""
    if "job_id" not in table.column_names:
        return table
    mask = pc.is_in(table.column("job_id"), value_set=pa.array(sorted(job_ids), pa.string()))
    if annotation_keys is not None and name in ANNOTATION_TABLES and (
            "annotation_key" in table.column_names):
        joined = pc.binary_join_element_wise(
            table.column("job_id"), table.column("annotation_key"), "\x00")
        wanted = pa.array(sorted(f"{j}\x00{k}" for j, k in annotation_keys), pa.string())
        own = pc.is_in(joined, value_set=wanted)
        # rows without an annotation key (job-level rows) follow their job
        mask = pc.and_(mask, pc.or_kleene(own, pc.is_null(table.column("annotation_key"))))
    return table.filter(pc.fill_null(mask, False))
