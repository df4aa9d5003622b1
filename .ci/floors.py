"""Print the lowest version pyproject.toml allows of each runtime dependency, as pip constraints.

    python .ci/floors.py > floors.txt && pip install -e . -c floors.txt

`make test-floors` installs exactly these and runs the fast tests, so every lower bound we state is one
the suite has passed on.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def floors(extras: tuple[str, ...] = ()) -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    specs = list(project["dependencies"])
    for extra in extras:
        specs += project["optional-dependencies"][extra]
    out = {}
    for spec in specs:
        m = re.match(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?\s*(?:==|>=)\s*([0-9][^,;\s]*)", spec)
        if m:
            out[m.group(1).lower()] = m.group(2)
    return out


def check(extras: tuple[str, ...]) -> int:
    """Say which installed version each floor got; 1 if any is not the floor itself."""
    from importlib.metadata import PackageNotFoundError, version

    from packaging.version import Version

    wrong = 0
    for name, floor in floors(extras).items():
        try:
            have = version(name)
        except PackageNotFoundError:
            have = "missing"
        ok = have != "missing" and Version(have.split("+")[0]) == Version(floor)
        wrong += not ok
        print(f"{'ok ' if ok else 'NOT'} {name:<22} floor {floor:<10} installed {have}")
    return 1 if wrong else 0


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--check"]:
        sys.exit(check(tuple(args[1:])))
    for name, version in floors(tuple(args)).items():
        print(f"{name}=={version}")
