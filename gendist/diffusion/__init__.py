r"""Diffusion models: linear SDE processes, denoisers, the probability-flow likelihood, and the model as a module.

``Diffusion(shape)`` is the module; ``Diffusion(shape)()`` its distribution, a
:class:`~gendist.distributions.diffusion.DiffusionDistribution`. The samplers are plain functions in
:mod:`gendist.samplers`, the training loss in :mod:`gendist.inference`.
"""

from gendist.diffusion.denoiser import PARAMETRIZATIONS, Denoiser
from gendist.diffusion.likelihood import divergence, probability_flow_log_prob
from gendist.diffusion.model import Diffusion
from gendist.diffusion.nets import FourierFeatures, NoiseEmbedding, ScoreMLP
from gendist.diffusion.sde import DDPM, SDE, SPACINGS, VE, VP, ReverseSDE, SubVP, make_sde, timesteps

__all__ = [
    "DDPM",
    "PARAMETRIZATIONS",
    "SDE",
    "SPACINGS",
    "VE",
    "VP",
    "Denoiser",
    "Diffusion",
    "FourierFeatures",
    "NoiseEmbedding",
    "ReverseSDE",
    "ScoreMLP",
    "SubVP",
    "divergence",
    "make_sde",
    "probability_flow_log_prob",
    "timesteps",
]
