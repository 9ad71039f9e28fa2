"""metarl: meta-reinforcement learning for robotics (MAML-TRPO, FOMAML, Reptile)."""

import os

# How long an idle OpenMP thread spins before it sleeps. GNU OpenMP's default (300,000 spins)
# turns any competing process on a small machine into a many-fold slowdown of the meta-update.
# Sleeping at once (OMP_WAIT_POLICY=PASSIVE) is safe but pays a wake-up in each of the update's
# thousands of parallel regions. A short spin keeps the idle speed and bounds the loss under
# contention (the README's "Threads" section has the measurements). Must be set before torch
# loads its OpenMP runtime; a user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT wins.
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ.setdefault("GOMP_SPINCOUNT", "10000")

# MKL may pick kernels by memory alignment, so the same product can round differently when the
# allocator hands out differently aligned buffers (seen: the meta-gradient of one batch differed
# by 1e-7 between the first and later calls in one process). Bit-identical resume needs the same
# numbers whatever the allocation history; strict conditional reproducibility costs nothing
# measurable here.
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")

__version__ = "0.1.0"
