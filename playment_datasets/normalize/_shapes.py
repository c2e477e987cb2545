"""2D shapes: image results, video trackers and the 2D boxes of sensor-fusion results."""

from __future__ import annotations

from typing import Any

from playment_datasets.normalize._base import (
    Bad,
    Out,
    bad,
    encode,
    need_dict,
    need_list,
    num,
    sort_keys,
)

#: Shape list of an image result → annotation type.
SHAPE_LISTS = {
    "rectangles": "rectangle",
    "polygons": "polygon",
    "lines": "line",
    "cuboids": "cuboid",
    "landmarks": "landmark",
}
#: Spellings of ``type`` in video trackers and sensor-fusion entries → annotation type.
TYPE_NAMES = {
    **{t: t for t in SHAPE_LISTS.values()},
    **SHAPE_LISTS,
    "bounding_box": "rectangle",
    "polyline": "line",
    "keypoints": "landmark",
}

_COMMON = frozenset({"_id", "label", "attributes", "state", "type"})
_KNOWN = {
    "rectangle": _COMMON | {"coordinates"},
    "polygon": _COMMON | {"points", "edges"},
    "line": _COMMON | {"points", "edges"},
    "landmark": _COMMON | {"points", "edges"},
    "cuboid": _COMMON | {"points", "edges", "faces"},
}
_NO_CONTEXT: frozenset[str] = frozenset()


def shape_type(raw: Any, obj: dict[str, Any], path: str) -> str:
    """The annotation type of a tracker / entry from its ``type`` (or its geometry)."""
    if raw is None:
        if "coordinates" in obj:
            return "rectangle"
        if "points" in obj:
            return "polygon" if "edges" in obj else "line"
        raise Bad(path, 'expected a "type" or a geometry ("coordinates" or "points")')
    if type(raw) is not str or raw.lower() not in TYPE_NAMES:
        raise bad(f"{path}.type", f"one of {', '.join(sorted(_KNOWN))}", raw)
    return TYPE_NAMES[raw.lower()]


def _faces(obj: dict[str, Any], path: str) -> tuple[dict[str, list[str]], set[str]]:
    """Faces of a 2D cuboid: face name → point names, and the keys that held them."""
    faces: dict[str, list[str]] = {}
    used: set[str] = set()
    container = obj.get("faces")
    if container is not None:
        for name, face in need_dict(container, f"{path}.faces").items():
            fpath = f"{path}.faces.{name}"
            coords = need_list(need_dict(face, fpath).get("coordinates"), f"{fpath}.coordinates")
            for i, p in enumerate(coords):
                if type(p) is not str:
                    raise bad(f"{fpath}.coordinates[{i}]", "a point name", p)
            faces[name] = coords
        used.add("faces")
    for name, face in obj.items():
        if (name not in _KNOWN["cuboid"] and type(face) is dict
                and type(face.get("coordinates")) is list
                and all(type(p) is str for p in face["coordinates"])):
            faces[name] = face["coordinates"]
            used.add(name)
    return faces, used


def add_shape(out: Out, typ: str, obj: Any, path: str, ordinal: str, *,
              base: str | None = None, frame_id: str | None = None,
              frame_index: int | None = None, track_id: str | None = None,
              track_label: str | None = None, sensor_id: str | None = None,
              default_label: str | None = None, context: frozenset[str] = _NO_CONTEXT,
              extra: dict[str, Any] | None = None) -> None:
    """Emit the rows of one 2D annotation (annotations, points, edges, attributes).

    ``base`` is the id the annotation key is built from (the tracker id for video);
    by default the object's ``_id``, else ``ordinal``. ``context`` names keys the
    caller has read from the object already (frame_id, track_id, …).
    """
    if type(obj) is not dict:
        raise bad(path, "an object", obj)
    ann_id = out.text(obj.get("_id"), f"{path}._id")
    label = out.text(obj.get("label"), f"{path}.label")
    if label is None:
        label = default_label
    state = out.text(obj.get("state"), f"{path}.state")
    known = _KNOWN[typ]
    extra = {} if extra is None else extra
    if not known.issuperset(obj):
        for k in obj:
            if k not in known and k not in context:
                extra[k] = obj[k]
    if base is None:
        base = ann_id if ann_id is not None else ordinal
    key = out.key(base, frame_id)
    job_id = out.job_id
    points = out.points

    if typ == "rectangle":
        coords = obj.get("coordinates")
        if type(coords) is not list:
            raise bad(f"{path}.coordinates", "an array of {x, y} corners", coords)
        xs = []
        ys = []
        lossy = False
        for i, c in enumerate(coords):
            if type(c) is not dict:
                raise bad(f"{path}.coordinates[{i}]", "an {x, y} object", c)
            x = c.get("x")
            y = c.get("y")
            # inline fast path; num() builds the JSON path only for odd values
            if type(x) is not float or x - x != 0:
                x = num(x, f"{path}.coordinates[{i}].x")
            if type(y) is not float or y - y != 0:
                y = num(y, f"{path}.coordinates[{i}].y")
            if len(c) != 2:
                lossy = True
            xs.append(x)
            ys.append(y)
        if lossy:
            extra["coordinates"] = coords
        n = len(xs)
        nones = [None] * n
        cols = points.cols  # annotation_key, frame_id, point_key, point_index, x, y, …
        cols[0].extend([key] * n)
        cols[1].extend([frame_id] * n)
        cols[2].extend(nones)
        cols[3].extend(range(1, n + 1))
        cols[4].extend(xs)
        cols[5].extend(ys)
        cols[6].extend(nones)
        cols[7].extend(nones)
    else:
        pts = obj.get("points")
        if type(pts) is not dict:
            raise bad(f"{path}.points", "an object of named points", pts)
        face_of: dict[str, str] = {}
        if typ == "cuboid":
            faces, used = _faces(obj, path)
            for k in used:  # full face definitions are kept losslessly
                extra[k] = obj[k]
            member: dict[str, list[str]] = {}
            for name, names in faces.items():
                for p in names:
                    member.setdefault(p, []).append(name)
            face_of = {p: ",".join(sorted(set(ns))) for p, ns in member.items()}
        xs = []
        ys = []
        kps: list[int | None] | None = None
        point_extra = None
        order = sort_keys(tuple(pts))
        for j, (pk, _) in enumerate(order):
            p = pts[pk]
            if type(p) is not dict:
                raise bad(f"{path}.points.{pk}", "an {x, y} object", p)
            x = p.get("x")
            y = p.get("y")
            if type(x) is not float or x - x != 0:
                x = num(x, f"{path}.points.{pk}.x")
            if type(y) is not float or y - y != 0:
                y = num(y, f"{path}.points.{pk}.y")
            if len(p) != 2:
                lab = p.get("label")
                rest = {k: v for k, v in p.items() if k not in ("x", "y", "label")}
                if type(lab) is int and -(2**63) < lab < 2**63:
                    if kps is None:
                        kps = [None] * len(order)
                    kps[j] = lab
                elif "label" in p:
                    rest["label"] = lab
                if rest:
                    if point_extra is None:
                        point_extra = {}
                    point_extra[pk] = rest
            xs.append(x)
            ys.append(y)
        n = len(xs)
        cols = points.cols  # annotation_key, frame_id, point_key, point_index, x, y, …
        cols[0].extend([key] * n)
        cols[1].extend([frame_id] * n)
        cols[2].extend([pk for pk, _ in order])
        cols[3].extend([pidx for _, pidx in order])
        cols[4].extend(xs)
        cols[5].extend(ys)
        cols[6].extend([None] * n if kps is None else kps)
        cols[7].extend([face_of.get(pk) for pk, _ in order] if face_of else [None] * n)
        if point_extra:
            extra["points"] = point_extra
        edges = obj.get("edges")
        if edges is not None:
            if type(edges) is not dict:
                raise bad(f"{path}.edges", "an object of named edges", edges)
            out_edges = out.edges
            for ek, eidx in sort_keys(tuple(edges)):
                e = edges[ek]
                if type(e) is not list or len(e) != 2 or type(e[0]) is not str \
                        or type(e[1]) is not str:
                    raise bad(f"{path}.edges.{ek}", "a [from_point, to_point] pair", e)
                out_edges.append((job_id, key, frame_id, ek, eidx, e[0], e[1]))

    attrs = obj.get("attributes")
    if attrs is not None:
        out.add_attributes(attrs, f"{path}.attributes", key, frame_id, extra)
    bbox: tuple[float | None, ...] = (
        (min(xs), min(ys), max(xs), max(ys)) if xs else (None, None, None, None))
    out.annotations.append((
        job_id, key, ann_id, track_id, track_label, frame_id, frame_index, sensor_id, typ,
        label, *bbox, len(xs), state, encode(extra, f"{path}") if extra else None,
    ))


def add_image(out: Out, body: dict[str, Any], path: str) -> dict[str, Any]:
    """Image results: the five shape lists. Returns unknown keys of ``annotations``."""
    anns = need_dict(body["annotations"], f"{path}.annotations")
    unknown = {}
    for list_name, shapes in anns.items():
        typ = SHAPE_LISTS.get(list_name)
        if typ is None:
            unknown[list_name] = shapes
            continue
        if shapes is None:
            continue
        lpath = f"{path}.annotations.{list_name}"
        with out.item(lpath):
            need_list(shapes, lpath)
            for i, obj in enumerate(shapes):
                state = out.begin()  # one item per shape, without a with-block's frame
                try:
                    add_shape(out, typ, obj, f"{lpath}[{i}]", f"{list_name}[{i}]")
                except Bad as exc:
                    out.fail(state, exc)
                else:
                    out.end(state)
    return unknown


_TRACKER_KNOWN = frozenset({"_id", "type", "label", "frames"})


def add_tracker(out: Out, tracker: Any, path: str, ordinal: str) -> None:
    """One video tracker: one annotation per frame it lists."""
    tracker = need_dict(tracker, path)
    track_id = out.text(tracker.get("_id"), f"{path}._id")
    track_label = out.text(tracker.get("label"), f"{path}.label")
    frames = need_dict(tracker.get("frames"), f"{path}.frames")
    rest = {k: v for k, v in tracker.items() if k not in _TRACKER_KNOWN}
    base = track_id if track_id is not None else ordinal
    for frame_id, obj in frames.items():
        fpath = f"{path}.frames.{frame_id}"
        state = out.begin()  # one item per frame, without a with-block's frame
        try:
            add_tracker_frame(out, obj, fpath, ordinal, base, frame_id, tracker.get("type"),
                              track_id, track_label, rest)
        except Bad as exc:
            out.fail(state, exc)
        else:
            out.end(state)


def add_tracker_frame(out: Out, obj: Any, fpath: str, ordinal: str, base: str, frame_id: str,
                      tracker_type: Any, track_id: str | None, track_label: str | None,
                      rest: dict[str, Any]) -> None:
    """The annotation of one frame of a tracker (``rest``: the tracker's unknown keys)."""
    if type(obj) is not dict:
        raise bad(fpath, "an annotation object", obj)
    typ = shape_type(obj.get("type", tracker_type), obj, fpath)
    add_shape(out, typ, obj, fpath, ordinal, base=base, frame_id=frame_id,
              frame_index=out.frame_index.get(frame_id), track_id=track_id,
              track_label=track_label, default_label=track_label,
              extra={"tracker": rest} if rest else None)
