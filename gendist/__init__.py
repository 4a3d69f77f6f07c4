r"""gendist: deep generative models as composable, Pyro-native torch distributions.

Importing gendist changes no global state (argument validation, default dtype,
RNG) of torch or Pyro.
"""

from gendist import autoregressive, data, distributions, flows, nn, transforms
from gendist.distributions import Autoregressive, Ensemble, Flow, LazyDistribution, LazyTransform

__version__ = "0.1.0"

__all__ = [
    "Autoregressive",
    "Ensemble",
    "Flow",
    "LazyDistribution",
    "LazyTransform",
    "autoregressive",
    "data",
    "distributions",
    "flows",
    "nn",
    "transforms",
]
