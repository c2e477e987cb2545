"""Exports that train as they are: one folder with every split, its images and labels.

YOLO (what ultralytics reads)::

    out/data.yaml                     path, one key per split, names (id -> label)
    out/images/<split>/<name>.<ext>   the source images (``images="copy"`` or ``"link"``)
    out/labels/<split>/<name>.txt     one line "class cx cy w h" per box

COCO::

    out/annotations/instances_<split>.json   file_name relative to images/<split>/
    out/images/<split>/<name>.<ext>

Class ids are shared by every split: the ``classes`` list (its order) or the sorted
labels of the whole version. Images are named after their job (``<job_id>/<frame_id>``
for a frame of a video), with the extension of the fetched media (content type) or of
the URL. Images come from the registry's media store (``ds.fetch_media()``); a missing
one is an error that names how to fetch it. Only images with exported annotations are
written. The folder is built in a staging directory beside it and swapped in, so an
interrupted export leaves the previous one intact.

Example:
    >>> parts = ds.split({"train": .8, "val": .1, "test": .1}, seed=7)  # doctest: +SKIP
    >>> export_splits(parts, "out/yolo", format="yolo", images="copy")   # doctest: +SKIP
    PosixPath('out/yolo')
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from playment_datasets.dataset import exports
from playment_datasets.errors import ConfigurationError

__all__ = ["FORMATS", "IMAGE_MODES", "export_splits", "export_types", "read_classes_file"]

logger = logging.getLogger(__name__)

FORMATS = ("yolo", "coco")
IMAGE_MODES = ("copy", "link", "none")
_MARKER = ".playment-export.json"
_OWNED = ("data.yaml", "classes.txt", "images", "labels", "annotations", _MARKER)
_TYPE_EXT = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp",
             "image/bmp": ".bmp", "image/tiff": ".tiff", "image/gif": ".gif"}
_IMAGE_EXTS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"})


def export_types(format: str, polygons_as_boxes: bool = False) -> tuple[str, ...]:  # noqa: A002
    """The annotation types a training export of ``format`` writes.

    Example:
        >>> export_types("yolo"), export_types("coco")
        (('rectangle',), ('rectangle', 'polygon'))
    """
    # Segmentation masks (RLE) go with the plain COCO export, not a training export yet.
    shapes = tuple(t for t in exports.COCO_TYPES if t != "segment")
    return shapes if format == "coco" or polygons_as_boxes else ("rectangle",)


def read_classes_file(path: str | os.PathLike[str]) -> list[str]:
    """Class names from a text file, one per line (blank lines and ``#`` comments skipped).

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "classes.txt"
        >>> _ = p.write_text("car\\n# vehicles above\\nperson\\n")
        >>> read_classes_file(p)
        ['car', 'person']
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(
            f"cannot read the classes file {path} ({exc}); expected a UTF-8 text file with "
            "one class name per line"
        ) from None
    names = [line.strip() for line in text.splitlines()]
    return [n for n in names if n and not n.startswith("#")]


def _image_urls(ds: Any) -> dict[exports.ImageKey, str]:
    """(job_id, frame_id, sensor_id) → the URL of its source image."""
    urls: dict[exports.ImageKey, str] = {}
    jobs = exports._table(ds, "jobs", ["job_id", "image_url"], required=False)
    for job_id, url in exports._rows(jobs):
        if job_id is not None and url:
            urls.setdefault((job_id, None, None), url)
    frames = exports._table(ds, "frames", ["job_id", "frame_id", "sensor_id", "src"],
                            required=False)
    for job_id, frame_id, sensor_id, src in exports._rows(frames):
        if job_id is not None and src:
            urls.setdefault((job_id, frame_id, sensor_id), src)
    return urls


def _extension(url: str | None, content_type: str | None) -> str:
    if content_type and content_type.split(";")[0].strip().lower() in _TYPE_EXT:
        return _TYPE_EXT[content_type.split(";")[0].strip().lower()]
    if url:
        ext = posixpath.splitext(unquote(urlsplit(url).path))[1].lower()
        if ext in _IMAGE_EXTS:
            return ".jpg" if ext == ".jpeg" else ext
    return ".jpg"


def _media_info(ds: Any) -> dict[str, tuple[str | None, Path | None]]:
    """url → (content type, stored file) for the media of ``ds`` fetched so far."""
    getter = getattr(ds, "media_files", None)
    return getter() if callable(getter) else {}


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigurationError(f"{out} is a file; expected a directory to export into")
    if out.is_dir():
        foreign = sorted(p.name for p in out.iterdir()
                         if p.name not in _OWNED and not p.name.startswith(".export."))
        if foreign and not (out / _MARKER).exists():
            raise ConfigurationError(
                f"{out} holds files of something else ({', '.join(foreign[:5])}); expected "
                "an empty directory or an earlier export; choose another --out"
            )


def _swap_in(staging: Path, out: Path) -> None:
    """Replace the owned entries of ``out`` by those of ``staging``."""
    trash = Path(tempfile.mkdtemp(dir=out, prefix=".export.old.", suffix=".tmp"))
    try:
        for name in _OWNED:
            if (out / name).exists() or (out / name).is_symlink():
                os.replace(out / name, trash / name)
        for entry in staging.iterdir():
            os.replace(entry, out / entry.name)
    finally:
        shutil.rmtree(trash, ignore_errors=True)


def _place_image(source: Path, target: Path, mode: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if mode == "link":
        os.symlink(source.resolve(), target)
    else:
        shutil.copyfile(source, target)


def _yaml_str(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a YAML double-quoted scalar


def data_yaml(root: Path, splits: Sequence[str], class_list: Sequence[str]) -> str:
    """The text of an ultralytics ``data.yaml`` for ``splits`` under ``root``.

    A single split serves as ``train`` and ``val`` both (ultralytics needs the two).

    Example:
        >>> print(data_yaml(Path("/d"), ["train", "val"], ["car"]), end="")
        path: "/d"
        train: "images/train"
        val: "images/val"
        nc: 1
        names:
          0: "car"
    """
    keys = {name: f"images/{name}" for name in splits}
    if len(splits) == 1:
        keys.setdefault("train", f"images/{splits[0]}")
        keys.setdefault("val", f"images/{splits[0]}")
    lines = [f"path: {_yaml_str(str(root))}"]
    lines += [f"{name}: {_yaml_str(rel)}" for name, rel in keys.items()]
    lines += [f"nc: {len(class_list)}", "names:"]
    lines += [f"  {n}: {_yaml_str(label)}" for n, label in enumerate(class_list)]
    return "\n".join(lines) + "\n"


def export_splits(
    splits: Mapping[str, Any],
    out_dir: str | os.PathLike[str],
    *,
    format: str,  # noqa: A002 - the word users know from the CLI
    images: str = "none",
    classes: Sequence[str] | None = None,
    image_size: Any = None,
    polygons_as_boxes: bool = False,
) -> Path:
    """Write a training folder of ``splits`` (split name → Dataset or view); see above.

    ``images`` is ``"copy"`` (files copied from the media store), ``"link"`` (symbolic
    links into it: do not edit them) or ``"none"``. COCO needs pixel sizes:
    ``image_size`` as in :func:`exports.resolve_image_sizes`, else the sizes of the
    fetched media. Returns ``out_dir``.

    Example:
        >>> parts = ds.split({"train": .8, "val": .2})                        # doctest: +SKIP
        >>> export_splits(parts, "out", format="coco", images="copy")         # doctest: +SKIP
        PosixPath('out')
    """
    if format not in FORMATS:
        raise ConfigurationError(f"format must be one of {', '.join(FORMATS)}; got {format!r}")
    if images not in IMAGE_MODES:
        raise ConfigurationError(
            f"images must be one of {', '.join(IMAGE_MODES)}; got {images!r}"
        )
    if not splits:
        raise ConfigurationError("splits is empty; pass ds.split({...}) or {'all': ds}")
    out = Path(out_dir)
    _check_out(out)
    types = export_types(format, polygons_as_boxes)
    shapes = {name: exports._collect_shapes(view, types) for name, view in splits.items()}
    every_label = sorted({s.label for group in shapes.values() for s in group})
    class_list = exports.check_classes(every_label, classes)

    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out, prefix=".export.", suffix=".tmp"))
    totals = {"images": 0, "annotations": 0}
    try:
        for name, view in splits.items():
            files = _write_split(view, name, shapes[name], staging, format=format,
                                 images=images, class_list=class_list, image_size=image_size)
            totals["images"] += files
            totals["annotations"] += len(shapes[name])
            if not files:
                logger.warning("split %r of the export is empty (no image with %s); a small "
                               "dataset or a small fraction, see the split report", name,
                               " or ".join(types))
        if format == "yolo":
            (staging / "data.yaml").write_text(data_yaml(out.resolve(), list(splits),
                                                         class_list), encoding="utf-8")
        (staging / "classes.txt").write_text("".join(f"{c}\n" for c in class_list),
                                             encoding="utf-8")
        (staging / _MARKER).write_text(json.dumps(
            {"format": format, "splits": list(splits), "images": images}) + "\n",
            encoding="utf-8")
        _swap_in(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("wrote %s training export %s: %d splits, %d images, %d annotations",
                format, out, len(splits), totals["images"], totals["annotations"])
    return out


def _write_split(view: Any, split: str, shapes: Sequence[Any], staging: Path, *, format: str,
                 images: str, class_list: Sequence[str], image_size: Any) -> int:
    """Write one split's labels (and images) into ``staging``; return its image count."""
    keys = exports._images(shapes)
    stems = {image: stem for image, (_, stem) in exports._image_names(view, keys).items()}
    urls = _image_urls(view)
    media = _media_info(view)
    file_names: dict[exports.ImageKey, str] = {}
    missing: list[str] = []
    for image in keys:
        url = urls.get(image)
        content_type, stored = media.get(url, (None, None)) if url else (None, None)
        file_names[image] = stems[image] + _extension(url, content_type)
        if images != "none":
            if stored is None:
                missing.append(url or "/".join(p for p in image if p))
                continue
            _place_image(stored, staging / "images" / split / file_names[image], images)
    if missing:
        raise ConfigurationError(
            f"{len(missing)} image(s) of split {split!r} are not in the media store "
            f"(first: {missing[0]!r}); expected every source image fetched. Run "
            "ds.fetch_media() or 'playment-datasets media BATCH', or pass images='none'"
        )
    if format == "yolo":
        class_ids = {label: n for n, label in enumerate(class_list)}
        lines = exports.yolo_lines(shapes, stems, class_ids)
        for stem, rows in lines.items():
            target = staging / "labels" / split / f"{stem}.txt"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text("\n".join(rows) + "\n", encoding="utf-8")
        (staging / "images" / split).mkdir(parents=True, exist_ok=True)
    else:
        sizes = image_size if image_size is not None else _media_sizes(view)
        exports.to_coco(view, staging / "annotations", image_size=sizes,
                        file_name=f"instances_{split}.json", categories=class_list,
                        image_names=file_names, types=export_types("coco"))
    return len(keys)


def _media_sizes(view: Any) -> dict[str, tuple[int, int]] | None:
    """job_id → (width, height) from the fetched media, or ``None`` when none is known."""
    getter = getattr(view, "image_sizes", None)
    sizes = getter() if callable(getter) else {}
    return sizes or None
