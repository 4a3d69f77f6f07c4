r"""Ready-made latent-variable models: VAE (and beta-VAE), IWAE."""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn as nn

from gendist._checks import check_integer, check_shape
from gendist._recipes import Recorded
from gendist.distributions.bases import GaussianMixture, StandardNormal
from gendist.distributions.conditionals import Conditional
from gendist.distributions.lazy import LazyDistribution
from gendist.flows import IAF, MAF
from gendist.latent.core import LatentModel
from gendist.latent.nets import Decoder, GaussianEncoder
from gendist.latent.priors import VampPrior

__all__ = ["VAE", "IWAE", "ENCODERS", "PRIORS"]

ENCODERS = ("diag", "full", "flow")
PRIORS = ("normal", "mixture", "flow", "vamp")


def _encoder(kind: str, features: int, latent: int, hidden: Sequence[int], steps: int, activation) -> LazyDistribution:  # noqa: ANN001
    if kind in ("diag", "full"):
        return GaussianEncoder(features, latent, hidden, kind, activation)
    if kind == "flow":  # a Gaussian guide followed by inverse autoregressive steps, all conditioned on the data
        base = GaussianEncoder(features, latent, hidden, "diag", activation)
        return IAF(latent, context=features, transforms=steps, hidden=tuple(hidden)[-1:] * 2, base=base)
    raise ValueError(f"encoder must be one of {ENCODERS}, got {kind!r}")


def _prior(kind: str, latent: int, components: int, steps: int, encoder: LazyDistribution, features: int):  # noqa: ANN202
    if kind == "normal":
        return StandardNormal(latent)
    if kind == "mixture":
        return GaussianMixture(latent, components)
    if kind == "flow":
        return MAF(latent, transforms=steps, hidden=(max(64, 4 * latent),) * 2)
    if kind == "vamp":
        return VampPrior(encoder, features, components)
    raise ValueError(f"prior must be one of {PRIORS}, got {kind!r}")


class VAE(Recorded, LatentModel):
    r"""A variational autoencoder (Kingma & Welling, 2014): perceptron encoder and decoder, a choice of prior and guide.

    .. math:: p(x \mid c) = \int \prod_i p(x_i \mid \theta_i(z, c))\, p(z)\, dz, \qquad
        q(z \mid x, c) \approx p(z \mid x, c)

    ``objective="elbo"`` trains the ELBO, with ``beta`` > 1 a :math:`\beta`-VAE
    (Higgins et al., 2017) and ``warmup`` a linear KL warm-up;
    ``objective="iwae"`` trains the :math:`k`-sample IWAE bound (see :class:`IWAE`).
    ``vae(c)`` is the marginal distribution; its ``log_prob`` is the
    importance-sampled estimate with ``particles`` samples (``log_prob_kind = "estimate"``,
    a lower bound in expectation).

    Arguments:
        shape: the event shape of :math:`x` (an int for vectors).
        latent: the dimension of :math:`z`.
        family: the decoder's per-entry family: ``"bernoulli"``, ``"normal"``, ``Normal(scale)``
            (fixed scale), ``Categorical(K)``, ``DiscretizedLogisticMixture(L, k)``.
        hidden: the hidden layer sizes of the encoder and of the decoder.
        context: the context size (0 for none); the encoder and decoder see it.
        encoder: the guide: ``"diag"`` or ``"full"`` Gaussian, or ``"flow"`` (a Gaussian then IAF steps).
        prior: ``"normal"``, ``"mixture"`` (of ``components`` Gaussians), ``"flow"`` (a MAF),
            or ``"vamp"`` (a VampPrior with ``components`` pseudo-inputs).
        components: the mixture's or the VampPrior's components.
        flow_steps: the autoregressive steps of a flow guide or prior.
        learned_scale: a ``"normal"`` decoder's scales as free parameters, not network outputs.
        objective, beta, warmup, k, particles, chunk: see :class:`~gendist.latent.LatentModel`.
        activation: the activation module class.

    Example:
        >>> vae = VAE(8, latent=2, hidden=(32,), beta=4.0)
        >>> x = vae().sample((5,))
        >>> vae.loss(x).shape
        torch.Size([])

    References:
        | Auto-Encoding Variational Bayes (Kingma & Welling, 2014) https://arxiv.org/abs/1312.6114
        | beta-VAE (Higgins et al., 2017) https://openreview.net/forum?id=Sy2fzU9gl
    """

    def __init__(
        self,
        shape: int | Sequence[int],
        latent: int = 32,
        family: Conditional | str = "bernoulli",
        hidden: Sequence[int] = (256, 256),
        context: int = 0,
        encoder: str = "diag",
        prior: str = "normal",
        components: int = 10,
        flow_steps: int = 2,
        learned_scale: bool = False,
        objective: str = "elbo",
        beta: float = 1.0,
        warmup: int = 0,
        k: int = 1,
        particles: int = 100,
        chunk: int | None = None,
        activation: type[nn.Module] = nn.ReLU,
    ) -> None:
        shape = check_shape(shape)
        latent = check_integer("latent", latent, 1)
        context = check_integer("context", context, 0)
        components = check_integer("components", components, 1)
        flow_steps = check_integer("flow_steps", flow_steps, 1)
        features = shape.numel() + context
        q = _encoder(encoder, features, latent, hidden, flow_steps, activation)
        if prior == "vamp" and context:
            raise ValueError("prior='vamp' mixes posteriors of pseudo-inputs: it takes no context (context=0)")
        p = _prior(prior, latent, components, flow_steps, q, features)
        decoder = Decoder(latent + context, shape, family, tuple(reversed(tuple(hidden))), learned_scale, activation)
        super().__init__(p, q, decoder, shape, context, objective, beta, warmup, k, particles, chunk)


class IWAE(VAE):
    r"""An importance-weighted autoencoder (Burda et al., 2016): a :class:`VAE` trained on the :math:`k`-sample bound.

    .. math:: \mathcal{L}_k = \mathbb{E}\Big[\log \frac{1}{k} \sum_{j=1}^k \frac{p(x, z_j)}{q(z_j \mid x)}\Big]
        \le \log p(x)

    Same arguments as :class:`VAE`, with ``objective="iwae"`` and ``k=50`` by default.

    References:
        | Importance Weighted Autoencoders (Burda et al., 2016) https://arxiv.org/abs/1509.00519
    """

    def __init__(self, shape: int | Sequence[int], latent: int = 32, k: int = 50, **kwargs) -> None:
        kwargs.setdefault("objective", "iwae")
        super().__init__(shape, latent, k=k, **kwargs)
