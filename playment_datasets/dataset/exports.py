"""Exports of a normalized dataset to common training formats: COCO, YOLO and CSV.

Every function takes ``ds``, any object exposing the tables as pandas DataFrames by
attribute (``ds.jobs``, ``ds.annotations``, ``ds.points``, ``ds.attributes``, …) with
the columns of :data:`playment_datasets.schema.TABLES`. Arrow-backed (``pd.ArrowDtype``)
and plain numpy/object columns both work; nulls may be ``None``, ``pd.NA`` or ``NaN``.
A table the object does not have is treated as empty.

The tables keep Playment's normalized coordinates (0..1, origin top-left). COCO needs
pixels, so it needs the size of every exported image (see :func:`resolve_image_sizes`);
YOLO is normalized itself and does not.

Images and frames: an image job is one image (``frame_id`` null). A video or sensor
job contributes one image per frame (and per sensor), named ``<job_id>/<frame_id>``
(``<job_id>/<frame_id>/<sensor_id>``); every frame of a job has the job's image size.

Example:
    >>> from playment_datasets.dataset.exports import to_coco, to_yolo, to_csv
    >>> to_coco(ds, "out/coco", image_size=(1920, 1080))   # doctest: +SKIP
    PosixPath('out/coco/instances.json')
"""

from __future__ import annotations

import json
import logging
import math
import os
import posixpath
import shutil
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote, urlsplit

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from playment_datasets.dataset.coco_masks import MASK_COLUMNS, SEGMENT_COLUMNS, segment_images
from playment_datasets.errors import ConfigurationError, InvalidIdError
from playment_datasets.schema import TABLE_NAMES, TABLES

__all__ = ["resolve_image_sizes", "to_coco", "to_csv", "to_yolo"]

logger = logging.getLogger(__name__)

#: Annotation types the COCO instances export understands ("segment": instance masks
#: of segmentation jobs, as RLE — see dataset/coco_masks.py).
COCO_TYPES = ("rectangle", "polygon", "segment")

_SIZE_HINT = (
    "pass image_size=(1920, 1080) for one size for every image, a mapping "
    "job_id -> (width, height), or a DataFrame of job_id, width, height"
)
_PIXEL_DECIMALS = 3  # sub-pixel precision far below any annotation's own precision

# (job_id, frame_id, sensor_id): one exported image.
ImageKey = tuple[str, "str | None", "str | None"]


# --------------------------------------------------------------------------- tables


def _table(ds: Any, name: str, columns: Sequence[str], *, required: bool = True) -> pa.Table:
    """``ds.<name>`` restricted to ``columns`` as an Arrow table with the schema's types.

    Going through Arrow gives one representation whatever the DataFrame's dtypes:
    strings come back as ``str``/``None``, nulls of every flavour become nulls. With
    ``required=False`` a missing column reads as all nulls.
    """
    schema = TABLES[name]
    target = pa.schema([schema.field(c) for c in columns])
    frame = getattr(ds, name, None)
    if frame is None:
        return target.empty_table()
    if isinstance(frame, pa.Table):
        frame = frame.to_pandas(types_mapper=pd.ArrowDtype)
    if isinstance(frame, pd.DataFrame):
        missing = [c for c in columns if c not in frame.columns]
        if missing and not required:
            frame = frame.assign(**{c: pd.Series([None] * len(frame), dtype=object,
                                                 index=frame.index) for c in missing})
        elif missing:
            raise ConfigurationError(
                f"table {name!r} lacks the column(s) {', '.join(missing)}; expected the "
                f"columns of schema.TABLES[{name!r}]; pass a dataset loaded by playment_datasets"
            )
        table = pa.Table.from_pandas(frame[list(columns)], preserve_index=False)
    else:
        raise ConfigurationError(
            f"ds.{name} must be a pandas DataFrame; got {type(frame).__name__}"
        )
    try:
        return table.select(list(columns)).cast(target)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise ConfigurationError(
            f"table {name!r} does not have the column types of schema.TABLES[{name!r}] "
            f"({exc}); pass a dataset loaded by playment_datasets"
        ) from None


def _rows(table: pa.Table) -> Iterator[tuple[Any, ...]]:
    """The rows of ``table`` as tuples of Python values (nulls as ``None``)."""
    return zip(*(table.column(c).to_pylist() for c in table.column_names), strict=True)


def _as_tuple(value: str | Sequence[str] | None, default: Sequence[str]) -> tuple[str, ...]:
    if value is None:
        return tuple(default)
    if isinstance(value, str):
        return (value,)
    return tuple(dict.fromkeys(value))


# --------------------------------------------------------------------------- sizes


def _pixels(value: Any) -> int | None:
    """A positive integer pixel count from ``value``, or ``None`` if it is not one."""
    if value is None or isinstance(value, bool):
        return None
    try:
        if pd.isna(value):
            return None
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not number.is_integer() or number <= 0:
        return None
    return int(number)


def _size(what: str, width: Any, height: Any) -> tuple[int, int] | None:
    """``(width, height)`` validated; ``None`` when both are null (size unknown)."""
    if _is_null(width) and _is_null(height):
        return None
    w, h = _pixels(width), _pixels(height)
    if w is None or h is None:
        raise ConfigurationError(
            f"{what} must be two positive integers (width, height); "
            f"got ({width!r}, {height!r}); {_SIZE_HINT}"
        )
    return w, h


def _is_null(value: Any) -> bool:
    try:
        return value is None or bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _sizes_from_frame(frame: pd.DataFrame, width: str, height: str) -> dict[str, tuple[int, int]]:
    table = pa.Table.from_pandas(frame[["job_id", width, height]], preserve_index=False)
    sizes: dict[str, tuple[int, int]] = {}
    for job_id, w, h in _rows(table):
        if job_id is None:
            continue
        size = _size(f"the image size of job {job_id!r}", w, h)
        if size is None:
            continue
        if sizes.get(str(job_id), size) != size:
            raise ConfigurationError(
                f"job {job_id!r} has two image sizes, {sizes[str(job_id)]} and {size}; "
                "expected one row per job; drop the duplicate rows"
            )
        sizes[str(job_id)] = size
    return sizes


def resolve_image_sizes(
    ds: Any, image_size: Any, *, job_ids: Iterable[str] | None = None
) -> dict[str, tuple[int, int]]:
    """Map each job id to its image size ``(width, height)`` in pixels.

    ``image_size`` may be:

    * a ``(width, height)`` tuple: the same size for every image;
    * a mapping ``job_id -> (width, height)``;
    * a DataFrame with the columns ``job_id``, ``width``, ``height``;
    * ``None``: the ``image_width`` / ``image_height`` columns of ``ds.jobs`` are used
      if the table has them.

    Every job in ``job_ids`` (default: every job of ``ds.jobs``) must get a size,
    otherwise :class:`~playment_datasets.errors.ConfigurationError` names the first
    five missing jobs and how many there are.

    Example:
        >>> import types, pandas as pd
        >>> ds = types.SimpleNamespace(jobs=pd.DataFrame({"job_id": ["j1", "j2"]}))
        >>> resolve_image_sizes(ds, (640, 480))
        {'j1': (640, 480), 'j2': (640, 480)}
        >>> resolve_image_sizes(ds, {"j1": (10, 20)}, job_ids=["j1"])
        {'j1': (10, 20)}
    """
    jobs = getattr(ds, "jobs", None)
    if job_ids is None:
        known = _table(ds, "jobs", ["job_id"]).column("job_id").to_pylist()
        required = sorted({j for j in known if j is not None})
    else:
        required = sorted(set(job_ids))

    sizes: dict[str, tuple[int, int]]
    if image_size is None:
        has_columns = isinstance(jobs, pd.DataFrame) and {"image_width", "image_height"} <= set(
            jobs.columns
        )
        if not has_columns:
            if not required:
                return {}
            raise ConfigurationError(
                "image sizes are needed to turn normalized coordinates into pixels, but "
                "image_size is None and the jobs table has no image_width/image_height "
                f"columns; {_SIZE_HINT}"
            )
        sizes = _sizes_from_frame(jobs, "image_width", "image_height")
    elif isinstance(image_size, pd.DataFrame):
        missing_cols = {"job_id", "width", "height"} - set(image_size.columns)
        if missing_cols:
            raise ConfigurationError(
                "image_size DataFrame must have the columns job_id, width, height; "
                f"got {', '.join(map(str, image_size.columns)) or 'no columns'}; {_SIZE_HINT}"
            )
        sizes = _sizes_from_frame(image_size, "width", "height")
    elif isinstance(image_size, Mapping):
        sizes = {}
        for job_id, size in image_size.items():
            if not isinstance(size, Sequence) or isinstance(size, str) or len(size) != 2:
                raise ConfigurationError(
                    f"image_size[{job_id!r}] must be a (width, height) pair; got {size!r}; "
                    f"{_SIZE_HINT}"
                )
            resolved = _size(f"image_size[{job_id!r}]", size[0], size[1])
            if resolved is not None:
                sizes[str(job_id)] = resolved
    elif isinstance(image_size, Sequence) and not isinstance(image_size, str) and (
        len(image_size) == 2
    ):
        resolved = _size("image_size", image_size[0], image_size[1])
        if resolved is None:
            raise ConfigurationError(f"image_size must not be (None, None); {_SIZE_HINT}")
        return {job_id: resolved for job_id in required}
    else:
        raise ConfigurationError(
            f"image_size must be a (width, height) tuple, a mapping or a DataFrame; "
            f"got {type(image_size).__name__}; {_SIZE_HINT}"
        )

    missing = [j for j in required if j not in sizes]
    if missing:
        shown = ", ".join(repr(j) for j in missing[:5]) + (", …" if len(missing) > 5 else "")
        raise ConfigurationError(
            f"no image size for {len(missing)} job(s) with annotations to export: {shown}; "
            f"expected a (width, height) for every such job; {_SIZE_HINT} covering them"
        )
    return sizes


# --------------------------------------------------------------------------- shapes


@dataclass(frozen=True)
class _Shape:
    """One exportable annotation, still in normalized coordinates."""

    image: ImageKey
    frame_index: int | None
    key: str
    track_id: str | None
    type: str
    label: str
    box: tuple[float, float, float, float]  # x_min, y_min, x_max, y_max
    ring: tuple[tuple[float, float], ...]  # vertices by point_index; may be empty


def _finite(*values: Any) -> bool:
    return all(v is not None and math.isfinite(v) for v in values)


def _point_rings(
    ds: Any, keys: pa.Array
) -> dict[tuple[str, str, str | None], tuple[tuple[float, float], ...] | None]:
    """Vertices per (job_id, annotation_key, frame_id), ordered by point_index.

    A ring with a null or non-finite coordinate maps to ``None`` (unusable).
    """
    cols = ["job_id", "annotation_key", "frame_id", "point_index", "x", "y"]
    points = _table(ds, "points", cols)
    points = points.filter(pc.is_in(points.column("annotation_key"), value_set=keys))
    if points.num_rows:
        order = pc.sort_indices(points, sort_keys=[(c, "ascending") for c in cols[:4]])
        points = points.take(order)
    rings: dict[tuple[str, str, str | None], list[tuple[float, float]] | None] = {}
    for job_id, key, frame_id, _index, x, y in _rows(points):
        ident = (job_id, key, frame_id)
        ring = rings.setdefault(ident, [])
        if ring is None:
            continue
        if _finite(x, y):
            ring.append((x, y))
        else:
            rings[ident] = None
    return {k: (tuple(v) if v is not None else None) for k, v in rings.items()}


def _collect_shapes(ds: Any, types: Sequence[str]) -> list[_Shape]:
    """Annotations of ``types`` with a label and usable geometry, in export order.

    Order: images by job_id, then frame_index, frame_id, sensor_id; within an image,
    the order of the annotations table.
    """
    cols = ["job_id", "annotation_key", "track_id", "frame_id", "frame_index", "sensor_id",
            "type", "label", "x_min", "y_min", "x_max", "y_max"]
    anns = _table(ds, "annotations", cols)
    anns = anns.filter(pc.is_in(anns.column("type"), value_set=pa.array(list(types), pa.string())))
    rings = _point_rings(ds, pc.unique(anns.column("annotation_key").combine_chunks()))
    shapes: list[_Shape] = []
    skipped: Counter[str] = Counter()
    for job_id, key, track, frame_id, frame_index, sensor, typ, label, *box in _rows(anns):
        if job_id is None:
            skipped["no job_id"] += 1
            continue
        if label is None:
            skipped["no label"] += 1
            continue
        ring = rings.get((job_id, key, frame_id), ())
        if ring is None:
            skipped["a null point coordinate"] += 1
            continue
        if typ == "polygon" and len(ring) < 3:
            skipped["fewer than 3 points"] += 1
            continue
        if _finite(*box):
            x0, y0, x1, y1 = box
            box = [min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)]
        elif len(ring) >= 3:
            xs, ys = [p[0] for p in ring], [p[1] for p in ring]
            box = [min(xs), min(ys), max(xs), max(ys)]
        else:
            skipped["no coordinates"] += 1
            continue
        if typ == "rectangle" and len(ring) < 3:
            ring = ()
        shapes.append(_Shape((job_id, frame_id, sensor), frame_index, key, track, typ, label,
                             (box[0], box[1], box[2], box[3]), ring))
    for reason, count in sorted(skipped.items()):
        logger.warning("export skips %d annotation(s) with %s", count, reason)

    def order(shape: _Shape) -> tuple[Any, ...]:
        job_id, frame_id, sensor = shape.image
        fi = shape.frame_index
        return (job_id, fi is not None, fi or 0, frame_id or "", sensor or "")

    shapes.sort(key=order)  # stable: table order within an image
    return shapes


def _images(shapes: Sequence[_Shape]) -> list[ImageKey]:
    return list(dict.fromkeys(s.image for s in shapes))


def _image_names(ds: Any, images: Sequence[ImageKey]) -> dict[ImageKey, tuple[str, str]]:
    """``image -> (file_name, stem)`` for every image.

    An image job is named after the basename of ``jobs.image_url`` (``stem`` without
    the extension), or its job id when it has no URL or two images would share a stem.
    A frame is ``job_id/frame_id`` (``/sensor_id``).
    """
    urls: dict[str, str] = {}
    for job_id, url in _rows(_table(ds, "jobs", ["job_id", "image_url"], required=False)):
        if job_id is not None and url and job_id not in urls:
            urls[job_id] = url
    names: dict[ImageKey, tuple[str, str]] = {}
    for image in images:
        job_id, frame_id, sensor = image
        if frame_id is None and sensor is None:
            base = _url_basename(urls.get(job_id))
            names[image] = (base, posixpath.splitext(base)[0]) if base else (job_id, job_id)
        else:
            name = "/".join(p for p in image if p is not None)
            names[image] = (name, name)
    stems = Counter(stem for _, stem in names.values())
    for image, (_, stem) in list(names.items()):
        if stems[stem] > 1 and image[1] is None and image[2] is None and stem != image[0]:
            logger.warning("images of several jobs share the name %r; job %r is named by its id",
                           stem, image[0])
            names[image] = (image[0], image[0])
    if len({stem for _, stem in names.values()}) < len(names):  # a job id met a basename
        names = {i: (n if i[1:] != (None, None) else (i[0], i[0])) for i, n in names.items()}
    return names


def _url_basename(url: str | None) -> str | None:
    if not url:
        return None
    base = posixpath.basename(unquote(urlsplit(url).path))
    return base if _safe_part(base) and posixpath.splitext(base)[0] else None


def _safe_part(part: str) -> bool:
    return bool(part) and part not in (".", "..") and not any(c in part for c in "/\\\0")


def _attributes(
    ds: Any, keys: pa.Array
) -> dict[tuple[str, str, str | None], dict[str, Any]]:
    """``(job_id, annotation_key, frame_id) -> {name: value or [values]}``.

    A name with one row and a null ``value_index`` is a single value; otherwise its
    values form a list ordered by ``value_index``.
    """
    cols = ["job_id", "annotation_key", "frame_id", "name", "value", "value_index"]
    attrs = _table(ds, "attributes", cols)
    attrs = attrs.filter(pc.is_in(attrs.column("annotation_key"), value_set=keys))
    grouped: dict[tuple[str, str, str | None], dict[str, list[tuple[Any, int, Any]]]] = (
        defaultdict(lambda: defaultdict(list))
    )
    for row, (job_id, key, frame_id, name, value, index) in enumerate(_rows(attrs)):
        if name is not None:
            grouped[(job_id, key, frame_id)][name].append((index, row, value))
    result: dict[tuple[str, str, str | None], dict[str, Any]] = {}
    for ident, by_name in grouped.items():
        out: dict[str, Any] = {}
        for name in sorted(by_name):
            entries = by_name[name]
            if len(entries) == 1 and entries[0][0] is None:
                out[name] = entries[0][2]
            else:
                entries.sort(key=lambda e: (e[0] is None, e[0] or 0, e[1]))
                out[name] = [e[2] for e in entries]
        result[ident] = out
    return result


# --------------------------------------------------------------------------- files


@contextmanager
def _atomic_file(path: Path) -> Iterator[IO[str]]:
    """Write ``path`` through a temporary file in the same directory, then rename it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _relative_name(file_name: str) -> Path:
    rel = Path(file_name)
    if not file_name or rel.is_absolute() or ".." in rel.parts or file_name.endswith(("/", "\\")):
        raise ConfigurationError(
            f"file_name must be a relative file name inside out_dir; got {file_name!r}; "
            "pass for example file_name='instances_train.json'"
        )
    return rel


def _r(value: float) -> float:
    return round(value, _PIXEL_DECIMALS) + 0.0  # + 0.0 turns -0.0 into 0.0


# --------------------------------------------------------------------------- COCO


def _shoelace(xs: Sequence[float], ys: Sequence[float]) -> float:
    n = len(xs)
    twice = sum(xs[i] * ys[(i + 1) % n] - xs[(i + 1) % n] * ys[i] for i in range(n))
    return abs(twice) / 2.0


def to_coco(
    ds: Any,
    out_dir: str | os.PathLike[str],
    *,
    image_size: Any = None,
    types: str | Sequence[str] = COCO_TYPES,
    file_name: str = "instances.json",
    categories: Sequence[str] | None = None,
    image_names: Mapping[ImageKey, str] | None = None,
) -> Path:
    """Write a COCO instances JSON file of the rectangles, polygons and masks of ``ds``.

    * ``images``: one per image with exported annotations (an image job, or one frame
      of a video job), ids from 1; ``file_name`` is the basename of ``jobs.image_url``
      (the job id without one, ``job_id/frame_id`` for a frame); ``width``/``height``
      from ``image_size`` (see :func:`resolve_image_sizes`); ``playment_job_id`` (and
      ``playment_frame_id`` / ``playment_sensor_id`` for frames).
    * ``categories``: the sorted labels, ids from 1, ``supercategory`` ``""``; pass
      ``categories=[…]`` to fix the list and its order (ids follow it, shared by every
      file written with the same list; a label missing from it is an error).
    * ``annotations``: pixel ``bbox`` ``[x, y, w, h]``, ``area`` (``w * h`` for a
      rectangle, shoelace for a polygon), ``segmentation`` (the polygon, or the
      rectangle's corners), ``iscrowd`` 0, ``attributes`` (name -> value, a list for
      multi-valued attributes) and ``playment_annotation_key``.
    * segmentation jobs (type ``segment``): one image per fetched PNG mask (its size
      is the mask's, ``image_size`` is not needed), one annotation per labelled colour
      with ``segmentation`` as uncompressed RLE (column-major counts), ``area`` the
      pixel count and ``bbox`` the pixels' box; the category is the class
      (``car`` for ``car # 5``, instance in ``playment_instance_id``).

    ``image_names`` maps ``(job_id, frame_id, sensor_id)`` to the ``file_name`` of an
    image (the training layout names files with their extensions; see training.py).
    The file is written atomically and byte-for-byte deterministic. Returns its path.

    Example:
        >>> path = to_coco(ds, "out/coco", image_size=(1920, 1080))  # doctest: +SKIP
        >>> from pycocotools.coco import COCO                         # doctest: +SKIP
        >>> COCO(str(path)).getCatIds()                               # doctest: +SKIP
        [1, 2]
    """
    wanted = _as_tuple(types, COCO_TYPES)
    unknown = [t for t in wanted if t not in COCO_TYPES]
    if unknown:
        raise ConfigurationError(
            f"COCO instances export supports the types {', '.join(COCO_TYPES)}; got "
            f"{', '.join(map(repr, unknown))}; pass types=('rectangle', 'polygon') or a subset"
        )
    path = Path(out_dir) / _relative_name(file_name)
    shapes = _collect_shapes(ds, [t for t in wanted if t != "segment"])
    images = _images(shapes)
    sizes = resolve_image_sizes(ds, image_size, job_ids={i[0] for i in images}) if images else {}
    masks = segment_images(
        ds, _table(ds, "masks", MASK_COLUMNS, required=False),
        _table(ds, "segments", SEGMENT_COLUMNS, required=False),
    ) if "segment" in wanted else []
    mask_images = [(m.job_id, m.frame_id, None) for m in masks]
    images += [i for i in mask_images if i not in set(images)]
    names = _image_names(ds, images)
    image_ids = {image: n for n, image in enumerate(images, 1)}
    labels = {s.label for s in shapes} | {a["label"] for m in masks for a in m.annotations}
    category_ids = {label: n for n, label in enumerate(sorted(labels), 1)}
    if categories is not None:  # a fixed list: ids shared by every split of an export
        fixed = check_classes(sorted(category_ids), categories)
        category_ids = {label: n for n, label in enumerate(fixed, 1)}
    if image_names is not None:
        names = {image: (image_names[image], names[image][1]) for image in images}
    keys = pa.array(sorted({s.key for s in shapes}), pa.string())
    attributes = _attributes(ds, keys)

    image_entries = []
    mask_sizes: dict[ImageKey, tuple[int, int]] = {
        (m.job_id, m.frame_id, None): (m.width, m.height) for m in masks}
    for image in images:
        job_id, frame_id, sensor = image
        width, height = mask_sizes.get(image) or sizes[job_id]
        entry: dict[str, Any] = {"id": image_ids[image], "file_name": names[image][0],
                                 "width": width, "height": height, "playment_job_id": job_id}
        if frame_id is not None:
            entry["playment_frame_id"] = frame_id
        if sensor is not None:
            entry["playment_sensor_id"] = sensor
        image_entries.append(entry)

    ann_entries = []
    for n, shape in enumerate(shapes, 1):
        width, height = sizes[shape.image[0]]
        xs = [x * width for x, _ in shape.ring]
        ys = [y * height for _, y in shape.ring]
        if shape.type == "polygon":
            x0, y0, x1, y1 = min(xs), min(ys), max(xs), max(ys)
            area = _shoelace(xs, ys)
        else:
            b = shape.box
            x0, y0, x1, y1 = b[0] * width, b[1] * height, b[2] * width, b[3] * height
            area = (x1 - x0) * (y1 - y0)
            if not xs:
                xs, ys = [x0, x1, x1, x0], [y0, y0, y1, y1]
        job_id, frame_id, _ = shape.image
        attrs = dict(attributes.get((job_id, shape.key, None), {}))
        if frame_id is not None:
            attrs.update(attributes.get((job_id, shape.key, frame_id), {}))
        entry = {
            "id": n,
            "image_id": image_ids[shape.image],
            "category_id": category_ids[shape.label],
            "bbox": [_r(x0), _r(y0), _r(x1 - x0), _r(y1 - y0)],
            "area": _r(area),
            "segmentation": [[_r(v) for xy in zip(xs, ys, strict=True) for v in xy]],
            "iscrowd": 0,
            "attributes": attrs,
            "playment_annotation_key": shape.key,
        }
        if shape.track_id is not None:
            entry["playment_track_id"] = shape.track_id
        ann_entries.append(entry)
    for mask, image in zip(masks, mask_images, strict=True):
        for ann in mask.annotations:
            label = ann.pop("label")
            ann_entries.append({"id": len(ann_entries) + 1, "image_id": image_ids[image],
                                "category_id": category_ids[label], **ann})

    batch_column = _table(ds, "jobs", ["batch_id"], required=False).column("batch_id")
    batch_ids = sorted({b for b in batch_column.to_pylist() if b})
    doc = {
        "info": {"description": "Playment annotations exported by playment_datasets",
                 "playment_batch_ids": batch_ids},
        "licenses": [],
        "images": image_entries,
        "annotations": ann_entries,
        "categories": [{"id": i, "name": label, "supercategory": ""}
                       for label, i in category_ids.items()],
    }
    with _atomic_file(path) as fh:
        json.dump(doc, fh, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    logger.info("wrote COCO %s: %d images, %d annotations, %d categories",
                path, len(image_entries), len(ann_entries), len(category_ids))
    return path


# --------------------------------------------------------------------------- YOLO


def _clip(value: float) -> float:
    return min(1.0, max(0.0, value))


def _is_label_dir(path: Path) -> bool:
    """Whether ``path`` holds only YOLO label files (so replacing it loses nothing else)."""
    return all(p.is_dir() or p.suffix == ".txt" for p in path.rglob("*"))


def check_classes(labels: Sequence[str], classes: Sequence[str] | None) -> list[str]:
    """The class list: ``classes`` checked against the exported ``labels``, else ``labels``.

    Example:
        >>> check_classes(["car"], ["person", "car"])
        ['person', 'car']
    """
    if classes is None:
        class_list = list(labels)
    else:
        if isinstance(classes, str):
            raise ConfigurationError(
                f"classes must be a list of labels; got the string {classes!r}; "
                f"pass for example classes=[{classes!r}]"
            )
        class_list = [str(c) for c in classes]
        dupes = sorted(c for c, k in Counter(class_list).items() if k > 1)
        if dupes:
            raise ConfigurationError(
                f"classes must not repeat a label; got {', '.join(map(repr, dupes))} twice; "
                "pass each label once"
            )
        unknown = [label for label in labels if label not in set(class_list)]
        if unknown:
            shown = ", ".join(map(repr, unknown[:5])) + (", …" if len(unknown) > 5 else "")
            raise ConfigurationError(
                f"{len(unknown)} label(s) of the dataset are not in classes: {shown}; "
                "expected every exported label in classes; add them, or pass classes=None "
                "for the sorted labels"
            )
    bad = [c for c in class_list if not c.strip() or any(ch in c for ch in "\r\n")]
    if bad:
        raise ConfigurationError(
            f"class names must be non-blank single lines; got {bad[0]!r}; rename the label"
        )
    return class_list


def yolo_lines(shapes: Sequence[_Shape], stems: Mapping[ImageKey, str],
               class_ids: Mapping[str, int]) -> dict[str, list[str]]:
    """``stem -> ["class cx cy w h", …]``: boxes clipped to the image, empty ones skipped."""
    lines: dict[str, list[str]] = {}
    skipped = 0
    for shape in shapes:
        x0, y0, x1, y1 = (_clip(v) for v in shape.box)
        if x1 <= x0 or y1 <= y0:
            skipped += 1
            continue
        stem = stems[shape.image]
        framed = shape.image[1:] != (None, None)
        for part in [p for p in shape.image if p is not None] if framed else [stem]:
            if not _safe_part(part):
                raise InvalidIdError(
                    f"cannot name a label file after the id {part!r}: expected ids without "
                    "'/', '\\' or NUL that are not '.' or '..'; rename the job or frame"
                )
        lines.setdefault(stem, []).append(
            f"{class_ids[shape.label]} {(x0 + x1) / 2:.6f} {(y0 + y1) / 2:.6f} "
            f"{x1 - x0:.6f} {y1 - y0:.6f}"
        )
    if skipped:
        logger.warning("YOLO export skips %d box(es) empty after clipping to the image", skipped)
    return lines


def to_yolo(
    ds: Any,
    out_dir: str | os.PathLike[str],
    *,
    image_size: Any = None,
    classes: Sequence[str] | None = None,
    polygons_as_boxes: bool = False,
) -> Path:
    """Write YOLO detection labels of the rectangles of ``ds``; return ``out_dir``.

    Layout::

        out_dir/classes.txt            one label per line; line n is class id n
        out_dir/labels/<name>.txt      one line "class cx cy w h" per box

    ``<name>`` is the image basename without extension (from ``jobs.image_url``), the
    job id without one, or ``<job_id>/<frame_id>`` for a frame of a video job. Values
    are normalized to 0..1 with 6 decimals, clipped to the image; boxes empty after
    clipping are skipped. Images without boxes get no label file (YOLO reads a missing
    label file as background). ``labels/`` is replaced as a whole, so no stale file of
    an earlier export survives.

    ``classes`` fixes the class order; a label of the data not in it is an error.
    By default classes are the sorted labels. ``polygons_as_boxes=True`` exports
    polygons as their bounding boxes. YOLO coordinates are normalized like the tables,
    so ``image_size`` is not needed; when given it is checked as in :func:`to_coco`.

    Example:
        >>> to_yolo(ds, "out/yolo", classes=["car", "person"])  # doctest: +SKIP
        PosixPath('out/yolo')
    """
    out = Path(out_dir)
    types = ("rectangle", "polygon") if polygons_as_boxes else ("rectangle",)
    shapes = _collect_shapes(ds, types)
    images = _images(shapes)
    if image_size is not None and images:
        resolve_image_sizes(ds, image_size, job_ids={i[0] for i in images})
    class_list = check_classes(sorted({s.label for s in shapes}), classes)
    class_ids = {label: n for n, label in enumerate(class_list)}
    names = _image_names(ds, images)
    lines = yolo_lines(shapes, {image: stem for image, (_, stem) in names.items()}, class_ids)

    labels_dir = out / "labels"
    if labels_dir.exists() and not (labels_dir.is_dir() and _is_label_dir(labels_dir)):
        raise ConfigurationError(
            f"{labels_dir} exists and holds files other than YOLO labels; expected no "
            "labels directory or one from an earlier export; choose another out_dir"
        )
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out, prefix=".labels.", suffix=".tmp"))
    try:
        for stem in sorted(lines):
            target = staging / f"{stem}.txt"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text("\n".join(lines[stem]) + "\n", encoding="utf-8")
        with _atomic_file(out / "classes.txt") as fh:
            fh.write("".join(f"{c}\n" for c in class_list))
        old = None
        if labels_dir.exists():
            old = Path(tempfile.mkdtemp(dir=out, prefix=".labels.old.", suffix=".tmp"))
            os.replace(labels_dir, old / "labels")
        os.replace(staging, labels_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info("wrote YOLO %s: %d label files, %d boxes, %d classes",
                out, len(lines), sum(map(len, lines.values())), len(class_list))
    return out


# --------------------------------------------------------------------------- CSV


def to_csv(
    ds: Any, out_dir: str | os.PathLike[str], *, tables: str | Sequence[str] | None = None
) -> Path:
    """Write one ``<table>.csv`` per table (all by default); return ``out_dir``.

    UTF-8, a header row, no index, nulls as empty fields, floats with full precision.
    Each file is written atomically. A table ``ds`` lacks is written with the schema's
    header and no rows.

    Example:
        >>> to_csv(ds, "out/csv", tables=["jobs", "annotations"])  # doctest: +SKIP
        PosixPath('out/csv')
        >>> pd.read_csv("out/csv/annotations.csv")                 # doctest: +SKIP
    """
    names = _as_tuple(tables, TABLE_NAMES)
    unknown = [t for t in names if t not in TABLES]
    if unknown:
        raise ConfigurationError(
            f"unknown table(s) {', '.join(map(repr, unknown))}; expected names among "
            f"{', '.join(TABLE_NAMES)}"
        )
    out = Path(out_dir)
    for name in names:
        frame = getattr(ds, name, None)
        if frame is None:
            frame = TABLES[name].empty_table().to_pandas()
        elif isinstance(frame, pa.Table):
            frame = frame.to_pandas()
        elif not isinstance(frame, pd.DataFrame):
            raise ConfigurationError(
                f"ds.{name} must be a pandas DataFrame; got {type(frame).__name__}"
            )
        with _atomic_file(out / f"{name}.csv") as fh:
            frame.to_csv(fh, index=False, na_rep="", lineterminator="\n")
        logger.info("wrote %s: %d rows", out / f"{name}.csv", len(frame))
    return out
