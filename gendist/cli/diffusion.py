r"""``--model diffusion``: a diffusion model of the standardized data, its process, loss and sampler."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn
from torch import Tensor

from gendist.cli.data import Data
from gendist.cli.errors import UsageError
from gendist.cli.family import Family, Group, recipe_default
from gendist.diffusion import DiffusionModel
from gendist.inference import WEIGHTINGS
from gendist.nn.denoiser import PARAMETRIZATIONS
from gendist.samplers import SAMPLERS
from gendist.sde import SDES, VP

__all__ = ["Diffusion"]


def _default(argument: str) -> Any:
    return recipe_default(DiffusionModel, argument)


class Diffusion(Family):
    r"""Diffusion models: denoising score matching; NLL by the probability-flow ODE."""

    title = "diffusion models (--model diffusion)"
    models = {"diffusion": "DiffusionModel"}
    own_loss = True
    examples = (
        "gendist fit --data moons --model diffusion --weighting likelihood --importance --out runs/moons-diffusion",
    )

    def add_arguments(self, group: Group) -> None:
        group.add_argument("--sde", default=_default("sde"), choices=SDES, help="the process")
        group.add_argument("--parametrization", default=_default("parametrization"), choices=PARAMETRIZATIONS,
                           help="what the network predicts (gaussian: around the data's full-covariance Gaussian)")
        group.add_argument("--weighting", default=_default("weighting"), choices=list(WEIGHTINGS),
                           help="the loss weighting over time")
        group.add_argument("--importance", action="store_true", help="importance-sample the training times")
        group.add_argument("--t-min", type=float, default=_default("t_min"),
                           help="the smallest time, whose noise level the model's density has (default: the "
                           f"process's, {recipe_default(VP, 't_min'):g}; on dequantized data, a noise of a fraction "
                           "of a bin: see docs/diffusion.md)")
        group.add_argument("--fourier-features", type=int, default=_default("features"),
                           help="random Fourier features of the network input (fine detail in low dimension)")
        group.add_argument("--fourier-scale", type=float, default=_default("feature_scale"),
                           help="their frequency scale")
        group.add_argument("--dropout", type=float, default=_default("dropout"),
                           help="dropout of the network (small data)")
        group.add_argument("--sampler", default=_default("sampler"),
                           help=f"the sampler of `gendist sample`: {', '.join(SAMPLERS)} (rk45 solves the ODE "
                           "the likelihood solves)")
        group.add_argument("--sampler-steps", type=int, default=_default("steps"), help="the sampler's steps")

    def recipe(self, args: argparse.Namespace, data: Data) -> nn.Module:
        if args.sampler_steps < 1:
            raise UsageError(f"--sampler-steps must be >= 1, got {args.sampler_steps}")
        return DiffusionModel(data.features, sde=args.sde, parametrization=args.parametrization,
                              hidden=tuple(args.hidden), weighting=args.weighting, importance=args.importance,
                              sampler=args.sampler, steps=args.sampler_steps, t_min=args.t_min,
                              features=args.fourier_features, feature_scale=args.fourier_scale, dropout=args.dropout)

    def prepare(self, model: nn.Module, standardized: Callable[[], Tensor]) -> None:
        r"""The ``gaussian`` parametrization: fit the Gaussian of the standardized data (a resumed run reloads it)."""
        if model.base.denoiser.parametrization == "gaussian":
            with torch.no_grad():
                model.base.fit_gaussian(standardized())

    def log_prob_kind(self, model: nn.Module, config: dict[str, Any]) -> str:
        return model.base().log_prob_kind

    def note(self, kind: str, args: argparse.Namespace) -> str:
        return f" (probability-flow ODE, {'Hutchinson estimate' if kind == 'estimate' else 'exact divergence'})"
