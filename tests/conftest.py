"""Test-wide setup, before torch or mujoco load: headless EGL rendering, sleeping OpenMP waits."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
