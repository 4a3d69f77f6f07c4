r"""What a family of models gives the command: its flags, its ``--model`` names, and how ``fit`` treats it.

A family module (``flows``, ``autoregressive``, ``latent``, ``diffusion``,
``energy``) subclasses :class:`Family` once; :mod:`gendist.cli.registry` lists them.
"""

from __future__ import annotations

import argparse
import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

import pyro.distributions as dist
import torch.nn as nn
from torch import Tensor
from torch.distributions.transforms import ReshapeTransform

from gendist.autoregressive import Bernoulli, Categorical, Conditional
from gendist.cli.data import Data
from gendist.cli.errors import user_input
from gendist.flows import FlowModule, Standardize

__all__ = ["Family", "Flat", "FlatWithLoss", "Group", "Loss", "conditional", "recipe_default"]

Group = argparse._ArgumentGroup  # what ``parser.add_argument_group`` returns
Loss = Callable[[nn.Module, tuple[Tensor, ...]], Tensor]  # a training loss of ``fit``: (model, batch) -> loss


def recipe_default(recipe: type, argument: str) -> Any:
    r"""The default of a recipe's argument: a flag whose default belongs to the recipe takes it from here."""
    return inspect.signature(recipe).parameters[argument].default


def conditional(levels: int) -> Conditional:
    r"""The exact conditional of discrete data: Bernoulli for two levels, categorical for more."""
    return Bernoulli() if levels == 2 else Categorical(levels)


class Flat(nn.Module):
    r"""An image model seen as a model of flat rows (the command keeps every data set as rows)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, c: Tensor | None = None) -> dist.TransformedDistribution:
        d = self.model(c)
        return dist.TransformedDistribution(d, [ReshapeTransform(d.event_shape, (d.event_shape.numel(),))])


class FlatWithLoss(Flat):
    r"""A :class:`Flat` image model with its own training loss (a VQ-VAE's), of flat rows."""

    def loss(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        return self.model.loss(x.reshape(x.shape[:-1] + self.model.shape), c)


class Family(ABC):
    r"""One family of models on the command line."""

    title: ClassVar[str]  #: the title of its group of flags in ``gendist fit --help``
    models: ClassVar[dict[str, str]]  #: ``--model`` name -> the recipe's class name
    discrete: ClassVar[bool] = False  #: models the integer levels of discrete data as they are (no dequantizing)
    own_loss: ClassVar[bool] = False  #: trained on the model's own loss, not on its NLL
    density: ClassVar[bool] = True  #: has a log-density to score (a GAN has none: it is scored on its samples)
    plot_samples: ClassVar[int] = 2000  #: samples drawn for samples.png
    examples: ClassVar[tuple[str, ...]] = ()  #: command lines for the examples of ``--help``

    @abstractmethod
    def add_arguments(self, group: Group) -> None:
        r"""Add the family's own flags to its group of ``gendist fit``."""

    @abstractmethod
    def recipe(self, args: argparse.Namespace, data: Data) -> nn.Module:
        r"""The recipe ``--model`` names, built from the flags for ``data``; :class:`UsageError` for bad flags."""

    def build(self, args: argparse.Namespace, data: Data) -> nn.Module:
        r""":meth:`recipe`, with the library's ``ValueError`` about an argument reported as the user's."""
        with user_input(ValueError):
            return self.recipe(args, data)

    def model(self, recipe: nn.Module, features: int, levels: int | None) -> nn.Module:
        r"""A run's model around its recipe: under the data's standardization, or as a model of flat rows."""
        if not (self.discrete and levels):  # a continuous density, in the data's units
            return FlowModule([Standardize(features)], features=features, base=recipe)
        if len(recipe.shape) == 1:
            return recipe
        return FlatWithLoss(recipe) if callable(getattr(recipe, "loss", None)) else Flat(recipe)

    def prepare(self, model: nn.Module, standardized: Callable[[], Tensor]) -> None:
        r"""Fit what the model takes from its standardized training data (drawn when called) before training
        (the training rows as they are, for a model of discrete levels)."""
        return None

    def data_levels(self, args: argparse.Namespace, data: Data) -> int | None:
        r"""The levels of discrete data as ``--model`` sees them (a table of 0/1 columns may be binary to one)."""
        return data.levels

    def is_discrete(self, model: nn.Module, levels: int | None) -> bool:
        r"""Whether the run models the integer levels as they are (no dequantizing, no standardization)."""
        return self.discrete and bool(levels)

    def objective(self, args: argparse.Namespace, levels: int | None) -> Loss | None:
        r"""The family's own training loss of the run's model (``levels``: of dequantized data), or None for
        ``fit``'s choice: the model's own loss (:attr:`own_loss`) or its NLL."""
        return None

    def finish(self, model: nn.Module, train: Tensor, args: argparse.Namespace) -> dict[str, Any]:
        r"""What the family computes once the weights are final, before the model is scored (an energy's
        :math:`\log Z`); the extra entries of ``metrics.json``."""
        return {}

    def log_prob_kind(self, model: nn.Module, config: dict[str, Any]) -> str:
        r"""What the reported NLL is: ``"exact"``, ``"estimate"`` or ``"bound"``."""
        return "exact"

    def note(self, kind: str, args: argparse.Namespace) -> str:
        r"""What the printed test NLL is, in words (appended to its line)."""
        return ""

    def sample_scores(self, model: nn.Module, data: Data, device: Any, seed: int) -> dict[str, Any]:
        r"""The scores of a family without a density (:attr:`density` False), from its samples."""
        raise NotImplementedError(f"{type(self).__name__} has a density: its runs are scored by their NLL")

    def sample_summary(self, scores: dict[str, Any]) -> str:
        r"""The printed line of :meth:`sample_scores`."""
        return ", ".join(f"{k} {v}" for k, v in scores.items())

    def summary(self, metrics: dict[str, Any]) -> str:
        r"""More of the printed test NLL's line, from the metrics (those :meth:`finish` added)."""
        return ""
