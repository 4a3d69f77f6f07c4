r"""``--device``: a torch device that exists here."""

from __future__ import annotations

import torch

from gendist.cli.errors import UsageError

__all__ = ["resolve_device"]


def resolve_device(name: str) -> torch.device:
    r"""The device ``--device`` names; :class:`UsageError` for CUDA without a GPU or a name torch does not know."""
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {name}: no CUDA device is available here; use --device cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise UsageError(f"--device {name}: {e}") from e
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UsageError(f"--device {name}: there are {torch.cuda.device_count()} CUDA devices here (cuda:0 ...)")
    return device
