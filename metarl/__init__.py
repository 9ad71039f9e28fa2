"""metarl: meta-reinforcement learning for robotics (MAML-TRPO, FOMAML, Reptile)."""

import os

# OpenMP threads that spin while waiting turn any competing process on a small machine into a
# 5-15x slowdown of the meta-update (measured on 2 cores); sleeping waits cost almost nothing
# here. Must be set before torch loads its OpenMP runtime; a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
