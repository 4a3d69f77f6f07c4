r"""Every family's distribution (``Flow``, ``Autoregressive``, ``LatentVariable``, ``VQVAEDistribution``,
``Diffusion``, ``EnergyBased``, ``Implicit``) and the pieces they share: the honesty attribute, bases, lazy modules,
per-position families."""

from gendist.distributions.autoregressive import Autoregressive, Ensemble
from gendist.distributions.base import LOG_PROB_KINDS, Honest, LogProbKind
from gendist.distributions.bases import DiagNormal, Fixed, GaussianMixture, StandardNormal, as_base
from gendist.distributions.chain import Chain
from gendist.distributions.diffusion import Diffusion
from gendist.distributions.energy import EnergyBased, LogPartition, LogPartitionUnknown
from gendist.distributions.factorized import Factorized
from gendist.distributions.flow import Flow
from gendist.distributions.implicit import Implicit, LogProbUnavailable
from gendist.distributions.kl import FAMILIES  # registers kl_divergence for every family
from gendist.distributions.latent import LatentVariable, VQVAEDistribution
from gendist.distributions.lazy import LazyDistribution, LazyTransform

__all__ = [
    "LOG_PROB_KINDS",
    "Autoregressive",
    "Chain",
    "Ensemble",
    "DiagNormal",
    "Diffusion",
    "EnergyBased",
    "FAMILIES",
    "Factorized",
    "Fixed",
    "Flow",
    "GaussianMixture",
    "Honest",
    "Implicit",
    "LatentVariable",
    "LazyDistribution",
    "LazyTransform",
    "LogPartition",
    "LogPartitionUnknown",
    "LogProbKind",
    "LogProbUnavailable",
    "StandardNormal",
    "VQVAEDistribution",
    "as_base",
]
