r"""``gendist fit``: data and flags in, a trained run folder out (under torchrun, rank 0 writes it)."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from torch import Tensor

from gendist.cli.data import Data, load_data
from gendist.cli.device import resolve_device
from gendist.cli.errors import UsageError
from gendist.cli.family import Family
from gendist.cli.registry import family_of_model
from gendist.cli.runs import CHECKPOINT, build_model, check_resumable, check_run_folder, save_plots, save_run
from gendist.config import config
from gendist.flows import Standardize
from gendist.inference import History, fit, nll_objective
from gendist.inference.distributed import barrier, init_from_env, is_main, world_size
from gendist.metrics import bits_per_dim

__all__ = ["cmd_fit"]

Loss = Callable[[nn.Module, tuple[Tensor, ...]], Tensor]

DEQUANTIZED_DRAWS = 10
r"""Dequantization noises the NLL of dequantized data is averaged over."""

SCHEDULE, CLIP_GRAD = "cosine", 10.0  # of every run


def _check_training_flags(args: argparse.Namespace) -> None:
    if args.epochs < 1 or args.batch_size < 1:
        raise UsageError(f"--epochs and --batch-size must be >= 1, got {args.epochs} and {args.batch_size}")
    if not args.lr > 0:
        raise UsageError(f"--lr must be > 0, got {args.lr}")
    if args.patience is not None and args.patience < 0:
        raise UsageError(f"--patience must be >= 0, got {args.patience}")
    if args.checkpoint_every < 0:
        raise UsageError(f"--checkpoint-every must be >= 0, got {args.checkpoint_every}")
    if args.batch_size % world_size():
        raise UsageError(f"--batch-size {args.batch_size} is not divisible by the {world_size()} processes "
                         "(each takes an equal share of every batch)")


def own_loss(m: nn.Module, batch: tuple[Tensor, ...]) -> Tensor:
    r"""A model's own loss; on continuous data, under the data's standardization :math:`x = t(y)`:
    :math:`-\log p(x) = -\log p(y) + \log |\det \partial x / \partial y|`."""
    x = batch[0]
    if not hasattr(m, "base"):
        return m.loss(x)
    t = m.transforms[-1]()
    y = t.inv(x)
    return m.base.loss(y) + t.log_abs_det_jacobian(y, x).mean()


def _objective(family: Family, levels: int | None) -> Loss:
    r"""What ``fit`` minimizes; dequantized data (``levels``) gets fresh noise in training, none in validation."""

    def noisy(m: nn.Module, x: Tensor) -> Tensor:
        return x + torch.rand_like(x) if levels and m.training else x

    def own(m: nn.Module, batch: tuple[Tensor, ...]) -> Tensor:
        return own_loss(m, (noisy(m, batch[0]),))

    def nll(m: nn.Module, batch: tuple[Tensor, ...]) -> Tensor:
        return -m().log_prob(noisy(m, batch[0])).mean()

    return own if family.own_loss else nll if levels else nll_objective


def _standardize(model: nn.Module, family: Family, train: Tensor, levels: int | None, seed: int) -> None:
    r"""Fit the model's standardization layer (and whatever else the family fits) to the training data."""

    def dequantize(x: Tensor) -> Tensor:
        return x + torch.rand_like(x) if levels else x

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        fitted = Standardize.from_data(dequantize(train)).to(train.device)
    model.transforms[-1].load_state_dict(fitted.state_dict())
    family.prepare(model, lambda: model.transforms[-1]().inv(dequantize(train)))


@dataclass
class _Job:
    r"""A checked ``fit``: where it writes, its data, its model and how it treats the data."""

    out: Path
    device: torch.device
    family: Family
    data: Data
    train: Tensor  # on the device
    run: dict[str, Any]  # config.json
    model: nn.Module
    levels: int | None  # levels of dequantized data; None where the data is modelled as it is
    discrete: bool  # integer levels modelled as they are
    noise: Callable[[Tensor], Tensor]  # the fixed dequantization noise of validation and scoring


def _prepare(args: argparse.Namespace) -> _Job:
    r"""Check the flags, the folder and the data, and build the model (standardized on the training data)."""
    out = Path(args.out)
    device = resolve_device(args.device)
    init_from_env(device)  # torchrun: one process group; alone: nothing
    _check_training_flags(args)
    family = family_of_model(args.model)
    check_run_folder(out, args.force, args.resume)
    data = load_data(args.data, args.columns, args.seed)
    levels = family.data_levels(args, data)
    torch.manual_seed(args.seed)
    train = data.train.to(device)
    run = {"model": config(family.build(args, data)), "features": data.features, "data": args.data,
           "columns": data.names, "levels": levels, "image_shape": data.image_shape, "seed": args.seed}
    model = build_model(run).to(device)  # from the config, as `sample` and `evaluate` will rebuild it
    if not any(p.requires_grad for p in model.parameters()):
        raise UsageError(f"--model {args.model} with these flags has no parameters to train")
    discrete = family.is_discrete(model, levels)
    if discrete:
        levels = None  # a discrete model: NLL of the integers (exact, or estimated for latent models), no dequantizing
        family.prepare(model, lambda: train)
    else:
        _standardize(model, family, train, levels, args.seed)
    if args.resume:
        check_resumable(out, model, world_size())
    g = torch.Generator().manual_seed(args.seed + 1)

    def noise(x: Tensor) -> Tensor:
        return x + torch.rand(x.shape, generator=g).to(x) if levels else x

    return _Job(out, device, family, data, train, run, model, levels, discrete, noise)


def cmd_fit(args: argparse.Namespace) -> int:
    r"""Fit ``--model`` to ``--data`` and write the run folder ``--out`` (under torchrun: rank 0 writes)."""
    job = _prepare(args)
    valid = job.noise(job.data.valid).to(job.device)
    barrier()  # every rank has checked the flags and the folder before rank 0 creates it
    if is_main():
        job.out.mkdir(parents=True, exist_ok=True)
    barrier()
    objective = job.family.objective(args, job.levels)
    if objective is None:
        objective = _objective(job.family, job.levels)
    start = time.perf_counter()
    try:
        history = fit(job.model, job.train, valid=valid,
                      objective=objective, epochs=args.epochs, batch_size=args.batch_size,
                      lr=args.lr, schedule=SCHEDULE, clip_grad=CLIP_GRAD, seed=args.seed, patience=args.patience,
                      checkpoint_dir=job.out / CHECKPOINT.parent, checkpoint_every=args.checkpoint_every,
                      resume=args.resume, progress=not args.quiet and is_main())
    except FloatingPointError as e:  # the loss diverged: the learning rate's doing, not a bug
        raise UsageError(f"training diverged ({e}); try a smaller --lr than {args.lr:g}") from e
    if is_main():
        _finish(job, history, time.perf_counter() - start, args)
    return 0


def _scores(job: _Job) -> dict[str, float]:
    r"""NLL (and bits/dim of discrete data) of each split."""
    scores = {}
    draws = DEQUANTIZED_DRAWS if job.levels else 1
    with torch.no_grad():
        for split in ("train", "valid", "test"):
            x = getattr(job.data, split)
            nll = sum(float(-job.model().log_prob(job.noise(x).to(job.device)).mean()) for _ in range(draws)) / draws
            scores[f"{split}_nll"] = nll
            if job.levels or job.discrete:
                scores[f"{split}_bits_per_dim"] = bits_per_dim(nll, job.data.features, scale=1.0)
    return scores


def _summary(job: _Job, scores: dict[str, float], metrics: dict[str, Any], args: argparse.Namespace) -> list[str]:
    data = job.data
    line = (f"test NLL {scores['test_nll']:.4f} nats" + job.family.note(metrics["log_prob_kind"], args)
            + job.family.summary(metrics))
    if job.levels or job.discrete:
        line += f"   test bits/dim {scores['test_bits_per_dim']:.3f}"
    if data.entropy is not None:
        line += f"   entropy H {data.entropy:.4f}   NLL - H {metrics['test_nll_minus_entropy']:+.4f}"
    return [line, *([data.reference] if data.reference else [])]


def _finish(job: _Job, history: History, seconds: float, args: argparse.Namespace) -> None:
    r"""Score the trained model, write metrics, model, config and plots, and print the summary."""
    job.model.eval()
    extra = job.family.finish(job.model, job.train, args)  # e.g. an energy's log Z, which the scores need
    data = job.data
    if not job.family.density:  # an implicit model: scored on its samples
        scores = job.family.sample_scores(job.model, data, job.device, args.seed)
        lines = [job.family.sample_summary(scores)]
        scores = {"test_sample_scores": scores}
    else:
        scores = _scores(job)
    metrics: dict[str, Any] = {
        **scores, "train_seconds": round(history.seconds or seconds, 2), "epochs": history.epoch,
        "steps": history.step, "best_epoch": history.best_epoch, "stopped_early": history.stopped_early,
        "data": {"name": args.data, "features": data.features, "levels": job.levels,
                 "sizes": {k: len(getattr(data, k)) for k in ("train", "valid", "test")}},
        "model": job.run["model"], "history": {"step_loss": history.step_loss, "epoch_valid": history.epoch_valid},
        "log_prob_kind": job.family.log_prob_kind(job.model, job.run["model"]), **extra,
    }
    if data.entropy is not None and job.family.density:
        metrics["entropy"] = data.entropy
        metrics["test_nll_minus_entropy"] = scores["test_nll"] - data.entropy
    save_run(job.out, job.model, job.run, metrics)
    save_plots(job.out, job.model, data, history, job.device, n=job.family.plot_samples, density=job.family.density)
    for line in _summary(job, scores, metrics, args) if job.family.density else lines:
        print(line)
    print(f"wrote {job.out}/metrics.json, model.pt, config.json")
