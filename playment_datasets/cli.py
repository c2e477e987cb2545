"""The ``playment-datasets`` command line: a thin layer over the public API.

Commands parse arguments, call the library and format its answer, as aligned text or
as JSON with ``--json``. Library errors become one line on stderr and an exit code:
0 success, 1 user error, 2 usage error, 3 partial pull (some jobs in ``errors``),
130 interrupted.

Example:
    $ playment-datasets demo
    $ playment-datasets pull PROJECT_ID BATCH_ID --workers 32
    $ playment-datasets show BATCH_ID@2 --json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import tempfile
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from playment_datasets import __version__
from playment_datasets.emulator.__main__ import add_emulator_arguments
from playment_datasets.errors import ConfigurationError, PlaymentDatasetsError

__all__ = ["main", "console", "build_parser", "render_docs"]

EXIT_OK, EXIT_USER, EXIT_USAGE, EXIT_PARTIAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class UsageError(PlaymentDatasetsError):
    """A command line that cannot be understood (exit code 2)."""


# -- argument parsing ---------------------------------------------------------------


def _common(*, with_json: bool = True) -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("common options")
    group.add_argument("--registry", metavar="PATH",
                       help="registry directory (default: $PLAYMENT_DATASETS_HOME, else a "
                            "per-user data directory)")
    if with_json:
        group.add_argument("--json", action="store_true", help="print machine-readable JSON")
    group.add_argument("--debug", action="store_true",
                       help="show debug logs and full tracebacks")
    return common


_EMULATOR_OPTIONS = ("jobs", "seed", "kinds", "port", "storage_port", "latency_ms", "faults",
                     "page_size", "api_key")


COMMANDS: dict[str, dict[str, str]] = {
    "pull": {
        "help": "fetch a batch into a new dataset version",
        "example": "playment-datasets pull 905ea3ee-… 468b6ae3-… --workers 32",
    },
    "commit-shards": {
        "help": "merge the finished shards of a sharded pull into one version",
        "example": "playment-datasets commit-shards 905ea3ee-… 468b6ae3-… 4",
    },
    "list": {"help": "list batches and their versions", "example": "playment-datasets list"},
    "show": {
        "help": "summarize a version: counts per table, per type, top labels",
        "example": "playment-datasets show 468b6ae3-…@2",
    },
    "diff": {
        "help": "what changed between two versions",
        "example": "playment-datasets diff 468b6ae3-…@1 468b6ae3-…@2",
    },
    "verify": {
        "help": "re-hash stored files and report corruption",
        "example": "playment-datasets verify 468b6ae3-…",
    },
    "remove": {
        "help": "delete one version (its raw objects stay until gc)",
        "example": "playment-datasets remove 468b6ae3-…@1",
    },
    "gc": {
        "help": "delete raw objects, orphan versions and temporary files nothing needs",
        "example": "playment-datasets gc --dry-run",
    },
    "tag": {
        "help": "point a tag at a version (moving it if it exists)",
        "example": "playment-datasets tag 468b6ae3-…@2 gold",
    },
    "untag": {
        "help": "remove a tag of a batch (the version stays)",
        "example": "playment-datasets untag 468b6ae3-… gold",
    },
    "repair": {
        "help": "rebuild registry.json from the manifests of the version directories",
        "example": "playment-datasets repair",
    },
    "export": {
        "help": "export a version to COCO, YOLO or CSV",
        "example": "playment-datasets export 468b6ae3-… --format coco --out coco/ "
                   "--image-size 1920x1080",
    },
    "media": {
        "help": "download the source images, frames and sensor files of a version",
        "example": "playment-datasets media 468b6ae3-…@2 --workers 16",
    },
    "check": {
        "help": "quality report of a version: findings per check",
        "example": "playment-datasets check 468b6ae3-…@2",
    },
    "emulator": {
        "help": "run the built-in Playment API emulator",
        "example": "playment-datasets emulator --jobs 200 --latency-ms 20",
    },
    "demo": {
        "help": "offline demo: emulator + pull + show, in one command",
        "example": "playment-datasets demo",
    },
}


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (also used to generate ``docs/cli.md``)."""
    parser = argparse.ArgumentParser(
        prog="playment-datasets",
        description="Pull Playment annotation batches into versioned pandas/Parquet datasets.",
        epilog="Environment: PLAYMENT_API_KEY, PLAYMENT_BASE_URL, PLAYMENT_DATASETS_HOME.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    common = _common()

    def add(name: str, parent: argparse.ArgumentParser = common) -> argparse.ArgumentParser:
        info = COMMANDS[name]
        return sub.add_parser(
            name, parents=[parent], help=info["help"], description=info["help"] + ".",
            epilog=f"example:\n  {info['example']}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    p = add("pull")
    p.add_argument("project_id", help="Playment project id")
    p.add_argument("batch_id", help="Playment batch id")
    p.add_argument("--workers", type=_positive_int, default=None,
                   help="requests in flight at once, and as many again for masks "
                        "(default 64)")
    p.add_argument("--base-url", help="API host (default $PLAYMENT_BASE_URL or https://api.playment.io)")
    p.add_argument("--rate-limit", type=float, metavar="RPS",
                   help="at most RPS requests per second")
    p.add_argument("--ca-bundle", metavar="PEM",
                   help="certificate authorities to trust, for a company proxy or a private "
                        "deployment (default $REQUESTS_CA_BUNDLE, $SSL_CERT_FILE, else the "
                        "system's)")
    p.add_argument("--refresh-jobs", action="store_true",
                   help="re-read every job record, even for jobs unchanged since the last version")
    p.add_argument("--no-masks", action="store_true",
                   help="do not fetch the mask files of segmentation results (their masks "
                        "rows say not_fetched)")
    p.add_argument("--processes", type=_count, metavar="N", default=None,
                   help="worker processes normalizing while the threads fetch (default: one "
                        "per core but one, at most 4; 0: none)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument("--shard", metavar="I/N", type=_shard,
                   help="pull only shard I of N (0-based); then run commit-shards")
    p.add_argument("--lock-timeout", type=_seconds, metavar="SECONDS", default=None,
                   help="wait this long for another pull of the batch to finish (default "
                        "3600); the pull then reuses what that one committed")

    p = add("commit-shards")
    p.add_argument("project_id", help="Playment project id")
    p.add_argument("batch_id", help="Playment batch id")
    p.add_argument("count", type=_positive_int, metavar="N", help="number of shards")

    add("list")
    p = add("show")
    p.add_argument("dataset", metavar="BATCH_ID[@VERSION]", help="version: number, tag or latest")
    p = add("diff")
    p.add_argument("a", metavar="BATCH_ID@A")
    p.add_argument("b", metavar="BATCH_ID@B")
    p = add("verify")
    p.add_argument("dataset", nargs="?", metavar="BATCH_ID[@VERSION]",
                   help="what to verify (default: every version)")
    p = add("remove")
    p.add_argument("dataset", metavar="BATCH_ID@VERSION", help="version: number or tag")
    p = add("gc")
    p.add_argument("--grace-seconds", type=_seconds, default=3600.0, metavar="N",
                   help="keep unreferenced objects younger than N seconds (default 3600)")
    p.add_argument("--dry-run", action="store_true", help="report what would go; delete nothing")
    p = add("tag")
    p.add_argument("dataset", metavar="BATCH_ID@VERSION", help="version: number, tag or latest")
    p.add_argument("name", help="tag name: a letter or '_', then letters, digits, '.', '_', '-'")
    p = add("untag")
    p.add_argument("batch_id", metavar="BATCH_ID")
    p.add_argument("name", help="the tag to remove")
    add("repair")
    p = add("export")
    p.add_argument("dataset", metavar="BATCH_ID[@VERSION]")
    p.add_argument("--format", required=True, choices=("coco", "yolo", "csv"))
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--image-size", metavar="WxH", type=_image_size,
                   help="pixel size of every image, e.g. 1920x1080 (COCO needs it unless "
                        "the media were fetched)")
    _add_training_export_options(p)
    _add_media_parser(add("media"))
    p = add("check")
    p.add_argument("dataset", metavar="BATCH_ID[@VERSION]")
    p.add_argument("--show", type=int, default=10, metavar="N",
                   help="print the first N findings after the summary (default 10)")

    p = add("emulator", _common(with_json=False))
    add_emulator_arguments(p)  # the same options as python -m playment_datasets.emulator

    p = add("demo")
    p.add_argument("--jobs", type=_positive_int, default=48, help="jobs in the demo batch")
    return parser


def _add_training_export_options(p: argparse.ArgumentParser) -> None:
    """Options of the training layout (splits, images, fixed classes)."""
    p.add_argument("--split", metavar="NAME=F,…", type=_fractions,
                   help="split by a hash of the job id, e.g. train=.8,val=.1,test=.1 "
                        "(stable across versions)")
    p.add_argument("--seed", default="0", help="seed of the split hash (default 0)")
    p.add_argument("--by", choices=("job_id", "reference_id"), default="job_id",
                   help="what the split is keyed on (default job_id)")
    p.add_argument("--images", choices=("copy", "link", "none"), default="none",
                   help="put the source images in the export (needs 'media' first, or "
                        "--fetch-media)")
    p.add_argument("--fetch-media", action="store_true",
                   help="download the source images first, as the 'media' command does "
                        "(needs the API key; what is stored is not downloaded again)")
    p.add_argument("--base-url", help="API host for --fetch-media (default "
                                      "$PLAYMENT_BASE_URL or https://api.playment.io)")
    p.add_argument("--classes", metavar="FILE",
                   help="class names, one per line: fixes the class ids of every split")


def _add_media_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset", metavar="BATCH_ID[@VERSION]")
    p.add_argument("--base-url", help="API host (default $PLAYMENT_BASE_URL or "
                                      "https://api.playment.io)")
    p.add_argument("--workers", type=_positive_int, default=16,
                   help="downloads in flight at once (default 16)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _fractions(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise argparse.ArgumentTypeError(
                f"expected NAME=FRACTION,… such as train=.8,val=.1,test=.1; got {text!r}"
            )
    return out


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, got {text!r}")
    return value


def _image_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected WIDTHxHEIGHT such as 1920x1080, got {text!r}"
        ) from None
    if width < 1 or height < 1:
        raise argparse.ArgumentTypeError(f"image size must be positive, got {text!r}")
    return width, height


def parse_dataset_ref(text: str, *, require_version: bool = False) -> tuple[str, str]:
    """Split ``BATCH_ID[@VERSION]`` into ``(batch_id, version)``.

    Example:
        >>> parse_dataset_ref("b1@3")
        ('b1', '3')
        >>> parse_dataset_ref("b1")
        ('b1', 'latest')
    """
    batch, sep, version = text.partition("@")
    if not batch or (sep and not version) or "@" in version:
        raise UsageError(
            f"expected BATCH_ID or BATCH_ID@VERSION (a number, a tag or 'latest'); got {text!r}"
        )
    if require_version and not sep:
        raise UsageError(f"expected BATCH_ID@VERSION, e.g. {batch}@1; got {text!r}")
    return batch, version or "latest"


# -- commands -----------------------------------------------------------------------


def _registry(args: argparse.Namespace, *, must_exist: bool = True) -> Any:
    """The Registry of ``--registry``; with ``must_exist`` a missing directory is an
    error rather than an empty registry (a mistyped path must not look empty)."""
    from playment_datasets.registry.registry import Registry, _is_remote_url

    reg = Registry(args.registry)  # refuses an empty path and a file
    if must_exist and not (args.registry and _is_remote_url(args.registry)):
        if not reg.root.is_dir():
            raise ConfigurationError(
                f"no registry at {reg.root}: the directory does not exist. Check --registry "
                "(or PLAYMENT_DATASETS_HOME), or pull a batch first."
            )
    return reg


def cmd_pull(args: argparse.Namespace) -> int:
    from playment_datasets.pull.orchestrate import DEFAULT_LOCK_TIMEOUT, DEFAULT_WORKERS, pull

    lock_timeout = DEFAULT_LOCK_TIMEOUT if args.lock_timeout is None else args.lock_timeout
    ds = pull(
        args.project_id, args.batch_id, base_url=args.base_url, registry=args.registry,
        workers=args.workers or DEFAULT_WORKERS, rate_limit=args.rate_limit,
        progress=False if (args.no_progress or args.json) else None,
        refresh_jobs=args.refresh_jobs, shard=args.shard, ca_bundle=args.ca_bundle,
        lock_timeout=lock_timeout, masks=not args.no_masks, processes=args.processes,
    )
    summary = summarize(ds)
    _emit(args, summary, render_summary)
    return EXIT_PARTIAL if summary["counts"].get("errors", 0) else EXIT_OK


def cmd_commit_shards(args: argparse.Namespace) -> int:
    ds = _registry(args).commit_shards(args.project_id, args.batch_id, args.count)
    summary = summarize(ds)
    _emit(args, summary, render_summary)
    return EXIT_PARTIAL if summary["counts"].get("errors", 0) else EXIT_OK


def _shard(text: str) -> tuple[int, int]:
    from playment_datasets.registry.shards import parse_shard

    try:
        return parse_shard(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_list(args: argparse.Namespace) -> int:
    # From registry.json alone (Registry.datasets() without its DataFrame): no pandas.
    rows = [{**row, "created_at": _iso_millis(row["created_at"])}
            for row in _registry(args)._dataset_rows()]
    _emit(args, rows, lambda r: render_table(r) if r else "no datasets yet; run "
          "'playment-datasets pull PROJECT_ID BATCH_ID' or 'playment-datasets demo'")
    return EXIT_OK


def _iso_millis(text: str) -> str:
    """An ISO 8601 time as UTC with milliseconds, ``2026-01-31T12:00:00.123Z``."""
    from datetime import datetime, timezone

    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    when = when.astimezone(timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def cmd_show(args: argparse.Namespace) -> int:
    batch, version = parse_dataset_ref(args.dataset)
    ds = _registry(args).load(batch, version)
    _emit(args, summarize(ds), render_summary)
    return EXIT_OK


def cmd_diff(args: argparse.Namespace) -> int:
    batch_a, a = parse_dataset_ref(args.a, require_version=True)
    batch_b, b = parse_dataset_ref(args.b, require_version=True)
    if batch_a != batch_b:
        raise UsageError(
            f"diff compares two versions of one batch; got {batch_a!r} and {batch_b!r}"
        )
    diff = _registry(args).diff(batch_a, a, b)
    summary = {"batch_id": batch_a, "a": a, "b": b, **diff.summary()}
    _emit(args, summary, lambda s: render_mapping(s))
    return EXIT_OK


VERIFY_REMEDY = (
    "to fix: a damaged registry.json -> 'playment-datasets repair'; a damaged version -> "
    "'playment-datasets remove BATCH@VERSION' and pull it again; missing objects -> pull the "
    "batch again"
)


def cmd_verify(args: argparse.Namespace) -> int:
    batch, version = parse_dataset_ref(args.dataset) if args.dataset else (None, None)
    report = _registry(args).verify(batch, version if batch else None)
    problems = [vars(p) if hasattr(p, "__dict__") else p for p in report.problems]
    data = {"ok": report.ok, "checked": getattr(report, "checked", None), "problems": problems}
    _emit(args, data, lambda d: "ok: every file matches its manifest" if d["ok"]
          else "CORRUPT:\n" + render_table(d["problems"]) + "\n" + VERIFY_REMEDY)
    return EXIT_OK if report.ok else EXIT_USER


def cmd_remove(args: argparse.Namespace) -> int:
    batch, version = parse_dataset_ref(args.dataset, require_version=True)
    reg = _registry(args)
    _, n = reg.resolve(batch, version)
    reg.remove(batch, n)
    _emit(args, {"batch_id": batch, "version": n, "removed": True},
          lambda d: f"removed {d['batch_id']} v{d['version']}; its raw objects stay until "
                    "'playment-datasets gc'")
    return EXIT_OK


def cmd_gc(args: argparse.Namespace) -> int:
    report = _registry(args).gc(dry_run=args.dry_run, grace_seconds=args.grace_seconds)
    data = {"dry_run": report.dry_run, **report.summary(), "skipped_paths": report.skipped}
    _emit(args, data, lambda d: "\n".join(
        [("would remove (dry run):" if d["dry_run"] else "removed:"),
         render_mapping({k: v for k, v in d.items() if k not in ("dry_run", "skipped_paths")}),
         *(f"skipped {line}" for line in d["skipped_paths"])]))
    return EXIT_OK


def cmd_tag(args: argparse.Namespace) -> int:
    batch, version = parse_dataset_ref(args.dataset, require_version=True)
    reg = _registry(args)
    reg.tag(batch, version, args.name)
    _, n = reg.resolve(batch, args.name)
    _emit(args, {"batch_id": batch, "version": n, "tag": args.name},
          lambda d: f"tagged {d['batch_id']} v{d['version']} as {d['tag']!r}")
    return EXIT_OK


def cmd_untag(args: argparse.Namespace) -> int:
    _registry(args).untag(args.batch_id, args.name)
    _emit(args, {"batch_id": args.batch_id, "tag": args.name, "removed": True},
          lambda d: f"removed tag {d['tag']!r} of {d['batch_id']}")
    return EXIT_OK


def cmd_repair(args: argparse.Namespace) -> int:
    report = _registry(args).repair()
    _emit(args, report.to_dict(), render_repair)
    return EXIT_OK


def render_repair(d: dict[str, Any]) -> str:
    lines = [f"old registry.json: {d['old_index']}",
             f"indexed {len(d['versions'])} version(s) from their manifests"
             + ("" if d["changed"] else "; the index was already right")]  # fmt: skip
    for key in ("added", "removed", "fixed", "tags_kept", "tags_dropped", "skipped"):
        lines += [f"{key.replace('_', ' ')}: {item}" for item in d[key]]
    return "\n".join(lines)


def cmd_export(args: argparse.Namespace) -> int:
    from playment_datasets.dataset import exports

    batch, version = parse_dataset_ref(args.dataset)
    ds = _registry(args).load(batch, version)
    out = Path(args.out)
    if args.fetch_media:
        media = ds.fetch_media(base_url=args.base_url, progress=False if args.json else None)
        failed = int((media["status"] == "failed").sum())
        if failed:
            raise PlaymentDatasetsError(
                f"{failed} of {len(media)} media files could not be downloaded; expected "
                "every source image of the export. Run the same command again to retry "
                f"them, or see 'playment-datasets media {args.dataset}'"
            )
    if args.split is not None or args.images != "none" or args.classes:
        return _export_training(args, ds, out)
    if args.format == "coco":
        path = exports.to_coco(ds, out, image_size=args.image_size or ds.image_sizes() or None)
    elif args.format == "yolo":
        path = exports.to_yolo(ds, out, image_size=args.image_size)
    else:
        path = exports.to_csv(ds, out)
    _emit(args, {"format": args.format, "path": str(path)},
          lambda d: f"wrote {d['format']} export to {d['path']}")
    return EXIT_OK


def _export_training(args: argparse.Namespace, ds: Any, out: Path) -> int:
    """``export`` with --split / --images / --classes: the training layout."""
    from playment_datasets.dataset.training import read_classes_file

    if args.format == "csv":
        raise UsageError("--split, --images and --classes apply to coco and yolo, not csv")
    classes = read_classes_file(args.classes) if args.classes else None
    seed: int | str = int(args.seed) if args.seed.lstrip("-").isdigit() else args.seed
    parts = ds.training_splits(args.format, args.split, by=args.by, seed=seed)
    path = ds.export(out, format=args.format, split=args.split, seed=seed, by=args.by,
                     images=args.images, classes=classes, image_size=args.image_size)
    report = parts.report
    labels = [c for c in report.columns if c not in ("jobs", "annotations", "share")]
    data = {
        "format": args.format, "path": str(path), "images": args.images,
        "splits": [{"split": str(name), "jobs": int(row["jobs"]),
                    "annotations": int(row["annotations"]), "share": round(float(row["share"]), 3)}
                   for name, row in report.iterrows()],
        "labels": [{"label": str(label), **{str(name): int(report.loc[name, label])
                                            for name in report.index}} for label in labels],
    }
    _emit(args, data, lambda d: "\n\n".join(
        [f"wrote {d['format']} export to {d['path']}", render_table(d["splits"]),
         render_table(d["labels"])]))
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    from playment_datasets.dataset.quality import CHECKS

    batch, version = parse_dataset_ref(args.dataset)
    ds = _registry(args).load(batch, version)
    findings = ds.quality()
    counts = findings["check"].value_counts()
    data = {
        "batch_id": ds.batch_id, "version": ds.version,
        "counts": {name: int(counts.get(name, 0)) for name in CHECKS},
        "severity": dict(CHECKS),
        "findings": json.loads(findings.to_json(orient="records")),
    }
    _emit(args, data, lambda d: _render_check(d, args.show))
    return EXIT_OK


def _render_check(d: dict[str, Any], show: int) -> str:
    rows = [{"check": c, "severity": d["severity"][c], "findings": n}
            for c, n in d["counts"].items()]
    total = sum(d["counts"].values())
    lines = [f"quality of {d['batch_id']} v{d['version']}: {total} finding(s)", "",
             render_table(rows)]
    if total and show > 0:
        lines += ["", f"first {min(show, total)} finding(s) (ds.quality() lists all):",
                  render_table([{k: f[k] for k in ("check", "job_id", "frame_id", "message")}
                                for f in d["findings"][:show]])]
    return "\n".join(lines)


def cmd_media(args: argparse.Namespace) -> int:
    batch, version = parse_dataset_ref(args.dataset)
    ds = _registry(args).load(batch, version)
    media = ds.fetch_media(base_url=args.base_url, workers=args.workers,
                           progress=False if (args.no_progress or args.json) else None)
    counts = media.groupby(["kind", "status"], observed=True).size()
    rows = [{"kind": str(k), "status": str(s), "files": int(n)} for (k, s), n in counts.items()]
    data = {"batch_id": ds.batch_id, "version": ds.version, "files": len(media),
            "bytes": int(media["bytes"].fillna(0).sum()), "by_status": rows,
            "errors": [{"url": str(u), "error": str(e)} for u, e in
                       media.loc[media["error"].notna(), ["url", "error"]].head(20)
                       .itertuples(index=False)]}
    _emit(args, data, _render_media)
    failed = int((media["status"] == "failed").sum())
    return EXIT_PARTIAL if failed else EXIT_OK


def _render_media(d: dict[str, Any]) -> str:
    lines = [f"{d['files']} media files of {d['batch_id']} v{d['version']} "
             f"({d['bytes']:,} bytes stored)", "", render_table(d["by_status"])]
    if d["errors"]:
        lines += ["", "failed (run the same command again to retry them):",
                  render_table(d["errors"])]
    return "\n".join(lines)


def cmd_emulator(args: argparse.Namespace) -> int:
    from playment_datasets.emulator.__main__ import run_emulator_cli

    argv: list[str] = []
    for name in _EMULATOR_OPTIONS:
        value = getattr(args, name)
        if value is not None:
            argv += [f"--{name.replace('_', '-')}", str(value)]
    if args.json:
        argv.append("--json")
    return run_emulator_cli(argv)


def cmd_demo(args: argparse.Namespace) -> int:
    from playment_datasets.emulator import Emulator
    from playment_datasets.pull.orchestrate import pull

    registry = args.registry if args.registry is not None else tempfile.mkdtemp(
        prefix="playment-demo-")
    _registry(argparse.Namespace(registry=registry), must_exist=False)
    with Emulator(jobs=args.jobs, seed=7) as emu:
        ds = pull(emu.project_id, emu.batch_id, api_key=emu.api_key, base_url=emu.base_url,
                  registry=registry, progress=False if args.json else None)
    summary = summarize(ds)
    summary["registry"] = str(registry)
    if args.json:
        _emit(args, summary, render_summary)
        return EXIT_OK
    print(f"Started the built-in Playment emulator and pulled batch {ds.batch_id}.\n")
    print(render_summary(summary))
    print(textwrap.dedent(f"""
        Load it in Python:
            import playment_datasets as pds
            ds = pds.load("{ds.batch_id}", registry="{registry}")
            ds.annotations.query("type == 'rectangle'").groupby("label").size()
        """).rstrip())
    return EXIT_OK


# -- summaries and rendering ---------------------------------------------------------


def summarize(ds: Any) -> dict[str, Any]:
    """A JSON-ready summary of a dataset version: counts per table, type and label.

    Counted on Arrow columns: ``show`` and ``pull`` never import pandas.
    """
    from playment_datasets.schema import TABLE_NAMES

    manifest = ds.manifest
    ann = ds.arrow("annotations", columns=["type", "label"])
    by_type = _value_counts(ann.column("type"))  # in order of first appearance
    # Most frequent first; a tie keeps the order of first appearance (a stable sort).
    labels = sorted(_value_counts(ann.column("label")).items(), key=lambda kv: -kv[1])
    kinds = _value_counts(ds.arrow("jobs", columns=["result_kind"]).column("result_kind"))
    return {
        "batch_id": ds.batch_id,
        "project_id": ds.project_id,
        "version": ds.version,
        "created_at": manifest.get("created_at"),
        "content_id": manifest.get("content_id"),
        "path": str(ds.path),
        "counts": {name: int(manifest.get("counts", {}).get(name, 0)) for name in TABLE_NAMES},
        "pull": (manifest.get("extra") or {}).get("pull"),
        "result_kinds": kinds,
        "annotation_types": by_type,
        "top_labels": dict(labels[:10]),
    }


def _value_counts(column: Any) -> dict[str, int]:
    """Non-null values of an Arrow column and how often each occurs, in the order of
    their first appearance."""
    import pyarrow.compute as pc

    counts = pc.value_counts(column.drop_null())
    return {str(v): int(n) for v, n in zip(counts.field("values").to_pylist(),
                                           counts.field("counts").to_pylist(), strict=True)}


def render_summary(s: dict[str, Any]) -> str:
    lines = [
        f"batch     {s['batch_id']}  (project {s['project_id']})",
        f"version   {s['version']}  created {s['created_at']}",
        f"path      {s['path']}",
    ]
    stats = s.get("pull")
    if stats:
        lines.append(
            f"pull      {stats['listed']} jobs listed in {stats['seconds']:.2f} s: "
            f"{stats['fetched']} downloaded, {stats['not_modified']} unchanged, "
            f"{stats['resumed']} resumed, {stats['failed']} failed"
        )
        if stats.get("masks_fetched") or stats.get("masks_not_modified") \
                or stats.get("masks_failed"):
            lines.append(
                f"masks     {stats['masks_fetched']} downloaded "
                f"({stats['mask_bytes_downloaded']} bytes), {stats['masks_not_modified']} "
                f"unchanged, {stats['masks_failed']} failed"
            )
    lines += [
        "",
        _side_by_side(
            ("table", "rows", s["counts"]),
            ("result kind", "jobs", s["result_kinds"]),
        ),
        "",
        _side_by_side(
            ("annotation type", "rows", s["annotation_types"]),
            ("top label", "rows", s["top_labels"]),
        ),
    ]
    if s["counts"].get("errors"):
        lines += ["", f"WARNING: {s['counts']['errors']} jobs could not be fetched or parsed; "
                      "see ds.errors"]
    return "\n".join(lines)


def _side_by_side(*blocks: tuple[str, str, dict[str, int]]) -> str:
    rendered = [
        render_table([{head: k, unit: v} for k, v in data.items()] or [{head: "-", unit: ""}])
        .splitlines()
        for head, unit, data in blocks
    ]
    width = max(len(line) for line in rendered[0]) + 4
    height = max(len(block) for block in rendered)
    out = []
    for i in range(height):
        left = rendered[0][i] if i < len(rendered[0]) else ""
        right = " ".join(b[i] if i < len(b) else "" for b in rendered[1:])
        out.append((left.ljust(width) + right).rstrip())
    return "\n".join(out)


def render_table(rows: Sequence[dict[str, Any]]) -> str:
    """Rows of dicts as an aligned text table; numbers right-aligned."""
    if not rows:
        return ""
    headers = list(rows[0])
    cells = [[_cell(row.get(h)) for h in headers] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    numeric = [all(isinstance(row.get(h), (int, float)) or row.get(h) is None for row in rows)
               for h in headers]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w)
                         for v, w, num in zip(values, widths, numeric, strict=True)).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in cells)])


def render_mapping(data: dict[str, Any]) -> str:
    width = max(len(k) for k in data)
    return "\n".join(f"{k.ljust(width)}  {_cell(v)}" for k, v in data.items())


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value, default=str)
    return str(value)


def _emit(args: argparse.Namespace, data: Any, human: Callable[[Any], str]) -> None:
    if args.json:
        print(json.dumps(data, indent=2, default=str, sort_keys=False))
    else:
        print(human(data))


# -- entry point --------------------------------------------------------------------

HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "pull": cmd_pull, "commit-shards": cmd_commit_shards,
    "list": cmd_list, "show": cmd_show, "diff": cmd_diff,
    "verify": cmd_verify, "export": cmd_export, "media": cmd_media, "check": cmd_check,
    "emulator": cmd_emulator, "demo": cmd_demo,
    "remove": cmd_remove, "gc": cmd_gc, "tag": cmd_tag, "untag": cmd_untag,
    "repair": cmd_repair,
}


#: Commands that write tables and sum them up from Arrow only: run as a process of their
#: own, they keep pandas out (see :func:`console`).
_WITHOUT_PANDAS = frozenset({"pull", "demo"})


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code.

    Example:
        >>> main(["--version"])  # doctest: +SKIP
        playment-datasets 0.1.0
        0
    """
    return _run(argv, own_process=False)


def console() -> int:
    """The ``playment-datasets`` script and ``python -m playment_datasets``: :func:`main`
    on ``sys.argv``, in a process that ends with the command.

    ``pull`` and ``demo`` then keep pandas out of the process
    (:func:`~playment_datasets.pull.normalizing.refuse_pandas`): they never build a
    DataFrame, and pyarrow would import pandas to convert lists (0.2 s, and 0.1 s more at
    exit). :func:`main`, called from Python, leaves the import system alone.
    """
    return _run(None, own_process=True)


def _run(argv: Sequence[str] | None, *, own_process: bool) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if own_process and args.command in _WITHOUT_PANDAS:
        from playment_datasets.pull.normalizing import refuse_pandas

        refuse_pandas()
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.command not in ("emulator", "demo"):  # demo checks its own (default: a temp dir)
            _registry(args, must_exist=False)  # an empty path or a file: before any request
        return HANDLERS[args.command](args)
    except KeyboardInterrupt:
        print("interrupted; run the same command again to resume where it stopped",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # output piped into `head` and the like
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except UsageError as exc:
        if args.debug:
            raise
        parser.print_usage(sys.stderr)
        print(f"playment-datasets {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (PlaymentDatasetsError, ConfigurationError) as exc:
        if args.debug:
            raise
        print(f"error: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_USER
    except ImportError as exc:
        if args.debug:
            raise
        if not exc.name:  # raised by our own code (an optional extra): it says what to do
            print(f"error: {_one_line(str(exc))}", file=sys.stderr)
        else:  # an import failed: a dependency is missing or older than required
            print(f"error: {type(exc).__name__}: {_one_line(str(exc))}. "
                  f"{_dependency_advice(exc.name)} (or --debug for the traceback)",
                  file=sys.stderr)
        return EXIT_USER
    except Exception as exc:  # noqa: BLE001 - never a raw traceback without --debug
        if args.debug:
            raise
        print(f"error: unexpected {type(exc).__name__}: {_one_line(str(exc))}; the registry "
              "may be damaged: run 'playment-datasets verify' (or --debug for the traceback)",
              file=sys.stderr)
        return EXIT_USER


def _dependency_advice(module: str) -> str:
    """What to install when importing ``module`` failed: the package that provides it,
    the version installed and the one playment-datasets requires."""
    from importlib import metadata

    top = module.partition(".")[0]
    if top == "playment_datasets":
        return ("playment-datasets itself is incomplete: reinstall it "
                "(python -m pip install --force-reinstall playment-datasets)")
    dist = (metadata.packages_distributions().get(top) or [top])[0]
    try:
        installed = f"{dist} {metadata.version(dist)} is installed"
    except metadata.PackageNotFoundError:
        installed = f"{dist} is not installed"
    try:
        required = metadata.requires("playment-datasets") or []
    except metadata.PackageNotFoundError:
        required = []
    key = _canonical(dist)
    wanted = next((r.split(";")[0].strip() for r in required
                   if _canonical(re.split(r"[<>=!~\[ ;]", r, maxsplit=1)[0]) == key), dist)
    return (f"{installed}; playment-datasets needs {wanted}. Install it with: "
            f"python -m pip install '{wanted}'")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _one_line(text: str) -> str:
    return " ".join(text.split())


def render_docs() -> str:
    """The Markdown of ``docs/cli.md``, generated from the parsers' help."""
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # help text wraps to the terminal: pin it for the docs
    try:
        parser = build_parser()
        main_help = parser.format_help().rstrip()
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        commands = {name: cmd.format_help().rstrip() for name, cmd in sub.choices.items()}
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous
    parts = [
        "# Command line reference",
        "",
        "Generated from `playment-datasets --help`; a test fails when this page is stale.",
        "Regenerate it with `python -m playment_datasets.cli --write-docs docs/cli.md`.",
        "",
        "Exit codes: 0 success, 1 user error (bad id, bad key, unknown batch, corruption",
        "found by `verify`), 2 usage error, 3 partial pull (some jobs in `errors`),",
        "130 interrupted (run the same command again to resume).",
        "",
        "```text",
        main_help,
        "```",
    ]
    for name, text in commands.items():
        parts += ["", f"## `playment-datasets {name}`", "", "```text", text, "```"]
    return "\n".join(parts) + "\n"


if __name__ == "__main__":  # pragma: no cover
    if sys.argv[1:2] == ["--write-docs"]:
        Path(sys.argv[2]).write_text(render_docs(), encoding="utf-8")
        raise SystemExit(0)
    raise SystemExit(console())
