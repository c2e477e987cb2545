"""Draw one image (or video frame) of a version with its annotations, in matplotlib.

The picture is the fetched source image (``ds.fetch_media()``) when the media store has
it, else a blank canvas of the image's size (the fetched size, else 4:3). On it:
rectangles and 2D cuboids as boxes, polygons as closed outlines, lines as open
polylines, landmarks as points, and segmentation masks (when their file is stored)
as a translucent overlay. Each label keeps one colour in every picture. Needs
matplotlib: ``pip install 'playment-datasets[plot]'``.

Example:
    >>> ax = ds.show(ds.jobs["job_id"][0])   # doctest: +SKIP
    >>> ax.figure.savefig("job.png")         # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import io
from typing import Any

import numpy as np
import pandas as pd

from playment_datasets._optional import import_optional
from playment_datasets.errors import ConfigurationError

__all__ = ["show"]

_BLANK = (640, 480)
_BOX_TYPES = ("rectangle", "cuboid", "segment")


def _colour(label: Any) -> tuple[float, float, float]:
    """One stable colour per label (a hash into matplotlib's tab20 palette)."""
    matplotlib = import_optional("matplotlib", extra="plot")
    palette = matplotlib.colormaps["tab20"]
    index = hashlib.sha256(str(label).encode()).digest()[0] % 20
    return tuple(palette(index)[:3])


def _same(series: pd.Series, value: Any) -> pd.Series:
    if value is None:
        return series.isna()
    return series.astype(object) == value


def _pick_frame(ds: Any, job_id: str, frame_id: str | None) -> str | None:
    frames = ds.table("frames", columns=["job_id", "frame_id", "frame_index", "sensor_id"])
    frames = frames[frames["job_id"] == job_id]
    if frame_id is None:
        if frames.empty:
            return None
        # a video without frame_id: its first frame
        first = frames.sort_values("frame_index", na_position="last").iloc[0]
        return None if pd.isna(first["frame_id"]) else str(first["frame_id"])
    if not (frames["frame_id"].astype(object) == frame_id).any():
        raise ConfigurationError(
            f"job {job_id!r} has no frame {frame_id!r}; expected one of "
            f"{', '.join(map(repr, frames['frame_id'].astype(str).head(5)))}"
        )
    return frame_id


def _image(ds: Any, job_id: str, frame_id: str | None, sensor_id: str | None
           ) -> tuple[np.ndarray | None, tuple[int, int]]:
    """The stored source image as an array (or ``None``) and the image size."""
    from playment_datasets.dataset.media import media_urls

    refs = media_urls(ds)
    refs = refs[(refs["job_id"] == job_id) & _same(refs["frame_id"], frame_id)
                & _same(refs["sensor_id"], sensor_id)]
    files = ds.media_files() if hasattr(ds, "media_files") else {}
    size = (ds.image_sizes() if hasattr(ds, "image_sizes") else {}).get(job_id, _BLANK)
    for url in refs["url"]:
        stored = files.get(url, (None, None))[1]
        if stored is None:
            continue
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(stored) as image:
                return np.asarray(image.convert("RGB")), image.size
        except (UnidentifiedImageError, OSError):
            continue  # a sensor file, not a picture
    return None, size


def _rings(ds: Any, job_id: str, frame_id: str | None) -> dict[str, np.ndarray]:
    pts = ds.table("points", columns=["job_id", "annotation_key", "frame_id", "point_index",
                                      "x", "y"])
    pts = pts[(pts["job_id"] == job_id) & _same(pts["frame_id"], frame_id)]
    pts = pts.sort_values(["annotation_key", "point_index"])
    return {str(k): g[["x", "y"]].to_numpy(dtype="float64")
            for k, g in pts.groupby("annotation_key", observed=True)}


def _masks(ds: Any, ax: Any, job_id: str, frame_id: str | None, size: tuple[int, int]) -> int:
    """Overlay the stored PNG masks of the image; returns how many were drawn."""
    if "masks" not in ds.tables():
        return 0
    source = getattr(ds, "_media_source", None)
    masks = ds.table("masks", columns=["job_id", "frame_id", "kind", "sha256"])
    masks = masks[(masks["job_id"] == job_id) & _same(masks["frame_id"], frame_id)
                  & (masks["kind"].astype(object) == "png") & masks["sha256"].notna()]
    drawn = 0
    for sha in masks["sha256"]:
        path = source.file(str(sha)) if source is not None else None
        if path is None:
            continue
        from PIL import Image

        with Image.open(io.BytesIO(path.read_bytes())) as mask:
            rgba = np.asarray(mask.convert("RGBA")).astype("float64") / 255.0
        rgba[..., 3] = np.where(rgba[..., :3].sum(axis=2) > 0, 0.45, 0.0)
        ax.imshow(rgba, extent=(0, size[0], size[1], 0), interpolation="nearest")
        drawn += 1
    return drawn


def show(ds: Any, job_id: str, frame_id: str | None = None, *, sensor_id: str | None = None,
         ax: Any = None, labels: bool = True) -> Any:
    """Draw the image of ``job_id`` (a frame of a video: ``frame_id``, default the first)
    with its annotations; returns the matplotlib ``Axes``.

    Example:
        >>> ax = show(ds, "job-0001")                     # doctest: +SKIP
        >>> ax = show(ds, "job-0042", frame_id="frame003")  # doctest: +SKIP
    """
    plt = import_optional("matplotlib.pyplot", extra="plot")
    patches = import_optional("matplotlib.patches", extra="plot")
    jobs = ds.table("jobs", columns=["job_id"])
    if not (jobs["job_id"] == job_id).any():
        raise ConfigurationError(
            f"job {job_id!r} is not in {ds!r}; pass an id from ds.jobs['job_id']"
        )
    frame_id = _pick_frame(ds, job_id, frame_id)
    image, (width, height) = _image(ds, job_id, frame_id, sensor_id)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 6 * height / width))
    if image is not None:
        ax.imshow(image, extent=(0, width, height, 0))
    else:
        ax.add_patch(patches.Rectangle((0, 0), width, height, facecolor="0.92",
                                       edgecolor="0.6"))
    _masks(ds, ax, job_id, frame_id, (width, height))
    ann = ds.table("annotations", columns=["job_id", "annotation_key", "frame_id",
                                           "sensor_id", "type", "label", "x_min", "y_min",
                                           "x_max", "y_max"])
    ann = ann[(ann["job_id"] == job_id) & _same(ann["frame_id"], frame_id)
              & _same(ann["sensor_id"], sensor_id)]
    rings = _rings(ds, job_id, frame_id)
    for row in ann.itertuples(index=False):
        colour = _colour(row.label)
        ring = rings.get(str(row.annotation_key))
        scaled = ring * (width, height) if ring is not None and len(ring) else None
        if row.type in ("polygon", "line") and scaled is not None:
            ax.add_patch(patches.Polygon(scaled, closed=row.type == "polygon", fill=False,
                                         edgecolor=colour, linewidth=1.5))
        elif row.type == "landmark" and scaled is not None:
            ax.scatter(scaled[:, 0], scaled[:, 1], s=14, color=colour, zorder=3)
        elif row.type in _BOX_TYPES and not pd.isna(row.x_min) and not pd.isna(row.x_max):
            x0, y0 = min(row.x_min, row.x_max) * width, min(row.y_min, row.y_max) * height
            ax.add_patch(patches.Rectangle(
                (x0, y0), abs(row.x_max - row.x_min) * width, abs(row.y_max - row.y_min) * height,
                fill=False, edgecolor=colour, linewidth=1.5,
                linestyle="--" if row.type != "rectangle" else "-"))
        else:
            continue
        if labels and not pd.isna(row.label) and not pd.isna(row.x_min):
            ax.text(min(row.x_min, row.x_max) * width, min(row.y_min, row.y_max) * height,
                    str(row.label), fontsize=7, color="white", va="bottom",
                    bbox={"facecolor": colour, "alpha": 0.8, "pad": 1, "linewidth": 0})
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.set_aspect("equal")
    ax.set_title(f"{job_id}" + (f" · {frame_id}" if frame_id else "")
                 + (f" · {sensor_id}" if sensor_id else ""), fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    return ax
