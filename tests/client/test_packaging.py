"""persistence_client is an installable, typed package of its own."""

from __future__ import annotations

import os
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


def test_the_installed_wheel_imports_on_its_own(tmp_path):
    # given the wheel, installed into a directory of its own
    source = tmp_path / "src"
    shutil.copytree(ROOT / "persistence_client", source, ignore=shutil.ignore_patterns("__pycache__"))
    wheels, target = tmp_path / "wheels", tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(source)],
                   check=True, capture_output=True, cwd=tmp_path)  # fmt: skip
    (wheel,) = wheels.glob("*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, cwd=tmp_path)  # fmt: skip

    # when it is imported from outside the repository (httpx comes from this environment)
    script = (
        "import persistence_client as pc, pathlib; "
        "print(pc.__file__); print(pc.PersistenceClient.__name__, pc.AsyncPersistenceClient.__name__); "
        "print((pathlib.Path(pc.__file__).parent / 'py.typed').exists())"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "PYTHONPATH": str(target)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )

    # then the installed copy is the one imported, whole and typed
    location, names, typed = result.stdout.split("\n")[:3]
    assert location.startswith(str(target))
    assert names == "PersistenceClient AsyncPersistenceClient"
    assert typed == "True"


def test_it_passes_mypy_strict():
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "persistence_client"],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout
