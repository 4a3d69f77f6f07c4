r"""Checkpoints of :func:`~gendist.inference.fit`: written whole or not at all, read safely, restored exactly.

A checkpoint (``last.pt``) holds what the run needs to continue as if never
stopped: the model's ``state_dict``, every objective's optimizer and schedule,
the history, the position in the epoch and the shuffle stream at its start,
the best weights so far, and, for every process (``ranks[r]``), its random
stream and its own state objects (replay buffers, chains). It records the
world size that wrote it. It is read with ``weights_only=True``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.nn as nn
from torch import Tensor

from gendist.inference.objective import Stateful

__all__ = ["FORMAT", "load_checkpoint"]

#: The layout of the checkpoints ``fit`` writes.
FORMAT = "gendist.fit/2"


class _Trained(Protocol):
    key: str
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler | None


def load_checkpoint(path: str | os.PathLike) -> dict:
    r"""Load a checkpoint written by :func:`~gendist.inference.fit` (``weights_only=True``: no arbitrary objects).

    Example:
        >>> import tempfile
        >>> load_checkpoint(tempfile.mkdtemp() + "/none.pt")
        Traceback (most recent call last):
        ...
        FileNotFoundError: no checkpoint at ...
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        return torch.load(path, weights_only=True, map_location="cpu")
    except Exception as e:  # truncated or foreign files
        raise ValueError(f"{path} is not a readable gendist checkpoint ({type(e).__name__}: {e})") from e


def to_cpu(obj: Any) -> Any:
    """``obj`` with every tensor inside (dicts, lists, tuples) detached and on the CPU."""
    if isinstance(obj, Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_cpu(v) for v in obj)
    return obj


def rank_state(extra: Mapping[str, Stateful], device: torch.device) -> dict[str, Any]:
    """What this process alone holds: its random streams and its state objects."""
    mine = {"rng": torch.get_rng_state(), "state": {k: to_cpu(v.state_dict()) for k, v in extra.items()}}
    if device.type == "cuda":
        mine["cuda_rng"] = torch.cuda.get_rng_state(device)
    return mine


def payload(
    *,
    world: int,
    stages: Sequence[str],
    model: nn.Module,
    runs: Sequence[_Trained],
    history: dict,
    batch: int,
    shuffle: Tensor,
    ranks: list[dict],
    best: dict | None,
) -> dict[str, Any]:
    """The checkpoint's content (see the module's docstring)."""
    out = {
        "format": FORMAT,
        "world_size": world,
        "stages": list(stages),
        "model": model.state_dict(),
        "optimizers": {r.key: r.opt.state_dict() for r in runs},
        "schedulers": {r.key: r.sched.state_dict() for r in runs if r.sched is not None},
        "history": history,
        "batch": batch,
        "shuffle_rng": shuffle,
        "ranks": ranks,
    }
    if best is not None:
        out["best"] = best
    return out


def restore(
    saved: dict,
    ckpt: Path,
    model: nn.Module,
    runs: Sequence[_Trained],
    extra: Mapping[str, Stateful],
    world: int,
    rank: int,
) -> tuple[dict, dict | None, int]:
    """Load a checkpoint into the run and this process's RNG; returns the history, the best weights, the batch."""
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        found = saved.get("format", "an older one") if isinstance(saved, dict) else type(saved).__name__
        raise ValueError(f"{ckpt} is not a checkpoint of this version of gendist's fit (its format is "
                         f"{found!r}, expected {FORMAT!r}); start the run afresh")
    if saved["world_size"] != world:
        raise ValueError(
            f"fit: {ckpt} was written by a run on {saved['world_size']} process(es), this run has {world}: "
            "each process's random stream and share of every batch depend on the world size, so the run "
            f"could not continue exactly; resume it with {saved['world_size']} process(es) or start afresh"
        )
    keys = sorted(r.key for r in runs)
    if sorted(saved["optimizers"]) != keys:
        raise ValueError(f"fit: {ckpt} has the objectives {sorted(saved['optimizers'])}, this run has {keys}")
    mine = saved["ranks"][rank]
    missing = sorted(set(extra) - set(mine["state"]))
    if missing:
        raise ValueError(f"fit: {ckpt} has no state {missing} (it has {sorted(mine['state'])})")
    model.load_state_dict(saved["model"])
    for r in runs:
        r.opt.load_state_dict(saved["optimizers"][r.key])
        if r.sched is not None and r.key in saved["schedulers"]:
            r.sched.load_state_dict(saved["schedulers"][r.key])
    for name, obj in extra.items():
        obj.load_state_dict(mine["state"][name])
    torch.set_rng_state(mine["rng"])
    if "cuda_rng" in mine and torch.cuda.is_available():
        torch.cuda.set_rng_state(mine["cuda_rng"], next(model.parameters()).device)
    return saved["history"], saved.get("best"), saved["batch"]
