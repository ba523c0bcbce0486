"""Pick the torch device: `device=auto` uses CUDA when present, else the CPU."""

from __future__ import annotations

import torch

from rlkit.errors import UserError


def resolve_device(name: str) -> torch.device:
    """'auto' | 'cpu' | 'cuda' -> a torch.device; asking for CUDA without a GPU is a user error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("device=cuda but torch sees no CUDA GPU here; use device=auto or device=cpu")
    return torch.device(name)
