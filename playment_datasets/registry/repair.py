"""repair: rebuild ``registry.json`` from the manifests on disk.

The index is a cache of what the version directories say: every
``datasets/<project>/<batch>/v<N>/manifest.json`` that is a well-formed manifest of
exactly that version (its own jobs hashing to its content id) becomes an index record.
Tags are kept from the old index when it can still be read and they name a version
that exists. The new index replaces the old one atomically under the index lock.

Example:
    >>> import tempfile
    >>> from playment_datasets.registry.registry import Registry
    >>> Registry(tempfile.mkdtemp()).repair().versions
    []
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from playment_datasets.dataset.dataset import read_json
from playment_datasets.errors import CorruptDatasetError, RegistryError
from playment_datasets.registry.commit import content_id_of
from playment_datasets.registry.index import INDEX_FORMAT, RegistryDir
from playment_datasets.registry.paths import read_version_manifest, scan_version_dirs, version_rel

logger = logging.getLogger(__name__)

__all__ = ["RepairReport", "repair_registry"]


@dataclass
class RepairReport:
    """What :meth:`Registry.repair` found and changed.

    ``old_index`` is ``ok``, ``missing`` or ``unreadable: …``; ``versions`` every version
    now indexed (``"BATCH v1"``); ``added`` / ``removed`` / ``fixed`` how that differs
    from the old index; ``tags_kept`` / ``tags_dropped`` (``"BATCH:gold -> v1"``);
    ``skipped`` the directories that could not be indexed, with the reason.
    """

    old_index: str = "ok"
    versions: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    fixed: list[str] = field(default_factory=list)
    tags_kept: list[str] = field(default_factory=list)
    tags_dropped: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Whether the index was different from what the manifests say."""
        return bool(self.old_index != "ok" or self.added or self.removed or self.fixed
                    or self.tags_dropped)  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {"changed": self.changed, **{k: getattr(self, k) for k in (
            "old_index", "versions", "added", "removed", "fixed", "tags_kept",
            "tags_dropped", "skipped")}}  # fmt: skip

    def __repr__(self) -> str:
        return (
            f"<RepairReport old index {self.old_index.split(':')[0]}: {len(self.versions)} "
            f"version(s), {len(self.added)} added, {len(self.removed)} removed, "
            f"{len(self.fixed)} fixed, {len(self.tags_dropped)} tag(s) dropped, "
            f"{len(self.skipped)} skipped>"
        )


def _old_index(reg: RegistryDir, report: RepairReport) -> dict[str, Any]:
    """The old index's batches, as far as they can be read (never raises)."""
    try:
        raw = read_json(reg.index_path, "registry index")
    except FileNotFoundError:
        report.old_index = "missing"
        return {}
    except (OSError, RegistryError) as exc:
        report.old_index = f"unreadable: {exc}"
        return {}
    batches = raw.get("batches") if isinstance(raw, dict) else None
    if not isinstance(batches, dict) or raw.get("format") != INDEX_FORMAT:
        report.old_index = "unreadable: not a format-1 index"
        return {}
    return {b: e for b, e in batches.items() if isinstance(e, dict)}


def _record(manifest: dict[str, Any], rel: str) -> dict[str, Any]:
    """The index record of a version, as commit writes it."""
    return {
        "content_id": manifest["content_id"],
        "created_at": manifest["created_at"],
        "parent": manifest.get("parent"),
        "n_jobs": int(manifest.get("n_jobs", len(manifest["jobs"]))),
        "counts": manifest["counts"],
        "path": rel,
    }


def _scan(reg: RegistryDir, report: RepairReport) -> dict[str, Any]:
    batches: dict[str, Any] = {}
    for project_id, batch_id, n, vdir, problem in scan_version_dirs(reg.root):
        rel = vdir.relative_to(reg.root).as_posix()
        try:
            if problem is not None:
                raise CorruptDatasetError(problem)
            manifest = read_version_manifest(reg.root, project_id, batch_id, n)
            if content_id_of(manifest["jobs"]) != manifest["content_id"]:
                raise CorruptDatasetError("its content_id does not match its own jobs")
            if not isinstance(manifest.get("created_at"), str):
                raise CorruptDatasetError("it has no created_at")
            owner = batches.get(batch_id, {}).get("project_id")
            if owner not in (None, project_id):
                raise CorruptDatasetError(f"batch {batch_id} is already indexed under {owner}")
        except CorruptDatasetError as exc:
            report.skipped.append(f"{rel}: {exc}")
            continue
        entry = batches.setdefault(batch_id, {"project_id": project_id, "versions": {},
                                              "tags": {}})  # fmt: skip
        entry["versions"][str(n)] = _record(manifest, version_rel(project_id, batch_id, n))
    return batches


def _compare(old: dict[str, Any], new: dict[str, Any], report: RepairReport) -> None:
    def versions(batches: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for b, entry in batches.items():
            vs = entry.get("versions")
            for v, info in (vs.items() if isinstance(vs, dict) else ()):
                out[f"{b} v{v}"] = info
        return out

    before, after = versions(old), versions(new)
    report.versions = sorted(after)
    report.added = sorted(set(after) - set(before))
    report.removed = sorted(set(before) - set(after))
    report.fixed = sorted(k for k in set(after) & set(before) if after[k] != before[k])
    for b, entry in sorted(old.items()):
        tags = entry.get("tags")
        for name, v in sorted(tags.items()) if isinstance(tags, dict) else ():
            label = f"{b}:{name} -> v{v}"
            target = new.get(b, {}).get("versions", {})
            if isinstance(v, int) and not isinstance(v, bool) and str(v) in target:
                new[b]["tags"][name] = v
                report.tags_kept.append(label)
            else:
                report.tags_dropped.append(label)


def repair_registry(reg: RegistryDir) -> RepairReport:
    """Rebuild the index from the manifests; see the module docstring."""
    report = RepairReport()
    with reg.lock():
        old = _old_index(reg, report)
        new = _scan(reg, report)
        _compare(old, new, report)
        reg.write({"format": INDEX_FORMAT, "batches": new})
    for line in report.skipped:
        logger.warning("repair could not index %s", line)
    logger.info("repair: %r", report)
    return report
