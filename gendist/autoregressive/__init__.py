r"""Autoregressive models as modules: ``model(context)`` returns an :class:`~gendist.Autoregressive`.

The per-position families live in :mod:`gendist.distributions.conditionals`
and are re-exported here.
"""

from gendist.autoregressive.core import ARModule
from gendist.autoregressive.made import MADE
from gendist.autoregressive.nade import NADE
from gendist.autoregressive.pixelcnn import PixelCNN
from gendist.autoregressive.transformer import Transformer
from gendist.autoregressive.wavenet import WaveNet
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
    "PixelCNN",
    "WaveNet",
    "NADE",
    "Transformer",
    "ARModule",
    "Bernoulli",
    "Categorical",
    "Conditional",
    "DiscretizedLogisticMixture",
    "Normal",
    "NormalMixture",
]
