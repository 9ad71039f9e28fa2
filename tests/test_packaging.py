"""The wheel installs `metarl` and `metarl.envs` (from envs/) and nothing at the top level besides."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_holds_only_the_metarl_package(tmp_path: Path) -> None:
    pip = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    subprocess.run([*pip, "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("metarl-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")} == {"metarl"}
    assert "metarl/envs/base.py" in names and "metarl/envs/grasping/scene.py" in names
    assert "metarl/py.typed" in names and "metarl/envs/py.typed" in names
    assert not any(n.startswith("envs/") for n in names)
