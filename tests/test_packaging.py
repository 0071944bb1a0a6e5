"""The wheel (not only the editable install) carries the package, its data, and runs from any folder."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp)],
        check=True, cwd=tmp,
    )
    (wheel,) = tmp.glob("rnnplay-*.whl")
    site = tmp / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
        check=True, cwd=tmp,
    )
    return wheel, site


def test_wheel_ships_corpora_and_styles(installed_wheel):
    wheel, _ = installed_wheel
    names = zipfile.ZipFile(wheel).namelist()
    corpora = [n for n in names if n.startswith("rnnplay/corpora/") and n.endswith(".txt")]
    assert len(corpora) >= 3, names
    assert "rnnplay/corpora/README.md" in names
    assert any(n.startswith("rnnplay/tui/") and n.endswith(".tcss") for n in names), names
    # every subpackage in the source tree made it into the wheel
    for init in (ROOT / "rnnplay").rglob("__init__.py"):
        rel = init.relative_to(ROOT).as_posix()
        assert rel in names, f"{rel} missing from the wheel: add its package to pyproject.toml"


def test_installed_wheel_runs_from_another_folder(installed_wheel, tmp_path):
    _, site = installed_wheel
    env = dict(os.environ, PYTHONPATH=str(site))
    code = "import rnnplay, sys; print(rnnplay.__file__); from rnnplay.cli import main; sys.exit(main(['corpora']))"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    first, rest = out.stdout.split("\n", 1)
    assert first.startswith(str(site)), f"imported the source tree, not the wheel: {first}"
    assert "python" in rest  # the run-time corpus from the standard library is listed
