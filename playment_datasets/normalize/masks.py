"""Decode segmentation mask files (pure: bytes in, statistics out; no I/O, no HTTP).

Three kinds of mask file appear in Playment results:

- ``png``: an RGBA raster (image and video segmentation). A pixel whose four
  channels are all 0 is unlabelled; any other pixel belongs to the colour
  ``'#%02x%02x%02x' % (r, g, b)`` of its first three channels (alpha is ignored,
  its meaning is undocumented).
- ``pcd``: an ASCII PCD v0.7 point cloud with a ``label_key`` field (older
  point-cloud segmentation). Labels are written as floats that hold integers.
- ``labels``: the per-frame label file of the newer point-cloud format. Its layout is
  not documented; this library reads plain ASCII text, one label key per point per
  line, in the order of the frame's points (integer-valued floats such as ``3.0`` are
  accepted, blank lines ignored).

Bounding boxes use the normalized coordinates of the other shapes, on pixel edges:
``x_min = col_min / width``, ``x_max = (col_max + 1) / width`` (and the same for rows
and ``height``), so a box covering the whole image is ``0, 0, 1, 1``.

Hostile input never raises and never allocates without bound: sizes declared in a
header are checked against ``max_pixels`` / ``max_points`` before anything is
decoded, and every failure is reported as a :attr:`DecodedMask.status`.

Example:
    >>> import io
    >>> from PIL import Image
    >>> img = Image.new("RGBA", (4, 2))
    >>> img.putpixel((1, 0), (255, 0, 0, 255)); img.putpixel((2, 1), (255, 0, 0, 255))
    >>> buf = io.BytesIO(); img.save(buf, "PNG")
    >>> mask = decode_png(buf.getvalue())
    >>> mask.status, mask.colors["#ff0000"]
    ('ok', ColorStats(n_pixels=2, x_min=0.25, y_min=0.0, x_max=0.75, y_max=1.0))
    >>> decode_labels(b"0\\n2\\n2\\n").label_counts
    {0: 1, 2: 2}
"""

from __future__ import annotations

import functools
import io
import struct
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MAX_POINTS",
    "ColorStats",
    "DecodedMask",
    "decode_labels",
    "decode_mask",
    "decode_pcd",
    "decode_png",
    "png_ids",
]

#: Largest raster decoded (width × height); 25 M pixels is 100 MB as RGBA.
DEFAULT_MAX_PIXELS = 25_000_000
#: Largest point count decoded from a PCD or label file.
DEFAULT_MAX_POINTS = 10_000_000

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHUNK = 1 << 20  # bytes of label text converted at a time: bounds the token lists
_INT64_LIMIT = 2.0**63


@dataclass(frozen=True)
class ColorStats:
    """Pixels of one colour in a raster mask, and their normalized bounding box."""

    n_pixels: int
    x_min: float
    y_min: float
    x_max: float
    y_max: float


@dataclass
class DecodedMask:
    """What a mask file holds, or why it could not be read.

    ``status`` is ``"ok"`` or one of ``not_png``, ``not_pcd``, ``truncated``,
    ``too_large``, ``bad_fields``, ``bad_labels``, ``bad_header``, ``unsupported``
    (with ``error`` saying what was expected and what was found).
    """

    kind: str
    status: str = "ok"
    error: str | None = None
    width: int | None = None
    height: int | None = None
    n_points: int | None = None
    colors: dict[str, ColorStats] = field(default_factory=dict)
    label_counts: dict[int, int] = field(default_factory=dict)
    labels: np.ndarray[Any, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _failed(kind: str, status: str, error: str, **known: Any) -> DecodedMask:
    return DecodedMask(kind, status, error, **known)


def decode_png(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> DecodedMask:
    """Pixel count and bounding box per colour of a PNG mask.

    Example:
        >>> decode_png(b"<html>").status
        'not_png'
    """
    rgba = _rgba(data, max_pixels)
    if isinstance(rgba, DecodedMask):
        return rgba
    height, width = rgba.shape[:2]
    runs = _Runs.of(rgba)
    colors = {}
    for color, n, r0, r1, c0, c1 in runs.stats():
        colors[color] = ColorStats(n, c0 / width, r0 / height, (c1 + 1) / width, (r1 + 1) / height)
    return DecodedMask("png", width=width, height=height, colors=colors)


@dataclass
class _Runs:
    """A raster as runs of equal pixels within a row, grouped by colour.

    A segmentation mask is mostly large areas of one colour, so it holds far fewer runs
    than pixels: one comparison pass over the pixels finds the runs, and everything else
    (colours present, pixel counts, bounding boxes, an id per pixel) is computed per run.
    A noisy raster degrades to one run per pixel, which is still correct.
    """

    starts: np.ndarray[Any, Any]  # flat index of each run's first pixel
    lengths: np.ndarray[Any, Any]
    ids: np.ndarray[Any, Any]  # per run: 0 unlabelled, i >= 1 the colour codes[i - 1]
    codes: np.ndarray[Any, Any]  # distinct 0xRRGGBB of labelled runs, ascending
    width: int

    @classmethod
    def of(cls, rgba: np.ndarray[Any, Any]) -> _Runs:
        width = rgba.shape[1]
        flat = np.ascontiguousarray(rgba).view("<u4").reshape(-1)  # r | g<<8 | b<<16 | a<<24
        change = np.empty(flat.size, dtype=bool)
        change[0] = True
        np.not_equal(flat[1:], flat[:-1], out=change[1:])
        change[::width] = True  # a run never crosses a row
        starts = np.flatnonzero(change)
        lengths = np.diff(starts, append=flat.size)
        values = flat[starts]
        labelled = values != 0  # unlabelled: all four channels 0; alpha is otherwise ignored
        rgb = ((values & 0xFF) << 16) | (values & 0xFF00) | ((values >> 16) & 0xFF)
        codes, inverse = np.unique(rgb[labelled], return_inverse=True)
        ids = np.zeros(values.size, dtype=np.int32)
        ids[labelled] = inverse.reshape(-1) + 1
        return cls(starts, lengths, ids, codes, width)

    def colors(self) -> list[str]:
        return [f"#{int(c):06x}" for c in self.codes.tolist()]

    def stats(self) -> list[tuple[str, int, int, int, int, int]]:
        """(colour, pixels, first row, last row, first column, last column) per colour."""
        keep = self.ids > 0
        ids, starts, lengths = self.ids[keep], self.starts[keep], self.lengths[keep]
        if ids.size == 0:
            return []
        order = np.argsort(ids, kind="stable")  # runs stay in raster order within a colour
        ids, starts, lengths = ids[order], starts[order], lengths[order]
        first = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
        rows, cols = np.divmod(starts, self.width)
        last_cols = cols + lengths - 1
        return list(zip(
            self.colors(), np.add.reduceat(lengths, first).tolist(),
            rows[first].tolist(), rows[np.r_[first[1:], ids.size] - 1].tolist(),
            np.minimum.reduceat(cols, first).tolist(),
            np.maximum.reduceat(last_cols, first).tolist(), strict=True))

    def id_raster(self) -> np.ndarray[Any, Any]:
        return np.repeat(self.ids, self.lengths).reshape(-1, self.width)


def _rgba(data: bytes, max_pixels: int) -> np.ndarray[Any, Any] | DecodedMask:
    """The H × W × 4 pixels of a PNG, or a failed :class:`DecodedMask` saying why."""
    data = bytes(data)
    if not data.startswith(_PNG_SIGNATURE):
        return _failed("png", "not_png", f"expected a PNG file, got {data[:16]!r}")
    if len(data) < 33 or data[12:16] != b"IHDR":
        return _failed("png", "truncated", "expected a PNG IHDR header, the file ends or "
                       "holds something else after the signature")
    width, height = struct.unpack(">II", data[16:24])
    known = {"width": width, "height": height}
    if width == 0 or height == 0:
        return _failed("png", "bad_header", f"expected a non-empty image, got {width}×{height}",
                       **known)
    if width * height > max_pixels:
        return _failed("png", "too_large", f"expected at most {max_pixels} pixels, the header "
                       f"declares {width}×{height} = {width * height}", **known)
    # 8-bit RGBA, what Playment's masks are: the fast path, for a file whose chunks are sound
    if data[24:26] == b"\x08\x06" and _sound_chunks(data):
        rgba = _spng_rgba(data)
        if rgba is not None and rgba.shape == (height, width, 4):
            return rgba
    return _pillow_rgba(data, width, height, known)


def _sound_chunks(data: bytes) -> bool:
    """Whether every chunk up to IEND is whole with a matching CRC, and IHDR comes once.

    pyspng has libspng ignore CRCs, so a mask damaged in transit would decode to wrong
    pixels where Pillow refuses it; such a file goes to Pillow. (Neither decoder is then
    fooled by accident; libspng does not check the zlib stream's Adler-32, so an IDAT
    altered on purpose with its CRC recomputed would still decode.)
    """
    pos, end, ihdrs = 8, len(data), 0
    while pos + 12 <= end:
        (length,) = struct.unpack_from(">I", data, pos)
        tag_end = pos + 8
        if tag_end + length + 4 > end:
            return False
        tag = data[pos + 4:tag_end]
        (crc,) = struct.unpack_from(">I", data, tag_end + length)
        if zlib.crc32(data[tag_end:tag_end + length], zlib.crc32(tag)) != crc:
            return False
        if tag == b"IHDR":
            ihdrs += 1
            if ihdrs > 1 or length != 13 or pos != 8:
                return False
        if tag == b"IEND":
            return ihdrs == 1
        pos = tag_end + length + 4
    return False


def _spng_rgba(data: bytes) -> np.ndarray[Any, Any] | None:
    """An 8-bit RGBA PNG's pixels decoded by libspng (through pyspng), or ``None``
    when pyspng is not installed or refuses the file (Pillow then decodes it and
    says why it fails). libspng inflates and unfilters about 6× faster than Pillow.
    """
    load = _spng_loader()
    if load is None:
        return None
    try:
        rgba: np.ndarray[Any, Any] = load(data, "RGBA")
    except (RuntimeError, ValueError, MemoryError):
        return None
    return rgba if rgba.dtype == np.uint8 and rgba.ndim == 3 else None


@functools.cache
def _spng_loader() -> Callable[[bytes, str], np.ndarray[Any, Any]] | None:
    try:
        import pyspng
    except ImportError:  # a platform without a pyspng wheel: Pillow decodes everything
        return None
    return cast("Callable[[bytes, str], np.ndarray[Any, Any]]", pyspng.load)


def _pillow_rgba(data: bytes, width: int, height: int, known: dict[str, int]
                 ) -> np.ndarray[Any, Any] | DecodedMask:
    from PIL import Image  # Pillow is imported only when a raster is decoded

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=["PNG"]) as img:
                if img.size != (width, height):  # another IHDR later on: never allocate for it
                    return _failed("png", "bad_header", f"the first IHDR says {width}×{height}, "
                                   f"a later one {img.size[0]}×{img.size[1]}", **known)
                img.load()
                rgba_img = img if img.mode == "RGBA" else img.convert("RGBA")
                rgba = _pixels(rgba_img)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        return _failed("png", "too_large", f"Pillow refused the image: {exc}", **known)
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
        text = str(exc)
        status = "truncated" if "truncat" in text.lower() or isinstance(exc, EOFError) \
            else "not_png"
        return _failed("png", status, f"the PNG cannot be decoded: {text}", **known)
    if rgba.shape[:2] != (height, width):
        return _failed("png", "bad_header", f"the header says {width}×{height}, the pixels "
                       f"are {rgba.shape[1]}×{rgba.shape[0]}", **known)
    return rgba


def _pixels(img: Any) -> np.ndarray[Any, Any]:
    """An RGBA image's pixels as an H × W × 4 array: without a copy through Pillow's
    Arrow export (Pillow >= 11.2, an image in one memory block), else copied."""
    width, height = img.size
    try:
        import pyarrow as pa

        buffer = pa.array(img).buffers()[-1]  # the pixel bytes; they keep the image alive
        if buffer is not None and buffer.size >= width * height * 4:
            flat = np.frombuffer(buffer, dtype=np.uint8, count=width * height * 4)
            return flat.reshape(height, width, 4)
    except (TypeError, ValueError, AttributeError, NotImplementedError):
        pass  # an older Pillow, or an image in several blocks
    except Exception:  # noqa: BLE001 - pa.ArrowException; pyarrow is optional here
        pass
    return np.asarray(img)


def png_ids(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS
            ) -> tuple[np.ndarray[Any, Any], list[str]] | DecodedMask:
    """A PNG mask as an H × W ``int32`` array of colour ids, and the colours.

    0 is unlabelled (all four channels 0); id ``i >= 1`` is the colour ``colors[i - 1]``
    (lower-case ``#rrggbb``, in ascending order). A file that cannot be decoded gives
    the failed :class:`DecodedMask` instead.

    Example:
        >>> import io
        >>> from PIL import Image
        >>> img = Image.new("RGBA", (3, 1)); img.putpixel((2, 0), (255, 0, 0, 255))
        >>> buf = io.BytesIO(); img.save(buf, "PNG")
        >>> ids, colors = png_ids(buf.getvalue())
        >>> ids.tolist(), colors
        ([[0, 0, 1]], ['#ff0000'])
    """
    rgba = _rgba(data, max_pixels)
    if isinstance(rgba, DecodedMask):
        return rgba
    runs = _Runs.of(rgba)
    return runs.id_raster(), runs.colors()


def _label_values(body: bytes, ncols: int, col: int, n: int | None, kind: str,
                  max_points: int = DEFAULT_MAX_POINTS,
                  ) -> tuple[np.ndarray[Any, Any] | None, DecodedMask | None]:
    """Column ``col`` of whitespace-separated rows of ``ncols`` numbers, as int64.

    ``n`` is the declared number of rows (``None``: as many as there are, at most
    ``max_points``); converted a chunk at a time so no token list outgrows a chunk.
    """
    parts: list[np.ndarray[Any, Any]] = []
    filled = 0
    pos = 0
    line = 0
    while pos < len(body):
        end = body.rfind(b"\n", pos, pos + _CHUNK) if pos + _CHUNK < len(body) else len(body)
        if end <= pos:  # one line longer than a chunk: nothing sane holds that
            return None, _failed(kind, "bad_labels", f"expected lines of {ncols} numbers, "
                                 f"got a line longer than {_CHUNK} bytes")
        chunk = body[pos:end]
        rows = [r.split() for r in chunk.split(b"\n")]
        rows = [r for r in rows if r]
        for i, r in enumerate(rows):
            if len(r) != ncols:
                return None, _failed(kind, "bad_labels", f"expected {ncols} values per point, "
                                     f"got {len(r)} on data line {line + i + 1}")
        if n is not None and filled + len(rows) > n:
            return None, _failed(kind, "bad_header", f"the header declares {n} points, the "
                                 "data holds more")
        if filled + len(rows) > max_points:
            return None, _failed(kind, "too_large", f"expected at most {max_points} points")
        try:
            values = np.array([r[col] for r in rows]).astype(np.float64)
        except ValueError as exc:
            return None, _failed(kind, "bad_labels",
                                 f"expected numeric label keys near data line {line + 1}: {exc}")
        if values.size and not (np.all(np.isfinite(values)) and np.all(values == np.floor(values))
                                and np.all(np.abs(values) < _INT64_LIMIT)):
            bad = values[~(np.isfinite(values) & (values == np.floor(values)))][:1].tolist()
            return None, _failed(kind, "bad_labels", "expected integer label keys (written as "
                                 f"integers or integer-valued floats), got {bad or 'a huge value'}")
        parts.append(values.astype(np.int64))
        filled += values.size
        line += len(rows)
        pos = end + 1
    if n is not None and filled < n:
        return None, _failed(kind, "truncated", f"the header declares {n} points, the data "
                             f"holds {filled}", n_points=n)
    return (np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)), None


def _counts(labels: np.ndarray[Any, Any]) -> dict[int, int]:
    keys, counts = np.unique(labels, return_counts=True)
    return dict(zip(keys.tolist(), counts.tolist(), strict=True))


def decode_pcd(data: bytes, *, max_points: int = DEFAULT_MAX_POINTS) -> DecodedMask:
    """Point count per label key of an ASCII PCD with a ``label_key`` field.

    Example:
        >>> pcd = (b"VERSION 0.7\\nFIELDS x y z label_key\\nSIZE 4 4 4 4\\nTYPE F F F F\\n"
        ...        b"COUNT 1 1 1 1\\nWIDTH 2\\nHEIGHT 1\\nPOINTS 2\\nDATA ascii\\n"
        ...        b"0 0 0 1.0\\n1 1 1 7.0\\n")
        >>> decode_pcd(pcd).label_counts
        {1: 1, 7: 1}
    """
    data = bytes(data)
    header: dict[str, list[str]] = {}
    pos = 0
    while True:
        end = data.find(b"\n", pos)
        if end < 0:
            status = "truncated" if header else "not_pcd"
            return _failed("pcd", status, "expected a PCD header ending with a DATA line, got "
                           f"{data[:40]!r}")
        try:
            text = data[pos:end].decode("ascii").strip()
        except UnicodeDecodeError:
            return _failed("pcd", "not_pcd", "expected an ASCII PCD header, got binary bytes")
        pos = end + 1
        if not text or text.startswith("#"):
            continue
        name, *values = text.split()
        header[name.upper()] = values
        if name.upper() == "DATA":
            break
        if len(header) > 64:
            return _failed("pcd", "not_pcd", "expected a PCD header, got 64 lines without DATA")
    fields = header.get("FIELDS")
    if not fields:
        return _failed("pcd", "bad_fields", "expected a FIELDS line, got none")
    label_field = next((f for f in ("label_key", "label") if f in fields), None)
    if label_field is None:
        return _failed("pcd", "bad_fields",
                       f"expected FIELDS with label_key, got FIELDS {' '.join(fields)}")
    counts_text = header.get("COUNT", ["1"] * len(fields))
    for line in ("SIZE", "TYPE"):
        if line in header and len(header[line]) != len(fields):
            return _failed("pcd", "bad_fields", f"expected {len(fields)} {line} values (one "
                           f"per field), got {len(header[line])}")
    try:
        counts = [int(c) for c in counts_text]
        declared = header.get("POINTS") or [str(int(header["WIDTH"][0])
                                                * int(header["HEIGHT"][0]))]
        n = int(declared[0])
    except (KeyError, ValueError, IndexError):
        return _failed("pcd", "bad_header", "expected integer COUNT and POINTS (or WIDTH and "
                       "HEIGHT) header values")
    if len(counts) != len(fields) or min(counts) < 1 or n < 0:
        return _failed("pcd", "bad_header", f"expected one positive COUNT per field and a "
                       f"point count >= 0, got COUNT {counts_text} and {n} points")
    if n > max_points:
        return _failed("pcd", "too_large", f"expected at most {max_points} points, the header "
                       f"declares {n}", n_points=n)
    if header["DATA"][:1] != ["ascii"]:
        return _failed("pcd", "unsupported", f"expected DATA ascii, got DATA "
                       f"{' '.join(header['DATA'])}", n_points=n)
    col = sum(counts[:fields.index(label_field)])
    labels, failure = _label_values(data[pos:], sum(counts), col, n, "pcd", max_points)
    if failure is not None:
        failure.n_points = n
        return failure
    assert labels is not None
    return DecodedMask("pcd", n_points=n, label_counts=_counts(labels), labels=labels)


def decode_labels(data: bytes, *, max_points: int = DEFAULT_MAX_POINTS) -> DecodedMask:
    """Point count per label key of a label file (one label key per line).

    Example:
        >>> decode_labels(b"1\\nx\\n").status
        'bad_labels'
    """
    data = bytes(data)
    try:
        data.decode("ascii")
    except UnicodeDecodeError as exc:
        return _failed("labels", "bad_labels", "expected ASCII text with one label key per "
                       f"line, got the byte 0x{data[exc.start]:02x} at offset {exc.start}")
    labels, failure = _label_values(data, 1, 0, None, "labels", max_points)
    if failure is not None:
        return failure
    assert labels is not None
    return DecodedMask("labels", n_points=int(labels.size), label_counts=_counts(labels),
                       labels=labels)


def decode_mask(kind: str, data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS,
                max_points: int = DEFAULT_MAX_POINTS) -> DecodedMask:
    """Decode ``data`` as a mask of ``kind`` (``png``, ``pcd`` or ``labels``); never raises.

    Example:
        >>> decode_mask("pcd", b"\\x00\\x01").status
        'not_pcd'
    """
    try:
        if kind == "png":
            return decode_png(data, max_pixels=max_pixels)
        if kind == "pcd":
            return decode_pcd(data, max_points=max_points)
        if kind == "labels":
            return decode_labels(data, max_points=max_points)
        return _failed(kind, "unsupported", f"unknown mask kind {kind!r}")
    except MemoryError:
        return _failed(kind, "too_large", "not enough memory to decode the mask")
    except Exception as exc:  # a decoder bug must not cost the job
        return _failed(kind, "unsupported", f"{type(exc).__name__}: {exc}"[:500])
