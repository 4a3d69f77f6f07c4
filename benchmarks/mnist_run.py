r"""What the binarized-MNIST benchmarks share: a resumable, logged training run and the result file."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from gendist.inference import History, fit
from gendist.io import atomic_write


def train(
    model: torch.nn.Module,
    x: torch.Tensor,
    valid: torch.Tensor,
    args: argparse.Namespace,
    epochs: int | None = None,
    resume: bool | None = None,
) -> tuple[History, float]:
    r"""``fit`` with one log line per epoch and a checkpoint per epoch in ``args.out``; returns the seconds too."""
    start = time.perf_counter()
    per_epoch, running = len(x) // args.batch, []

    def log(step: int, loss: float) -> None:
        running.append(loss)
        if step % per_epoch == 0:
            minutes = (time.perf_counter() - start) / 60
            print(
                f"epoch {step // per_epoch}: train loss {sum(running) / len(running):.2f} ({minutes:.1f} min)",
                flush=True,
            )
            running.clear()

    history = fit(
        model,
        x,
        valid=valid,
        epochs=args.epochs if epochs is None else epochs,
        batch_size=args.batch,
        lr=args.lr,
        patience=args.patience,
        seed=args.seed,
        checkpoint_dir=args.out,
        checkpoint_every=per_epoch if args.out else None,
        resume=args.resume if resume is None else resume,
        progress=sys.stderr.isatty(),
        callback=log,
    )
    return history, time.perf_counter() - start


def settings(args: argparse.Namespace) -> dict:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}


def save(result: dict, out: Path | None) -> None:
    r"""Print the result and write it to ``out/result.json``."""
    print(json.dumps(result, indent=1))
    if out is not None:
        atomic_write(Path(out) / "result.json", lambda tmp: Path(tmp).write_text(json.dumps(result, indent=1)))
