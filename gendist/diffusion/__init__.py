r"""Diffusion models: linear SDE processes, denoisers, the probability-flow likelihood, and the model as a module.

``DiffusionModel(shape)`` is the module; ``DiffusionModel(shape)()`` its distribution, a
:class:`~gendist.distributions.Diffusion`. The samplers are plain functions in
:mod:`gendist.samplers`, the training loss in :mod:`gendist.inference`.
"""

from gendist.diffusion.model import DiffusionModel
from gendist.nn.denoiser import PARAMETRIZATIONS, Denoiser
from gendist.nn.score import FourierFeatures, NoiseEmbedding, ScoreMLP
from gendist.samplers.likelihood import divergence, probability_flow_log_prob
from gendist.sde import DDPM, SDE, SPACINGS, VE, VP, ReverseSDE, SubVP, make_sde, timesteps

__all__ = [
    "DDPM",
    "PARAMETRIZATIONS",
    "SDE",
    "SPACINGS",
    "VE",
    "VP",
    "Denoiser",
    "DiffusionModel",
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
