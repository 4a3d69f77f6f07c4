r"""gendist: deep generative models as composable, Pyro-native torch distributions.

Every subpackage is here after ``import gendist`` (``gendist.flows``, ``gendist.diffusion``,
``gendist.inference``, ``gendist.samplers``, ``gendist.metrics``, ...), and so is every
family's distribution class (``gendist.Flow``, ``gendist.Autoregressive``,
``gendist.LatentVariable``, ``gendist.Diffusion``, ...). The layout and its one-way
floors are described in ``docs/architecture.md``.

Importing gendist changes no global state (argument validation, default dtype,
RNG) of torch or Pyro.
"""

from gendist import (
    autoregressive,
    bayes,
    data,
    diffusion,
    distributions,
    ebm,
    flows,
    gan,
    inference,
    interop,
    latent,
    metrics,
    nn,
    samplers,
    sde,
    testing,
    transforms,
)
from gendist import config as config  # the top floor below the command line: it reads every family's recipes
from gendist.bayes import AutoFlow
from gendist.config import from_config
from gendist.distributions import (
    Autoregressive,
    Diffusion,
    EnergyBased,
    Ensemble,
    Factorized,
    Flow,
    Implicit,
    LatentVariable,
    LazyDistribution,
    LazyTransform,
    VQVAEDistribution,
)

__version__ = "0.1.0"

__all__ = [
    "AutoFlow",
    "Autoregressive",
    "Diffusion",
    "EnergyBased",
    "Ensemble",
    "Factorized",
    "Flow",
    "Implicit",
    "LatentVariable",
    "LazyDistribution",
    "LazyTransform",
    "VQVAEDistribution",
    "autoregressive",
    "bayes",
    "config",
    "data",
    "diffusion",
    "distributions",
    "ebm",
    "flows",
    "from_config",
    "gan",
    "inference",
    "interop",
    "latent",
    "metrics",
    "nn",
    "samplers",
    "sde",
    "testing",
    "transforms",
]
