r"""``--model made | nade | pixelcnn | wavenet | transformer``: autoregressive models and their conditionals."""

from __future__ import annotations

import argparse

import torch.nn as nn

from gendist import autoregressive
from gendist.autoregressive import Conditional, DiscretizedLogisticMixture, NormalMixture
from gendist.cli.data import Data
from gendist.cli.errors import UsageError
from gendist.cli.family import Family, Group, conditional, recipe_default

__all__ = ["Autoregressive"]


class Autoregressive(Family):
    r"""Autoregressive models: exact discrete NLL on levels, Gaussian mixtures on continuous data."""

    title = "autoregressive models (--model made, nade, pixelcnn, wavenet, transformer)"
    models = {"made": "MADE", "nade": "NADE", "pixelcnn": "PixelCNN", "wavenet": "WaveNet",
              "transformer": "Transformer"}
    discrete = True
    plot_samples = 200  # a sample takes one network pass per value
    examples = (
        "gendist fit --data digits --model made --hidden 512 --out runs/digits-made   # exact discrete NLL",
        "gendist fit --data mnist --model pixelcnn --layers 6 --channels 32 --out runs/mnist-pixelcnn",
    )

    def add_arguments(self, group: Group) -> None:
        group.add_argument("--family", default="auto", choices=["auto", "logistic"],
                           help="the conditionals: auto (Bernoulli, categorical, or a Gaussian mixture for "
                           "continuous data) or logistic (discretized logistic mixture)")
        group.add_argument("--components", type=int, default=recipe_default(NormalMixture, "components"),
                           help="mixture components of the conditionals")
        group.add_argument("--orders", type=int, default=recipe_default(autoregressive.MADE, "orders"),
                           help="made: orders sharing the weights, averaged as an ensemble")

    def _conditional(self, args: argparse.Namespace, levels: int | None) -> Conditional:
        if not levels:
            return NormalMixture(args.components)
        if args.family == "logistic":
            return DiscretizedLogisticMixture(levels, args.components)
        return conditional(levels)

    def recipe(self, args: argparse.Namespace, data: Data) -> nn.Module:
        D, levels, image = data.features, data.levels, data.image_shape
        if args.model == "pixelcnn":
            if image is None or not levels:
                raise UsageError("--model pixelcnn needs image data with levels (digits or mnist)")
            kwargs = {"shape": (1, *image), "channels": args.channels, "layers": args.layers}
        elif args.model in ("transformer", "wavenet"):
            kwargs = {"length": D, "layers": args.layers}
            kwargs["d_model" if args.model == "transformer" else "channels"] = args.channels
        elif args.model == "nade":
            kwargs = {"features": D, "hidden": args.hidden[0]}
        else:
            kwargs = {"features": D, "hidden": tuple(args.hidden), "orders": args.orders}
        cls = getattr(autoregressive, self.models[args.model])
        return cls(family=self._conditional(args, levels), **kwargs)
