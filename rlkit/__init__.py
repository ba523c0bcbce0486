"""rlkit: the framework every agent and env shares (CLI, config, runs, logging, checkpoints, eval)."""

__version__ = "0.1.0"
