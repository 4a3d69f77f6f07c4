r"""The families of the command and the ``--model`` names (and saved recipe classes) each one answers for."""

from __future__ import annotations

from gendist._recipes import RECIPES
from gendist.cli.autoregressive import Autoregressive
from gendist.cli.diffusion import Diffusion
from gendist.cli.energy import EnergyModels
from gendist.cli.errors import UsageError
from gendist.cli.family import Family
from gendist.cli.flows import Flows
from gendist.cli.gan import GANs
from gendist.cli.latent import Latent

__all__ = ["FAMILIES", "MODELS", "family_of_class", "family_of_model"]

FAMILIES: tuple[Family, ...] = (Flows(), Autoregressive(), Latent(), Diffusion(), EnergyModels(), GANs())
r"""Every family, in the order of ``--help``."""

MODELS: dict[str, Family] = {name: family for family in FAMILIES for name in family.models}
r"""``--model`` name -> its family."""


def family_of_model(name: str) -> Family:
    r"""The family of a ``--model`` name; :class:`UsageError` for an unknown one."""
    if name not in MODELS:
        raise UsageError(f"unknown model {name!r}: choose one of {', '.join(MODELS)}")
    return MODELS[name]


def family_of_class(name: str) -> Family:
    r"""The family of a saved run's recipe class (or of an older name of it); ``ValueError`` for another class."""
    recipe = RECIPES.get(name)
    current = recipe.__name__ if recipe is not None else name
    for family in FAMILIES:
        if current in family.models.values():
            return family
    raise ValueError(f"the model class {name!r} is none the command saves")
