"""A re-pull whose latest version fails verification repairs it: damaged tables give a
new, complete version (nothing is downloaded again for them), a damaged raw object is
downloaded again — never "unchanged" over a broken version."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

import playment_datasets as pds
from playment_datasets.emulator import Emulator
from playment_datasets.registry.registry import Registry


def do_pull(emu: Emulator, registry: Path) -> pds.Dataset:
    return pds.pull(emu.project_id, emu.batch_id, api_key=emu.api_key, base_url=emu.base_url,
                    registry=registry, workers=8, progress=False)


@pytest.fixture()
def emu():
    with Emulator(jobs=60, seed=23, page_size=20) as emulator:
        yield emulator


def _bodies(emu: Emulator) -> int:
    return emu.stats.requests["storage"] - emu.stats.not_modified


@pytest.mark.parametrize("damage", ["delete", "truncate", "flip"])
def test_a_damaged_table_of_the_latest_version_is_rebuilt(
    emu: Emulator, tmp_path: Path, damage: str
) -> None:
    v1 = do_pull(emu, tmp_path)
    path = v1.path / "annotations.parquet"
    if damage == "delete":
        path.unlink()
    elif damage == "truncate":
        path.write_bytes(path.read_bytes()[:100])
    else:
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    registry = Registry(tmp_path)
    assert not registry.verify(emu.batch_id).ok
    emu.reset_stats()
    v2 = do_pull(emu, tmp_path)
    assert _bodies(emu) == 0  # the raw results were sound: re-normalized, not re-fetched
    assert v2.version == 2
    assert v2.manifest["content_id"] == v1.manifest["content_id"]
    assert v2.manifest["counts"] == v1.manifest["counts"]
    assert pq.read_metadata(v2.path / "annotations.parquet").num_rows == (
        v1.manifest["counts"]["annotations"])
    assert registry.verify(emu.batch_id, 2).ok
    jobs = [ds.jobs.sort_values("job_id").reset_index(drop=True) for ds in (v1, v2)]
    assert jobs[0].equals(jobs[1])  # v1's jobs table was not damaged: the same rows


def test_a_damaged_raw_object_is_downloaded_again(emu: Emulator, tmp_path: Path) -> None:
    v1 = do_pull(emu, tmp_path)
    registry = Registry(tmp_path)
    sha = next(info["result_sha256"] for info in v1.manifest["jobs"].values()
               if info["result_sha256"])
    obj = tmp_path / "objects" / sha[:2] / sha[2:]
    obj.write_bytes(b'{"tampered": true}')
    assert not registry.verify(emu.batch_id).ok
    emu.reset_stats()
    again = do_pull(emu, tmp_path)
    assert _bodies(emu) == 1  # only the damaged one
    assert registry.verify().ok  # the object is whole again, so v1 is sound
    assert again.manifest["content_id"] == v1.manifest["content_id"]


def test_a_sound_latest_version_is_still_unchanged(emu: Emulator, tmp_path: Path) -> None:
    v1 = do_pull(emu, tmp_path)
    emu.reset_stats()
    assert do_pull(emu, tmp_path).version == v1.version
    assert _bodies(emu) == 0
    assert Registry(tmp_path).versions(emu.batch_id) == [1]
