"""Real segmentation masks for generated jobs, with their ground truth.

- PNG masks (image and video segmentation): RGBA rasters on a background of
  unlabelled pixels (0 in every channel), one filled rectangle per colour drawn in
  turn (later ones cover earlier ones), alpha 255 on labelled pixels.
- ASCII PCD v0.7 files (older point-cloud segmentation): ``FIELDS x y z label_key``,
  ``SIZE 4 4 4 4``, ``TYPE F F F F``, the label written as a float holding an integer.
- Label files (newer point-cloud segmentation, one per frame). Playment does not
  document their layout; the emulator's choice (inferred) is plain ASCII text with one
  integer label key per line, one line per point, in the order of the frame's points.

The ground truth is counted from the arrays the files are encoded from, not by
decoding the files, so a decoder can be checked against it.

Example:
    >>> import random
    >>> body, truth = render_png(random.Random(1), 8, 4, ["#ff0000"])
    >>> body[:4], truth.width, sum(n for n, *_ in truth.pixels.values()) > 0
    (b'\\x89PNG', 8, True)
"""

from __future__ import annotations

import io
import random
from collections.abc import Sequence

import numpy as np

from playment_datasets.emulator.batch import MaskTruth

__all__ = ["render_labels", "render_pcd", "render_png"]


def _rgb(color: str) -> tuple[int, int, int]:
    value = int(color[1:7], 16)
    return value >> 16, (value >> 8) & 0xFF, value & 0xFF


def render_png(rng: random.Random, width: int, height: int, colors: Sequence[str],
               unknown: Sequence[str] = ()) -> tuple[bytes, MaskTruth]:
    """An RGBA PNG with one rectangle per colour of ``colors`` and ``unknown``.

    Colours are ``#rrggbb`` (any case); ``unknown`` ones are recorded in
    ``truth.unknown`` (colours the result's legend does not list).
    """
    from PIL import Image

    pixels = np.zeros((height, width, 4), dtype=np.uint8)
    for color in [*colors, *unknown]:
        w = rng.randint(1, max(1, width // 2))
        h = rng.randint(1, max(1, height // 2))
        x0 = rng.randrange(width - w + 1)
        y0 = rng.randrange(height - h + 1)
        pixels[y0:y0 + h, x0:x0 + w] = (*_rgb(color), 255)
    truth = MaskTruth(kind="png", width=width, height=height,
                      unknown={c.lower() for c in unknown})
    codes = (pixels[..., 0].astype(np.int64) << 16) | (pixels[..., 1].astype(np.int64) << 8) \
        | pixels[..., 2]
    labelled = pixels[..., 3] > 0
    for color in {c.lower() for c in [*colors, *unknown]}:
        rows, cols = np.nonzero(labelled & (codes == int(color[1:7], 16)))
        if rows.size:
            truth.pixels[color] = (int(rows.size), cols.min() / width, rows.min() / height,
                                   (cols.max() + 1) / width, (rows.max() + 1) / height)
    buf = io.BytesIO()
    Image.fromarray(pixels, "RGBA").save(buf, "PNG", compress_level=1)
    return buf.getvalue(), truth


def _labels(rng: random.Random, n_points: int, keys: Sequence[int]) -> np.ndarray:
    gen = np.random.default_rng(rng.getrandbits(64))
    return np.asarray(keys, dtype=np.int64)[gen.integers(0, len(keys), n_points)]


def _truth(kind: str, labels: np.ndarray, unknown: Sequence[int]) -> MaskTruth:
    keys, counts = np.unique(labels, return_counts=True)
    return MaskTruth(kind=kind, n_points=int(labels.size),
                     points=dict(zip(keys.tolist(), counts.tolist(), strict=True)),
                     unknown=set(unknown))


def render_pcd(rng: random.Random, n_points: int, keys: Sequence[int],
               unknown: Sequence[int] = ()) -> tuple[bytes, MaskTruth]:
    """An ASCII PCD v0.7 with ``x y z label_key``, labels drawn from ``keys + unknown``."""
    labels = _labels(rng, n_points, [*keys, *unknown])
    gen = np.random.default_rng(rng.getrandbits(64))
    xyz = np.round(gen.uniform(-50, 50, (n_points, 3)), 3)
    header = (
        "# .PCD v0.7 - Point Cloud Data file format\nVERSION 0.7\nFIELDS x y z label_key\n"
        f"SIZE 4 4 4 4\nTYPE F F F F\nCOUNT 1 1 1 1\nWIDTH {n_points}\nHEIGHT 1\n"
        f"VIEWPOINT 0 0 0 1 0 0 0\nPOINTS {n_points}\nDATA ascii\n"
    )
    lines = [f"{x:g} {y:g} {z:g} {k}.0" for (x, y, z), k in zip(xyz.tolist(), labels.tolist(),
                                                             strict=True)]
    body = header + "".join(line + "\n" for line in lines)
    return body.encode("ascii"), _truth("pcd", labels, unknown)


def render_labels(rng: random.Random, n_points: int, keys: Sequence[int],
                  unknown: Sequence[int] = ()) -> tuple[bytes, MaskTruth]:
    """A label file: one integer label key per line, drawn from ``keys + unknown``."""
    labels = _labels(rng, n_points, [*keys, *unknown])
    body = "".join(f"{k}\n" for k in labels.tolist())
    return body.encode("ascii"), _truth("labels", labels, unknown)
