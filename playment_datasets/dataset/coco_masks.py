"""COCO instance masks of segmentation jobs: one annotation per segment, as RLE.

:func:`~playment_datasets.dataset.exports.to_coco` calls :func:`segment_images` for the
``segment`` type. Every PNG mask that was fetched and decoded is one COCO image (its
size is the mask's); every colour of it that its legend labels is one annotation:

* ``segmentation``: uncompressed RLE ``{"size": [height, width], "counts": [...]}``,
  runs over the pixels in column-major (Fortran) order starting with a run of 0s —
  what ``pycocotools.mask.frPyObjects`` reads;
* ``area``: the pixel count; ``bbox``: ``[x, y, w, h]`` in pixels, the tight box of
  the pixels (on pixel edges);
* the category is the class (``segments.class_name``, ``car`` for ``car # 5``), the
  instance id is kept as ``playment_instance_id``.

Colours a legend does not list (null label) have no category and are not exported.

Example:
    >>> import numpy as np
    >>> rle_counts(np.array([[0, 1], [1, 1]], dtype=bool))
    [1, 3]
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from playment_datasets.normalize.masks import DecodedMask, png_ids

__all__ = ["MASK_COLUMNS", "SEGMENT_COLUMNS", "SegmentImage", "rle_counts", "segment_images"]

MASK_COLUMNS = ["job_id", "frame_id", "kind", "url", "sha256", "width", "height",
                 "decode_status"]
SEGMENT_COLUMNS = ["job_id", "frame_id", "mask_url", "color", "label", "class_name",
                    "instance_id", "track_id", "annotation_key", "n_pixels"]


@dataclass
class SegmentImage:
    """One mask as a COCO image, with its annotations (ids and category ids unset)."""

    job_id: str
    frame_id: str | None
    width: int
    height: int
    annotations: list[dict[str, Any]] = field(default_factory=list)


def rle_counts(binary: np.ndarray[Any, Any]) -> list[int]:
    """Uncompressed COCO RLE counts of a 2-D boolean mask (column-major, 0s first).

    Example:
        >>> import numpy as np
        >>> rle_counts(np.array([[1, 0, 0]], dtype=bool))
        [0, 1, 2]
    """
    flat = np.asarray(binary, dtype=bool).ravel(order="F")
    if flat.size == 0:
        return []
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    counts = np.diff(np.r_[0, changes, flat.size]).tolist()
    return [0, *counts] if flat[0] else counts


def _bbox(binary: np.ndarray[Any, Any]) -> list[int]:
    rows = np.flatnonzero(binary.any(axis=1))
    cols = np.flatnonzero(binary.any(axis=0))
    x0, y0 = int(cols[0]), int(rows[0])
    return [x0, y0, int(cols[-1]) + 1 - x0, int(rows[-1]) + 1 - y0]


def segment_images(ds: Any, masks: pa.Table, segments: pa.Table) -> list[SegmentImage]:
    """Every decoded PNG mask of ``ds`` with one annotation per labelled colour.

    ``masks`` and ``segments`` are those tables of ``ds`` (with at least the columns of
    :data:`MASK_COLUMNS` and :data:`SEGMENT_COLUMNS`); the mask bytes are read with
    ``ds.object(sha256)``.
    """
    rows = [m for m in masks.to_pylist()
            if m["kind"] == "png" and m["decode_status"] == "ok" and m["sha256"]]
    if not rows:
        return []
    by_mask: dict[tuple[Any, Any, Any], dict[str, dict[str, Any]]] = defaultdict(dict)
    for s in segments.to_pylist():
        if s["mask_url"] is not None and s["color"] is not None and s["label"] is not None:
            by_mask[(s["job_id"], s["mask_url"], s["frame_id"])].setdefault(s["color"], s)
    images = []
    for m in sorted(rows, key=lambda m: (m["job_id"], m["frame_id"] or "", m["url"])):
        segs = by_mask.get((m["job_id"], m["url"], m["frame_id"]), {})
        if not segs:
            continue
        got = png_ids(ds.object(m["sha256"]))
        if isinstance(got, DecodedMask):  # stored bytes that decoded at pull time: damaged
            continue
        ids, colors = got
        height, width = ids.shape
        image = SegmentImage(m["job_id"], m["frame_id"], int(width), int(height))
        for n, color in enumerate(colors, 1):
            seg = segs.get(color)
            if seg is None:
                continue
            binary = ids == n
            entry: dict[str, Any] = {
                "label": seg["class_name"] or seg["label"],
                "bbox": _bbox(binary),
                "area": int(binary.sum()),
                "segmentation": {"size": [int(height), int(width)],
                                 "counts": rle_counts(binary)},
                "iscrowd": 0,
                "playment_annotation_key": seg["annotation_key"],
                "playment_color": color,
            }
            if seg["instance_id"] is not None:
                entry["playment_instance_id"] = seg["instance_id"]
            if seg["track_id"] is not None:
                entry["playment_track_id"] = seg["track_id"]
            image.annotations.append(entry)
        if image.annotations:
            images.append(image)
    return images
