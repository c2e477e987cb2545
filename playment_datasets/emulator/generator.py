"""Deterministic generator of Playment batches in every result format.

Every job's result follows one of the formats of the Playment result documentation
(image shapes, video trackers, image / video / point-cloud segmentation, sensor fusion,
classification), including the documented quirks: an optional outer ``data`` wrapper,
missing or empty shape lists, ``p10`` after ``p9``, self-loop edges, duplicated and
non-UUID ``_id``\\ s, upper-case and 7-digit legend keys, ``"Tree "`` labels,
``"MINIVAN # 1"`` vs ``"MINIVAN #1"`` and ``"attributes": []``.

Each :class:`~playment_datasets.emulator.batch.GeneratedJob` carries a
:class:`~playment_datasets.emulator.batch.GroundTruth` that states exactly what a
correct normalizer produces for it (row counts per table as defined in
``docs/schema.md``). Only a seeded :class:`random.Random` is used: the same arguments
always give the same batch.

Example:
    >>> from playment_datasets.emulator.generator import generate_batch
    >>> batch = generate_batch(20, seed=1)
    >>> len(batch.jobs), batch.jobs[0].status
    (20, 'completed')
    >>> generate_batch(20, seed=1).jobs[5].result == batch.jobs[5].result
    True
"""

from __future__ import annotations

import gc
import hashlib
import random
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from playment_datasets.emulator.batch import GeneratedBatch, GeneratedJob, GroundTruth
from playment_datasets.emulator.masks import render_labels, render_pcd, render_png
from playment_datasets.schema import RESULT_KINDS

__all__ = ["GENERATED_KINDS", "generate_batch", "generate_job"]

#: The result kinds the generator can produce (every kind but "unknown" and "none").
GENERATED_KINDS: tuple[str, ...] = tuple(k for k in RESULT_KINDS if k not in ("unknown", "none"))

DEFAULT_ASSET_BASE_URL = "https://playment-data-uploads.s3.ap-south-1.amazonaws.com"
#: Width and height of generated PNG masks: small, so tests stay fast.
DEFAULT_MASK_SIZE = (64, 48)
#: Points per generated PCD / label file.
DEFAULT_MASK_POINTS = 200

_SHAPE_LISTS = {
    "rectangle": "rectangles",
    "polygon": "polygons",
    "line": "lines",
    "cuboid": "cuboids",
    "landmark": "landmarks",
}
_SHAPE_TYPES = tuple(_SHAPE_LISTS)
_LABELS = {
    "rectangle": ("car", "Car", "pedestrian", "truck", "traffic sign"),
    "polygon": ("road", "sidewalk", "building", "car"),
    "line": ("lane", "Lane Marking", "curb"),
    "cuboid": ("car", "bus", "truck"),
    "landmark": ("face", "hand", "pose"),
}
_SEG_LABELS = ("Car", "Sky", "Tree ", "road", "car # 4", "car # 5", "MINIVAN #1", "person #2")
_PCS_LEGEND = (
    ("crosswalk", "crosswalk"),
    ("MINIVAN # 1", "MINIVAN #1"),
    ("car # 2", "car # 2"),
    ("vegetation", "vegetation"),
    ("pole", "pole"),
    ("Truck #12", "Truck #12"),
)
_FRAME_STYLES: tuple[Callable[[int], str], ...] = (
    lambda i: f"frame{i + 1:03d}",
    lambda i: f"frame-{i + 1:02d}",
    lambda i: str(i),
    lambda i: f"{i + 1:04d}",
)
_FACES_VISIBLE = ["front", "back", "left", "right"]
_ATTR_NAMES = ["occlusion", "Truncation", "faces_visible", "is_parked", "Label"]
_CUBOID_FACES = {
    "front": ["p1", "p2", "p3", "p4"],
    "side": ["p2", "p3", "p5", "p6"],
    "back": ["p7", "p8", "p5", "p6"],
}
_CUBOID_FACE_OF = {
    f"p{i}": ",".join(sorted(n for n, pts in _CUBOID_FACES.items() if f"p{i}" in pts))
    for i in range(1, 9)
}


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _odd_id(rng: random.Random) -> str:
    """An id shaped like a UUID but with non-hex letters, as in the documentation."""
    text = list(_uuid(rng))
    for _ in range(3):
        pos = rng.randrange(len(text))
        if text[pos] != "-":
            text[pos] = rng.choice("ghijklmnopqrstuvwxyz")
    return "".join(text)


class _Truth:
    """Accumulates a GroundTruth while a job is generated."""

    def __init__(self) -> None:
        self.t = GroundTruth()
        self.n_annotations = 0

    def annotation(self, typ: str, label: str | None) -> None:
        self.t.annotations_by_type[typ] += 1
        if label is not None:
            self.t.annotations_by_label[(typ, label)] += 1
        self.n_annotations += 1

    def attributes(self, rows: list[tuple[str, str | None]]) -> None:
        # a null value (attribute without value) is counted under None
        self.t.attributes.update(rows)  # type: ignore[arg-type]


def _class_name(label: str) -> str:
    head, sep, tail = label.rpartition("#")
    if sep and tail.strip().isdigit():
        return head.strip()
    return label.strip()


class _JobBuilder:
    """Builds one job's result JSON and its ground truth."""

    def __init__(self, rng: random.Random, job_id: str, asset_base_url: str,
                 mask_size: tuple[int, int] = DEFAULT_MASK_SIZE,
                 mask_points: int = DEFAULT_MASK_POINTS,
                 public_base_url: str | None = None) -> None:
        self.rng = rng
        # Masks draw from their own stream, seeded by the job id (itself drawn from the
        # batch seed): adding them left every other generated value unchanged.
        self.mask_rng = random.Random(f"masks/{job_id}")
        self.mask_size = mask_size
        self.mask_points = mask_points
        self._r = rng.random
        self.job_id = job_id
        self.base = asset_base_url.rstrip("/")
        # Source media (images, frames, sensor files): on the private storage, or for
        # about half of the jobs on a public host. Chosen by a hash of the job id, not
        # by the rng, so adding the choice left every other generated value unchanged.
        digest = hashlib.sha256(job_id.encode()).digest()
        public = public_base_url is not None and digest[0] % 2 == 1
        self.media_base = public_base_url.rstrip("/") if public and public_base_url else self.base
        self.image_ext = ".png" if digest[1] % 2 else ".jpg"
        self.truth = _Truth()
        self.last_id: str | None = None
        self.keypoint = 0
        self.assets: dict[str, bytes] = {}
        self.n_frames = 1

    # -- shared pieces -------------------------------------------------------------

    def _id(self) -> str | None:
        """A fresh ``_id``; now and then a repeated, non-UUID or missing one."""
        r = self.rng.random()
        if r < 0.03 and self.last_id is not None:
            return self.last_id
        if r < 0.05:
            return None
        new = _odd_id(self.rng) if r < 0.07 else _uuid(self.rng)
        self.last_id = new
        return new

    def _put_id(self, obj: dict[str, Any]) -> None:
        ident = self._id()
        if ident is not None:
            obj["_id"] = ident

    def _xy(self) -> dict[str, float]:
        r = self._r
        return {"x": int(r() * 100000) / 100000, "y": int(r() * 100000) / 100000}

    def _pick(self, seq: Sequence[Any]) -> Any:
        return seq[int(self._r() * len(seq))]

    def attributes(self, obj: dict[str, Any]) -> None:
        """Add an ``attributes`` entry to ``obj`` and count its exploded rows."""
        rng = self.rng
        r = rng.random()
        if r < 0.15:
            return
        if r < 0.22:
            obj["attributes"] = [] if r < 0.18 else {}
            return
        attrs: dict[str, Any] = {}
        rows: list[tuple[str, str | None]] = []
        for name in rng.sample(_ATTR_NAMES, 1 + int(self._r() * 3)):
            entry: dict[str, Any]
            if name == "occlusion":
                value = self._pick(("0%", "25%", "50%", "75%"))
                entry = {"value": value}
                rows.append((name, value))
            elif name == "Truncation":
                if rng.random() < 0.3:  # a number where a string is documented
                    num = rng.randint(0, 3)
                    entry = {"value": num}
                    rows.append((name, str(num)))
                else:
                    text = str(rng.randint(0, 3))
                    entry = {"value": text}
                    rows.append((name, text))
            elif name == "faces_visible":
                values = rng.sample(_FACES_VISIBLE, int(self._r() * 4))
                entry = {"value": values}
                if values:
                    rows.extend((name, v) for v in values)
                else:
                    rows.append((name, None))
            elif name == "is_parked":
                flag = rng.random() < 0.5
                entry = {"value": flag}
                rows.append((name, "true" if flag else "false"))
            else:
                value = self._pick(("Yes", "No", "yes"))
                entry = {"value": value}
                rows.append((name, value))
            if rng.random() < 0.3:
                entry["state"] = self._pick(("editable", "non_editable"))
            attrs[name] = entry
        obj["attributes"] = attrs
        self.truth.attributes(rows)

    def _maybe_extra(self, obj: dict[str, Any]) -> None:
        if self.rng.random() < 0.05:
            obj["color"] = f"rgb({self.rng.randrange(256)}, {self.rng.randrange(256)}, 0)"
        if self.rng.random() < 0.1:
            obj["state"] = self.rng.choice(("editable", "non_editable"))

    # -- 2D geometry ---------------------------------------------------------------

    def _point_map(self, keys: list[str], make: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        if self.rng.random() < 0.3:  # key order is not guaranteed
            keys = keys[:]
            self.rng.shuffle(keys)
        return {k: make() for k in keys}

    def geometry(self, typ: str, obj: dict[str, Any]) -> None:
        """Add the geometry of a 2D shape of type ``typ`` to ``obj`` and count it."""
        rng = self.rng
        t = self.truth.t
        if typ == "rectangle":
            x0, x1 = sorted((round(rng.random(), 5), round(rng.random(), 5)))
            y0, y1 = sorted((round(rng.random(), 5), round(rng.random(), 5)))
            corners = [{"x": x0, "y": y0}, {"x": x1, "y": y0}, {"x": x1, "y": y1},
                       {"x": x0, "y": y1}]
            if rng.random() < 0.05:  # a tilted quadrilateral
                corners = [self._xy() for _ in range(4)]
            obj["coordinates"] = corners
            t.points += 4
        elif typ == "polygon":
            n = 3 + int(self._r() * 10)
            names = [f"p{i}" for i in range(1, n + 1)]
            obj["points"] = self._point_map(names, self._xy)
            edges = {f"e{i}": [names[i - 1], names[i % n]] for i in range(1, n + 1)}
            if n >= 4 and rng.random() < 0.1:
                edges["e4"] = ["p4", "p4"]  # the documented self-loop
            obj["edges"] = edges
            t.points += n
            t.edges += n
        elif typ == "line":
            n = 2 + int(self._r() * 10)
            names = [f"p{i}" for i in range(1, n + 1)]
            obj["points"] = self._point_map(names, self._xy)
            if rng.random() < 0.5:
                obj["edges"] = {f"e{i}": [names[i - 1], names[i]] for i in range(1, n)}
                t.edges += n - 1
            t.points += n
        elif typ == "landmark":
            n = 1 + int(self._r() * 12)
            names = [f"p{i}" for i in range(1, n + 1)]
            points = {}
            for name in names:
                self.keypoint += 1
                points[name] = {**self._xy(), "label": self.keypoint}
            if rng.random() < 0.3:
                order = names[:]
                rng.shuffle(order)
                points = {k: points[k] for k in order}
            obj["points"] = points
            if n >= 2 and rng.random() < 0.3:
                obj["edges"] = {f"e{i}": [names[i - 1], names[i]] for i in range(1, n)}
                t.edges += n - 1
            t.points += n
        elif typ == "cuboid":
            obj["points"] = self._point_map([f"p{i}" for i in range(1, 9)], self._xy)
            faces = {name: {"coordinates": list(pts)} for name, pts in _CUBOID_FACES.items()}
            if rng.random() < 0.5:
                obj["faces"] = faces
            else:
                obj.update(faces)
            t.points += 8
        else:  # pragma: no cover - internal
            raise ValueError(typ)

    def shape(self, typ: str, label: str | None) -> dict[str, Any]:
        obj: dict[str, Any] = {}
        self._put_id(obj)
        if label is not None:
            obj["label"] = label
        self.attributes(obj)
        self.geometry(typ, obj)
        self._maybe_extra(obj)
        return obj

    def _wrap(self, body: dict[str, Any], p_wrap: float) -> dict[str, Any]:
        return {"data": body} if self.rng.random() < p_wrap else body

    def _frames(self, n: int) -> list[str]:
        style = self.rng.choice(_FRAME_STYLES)
        self.n_frames = n
        return [style(i) for i in range(n)]

    # -- formats -------------------------------------------------------------------

    def image(self, n: int) -> dict[str, Any]:
        rng = self.rng
        lists: dict[str, list[dict[str, Any]]] = {name: [] for name in _SHAPE_LISTS.values()}
        for _ in range(n):
            typ = self._pick(_SHAPE_TYPES)
            label = self._pick(_LABELS[typ])
            lists[_SHAPE_LISTS[typ]].append(self.shape(typ, label))
            self.truth.annotation(typ, label)
        annotations = {k: v for k, v in lists.items() if v or rng.random() < 0.7}
        body = {"annotations": annotations,
                "image_url": f"{self.media_base}/images/{self.job_id}{self.image_ext}"}
        return self._wrap(body, 0.8)

    def video(self, n: int) -> dict[str, Any]:
        rng = self.rng
        frame_ids = self._frames(rng.randint(2, 6))
        trackers: list[dict[str, Any]] = []
        rows = 0
        while rows < max(n, 1):
            typ = self._pick(_SHAPE_TYPES)
            label = self._pick(_LABELS[typ])
            tracker: dict[str, Any] = {"_id": _uuid(rng), "type": typ, "label": label}
            start = rng.randrange(len(frame_ids))
            stop = rng.randint(start + 1, len(frame_ids))
            frames: dict[str, Any] = {}
            for fid in frame_ids[start:stop]:
                obj: dict[str, Any] = {}
                if rng.random() < 0.9:
                    obj["_id"] = _uuid(rng)
                if rng.random() < 0.8:
                    obj["type"] = typ
                r = rng.random()
                frame_label = label
                if r < 0.7:
                    obj["label"] = label
                elif r < 0.8:
                    frame_label = label + "_occluded"
                    obj["label"] = frame_label
                self.attributes(obj)
                self.geometry(typ, obj)
                frames[fid] = obj
                self.truth.annotation(typ, frame_label)
                rows += 1
            tracker["frames"] = frames
            trackers.append(tracker)
        body = {
            "annotation_data": {"annotations": trackers},
            "video_data": {"frames": [
                {"frame_id": fid, "src": f"{self.media_base}/videos/{self.job_id}/{fid}.jpg"}
                for fid in frame_ids
            ]},
        }
        self.truth.t.frames += len(frame_ids)
        return self._wrap(body, 0.9)

    def _hex(self) -> str:
        return f"#{self.rng.getrandbits(24):06x}"

    def image_segmentation(self, n: int) -> dict[str, Any]:
        rng = self.rng
        legend: dict[str, str] = {}
        while len(legend) < max(n, 1):
            key = self._hex()
            r = rng.random()
            if r < 0.1:
                key = key.upper()
            elif r < 0.15:
                key += rng.choice("0123456789abcdef")  # 7 hex digits, as documented
            if key in legend:
                continue
            label = rng.choice(_SEG_LABELS)
            legend[key] = label
            self.truth.annotation("segment", _class_name(label))
        self.truth.t.segments += len(legend)
        path = f"masks/{self.job_id}.png"
        self._png(path, [k for k in legend if len(k) == 7])
        return self._wrap({"legend": legend, "url": f"{self.base}/{path}"}, 0.3)

    def _png(self, path: str, colors: list[str]) -> None:
        """A PNG mask of ``colors``; now and then with a colour the legend lacks."""
        mrng = self.mask_rng
        unknown: list[str] = []
        if mrng.random() < 0.4:
            known = {c.lower() for c in colors}
            while not unknown or unknown[0] in known or unknown[0] == "#000000":
                unknown = [f"#{mrng.getrandbits(24):06x}"]
        body, truth = render_png(mrng, *self.mask_size, colors, unknown)
        self.assets[path] = body
        self.truth.t.masks[f"{self.base}/{path}"] = truth

    def _point_labels(self, path: str, keys: list[int], *, pcd: bool) -> None:
        """A PCD (older format) or label file (newer) over ``keys`` plus unknown keys."""
        mrng = self.mask_rng
        top = max(keys, default=-1)
        unknown = [top + 1 + i for i in range(mrng.randint(0 if keys else 1, 3))]
        render = render_pcd if pcd else render_labels
        body, truth = render(mrng, self.mask_points, keys, unknown)
        self.assets[path] = body
        self.truth.t.masks[f"{self.base}/{path}"] = truth

    def video_segmentation(self, n: int) -> dict[str, Any]:
        rng = self.rng
        frame_ids = self._frames(rng.randint(2, 5))
        tracks = [(_uuid(rng), rng.choice(_SEG_LABELS), self._hex())
                  for _ in range(max(1, n // len(frame_ids)))]
        entries: list[dict[str, Any]] = []
        while len(entries) < max(n, 1):
            for fid in frame_ids:
                path = f"masks/{self.job_id}/{fid}.png"
                for track_id, label, color in tracks:
                    if len(entries) >= max(n, 1):
                        break
                    entry: dict[str, Any] = {"_id": _uuid(rng), "attributes": [],
                                             "frame_id": fid, "track_id": track_id}
                    if rng.random() < 0.5:
                        del entry["attributes"]
                        self.attributes(entry)
                    entry.update({"label": label, "url": f"{self.base}/{path}",
                                  "legend": {color: label}})
                    entries.append(entry)
                    self.truth.annotation("segment", _class_name(label))
        self.truth.t.segments += len(entries)
        self.truth.t.frames += len(frame_ids)
        for fid in frame_ids:  # one mask per frame, holding the colours of its entries
            colors = {c: None for e in entries if e["frame_id"] == fid for c in e["legend"]}
            self._png(f"masks/{self.job_id}/{fid}.png", list(colors))
        frames = [{"frame_id": fid, "src": f"{self.media_base}/videos/{self.job_id}/{fid}.jpg"}
                  for fid in frame_ids]
        return {"data": {"annotation_data": {"annotations": entries},
                         "sensor_data": {"frames": frames}}}

    def point_cloud_segmentation(self, n: int) -> dict[str, Any]:
        rng = self.rng
        path = f"masks/{self.job_id}_data.pcd"
        if rng.random() < 0.5:  # the older list-legend generation
            legend = []
            for key in range(max(n, 1)):
                text, value = _PCS_LEGEND[key % len(_PCS_LEGEND)]
                r, g, b = (rng.randrange(256) for _ in range(3))
                legend.append({"id": _uuid(rng), "text": text, "color": f"rgb({r}, {g}, {b})",
                               "label_key": key, "value": value})
                self.truth.annotation("segment", _class_name(value))
            self.truth.t.segments += len(legend)
            self._point_labels(path, list(range(len(legend))), pcd=True)
            return {"legend": legend, "url": f"{self.base}/{path}"}
        frame_ids = self._frames(rng.randint(1, 3))
        entries = []
        for i in range(max(n, 1)):
            fid = frame_ids[i % len(frame_ids)]
            _, value = _PCS_LEGEND[i % len(_PCS_LEGEND)]
            r, g, b = (rng.randrange(256) for _ in range(3))
            entry: dict[str, Any] = {"_id": _uuid(rng), "_isStationary": rng.random() < 0.5}
            self.attributes(entry)
            entry.update({"class_id": i % len(_PCS_LEGEND), "color": f"rgb({r},{g},{b})",
                          "frame_id": fid, "grouping_config": None, "label": value})
            entries.append(entry)
            self.truth.annotation("segment", _class_name(value))
        self.truth.t.segments += len(entries)
        if self.mask_rng.random() < 0.3:
            # class_id as a UUID string, the integer key in label_key (seen in real files)
            for entry in entries:
                entry["label_key"] = entry["class_id"]
                entry["class_id"] = _uuid(self.mask_rng)
        masks = {}
        for fid in frame_ids:
            label_path = f"masks/{self.job_id}/{fid}.labels"
            keys = sorted({e.get("label_key", e["class_id"]) for e in entries
                           if e["frame_id"] == fid})
            self._point_labels(label_path, keys, pcd=False)
            masks[fid] = {"label_url": f"{self.base}/{label_path}"}
        frames = [{"frame_id": fid, "sensors": [{"sensor_id": "lidar",
                   "data_url": f"{self.media_base}/pcd/{self.job_id}/{fid}.pcd"}]}
                  for fid in frame_ids]
        self.truth.t.frames += len(frame_ids)
        return {"data": {"annotation_data": {"annotations": entries},
                         "sensor_data": {"frames": frames}, "masks": masks}}

    def _pose(self) -> dict[str, Any]:
        rng = self.rng
        return {"position": {a: round(rng.uniform(-50, 50), 3) for a in "xyz"},
                "heading": {a: round(rng.uniform(-1, 1), 4) for a in "wxyz"}}

    def _sensor_url(self, sensor: str, fid: str) -> str:
        ext = ".jpg" if sensor.startswith("camera") else ".pcd"
        return f"{self.media_base}/sensors/{self.job_id}/{sensor}/{fid}{ext}"

    def sensor_fusion(self, n: int) -> dict[str, Any]:
        rng = self.rng
        frame_ids = self._frames(rng.randint(1, 4))
        cameras = [f"camera_{i}" for i in range(rng.randint(1, 2))]
        sensors = ["lidar", *cameras]
        frames = [{"frame_id": fid, "ego_pose": self._pose(),
                   "sensors": [{"sensor_id": s, "data_url": self._sensor_url(s, fid),
                                "sensor_pose": self._pose()} for s in sensors]}
                  for fid in frame_ids]
        self.truth.t.frames += len(frame_ids) * len(sensors)
        annotations: list[dict[str, Any]] = []
        while len(annotations) < max(n, 1):
            track_id = _uuid(rng)
            label = rng.choice(("car", "pedestrian", "truck", "Cyclist"))
            for fid in frame_ids:
                if len(annotations) >= max(n, 1):
                    break
                if rng.random() < 0.7:
                    obj: dict[str, Any] = {"_id": _uuid(rng), "label": label,
                                           "color": "rgb(151,22,15)"}
                    self.attributes(obj)
                    obj["keyFrame"] = rng.random() < 0.5
                    obj["type"] = "cuboid"
                    obj["frame_id"] = fid
                    obj["track_id"] = track_id
                    obj["position"] = {a: round(rng.uniform(-40, 40), 3) for a in "xyz"}
                    if rng.random() < 0.7:
                        obj["rotation"] = {a: round(rng.uniform(-3.1, 3.1), 4) for a in "xyz"}
                    else:
                        obj["rotation"] = {a: round(rng.uniform(-1, 1), 4) for a in "wxyz"}
                    if rng.random() < 0.7:
                        obj["dimensions"] = {"length": round(rng.uniform(0.5, 12), 3),
                                             "width": round(rng.uniform(0.5, 3), 3),
                                             "height": round(rng.uniform(0.5, 4), 3)}
                    else:
                        obj["dimensions"] = {a: round(rng.uniform(0.5, 5), 3) for a in "xyz"}
                    self.truth.annotation("cuboid_3d", label)
                    self.truth.t.cuboids_3d += 1
                else:
                    obj = {"_id": _uuid(rng), "type": "rectangle", "label": label,
                           "frame_id": fid, "track_id": track_id,
                           "sensor_id": rng.choice(cameras)}
                    self.attributes(obj)
                    self.geometry("rectangle", obj)
                    self.truth.annotation("rectangle", label)
                annotations.append(obj)
        return {"data": {"annotation_data": {"annotations": annotations},
                         "sensor_data": {"frames": frames}}}

    def classification(self, n: int) -> dict[str, Any]:
        rng = self.rng
        if rng.random() < 0.4:  # legacy free-form key/value result
            body: dict[str, Any] = {"category": rng.choice(("cat", "dog"))}
            rows: list[tuple[str, str | None]] = [("category", body["category"])]
            if rng.random() < 0.5:
                body["is_blurry"] = rng.random() < 0.5
                rows.append(("is_blurry", "true" if body["is_blurry"] else "false"))
            self.truth.attributes(rows)
            self.truth.annotation("classification", None)
            return body
        label = rng.choice(("cat", "dog", "indoor", "outdoor"))
        obj: dict[str, Any] = {}
        if rng.random() < 0.5:
            obj["_id"] = _uuid(rng)
        obj["label"] = label
        self.attributes(obj)
        self.truth.annotation("classification", label)
        return self._wrap(obj, 0.7)


def generate_job(
    kind: str,
    *,
    job_id: str,
    rng: random.Random,
    asset_base_url: str = DEFAULT_ASSET_BASE_URL,
    annotations: int = 8,
    mask_size: tuple[int, int] = DEFAULT_MASK_SIZE,
    mask_points: int = DEFAULT_MASK_POINTS,
    public_base_url: str | None = None,
) -> GeneratedJob:
    """Generate one completed job whose result has format ``kind``.

    ``annotations`` is the approximate number of rows the job contributes to the
    ``annotations`` table (objects, per frame for video and 3D; legend entries for
    segmentation; always 1 for classification). The exact count is in
    ``job.truth`` and ``job.n_annotations``. Segmentation jobs carry real mask files in
    ``job.assets`` (PNGs of ``mask_size`` = (width, height) pixels, PCD / label files
    of ``mask_points`` points) and their content in ``job.truth.masks``.

    Example:
        >>> import random
        >>> job = generate_job("image", job_id="j1", rng=random.Random(0),
        ...                    asset_base_url="https://storage.example", annotations=3)
        >>> job.kind, sum(job.truth.annotations_by_type.values())
        ('image', 3)
    """
    if kind not in GENERATED_KINDS:
        raise ValueError(
            f"unknown result kind {kind!r}; expected one of {', '.join(GENERATED_KINDS)}"
        )
    width, height = mask_size
    if width < 1 or height < 1 or mask_points < 1:
        raise ValueError(f"mask_size and mask_points must be positive, got {mask_size} and "
                         f"{mask_points}")
    builder = _JobBuilder(rng, job_id, asset_base_url, (int(width), int(height)),
                          int(mask_points), public_base_url)
    result = getattr(builder, kind)(max(int(annotations), 0))
    truth = builder.truth.t
    truth.jobs_by_status["completed"] += 1
    truth.jobs_by_kind[kind] += 1
    return GeneratedJob(
        job_id=job_id,
        reference_id="",
        status="completed",
        kind=kind,
        result=result,
        n_frames=builder.n_frames,
        n_annotations=builder.truth.n_annotations,
        assets=builder.assets,
        truth=truth,
    )


def generate_batch(
    n_jobs: int,
    *,
    seed: int = 0,
    kinds: Sequence[str] | None = None,
    project_id: str | None = None,
    batch_id: str | None = None,
    asset_base_url: str = DEFAULT_ASSET_BASE_URL,
    annotations_per_job: int = 8,
    completed_fraction: float = 0.95,
    mask_size: tuple[int, int] = DEFAULT_MASK_SIZE,
    mask_points: int = DEFAULT_MASK_POINTS,
    public_base_url: str | None = None,
) -> GeneratedBatch:
    """Generate a batch of ``n_jobs`` jobs, deterministically from ``seed``.

    Completed jobs cycle through ``kinds`` (default: every format in
    :data:`GENERATED_KINDS`); about ``1 - completed_fraction`` of the jobs are left
    ``"in_progress"`` with no result (kind ``"none"``). ``batch.truth`` sums the
    ground truth of every job. With ``public_base_url``, about half of the jobs (by a
    hash of the job id) have their source media (``image_url``, frame ``src``, sensor
    ``data_url``) there instead of under ``asset_base_url``.

    Example:
        >>> batch = generate_batch(10, seed=3, kinds=["image"], completed_fraction=1.0)
        >>> sorted(batch.truth.jobs_by_kind.items())
        [('image', 10)]
    """
    if n_jobs < 0:
        raise ValueError(f"n_jobs must be >= 0, got {n_jobs}")
    if not 0.0 <= completed_fraction <= 1.0:
        raise ValueError(f"completed_fraction must be within 0..1, got {completed_fraction}")
    kinds = tuple(kinds) if kinds is not None else GENERATED_KINDS
    if not kinds:
        raise ValueError("kinds must name at least one result kind")
    for kind in kinds:
        if kind not in GENERATED_KINDS:
            raise ValueError(
                f"unknown result kind {kind!r}; expected one of {', '.join(GENERATED_KINDS)}"
            )
    # A batch is a large acyclic tree of dicts: the cyclic garbage collector finds
    # nothing in it but would triple the time spent building it.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _generate_batch(n_jobs, seed, kinds, project_id, batch_id, asset_base_url,
                               annotations_per_job, completed_fraction, mask_size, mask_points,
                               public_base_url)
    finally:
        if was_enabled:
            gc.enable()


def _generate_batch(n_jobs: int, seed: int, kinds: tuple[str, ...], project_id: str | None,
                    batch_id: str | None, asset_base_url: str, annotations_per_job: int,
                    completed_fraction: float, mask_size: tuple[int, int],
                    mask_points: int, public_base_url: str | None = None) -> GeneratedBatch:
    rng = random.Random(seed)
    project_id = project_id or _uuid(rng)
    batch_id = batch_id or _uuid(rng)
    work_flow_id = _uuid(rng)
    tag = rng.choice(("sample_project", work_flow_id, ""))
    jobs: list[GeneratedJob] = []
    n_done = 0
    for i in range(n_jobs):
        job_id = _uuid(rng) if rng.random() > 0.02 else _odd_id(rng)
        if rng.random() < completed_fraction:
            job = generate_job(kinds[n_done % len(kinds)], job_id=job_id, rng=rng,
                               asset_base_url=asset_base_url, annotations=annotations_per_job,
                               mask_size=mask_size, mask_points=mask_points,
                               public_base_url=public_base_url)
            n_done += 1
        else:
            status = rng.choice(("in_progress", "in_progress", "pending"))
            job = GeneratedJob(job_id=job_id, reference_id="", status=status, kind="none",
                               result=None, n_annotations=0)
            job.truth.jobs_by_status[status] += 1
            job.truth.jobs_by_kind["none"] += 1
        job.reference_id = f"{i + 1:06d}"
        job.work_flow_id = work_flow_id
        job.tag = tag
        job.priority_weight = rng.randint(1, 10)
        jobs.append(job)
    return GeneratedBatch(project_id=project_id, batch_id=batch_id,
                          name=f"Batch {seed}", jobs=jobs)
