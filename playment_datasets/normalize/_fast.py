"""The fast path for image and video results: typed decoding in C, the same rows.

Nearly every image and video result has exactly the documented shape. For those,
:mod:`msgspec` decodes the document into typed structs, checking every type in C, and
the rows are read off the structs with no check left to make in Python, a column at a
time (``benchmarks/bench_normalize.py`` measures it against the general reader).

Nothing is decided here that the general reader would decide differently:

- Each shape, tracker and tracker frame is decoded on its own. One that is not of the
  documented shape (a field the tables have no column for, a value of another type, an
  integer that a float does not hold exactly, a point label beyond 64 bits) is parsed
  with :mod:`json` and read by the general reader (:mod:`._shapes`), warnings and all.
- A document of another outline (another kind, a top-level key kept in ``extra``, not
  valid UTF-8 or JSON…) is left to the general reader whole: :func:`outline` returns
  None, and nothing has been emitted.

``tests/test_normalize_fast.py`` checks that both paths give the same tables.
"""

from __future__ import annotations

import json
import re
from operator import attrgetter
from typing import Any, NamedTuple

import msgspec
from msgspec import UNSET, Raw, Struct, UnsetType, field

from playment_datasets.normalize._base import Bad, Out, append_row, encode, sort_keys
from playment_datasets.normalize._formats import frames_of
from playment_datasets.normalize._shapes import (
    SHAPE_LISTS,
    TYPE_NAMES,
    add_shape,
    add_tracker,
    add_tracker_frame,
)

#: Coordinates at or beyond this magnitude go to the general reader: a JSON integer
#: there does not convert to a float exactly, and the general reader refuses it.
_EXACT = float(2**53)
_INT64 = 2**63
_X, _Y, _LABEL = attrgetter("x"), attrgetter("y"), attrgetter("label")

Scalar = str | int | float | bool | None


class _Attribute(Struct, forbid_unknown_fields=True, gc=False):
    value: Scalar | list[Scalar] = None
    state: str | None = None


class _NamedAttribute(Struct, forbid_unknown_fields=True, gc=False):
    """An entry of the older list form of ``attributes``."""

    name: str
    value: Scalar | list[Scalar] = None
    state: str | None = None


class _Corner(Struct, forbid_unknown_fields=True, gc=False):
    x: float
    y: float


class _Point(Struct, forbid_unknown_fields=True, gc=False):
    x: float
    y: float
    label: int | UnsetType = UNSET


class _Face(Struct, forbid_unknown_fields=True, gc=False):
    coordinates: list[str]


class _Shape(Struct, forbid_unknown_fields=True, gc=False):
    """Any 2D shape; :func:`_emit` checks which geometry fields its type may have."""

    id: str | None = field(default=None, name="_id")
    label: str | None = None
    state: str | None = None
    type: str | None | UnsetType = UNSET
    attributes: Raw | UnsetType = UNSET  # read by _attribute_rows (memoized)
    coordinates: list[_Corner] | UnsetType = UNSET
    points: dict[str, _Point] | UnsetType = UNSET
    edges: dict[str, tuple[str, str]] | None | UnsetType = UNSET
    faces: Raw | UnsetType = UNSET  # read by _extras (memoized)
    # keys the tables have no column for that shapes often carry: kept in ``extra`` (a
    # cuboid's faces may stand beside its points instead of under ``faces``)
    color: Raw | UnsetType = UNSET
    front: Raw | UnsetType = UNSET
    back: Raw | UnsetType = UNSET
    side: Raw | UnsetType = UNSET
    left: Raw | UnsetType = UNSET
    right: Raw | UnsetType = UNSET
    top: Raw | UnsetType = UNSET
    bottom: Raw | UnsetType = UNSET


#: The fields of :class:`_Shape` that go to ``extra``.
_EXTRA = ("color", "front", "back", "side", "left", "right", "top", "bottom")


class _Tracker(Struct, forbid_unknown_fields=True, gc=False):
    frames: dict[str, Raw]
    id: str | None = field(default=None, name="_id")
    type: str | None = None
    label: str | None = None


class _AnnotationData(Struct, forbid_unknown_fields=True, gc=False):
    annotations: list[Raw] | None = None


class _Body(Struct, forbid_unknown_fields=True, gc=False):
    annotations: dict[str, list[Raw] | None] | UnsetType = UNSET
    image_url: str | None | UnsetType = UNSET
    annotation_data: _AnnotationData | UnsetType = UNSET
    video_data: Raw | UnsetType = UNSET


class _Document(_Body, forbid_unknown_fields=True, gc=False):
    """A body, or ``{"data": body}`` (the optional outer wrapper)."""

    data: _Body | UnsetType = UNSET


_DOCUMENT = msgspec.json.Decoder(_Document)
_SHAPE = msgspec.json.Decoder(_Shape)
_TRACKER = msgspec.json.Decoder(_Tracker)
_KEYS = msgspec.json.Decoder(dict[str, Raw])  # an object's keys in document order
_ATTRIBUTES = msgspec.json.Decoder(
    dict[str, _Attribute | Scalar | list[Scalar]] | list[_NamedAttribute] | None)
_FACES = msgspec.json.Decoder(dict[str, _Face] | None)
_UNREAD = (msgspec.DecodeError, msgspec.ValidationError)


class Refused(Exception):
    """Raised inside :func:`fill`: the document is left to the general reader whole (the
    caller drops what was emitted). Only :func:`fill` raises it, before or while emitting."""


#: Values parsed here with :mod:`json` nest no deeper than this: a deeper document is
#: left to the general reader, which decides whether it nests too deep to read at all.
_DEPTH = 64
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_BRACKET = re.compile(rb"[\[\]{}]")


def _loads(raw: Raw | bytes) -> Any:
    """``json.loads`` of a part the decoder left raw, or :class:`Refused`.

    The decoder has checked the part is JSON. Refused are a part nested deeper than
    ``_DEPTH`` (the whole document then nests deeper than the part) and an integer
    ``json`` will not read (over 4,300 digits): in both the general reader reads the
    whole document and reports what it finds.
    """
    data = bytes(raw)
    if data.count(b"[") + data.count(b"{") > _DEPTH and _depth(data) > _DEPTH:
        raise Refused
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        raise Refused from None


def _depth(data: bytes) -> int:
    """How deep arrays and objects nest in a JSON text (strings left out)."""
    depth = deepest = 0
    for bracket in _BRACKET.findall(_STRING.sub(b'""', data)):
        depth += 1 if bracket in b"[{" else -1
        deepest = max(deepest, depth)
    return deepest


class Outline(NamedTuple):
    """A document the fast path reads: its kind, the body's JSON path, what was decoded."""

    kind: str
    path: str
    body: _Body
    trackers: list[_Tracker | None]  # video: each entry, None where it is not plain


def outline(data: bytes) -> Outline | None:
    """Decode a result; None when it is not a plain image or video result.

    Nothing is emitted: the kind is settled before the first row (an error row names it).

    Example:
        >>> outline(b'{"data": {"annotations": {"rectangles": []}}}')[:2]
        ('image', '$.data')
        >>> outline(b'{"legend": {"#ff0000": "car"}}') is None
        True
    """
    if not data.isascii():
        try:  # the decoder does not look inside the parts it leaves raw
            data.decode("utf-8")
        except UnicodeDecodeError:
            return None
    try:
        doc = _DOCUMENT.decode(data)
    except (*_UNREAD, RecursionError):
        return None
    body: _Body = doc
    path = "$"
    if doc.data is not UNSET:
        if not (doc.annotations is doc.image_url is doc.annotation_data is doc.video_data
                is UNSET):
            return None  # keys beside the wrapper: the general reader keeps them
        body, path = doc.data, "$.data"
    if body.annotations is not UNSET:
        if (body.annotation_data is not UNSET or body.video_data is not UNSET
                or not SHAPE_LISTS.keys() >= body.annotations.keys()):
            return None
        return Outline("image", path, body, [])
    if body.annotation_data is UNSET or body.image_url is not UNSET:
        return None
    trackers = [_decoded(_TRACKER, raw) for raw in body.annotation_data.annotations or []]
    if not any(trackers):
        return None  # no entry is a tracker: not a plain video result
    return Outline("video", path, body, trackers)


def fill(out: Out, plan: Outline) -> tuple[dict[str, Any], str | None]:
    """Emit the rows of an outlined result into ``out`` (an ``Out(…, columnar=True)``);
    return (the jobs row's extra, image_url).

    Example:
        >>> out = Out("j1", columnar=True)
        >>> fill(out, outline(b'{"annotations": {"lines": [{"_id": "a", "label": "lane",'
        ...      b' "points": {"p1": {"x": 0.1, "y": 0.2}, "p2": {"x": 0.3, "y": 0.4}}}]}}'))
        ({}, None)
        >>> cols = out.annotations.cols  # annotation_key, …, x_min, y_min, x_max, y_max, …
        >>> cols[0], [col[0] for col in cols[9:13]]
        (['j1/a'], [0.1, 0.2, 0.3, 0.4])
    """
    body, path = plan.body, plan.path
    if plan.kind == "image":
        _image(out, body.annotations, path)  # type: ignore[arg-type]
        return {}, None if body.image_url is UNSET else body.image_url  # type: ignore[return-value]
    extra: dict[str, Any] = {}
    if body.video_data is not UNSET:
        video_data = _loads(body.video_data)
        frames_of(out, {"video_data": video_data}, extra, path)
    epath = f"{path}.annotation_data.annotations"
    entries = body.annotation_data.annotations  # type: ignore[union-attr]
    for i, (raw, tracker) in enumerate(zip(entries, plan.trackers, strict=True)):  # type: ignore[arg-type]
        if tracker is None:
            with out.item(f"{epath}[{i}]"):
                add_tracker(out, _loads(raw), f"{epath}[{i}]", f"annotations[{i}]")
        else:
            _video_tracker(out, tracker, f"{epath}[{i}]", f"annotations[{i}]")
    return extra, None


def _decoded(decoder: msgspec.json.Decoder[Any], raw: Raw) -> Any:
    """``raw`` decoded into the decoder's type, or None when it is not of that form."""
    try:
        return decoder.decode(raw)
    except _UNREAD:
        return None


def _image(out: Out, lists: dict[str, list[Raw] | None], path: str) -> None:
    for list_name, shapes in lists.items():
        if shapes is None:
            continue
        typ = SHAPE_LISTS[list_name]
        lpath = f"{path}.annotations.{list_name}"
        for i, raw in enumerate(shapes):
            shape = _decoded(_SHAPE, raw)
            ordinal = f"{list_name}[{i}]"
            if shape is None or not _emit(out, typ, shape, raw, ordinal):
                with out.item(f"{lpath}[{i}]"):  # the general reader, as add_image does
                    add_shape(out, typ, _loads(raw), f"{lpath}[{i}]", ordinal)


def _video_tracker(out: Out, tracker: _Tracker, path: str, ordinal: str) -> None:
    track_id = tracker.id
    track_label = tracker.label
    base = track_id if track_id is not None else ordinal
    for frame_id, raw in tracker.frames.items():
        shape = _decoded(_SHAPE, raw)
        typ = None if shape is None else _shape_type(tracker.type, shape)
        if typ is None or not _emit(out, typ, shape, raw, ordinal,  # type: ignore[arg-type]
                                    base=base,
                                    frame_id=frame_id, track_id=track_id,
                                    track_label=track_label):
            fpath = f"{path}.frames.{frame_id}"
            with out.item(fpath):  # the general reader, as add_tracker does
                add_tracker_frame(out, _loads(raw), fpath, ordinal, base, frame_id,
                                  tracker.type, track_id, track_label, {})


def _shape_type(tracker_type: str | None, shape: _Shape) -> str | None:
    """The type of a tracker frame (as :func:`._shapes.shape_type`); None: not decided here."""
    raw = tracker_type if shape.type is UNSET else shape.type
    if raw is None:
        if shape.coordinates is not UNSET:
            return "rectangle"
        if shape.points is not UNSET:
            return "line" if shape.edges is UNSET else "polygon"
        return None
    return TYPE_NAMES.get(raw.lower())


def _emit(out: Out, typ: str, s: _Shape, raw: Raw, ordinal: str, *, base: str | None = None,
          frame_id: str | None = None, track_id: str | None = None,
          track_label: str | None = None) -> bool:
    """The rows of one shape, as :func:`._shapes.add_shape` makes them.

    Returns False, having emitted nothing, when the shape is not of its type's
    documented form.
    """
    point_keys: list[None] | tuple[str, ...]
    point_index: tuple[int | None, ...] | range
    labels: list[int | None] | None = None
    if typ == "rectangle":
        corners = s.coordinates
        if corners is UNSET or s.points is not UNSET or s.edges is not UNSET \
                or s.faces is not UNSET:
            return False
        xs = list(map(_X, corners))
        ys = list(map(_Y, corners))
        n = len(xs)
        point_keys = [None] * n
        point_index = range(1, n + 1)
    else:
        points = s.points
        if points is UNSET or s.coordinates is not UNSET \
                or (s.faces is not UNSET and typ != "cuboid"):
            return False
        keys = tuple(points)
        point_keys, point_index = _point_order(keys)
        values = list(points.values()) if point_keys == keys else [points[k] for k in point_keys]
        xs = list(map(_X, values))
        ys = list(map(_Y, values))
        n = len(xs)
        given = list(map(_LABEL, values))
        if given.count(UNSET) != n:  # keypoint labels
            labels = [None if label is UNSET else label for label in given]  # type: ignore[misc]
            if not all(-_INT64 < label < _INT64 for label in labels if label is not None):
                return False
    if n:
        bbox: tuple[float | None, ...] = (min(xs), min(ys), max(xs), max(ys))
        if not (-_EXACT < bbox[0] and bbox[2] < _EXACT  # type: ignore[operator]
                and -_EXACT < bbox[1] and bbox[3] < _EXACT):  # type: ignore[operator]
            return False
    else:
        bbox = (None, None, None, None)
    extras = _extras(s, raw, typ == "cuboid")
    attributes = () if s.attributes is UNSET else _attribute_rows(s.attributes)
    if extras is None or attributes is None:
        return False

    ann_id = s.id
    key = out.key(base if base is not None else ann_id if ann_id is not None else ordinal,
                  frame_id)
    nones = [None] * n
    face_of = extras[0]
    cols = out.points.cols  # annotation_key, frame_id, point_key, point_index, x, y, …
    cols[0].extend([key] * n)
    cols[1].extend([frame_id] * n)
    cols[2].extend(point_keys)
    cols[3].extend(point_index)
    cols[4].extend(xs)
    cols[5].extend(ys)
    cols[6].extend(nones if labels is None else labels)
    cols[7].extend([face_of.get(k) for k in point_keys] if face_of else nones)  # type: ignore[arg-type]
    edges = s.edges
    if edges:
        edge_keys, edge_index = _point_order(tuple(edges))
        pairs = [edges[k] for k in edge_keys]
        m = len(pairs)
        cols = out.edges.cols  # annotation_key, frame_id, edge_key, edge_index, from, to
        cols[0].extend([key] * m)
        cols[1].extend([frame_id] * m)
        cols[2].extend(edge_keys)
        cols[3].extend(edge_index)
        cols[4].extend([p[0] for p in pairs])
        cols[5].extend([p[1] for p in pairs])
    if attributes:
        m = len(attributes[0])
        cols = out.attributes.cols  # annotation_key, frame_id, name, value, index, state
        cols[0].extend([key] * m)
        cols[1].extend([frame_id] * m)
        for col, values in zip(cols[2:], attributes, strict=True):
            col.extend(values)
    append_row(out.annotations.cols, (
        key, ann_id, track_id, track_label, frame_id,
        None if frame_id is None else out.frame_index.get(frame_id), None, typ,
        s.label if s.label is not None else track_label, *bbox, n, s.state, extras[1],
    ))
    return True


# Shapes repeat their faces, attributes and extra keys byte for byte (the same three
# cuboid faces, the same few attribute values), so what is read from them is memoized,
# keyed by their bytes. A memo holds at most _MEMO entries, none with a key of more
# than _MEMO_BYTES bytes: a few MB in all.
_MEMO = 2048
_MEMO_BYTES = 512
_ORDERS: dict[Any, tuple[tuple[str, ...], tuple[int | None, ...]]] = {}
_EXTRAS: dict[tuple[Any, ...], tuple[dict[str, str] | None, str | None] | None] = {}
_AttributeColumns = tuple[list[Any], ...]
_ATTRIBUTE_ROWS: dict[bytes, _AttributeColumns | None] = {}
_NO_EXTRAS: tuple[None, None] = (None, None)


def _remember(memo: dict[Any, Any], key: Any, value: Any, size: int = 0) -> Any:
    """``value``, kept in ``memo`` unless its key's bytes are many; a full memo starts
    again empty (so it follows what the results of the day repeat)."""
    if size < _MEMO_BYTES:
        if len(memo) >= _MEMO:
            memo.clear()
        memo[key] = value
    return value


def _point_order(keys: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[int | None, ...]]:
    """Point keys in :func:`._base.sort_keys` order, and their integer suffixes.

    The order depends on the set of keys only, so a permutation not seen before (the
    points of a cuboid come in any order) is found by its set.
    """
    got = _ORDERS.get(keys)
    if got is None:
        size = sum(map(len, keys))
        as_set = frozenset(keys)
        got = _ORDERS.get(as_set)
        if got is None:
            order = sort_keys(keys)
            got = _remember(_ORDERS, as_set, (tuple(k for k, _ in order),
                                              tuple(i for _, i in order)), size)
        _remember(_ORDERS, keys, got, size)
    return got


def _extras(s: _Shape, raw: Raw, cuboid: bool) -> tuple[dict[str, str] | None, str | None] | None:
    """(point -> its cuboid faces, the annotation's ``extra`` text); None: not read here.

    ``extra`` holds the keys without a column in document order, then ``faces``, as the
    general reader builds it.
    """
    faces = s.faces
    if s.color is s.front is s.back is s.side is s.left is s.right is s.top is s.bottom \
            is UNSET:
        if faces is UNSET:
            return _NO_EXTRAS
        pairs: tuple[tuple[str, bytes], ...] = ()
    else:
        present = [name for name in _EXTRA if getattr(s, name) is not UNSET]
        if len(present) > 1:
            present = [name for name in _KEYS.decode(raw) if name in present]
        pairs = tuple((name, bytes(getattr(s, name))) for name in present)
    key = (cuboid, None if faces is UNSET else bytes(faces), pairs)
    if key in _EXTRAS:
        return _EXTRAS[key]
    size = len(key[1] or b"") + sum(len(text) for _, text in pairs)
    extra = {name: _loads(text) for name, text in pairs}
    face_of = None
    if key[1] is not None:
        try:
            container = _FACES.decode(key[1])
        except _UNREAD:
            return _remember(_EXTRAS, key, None, size)
        if container is not None:
            extra["faces"] = {name: {"coordinates": face.coordinates}
                              for name, face in container.items()}
    if cuboid:
        face_of = _face_of(extra)
    try:
        text = encode(extra, "") if extra else None
    except Bad:  # a number too large for a float, parsed as infinity
        return _remember(_EXTRAS, key, None, size)
    return _remember(_EXTRAS, key, (face_of, text), size)


def _face_of(extra: dict[str, Any]) -> dict[str, str]:
    """Point name -> the names of the cuboid faces it belongs to, comma-separated.

    Faces are read as :func:`._shapes._faces` reads them: those under ``faces``, then any
    key beside the points whose value is ``{"coordinates": [point names]}``.
    """
    by_name = {name: face["coordinates"] for name, face in extra.get("faces", {}).items()}
    for name, value in extra.items():
        if name != "faces" and type(value) is dict and type(value.get("coordinates")) is list \
                and all(type(p) is str for p in value["coordinates"]):
            by_name[name] = value["coordinates"]
    member: dict[str, list[str]] = {}
    for name, points in by_name.items():
        for p in points:
            member.setdefault(p, []).append(name)
    return {p: ",".join(sorted(set(names))) for p, names in member.items()}


def _attribute_rows(raw: Raw | UnsetType) -> _AttributeColumns | None:
    """The attribute rows of a shape as four columns (name, value, index, state), as
    :meth:`Out.add_attributes` makes them; ``()`` when there are none; None: not read here."""
    if raw is UNSET:
        return ()
    data = bytes(raw)
    if data in _ATTRIBUTE_ROWS:
        return _ATTRIBUTE_ROWS[data]
    try:
        attrs = _ATTRIBUTES.decode(data)
    except _UNREAD:
        return _remember(_ATTRIBUTE_ROWS, data, None, len(data))
    rows: list[tuple[Any, ...]] = []
    items = (attrs.items() if type(attrs) is dict
             else [(a.name, a) for a in attrs] if attrs is not None else [])
    for name, entry in items:
        state = None
        if type(entry) is _Attribute or type(entry) is _NamedAttribute:
            value = entry.value
            state = entry.state
        else:
            value = entry
        if type(value) is list:
            if not value:
                rows.append((name, None, None, state))
            rows.extend((name, v if type(v) is str else _text(v), i, state)
                        for i, v in enumerate(value))
        else:
            rows.append((name, value if type(value) is str else _text(value), None, state))
    columns = tuple(list(col) for col in zip(*rows, strict=True)) if rows else ()
    return _remember(_ATTRIBUTE_ROWS, data, columns, len(data))


def _text(value: Any) -> str | None:
    """The JSON text of a scalar (finite: the decoder refuses NaN and Infinity)."""
    if value is None:
        return None
    if type(value) is bool:
        return "true" if value else "false"
    return str(value) if type(value) is int else repr(value)
