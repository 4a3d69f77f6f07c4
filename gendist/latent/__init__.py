r"""Latent-variable models as modules: ``model(c)`` returns a :class:`~gendist.distributions.latent.LatentVariable`.

Each model has a prior :math:`p(z)`, a decoder :math:`p(x \mid z)` and an
encoder :math:`q(z \mid x)` (the guide); it trains natively (:meth:`LatentModel.loss`
with :func:`gendist.inference.fit`) or with Pyro's SVI (:meth:`LatentModel.model`,
:meth:`LatentModel.guide`).
"""

from gendist.distributions.latent import VQVAEDistribution
from gendist.latent.core import OBJECTIVES, LatentModel
from gendist.latent.hierarchical import HierarchicalVAE
from gendist.latent.nets import Decoder, GaussianEncoder
from gendist.latent.priors import VampPrior
from gendist.latent.vae import IWAE, VAE
from gendist.latent.vqvae import VQVAE, CodeUsage

__all__ = ["OBJECTIVES", "Decoder", "GaussianEncoder", "HierarchicalVAE", "IWAE", "LatentModel", "VAE", "VampPrior"]
__all__ += ["CodeUsage", "VQVAE", "VQVAEDistribution"]
