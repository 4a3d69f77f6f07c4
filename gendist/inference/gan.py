r"""Objectives of generative adversarial networks: the critic's and the generator's losses, and regularizers.

A GAN trains two networks against each other: a critic (discriminator) :math:`D` that scores real data high and
fakes low, and a generator :math:`G` whose fakes :math:`G(z)` it learns to score high. Every loss here works on
the critic's scores, logits :math:`D(x) \in \mathbb{R}` (no sigmoid applied), and is written with
:math:`\operatorname{softplus}(t) = \log(1 + e^t)` so that no logit, however large, gives an infinite loss
(:math:`-\log \sigma(t) = \operatorname{softplus}(-t)` and :math:`-\log(1 - \sigma(t)) = \operatorname{softplus}(t)`).

- :func:`discriminator_loss`, :func:`generator_loss`: the losses of :data:`GAN_LOSSES` on scores;
- :func:`gradient_penalty` (WGAN-GP), :func:`r1_penalty`, :func:`r2_penalty` (Mescheder et al., 2018) and
  :func:`feature_matching` (Salimans et al., 2016): regularizers;
- :class:`CriticLoss`, :class:`GeneratorLoss` and :func:`gan_objectives`: the two objectives of
  :func:`~gendist.inference.fit` for a GAN model.

The model is duck-typed (this module imports none): ``model.generator`` and ``model.discriminator`` (the modules
each objective trains), ``model.fake(batch) -> (N, *shape)`` (differentiable fakes for the batch, conditioned on
its context ``batch[1]`` when it has one), ``model.critic(x, c) -> (N,)`` (logits) and
``model.critic_features(x, c) -> (N, F)`` (the critic's penultimate features). A batch is ``(x,)`` or ``(x, c)``.

References:
    | Generative adversarial nets (Goodfellow et al., 2014) https://arxiv.org/abs/1406.2661
    | Wasserstein GAN (Arjovsky et al., 2017) https://arxiv.org/abs/1701.07875
    | Improved training of Wasserstein GANs (Gulrajani et al., 2017) https://arxiv.org/abs/1704.00028
    | Geometric GAN (Lim & Ye, 2017) https://arxiv.org/abs/1705.02894
    | Least squares generative adversarial networks (Mao et al., 2017) https://arxiv.org/abs/1611.04076
    | The relativistic discriminator: a key element missing from standard GAN (Jolicoeur-Martineau, 2018)
    | https://arxiv.org/abs/1807.00734
    | Which training methods for GANs do actually converge? (Mescheder et al., 2018) https://arxiv.org/abs/1801.04406
    | Improved techniques for training GANs (Salimans et al., 2016) https://arxiv.org/abs/1606.03498
    | Analyzing and improving the image quality of StyleGAN (Karras et al., 2020) https://arxiv.org/abs/1912.04958
    | Image-to-image translation with conditional adversarial networks (Isola et al., 2017)
    | https://arxiv.org/abs/1611.07004
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from gendist._checks import check_integer, check_number
from gendist.inference.objective import Batch, Objective

__all__ = [
    "GAN_LOSSES", "AdamFactory", "CriticLoss", "GeneratorLoss", "check_betas", "discriminator_loss",
    "feature_matching", "gan_objectives", "generator_loss", "gradient_penalty", "r1_penalty", "r2_penalty",
]

GAN_LOSSES = ("minimax", "non_saturating", "wasserstein", "hinge", "least_squares", "relativistic")

Critic = Callable[[Tensor, "Tensor | None"], Tensor]


def _kind(kind: object) -> str:
    if kind not in GAN_LOSSES:
        raise ValueError(f"`loss` (the GAN loss) must be one of {', '.join(map(repr, GAN_LOSSES))}, got {kind!r}")
    return kind  # type: ignore[return-value]


def _scores(name: str, value: object, where: str) -> Tensor:
    r"""``value`` if it is a floating-point tensor of shape ``(N,)``, else a clear error."""
    if not isinstance(value, Tensor) or not value.dtype.is_floating_point:
        got = value.dtype if isinstance(value, Tensor) else type(value).__name__
        raise TypeError(f"{where}: `{name}` must be a floating-point tensor of critic scores (logits), got {got}")
    if value.dim() != 1 or value.shape[0] < 1:
        raise ValueError(f"{where}: `{name}` must be the critic's scores, of shape (N,) with N >= 1, "
                         f"got shape {tuple(value.shape)}")
    return value


def discriminator_loss(kind: str, real: Tensor, fake: Tensor) -> Tensor:
    r"""The critic's loss on its scores (logits) of real data, ``real`` :math:`= D(x)`, and of fakes,
    ``fake`` :math:`= D(G(z))`; each term a mean over its examples.

    - ``"minimax"``, ``"non_saturating"`` (Goodfellow et al., 2014): :math:`E[\operatorname{softplus}(-D(x))] +
      E[\operatorname{softplus}(D(G(z)))] = -E \log \sigma(D(x)) - E \log(1 - \sigma(D(G(z))))`;
    - ``"wasserstein"`` (WGAN): :math:`E[D(G(z))] - E[D(x)]`, with a Lipschitz constraint such as
      :func:`gradient_penalty`;
    - ``"hinge"`` (Lim & Ye, 2017): :math:`E[\max(0, 1 - D(x))] + E[\max(0, 1 + D(G(z)))]`;
    - ``"least_squares"`` (LSGAN, targets 1 and 0): :math:`\tfrac12 E[(D(x) - 1)^2] + \tfrac12 E[D(G(z))^2]`;
    - ``"relativistic"`` (RaGAN, Jolicoeur-Martineau, 2018): :math:`E[\operatorname{softplus}(-(D(x) - \bar D_f))]
      + E[\operatorname{softplus}(D(G(z)) - \bar D_r)]` with the batch means :math:`\bar D_r, \bar D_f` of the
      real and fake scores.

    Example:
        >>> real, fake = torch.tensor([2.0, 0.0]), torch.tensor([-1.0, 1.0])
        >>> discriminator_loss("hinge", real, fake)
        tensor(1.5000)
    """
    kind = _kind(kind)
    real, fake = _scores("real", real, "discriminator_loss"), _scores("fake", fake, "discriminator_loss")
    if kind in ("minimax", "non_saturating"):
        return F.softplus(-real).mean() + F.softplus(fake).mean()
    if kind == "wasserstein":
        return fake.mean() - real.mean()
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    if kind == "least_squares":
        return 0.5 * (real - 1).pow(2).mean() + 0.5 * fake.pow(2).mean()
    return F.softplus(-(real - fake.mean())).mean() + F.softplus(fake - real.mean()).mean()


def generator_loss(kind: str, fake: Tensor, real: Tensor | None = None) -> Tensor:
    r"""The generator's loss on the critic's scores (logits) of its fakes, ``fake`` :math:`= D(G(z))`.

    - ``"minimax"``: :math:`-E[\operatorname{softplus}(D(G(z)))] = E \log(1 - \sigma(D(G(z))))`, the saturating
      loss of the minimax game (its gradient vanishes where the critic rejects the fakes);
    - ``"non_saturating"``: :math:`E[\operatorname{softplus}(-D(G(z)))] = -E \log \sigma(D(G(z)))`;
    - ``"wasserstein"``, ``"hinge"``: :math:`-E[D(G(z))]`;
    - ``"least_squares"``: :math:`\tfrac12 E[(D(G(z)) - 1)^2]`;
    - ``"relativistic"``: :math:`E[\operatorname{softplus}(-(D(G(z)) - \bar D_r))] +
      E[\operatorname{softplus}(D(x) - \bar D_f)]`; it needs the scores of real data, ``real`` :math:`= D(x)`.

    Example:
        >>> generator_loss("wasserstein", torch.tensor([1.0, 3.0]))
        tensor(-2.)
    """
    kind = _kind(kind)
    fake = _scores("fake", fake, "generator_loss")
    if kind == "minimax":
        return -F.softplus(fake).mean()
    if kind == "non_saturating":
        return F.softplus(-fake).mean()
    if kind in ("wasserstein", "hinge"):
        return -fake.mean()
    if kind == "least_squares":
        return 0.5 * (fake - 1).pow(2).mean()
    if real is None:
        raise ValueError("generator_loss: the relativistic loss compares fakes with real data: it needs the "
                         "critic's scores of real data, `real` (shape (N,)), got None")
    real = _scores("real", real, "generator_loss")
    return F.softplus(-(fake - real.mean())).mean() + F.softplus(real - fake.mean()).mean()


# --------------------------------------------------------------------------- penalties
def _examples(name: str, x: object, where: str) -> Tensor:
    if not isinstance(x, Tensor) or not x.dtype.is_floating_point:
        got = x.dtype if isinstance(x, Tensor) else type(x).__name__
        raise TypeError(f"{where}: `{name}` must be a floating-point tensor of shape (N, ...), got {got}")
    if x.dim() < 1 or x.shape[0] < 1:
        raise ValueError(f"{where}: `{name}` must have shape (N, ...) with N >= 1 examples, got {tuple(x.shape)}")
    return x


def _input_gradient(critic: Critic, x: Tensor, c: Tensor | None, where: str) -> Tensor:
    r""":math:`\nabla_x D(x_n, c_n)` of every example, shape ``(N, d)`` (flattened over all non-batch dimensions),
    differentiable (``create_graph=True``) so that a penalty on it trains the critic."""
    if not callable(critic):
        raise TypeError(f"{where}: `critic` must be callable as critic(x, c) -> (N,) scores")
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():  # a penalty needs its gradient, also when scored under no_grad
        scores = critic(x, c)
        if not isinstance(scores, Tensor) or scores.shape != x.shape[:1]:
            got = tuple(scores.shape) if isinstance(scores, Tensor) else type(scores).__name__
            raise ValueError(f"{where}: the critic must return one score per example, shape ({x.shape[0]},), "
                             f"got {got}")
        if not scores.requires_grad:
            raise ValueError(f"{where}: the critic's scores do not depend on its input x; no gradient to penalize")
        (grad,) = torch.autograd.grad(scores.sum(), x, create_graph=True, allow_unused=True)
    if grad is None:
        raise ValueError(f"{where}: the critic's scores do not depend on its input x; no gradient to penalize")
    return grad.reshape(x.shape[0], -1)


def gradient_penalty(
    critic: Critic,
    real: Tensor,
    fake: Tensor,
    c: Tensor | None = None,
    *,
    target: float = 1.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""The gradient penalty of WGAN-GP (Gulrajani et al., 2017) at points between real data and fakes.

    .. math:: \mathrm{GP} = E_n\big[(\lVert \nabla_{\hat x} D(\hat x_n, c_n) \rVert_2 - t)^2\big], \qquad
        \hat x_n = x_n + \epsilon_n (\tilde x_n - x_n), \quad \epsilon_n \sim U[0, 1]

    with one :math:`\epsilon_n` per example (shape ``(N, 1, ..., 1)``: :math:`\hat x_n` lies on the segment
    from the real :math:`x_n` to the fake :math:`\tilde x_n`) and the norm taken over all of an example's
    dimensions (an image's channels, rows and columns together). The penalty is differentiable in the critic's
    parameters (it trains the critic); ``real`` and ``fake`` are detached. Multiply it by the weight
    (:math:`\lambda = 10` in the paper); ``target`` is :math:`t` (1: a 1-Lipschitz critic).

    Arguments:
        critic: ``critic(x, c) -> (N,)`` scores.
        real, fake: real examples and fakes, of the same shape ``(N, ...)``.
        c: the context of each pair (passed to the critic as is), or None.
        target: the gradient norm aimed at.
        generator: the random generator of the :math:`\epsilon_n`, on the data's device (default: torch's
            global one).

    Example:
        >>> critic = lambda x, c: 3.0 * x.sum(dim=1)  # gradient (3, 3, 3, 3): norm 6 everywhere
        >>> gradient_penalty(critic, torch.zeros(5, 4), torch.ones(5, 4))
        tensor(25.)
    """
    where = "gradient_penalty"
    real, fake = _examples("real", real, where), _examples("fake", fake, where)
    if real.shape != fake.shape:
        raise ValueError(f"{where}: `real` and `fake` must have the same shape, got {tuple(real.shape)} and "
                         f"{tuple(fake.shape)}")
    target = check_number("target", target, zero=True)
    real, fake = real.detach(), fake.detach()
    eps = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), generator=generator, device=real.device,
                     dtype=real.dtype)
    grad = _input_gradient(critic, real + eps * (fake - real), c, where)
    return (torch.linalg.vector_norm(grad, dim=1) - target).pow(2).mean()


def r1_penalty(critic: Critic, x: Tensor, c: Tensor | None = None) -> Tensor:
    r"""The R1 penalty (Mescheder et al., 2018): half the mean squared gradient norm of the critic on real data.

    .. math:: R_1 = \tfrac12 E_n\big[\lVert \nabla_x D(x_n, c_n) \rVert_2^2\big]

    The half is part of the penalty, so that a weight :math:`\gamma` on it gives the paper's
    :math:`\tfrac{\gamma}{2} E \lVert \nabla D \rVert^2` (``CriticLoss(r1=gamma)``). The norm is over all of an
    example's dimensions; ``x`` is detached and the penalty is differentiable in the critic's parameters.

    Example:
        >>> critic = lambda x, c: 2.0 * x.sum(dim=1)  # gradient (2, 2, 2): squared norm 12
        >>> r1_penalty(critic, torch.randn(4, 3))
        tensor(6.)
    """
    x = _examples("x", x, "r1_penalty")
    return 0.5 * _input_gradient(critic, x, c, "r1_penalty").pow(2).sum(dim=1).mean()


def r2_penalty(critic: Critic, fake: Tensor, c: Tensor | None = None) -> Tensor:
    r"""The R2 penalty (Mescheder et al., 2018): :func:`r1_penalty` on fakes (detached: it trains the critic only).

    .. math:: R_2 = \tfrac12 E_n\big[\lVert \nabla_{\tilde x} D(\tilde x_n, c_n) \rVert_2^2\big]

    Example:
        >>> r2_penalty(lambda x, c: x.sum(dim=1), torch.randn(4, 2))
        tensor(1.)
    """
    fake = _examples("fake", fake, "r2_penalty")
    return 0.5 * _input_gradient(critic, fake, c, "r2_penalty").pow(2).sum(dim=1).mean()


def feature_matching(real_features: Tensor, fake_features: Tensor) -> Tensor:
    r"""Feature matching (Salimans et al., 2016): the squared distance of the mean critic features.

    .. math:: \Big\lVert \frac1N \sum_n f(x_n) - \frac1M \sum_m f(\tilde x_m) \Big\rVert_2^2

    over features of shape ``(N, F)`` and ``(M, F)`` (or ``(N, ...)``, flattened).

    Example:
        >>> feature_matching(torch.tensor([[1.0, 2.0], [3.0, 2.0]]), torch.zeros(3, 2))
        tensor(8.)
    """
    where = "feature_matching"
    real = _examples("real_features", real_features, where)
    fake = _examples("fake_features", fake_features, where)
    if real.shape[1:] != fake.shape[1:]:
        raise ValueError(f"{where}: `real_features` and `fake_features` must have the same shape per example, "
                         f"got {tuple(real.shape)} and {tuple(fake.shape)}")
    diff = real.reshape(real.shape[0], -1).mean(dim=0) - fake.reshape(fake.shape[0], -1).mean(dim=0)
    return diff.pow(2).sum()


# --------------------------------------------------------------------------- objectives for fit
def _split(batch: Batch) -> tuple[Tensor, Tensor | None]:
    return batch[0], (batch[1] if len(batch) > 1 else None)


class CriticLoss:
    r"""The critic's objective: :func:`discriminator_loss` on real data and (detached) fakes, plus penalties.

    .. math:: L_D = \ell_D\big(D(x, c), D(\tilde x, c)\big) + \lambda_{gp} \mathrm{GP}
        + k \,[t \bmod k = 0]\, \big(\gamma_1 R_1 + \gamma_2 R_2\big), \qquad \tilde x = \texttt{model.fake(batch)}

    ``batch[0]`` is the real data :math:`x`, ``batch[1]`` (if any) the context :math:`c`. The gradient penalty
    (:func:`gradient_penalty`) is the usual companion of ``loss="wasserstein"`` (WGAN-GP) but may be added to
    any loss. R1 and R2 (:func:`r1_penalty`, :func:`r2_penalty`, each with its half:
    ``r1=gamma`` is Mescheder et al.'s :math:`\tfrac{\gamma}{2} E\lVert\nabla D\rVert^2`) are regularized
    lazily (StyleGAN2): on the :math:`t`-th call (from 0) they are computed only when :math:`t \bmod k = 0`,
    ``k = lazy``, and then multiplied by :math:`k`, which keeps their mean weight. The call counter (and the
    state of ``generator``) is saved by :meth:`state_dict`, so :func:`~gendist.inference.fit` checkpoints
    it and a resumed run keeps the schedule; calls with gradients off (scoring under ``torch.no_grad()``) leave
    the counter alone.

    Arguments:
        loss: one of :data:`GAN_LOSSES`.
        gp: the gradient penalty's weight :math:`\lambda_{gp}` (10 in WGAN-GP).
        r1, r2: the weights :math:`\gamma_1, \gamma_2` of R1 (real data) and R2 (fakes).
        lazy: regularize R1 and R2 on every ``lazy``-th call only (StyleGAN2 uses 16).
        generator: the random generator of the gradient penalty's interpolation (default: torch's global one).

    Example:
        >>> loss = CriticLoss("non_saturating", r1=1.0, lazy=4)
        >>> loss.state_dict()
        {'calls': 0, 'generator': None}
    """

    def __init__(
        self,
        loss: str = "non_saturating",
        gp: float = 0.0,
        r1: float = 0.0,
        r2: float = 0.0,
        lazy: int = 1,
        generator: torch.Generator | None = None,
    ) -> None:
        self.loss = _kind(loss)
        self.gp = check_number("gp", gp, zero=True)
        self.r1 = check_number("r1", r1, zero=True)
        self.r2 = check_number("r2", r2, zero=True)
        self.lazy = check_integer("lazy", lazy, low=1)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"CriticLoss: `generator` must be a torch.Generator or None, "
                            f"got {type(generator).__name__}")
        self.generator = generator
        self.calls = 0

    def regularizes(self, call: int | None = None) -> bool:
        r"""Whether call number ``call`` (default: the next one) computes R1 and R2."""
        return (self.calls if call is None else call) % self.lazy == 0

    def __call__(self, model: nn.Module, batch: Batch) -> Tensor:
        x, c = _split(batch)
        fake = model.fake(batch).detach()
        total = discriminator_loss(self.loss, model.critic(x, c), model.critic(fake, c))
        if self.gp:
            total = total + self.gp * gradient_penalty(model.critic, x, fake, c, generator=self.generator)
        if (self.r1 or self.r2) and self.regularizes():
            if self.r1:
                total = total + self.lazy * self.r1 * r1_penalty(model.critic, x, c)
            if self.r2:
                total = total + self.lazy * self.r2 * r2_penalty(model.critic, fake, c)
        if torch.is_grad_enabled():
            self.calls += 1
        return total

    def state_dict(self) -> dict[str, Any]:
        r"""The call counter (the lazy schedule) and the state of ``generator`` (None without one)."""
        return {"calls": self.calls, "generator": None if self.generator is None else self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        r"""Restore what :meth:`state_dict` saved."""
        if "calls" not in state:
            raise ValueError("CriticLoss.load_state_dict: the state has no 'calls'")
        self.calls = check_integer("calls", state["calls"], low=0)
        saved = state.get("generator")
        if saved is not None and self.generator is not None:
            self.generator.set_state(saved)

    def __repr__(self) -> str:
        return (f"CriticLoss(loss={self.loss!r}, gp={self.gp}, r1={self.r1}, r2={self.r2}, lazy={self.lazy}, "
                f"calls={self.calls})")


class GeneratorLoss:
    r"""The generator's objective: :func:`generator_loss` on the critic's scores of fakes, plus optional terms.

    .. math:: L_G = \ell_G\big(D(\tilde x, c)\big) + \lambda_{fm} \Big\lVert \bar f(x) - \bar f(\tilde x)
        \Big\rVert_2^2 + \lambda_{1} E\,\lvert \tilde x - x \rvert, \qquad \tilde x = \texttt{model.fake(batch)}

    with the critic's features :math:`f` = ``model.critic_features`` (:func:`feature_matching`) and
    :math:`E\lvert\tilde x - x\rvert` the mean absolute difference over all entries (the L1 term of pix2pix,
    Isola et al., 2017). The L1 term needs paired data: ``batch = (x, c)`` with ``x`` the target and ``c`` the
    (flattened) source that ``model.fake`` translates, so that fake and target correspond example by example.
    The critic's scores and features of real data (for ``loss="relativistic"`` and feature matching) are taken
    without a gradient: they do not depend on the generator.

    Arguments:
        loss: one of :data:`GAN_LOSSES`.
        feature_matching: the weight :math:`\lambda_{fm}` of feature matching.
        l1: the weight :math:`\lambda_1` of the L1 distance to the paired target (100 in pix2pix).

    Example:
        >>> GeneratorLoss("hinge", l1=100.0)
        GeneratorLoss(loss='hinge', feature_matching=0.0, l1=100.0)
    """

    def __init__(self, loss: str = "non_saturating", feature_matching: float = 0.0, l1: float = 0.0) -> None:
        self.loss = _kind(loss)
        self.feature_matching = check_number("feature_matching", feature_matching, zero=True)
        self.l1 = check_number("l1", l1, zero=True)

    def __call__(self, model: nn.Module, batch: Batch) -> Tensor:
        x, c = _split(batch)
        fake = model.fake(batch)
        real_scores = None
        if self.loss == "relativistic":
            with torch.no_grad():
                real_scores = model.critic(x, c)
        total = generator_loss(self.loss, model.critic(fake, c), real_scores)
        if self.feature_matching:
            with torch.no_grad():
                real_features = model.critic_features(x, c)
            total = total + self.feature_matching * feature_matching(real_features, model.critic_features(fake, c))
        if self.l1:
            if fake.shape != x.shape:
                raise ValueError(f"GeneratorLoss: the L1 term compares each fake with its paired target x: the fakes "
                                 f"have shape {tuple(fake.shape)} but x has {tuple(x.shape)}")
            total = total + self.l1 * (fake - x).abs().mean()
        return total

    def __repr__(self) -> str:
        return f"GeneratorLoss(loss={self.loss!r}, feature_matching={self.feature_matching}, l1={self.l1})"


class AdamFactory:
    r"""``AdamFactory(lr, betas)(params)`` is ``torch.optim.Adam(params, lr, betas)``: an :class:`Objective`'s
    optimizer. Without its own ``lr`` (None) it takes :func:`~gendist.inference.fit`'s (``uses_fit_lr``: fit sets
    its rate on the optimizer's groups).

    Example:
        >>> AdamFactory(None, (0.5, 0.999))([torch.zeros(1, requires_grad=True)]).defaults["betas"]
        (0.5, 0.999)
    """

    def __init__(self, lr: float | None, betas: tuple[float, float]) -> None:
        self.lr, self.betas = lr, check_betas("betas", betas)
        self.uses_fit_lr = lr is None

    def __call__(self, params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
        return torch.optim.Adam(params, lr=1e-3 if self.lr is None else self.lr, betas=self.betas)

    def __repr__(self) -> str:
        return f"Adam(lr={'fit' if self.lr is None else self.lr}, betas={self.betas})"


def check_betas(name: str, betas: object) -> tuple[float, float]:
    r"""Adam's ``betas`` as a pair of floats in :math:`[0, 1)`, or a ``ValueError`` naming ``name``."""
    ok = isinstance(betas, (tuple, list)) and len(betas) == 2 and all(
        isinstance(b, (int, float)) and not isinstance(b, bool) and 0 <= b < 1 for b in betas)
    if not ok:
        raise ValueError(f"{name} must be a pair of numbers in [0, 1), got {betas!r}")
    return float(betas[0]), float(betas[1])


def _discriminator_parameters(model: nn.Module) -> Iterable[nn.Parameter]:
    return model.discriminator.parameters()


def _generator_parameters(model: nn.Module) -> Iterable[nn.Parameter]:
    return model.generator.parameters()


def gan_objectives(
    loss: str = "non_saturating",
    *,
    n_critic: int = 1,
    gp: float = 0.0,
    r1: float = 0.0,
    r2: float = 0.0,
    lazy: int = 1,
    feature_matching: float = 0.0,
    l1: float = 0.0,
    lr_generator: float | None = None,
    lr_critic: float | None = None,
    betas: tuple[float, float] = (0.5, 0.999),
) -> list[Objective]:
    r"""The two objectives of a GAN for :func:`~gendist.inference.fit`: ``"critic"``, then ``"generator"``.

    ``"critic"`` minimizes :class:`CriticLoss` in ``model.discriminator``'s parameters on every batch;
    ``"generator"`` minimizes :class:`GeneratorLoss` in ``model.generator``'s parameters on every
    ``n_critic``-th batch (``Objective(every=n_critic)``), after the critic's step on that batch. So the critic
    takes ``n_critic`` steps per generator step, each on a fresh batch, as in WGAN-GP's algorithm
    (``n_critic=5`` with ``loss="wasserstein", gp=10``). Each has its own Adam with ``betas`` (0.5, 0.999 as
    in DCGAN) and its own learning rate (None: ``fit``'s ``lr``). Neither is validated (``validate=False``):
    a GAN's loss measures how the two networks stand against each other, not the quality of the samples, so it
    is no score for early stopping or for picking the best weights; score samples otherwise (FID, precision and
    recall).

    Arguments:
        loss: one of :data:`GAN_LOSSES` (both objectives use it).
        n_critic: critic steps per generator step.
        gp, r1, r2, lazy: the critic's penalties (:class:`CriticLoss`); ``gp`` is typical with ``"wasserstein"``.
        feature_matching, l1: the generator's extra terms (:class:`GeneratorLoss`; ``l1`` needs paired data).
        lr_generator, lr_critic: the learning rates (None: ``fit``'s ``lr``).
        betas: Adam's :math:`(\beta_1, \beta_2)` for both.

    Example:
        >>> [(o.name, o.every, o.validate) for o in gan_objectives("wasserstein", n_critic=5, gp=10.0)]
        [('critic', 1, False), ('generator', 5, False)]
    """
    n_critic = check_integer("n_critic", n_critic, low=1)
    lrs = {k: None if v is None else check_number(k, v) for k, v in
           (("lr_generator", lr_generator), ("lr_critic", lr_critic))}
    betas = check_betas("betas", betas)
    critic = CriticLoss(loss, gp=gp, r1=r1, r2=r2, lazy=lazy)
    generator = GeneratorLoss(loss, feature_matching=feature_matching, l1=l1)
    return [
        Objective("critic", critic, parameters=_discriminator_parameters,
                  optimizer=AdamFactory(lrs["lr_critic"], betas), lr=lrs["lr_critic"], validate=False),
        Objective("generator", generator, parameters=_generator_parameters,
                  optimizer=AdamFactory(lrs["lr_generator"], betas), lr=lrs["lr_generator"], every=n_critic,
                  validate=False),
    ]
