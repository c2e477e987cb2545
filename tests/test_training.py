"""Media fetching and training exports, end to end on an emulator batch.

Media are checked against the emulator's ground truth (sizes, sha256); exports are read
back with a small YOLO-format reader, PyYAML for data.yaml, and pycocotools for COCO.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pycocotools.coco import COCO

import playment_datasets as pds
from playment_datasets.api.client import RetryPolicy
from playment_datasets.emulator import Emulator
from playment_datasets.errors import ConfigurationError, TransportError
from playment_datasets.registry.registry import Registry

FRACTIONS = {"train": 0.6, "val": 0.2, "test": 0.2}
SEED = 4


@pytest.fixture(scope="module")
def emu():
    with Emulator(jobs=40, seed=3) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def fetched(emu: Emulator, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("registry")
    ds = pds.pull(emu.project_id, emu.batch_id, api_key=emu.api_key, base_url=emu.base_url,
                  registry=root, progress=False)
    assert (ds.media["status"] == "missing").all()
    emu.reset_stats()
    media = ds.fetch_media(api_key=emu.api_key, base_url=emu.base_url, progress=False)
    return root, ds, media, emu.stats


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_media_file_is_stored_with_its_true_size(emu: Emulator, fetched) -> None:
    _, ds, media, _ = fetched
    referenced = set(ds.jobs["image_url"].dropna()) | set(ds.frames["src"].dropna())
    assert set(media["url"]) == referenced
    assert (media["status"] == "ok").all(), media[media["status"] != "ok"]
    assert set(media["kind"]) == {"image", "frame", "sensor"}
    files = ds.media_files()
    for row in media.itertuples():
        truth = emu.media_truth(row.url)
        assert row.sha256 == truth.sha256 and row.bytes == truth.n_bytes, row.url
        assert row.content_type == truth.content_type
        if truth.width is None:
            assert row.width is pd_na(row.width)
        else:
            assert (row.width, row.height) == (truth.width, truth.height), row.url
        _, stored = files[row.url]
        assert stored is not None and sha256_of(stored) == truth.sha256


def pd_na(value: Any) -> Any:
    """``value`` itself when it is a missing value (so ``is`` holds), else a sentinel."""
    import pandas as pd

    return value if value is None or pd.isna(value) else object()


def test_public_media_never_get_the_key_and_private_go_through_attachments(fetched) -> None:
    _, ds, media, stats = fetched
    storage = urlsplit(ds.jobs["source_url"].dropna().iloc[0]).netloc
    private = [u for u in media["url"] if urlsplit(u).netloc == storage]
    public = [u for u in media["url"] if urlsplit(u).netloc != storage]
    assert private and public
    assert stats.leaks == 0
    assert stats.requests["public"] == len(public)
    assert stats.requests["attachment"] == len(private) == stats.requests["storage"]


def test_a_second_fetch_downloads_nothing(emu: Emulator, fetched) -> None:
    root, ds, _, _ = fetched
    emu.reset_stats()
    again = pds.load(ds.batch_id, registry=root).fetch_media(
        api_key=emu.api_key, base_url=emu.base_url, progress=False)
    assert sum(emu.stats.requests.values()) == 0
    assert (again["status"] == "ok").all()


def test_sizes_of_fetched_images_fill_pixel_coordinates(emu: Emulator, fetched,
                                                        tmp_path: Path) -> None:
    _, ds, media, _ = fetched
    image_jobs = ds.jobs[ds.jobs["result_kind"] == "image"]
    sizes = ds.image_sizes()
    for job_id, url in zip(image_jobs["job_id"], image_jobs["image_url"], strict=True):
        truth = emu.media_truth(url)
        assert sizes[job_id] == (truth.width, truth.height)
    path = ds.select(types="rectangle").to_coco(tmp_path)  # no image_size passed
    coco = COCO(str(path))
    assert all((i["width"], i["height"]) == sizes[i["playment_job_id"]]
               for i in coco.dataset["images"])


def test_to_pixels_uses_the_fetched_sizes(emu: Emulator, fetched) -> None:
    _, ds, _, _ = fetched
    px = ds.to_pixels("annotations")
    ann = ds.annotations
    row = ann[ann["job_id"].isin(ds.jobs.loc[ds.jobs["result_kind"] == "image", "job_id"])
              & ann["x_max"].notna()].iloc[0]
    url = ds.jobs.set_index("job_id").loc[row["job_id"], "image_url"]
    truth = emu.media_truth(url)
    got = px.loc[row.name]
    assert got["x_max"] == pytest.approx(row["x_max"] * truth.width)
    assert got["y_min"] == pytest.approx(row["y_min"] * truth.height)


def test_gc_keeps_fetched_media(fetched) -> None:
    root, ds, media, _ = fetched
    Registry(root).gc(grace_seconds=0)
    files = ds.media_files()
    assert all(files[u][1] is not None for u in media["url"])


# -- exports -----------------------------------------------------------------------


def read_yolo(root: Path) -> tuple[dict[str, Any], dict[str, dict[str, list[tuple]]]]:
    """data.yaml and, per split, image file (relative) → [(class, cx, cy, w, h)]."""
    data = yaml.safe_load((root / "data.yaml").read_text(encoding="utf-8"))
    splits: dict[str, dict[str, list[tuple]]] = {}
    for split in ("train", "val", "test"):
        images_dir = Path(data["path"]) / data[split]
        labels_dir = Path(str(images_dir).replace(f"{os.sep}images{os.sep}",
                                                  f"{os.sep}labels{os.sep}"))
        found: dict[str, list[tuple]] = {}
        for image in sorted(p for p in images_dir.rglob("*") if p.is_file()):
            rel = image.relative_to(images_dir)
            label = (labels_dir / rel).with_suffix(".txt")
            rows = []
            for line in label.read_text().splitlines() if label.exists() else []:
                fields = line.split()
                assert len(fields) == 5, line
                cls, *box = fields
                values = [float(v) for v in box]
                assert all(0.0 <= v <= 1.0 for v in values), line
                rows.append((int(cls), *values))
            found[rel.as_posix()] = rows
        # no label file without its image
        for label in labels_dir.rglob("*.txt"):
            rel = label.relative_to(labels_dir).with_suffix("")
            assert any(rel.as_posix() == Path(k).with_suffix("").as_posix() for k in found)
        splits[split] = found
    return data, splits


def expected_boxes(view: Any, classes: list[str]) -> Counter:
    ann = view.annotations
    ann = ann[(ann["type"] == "rectangle") & ann["label"].notna()]
    out: Counter = Counter()
    for row in ann.itertuples():
        x0, x1 = sorted((min(max(row.x_min, 0.0), 1.0), min(max(row.x_max, 0.0), 1.0)))
        y0, y1 = sorted((min(max(row.y_min, 0.0), 1.0), min(max(row.y_max, 0.0), 1.0)))
        if x1 > x0 and y1 > y0:
            out[(classes.index(row.label), round((x0 + x1) / 2, 6), round((y0 + y1) / 2, 6),
                 round(x1 - x0, 6), round(y1 - y0, 6))] += 1
    return out


def image_url_of(ds: Any, rel: str) -> str:
    """The source URL of an exported image named ``<job_id>.<ext>`` or ``<job>/<frame>…``."""
    parts = Path(rel).with_suffix("").parts
    if len(parts) == 1:
        return str(ds.jobs.set_index("job_id").loc[parts[0], "image_url"])
    frames = ds.frames
    match = frames[(frames["job_id"] == parts[0]) & (frames["frame_id"] == parts[1])]
    if len(parts) == 3:
        match = match[match["sensor_id"] == parts[2]]
    return str(match["src"].iloc[0])


def make_exports(fetched, tmp_path_factory: pytest.TempPathFactory, run) -> tuple:
    """Export yolo and coco of the fetched version with fixed classes through ``run``."""
    root, ds, _, _ = fetched
    out = tmp_path_factory.mktemp("exports")
    classes = sorted(set(ds.annotations["label"].dropna())) + ["never-used"]
    classes.reverse()  # a fixed order that is not the sorted one
    (out / "classes.txt").write_text("\n".join(classes) + "\n")
    runs = {fmt: run(fmt, ds, root, out, classes) for fmt in ("yolo", "coco")}
    return ds, out, classes, runs


def export_in_process(fmt: str, ds: Any, root: Path, out: Path, classes: list[str]) -> dict:
    ds.export(out / fmt, format=fmt, split=FRACTIONS, seed=SEED, images="copy", classes=classes)
    return {"splits": [{"split": name} for name in FRACTIONS]}


def export_by_cli(fmt: str, ds: Any, root: Path, out: Path, classes: list[str]) -> dict:
    cmd = [sys.executable, "-m", "playment_datasets", "export", ds.batch_id, "--format", fmt,
           "--out", str(out / fmt), "--split", "train=.6,val=.2,test=.2",
           "--seed", str(SEED), "--images", "copy", "--classes", str(out / "classes.txt"),
           "--registry", str(root), "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def lib_export(fetched, tmp_path_factory: pytest.TempPathFactory):
    """ds.export(…, split=…, images="copy", classes=…) for yolo and coco."""
    return make_exports(fetched, tmp_path_factory, export_in_process)


@pytest.fixture(scope="module")
def cli_export(fetched, tmp_path_factory: pytest.TempPathFactory):
    """`playment-datasets export --format yolo|coco --split … --images copy` (subprocesses)."""
    return make_exports(fetched, tmp_path_factory, export_by_cli)


EXPORTS = ["lib_export", pytest.param("cli_export", marks=pytest.mark.slow)]


@pytest.mark.parametrize("made_by", EXPORTS)
def test_yolo_export_reads_back_with_images_boxes_and_class_ids(
        emu: Emulator, made_by: str, request: pytest.FixtureRequest) -> None:
    ds, out, classes, runs = request.getfixturevalue(made_by)
    data, splits = read_yolo(out / "yolo")
    assert data["names"] == dict(enumerate(classes)) and data["nc"] == len(classes)
    parts = ds.split(FRACTIONS, seed=SEED)
    assert [r["split"] for r in runs["yolo"]["splits"]] == list(FRACTIONS)
    for name, view in parts.items():
        got: Counter = Counter()
        for rel, rows in splits[name].items():
            image = Path(data["path"]) / data[name] / rel
            assert sha256_of(image) == emu.media_truth(image_url_of(ds, rel)).sha256, rel
            got.update((c, *(round(v, 6) for v in box)) for c, *box in rows)
        assert got == expected_boxes(view, classes), name
        job_ids = {Path(rel).parts[0].split(".")[0] for rel in splits[name]}
        assert job_ids <= set(view.jobs["job_id"])


@pytest.mark.parametrize("made_by", EXPORTS)
def test_coco_export_loads_in_pycocotools_with_shared_categories(
        emu: Emulator, made_by: str, request: pytest.FixtureRequest) -> None:
    ds, out, classes, _ = request.getfixturevalue(made_by)
    parts = ds.split(FRACTIONS, seed=SEED)
    seen_categories = []
    for name, view in parts.items():
        coco = COCO(str(out / "coco" / "annotations" / f"instances_{name}.json"))
        seen_categories.append(coco.loadCats(coco.getCatIds()))
        ann = view.annotations
        want = ann[ann["type"].isin(["rectangle", "polygon"]) & ann["label"].notna()]
        assert len(coco.getAnnIds()) == len(want)
        for image in coco.dataset["images"]:
            path = out / "coco" / "images" / name / image["file_name"]
            truth = emu.media_truth(image_url_of(ds, image["file_name"]))
            assert Path(image["file_name"]).suffix in (".jpg", ".png")
            assert sha256_of(path) == truth.sha256
            assert (image["width"], image["height"]) == (truth.width, truth.height)
            assert image["playment_job_id"] in set(view.jobs["job_id"])
        rects = want[want["type"] == "rectangle"]
        by_key = {a["playment_annotation_key"]: a for a in coco.dataset["annotations"]}
        for row in rects.itertuples():
            a = by_key[row.annotation_key]
            image = coco.imgs[a["image_id"]]
            w, h = image["width"], image["height"]
            assert a["bbox"] == pytest.approx(
                [min(row.x_min, row.x_max) * w, min(row.y_min, row.y_max) * h,
                 abs(row.x_max - row.x_min) * w, abs(row.y_max - row.y_min) * h], abs=2e-3)
            assert coco.cats[a["category_id"]]["name"] == row.label
    expected = [{"id": i, "name": c, "supercategory": ""} for i, c in enumerate(classes, 1)]
    assert all(cats == expected for cats in seen_categories)


def test_images_copy_needs_fetched_media(tmp_path: Path) -> None:
    with Emulator(jobs=6, seed=1, kinds=["image"]) as emu:
        ds = pds.pull(emu.project_id, emu.batch_id, api_key=emu.api_key,
                      base_url=emu.base_url, registry=tmp_path / "r", progress=False)
    with pytest.raises(ConfigurationError, match="fetch_media"):
        ds.export(tmp_path / "out", format="yolo", split={"train": 1.0}, images="copy")
    assert not (tmp_path / "out" / "data.yaml").exists()
    # and an export folder refuses to overwrite a foreign directory
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigurationError, match="something else"):
        ds.export(tmp_path / "mine", format="yolo", split={"train": 1.0})
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_link_mode_links_into_the_store(fetched, tmp_path: Path) -> None:
    _, ds, _, _ = fetched
    out = ds.export(tmp_path / "y", format="yolo", split={"all": 1.0}, images="link")
    links = [p for p in (out / "images" / "all").rglob("*") if p.is_symlink()]
    assert links and all(p.resolve().is_file() for p in links)
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data["train"] == data["val"] == "images/all"


def test_download_refuses_a_body_over_max_bytes(emu: Emulator, fetched) -> None:
    _, _, media, _ = fetched
    public = next(u for u, k in zip(media["url"], media["kind"], strict=True)
                  if "/public/" in u and k == "image")
    with pds.PlaymentClient(emu.api_key, base_url=emu.base_url) as client:
        assert client.download(public).content_type in ("image/png", "image/jpeg")
        with pytest.raises(TransportError, match="max_bytes"):
            client.download(public, max_bytes=10)


def test_the_key_is_nowhere_in_the_registry_after_fetching(emu: Emulator, fetched) -> None:
    root, _, _, _ = fetched
    needle = emu.api_key.encode()
    for path in root.rglob("*"):
        if path.is_file():
            assert needle not in path.read_bytes(), path


def test_failures_are_recorded_and_retried_alone(tmp_path: Path) -> None:
    """A dead public host costs only its files; a storage fault is retried."""
    from emulator_helpers import make_batch

    batch = make_batch(3)
    for n, job in enumerate(batch.jobs):
        if n == 0:  # a public host that refuses connections
            job.result["data"]["image_url"] = "http://127.0.0.3:9/dead.jpg"
    fast = RetryPolicy(attempts=3, backoff_base=0.01, backoff_max=0.02)
    with Emulator(batch) as emu:
        for job in batch.jobs[1:]:  # served by the emulator's public host
            emu.set_result(job.job_id, {**job.result, "data": {
                **job.result["data"],
                "image_url": f"{emu.public_url}/public/images/{job.job_id}.png"}})
        ds = pds.pull(emu.project_id, emu.batch_id, api_key=emu.api_key,
                      base_url=emu.base_url, registry=tmp_path, progress=False)
        media = ds.fetch_media(api_key=emu.api_key, base_url=emu.base_url, progress=False,
                               retry=fast)
        status = dict(zip(media["url"], media["status"], strict=True))
        assert status.pop("http://127.0.0.3:9/dead.jpg") == "failed"
        assert set(status.values()) == {"ok"}
        failed = media[media["status"] == "failed"]
        assert "TransportError" in failed["error"].iloc[0]
        emu.reset_stats()
        again = ds.fetch_media(api_key=emu.api_key, base_url=emu.base_url, progress=False,
                               retry=fast)
        assert sum(emu.stats.requests.values()) == 0  # only the dead URL was tried again
        assert (again["status"] == "ok").sum() == 2


def test_storage_faults_are_retried(tmp_path: Path) -> None:
    with Emulator(jobs=6, seed=2, kinds=["image"]) as emu:
        ds = pds.pull(emu.project_id, emu.batch_id, api_key=emu.api_key,
                      base_url=emu.base_url, registry=tmp_path, progress=False)
        emu.fail_next(2, "500", "storage")
        media = ds.fetch_media(api_key=emu.api_key, base_url=emu.base_url, progress=False,
                               retry=RetryPolicy(attempts=4, backoff_base=0.01, backoff_max=0.02),
                               workers=1)
        assert (media["status"] == "ok").all()
        assert emu.stats.faults["500"] == 2


@pytest.mark.slow
def test_media_command(tmp_path: Path) -> None:
    with Emulator(jobs=6, seed=2, kinds=["image", "video"]) as emu:
        pds.pull(emu.project_id, emu.batch_id, api_key=emu.api_key, base_url=emu.base_url,
                 registry=tmp_path, progress=False)
        env = {**os.environ, "PLAYMENT_API_KEY": emu.api_key}
        cmd = [sys.executable, "-m", "playment_datasets", "media", emu.batch_id,
               "--base-url", emu.base_url, "--registry", str(tmp_path), "--json"]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
        assert done.returncode == 0, done.stderr
        data = json.loads(done.stdout)
        assert data["files"] == sum(r["files"] for r in data["by_status"])
        assert {r["status"] for r in data["by_status"]} == {"ok"}
        assert emu.api_key not in done.stdout + done.stderr


@pytest.mark.slow
def test_one_command_pulls_media_and_writes_a_training_folder(emu: Emulator,
                                                             tmp_path: Path) -> None:
    # From a pulled version, one `export` with --fetch-media gives a YOLO folder whose
    # images are the true source files: no separate `media` step.
    root, out = tmp_path / "registry", tmp_path / "yolo"
    ds = pds.pull(emu.project_id, emu.batch_id, api_key=emu.api_key, base_url=emu.base_url,
                  registry=root, progress=False)
    env = {**os.environ, "PLAYMENT_API_KEY": emu.api_key}
    cmd = [sys.executable, "-m", "playment_datasets", "export", ds.batch_id, "--format",
           "yolo", "--out", str(out), "--split", "train=.6,val=.2,test=.2", "--seed",
           str(SEED), "--images", "copy", "--fetch-media", "--base-url", emu.base_url,
           "--registry", str(root), "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    data, splits = read_yolo(out)
    assert sum(len(files) for files in splits.values()) > 0
    for name in FRACTIONS:
        for rel in splits[name]:
            image = Path(data["path"]) / data[name] / rel
            assert sha256_of(image) == emu.media_truth(image_url_of(ds, rel)).sha256, rel
