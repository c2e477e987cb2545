"""Source media the emulator serves: small real images and sensor files, made on demand.

A generated job refers to its media by URL (``image_url``, frame ``src``, sensor
``data_url``). The path of the URL alone decides the file: an image (``.jpg`` JPEG,
``.png`` PNG) of 48 to 192 pixels a side (one size per job) and simple shapes, or a few
bytes of a sensor file, all derived from a hash of the path, so every run serves the
same bytes and nothing is stored up front (a benchmark batch of 50,000 jobs costs
nothing until a file is asked for). :func:`media_truth` is what a correct fetch must
find.

Example:
    >>> body, ctype = render_media("images/j1.jpg")
    >>> ctype, media_truth("images/j1.jpg").width == image_size("images/j1.jpg")[0]
    ('image/jpeg', True)
"""

from __future__ import annotations

import hashlib
import io
import posixpath
import threading
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["MediaTruth", "image_size", "is_media_path", "media_truth", "render_media"]

_IMAGE_TYPES = {".jpg": ("JPEG", "image/jpeg"), ".jpeg": ("JPEG", "image/jpeg"),
                ".png": ("PNG", "image/png")}
_SENSOR_TYPES = {".pcd": "application/octet-stream", ".dat": "application/octet-stream"}
_LOCK = threading.Lock()


@dataclass(frozen=True)
class MediaTruth:
    """What one served media file is: its size in pixels (images), bytes and sha256."""

    path: str
    content_type: str
    n_bytes: int
    sha256: str
    width: int | None = None
    height: int | None = None


def _digest(path: str) -> bytes:
    return hashlib.sha256(path.encode("utf-8")).digest()


def is_media_path(path: str) -> bool:
    """Whether ``path`` (an asset key such as ``images/j1.jpg``) names a media file."""
    ext = posixpath.splitext(path)[1].lower()
    return bool(path) and (ext in _IMAGE_TYPES or ext in _SENSOR_TYPES)


def image_size(path: str) -> tuple[int, int]:
    """The (width, height) of the image at ``path``: 48..192 pixels a side.

    The size varies per job: every frame (and camera) of ``videos/<job>/…`` or
    ``sensors/<job>/…`` has the size of its job, as a video's frames do.
    """
    parts = path.split("/")
    d = _digest("/".join(parts[:2]) if len(parts) > 2 else path)
    return 48 + d[0] % 145, 48 + d[1] % 145


@lru_cache(maxsize=4096)
def render_media(path: str) -> tuple[bytes, str]:
    """The bytes and content type served for the media file at ``path``."""
    ext = posixpath.splitext(path)[1].lower()
    d = _digest(path)
    if ext in _SENSOR_TYPES:
        return b"# emulator sensor file\n" + d.hex().encode() + b"\n", _SENSOR_TYPES[ext]
    if ext not in _IMAGE_TYPES:
        raise ValueError(f"not a media path: {path!r}")
    from PIL import Image, ImageDraw

    width, height = image_size(path)
    fmt, ctype = _IMAGE_TYPES[ext]
    with _LOCK:  # Pillow's encoders are thread-safe, but keep rendering cheap and serial
        image = Image.new("RGB", (width, height), (d[2], d[3], d[4]))
        draw = ImageDraw.Draw(image)
        for i in range(3):
            x0, y0 = d[5 + i] % width, d[8 + i] % height
            x1 = min(width - 1, x0 + 8 + d[11 + i] % 40)
            y1 = min(height - 1, y0 + 8 + d[14 + i] % 40)
            draw.rectangle((x0, y0, x1, y1), fill=(d[17 + i], d[20 + i], d[23 + i]))
        buf = io.BytesIO()
        options = {"quality": 85} if fmt == "JPEG" else {}
        image.save(buf, format=fmt, **options)
    return buf.getvalue(), ctype


def media_truth(path: str) -> MediaTruth:
    """The ground truth of the media file at ``path`` (an asset key, no leading ``/``)."""
    body, ctype = render_media(path)
    width = height = None
    if ctype.startswith("image/"):
        width, height = image_size(path)
    return MediaTruth(path, ctype, len(body), hashlib.sha256(body).hexdigest(), width, height)
