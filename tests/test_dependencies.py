"""What gets installed is what was tested (issue 13, finding 12): every dependency of
setup.cfg, extras included, is pinned in requirements.lock with its hashes, at a version
its range admits, and the floors stay above the releases with known holes."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
# Versions below these have published vulnerabilities that touch how the bot uses them.
FLOORS = {"tornado": "6.6.1", "jinja2": "3.1.6", "requests": "2.32.4", "urllib3": "2.5"}


def declared() -> list[Requirement]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg", encoding="utf-8")
    lines = cfg["options"]["install_requires"].splitlines()
    for extra in cfg["options.extras_require"].values():
        lines += extra.splitlines()
    return [Requirement(line) for line in lines if line.strip()]


def locked() -> dict[str, tuple[Version, int]]:
    """name → (pinned version, number of hashes)."""
    text = (ROOT / "requirements.lock").read_text(encoding="utf-8")
    pins = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        head = re.match(r"([A-Za-z0-9._-]+)==([^\s\\]+)", block)
        if head:
            pins[canonicalize_name(head[1])] = (Version(head[2]), block.count("--hash=sha256:"))
    return pins


def test_every_declared_dependency_is_pinned_with_hashes_within_its_range():
    pins = locked()
    for requirement in declared():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not in requirements.lock: run `make lock`"
        version, hashes = pins[name]
        assert version in requirement.specifier, f"{name}=={version} is outside {requirement}"
        assert hashes >= 1, f"{name} has no hash"


def test_every_pin_carries_a_hash():
    assert all(hashes for _, hashes in locked().values())


def test_the_floors_stay_above_known_holes():
    ranges = {canonicalize_name(r.name): r.specifier for r in declared()}
    pins = locked()
    for name, floor in FLOORS.items():
        lowest = [Version(s.version) for s in ranges[name] if s.operator == ">="]
        assert lowest and min(lowest) >= Version(floor), f"{name} admits versions < {floor}"
        assert pins[name][0] >= Version(floor)
