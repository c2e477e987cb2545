"""Id validation: unsafe ids are refused before they become part of any path."""

from __future__ import annotations

from pathlib import Path

import pytest

from playment_datasets.api.ids import validate_id
from playment_datasets.errors import InvalidIdError, PlaymentDatasetsError
from playment_datasets.registry.registry import Registry


@pytest.mark.parametrize(
    "value",
    ["fde5ert6-eb32-481a-807a-03a0428ca836", "a", "A.b_c-9", "x" * 128, "batch.v2", "1575822103"],
)
def test_accepts_opaque_ids(value: str) -> None:
    assert validate_id(value) == value


@pytest.mark.parametrize(
    "value",
    ["", ".", "..", ".hidden", "../etc", "a/b", "a\\b", "a\x00b", "x" * 129, "x" * 200,
     "a b", "é", "a\nb", "~", "C:"],
)  # fmt: skip
def test_rejects_unsafe_ids(value: str) -> None:
    with pytest.raises(InvalidIdError) as info:
        validate_id(value, "batch id")
    msg = str(info.value)
    assert msg.startswith("invalid batch id ")
    assert "expected 1–128 characters" in msg
    assert "Check the id you copied from Playment." in msg
    assert "\x00" not in msg and "\n" not in msg  # escapes are shown, never raw
    assert isinstance(info.value, PlaymentDatasetsError) and isinstance(info.value, ValueError)


def test_long_values_are_truncated_in_the_message() -> None:
    with pytest.raises(InvalidIdError) as info:
        validate_id("y" * 5000, "job id")
    msg = str(info.value)
    assert len(msg) < 400
    assert "5000 characters" in msg


def test_nul_is_shown_with_repr() -> None:
    with pytest.raises(InvalidIdError, match=r"'a\\x00b'"):
        validate_id("a\x00b")


def test_non_strings_are_rejected() -> None:
    with pytest.raises(InvalidIdError, match="type int"):
        validate_id(12, "project id")  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["../x", "a/b", "a\x00b", "z" * 200])
def test_registry_rejects_bad_ids_before_touching_disk(tmp_path: Path, bad: str) -> None:
    root = tmp_path / "reg"
    reg = Registry(root)
    with pytest.raises(InvalidIdError):
        reg.open_staging("proj", bad)
    with pytest.raises(InvalidIdError):
        reg.open_staging(bad, "batch")
    with pytest.raises(InvalidIdError):
        reg.load(bad)
    with pytest.raises(InvalidIdError):
        reg.versions(bad)
    assert not root.exists()
    assert list(tmp_path.iterdir()) == []
