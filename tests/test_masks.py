"""Segmentation masks: the emulator's files, their decoding, and their tables.

Expected values come from the emulator's ground truth (counted from the arrays the
files were encoded from) or are written by hand, never from the decoder under test.
"""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image

from playment_datasets.emulator import Emulator, GeneratedJob, generate_batch
from playment_datasets.emulator.generator import generate_job
from playment_datasets.normalize import mask_urls, normalize_result
from playment_datasets.normalize import masks as masks_module
from playment_datasets.normalize.masks import (
    DecodedMask,
    decode_labels,
    decode_mask,
    decode_pcd,
    decode_png,
)

SEG_KINDS = ["image_segmentation", "video_segmentation", "point_cloud_segmentation"]
BASE = "https://storage.example/assets"
TIMEOUT = 10


@pytest.fixture(params=["libspng", "pillow"])
def png_decoder(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
                ) -> Iterator[str]:
    """Each PNG test runs on both decoders: libspng (pyspng), and Pillow as on a
    platform without a pyspng wheel. With libspng, no sound 8-bit RGBA file may end up
    decoded by Pillow (a fast path that refused everything would pass unseen)."""
    if request.param == "pillow":
        monkeypatch.setattr(masks_module, "_spng_loader", lambda: None)
    else:
        _require_pyspng()
    fell_back: list[bytes] = []
    pillow_rgba = masks_module._pillow_rgba

    def spy(data: bytes, *args: Any) -> Any:
        got = pillow_rgba(data, *args)
        if data[24:26] == b"\x08\x06" and not isinstance(got, DecodedMask) \
                and masks_module._sound_chunks(data):
            fell_back.append(data)
        return got

    monkeypatch.setattr(masks_module, "_pillow_rgba", spy)
    yield str(request.param)
    if request.param == "libspng":
        assert not fell_back, f"{len(fell_back)} 8-bit RGBA PNGs were decoded by Pillow"


def _require_pyspng() -> None:
    """pyspng must be installed wherever the package asks for it (where PyPI has a wheel)."""
    from importlib.metadata import requires

    from packaging.requirements import Requirement

    (req,) = [Requirement(r) for r in requires("playment-datasets") or []
              if r.startswith("pyspng")]
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        pytest.skip("pyspng has no wheel for this platform: Pillow decodes every PNG")
    assert masks_module._spng_loader() is not None, "pyspng is asked for but not importable"


@pytest.fixture(scope="module")
def seg_jobs() -> list[GeneratedJob]:
    return generate_batch(36, seed=11, kinds=SEG_KINDS, completed_fraction=1.0,
                          asset_base_url=BASE).jobs


def files_of(job: GeneratedJob) -> dict[str, bytes]:
    return {f"{BASE}/{path}": body for path, body in job.assets.items()}


def test_every_mask_decodes_to_the_ground_truth(seg_jobs: list[GeneratedJob],
                                                png_decoder: str) -> None:
    seen_kinds: set[str] = set()
    unknown = 0
    for job in seg_jobs:
        files = files_of(job)
        assert set(files) == set(job.truth.masks), job.job_id
        for url, truth in job.truth.masks.items():
            decoded = decode_mask(truth.kind, files[url])
            assert decoded.status == "ok", (url, decoded.error)
            seen_kinds.add(truth.kind)
            unknown += len(truth.unknown)
            if truth.kind == "png":
                assert (decoded.width, decoded.height) == (64, 48)
                got = {c: (s.n_pixels, s.x_min, s.y_min, s.x_max, s.y_max)
                       for c, s in decoded.colors.items()}
                assert got == truth.pixels, url
            else:
                assert decoded.label_counts == truth.points, url
                assert decoded.n_points == truth.n_points == 200
    assert seen_kinds == {"png", "pcd", "labels"}
    assert unknown > 0  # colours / keys the legends do not list were exercised


def test_masks_are_deterministic_per_seed() -> None:
    a = generate_batch(6, seed=4, kinds=SEG_KINDS, completed_fraction=1.0)
    b = generate_batch(6, seed=4, kinds=SEG_KINDS, completed_fraction=1.0)
    c = generate_batch(6, seed=5, kinds=SEG_KINDS, completed_fraction=1.0)
    assert [j.assets for j in a.jobs] == [j.assets for j in b.jobs]
    assert [j.assets for j in a.jobs] != [j.assets for j in c.jobs]


def test_benchmark_sized_mask_decodes_exactly(png_decoder: str) -> None:
    import random

    job = generate_job("image_segmentation", job_id="big", rng=random.Random(2),
                       asset_base_url=BASE, mask_size=(1024, 768))
    (url, truth), = job.truth.masks.items()
    decoded = decode_png(files_of(job)[url])
    assert (decoded.width, decoded.height) == (1024, 768)
    assert {c: (s.n_pixels, s.x_min, s.y_min, s.x_max, s.y_max)
            for c, s in decoded.colors.items()} == truth.pixels


def test_mask_urls_lists_every_mask_a_result_references(seg_jobs: list[GeneratedJob]) -> None:
    for job in seg_jobs:
        refs = mask_urls(job.result_bytes)
        assert {r.url for r in refs} == set(job.truth.masks), job.job_id
        for ref in refs:
            assert ref.kind == job.truth.masks[ref.url].kind
    assert mask_urls(b"not json") == []
    assert mask_urls(None) == []


def test_segments_carry_the_mask_statistics(seg_jobs: list[GeneratedJob]) -> None:
    for job in seg_jobs:
        files = files_of(job)
        tables = normalize_result(job.result_bytes, {"job_id": job.job_id}, masks=files)
        assert tables["errors"].num_rows == 0 and tables["warnings"].num_rows == 0
        masks = tables["masks"].to_pylist()
        assert {m["url"] for m in masks} == set(job.truth.masks)
        assert {m["decode_status"] for m in masks} == {"ok"}
        segments = tables["segments"].to_pylist()
        for url, truth in job.truth.masks.items():
            rows = [s for s in segments if s["mask_url"] == url]
            if truth.kind == "png":
                frames = {m["frame_id"] for m in masks if m["url"] == url}
                rows = [s for s in rows if s["frame_id"] in frames]
                for s in rows:
                    expected = truth.pixels.get(s["color"], (0, None, None, None, None))
                    assert (s["n_pixels"], s["x_min"], s["y_min"], s["x_max"],
                            s["y_max"]) == expected, (url, s["color"])
                unlabelled = {s["color"] for s in rows if s["label"] is None}
                assert unlabelled == truth.unknown
            else:
                for s in rows:
                    assert s["n_pixels"] == truth.points.get(s["label_key"], 0)
                unlabelled = {s["label_key"] for s in rows if s["label"] is None}
                assert unlabelled == truth.unknown
        n_points = sum(t.n_points or 0 for t in job.truth.masks.values())
        assert tables["point_labels"].num_rows == n_points


def test_point_labels_follow_the_file_order() -> None:
    pcd = (b"VERSION 0.7\nFIELDS x y z label_key\nSIZE 4 4 4 4\nTYPE F F F F\nCOUNT 1 1 1 1\n"
           b"WIDTH 3\nHEIGHT 1\nPOINTS 3\nDATA ascii\n0 0 0 2.0\n1 1 1 0.0\n2 2 2 9.0\n")
    result = {"legend": [{"id": "a", "value": "road", "label_key": 0},
                         {"id": "b", "value": "car # 2", "label_key": 2}],
              "url": "https://s/cloud.pcd"}
    t = normalize_result(result, {"job_id": "j"}, masks=lambda url: pcd)
    assert t["point_labels"].to_pylist() == [
        {"job_id": "j", "frame_id": None, "point_index": 0, "label_key": 2},
        {"job_id": "j", "frame_id": None, "point_index": 1, "label_key": 0},
        {"job_id": "j", "frame_id": None, "point_index": 2, "label_key": 9},
    ]
    assert [(s["label_key"], s["label"], s["n_pixels"]) for s in t["segments"].to_pylist()] == [
        (0, "road", 1), (2, "car # 2", 1), (9, None, 1)]
    assert t["segments"].column("annotation_key").to_pylist()[2] == "j/mask:9"
    (mask,) = t["masks"].to_pylist()
    assert (mask["kind"], mask["n_points"], mask["bytes"], mask["decode_status"]) == (
        "pcd", 3, len(pcd), "ok")


def test_without_mask_bytes_legend_rows_stay_and_masks_say_not_fetched(
        seg_jobs: list[GeneratedJob]) -> None:
    job = seg_jobs[0]
    t = normalize_result(job.result_bytes, {"job_id": job.job_id})
    assert set(t["masks"].column("decode_status").to_pylist()) == {"not_fetched"}
    assert t["segments"].num_rows == job.truth.segments
    assert t["segments"].column("n_pixels").null_count == t["segments"].num_rows
    assert t["point_labels"].num_rows == 0


def test_emulator_serves_masks_like_result_files() -> None:
    with Emulator(jobs=6, seed=3, kinds=SEG_KINDS) as emu:
        job = next(j for j in emu.batch.jobs if j.assets)
        url = next(iter(job.truth.masks))
        body = next(b for p, b in job.assets.items() if url.endswith(p))
        headers = {"x-api-key": emu.api_key}
        r = requests.get(emu.base_url + "/v1/attachments", params={"url": url},
                         headers=headers, allow_redirects=False, timeout=TIMEOUT)
        assert r.status_code == 302
        location = r.headers["Location"]
        assert location.startswith("http://127.0.0.2:")
        got = requests.get(location, timeout=TIMEOUT)  # no key to the storage host
        assert got.status_code == 200 and got.content == body
        etag = got.headers["ETag"]
        again = requests.get(location, headers={"If-None-Match": etag}, timeout=TIMEOUT)
        assert again.status_code == 304 and again.content == b""
        direct = requests.get(url, timeout=TIMEOUT)
        assert direct.status_code == 403 and b"AccessDenied" in direct.content
        decoded = decode_mask(job.truth.masks[url].kind, got.content)
        assert decoded.status == "ok"


# -- hostile mask bytes ---------------------------------------------------------------

def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(
        ">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares ``width``×``height`` and holds almost nothing."""
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height,
                                                                   8, 6, 0, 0, 0))
            + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + _png_chunk(b"IEND", b""))


def _good_png() -> bytes:
    img = Image.new("RGBA", (32, 32), (10, 20, 30, 255))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize(("data", "status"), [
    (b"", "not_png"),
    (b"<html>503</html>", "not_png"),
    (b"\x89PNG\r\n\x1a\n", "truncated"),
    (_good_png()[:60], "truncated"),
    (_png_header_only(100_000, 100_000), "too_large"),
    (_png_header_only(0, 10), "bad_header"),
    (_png_header_only(40, 40), "truncated"),
    (_good_png()[:41] + b"\xff" * 20 + _good_png()[61:], "not_png"),  # a broken zlib stream
])
def test_hostile_png(data: bytes, status: str, png_decoder: str) -> None:
    decoded = decode_png(data)
    assert decoded.status == status, decoded.error
    assert decoded.error
    assert decoded.colors == {}


def test_pillow_decompression_bomb_check_is_kept() -> None:
    # our own limit lifted: Pillow's bomb check (about 179 M pixels) still refuses
    decoded = decode_png(_png_header_only(20_000, 20_000), max_pixels=10**12)
    assert decoded.status == "too_large" and "Pillow" in (decoded.error or "")


PCD_HEAD = b"VERSION 0.7\nFIELDS x y z label_key\nSIZE 4 4 4 4\nTYPE F F F F\nCOUNT 1 1 1 1\n"


@pytest.mark.parametrize(("data", "status"), [
    (b"", "not_pcd"),
    (b"\x00\x01\x02\xff\xfe\n", "not_pcd"),
    (b"VERSION 0.7\nFIELDS x y z rgb\nPOINTS 1\nDATA ascii\n0 0 0 1\n", "bad_fields"),
    (b"VERSION 0.7\nFIELDS x y z label_key\nSIZE 4 4\nPOINTS 1\nDATA ascii\n0 0 0 1\n",
     "bad_fields"),
    (PCD_HEAD + b"POINTS 2\nDATA ascii\n0 0 0 car\n1 1 1 1\n", "bad_labels"),
    (PCD_HEAD + b"POINTS 1\nDATA ascii\n0 0 0 1.5\n", "bad_labels"),
    (PCD_HEAD + b"POINTS 1\nDATA ascii\n0 0 0 nan\n", "bad_labels"),
    (PCD_HEAD + b"POINTS 1\nDATA ascii\n0 0 1\n", "bad_labels"),
    (PCD_HEAD + b"POINTS 3\nDATA ascii\n0 0 0 1\n", "truncated"),
    (PCD_HEAD + b"POINTS 1\nDATA ascii\n0 0 0 1\n0 0 0 2\n", "bad_header"),
    (PCD_HEAD + b"POINTS 999999999999\nDATA ascii\n0 0 0 1\n", "too_large"),
    (PCD_HEAD + b"POINTS 1\nDATA binary\n\x00\x00", "unsupported"),
    (PCD_HEAD + b"POINTS x\nDATA ascii\n", "bad_header"),
    (PCD_HEAD + b"POINTS 1\n", "truncated"),
])
def test_hostile_pcd(data: bytes, status: str) -> None:
    decoded = decode_pcd(data)
    assert decoded.status == status, decoded.error
    assert decoded.error and decoded.labels is None


@pytest.mark.parametrize(("data", "status"), [
    (b"1\n2\nthree\n", "bad_labels"),
    (b"1 2\n", "bad_labels"),
    (b"\xff\n", "bad_labels"),
    (b"0.5\n", "bad_labels"),
])
def test_hostile_label_files(data: bytes, status: str) -> None:
    assert decode_labels(data).status == status


def test_label_file_limits_and_blank_lines() -> None:
    assert decode_labels(b"1\n\n2\n2.0\n").label_counts == {1: 1, 2: 2}
    assert decode_labels(b"1\n" * 11, max_points=10).status == "too_large"
    assert decode_labels(b"").n_points == 0


def test_a_bad_mask_costs_only_its_statistics() -> None:
    result = {"legend": {"#ff0000": "car"}, "url": "https://s/m.png"}
    t = normalize_result(result, {"job_id": "j"}, masks={"https://s/m.png": b"garbage"})
    assert t["errors"].num_rows == 0
    (mask,) = t["masks"].to_pylist()
    assert mask["decode_status"] == "not_png" and mask["bytes"] == 7
    (seg,) = t["segments"].to_pylist()
    assert seg["label"] == "car" and seg["n_pixels"] is None
    assert seg["mask_sha256"] == mask["sha256"]


def test_hand_made_png_statistics(png_decoder: str) -> None:
    img = Image.new("RGBA", (10, 4))
    for x, y in ((2, 1), (5, 3), (3, 2)):
        img.putpixel((x, y), (0xAB, 0xCD, 0xEF, 255))
    img.putpixel((9, 0), (0, 0, 0, 255))  # black but labelled (alpha set)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    result: dict[str, Any] = {"legend": {"#ABCDEF": "car # 4", "#123456": "sky"},
                              "url": "u"}
    t = normalize_result(result, {"job_id": "j"}, masks={"u": buf.getvalue()})
    got = [(s["color"], s["label"], s["n_pixels"], s["x_min"], s["y_min"], s["x_max"],
            s["y_max"]) for s in t["segments"].to_pylist()]
    assert got == [
        ("#abcdef", "car # 4", 3, 0.2, 0.25, 0.6, 1.0),
        ("#123456", "sky", 0, None, None, None, None),
        ("#000000", None, 1, 0.9, 0.0, 1.0, 0.25),
    ]


def _png_of(rgba: Any) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, "PNG")
    return buf.getvalue()


def _stats_by_hand(rgba: Any) -> dict[str, tuple[int, float, float, float, float]]:
    """Per-colour statistics counted pixel by pixel (the test's own reference)."""
    height, width = rgba.shape[:2]
    seen: dict[str, list[int]] = {}
    for y in range(height):
        for x in range(width):
            r, g, b, a = (int(v) for v in rgba[y, x])
            if r == g == b == a == 0:
                continue
            s = seen.setdefault(f"#{r:02x}{g:02x}{b:02x}", [0, x, y, x, y])
            s[0] += 1
            s[1], s[2] = min(s[1], x), min(s[2], y)
            s[3], s[4] = max(s[3], x), max(s[4], y)
    return {c: (n, x0 / width, y0 / height, (x1 + 1) / width, (y1 + 1) / height)
            for c, (n, x0, y0, x1, y1) in seen.items()}


@pytest.mark.parametrize("n_colors", [5, 300])  # a few colours, and more than a byte holds
def test_png_statistics_and_ids_match_a_pixel_by_pixel_count(n_colors: int,
                                                              png_decoder: str) -> None:
    import numpy as np

    from playment_datasets.normalize.masks import png_ids

    rng = np.random.default_rng(n_colors)
    palette = rng.integers(1, 256, size=(n_colors, 3), dtype=np.uint8)
    rgba = np.zeros((30, 40, 4), dtype=np.uint8)
    picks = rng.integers(-1, n_colors, size=(30, 40))  # -1: unlabelled
    rgba[..., :3] = np.where(picks[..., None] >= 0, palette[picks.clip(0)], 0)
    rgba[..., 3] = np.where(picks >= 0, rng.choice([128, 255], size=(30, 40)), 0)  # 2 alphas
    decoded = decode_png(_png_of(rgba))
    expected = _stats_by_hand(rgba)
    assert {c: (s.n_pixels, s.x_min, s.y_min, s.x_max, s.y_max)
            for c, s in decoded.colors.items()} == expected
    ids, colors = png_ids(_png_of(rgba))
    assert colors == sorted(expected)
    for n, color in enumerate(colors, 1):
        assert int((ids == n).sum()) == expected[color][0]
    assert int((ids == 0).sum()) == int((picks < 0).sum())


def test_png_statistics_when_a_colour_runs_on_past_the_end_of_a_row(png_decoder: str) -> None:
    # Pixels are read as runs of equal pixels; in memory, the end of a row touches the
    # start of the next, and a run that crossed them would give a box past the edge.
    import numpy as np

    from playment_datasets.normalize.masks import png_ids

    rgba = np.zeros((3, 6, 4), dtype=np.uint8)
    rgba[0, 4:] = rgba[1, :2] = (255, 0, 0, 255)  # one run in memory, two rows
    rgba[1, 5:] = rgba[2, :] = (0, 0, 255, 255)
    rgba[2, 5] = (0, 0, 255, 7)  # the same colour with another alpha
    decoded = decode_png(_png_of(rgba))
    assert {c: (s.n_pixels, s.x_min, s.y_min, s.x_max, s.y_max)
            for c, s in decoded.colors.items()} == _stats_by_hand(rgba)
    assert decoded.colors["#ff0000"].x_max == 1.0
    ids, colors = png_ids(_png_of(rgba))
    assert colors == ["#0000ff", "#ff0000"]
    assert ids.tolist() == [[0, 0, 0, 0, 2, 2], [2, 2, 0, 0, 0, 1], [1, 1, 1, 1, 1, 1]]


@pytest.mark.parametrize("size", [(640, 480), (2200, 2200)])  # one memory block, several
def test_png_statistics_are_exact_whatever_the_image_size(size: tuple[int, int],
                                                          png_decoder: str) -> None:
    # Pillow keeps a large image in several memory blocks (its pixels cannot be shared
    # without a copy); the statistics must not depend on that.
    from playment_datasets.normalize.masks import decode_png

    width, height = size
    img = Image.new("RGBA", size)
    img.paste((255, 0, 0, 255), (10, 20, 110, 70))  # 100 × 50 red
    img.putpixel((width - 1, height - 1), (0, 0, 255, 128))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    mask = decode_png(buf.getvalue())
    assert mask.status == "ok" and (mask.width, mask.height) == size
    red, blue = mask.colors["#ff0000"], mask.colors["#0000ff"]
    assert red.n_pixels == 5000 and blue.n_pixels == 1
    assert (red.x_min, red.y_min, red.x_max, red.y_max) == (
        10 / width, 20 / height, 110 / width, 70 / height)
    assert (blue.x_max, blue.y_max) == (1.0, 1.0)


def _palette_png() -> tuple[bytes, dict[str, int]]:
    img = Image.new("P", (5, 2))
    img.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0])
    for x, y, index in ((0, 0, 1), (1, 0, 1), (4, 1, 2)):
        img.putpixel((x, y), index)
    buf = io.BytesIO()
    img.save(buf, "PNG", transparency=0)  # index 0: black and transparent, unlabelled
    return buf.getvalue(), {"#ff0000": 2, "#00ff00": 1}


def _rgb_png() -> tuple[bytes, dict[str, int]]:
    img = Image.new("RGB", (4, 4), (0, 0, 0))  # no alpha: black is opaque, so labelled
    img.putpixel((3, 3), (1, 2, 3))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue(), {"#000000": 15, "#010203": 1}


def _rgba16_png() -> tuple[bytes, dict[str, int]]:
    # 8-bit samples widened to 16: 0xAB -> 0xABAB; Pillow reads the high bytes
    rows = [b"\x00" + bytes.fromhex("ABAB0000000000FF" + "0000000000000000"),
            b"\x00" + bytes.fromhex("ABAB0000000000FF" * 2)]
    ihdr = struct.pack(">IIBBBBB", 2, 2, 16, 6, 0, 0, 0)
    data = (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
            + _png_chunk(b"IDAT", zlib.compress(b"".join(rows))) + _png_chunk(b"IEND", b""))
    return data, {"#ab0000": 3}


@pytest.mark.parametrize("make", [_palette_png, _rgb_png, _rgba16_png],
                         ids=["palette+tRNS", "rgb", "rgba16"])
def test_pngs_that_are_not_8_bit_rgba_decode_through_pillow(make: Any, png_decoder: str
                                                            ) -> None:
    data, expected = make()
    decoded = decode_png(data)
    assert decoded.status == "ok", decoded.error
    assert {c: s.n_pixels for c, s in decoded.colors.items()} == expected


def test_libspng_decodes_8_bit_rgba_exactly_as_pillow_does() -> None:
    import numpy as np

    _require_pyspng()
    rng = np.random.default_rng(7)
    rgba = rng.integers(0, 256, size=(37, 53, 4), dtype=np.uint8)
    rgba[rng.random((37, 53)) < 0.3] = 0
    for interlace in (0, 1):  # Adam7 too
        buf = io.BytesIO()
        Image.fromarray(rgba, "RGBA").save(buf, "PNG")
        data = buf.getvalue() if not interlace else _adam7(buf.getvalue())
        fast = masks_module._spng_rgba(data)
        assert fast is not None, "the libspng path refused a valid 8-bit RGBA PNG"
        assert fast.shape == rgba.shape and (fast == rgba).all()
        with Image.open(io.BytesIO(data)) as img:
            assert (np.asarray(img) == rgba).all()


def _adam7(data: bytes) -> bytes:
    """The same image re-encoded interlaced (Pillow cannot write Adam7)."""
    import numpy as np

    with Image.open(io.BytesIO(data)) as img:
        pixels = np.asarray(img.convert("RGBA"))
    height, width = pixels.shape[:2]
    passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4),
              (1, 0, 2, 2), (0, 1, 1, 2)]  # (x0, y0, dx, dy)
    raw = b""
    for x0, y0, dx, dy in passes:
        sub = pixels[y0::dy, x0::dx]
        if sub.size:
            raw += b"".join(b"\x00" + row.tobytes() for row in sub)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 1)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
            + _png_chunk(b"IDAT", zlib.compress(raw)) + _png_chunk(b"IEND", b""))


def _mutations(data: bytes, n: int, seed: int) -> Iterator[bytes]:
    """``n`` copies of ``data`` with 1 to 4 random bytes changed, some also cut short."""
    import random

    rng = random.Random(seed)
    for _ in range(n):
        damaged = bytearray(data)
        for _ in range(rng.choice([1, 1, 2, 4])):
            damaged[rng.randrange(8, len(damaged))] = rng.randrange(256)
        if rng.random() < 0.1:
            damaged = damaged[:rng.randrange(8, len(damaged))]
        yield bytes(damaged)


@pytest.mark.parametrize("level", [0, 6])  # stored and deflated pixel data
def test_both_decoders_agree_on_damaged_files(level: int, monkeypatch: pytest.MonkeyPatch
                                              ) -> None:
    # libspng ignores chunk CRCs: a file damaged in transit must not decode to wrong
    # pixels where Pillow would refuse it.
    import numpy as np

    _require_pyspng()
    rgba = np.random.default_rng(1).integers(0, 4, size=(16, 24, 4), dtype=np.uint8) * 60
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, "PNG", compress_level=level)
    fast = masks_module._spng_loader

    def both(data: bytes) -> list[Any]:
        out = []
        for loader in (fast, lambda: None):
            monkeypatch.setattr(masks_module, "_spng_loader", loader)
            got = decode_png(data)
            out.append((got.status, {c: s.n_pixels for c, s in got.colors.items()}))
        return out

    for damaged in _mutations(buf.getvalue(), 400, seed=level):
        libspng, pillow = both(damaged)
        assert libspng == pillow, damaged


def test_a_second_ihdr_cannot_make_pillow_allocate_past_the_limit(tmp_path: Path) -> None:
    # The first IHDR (4×3) passes the size check; a second one declares 9000×9000.
    # Pillow reads the last: the file must be refused before its pixels are allocated.
    width = height = 9000
    deflate = zlib.compressobj(9)
    row = b"\x00" * (1 + 4 * width)
    pixels = b"".join(deflate.compress(row) for _ in range(height)) + deflate.flush()
    data = (b"\x89PNG\r\n\x1a\n"
            + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 3, 8, 6, 0, 0, 0))
            + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0))
            + _png_chunk(b"IDAT", pixels) + _png_chunk(b"IEND", b""))
    (tmp_path / "bomb.png").write_bytes(data)
    code = """
import resource, sys
from playment_datasets.normalize import masks
if sys.argv[2] == "pillow":
    masks._spng_loader = lambda: None
def peak_kb():  # VmHWM: ru_maxrss also holds the test runner's size, carried across exec
    try:
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
data = open(sys.argv[1], "rb").read()
before = peak_kb()
got = masks.decode_png(data)
print(got.status, (peak_kb() - before) // 1024)
"""
    for decoder in ("libspng", "pillow"):
        out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "bomb.png"), decoder],
                             capture_output=True, text=True, check=True, timeout=120).stdout
        status, grown_mb = out.split()
        assert status == "bad_header"
        assert int(grown_mb) < 100, f"{decoder}: peak RSS grew {grown_mb} MB"  # 324 MB raw
