"""Turn one Playment result file into Arrow tables (pure: no I/O, no HTTP).

:func:`normalize_result` detects the result format (image shapes, video trackers,
image / video / point-cloud segmentation, sensor fusion, classification), reads every
documented field and quirk, and returns one table per name of
:data:`~playment_datasets.schema.TABLE_NAMES`. Fields it does not understand are kept
in the ``extra`` JSON column of the nearest table. A result that cannot be read (not
JSON, wrong types, non-finite numbers, absurd nesting…) becomes one row of the
``errors`` table with the JSON path of the problem; the job keeps its ``jobs`` row.
The rules are documented in ``docs/schema.md``.

Example:
    >>> from playment_datasets.normalize import normalize_result
    >>> raw = b'{"data": {"annotations": {"rectangles": [{"_id": "a1", "label": "car",'
    >>> raw += b' "coordinates": [{"x": 0.1, "y": 0.2}, {"x": 0.3, "y": 0.2},'
    >>> raw += b' {"x": 0.3, "y": 0.4}, {"x": 0.1, "y": 0.4}]}]}}}'
    >>> tables = normalize_result(raw, {"job_id": "j1", "status": "completed"})
    >>> tables["annotations"].to_pylist()[0]["x_max"]
    0.3
    >>> tables["jobs"].column("result_kind").to_pylist()
    ['image']
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from playment_datasets.errors import ConfigurationError, ResultFormatError
from playment_datasets.normalize._base import (
    ARROW_TABLES,
    Bad,
    Out,
    bad,
    build_tables,
    encode,
    job_rows,
    need_dict,
)
from playment_datasets.normalize._batch import BatchRows, Span
from playment_datasets.normalize._fast import Outline, Refused
from playment_datasets.normalize._fast import fill as fill_fast
from playment_datasets.normalize._fast import outline as outline_fast
from playment_datasets.normalize._formats import (
    add_classification,
    add_cloud_segment,
    add_legend_list,
    add_legend_object,
    add_sensor_entry,
    add_video_segment,
    frames_of,
    is_attribute_value,
    is_cuboid_3d,
)
from playment_datasets.normalize._mask_rows import (
    DecodedBytes,
    MaskMissing,
    MaskRef,
    MaskSource,
    add_masks,
    mask_refs,
    stored_masks,
)
from playment_datasets.normalize._shapes import add_image, add_tracker

if TYPE_CHECKING:
    import pandas as pd  # only to_pixels works on DataFrames (it imports nothing itself)

__all__ = ["BatchNormalizer", "DecodedBytes", "MaskMissing", "MaskRef", "MaskSource", "mask_urls",
           "normalize_result", "stored_masks", "to_pixels"]

logger = logging.getLogger(__name__)

_CONTAINERS = frozenset({"annotations", "annotation_data", "annotations_data", "legend",
                         "video_data", "sensor_data", "masks", "Masks"})
_STAGE = "normalize"


def _reject_constant(name: str) -> Any:
    raise Bad("$", f"expected finite numbers, got the literal {name}", "non_finite_number")


def _parse(raw: bytes | bytearray | memoryview | str) -> Any:
    """Decode and parse result bytes, turning every failure into :class:`Bad`."""
    if isinstance(raw, str):
        text = raw
    else:
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Bad("$", f"expected UTF-8 text, got the byte 0x{bytes(raw)[exc.start]:02x} "
                      f"at offset {exc.start}", "invalid_encoding") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        raise Bad("$", "expected a JSON document, got an empty body", "empty")
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        hint = ""
        if text.lstrip()[:1] == "<":
            hint = " (the body looks like HTML or XML, e.g. an error page)"
        raise Bad(f"$ (line {exc.lineno}, column {exc.colno})",
                  f"expected valid JSON, got a syntax error: {exc.msg}{hint}",
                  "invalid_json") from None
    except RecursionError:
        raise Bad("$", "expected a reasonably nested document, got nesting too deep to parse",
                  "too_deep") from None


def _annotation_data(body: dict[str, Any], extra: dict[str, Any],
                     base: str) -> tuple[list[Any], str, Any]:
    """Entries of ``annotation_data``, their path, and a ``sensor_data`` nested in it."""
    name = "annotation_data" if "annotation_data" in body else "annotations_data"
    data = need_dict(body[name], f"{base}.{name}")
    entries = data.get("annotations")
    path = f"{base}.{name}.annotations"
    if entries is None:
        entries = []
    elif type(entries) is not list:
        raise bad(path, "an array of annotations", entries)
    rest = {k: v for k, v in data.items() if k != "annotations"}
    nested = None
    if "sensor_data" in rest and "sensor_data" not in body:
        nested = rest.pop("sensor_data")  # a documented nesting slip
    if rest:
        extra[name] = rest
    return entries, path, nested


def _kind_of_entries(body: dict[str, Any], entries: list[Any]) -> str:
    dicts = [e for e in entries if type(e) is dict]
    if any("frames" in e for e in dicts):
        return "video"
    if any("legend" in e or "url" in e for e in dicts):
        return "video_segmentation"
    if "masks" in body or "Masks" in body or any("class_id" in e for e in dicts):
        return "point_cloud_segmentation"
    if "sensor_data" in body or any(is_cuboid_3d(e) for e in dicts):
        return "sensor_fusion"
    if "video_data" in body:
        return "video"
    return "sensor_fusion"


def detect_kind(body: Any) -> str:
    """The result kind of a parsed, unwrapped result body (see ``docs/schema.md``)."""
    if type(body) is not dict:
        return "unknown"
    if type(body.get("annotations")) is dict:
        return "image"
    for name in ("annotation_data", "annotations_data"):
        data = body.get(name)
        if type(data) is dict:
            entries = data.get("annotations")
            probe = dict(body)
            if "sensor_data" in data:
                probe.setdefault("sensor_data", data["sensor_data"])
            return _kind_of_entries(probe, entries if type(entries) is list else [])
    legend = body.get("legend")
    if type(legend) is dict:
        return "image_segmentation"
    if type(legend) is list:
        return "point_cloud_segmentation"
    if "video_data" in body:
        return "video"
    if "sensor_data" in body:
        return "sensor_fusion"
    if not _CONTAINERS.intersection(body) and (
        "attributes" in body or "label" in body
        or any(is_attribute_value(v) for v in body.values())
    ):
        return "classification"
    return "unknown"


def _fill(out: Out, body: dict[str, Any], kind: str, path: str) -> tuple[dict[str, Any], Any]:
    """Emit the rows of ``body``; return (unknown top-level keys, image_url)."""
    extra: dict[str, Any] = {}
    image_url = None
    if kind == "image":
        rest = add_image(out, body, path)
        if rest:
            extra["annotations"] = rest
        image_url = out.text(body.get("image_url"), f"{path}.image_url")
        known: frozenset[str] = frozenset({"annotations", "image_url"})
    elif kind in ("image_segmentation", "point_cloud_segmentation") and "legend" in body \
            and "annotation_data" not in body and "annotations_data" not in body:
        url = out.text(body.get("url"), f"{path}.url")
        if type(body["legend"]) is dict:
            add_legend_object(out, body["legend"], f"{path}.legend", url)
        else:
            add_legend_list(out, body["legend"], f"{path}.legend", url)
        known = frozenset({"legend", "url"})
    elif kind in ("video", "video_segmentation", "point_cloud_segmentation", "sensor_fusion"):
        entries: list[Any] = []
        epath = f"{path}.annotation_data.annotations"
        nested = None
        if "annotation_data" in body or "annotations_data" in body:
            entries, epath, nested = _annotation_data(body, extra, path)
        frames_of(out, body, extra, path, nested)
        masks = body.get("masks", body.get("Masks"))
        if masks is not None and type(masks) is not dict:
            out.keep(masks, f"{path}.masks", "an object of frame masks", extra, "masks")
        masks = masks if type(masks) is dict else {}
        for i, entry in enumerate(entries):
            epath_i = f"{epath}[{i}]"
            ordinal = f"annotations[{i}]"
            with out.item(epath_i):  # an unreadable entry costs only that entry
                if kind == "video":
                    add_tracker(out, entry, epath_i, ordinal)
                elif kind == "video_segmentation":
                    add_video_segment(out, need_dict(entry, epath_i), epath_i, ordinal)
                elif kind == "point_cloud_segmentation":
                    add_cloud_segment(out, need_dict(entry, epath_i), epath_i, ordinal, masks)
                else:
                    add_sensor_entry(out, entry, epath_i, ordinal)
        known = frozenset({"annotation_data", "annotations_data", "video_data", "sensor_data",
                           "masks", "Masks", "frames", "Frames"})
    elif kind == "classification":
        with out.item(path):
            return add_classification(out, body, path), None
        return dict(body), None  # the item failed: keep the document in jobs.extra
    else:  # unknown: keep everything
        return dict(body), None
    for k, v in body.items():
        if k not in known:
            extra[k] = v
    return extra, image_url


def _text(value: Any) -> str | None:
    """A job-record field as text (job records are trusted more loosely than results)."""
    if value is None:
        return None
    text = value if type(value) is str else str(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def _integer(value: Any) -> int | None:
    if type(value) is int and -(2**63) < value < 2**63:
        return value
    if type(value) is float and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if type(value) is str and value.strip().isdigit() and value.strip().isascii():
        return int(value) if int(value) < 2**63 else None
    return None


def _jobs_row(job: Mapping[str, Any], job_id: str | None, kind: str, image_url: str | None,
              sha: str | None, extra: str | None) -> tuple[Any, ...]:
    g = job.get
    return (
        job_id, _text(g("reference_id")), _text(g("project_id")), _text(g("batch_id")),
        _text(g("status")), _text(g("work_flow_id")), _text(g("tag")),
        _integer(g("priority_weight")), _integer(g("frames", g("n_frames"))),
        _integer(g("annotations", g("n_annotations"))), kind,
        _text(g("result", g("source_url"))), image_url, sha, _text(g("etag")), extra,
    )


def _bad_string_path(obj: Any) -> str:
    """JSON path of the first string that is not valid Unicode (a lone surrogate)."""
    stack: list[tuple[Any, str]] = [(obj, "$")]
    while stack:
        value, path = stack.pop()
        if type(value) is str:
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return path
        elif type(value) is dict:
            for k, v in reversed(list(value.items())):
                try:
                    k.encode("utf-8")
                except UnicodeEncodeError:
                    return f"{path} (a key)"
                stack.append((v, f"{path}.{k}"))
        elif type(value) is list:
            stack.extend((v, f"{path}[{i}]") for i, v in reversed(list(enumerate(value))))
    return "$"


Rows = dict[str, list[tuple[Any, ...]]]


def _row_count(name: str, rows: list[Any]) -> int:
    """Rows of one table of a job (``point_labels`` arrives as Arrow tables)."""
    return sum(t.num_rows for t in rows) if name in ARROW_TABLES else len(rows)


class _JobRows:
    """The rows of one normalized job, and how to replace them by an error row.

    It keeps the raw bytes, not the parsed document: thousands of jobs wait here for
    the next flush, and keeping their parsed trees alive made every garbage
    collection walk them (measured: the normalizer ran twice as long).
    """

    __slots__ = ("rows", "span", "_raw", "_job", "_job_id", "_kind", "_sha", "_strict")

    def __init__(self, rows: Rows, raw: Any = None, job: Mapping[str, Any] | None = None,
                 job_id: str | None = None, kind: str = "unknown", sha: str | None = None,
                 strict: bool = False) -> None:
        self.rows = rows
        self.span: Span = {}  # where the rows lie once merged into a BatchRows
        self._raw, self._job, self._job_id = raw, job, job_id
        self._kind, self._sha, self._strict = kind, sha, strict

    def as_bad_string(self) -> Rows:
        """The job's rows when one of its strings cannot be stored (a lone surrogate)."""
        raw = self._raw
        parsed = _parse(raw) if isinstance(raw, (bytes, bytearray, memoryview, str)) else raw
        failure = Bad(_bad_string_path(parsed),
                      "expected valid Unicode text, got a lone surrogate escape", "invalid_string")
        return _failed(failure, self._job or {}, self._job_id, self._kind, self._sha,
                       self._strict)


def _failed(exc: Bad, job: Mapping[str, Any], job_id: str | None, kind: str, sha: str | None,
            strict: bool) -> Rows:
    if strict:
        raise ResultFormatError(
            f"the result of job {job_id!r} cannot be normalized: at {exc.path}: "
            f"{exc.detail}. Fix or re-export the result, or pass strict=False to record "
            "it in the errors table instead.",
            job_id=job_id, path=exc.path,
        ) from None
    error = (job_id, _STAGE, exc.error_type, f"at {exc.path}: {exc.detail}", None, None, sha)
    logger.debug("result of job %s not normalized: %s", job_id, error[3])
    return job_rows(None, _jobs_row(job, job_id, kind, None, sha, None), error)


def _fill_fast(out: Out, plan: Outline) -> tuple[dict[str, Any], str | None] | None:
    """:func:`._fast.fill`, or None when it did not read the whole document: the general
    reader then reads it from the start. So a document with a problem (strict: any
    problem) is reported as the general reader reports it, whatever part the fast path
    met first (a part nested too deep, say, after a shape of the wrong type)."""
    try:
        return fill_fast(out, plan)
    except (Bad, Refused, RecursionError):
        return None


def _normalize_rows(raw: bytes | str | Mapping[str, Any] | None, job: Mapping[str, Any],
                    strict: bool, masks: MaskSource = None) -> _JobRows:
    """Parse and read one result into rows; every failure becomes an error row."""
    job_id = _text(job.get("job_id", job.get("id")))
    if raw is None:
        return _JobRows(job_rows(None, _jobs_row(job, job_id, "none", None,
                                                 _text(job.get("result_sha256")), None), None))
    data = None
    if isinstance(raw, (bytes, bytearray, memoryview, str)):
        data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else bytes(raw)
        sha: str | None = hashlib.sha256(data).hexdigest()
    else:
        sha = _text(job.get("result_sha256"))
    kind = "unknown"
    try:
        try:
            outer: dict[str, Any] = {}
            body: Any = None  # what mask_refs reads: nothing in image and video results
            plan = outline_fast(data) if data is not None else None
            filled = None
            if plan is not None:
                out = Out(job_id, strict, columnar=True)
                filled = _fill_fast(out, plan)
            if filled is not None:
                kind, path = plan.kind, plan.path  # type: ignore[union-attr]
                extra, image_url = filled
            else:
                out = Out(job_id, strict)
                parsed = (_parse(raw) if isinstance(raw, (bytes, bytearray, memoryview, str))
                          else raw)
                body = parsed
                if type(parsed) is not dict:
                    raise bad("$", "a JSON object", parsed if type(parsed) is not str else "…")
                path = "$"
                if "data" in parsed:
                    body = need_dict(parsed["data"], "$.data")
                    outer = {k: v for k, v in parsed.items() if k != "data"}
                    path = "$.data"
                kind = detect_kind(body)
                extra, image_url = _fill(out, body, kind, path)
            if out.failures and not (out.annotations or out.frames):
                raise out.failures[0]  # nothing of the job could be read
            out.flush_warnings()
            add_masks(out, mask_refs(body, kind), masks)
            if outer:
                extra["$outer"] = outer
            row = _jobs_row(job, job_id, kind, image_url, sha,
                            encode(extra, path) if extra else None)
            return _JobRows(job_rows(out, row, None), raw, job, job_id, kind, sha, strict)
        except RecursionError:
            raise Bad("$", "expected a reasonably nested document, got nesting too deep",
                      "too_deep") from None
    except Bad as exc:
        return _JobRows(_failed(exc, job, job_id, kind, sha, strict))
    except Exception as exc:  # a bug must not lose the job: record it like a bad result
        if strict:
            raise ResultFormatError(
                f"the result of job {job_id!r} could not be normalized "
                f"({type(exc).__name__}: {exc})", job_id=job_id, path="$",
            ) from exc
        error = (job_id, _STAGE, "internal", f"at $: {type(exc).__name__}: {exc}"[:2000],
                 None, None, sha)
        logger.debug("result of job %s not normalized: %s", job_id, error[3])
        return _JobRows(job_rows(None, _jobs_row(job, job_id, kind, None, sha, None), error))


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while one result is read.

    Reading a result allocates many small, acyclic objects (the parsed JSON, the row
    tuples) that reference counting frees; the collector only walks them, and the
    interpreter's other objects, again and again — about a third of the normalizer's
    time (benchmarks/bench_normalize.py). A pause lasts one job, or one flush.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class BatchNormalizer:
    """Normalizes many jobs and builds their Arrow tables once per batch.

    :func:`normalize_result` is this with one job. Streaming many jobs through one
    normalizer, flushing every few tens of thousands of rows, pays the fixed cost of
    building Arrow arrays once per batch instead of once per job.

    Example:
        >>> batch = BatchNormalizer()
        >>> batch.add(b'{"category": "cat"}', {"job_id": "j1", "status": "completed"})
        >>> batch.add_failure({"job_id": "j2"}, stage="fetch", error_type="ServerError",
        ...                   message="HTTP 503 six times")
        >>> tables = batch.flush()
        >>> tables["jobs"].num_rows, tables["errors"].column("job_id").to_pylist()
        (2, ['j2'])
    """

    def __init__(self, *, strict: bool = False) -> None:
        self.strict = strict
        self._jobs: list[_JobRows] = []
        self._store = BatchRows()
        self.rows = 0  # rows waiting for the next flush

    def add(self, raw: bytes | str | Mapping[str, Any] | None,
            job: Mapping[str, Any] | None = None, *, masks: MaskSource = None) -> None:
        """Normalize one job's result; see :func:`normalize_result` for the arguments."""
        was_enabled = gc.isenabled()  # _gc_paused, without a generator per job
        gc.disable()
        try:
            self._keep(_normalize_rows(raw, job or {}, self.strict, masks))
        finally:
            if was_enabled:
                gc.enable()

    def _keep(self, got: _JobRows) -> None:
        rows = got.rows
        self.rows += sum(_row_count(name, part) for name, part in rows.items())
        got.span = self._store.merge(rows)
        got.rows = {}  # merged: the job's own lists go now, not at the flush
        self._jobs.append(got)

    def add_failure(self, job: Mapping[str, Any], *, stage: str, error_type: str, message: str,
                    http_status: int | None = None, code: str | None = None,
                    raw_sha256: str | None = None) -> None:
        """Record a job whose result could not be had: its ``jobs`` row and an error."""
        job_id = _text(job.get("job_id", job.get("id")))
        error = (job_id, stage, error_type, message, http_status, code, raw_sha256)
        row = _jobs_row(job, job_id, "none", None, raw_sha256, None)
        self._keep(_JobRows(job_rows(None, row, error)))

    def flush(self) -> dict[str, pa.Table]:
        """Tables of every job added since the last flush (one per table name)."""
        with _gc_paused():  # the column lists are large, acyclic and short-lived
            jobs, store = self._jobs, self._store
            self._jobs, self._store, self.rows = [], BatchRows(), 0
            try:
                tables = store.tables()
            except UnicodeEncodeError:
                # rare: find the job whose strings cannot be stored, keep the others
                rowsets = []
                for job in jobs:
                    rows = store.job_rows(job.span)
                    try:
                        build_tables([rows])
                        rowsets.append(rows)
                    except UnicodeEncodeError:
                        rowsets.append(job.as_bad_string())
                tables = build_tables(rowsets)
            # freed before the collector runs again: walking the batch's columns
            # in the collection that followed a flush was a tenth of a profile
            del jobs, store
        return tables


def normalize_result(
    raw: bytes | str | Mapping[str, Any] | None,
    job: Mapping[str, Any] | None = None,
    *,
    strict: bool = False,
    masks: MaskSource = None,
) -> dict[str, pa.Table]:
    """Normalize one job's result file into one Arrow table per table name.

    Args:
        raw: the result file as bytes or text, or already parsed; ``None`` when the
            job has no result (not completed).
        job: the job record (``job_id``, ``status`` and optionally ``reference_id``,
            ``project_id``, ``batch_id``, ``work_flow_id``, ``tag``,
            ``priority_weight``, ``frames``, ``annotations``, ``result`` (URL),
            ``etag``, ``result_sha256``) — the source of the ``jobs`` row.
        strict: raise :class:`~playment_datasets.errors.ResultFormatError` at the first
            problem (an unreadable annotation, a field of an unexpected type), instead
            of the lenient policy (``warnings`` rows; ``errors`` only when nothing of
            the job can be read).
        masks: the mask files of a segmentation result, already fetched: a mapping
            ``url -> bytes`` or a callable ``url -> bytes | None`` (URLs from
            :func:`mask_urls`); a :class:`MaskMissing` value says why a mask has no
            bytes (``fetch_failed`` adds a ``warnings`` row). ``None``: not fetched —
            ``masks`` rows say ``not_fetched`` and segment pixel statistics stay null.

    Returns:
        ``{name: pyarrow.Table}`` for every name of ``TABLE_NAMES``, in order, each
        with exactly the schema ``TABLES[name]`` (empty tables included).

    Example:
        >>> t = normalize_result(b'{"category": "cat"}', {"job_id": "j2"})
        >>> t["attributes"].select(["name", "value"]).to_pylist()
        [{'name': 'category', 'value': 'cat'}]
        >>> normalize_result(b"<html>", {"job_id": "j3"})["errors"].column("error_type")[0]
        <pyarrow.StringScalar: 'invalid_json'>
    """
    batch = BatchNormalizer(strict=strict)
    batch.add(raw, job, masks=masks)
    return batch.flush()


def mask_urls(raw: bytes | str | Mapping[str, Any] | None) -> list[MaskRef]:
    """Every mask file a result references, for the caller to fetch.

    Image segmentation ``url`` (kind ``png``), video segmentation per-entry ``url``
    (``png``, with its ``frame_id``), point-cloud ``masks.<frame>.label_url``
    (``labels``) and the older point-cloud ``url`` (``pcd``). Never raises: a result
    that cannot be parsed references nothing.

    Example:
        >>> mask_urls(b'{"legend": {"#ff0000": "car"}, "url": "https://s/m.png"}')
        [MaskRef(url='https://s/m.png', frame_id=None, kind='png')]
    """
    if raw is None:
        return []
    try:
        parsed = _parse(raw) if isinstance(raw, (bytes, bytearray, memoryview, str)) else raw
    except Bad:
        return []
    if type(parsed) is dict and type(parsed.get("data")) is dict:
        parsed = parsed["data"]
    return mask_refs(parsed, detect_kind(parsed))


def to_pixels(df: pd.DataFrame, width: float | str, height: float | str) -> pd.DataFrame:
    """Return a copy of ``df`` with normalized coordinates converted to pixels.

    ``x_min``, ``x_max`` and ``x`` are multiplied by ``width``; ``y_min``, ``y_max`` and
    ``y`` by ``height``. Each of ``width`` / ``height`` is a number or the name of a
    column of ``df`` (per-row image sizes, e.g. after a merge with image metadata).

    Example:
        >>> import pandas as pd
        >>> to_pixels(pd.DataFrame({"x_min": [0.5], "y_min": [0.25]}), 640, 480)
           x_min  y_min
        0  320.0  120.0
    """
    def factor(value: float | str, name: str) -> Any:
        if isinstance(value, str):
            if value not in df.columns:
                raise ConfigurationError(
                    f"{name}={value!r} names no column of the DataFrame; pass a number or one "
                    f"of {', '.join(map(str, df.columns))}")
            return df[value]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ConfigurationError(
                f"{name} must be a positive number of pixels or a column name, got {value!r}")
        return value

    w = factor(width, "width")
    h = factor(height, "height")
    result = df.copy()
    for col in ("x_min", "x_max", "x"):
        if col in result.columns:
            result[col] = result[col] * w
    for col in ("y_min", "y_max", "y"):
        if col in result.columns:
            result[col] = result[col] * h
    return result
