r"""Bayesian inference in Pyro with gendist models: flow autoguides, amortized guides, deep priors, NeuTra."""

from gendist.bayes.amortized import AutoAmortizedFlow
from gendist.bayes.autoflow import AutoFlow, identity_init
from gendist.bayes.neutra import NeuTraModel
from gendist.bayes.prior import Prior, StochasticLogProb
from gendist.bayes.svi import svi

__all__ = ["AutoAmortizedFlow", "AutoFlow", "NeuTraModel", "Prior", "StochasticLogProb", "identity_init", "svi"]
