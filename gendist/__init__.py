r"""gendist: deep generative models as composable, Pyro-native torch distributions.

Importing gendist changes no global state (argument validation, default dtype,
RNG) of torch or Pyro.
"""

from gendist import autoregressive, data, distributions, flows, latent, nn, transforms
from gendist.distributions import (
    Autoregressive,
    Ensemble,
    Factorized,
    Flow,
    LatentVariable,
    LazyDistribution,
    LazyTransform,
)

__version__ = "0.1.0"

__all__ = [
    "Autoregressive",
    "Ensemble",
    "Factorized",
    "Flow",
    "LatentVariable",
    "LazyDistribution",
    "LazyTransform",
    "autoregressive",
    "data",
    "distributions",
    "flows",
    "latent",
    "nn",
    "transforms",
]
