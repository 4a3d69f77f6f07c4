r"""``--model nsf | maf | iaf | realnvp | nice``: normalizing flows, with ``--transforms`` and ``--bins``."""

from __future__ import annotations

import argparse

import torch.nn as nn

from gendist import flows
from gendist.cli.data import Data
from gendist.cli.errors import UsageError
from gendist.cli.family import Family, Group, recipe_default
from gendist.flows import FlowModule, Standardize

__all__ = ["Flows", "TRANSFORMS"]

TRANSFORMS = recipe_default(flows.NSF, "transforms")
r"""The default number of transforms of every flow (nice's recipe takes 4 on its own)."""

COUPLING = ("realnvp", "nice")  # split the features in two halves


class Flows(Family):
    r"""Normalizing flows: exact density, one pass each way."""

    title = "normalizing flows (--model nsf, maf, iaf, realnvp, nice)"
    models = {"nsf": "NSF", "maf": "MAF", "iaf": "IAF", "realnvp": "RealNVP", "nice": "NICE"}
    examples = (
        "gendist fit --data moons --model nsf --out runs/moons",
        "gendist fit --data digits --model nsf --epochs 100 --out runs/digits",
        "gendist fit --data table.csv --columns a,b,c --model maf --out runs/table",
    )

    def add_arguments(self, group: Group) -> None:
        group.add_argument("--transforms", type=int, default=TRANSFORMS, help="transforms of the flow")
        group.add_argument("--bins", type=int, default=recipe_default(flows.NSF, "bins"), help="spline bins (nsf)")

    def recipe(self, args: argparse.Namespace, data: Data) -> nn.Module:
        if args.transforms < 1:
            raise UsageError(f"--transforms must be >= 1, got {args.transforms}")
        kwargs = {"features": data.features, "transforms": args.transforms, "hidden": tuple(args.hidden)}
        if args.model == "nsf":
            kwargs["bins"] = args.bins
        if args.model in COUPLING and data.features < 2:
            raise UsageError(f"--model {args.model} needs at least 2 features, the data has {data.features}")
        return getattr(flows, self.models[args.model])(**kwargs)

    def model(self, recipe: nn.Module, features: int, levels: int | None) -> nn.Module:
        r"""The flow's own transforms, then the data's standardization, on the flow's base."""
        return FlowModule([*recipe.transforms, Standardize(features)], features=features, base=recipe.base)
