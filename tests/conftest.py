"""Test-wide setup, before torch or mujoco load: headless EGL rendering, sleeping OpenMP waits
(CI machines are shared), and metarl's own settings (imported first, as a user's script would)."""

import os
from collections.abc import Iterator

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import metarl  # noqa: F401  (sets MKL_CBWR before torch loads MKL)

# isort: split
import pytest
import torch


@pytest.fixture(autouse=True)
def _keep_torch_threads() -> Iterator[None]:
    """Runs set the process's torch thread count; give every other test its own back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
