r"""A latent-variable model as a module: a prior, a decoder and an encoder (the guide), trained natively or by Pyro."""

from __future__ import annotations

from collections.abc import Sequence

import pyro
import torch
from torch import Tensor
from torch.distributions import Distribution, constraints

from gendist._checks import check_context, check_integer, check_shape
from gendist.distributions.latent import LatentVariable
from gendist.distributions.lazy import LazyDistribution
from gendist.inference.variational import OBJECTIVES, kl_weight, variational_loss

__all__ = ["LatentModel", "OBJECTIVES"]



def _join(v: Tensor, event_dims: int, c: Tensor | None) -> Tensor:
    r"""``v`` with its event flattened, and the context appended: what an encoder or decoder is conditioned on."""
    h = v.flatten(v.dim() - event_dims) if event_dims != 1 else v
    if c is None:
        return h
    return torch.cat([h, c.expand(h.shape[:-1] + c.shape[-1:])], -1)


class _Joined:
    r"""``module(_join(v, event_dims, c))``: a decoder as the likelihood ``(z, c) -> p(x | z, c)``, or an
    encoder as the guide ``(x, c) -> q(z | x, c)``.

    A module-level class rather than a closure, so the marginals holding it pickle.
    """

    def __init__(self, module: LazyDistribution, event_dims: int) -> None:
        self.module, self.event_dims = module, event_dims

    def __call__(self, v: Tensor, c: Tensor | None) -> Distribution:
        return self.module(_join(v, self.event_dims, c))


class LatentModel(LazyDistribution):
    r"""A latent-variable model :math:`p(x \mid c) = \int p(x \mid z, c)\, p(z \mid c)\, dz` with a guide
    :math:`q(z \mid x, c)`, from three modules.

    ``model(c)`` returns the marginal, a :class:`~gendist.distributions.latent.LatentVariable`
    (``log_prob`` is an importance-sampled estimate, a lower bound in expectation).

    Arguments:
        prior: ``prior(c)`` gives :math:`p(z \mid c)` (``prior()`` without a context); any gendist
            module: :class:`~gendist.distributions.StandardNormal`, a flow, a mixture, a :class:`VampPrior`.
        encoder: ``encoder(h)`` gives :math:`q(z \mid x, c)` for ``h`` the flattened :math:`x` followed
            by :math:`c`; a :class:`GaussianEncoder`, or any conditional flow (a flow posterior).
        decoder: ``decoder(h)`` gives :math:`p(x \mid z, c)` for ``h`` the flattened :math:`z` followed
            by :math:`c`; a :class:`Decoder`, or any conditional gendist model (an autoregressive decoder).
        shape: the event shape of :math:`x`.
        context: the context size (0 for none).
        objective: what :meth:`loss` minimizes: ``"elbo"`` (with ``beta`` and ``warmup``) or ``"iwae"`` (with ``k``).
        beta: the weight of the KL term (:math:`\beta`-VAE; 1 is the ELBO).
        warmup: raise the KL weight linearly from 0 to ``beta`` over this many training steps.
        k: the importance samples of the IWAE objective.
        particles: the importance samples of ``log_prob``.
        support: the support of one entry of :math:`x` (read from the decoder when None).
        name: the prefix of the parameters in Pyro's param store.

    Example:
        >>> from gendist.latent import VAE
        >>> vae = VAE(6, latent=2, family="bernoulli", hidden=(16,))
        >>> x = vae().sample((4,))
        >>> vae.elbo(x).shape, vae().log_prob(x).shape
        (torch.Size([4]), torch.Size([4]))
    """

    validate_args: bool | None = None  # set it to make every marginal it builds validate (None: torch's default)

    def __init__(
        self,
        prior: LazyDistribution,
        encoder: LazyDistribution,
        decoder: LazyDistribution,
        shape: int | Sequence[int],
        context: int = 0,
        objective: str = "elbo",
        beta: float = 1.0,
        warmup: int = 0,
        k: int = 1,
        particles: int = 100,
        chunk: int | None = None,
        support: constraints.Constraint | None = None,
        name: str = "latent",
    ) -> None:
        super().__init__()
        self.prior, self.encoder, self.decoder = prior, encoder, decoder
        self.shape = check_shape(shape)
        self.context = check_integer("context", context, 0)
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
        if not (isinstance(beta, (int, float)) and beta >= 0):
            raise ValueError(f"beta must be a number >= 0, got {beta!r}")
        self.objective, self.beta = objective, float(beta)
        self.warmup = check_integer("warmup", warmup, 0)
        self.k = check_integer("k", k, 1)
        self.particles = check_integer("particles", particles, 1)
        self.chunk = None if chunk is None else check_integer("chunk", chunk, 1)
        self._x_support = support
        self.name = name
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))  # training steps seen (KL warm-up)

    # --- the pieces -----------------------------------------------------------------------------

    def _check_context(self, c: Tensor | None, where: str) -> None:
        check_context(c, self.context, where, self._dtype())

    def _check_x(self, x: Tensor, where: str) -> None:
        if not isinstance(x, Tensor):
            raise TypeError(f"{where}: `x` must be a torch.Tensor, got {type(x).__name__}")
        n = len(self.shape)
        if x.dim() < n or x.shape[x.dim() - n :] != self.shape:
            raise ValueError(
                f"{where}: `x` must have shape (..., {', '.join(map(str, self.shape))}) ending in the event shape "
                f"{tuple(self.shape)}, got shape {tuple(x.shape)}"
            )

    def prior_distribution(self, c: Tensor | None = None) -> Distribution:
        r""":math:`p(z \mid c)`."""
        return self.prior(c) if self.context else self.prior()

    def encode(self, x: Tensor, c: Tensor | None = None) -> Distribution:
        r"""The guide :math:`q(z \mid x, c)`, batch shape ``x``'s leading dims."""
        self._check_x(x, "encode")
        self._check_context(c, "encode")
        return self.encoder(_join(x.to(self._dtype()), len(self.shape), c))

    def decode(self, z: Tensor, c: Tensor | None = None) -> Distribution:
        r"""The likelihood :math:`p(x \mid z, c)`, batch shape ``z``'s leading dims."""
        self._check_context(c, "decode")
        return self.decoder(_join(z, self._latent_dims(), c))

    def _latent_dims(self) -> int:
        r"""The event dims of :math:`z`, read once: building a prior can cost a pass (a VampPrior's encoder)."""
        dims = getattr(self, "_zdims", None)
        if dims is None:
            with torch.no_grad():
                dims = self._zdims = len(self.prior_distribution(self._dummy_context()).event_shape)
        return dims

    def _dummy_context(self) -> Tensor | None:
        return torch.zeros(self.context, dtype=self._dtype(), device=self._device()) if self.context else None

    def _dtype(self) -> torch.dtype:
        for t in self.parameters():
            return t.dtype
        for t in self.buffers():
            if t.dtype.is_floating_point:
                return t.dtype
        return torch.get_default_dtype()

    def _device(self) -> torch.device:
        for t in self.parameters():
            return t.device
        return self.steps.device

    def reconstruct(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        r"""The mean of :math:`p(x \mid z)` at :math:`z` the guide's mean (or one draw where it has none)."""
        q = self.encode(x, c)
        try:
            z = q.mean
        except NotImplementedError:
            z = q.sample()
        return self.decode(z, c).mean

    # --- the distribution ----------------------------------------------------------------------

    def forward(self, c: Tensor | None = None) -> LatentVariable:
        self._check_context(c, type(self).__name__)
        prior = self.prior_distribution(c)
        likelihood = _Joined(self.decoder, len(prior.event_shape))
        guide = _Joined(self.encoder, len(self.shape))
        support, rsample = self._likelihood_facts(prior, likelihood, c)
        return LatentVariable(
            prior,
            likelihood,
            guide,
            self.shape,
            c,
            support,
            self.particles,
            self.chunk,
            rsample,
            validate_args=self.validate_args,
            dtype=self._dtype(),
        )

    def _likelihood_facts(self, prior: Distribution, likelihood, c: Tensor | None) -> tuple:  # noqa: ANN001
        r"""The support of one entry of :math:`x` and whether the decoder reparameterizes (read once)."""
        facts = getattr(self, "_facts", None)
        if facts is None:
            with torch.no_grad():  # at z = 0, not a draw: building the marginal leaves the global RNG alone
                z = torch.zeros((1,) + prior.event_shape, dtype=self._dtype(), device=self._device())
                cc = None if c is None else c.reshape(-1, c.shape[-1])[:1]
                px = likelihood(z, cc)
            support = px.support if self._x_support is None else self._x_support
            while isinstance(support, constraints.independent):
                support = support.base_constraint
            facts = (support, bool(px.has_rsample))
            self._facts = facts
        return facts

    # --- objectives ---------------------------------------------------------------------------

    def elbo(self, x: Tensor, c: Tensor | None = None, beta: float = 1.0) -> Tensor:
        r"""One draw of the ELBO per value (:math:`\beta`-weighted KL), shape ``x``'s leading dims."""
        self._check_x(x, "elbo")
        d = self(c)
        return d.elbo(self._validated(d, x), beta)

    def iwae(self, x: Tensor, k: int, c: Tensor | None = None) -> Tensor:
        r"""One draw of the IWAE bound :math:`\mathcal{L}_k` per value."""
        k = check_integer("k", k, 1)
        self._check_x(x, "iwae")
        d = self(c)
        return d.log_prob(self._validated(d, x), k)

    @staticmethod
    def _validated(d: LatentVariable, x: Tensor) -> Tensor:
        inside = d.support.check(x) if x.dtype.is_floating_point else None
        if inside is not None and not bool(inside.all()):
            raise ValueError(
                f"`x` has {int((~inside).sum())} values outside the decoder's support {d._support} "
                f"(a Bernoulli decoder needs 0 or 1, a categorical one integers 0..K-1)"
            )
        return x

    def kl_weight(self) -> float:
        r"""The KL weight of the next training step: ``beta``, ramped up over ``warmup`` steps."""
        return kl_weight(self.beta, self.warmup, int(self.steps))

    def loss(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        r"""The training loss, the mean negative objective (what :func:`gendist.inference.fit` minimizes).

        In ``eval()`` mode (validation) the KL weight is ``beta`` itself, without the warm-up ramp, so
        validation losses of different epochs compare.
        """
        self._check_x(x, "loss")
        d = self(c)
        beta = self.kl_weight() if self.training else self.beta  # validation: no warm-up
        loss = variational_loss(d, self._validated(d, x), self.objective, self.k, beta)
        if self.training:
            self.steps += 1
        return loss

    # --- Pyro ---------------------------------------------------------------------------------

    def model(self, x: Tensor | None = None, c: Tensor | None = None, n: int | None = None) -> Tensor:
        r"""The generative model for Pyro: ``z ~ p(z | c)``, ``x ~ p(x | z, c)`` in a plate over the data.

        Use with :meth:`guide` in ``pyro.infer.SVI``: ``Trace_ELBO`` fits the ELBO,
        ``RenyiELBO(alpha=0, num_particles=k)`` the IWAE bound.
        """
        pyro.module(self.name, self)
        if x is not None:
            self._check_x(x, "model")
        size = x.shape[0] if x is not None else (c.shape[0] if c is not None else n)
        if size is None:
            raise ValueError("model: give the data `x`, a batched context `c`, or the number of draws `n`")
        with pyro.plate(f"{self.name}.data", size):
            z = pyro.sample(f"{self.name}.z", self.prior_distribution(c))
            return pyro.sample(f"{self.name}.x", self.decode(z, c), obs=x)

    def guide(self, x: Tensor, c: Tensor | None = None, n: int | None = None) -> Tensor:
        r"""The guide for Pyro: ``z ~ q(z | x, c)`` in the same plate as :meth:`model`."""
        pyro.module(self.name, self)
        with pyro.plate(f"{self.name}.data", x.shape[0]):
            return pyro.sample(f"{self.name}.z", self.encode(x, c))

    def _apply(self, fn, recurse: bool = True):  # type: ignore[override]
        self._facts = None  # dtype or device changed: read the decoder's facts again
        return super()._apply(fn, recurse)
