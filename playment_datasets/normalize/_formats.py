"""Frames, segmentation legends, 3D cuboids and classification results."""

from __future__ import annotations

from typing import Any

from playment_datasets.normalize._base import (
    Bad,
    Out,
    encode,
    is_hex_color,
    need_dict,
    need_list,
    opt_num,
    parse_label,
    rgb_to_hex,
)
from playment_datasets.normalize._shapes import add_shape, shape_type

# -- frames ------------------------------------------------------------------------

_FRAME_KNOWN = frozenset({"frame_id", "src", "data_url", "ego_pose", "sensors"})
_SENSOR_KNOWN = frozenset({"sensor_id", "data_url", "src", "sensor_pose"})
_XYZ = ("x", "y", "z")
_WXYZ = ("w", "x", "y", "z")
_LWH = ("length", "width", "height")
_NONE3 = (None, None, None)
_NONE4 = (None, None, None, None)


def _vector(obj: Any, axes: tuple[str, ...], path: str, rest: dict[str, Any],
            name: str) -> tuple[Any, ...]:
    """Numbers under ``axes`` of an optional object; other keys go to ``rest[name]``."""
    if obj is None:
        return _NONE3 if len(axes) == 3 else _NONE4
    obj = need_dict(obj, path)
    values = tuple(opt_num(obj.get(a), f"{path}.{a}") for a in axes)
    unknown = {k: v for k, v in obj.items() if k not in axes}
    if unknown:
        rest[name] = unknown
    return values


def _pose(pose: Any, path: str, rest: dict[str, Any]) -> tuple[Any, ...]:
    """``{position{x,y,z}, heading{w,x,y,z}}`` → 7 numbers."""
    if pose is None:
        return _NONE3 + _NONE4
    pose = need_dict(pose, path)
    sub: dict[str, Any] = {}
    values = (_vector(pose.get("position"), _XYZ, f"{path}.position", sub, "position")
              + _vector(pose.get("heading"), _WXYZ, f"{path}.heading", sub, "heading"))
    sub.update({k: v for k, v in pose.items() if k not in ("position", "heading")})
    if sub:
        rest.update(sub)
    return values


def add_frames(out: Out, frames: Any, path: str) -> None:
    """``video_data.frames`` / ``sensor_data.frames``: one row per frame per sensor."""
    for i, frame in enumerate(need_list(frames, path)):
        fpath = f"{path}[{i}]"
        with out.item(fpath):  # a frame whose poses cannot be read costs only that frame
            _add_frame(out, frame, fpath, i)


def frames_of(out: Out, body: dict[str, Any], extra: dict[str, Any], path: str,
              nested_sensor_data: Any = None) -> None:
    """The frames of a video or sensor-fusion body (``video_data``, ``sensor_data``,
    ``frames``); the containers' other keys go to ``extra``."""
    for name in ("video_data", "sensor_data"):
        container = body.get(name)
        if name == "sensor_data" and nested_sensor_data is not None:
            container = nested_sensor_data
        if container is None:
            continue
        container = need_dict(container, f"{path}.{name}")
        rest = {k: v for k, v in container.items() if k != "frames"}
        if rest:
            extra[name] = rest
        if container.get("frames") is not None:
            add_frames(out, container["frames"], f"{path}.{name}.frames")
    for name in ("frames", "Frames"):
        if type(body.get(name)) is list:
            add_frames(out, body[name], f"{path}.{name}")


def _add_frame(out: Out, frame: Any, fpath: str, i: int) -> None:
    job_id = out.job_id
    frame = need_dict(frame, fpath)
    frame_id = out.text(frame.get("frame_id"), f"{fpath}.frame_id")
    if frame_id is not None:
        out.frame_index.setdefault(frame_id, i)
    src, frame_rest, ego = _located(out, frame, fpath, "src", "data_url", _FRAME_KNOWN,
                                    "ego_pose")
    sensors = frame.get("sensors")
    if not sensors:
        if sensors is not None:
            need_list(sensors, f"{fpath}.sensors")
        out.frames.append((job_id, frame_id, i, None, src, *ego, *_NONE3, *_NONE4,
                           encode(frame_rest, fpath) if frame_rest else None))
        return
    for j, sensor in enumerate(need_list(sensors, f"{fpath}.sensors")):
        spath = f"{fpath}.sensors[{j}]"
        sensor = need_dict(sensor, spath)
        sensor_id = out.text(sensor.get("sensor_id"), f"{spath}.sensor_id")
        url, sensor_rest, pose = _located(out, sensor, spath, "data_url", "src",
                                          _SENSOR_KNOWN, "sensor_pose")
        rest = dict(frame_rest)
        if src is not None:
            rest["src"] = src
        if sensor_rest:
            rest["sensor"] = sensor_rest
        out.frames.append((job_id, frame_id, i, sensor_id, url, *ego, *pose,
                           encode(rest, spath) if rest else None))


def _located(out: Out, obj: dict[str, Any], path: str, first: str, second: str,
             known: Any, pose_key: str) -> tuple[str | None, dict[str, Any], Any]:
    """A frame's or sensor's file URL (``first``, else ``second``), its pose, and the
    fields the tables have no column for (``second`` too when both are given)."""
    url = out.text(obj.get(first, obj.get(second)), f"{path}.{first}")
    rest = {k: v for k, v in obj.items() if k not in known}
    if first in obj and second in obj:
        rest[second] = obj[second]
    pose_rest: dict[str, Any] = {}
    pose = _pose(obj.get(pose_key), f"{path}.{pose_key}", pose_rest)
    if pose_rest:
        rest[pose_key] = pose_rest
    return url, rest, pose


# -- segmentation ------------------------------------------------------------------


def _segment(out: Out, path: str, base: str, *, annotation_id: str | None,
             frame_id: str | None, track_id: str | None, color: str | None,
             label_key: int | None, label: str | None, mask_url: str | None,
             seg_extra: dict[str, Any], state: str | None = None,
             attrs: Any = None, ann_extra: dict[str, Any] | None = None) -> None:
    """One legend entry: a segments row and an annotations row of type ``segment``."""
    class_name, instance = parse_label(label) if label is not None else (None, None)
    key = out.key(base, frame_id)
    job_id = out.job_id
    ann_extra = {} if ann_extra is None else ann_extra
    if attrs is not None:
        out.add_attributes(attrs, f"{path}.attributes", key, frame_id, ann_extra)
    out.segments.append((job_id, key, frame_id, track_id, color, label_key, label, class_name,
                         instance, mask_url, None, None, None, None, None, None,
                         encode(seg_extra, path) if seg_extra else None))
    frame_index = out.frame_index.get(frame_id) if frame_id is not None else None
    out.annotations.append((
        job_id, key, annotation_id, track_id, None, frame_id, frame_index, None, "segment",
        class_name, None, None, None, None, None, state,
        encode(ann_extra, path) if ann_extra else None,
    ))


def _hex_key(raw: str) -> tuple[str, dict[str, Any]]:
    """A legend key as a lower-case colour; the raw key is kept when it is not #rrggbb."""
    return raw.lower(), ({} if is_hex_color(raw) else {"raw_key": raw})


def add_legend_object(out: Out, legend: Any, path: str, mask_url: str | None, *,
                      frame_id: str | None = None, track_id: str | None = None,
                      annotation_id: str | None = None, base: str | None = None,
                      state: str | None = None, attrs: Any = None,
                      ann_extra: dict[str, Any] | None = None) -> None:
    """A ``{"#rrggbb": "class # N"}`` legend."""
    for raw, label in need_dict(legend, path).items():
        with out.item(f"{path}.{raw}"):
            label = out.text(label, f"{path}.{raw}", "a label string")
            color, seg_extra = _hex_key(raw)
            _segment(out, path, base if base is not None else f"legend:{raw}",
                     annotation_id=annotation_id, frame_id=frame_id, track_id=track_id,
                     color=color, label_key=None, label=label, mask_url=mask_url,
                     seg_extra=seg_extra, state=state, attrs=attrs,
                     ann_extra=dict(ann_extra) if ann_extra else None)


_PCS_LEGEND_KNOWN = frozenset({"id", "text", "color", "label_key", "value"})


def add_legend_list(out: Out, legend: list[Any], path: str, mask_url: str | None) -> None:
    """The older point-cloud legend: ``[{id, text, color: "rgb(…)", label_key, value}]``."""
    for i, entry in enumerate(legend):
        epath = f"{path}[{i}]"
        with out.item(epath):
            _legend_list_entry(out, entry, epath, i, mask_url)


def _legend_list_entry(out: Out, entry: Any, epath: str, i: int, mask_url: str | None) -> None:
    entry = need_dict(entry, epath)
    seg_extra = {k: v for k, v in entry.items() if k not in _PCS_LEGEND_KNOWN}
    ident = out.text(entry.get("id"), f"{epath}.id")
    text = out.text(entry.get("text"), f"{epath}.text")
    value = out.text(entry.get("value"), f"{epath}.value")
    label_key = out.integer(entry.get("label_key"), f"{epath}.label_key", seg_extra, "label_key")
    color = _color(out, entry.get("color"), f"{epath}.color", seg_extra)
    label = value if value is not None else text
    if text is not None and text != label:
        seg_extra["text"] = text
    _segment(out, epath, ident if ident is not None else f"legend[{i}]",
             annotation_id=ident, frame_id=None, track_id=None, color=color,
             label_key=label_key, label=label, mask_url=mask_url, seg_extra=seg_extra)


def _color(out: Out, raw: Any, path: str, seg_extra: dict[str, Any]) -> str | None:
    if raw is None:
        return None
    if type(raw) is not str:
        out.keep(raw, path, 'a colour string ("rgb(r, g, b)" or "#rrggbb")', seg_extra,
                 "raw_color")
        return None
    color = rgb_to_hex(raw)
    if color is None:
        if is_hex_color(raw):
            return raw.lower()
        seg_extra["raw_color"] = raw
    return color


_ENTRY_COMMON = frozenset({"_id", "label", "attributes", "state", "frame_id", "track_id"})
_VSEG_KNOWN = _ENTRY_COMMON | {"url", "legend"}
_PCS_KNOWN = _ENTRY_COMMON | {"class_id", "color", "label_key"}


def _entry_texts(out: Out, entry: dict[str, Any], path: str) -> tuple[str | None, ...]:
    """``_id``, ``frame_id``, ``track_id``, ``label``, ``state`` of an entry, as text."""
    return tuple(out.text(entry.get(k), f"{path}.{k}")
                 for k in ("_id", "frame_id", "track_id", "label", "state"))


def mask_url_of(masks: dict[str, Any], frame_id: str | None, out: Out | None = None
                ) -> str | None:
    """The ``label_url`` of a frame in a point-cloud ``masks`` container."""
    mask = masks.get(frame_id) if frame_id is not None else None
    if type(mask) is dict:
        url = mask.get("label_url")
        if url is None or type(url) is str or out is None:
            return url if type(url) is str else None
        return out.text(url, f"$.masks.{frame_id}.label_url")
    return mask if type(mask) is str else None


def add_video_segment(out: Out, entry: dict[str, Any], path: str, ordinal: str) -> None:
    """A video-segmentation entry: its legend entries become segments."""
    ident, frame_id, track_id, label, state = _entry_texts(out, entry, path)
    url = out.text(entry.get("url"), f"{path}.url")
    extra = {k: v for k, v in entry.items() if k not in _VSEG_KNOWN}
    base = ident if ident is not None else ordinal
    legend = entry.get("legend")
    if legend is None or legend == {}:
        if legend is not None:
            extra["legend"] = legend
        _segment(out, path, base, annotation_id=ident, frame_id=frame_id, track_id=track_id,
                 color=None, label_key=None, label=label, mask_url=url, seg_extra={},
                 state=state, attrs=entry.get("attributes"), ann_extra=extra)
        return
    legend = need_dict(legend, f"{path}.legend")
    if label is not None and any(v != label for v in legend.values()):
        extra["label"] = label  # the entry's own label, when its legend says otherwise
    add_legend_object(out, legend, f"{path}.legend", url, frame_id=frame_id,
                      track_id=track_id, annotation_id=ident, base=base, state=state,
                      attrs=entry.get("attributes"), ann_extra=extra)


def add_cloud_segment(out: Out, entry: dict[str, Any], path: str, ordinal: str,
                      masks: dict[str, Any]) -> None:
    """A newer point-cloud segmentation entry (``class_id``, ``color``, ``frame_id``).

    The per-point key is ``label_key`` when present, else an integer ``class_id``. A
    ``class_id`` that is not that key (a UUID string, as real files carry) is kept in
    ``segments.extra.class_id``.
    """
    ident, frame_id, track_id, label, state = _entry_texts(out, entry, path)
    seg_extra: dict[str, Any] = {}
    class_id = entry.get("class_id")
    label_key = out.integer(entry.get("label_key"), f"{path}.label_key", seg_extra,
                            "label_key")
    if type(class_id) is int and label_key is None and "label_key" not in entry:
        label_key = out.integer(class_id, f"{path}.class_id", seg_extra, "class_id")
    elif class_id is not None:
        if type(class_id) not in (str, int):
            out.warn(f"{path}.class_id", "a string or an integer", class_id,
                     "kept in extra.class_id")
        seg_extra["class_id"] = class_id
    color = _color(out, entry.get("color"), f"{path}.color", seg_extra)
    extra = {k: v for k, v in entry.items() if k not in _PCS_KNOWN}
    mask_url = mask_url_of(masks, frame_id, out)
    _segment(out, path, ident if ident is not None else ordinal, annotation_id=ident,
             frame_id=frame_id, track_id=track_id, color=color, label_key=label_key,
             label=label, mask_url=mask_url, seg_extra=seg_extra, state=state,
             attrs=entry.get("attributes"), ann_extra=extra)


# -- 3D cuboids and sensor-fusion entries ----------------------------------------------

_CENTER_KEYS = ("position", "center", "centre")
_SIZE_KEYS = ("dimensions", "size")
_KEYFRAME_KEYS = ("keyFrame", "keyframe", "key_frame")
_CUBOID_KNOWN = frozenset({
    "_id", "label", "attributes", "state", "type", "frame_id", "track_id", "sensor_id",
    "rotation", "quaternion", *_CENTER_KEYS, *_SIZE_KEYS, *_KEYFRAME_KEYS,
})


def _first(obj: dict[str, Any], keys: tuple[str, ...]) -> tuple[str | None, Any]:
    for k in keys:
        if k in obj:
            return k, obj[k]
    return None, None


def is_cuboid_3d(entry: dict[str, Any]) -> bool:
    return any(k in entry for k in _CENTER_KEYS)


def add_cuboid_3d(out: Out, entry: dict[str, Any], path: str, ordinal: str) -> None:
    """A 3D box: a cuboids_3d row and an annotations row of type ``cuboid_3d``."""
    ident, frame_id, track_id, label, state = _entry_texts(out, entry, path)
    sensor_id = out.text(entry.get("sensor_id"), f"{path}.sensor_id")
    geo_rest: dict[str, Any] = {}
    ck, center = _first(entry, _CENTER_KEYS)
    cx = _vector(center, _XYZ, f"{path}.{ck}", geo_rest, ck or "position")
    sk, size = _first(entry, _SIZE_KEYS)
    lwh: tuple[Any, ...] = _NONE3
    if size is not None:
        spath = f"{path}.{sk}"
        size = need_dict(size, spath)
        if any(k in size for k in ("length", "width", "height")):
            lwh = _vector(size, _LWH, spath, geo_rest, sk or "dimensions")
        else:
            lwh = _vector(size, _XYZ, spath, geo_rest, sk or "dimensions")
    euler: tuple[Any, ...] = _NONE3
    quat: tuple[Any, ...] = _NONE4
    rot = entry.get("rotation")
    if rot is not None:
        if type(rot) is dict and "w" in rot:
            quat = _vector(rot, _WXYZ, f"{path}.rotation", geo_rest, "rotation")
        else:
            euler = _vector(rot, _XYZ, f"{path}.rotation", geo_rest, "rotation")
    if entry.get("quaternion") is not None:
        if quat != _NONE4:
            geo_rest["quaternion"] = entry["quaternion"]
        else:
            quat = _vector(entry["quaternion"], _WXYZ, f"{path}.quaternion", geo_rest,
                           "quaternion")
    extra = {k: v for k, v in entry.items() if k not in _CUBOID_KNOWN}
    kk, keyframe = _first(entry, _KEYFRAME_KEYS)
    keyframe = out.flag(keyframe, f"{path}.{kk}", extra, kk or "keyFrame")
    for keys in (_CENTER_KEYS, _SIZE_KEYS, _KEYFRAME_KEYS):
        found = [k for k in keys if k in entry]
        for k in found[1:]:  # a second spelling of the same field
            extra[k] = entry[k]
    key = out.key(ident if ident is not None else ordinal, frame_id)
    attrs = entry.get("attributes")
    if attrs is not None:
        out.add_attributes(attrs, f"{path}.attributes", key, frame_id, extra)
    job_id = out.job_id
    frame_index = out.frame_index.get(frame_id) if frame_id is not None else None
    out.cuboids_3d.append((job_id, key, ident, track_id, frame_id, sensor_id, label, *cx,
                           *lwh, *euler, *quat, keyframe,
                           encode(geo_rest, path) if geo_rest else None))
    out.annotations.append((
        job_id, key, ident, track_id, None, frame_id, frame_index, sensor_id, "cuboid_3d",
        label, None, None, None, None, None, state, encode(extra, path) if extra else None,
    ))


_CONTEXT = frozenset({"frame_id", "track_id", "sensor_id"})


def add_sensor_entry(out: Out, entry: Any, path: str, ordinal: str) -> None:
    """A sensor-fusion annotation: a 3D cuboid, or a 2D shape seen by one camera."""
    entry = need_dict(entry, path)
    if is_cuboid_3d(entry):
        add_cuboid_3d(out, entry, path, ordinal)
        return
    typ = shape_type(entry.get("type"), entry, path)
    frame_id = out.text(entry.get("frame_id"), f"{path}.frame_id")
    add_shape(out, typ, entry, path, ordinal, frame_id=frame_id,
              frame_index=out.frame_index.get(frame_id) if frame_id is not None else None,
              track_id=out.text(entry.get("track_id"), f"{path}.track_id"),
              sensor_id=out.text(entry.get("sensor_id"), f"{path}.sensor_id"),
              context=_CONTEXT)


# -- classification ----------------------------------------------------------------

_CLASS_KNOWN = frozenset({"_id", "label", "attributes", "state"})


def is_attribute_value(value: Any) -> bool:
    """A value a free-form classification result can hold as an attribute."""
    t = type(value)
    if t in (str, int, float, bool):
        return True
    if t is list:
        return all(type(v) in (str, int, float, bool) for v in value)
    return t is dict and "value" in value


def add_classification(out: Out, body: dict[str, Any], path: str) -> dict[str, Any]:
    """A whole-item classification: one annotation with its attributes.

    Top-level keys other than ``_id``/``label``/``state``/``attributes`` whose value is
    attribute-shaped are legacy free-form attributes (``{"category": "cat"}``); the
    rest is returned for ``jobs.extra``.
    """
    ident = out.text(body.get("_id"), f"{path}._id")
    label = out.text(body.get("label"), f"{path}.label")
    state = out.text(body.get("state"), f"{path}.state")
    key = out.key(ident if ident is not None else "classification", None)
    extra: dict[str, Any] = {}
    attrs = body.get("attributes")
    if attrs is not None:
        out.add_attributes(attrs, f"{path}.attributes", key, None, extra)
    legacy = {k: v for k, v in body.items() if k not in _CLASS_KNOWN and is_attribute_value(v)}
    if legacy:
        out.add_attributes(legacy, path, key, None, extra)
    out.annotations.append((out.job_id, key, ident, None, None, None, None, None,
                            "classification", label, None, None, None, None, None, state,
                            encode(extra, path) if extra else None))
    return {k: v for k, v in body.items() if k not in _CLASS_KNOWN and k not in legacy}


__all__ = [
    "Bad",
    "add_classification",
    "add_cloud_segment",
    "add_cuboid_3d",
    "add_frames",
    "add_legend_list",
    "add_legend_object",
    "add_sensor_entry",
    "add_video_segment",
    "frames_of",
]
