"""persistence_client is an installable, typed package of its own."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_it_builds_into_a_wheel_with_its_type_marker(tmp_path):
    source = tmp_path / "src"  # a copy: the build leaves build/ and egg-info behind
    shutil.copytree(ROOT / "persistence_client", source, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path),
         str(source)],
        check=True, capture_output=True, cwd=tmp_path,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("persistence_client-1.0.0-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())

    assert {
        "persistence_client/__init__.py",
        "persistence_client/client.py",
        "persistence_client/aio.py",
        "persistence_client/py.typed",
    } <= names
    metadata = next(n for n in names if n.endswith("METADATA"))
    assert "Requires-Dist: httpx" in zipfile.ZipFile(wheel).read(metadata).decode()


def test_it_passes_mypy_strict():
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "persistence_client"],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout
