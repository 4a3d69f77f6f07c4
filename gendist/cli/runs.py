r"""Run folders: the model a config describes, loading and writing a run, and the output files of a command.

A run folder holds ``config.json`` (the recipe, its arguments and the data's
description), ``model.pt`` (a ``state_dict``), ``metrics.json``, plots, and
``train/last.pt``, the checkpoint ``--resume`` continues from. Nothing there
(nor an output file) is overwritten without ``--force``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from gendist import plots
from gendist.cli.data import Data
from gendist.cli.errors import UsageError, user_input
from gendist.cli.registry import family_of_class
from gendist.config import from_config
from gendist.inference import History
from gendist.inference.checkpoint import FORMAT, load_checkpoint
from gendist.io import atomic_write

__all__ = ["CHECKPOINT", "build_model", "check_output", "check_resumable", "check_run_folder", "load_run",
           "save_plots", "save_run", "write_array"]

CHECKPOINT = Path("train") / "last.pt"
r"""Where in a run folder ``fit`` keeps the checkpoint ``--resume`` continues from."""

OUTPUTS = (".npy", ".csv")
r"""The file types ``sample`` and ``evaluate`` write."""


def build_model(run: dict[str, Any]) -> nn.Module:
    r"""The model of a run: the recipe of its config, with its standardization layer (continuous data)
    or as a model of flat rows (images)."""
    family = family_of_class(run["model"]["class"])
    return family.model(from_config(run["model"]), run["features"], run.get("levels"))


def load_run(path: str, device: torch.device | None = None) -> tuple[dict[str, Any], nn.Module]:
    r"""Load a run folder written by ``gendist fit``: its config and the trained model."""
    folder = Path(path)
    cfg_path, weights = folder / "config.json", folder / "model.pt"
    if not cfg_path.is_file() or not weights.is_file():
        raise UsageError(f"{folder} is not a finished gendist run (config.json and model.pt are needed)")
    try:
        run = json.loads(cfg_path.read_text())
        model = build_model(run)
    except (ValueError, KeyError, TypeError) as e:  # the file is the user's: edited, or from elsewhere
        raise UsageError(f"{cfg_path} is not a valid gendist run config ({e})") from e
    try:
        model.load_state_dict(torch.load(weights, weights_only=True, map_location="cpu"))
    except Exception as e:  # truncated, corrupt, or from another model
        raise UsageError(f"{weights} cannot be loaded ({type(e).__name__}); the file is corrupt or incomplete") from e
    model.eval()
    return run, model.to(device) if device is not None else model


def check_run_folder(out: Path, force: bool, resume: bool) -> None:
    r"""Refuse to write into an existing folder unless asked; ``--resume`` needs its checkpoint."""
    if out.exists() and not (force or resume):
        raise UsageError(f"{out} exists; use --force to overwrite it or --resume to continue its run")
    if resume and not (out / CHECKPOINT).is_file():
        raise UsageError(f"--resume: {out} has no checkpoint ({CHECKPOINT.as_posix()}) to continue from")


def _shapes(state: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state.items() if isinstance(v, torch.Tensor)}


def check_resumable(out: Path, model: nn.Module, processes: int) -> None:
    r"""``--resume``: the checkpoint must be readable, of this version's ``fit``, of as many processes as this
    run has, and of this model (the same parameters and shapes): what the flags and torchrun decide."""
    path = out / CHECKPOINT
    with user_input(ValueError, FileNotFoundError, prefix="--resume: "):
        state = load_checkpoint(path)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise UsageError(f"--resume: {path} is not a checkpoint of this version of gendist; start the run afresh "
                         "with --force")
    if state.get("world_size") != processes:
        raise UsageError(f"--resume: {path} was written by a run on {state.get('world_size')} process(es), this one "
                         f"has {processes}; resume it with as many (torchrun --nproc-per-node)")
    saved = state.get("model")
    if not isinstance(saved, dict) or _shapes(saved) != _shapes(model.state_dict()):
        raise UsageError(f"--resume: {path} is the checkpoint of another model; give the flags its run was "
                         "started with, or drop --resume")


def save_run(out: Path, model: nn.Module, run: dict[str, Any], metrics: dict[str, Any]) -> None:
    r"""Write ``model.pt``, ``config.json`` and ``metrics.json``, each atomically."""
    atomic_write(out / "model.pt", lambda p: torch.save(model.state_dict(), p))
    atomic_write(out / "config.json", lambda p: Path(p).write_text(json.dumps(run, indent=2)))
    atomic_write(out / "metrics.json", lambda p: Path(p).write_text(json.dumps(metrics, indent=2)))


def save_plots(out: Path, model: nn.Module, data: Data, history: History, device: torch.device, n: int,
               density: bool = True) -> None:
    r"""``samples.png``, ``loss.png`` and (2-D data with a ``density``) ``density.png``, when matplotlib is
    installed."""
    try:
        with torch.no_grad():
            fake = model().sample((n,)).cpu()
        real = data.test[:n]
        plots.plot_samples(real, fake, out / "samples.png", image_shape=data.image_shape, names=data.names)
        per_epoch = max(1, history.step // max(1, history.epoch))
        plots.plot_loss(history.step_loss, history.epoch_valid, per_epoch, out / "loss.png")
        if data.features == 2 and density:
            plots.plot_density_2d(lambda x: model().log_prob(x.to(device)).cpu(), out / "density.png", data=real)
    except ImportError:  # no matplotlib
        return


def check_output(path: str, force: bool) -> Path:
    r"""The ``-o`` file of ``sample``/``evaluate``: a .npy or .csv in an existing folder, kept unless ``--force``."""
    out = Path(path)
    if out.suffix not in OUTPUTS:
        raise UsageError(f"-o {path}: the output must end in {' or '.join(OUTPUTS)}")
    if out.exists() and not force:
        raise UsageError(f"{out} exists; use --force to overwrite it")
    if not out.parent.exists():
        raise UsageError(f"-o {path}: the folder {out.parent} does not exist")
    return out


def write_array(out: Path, array: np.ndarray, header: list[str] | None) -> None:
    r"""Write rows to a ``.npy`` or a ``.csv`` (with ``header``), atomically."""

    def npy(p: str) -> None:
        with open(p, "wb") as f:
            np.save(f, array)

    def csv(p: str) -> None:
        np.savetxt(p, array.reshape(len(array), -1), delimiter=",", header=",".join(header or []), comments="")

    atomic_write(out, npy if out.suffix == ".npy" else csv)
