"""The lowest version of every core dependency (and of the extras named) that
pyproject.toml allows, as pip constraints; and a check that an install holds exactly those.

    python3 .ci/floors.py print --extra engines > floors.txt      # Python 3.11+ (tomllib)
    python3 -m pip install -c floors.txt -e . pytest …
    python .ci/floors.py check floors.txt         # in that venv, any Python 3.10+

A fresh install resolves the newest versions, so a floor that is too low (a feature the
code uses arrived later) goes unnoticed until a user with an older package installed runs
a pull. Installing the floors and running tests on them catches it. Every core dependency
must state a floor (``>=``); a requirement without one fails here.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_FLOOR = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*([^;]*?)\s*(;.*)?$",
                    re.DOTALL)


def floors(pyproject: Path = ROOT / "pyproject.toml", extras: list[str] | None = None
           ) -> list[str]:
    """``name==floor[ ; markers]`` for each core dependency, in pyproject order, then for
    each dependency of the ``extras`` named (a package two extras share, once)."""
    import tomllib  # only here: the check runs on Python 3.10 too

    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    deps = [(dep, "core dependency") for dep in project["dependencies"]]
    optional = project.get("optional-dependencies", {})
    for extra in extras or []:
        if extra not in optional:
            raise SystemExit(f"pyproject.toml has no extra {extra!r}; expected one of "
                             f"{', '.join(sorted(optional))}")
        deps += [(dep, f"dependency of the {extra!r} extra") for dep in optional[extra]]
    out, seen = [], set()
    for dep, what in deps:
        match = _FLOOR.match(dep)
        specs = match.group(3).split(",") if match else []
        lows = [s.strip()[2:].strip() for s in specs if s.strip().startswith(">=")]
        if match is None or len(lows) != 1:
            raise SystemExit(f"pyproject.toml: expected the {what} {dep!r} to state one "
                             "floor ('>=' version); state the lowest version it works with")
        if match.group(1).lower() in seen:
            continue
        seen.add(match.group(1).lower())
        marker = " ".join((match.group(4) or "").split())
        out.append(f"{match.group(1)}=={lows[0]}" + (f" {marker}" if marker else ""))
    return out


def check(constraints: Path) -> None:
    """Fail unless every floor in ``constraints`` whose marker holds here is installed at
    exactly that version."""
    from importlib.metadata import PackageNotFoundError, version

    from packaging.requirements import Requirement
    from packaging.version import Version

    wrong, checked = [], 0
    for line in constraints.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate():
            continue  # not for this platform
        (spec,) = req.specifier
        checked += 1
        try:
            got = version(req.name)
        except PackageNotFoundError:
            wrong.append(f"{req.name}: not installed, expected {spec.version}")
            continue
        if Version(got) != Version(spec.version):
            wrong.append(f"{req.name}: {got} installed, expected the floor {spec.version}")
    if wrong or not checked:
        raise SystemExit("not the floors: " + ("; ".join(wrong) or f"none in {constraints}"))
    sys.stdout.write(f"{checked} dependencies at their floors\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    print_cmd = sub.add_parser("print", help="print the floors as pip constraints")
    print_cmd.add_argument("--extra", action="append", default=[], metavar="NAME",
                           help="also the floors of this extra's dependencies (repeatable)")
    check_cmd = sub.add_parser("check", help="check that the installed versions are the floors")
    check_cmd.add_argument("constraints", type=Path, help="what 'print' wrote")
    args = parser.parse_args()
    if args.command == "check":
        check(args.constraints)
    else:
        sys.stdout.write("\n".join(floors(extras=args.extra)) + "\n")


if __name__ == "__main__":
    main()
