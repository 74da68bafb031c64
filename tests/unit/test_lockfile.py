"""The lockfiles cover every dependency pyproject.toml declares, at a version inside its range.

`make` installs from requirements.lock alone (`--no-deps`) and the Docker image from
requirements.runtime.lock, so a dependency added to pyproject.toml without `make lock` would be
missing at run time on a fresh machine; these tests say so at once.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
FULL, RUNTIME = "requirements.lock", "requirements.runtime.lock"


def _locked(name: str) -> dict[str, str]:
    text = (ROOT / name).read_text()
    pins = re.findall(r"^([A-Za-z0-9_.\-]+)==([^\s\\]+)", text, re.M)
    return {canonicalize_name(package): version for package, version in pins}


def _declared(*, dev: bool) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"])
    if dev:
        for extra in project.get("optional-dependencies", {}).values():
            lines += extra
    return [Requirement(line) for line in lines]


@pytest.mark.parametrize(("lockfile", "dev"), [(FULL, True), (RUNTIME, False)])
def test_every_declared_dependency_is_locked_inside_its_range(lockfile: str, dev: bool) -> None:
    locked = _locked(lockfile)
    problems = []
    for req in _declared(dev=dev):
        version = locked.get(canonicalize_name(req.name))
        if version is None:
            problems.append(f"{req.name} is not in {lockfile}")
        elif not req.specifier.contains(version, prereleases=True):
            problems.append(f"{req.name}=={version} is outside {req.specifier}")
    assert not problems, "run `make lock`: " + "; ".join(problems)


def test_the_runtime_lock_pins_the_versions_ci_tests() -> None:
    full, runtime = _locked(FULL), _locked(RUNTIME)
    assert {name: v for name, v in runtime.items() if full.get(name) != v} == {}


@pytest.mark.parametrize("lockfile", [FULL, RUNTIME])
def test_every_locked_package_carries_a_hash(lockfile: str) -> None:
    text = (ROOT / lockfile).read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9_.\-]+==)", text)
    unhashed = [e.split("==")[0] for e in entries[1:] if "--hash=sha256:" not in e]
    assert not unhashed
