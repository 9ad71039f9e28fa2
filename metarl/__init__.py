"""metarl: meta-reinforcement learning for robotics (MAML-TRPO, FOMAML, Reptile)."""

__version__ = "0.1.0"
