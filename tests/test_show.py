"""ds.show(): the fetched image (or a blank canvas) with the annotations drawn on it."""

from __future__ import annotations

import sys

import matplotlib
import numpy as np
import pytest

import playment_datasets as pds
from playment_datasets.emulator import Emulator
from playment_datasets.errors import ConfigurationError

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Polygon, Rectangle  # noqa: E402


@pytest.fixture(scope="module")
def pulled(tmp_path_factory: pytest.TempPathFactory):
    with Emulator(jobs=10, seed=5, kinds=["image", "video"]) as emu:
        root = tmp_path_factory.mktemp("registry")
        ds = pds.pull(emu.project_id, emu.batch_id, api_key=emu.api_key,
                      base_url=emu.base_url, registry=root, progress=False)
        bare = pds.load(ds.batch_id, registry=root)  # before any media is fetched
        blank = {job: bare.show(job) for job in ds.jobs["job_id"][:1]}
        ds.fetch_media(api_key=emu.api_key, base_url=emu.base_url, progress=False)
        truths = {url: emu.media_truth(url) for url in ds.media["url"]}
    yield ds, truths, blank
    plt.close("all")


def test_the_image_and_every_shape_are_drawn(pulled) -> None:
    ds, truths, _ = pulled
    jobs = ds.jobs[ds.jobs["result_kind"] == "image"]
    job_id, url = jobs["job_id"].iloc[0], jobs["image_url"].iloc[0]
    ax = ds.show(job_id)
    [image] = ax.images
    truth = truths[url]
    assert image.get_array().shape[:2] == (truth.height, truth.width)
    ann = ds.annotations
    ann = ann[ann["job_id"] == job_id]
    kinds = ann["type"].value_counts()
    boxes = [p for p in ax.patches if isinstance(p, Rectangle)]
    outlines = [p for p in ax.patches if isinstance(p, Polygon)]
    assert len(boxes) == kinds.get("rectangle", 0) + kinds.get("cuboid", 0)
    assert len(outlines) == kinds.get("polygon", 0) + kinds.get("line", 0)
    assert len(ax.collections) == kinds.get("landmark", 0)
    rect = ann[ann["type"] == "rectangle"].iloc[0]
    drawn = {(round(p.get_x(), 6), round(p.get_width(), 6)) for p in boxes}
    assert (round(min(rect["x_min"], rect["x_max"]) * truth.width, 6),
            round(abs(rect["x_max"] - rect["x_min"]) * truth.width, 6)) in drawn
    assert ax.get_xlim() == (0, truth.width)


def test_a_video_shows_its_first_frame_or_the_one_asked(pulled) -> None:
    ds, _, _ = pulled
    job_id = ds.jobs.loc[ds.jobs["result_kind"] == "video", "job_id"].iloc[0]
    frames = ds.frames[ds.frames["job_id"] == job_id].sort_values("frame_index")
    assert frames["frame_id"].iloc[0] in ds.show(job_id).get_title()
    last = frames["frame_id"].iloc[-1]
    assert last in ds.show(job_id, frame_id=last).get_title()
    with pytest.raises(ConfigurationError, match="no frame"):
        ds.show(job_id, frame_id="no-such-frame")


def test_without_media_a_blank_canvas_and_clear_errors(pulled, monkeypatch) -> None:
    ds, _, blank = pulled
    [ax] = blank.values()
    assert not ax.images
    canvas = ax.patches[0]
    assert (canvas.get_width(), canvas.get_height()) == (640, 480)
    with pytest.raises(ConfigurationError, match="not in"):
        ds.show("no-such-job")
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"playment-datasets\[plot\]"):
        ds.show(ds.jobs["job_id"].iloc[0])


def test_a_stored_png_mask_is_overlaid(tmp_path, monkeypatch) -> None:
    """Masks are drawn from the registry's store by their sha256 (masks.sha256)."""
    import hashlib

    with Emulator(jobs=4, seed=5, kinds=["image_segmentation"]) as emu:
        ds = pds.pull(emu.project_id, emu.batch_id, api_key=emu.api_key,
                      base_url=emu.base_url, registry=tmp_path, progress=False)
        job = next(j for j in emu.batch.jobs if j.kind == "image_segmentation")
    [(_, png)] = [(k, v) for k, v in job.assets.items() if k.endswith(".png")][:1]
    sha = ds._media_source.store(png)
    assert sha == hashlib.sha256(png).hexdigest()
    original = ds.table

    def table(name, columns=None, filters=None):
        frame = original(name, columns, filters)
        if name == "masks":  # as a pull that fetched the masks records them
            frame = frame.assign(sha256=[sha if j == job.job_id else None
                                         for j in frame["job_id"]], kind="png")
        return frame

    monkeypatch.setattr(ds, "table", table)
    ax = ds.show(job.job_id)
    [overlay] = ax.images
    rgba = overlay.get_array()
    import io

    from PIL import Image

    with Image.open(io.BytesIO(png)) as mask:
        assert rgba.shape[:2] == (mask.height, mask.width)
        coloured = (np.asarray(mask.convert("RGB")).sum(axis=2) > 0)
    assert ((rgba[..., 3] > 0) == coloured).all()
