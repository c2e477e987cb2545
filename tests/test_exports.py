"""Exports to COCO, YOLO and CSV, checked against hand-computed values.

The datasets are built by hand from the schemas, as Arrow-backed DataFrames like the
ones a loaded dataset exposes (one test uses plain pandas dtypes). COCO files are read
back with pycocotools, the reference reader.
"""

from __future__ import annotations

import json
import types
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from pycocotools.coco import COCO

from playment_datasets.dataset.exports import resolve_image_sizes, to_coco, to_csv, to_yolo
from playment_datasets.errors import ConfigurationError, InvalidIdError, PlaymentDatasetsError
from playment_datasets.schema import TABLE_NAMES, TABLES

# Pixel sizes of the images, per job.
SIZES = {"j1": (200, 100), "j2": (640, 480), "j3": (1280, 720), "j4": (10, 10)}

# The polygon of j1 in pixels (image 200 x 100): an 80 x 50 rectangle (y 10..60) with a
# triangle of base 80 and height 30 below it -> area 4000 + 1200 = 5200.
POLYGON_PX = [(20, 10), (100, 10), (100, 60), (60, 90), (20, 60)]
POLYGON_AREA = 5200.0


def arrow_table(name: str, rows: list[dict[str, Any]]) -> pa.Table:
    """Table ``name`` with ``rows`` (missing columns null), on top of the empty schema table."""
    empty = TABLES[name].empty_table()
    if not rows:
        return empty
    return pa.concat_tables([empty, pa.Table.from_pylist(rows, schema=TABLES[name])])


def make_ds(tables: dict[str, list[dict[str, Any]]], *, arrow: bool = True) -> Any:
    frames = {}
    for name in TABLE_NAMES:
        table = arrow_table(name, tables.get(name, []))
        frames[name] = table.to_pandas(types_mapper=pd.ArrowDtype) if arrow else table.to_pandas()
    return types.SimpleNamespace(**frames)


def rect(job: str, key: str, label: str | None, box: tuple[float, float, float, float],
         **kw: Any) -> dict[str, Any]:
    x0, y0, x1, y1 = box
    return {"job_id": job, "annotation_key": key, "annotation_id": key.split("/")[-1],
            "type": "rectangle", "label": label, "x_min": x0, "y_min": y0, "x_max": x1,
            "y_max": y1, "n_points": 4, **kw}


def sample_tables() -> dict[str, list[dict[str, Any]]]:
    w, h = SIZES["j1"]
    poly = [(x / w, y / h) for x, y in POLYGON_PX]
    # point rows deliberately out of point_index order
    point_rows = [
        {"job_id": "j1", "annotation_key": "j1/p1", "point_key": f"p{i + 1}", "point_index": i,
         "x": x, "y": y}
        for i, (x, y) in enumerate(poly)
    ]
    point_rows = point_rows[3:] + point_rows[:3]
    return {
        "jobs": [
            {"job_id": "j1", "batch_id": "b1", "status": "completed", "result_kind": "image",
             "image_url": "https://cdn.example.com/imgs/cat%201.jpg?sig=abc"},
            {"job_id": "j2", "batch_id": "b1", "status": "completed", "result_kind": "image"},
            {"job_id": "j3", "batch_id": "b1", "status": "completed", "result_kind": "video"},
            {"job_id": "j4", "batch_id": "b1", "status": "completed", "result_kind": "image"},
        ],
        "annotations": [
            rect("j1", "j1/r1", "car", (0.1, 0.2, 0.3, 0.45)),
            {"job_id": "j1", "annotation_key": "j1/p1", "type": "polygon", "label": "person",
             "x_min": 0.1, "y_min": 0.1, "x_max": 0.5, "y_max": 0.9, "n_points": 5},
            {"job_id": "j1", "annotation_key": "j1/l1", "type": "line", "label": "lane",
             "x_min": 0.0, "y_min": 0.0, "x_max": 1.0, "y_max": 1.0, "n_points": 2},
            rect("j1", "j1/nolabel", None, (0.1, 0.1, 0.2, 0.2)),
            rect("j2", "j2/r1", "car", (0.25, 0.5, 0.75, 1.0)),
            rect("j3", "j3/t1@f2", "bus", (0.5, 0.5, 0.75, 0.75), track_id="t1",
                 frame_id="f2", frame_index=1),
            rect("j3", "j3/t1@f1", "bus", (0.25, 0.25, 0.5, 0.5), track_id="t1",
                 frame_id="f1", frame_index=0),
        ],
        "points": point_rows,
        "attributes": [
            {"job_id": "j1", "annotation_key": "j1/r1", "name": "occlusion", "value": "25%"},
            {"job_id": "j1", "annotation_key": "j1/r1", "name": "faces", "value": "left",
             "value_index": 1},
            {"job_id": "j1", "annotation_key": "j1/r1", "name": "faces", "value": "front",
             "value_index": 0},
            {"job_id": "j3", "annotation_key": "j3/t1@f2", "frame_id": "f2",
             "name": "moving", "value": "yes"},
        ],
    }


@pytest.fixture
def ds() -> Any:
    return make_ds(sample_tables())


def sizes_frame() -> pd.DataFrame:
    return pd.DataFrame([(j, w, h) for j, (w, h) in SIZES.items()],
                        columns=["job_id", "width", "height"])


def load_coco(path: Path) -> COCO:
    return COCO(str(path))


def anns_of(coco: COCO, file_name: str) -> list[dict[str, Any]]:
    [image] = [i for i in coco.dataset["images"] if i["file_name"] == file_name]
    return coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]]))


# --------------------------------------------------------------------------- COCO


def test_coco_images_categories_and_boxes(ds: Any, tmp_path: Path) -> None:
    path = to_coco(ds, tmp_path / "coco", image_size=sizes_frame())
    assert path == tmp_path / "coco" / "instances.json"
    coco = load_coco(path)

    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["bus", "car", "person"]
    assert [c["id"] for c in coco.dataset["categories"]] == [1, 2, 3]
    images = coco.dataset["images"]
    assert [i["file_name"] for i in images] == ["cat 1.jpg", "j2", "j3/f1", "j3/f2"]
    assert [i["id"] for i in images] == [1, 2, 3, 4]
    assert [(i["width"], i["height"]) for i in images] == [
        (200, 100), (640, 480), (1280, 720), (1280, 720)]
    assert [i["playment_job_id"] for i in images] == ["j1", "j2", "j3", "j3"]
    assert images[2]["playment_frame_id"] == "f1"

    car_id = coco.getCatIds(catNms=["car"])[0]
    [car] = [a for a in anns_of(coco, "cat 1.jpg") if a["category_id"] == car_id]
    # x 0.1..0.3 of 200 px, y 0.2..0.45 of 100 px
    assert car["bbox"] == pytest.approx([20, 20, 40, 25])
    assert car["area"] == pytest.approx(1000)
    assert car["iscrowd"] == 0
    assert car["segmentation"] == [pytest.approx([20, 20, 60, 20, 60, 45, 20, 45])]
    assert car["playment_annotation_key"] == "j1/r1"
    assert car["attributes"] == {"faces": ["front", "left"], "occlusion": "25%"}

    [j2] = anns_of(coco, "j2")
    assert j2["bbox"] == pytest.approx([160, 240, 320, 240])
    assert j2["area"] == pytest.approx(320 * 240)

    [f1] = anns_of(coco, "j3/f1")
    [f2] = anns_of(coco, "j3/f2")
    assert f1["bbox"] == pytest.approx([320, 180, 320, 180])
    assert f2["bbox"] == pytest.approx([640, 360, 320, 180])
    assert f2["attributes"] == {"moving": "yes"}
    assert f1["attributes"] == {}
    assert f1["playment_track_id"] == "t1"
    # the line, the unlabelled box and the annotation-less job j4 are not exported
    assert len(coco.dataset["annotations"]) == 5
    assert "lane" not in {c["name"] for c in coco.dataset["categories"]}
    assert "j4" not in {i["playment_job_id"] for i in images}
    assert [a["id"] for a in coco.dataset["annotations"]] == [1, 2, 3, 4, 5]


def test_coco_polygon_area_bbox_and_mask(ds: Any, tmp_path: Path) -> None:
    coco = load_coco(to_coco(ds, tmp_path, image_size=SIZES))
    person_id = coco.getCatIds(catNms=["person"])[0]
    [poly] = coco.loadAnns(coco.getAnnIds(catIds=[person_id]))
    flat = [float(v) for xy in POLYGON_PX for v in xy]
    assert poly["segmentation"] == [pytest.approx(flat)]  # ordered by point_index
    assert poly["area"] == pytest.approx(POLYGON_AREA)
    assert poly["bbox"] == pytest.approx([20, 10, 80, 80])

    mask = coco.annToMask(poly)
    assert mask.shape == (100, 200)
    assert abs(int(mask.sum()) - POLYGON_AREA) < 0.03 * POLYGON_AREA
    assert mask[40, 60] == 1 and mask[80, 60] == 1  # body and tip
    assert mask[5, 5] == 0 and mask[85, 25] == 0  # outside, beside the tip


def test_coco_types_subset_and_file_name(ds: Any, tmp_path: Path) -> None:
    path = to_coco(ds, tmp_path, image_size=SIZES, types="polygon",
                   file_name="sub/polygons.json")
    assert path == tmp_path / "sub" / "polygons.json"
    coco = load_coco(path)
    assert [c["name"] for c in coco.dataset["categories"]] == ["person"]
    assert len(coco.dataset["annotations"]) == 1
    with pytest.raises(ConfigurationError, match="line"):
        to_coco(ds, tmp_path, image_size=SIZES, types=("rectangle", "line"))
    with pytest.raises(ConfigurationError, match="relative file name"):
        to_coco(ds, tmp_path, image_size=SIZES, file_name="../escape.json")


def test_coco_is_deterministic_and_dtype_independent(tmp_path: Path) -> None:
    arrow_ds = make_ds(sample_tables())
    plain_ds = make_ds(sample_tables(), arrow=False)
    assert not isinstance(plain_ds.annotations["x_min"].dtype, pd.ArrowDtype)
    a = to_coco(arrow_ds, tmp_path / "a", image_size=SIZES).read_bytes()
    b = to_coco(arrow_ds, tmp_path / "b", image_size=SIZES).read_bytes()
    c = to_coco(plain_ds, tmp_path / "c", image_size=SIZES).read_bytes()
    assert a == b == c
    # object columns holding None and pd.NA work as well
    obj_ds = make_ds(sample_tables(), arrow=False)
    obj_ds.annotations = obj_ds.annotations.astype(object).where(
        obj_ds.annotations.notna(), pd.NA)
    assert to_coco(obj_ds, tmp_path / "d", image_size=SIZES).read_bytes() == a
    # no temporary file is left behind
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["instances.json"]


def test_coco_image_size_from_jobs_columns(tmp_path: Path) -> None:
    ds = make_ds(sample_tables())
    ds.jobs = ds.jobs.assign(
        image_width=[SIZES[j][0] for j in ds.jobs["job_id"]],
        image_height=pd.array([SIZES[j][1] for j in ds.jobs["job_id"]],
                              dtype=pd.ArrowDtype(pa.int64())),
    )
    coco = load_coco(to_coco(ds, tmp_path))
    assert [(i["width"], i["height"]) for i in coco.dataset["images"]][:2] == [
        (200, 100), (640, 480)]


# --------------------------------------------------------------------------- sizes


def test_missing_image_size_source_is_a_clear_error(ds: Any, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as info:
        to_coco(ds, tmp_path)
    message = str(info.value)
    assert "image_size=(1920, 1080)" in message and "job_id, width, height" in message
    assert isinstance(info.value, PlaymentDatasetsError)
    assert not (tmp_path / "instances.json").exists()


def test_jobs_missing_a_size_are_named(ds: Any, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"1 job\(s\).*'j2'"):
        to_coco(ds, tmp_path, image_size={"j1": (200, 100), "j3": (1280, 720)})

    many = make_ds({
        "jobs": [{"job_id": f"m{i}"} for i in range(7)],
        "annotations": [rect(f"m{i}", f"m{i}/r", "car", (0.1, 0.1, 0.2, 0.2)) for i in range(7)],
    })
    with pytest.raises(ConfigurationError) as info:
        to_coco(many, tmp_path, image_size=pd.DataFrame(
            {"job_id": ["m0"], "width": [10], "height": [10]}))
    message = str(info.value)
    assert "6 job(s)" in message
    assert all(f"'m{i}'" in message for i in range(1, 6)) and "'m6'" not in message


def test_resolve_image_sizes_forms_and_validation() -> None:
    ds = make_ds(sample_tables())
    assert resolve_image_sizes(ds, (640, 480)) == {j: (640, 480) for j in SIZES}
    assert resolve_image_sizes(ds, SIZES) == SIZES
    frame = sizes_frame().astype({"width": "float64"})  # e.g. read back from a CSV
    assert resolve_image_sizes(ds, frame) == SIZES
    with pytest.raises(ConfigurationError, match="positive integers"):
        resolve_image_sizes(ds, (0, 480))
    with pytest.raises(ConfigurationError, match="positive integers"):
        resolve_image_sizes(ds, {"j1": (10.5, 20)}, job_ids=["j1"])
    with pytest.raises(ConfigurationError, match="columns job_id, width, height"):
        resolve_image_sizes(ds, pd.DataFrame({"job": ["j1"], "w": [1], "h": [1]}))
    with pytest.raises(ConfigurationError, match="two image sizes"):
        resolve_image_sizes(ds, pd.DataFrame(
            {"job_id": ["j1", "j1"], "width": [1, 2], "height": [1, 1]}), job_ids=["j1"])
    with pytest.raises(ConfigurationError, match="tuple, a mapping or a DataFrame"):
        resolve_image_sizes(ds, 640)


# --------------------------------------------------------------------------- YOLO


def read_yolo(path: Path) -> list[tuple[int, float, float, float, float]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        cls, *vals = line.split()
        assert all(len(v.split(".")[1]) == 6 for v in vals)
        rows.append((int(cls), *map(float, vals)))
    return rows


def test_yolo_labels_and_classes(ds: Any, tmp_path: Path) -> None:
    out = to_yolo(ds, tmp_path / "yolo")
    assert out == tmp_path / "yolo"
    assert (out / "classes.txt").read_text(encoding="utf-8") == "bus\ncar\n"
    files = sorted(p.relative_to(out / "labels").as_posix()
                   for p in (out / "labels").rglob("*.txt"))
    assert files == ["cat 1.txt", "j2.txt", "j3/f1.txt", "j3/f2.txt"]
    # car: x 0.1..0.3, y 0.2..0.45; class 1 in (bus, car)
    assert read_yolo(out / "labels" / "cat 1.txt") == [
        pytest.approx((1, 0.2, 0.325, 0.2, 0.25))]
    assert read_yolo(out / "labels" / "j2.txt") == [pytest.approx((1, 0.5, 0.75, 0.5, 0.5))]
    assert read_yolo(out / "labels" / "j3" / "f2.txt") == [
        pytest.approx((0, 0.625, 0.625, 0.25, 0.25))]


def test_yolo_fixed_classes_and_polygons_as_boxes(ds: Any, tmp_path: Path) -> None:
    out = to_yolo(ds, tmp_path, classes=["person", "truck", "car", "bus"],
                  polygons_as_boxes=True, image_size=SIZES)
    assert (out / "classes.txt").read_text().splitlines() == ["person", "truck", "car", "bus"]
    rows = read_yolo(out / "labels" / "cat 1.txt")
    # polygon bbox x 0.1..0.5, y 0.1..0.9 -> person (0); car (2) as before
    assert rows == [pytest.approx((2, 0.2, 0.325, 0.2, 0.25)),
                    pytest.approx((0, 0.3, 0.5, 0.4, 0.8))]
    assert read_yolo(out / "labels" / "j3" / "f1.txt") == [
        pytest.approx((3, 0.375, 0.375, 0.25, 0.25))]


def test_yolo_unknown_classes_are_a_clear_error(ds: Any, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"1 label\(s\).*'bus'.*add them"):
        to_yolo(ds, tmp_path, classes=["car"])
    with pytest.raises(ConfigurationError, match="list of labels"):
        to_yolo(ds, tmp_path, classes="car")
    with pytest.raises(ConfigurationError, match="repeat"):
        to_yolo(ds, tmp_path, classes=["car", "bus", "car"])
    assert not (tmp_path / "classes.txt").exists()


def test_yolo_clips_and_replaces_stale_labels(tmp_path: Path) -> None:
    tables = {"annotations": [rect("a", "a/1", "car", (-0.2, 0.5, 0.4, 1.3)),
                              rect("a", "a/2", "car", (1.1, 0.1, 1.3, 0.2))]}
    out = to_yolo(make_ds(tables), tmp_path)
    # clipped to x 0..0.4, y 0.5..1; the box entirely outside is dropped
    assert read_yolo(out / "labels" / "a.txt") == [pytest.approx((0, 0.2, 0.75, 0.4, 0.5))]
    to_yolo(make_ds({"annotations": [rect("b", "b/1", "car", (0.1, 0.1, 0.2, 0.2))]}), tmp_path)
    assert sorted(p.name for p in (out / "labels").iterdir()) == ["b.txt"]
    assert sorted(p.name for p in out.iterdir()) == ["classes.txt", "labels"]


def test_yolo_refuses_foreign_labels_dir_and_unsafe_ids(tmp_path: Path) -> None:
    ds = make_ds({"annotations": [rect("a", "a/1", "car", (0.1, 0.1, 0.2, 0.2))]})
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "notes.md").write_text("mine")
    with pytest.raises(ConfigurationError, match="other than YOLO labels"):
        to_yolo(ds, tmp_path)
    assert (tmp_path / "labels" / "notes.md").read_text() == "mine"

    for job, frame in [("..", None), ("a/b", None), ("j", "../f"), ("j", "f/g")]:
        evil = make_ds({"annotations": [rect(job, "k", "car", (0.1, 0.1, 0.2, 0.2),
                                             frame_id=frame)]})
        with pytest.raises(InvalidIdError, match="id"):
            to_yolo(evil, tmp_path / "other")
    assert not (tmp_path / "other" / "labels").exists()


# --------------------------------------------------------------------------- CSV


def test_csv_round_trip(tmp_path: Path) -> None:
    tables = sample_tables()
    tables["annotations"][0].update(label='car, "big" Straße', extra='{"a": [1, 2]}')
    ds = make_ds(tables)
    out = to_csv(ds, tmp_path / "csv")
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{t}.csv" for t in TABLE_NAMES)

    anns = pd.read_csv(out / "annotations.csv", encoding="utf-8")
    assert list(anns.columns) == TABLES["annotations"].names
    assert len(anns) == len(tables["annotations"])
    assert anns.loc[0, "label"] == 'car, "big" Straße'
    assert json.loads(anns.loc[0, "extra"]) == {"a": [1, 2]}
    assert list(anns["x_min"]) == [r["x_min"] for r in tables["annotations"]]  # exact floats
    assert anns["frame_id"].isna().sum() == 5  # nulls are empty fields
    assert list(anns["frame_index"].dropna()) == [1, 0]

    points = pd.read_csv(out / "points.csv")
    assert len(points) == 5 and sorted(points["point_index"]) == [0, 1, 2, 3, 4]
    jobs = pd.read_csv(out / "jobs.csv")
    assert list(jobs["job_id"]) == ["j1", "j2", "j3", "j4"]
    assert jobs["image_url"].isna().sum() == 3
    raw = (out / "attributes.csv").read_text(encoding="utf-8")
    assert raw.splitlines()[0] == ",".join(TABLES["attributes"].names)
    assert "j1,j1/r1,,occlusion,25%,," in raw


def test_csv_selected_tables_and_unknown_names(ds: Any, tmp_path: Path) -> None:
    out = to_csv(ds, tmp_path, tables=["jobs", "errors"])
    assert sorted(p.name for p in out.iterdir()) == ["errors.csv", "jobs.csv"]
    assert len(pd.read_csv(out / "errors.csv")) == 0
    with pytest.raises(ConfigurationError, match="'job'.*expected names among"):
        to_csv(ds, tmp_path, tables=["job"])


# --------------------------------------------------------------------------- empty


def test_empty_dataset_gives_valid_empty_outputs(tmp_path: Path) -> None:
    ds = make_ds({})
    coco = load_coco(to_coco(ds, tmp_path / "coco"))  # no sizes needed: nothing to place
    assert coco.dataset["images"] == [] and coco.dataset["annotations"] == []
    assert coco.dataset["categories"] == [] and coco.getAnnIds() == []

    out = to_yolo(ds, tmp_path / "yolo")
    assert (out / "classes.txt").read_text() == ""
    assert list((out / "labels").iterdir()) == []
    out = to_yolo(ds, tmp_path / "yolo2", classes=["car"])
    assert (out / "classes.txt").read_text() == "car\n"

    out = to_csv(ds, tmp_path / "csv")
    for name in TABLE_NAMES:
        frame = pd.read_csv(out / f"{name}.csv")
        assert len(frame) == 0 and list(frame.columns) == TABLES[name].names


def test_unusable_shapes_are_skipped_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def pts(key: str, xys: list[tuple[float | None, float]]) -> list[dict[str, Any]]:
        return [{"job_id": "a", "annotation_key": key, "point_index": i, "x": x, "y": y}
                for i, (x, y) in enumerate(xys)]

    tables = {
        "annotations": [
            {"job_id": "a", "annotation_key": "a/two", "type": "polygon", "label": "x"},
            {"job_id": "a", "annotation_key": "a/null", "type": "polygon", "label": "x"},
            {"job_id": "a", "annotation_key": "a/ok", "type": "polygon", "label": "y"},
        ],
        "points": (pts("a/two", [(0.1, 0.1), (0.2, 0.2)])
                   + pts("a/null", [(0.1, 0.1), (None, 0.2), (0.3, 0.1)])
                   + pts("a/ok", [(0.0, 0.0), (0.5, 0.0), (0.0, 0.5)])),
    }
    with caplog.at_level("WARNING", logger="playment_datasets.dataset.exports"):
        coco = load_coco(to_coco(make_ds(tables), tmp_path, image_size=(100, 100)))
    [ann] = coco.dataset["annotations"]
    assert ann["playment_annotation_key"] == "a/ok"
    # bbox from the points when x_min..y_max are null; right triangle 50 x 50
    assert ann["bbox"] == pytest.approx([0, 0, 50, 50])
    assert ann["area"] == pytest.approx(1250)
    assert [c["name"] for c in coco.dataset["categories"]] == ["y"]
    text = caplog.text
    assert "fewer than 3 points" in text and "null point coordinate" in text


def test_shared_image_basenames_fall_back_to_job_ids(tmp_path: Path) -> None:
    tables = {
        "jobs": [{"job_id": "a", "image_url": "https://x/1/img.jpg"},
                 {"job_id": "b", "image_url": "https://x/2/img.png"},
                 {"job_id": "c", "image_url": "https://x/3/c%2Fd.jpg"}],
        "annotations": [rect(j, f"{j}/1", "car", (0.1, 0.1, 0.2, 0.2)) for j in "abc"],
    }
    coco = load_coco(to_coco(make_ds(tables), tmp_path, image_size=(10, 10)))
    assert [i["file_name"] for i in coco.dataset["images"]] == ["a", "b", "d.jpg"]
    out = to_yolo(make_ds(tables), tmp_path / "yolo")
    assert sorted(p.name for p in (out / "labels").iterdir()) == ["a.txt", "b.txt", "d.txt"]
