"""Print pip constraints that pin every core dependency to the lowest version pyproject.toml
allows.

    python3 .ci/floors.py > floors.txt
    python3 -m pip install -c floors.txt -e . pytest …
    python3 .ci/floors.py --check       # what is installed is the floors

A fresh install resolves the newest versions, so a floor that is too low (a feature the
code uses arrived later) goes unnoticed until a user with an older package installed runs
a pull. Installing the floors and running tests on them catches it. Every core dependency
must state a floor (``>=``); a requirement without one fails here.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_FLOOR = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*>=\s*([^,;\s]+)[^;]*(;.*)?$",
                    re.DOTALL)


def _name(text: str) -> str:
    return re.sub(r"[-_.]+", "-", text).lower()


def floors(pyproject: Path = ROOT / "pyproject.toml") -> dict[str, str]:
    """Normalized package name → ``name==floor[ ; markers]`` for each core dependency."""
    deps = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["dependencies"]
    out = {}
    for dep in deps:
        match = _FLOOR.match(dep)
        if match is None:
            raise SystemExit(f"pyproject.toml: the core dependency {dep!r} has no floor "
                             "('>=' version); state the lowest version it works with")
        name, _, version, markers = match.groups()
        marker = " ".join((markers or "").split())
        out[_name(name)] = f"{name}=={version}" + (f" {marker}" if marker else "")
    return out


def check() -> None:
    """Fail unless every core dependency installed here is at its floor."""
    from importlib.metadata import PackageNotFoundError, version

    wrong, checked = [], 0
    for name, pin in floors().items():
        if ";" in pin:
            continue  # a platform-dependent package: may rightly be absent
        checked += 1
        want = pin.split("==", 1)[1]
        try:
            got = version(name)
        except PackageNotFoundError:
            got = "not installed"
        if _padded(got) != _padded(want):
            wrong.append(f"{name}: {got}, expected the floor {want}")
    if wrong:
        raise SystemExit("not the floors: " + "; ".join(wrong))
    sys.stdout.write(f"{checked} core dependencies at their floors\n")


def _padded(text: str) -> tuple[int, ...]:
    parts = [int(p) for p in re.findall(r"\d+", text)[:3]]
    return tuple(parts + [0] * (3 - len(parts)))


def main() -> None:
    if sys.argv[1:] == ["--check"]:
        check()
        return
    sys.stdout.write("\n".join(floors().values()) + "\n")


if __name__ == "__main__":
    main()
