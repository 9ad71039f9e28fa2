"""Test-wide setup: MuJoCo renders headless through EGL (Mesa llvmpipe on CPU-only machines)."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
