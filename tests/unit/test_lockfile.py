"""The lockfile covers every dependency pyproject.toml declares, at a version inside its range.

`make` installs from requirements.lock alone (`--no-deps`), so a dependency added to pyproject.toml
without `make lock` would be missing at run time on a fresh machine; this says so at once.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]


def _locked() -> dict[str, str]:
    pins = re.findall(
        r"^([A-Za-z0-9_.\-]+)==([^\s\\]+)", (ROOT / "requirements.lock").read_text(), re.M
    )
    return {canonicalize_name(name): version for name, version in pins}


def _declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        lines += extra
    return [Requirement(line) for line in lines]


def test_every_declared_dependency_is_locked_inside_its_range() -> None:
    locked = _locked()
    problems = []
    for req in _declared():
        version = locked.get(canonicalize_name(req.name))
        if version is None:
            problems.append(f"{req.name} is not in requirements.lock")
        elif not req.specifier.contains(version, prereleases=True):
            problems.append(f"{req.name}=={version} is outside {req.specifier}")
    assert not problems, "run `make lock`: " + "; ".join(problems)


def test_every_locked_package_carries_a_hash() -> None:
    text = (ROOT / "requirements.lock").read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9_.\-]+==)", text.split("\n", 1)[1])
    unhashed = [e.split("==")[0] for e in entries if "==" in e and "--hash=sha256:" not in e]
    assert not unhashed
