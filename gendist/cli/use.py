r"""``gendist sample`` and ``gendist evaluate``: draw from a fitted run, score new rows under it."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from gendist.cli.device import resolve_device
from gendist.cli.errors import UsageError, user_input
from gendist.cli.registry import family_of_class
from gendist.cli.runs import check_output, load_run, write_array
from gendist.data import load_table

__all__ = ["cmd_evaluate", "cmd_sample"]


def cmd_sample(args: argparse.Namespace) -> int:
    r"""Write ``-n`` samples of a run to ``-o`` (in the data's units; columns named as fitted)."""
    out = check_output(args.output, args.force)
    if args.n < 1:
        raise UsageError(f"-n must be >= 1, got {args.n}")
    run, model = load_run(args.run, resolve_device(args.device))
    torch.manual_seed(args.seed)
    with torch.no_grad():
        x = model().sample((args.n,)).cpu().numpy()
    write_array(out, x, run.get("columns"))
    print(f"wrote {args.n} samples of dimension {x.shape[-1]} to {out}")
    return 0


def _rows(path: Path, columns: list[str] | None) -> torch.Tensor:
    r"""The rows of a table, by the fitted columns where a CSV has them (else all of its columns)."""
    with user_input(FileNotFoundError, ValueError, OSError):
        try:
            x, _ = load_table(path, columns=columns if path.suffix == ".csv" else None)
        except ValueError as e:
            if not (columns and "column" in str(e)):
                raise
            x, _ = load_table(path)
    return x


def cmd_evaluate(args: argparse.Namespace) -> int:
    r"""Write the log-density of each row of ``--data`` under a run to ``-o``."""
    out = check_output(args.output, args.force)
    run, model = load_run(args.run, resolve_device(args.device))
    if not family_of_class(run["model"]["class"]).density:
        raise UsageError(f"{args.run}: a {run['model']['class']} has no log-density to evaluate (log_prob_kind "
                         "'none'); draw from it with `gendist sample` and compare the samples with your data "
                         "(gendist.metrics: classifier_two_sample_test, prdc, energy_distance)")
    columns = args.columns.split(",") if args.columns else run.get("columns") or None
    path = Path(args.data)
    x = _rows(path, columns)
    if x.shape[-1] != run["features"]:
        raise UsageError(f"{path}: rows have {x.shape[-1]} values, the model was fitted to {run['features']}")
    like = next(model.parameters())
    with torch.no_grad(), user_input(ValueError, prefix=f"{path}: "):  # rows the model cannot score (support)
        logp = model().log_prob(x.to(device=like.device, dtype=like.dtype)).cpu().numpy()
    write_array(out, logp, ["log_prob"])
    print(f"mean log-density {float(np.mean(logp)):.4f} nats over {len(logp)} rows; wrote {out}")
    return 0
