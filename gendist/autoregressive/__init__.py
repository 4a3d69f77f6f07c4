r"""Autoregressive models as modules: ``model(context)`` returns an :class:`~gendist.Autoregressive`.

The per-position families live in :mod:`gendist.distributions.conditionals`
and are re-exported here.
"""

from gendist.autoregressive.core import ARModule, check_shape
from gendist.autoregressive.made import MADE
from gendist.distributions.conditionals import (
    Bernoulli,
    Categorical,
    Conditional,
    DiscretizedLogisticMixture,
    Normal,
    NormalMixture,
)

__all__ = [
    "MADE",
    "ARModule",
    "Bernoulli",
    "Categorical",
    "Conditional",
    "DiscretizedLogisticMixture",
    "Normal",
    "NormalMixture",
    "check_shape",
]
