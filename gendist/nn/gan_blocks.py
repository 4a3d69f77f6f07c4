r"""Building blocks of GAN networks: minibatch standard deviation, self-attention, conditional batch norm,
spectral normalization, a text encoder and conditioning augmentation.

The networks themselves (generators, discriminators, translators) are in :mod:`gendist.nn.gan`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn
from torch import Tensor
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from gendist._checks import check_integer, check_number

__all__ = [
    "ConditionalBatchNorm2d", "ConditioningAugmentation", "MinibatchStdDev", "SelfAttention2d", "TextEncoder",
    "spectral_normed",
]


# ----------------------------------------------------------------------------------------------------------------
# light checks of a forward's inputs (shapes and dtypes only: no device synchronisation in a training step)


def _check_batch(where: str, name: str, t: object, shape: Sequence[int]) -> None:
    r"""Raise a clear error unless ``t`` is a float tensor of shape ``(N, *shape)``."""
    if torch.compiler.is_compiling():
        return
    if not isinstance(t, Tensor):
        raise TypeError(f"{where}: `{name}` must be a torch.Tensor, got {type(t).__name__}")
    if not t.dtype.is_floating_point:
        raise TypeError(f"{where}: `{name}` must be a floating-point tensor, got dtype {t.dtype}")
    shape = tuple(shape)
    if t.dim() != 1 + len(shape) or tuple(t.shape[1:]) != shape:
        want = ", ".join(["N", *map(str, shape)])
        raise ValueError(f"{where}: `{name}` must have shape ({want}), got shape {tuple(t.shape)}")


def _check_cond(where: str, c: object, context: int, n: int) -> None:
    r"""Raise a clear error unless ``c`` is ``None`` (``context == 0``) or a float tensor of shape ``(n, context)``."""
    if torch.compiler.is_compiling():
        return
    if context == 0:
        if c is not None:
            raise ValueError(f"{where} is unconditional: it takes no context (context=0), got a context `c`")
        return
    if c is None:
        raise ValueError(f"{where} is conditional on a context of size {context}: it needs a context `c` of shape "
                         f"(N, {context}), got None")
    _check_batch(where, "c", c, (context,))
    if c.shape[0] != n:
        raise ValueError(f"{where}: context `c` must have shape ({n}, {context}) (one row per example), "
                         f"got shape {tuple(c.shape)}")


def _choice(where: str, name: str, value: object, options: Sequence[str]) -> str:
    if value not in options:
        raise ValueError(f"{where}: `{name}` must be one of {', '.join(map(repr, options))}, got {value!r}")
    return value  # type: ignore[return-value]


_OUT = {"identity": nn.Identity, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


# ----------------------------------------------------------------------------------------------------------------


class MinibatchStdDev(nn.Module):
    r"""The minibatch standard deviation layer of ProGAN (Karras et al., 2018).

    The batch of :math:`N` examples is split into :math:`M = N / G` groups of :math:`G` examples (example
    :math:`n` in group :math:`n \bmod M`); within a group, the standard deviation of every feature across the
    :math:`G` examples, :math:`\sigma = \sqrt{\frac{1}{G} \sum_g (x_g - \bar{x})^2 + 10^{-8}}`, is averaged over
    the features, and this one number is appended to each example of the group as one extra feature (for
    ``(N, F)``) or one extra constant channel (for ``(N, C, H, W)``). It lets a discriminator see a batch's
    diversity, which penalises mode collapse.

    The group size is ``min(group, N)``, reduced to :math:`\gcd(N, \text{group})` when that does not divide
    :math:`N`; when the gcd is 1 (and :math:`N > 1`) the whole batch is one group. A batch of one has a standard
    deviation of :math:`10^{-4}` (the square root of the epsilon).

    Arguments:
        group: the group size :math:`G`.

    Example:
        >>> layer = MinibatchStdDev(group=2)
        >>> layer(torch.zeros(4, 3, 5, 5)).shape
        torch.Size([4, 4, 5, 5])
        >>> layer(torch.tensor([[0.0], [2.0]]))
        tensor([[0., 1.],
                [2., 1.]])
    """

    def __init__(self, group: int = 4) -> None:
        super().__init__()
        self.group = check_integer("MinibatchStdDev: `group`", group, low=1)

    def group_size(self, n: int) -> int:
        r"""The group size used for a batch of ``n`` examples."""
        g = math.gcd(n, min(self.group, n))
        return n if g == 1 else g

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() not in (2, 4):
            raise ValueError(f"MinibatchStdDev: `x` must have shape (N, F) or (N, C, H, W), got {tuple(x.shape)}")
        n = x.shape[0]
        g = self.group_size(n)
        y = x.reshape(g, n // g, *x.shape[1:])  # example n is y[n // M, n % M]: groups are the columns
        std = (y.var(0, unbiased=False) + 1e-8).sqrt()  # (M, *features)
        std = std.flatten(1).mean(1)  # (M,)
        std = std.repeat(g)  # example n gets std[n % M]
        extra = std.reshape(n, 1, *([1] * (x.dim() - 2))).expand(n, 1, *x.shape[2:])
        return torch.cat([x, extra.to(x.dtype)], 1)


class SelfAttention2d(nn.Module):
    r"""The self-attention block of SAGAN (Zhang et al., 2019).

    With :math:`1 \times 1` convolutions :math:`f` (the keys), :math:`g` (the queries; both to
    :math:`\max(C/8, 1)` channels) and :math:`h` (the values, to :math:`C`) of the feature map :math:`x`, every
    position :math:`j` attends to every position :math:`i`:

    .. math:: o_j = \sum_i \operatorname{softmax}_i\big(f(x_i)^\top g(x_j)\big)\, h(x_i), \qquad
              y = x + \gamma\, o,

    with a learnable :math:`\gamma` initialised at 0, so the block starts as the identity and learns how much
    non-local evidence to mix in.

    Arguments:
        channels: the channels :math:`C`.

    Example:
        >>> att = SelfAttention2d(16)
        >>> x = torch.randn(2, 16, 4, 4)
        >>> torch.equal(att(x), x)
        True
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = check_integer("SelfAttention2d: `channels`", channels, low=1)
        inner = max(channels // 8, 1)
        self.query = nn.Conv2d(channels, inner, 1)
        self.key = nn.Conv2d(channels, inner, 1, bias=False)  # a bias here would shift all i's scores alike
        self.value = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(f"SelfAttention2d: `x` must have shape (N, {self.channels}, H, W), got {tuple(x.shape)}")
        q = self.query(x).flatten(2)  # (N, C', P): the attending positions j
        k = self.key(x).flatten(2)  # (N, C', P): the attended positions i
        v = self.value(x).flatten(2)  # (N, C, P)
        attention = torch.softmax(q.transpose(1, 2) @ k, dim=-1)  # (N, P_j, P_i): softmax over the attended i
        o = (v @ attention.transpose(1, 2)).reshape(x.shape)
        return x + self.gamma * o


class ConditionalBatchNorm2d(nn.Module):
    r"""Conditional batch normalization (de Vries et al., 2017; Miyato & Koyama, 2018; BigGAN).

    Batch normalization without its own affine map, followed by a gain and a bias that are linear maps of the
    context :math:`c`:

    .. math:: y = \big(1 + W_\gamma c + b_\gamma\big) \odot \hat{x} + W_\beta c + b_\beta,

    with :math:`W, b` initialised at zero, so the layer starts as plain batch norm (gain 1, bias 0) whatever the
    context. Works on maps ``(N, C, H, W)`` and on vectors ``(N, C)`` alike (the statistics are per channel).

    Arguments:
        channels: the channels :math:`C`.
        context: the context size.
        eps: batch norm's epsilon.
        momentum: the momentum of the running statistics.

    Example:
        >>> norm = ConditionalBatchNorm2d(8, context=3)
        >>> norm(torch.randn(5, 8, 4, 4), torch.randn(5, 3)).shape
        torch.Size([5, 8, 4, 4])
        >>> norm(torch.randn(5, 8), torch.randn(5, 3)).shape
        torch.Size([5, 8])
    """

    def __init__(self, channels: int, context: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__()
        self.channels = check_integer("ConditionalBatchNorm2d: `channels`", channels, low=1)
        self.context = check_integer("ConditionalBatchNorm2d: `context`", context, low=1)
        self.norm = nn.BatchNorm1d(channels, eps=check_number("ConditionalBatchNorm2d: `eps`", eps),
                                   momentum=momentum, affine=False)
        self.affine = nn.Linear(context, 2 * channels)
        nn.init.zeros_(self.affine.weight)
        nn.init.zeros_(self.affine.bias)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        where = "ConditionalBatchNorm2d"
        if x.dim() not in (2, 4) or x.shape[1] != self.channels:
            raise ValueError(f"{where}: `x` must have shape (N, {self.channels}, H, W) or (N, {self.channels}), "
                             f"got {tuple(x.shape)}")
        _check_cond(where, c, self.context, x.shape[0])
        h = self.norm(x.flatten(2) if x.dim() == 4 else x).reshape(x.shape)
        gain, bias = self.affine(c).chunk(2, dim=-1)
        extra = (1,) * (x.dim() - 2)
        return (1 + gain).reshape(*gain.shape, *extra) * h + bias.reshape(*bias.shape, *extra)


_SPECTRAL = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def spectral_normed(module: nn.Module, n_power_iterations: int = 1) -> nn.Module:
    r"""Spectral normalization (Miyato et al., 2018) of every linear and convolution layer of ``module``, in place.

    Each weight :math:`W` is replaced by :math:`W / \sigma(W)`, :math:`\sigma` its largest singular value (of
    the weight reshaped to a matrix), estimated by ``n_power_iterations`` power iterations per training forward
    (torch's :func:`torch.nn.utils.parametrizations.spectral_norm`). Layers already normalized are left alone.
    Returns ``module``.

    Caveat: torch's parametrized modules are saved through ``state_dict()`` only (``pickle`` / ``torch.save``
    of the module itself raise); ``copy.deepcopy`` works.

    Example:
        >>> net = spectral_normed(torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1)))
        >>> torch.nn.utils.parametrize.is_parametrized(net[0], "weight")
        True
    """
    n_power_iterations = check_integer("spectral_normed: `n_power_iterations`", n_power_iterations, low=1)
    for layer in list(module.modules()):
        if isinstance(layer, _SPECTRAL) and not nn.utils.parametrize.is_parametrized(layer, "weight"):
            _spectral_norm(layer, n_power_iterations=n_power_iterations)
    return module


class TextEncoder(nn.Module):
    r"""A small text encoder: token ids ``(N, L)`` (0 is padding) to embeddings ``(N, dim)``.

    Each token gets a learned embedding :math:`e_t` (plus a learned position embedding :math:`p_l` when
    ``max_len`` is given), a token-wise layer :math:`u_l = \operatorname{ReLU}(W (e_{t_l} + p_l) + b)` (the
    nonlinearity before the pooling is what lets the positions, hence word order, count), a mean-pool over the
    non-padding tokens, :math:`\bar{u} = \sum_l m_l u_l / \max(\sum_l m_l, 1)`, and a linear map to the output.
    A masked mean-pool rather than a recurrent network: parallel, independent of where the padding sits
    (without positions a bag of words), and an all-padding sequence gives the embedding of the zero vector.

    The ids may be an integer tensor, or a float tensor of whole numbers (the flat float context of a
    conditional model).

    Arguments:
        vocab: the vocabulary size (ids ``0 .. vocab - 1``; 0 is padding).
        dim: the output size.
        hidden: the token embedding and hidden layer size.
        max_len: the longest sequence (enables position embeddings); ``None`` for a bag of words.

    Example:
        >>> enc = TextEncoder(10, dim=8, hidden=16, max_len=5)
        >>> enc(torch.tensor([[1, 2, 3, 0, 0], [4, 0, 0, 0, 0]])).shape
        torch.Size([2, 8])
    """

    def __init__(self, vocab: int, dim: int = 64, hidden: int = 64, max_len: int | None = None) -> None:
        super().__init__()
        self.vocab = check_integer("TextEncoder: `vocab`", vocab, low=2)
        self.dim = check_integer("TextEncoder: `dim`", dim, low=1)
        hidden = check_integer("TextEncoder: `hidden`", hidden, low=1)
        self.max_len = None if max_len is None else check_integer("TextEncoder: `max_len`", max_len, low=1)
        self.tokens = nn.Embedding(vocab, hidden, padding_idx=0)
        self.positions = nn.Embedding(self.max_len, hidden) if self.max_len else None
        self.token_layer = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, dim)

    def forward(self, tokens: Tensor) -> Tensor:
        where = "TextEncoder"
        if not isinstance(tokens, Tensor) or tokens.dim() != 2:
            got = tuple(tokens.shape) if isinstance(tokens, Tensor) else type(tokens).__name__
            raise ValueError(f"{where}: `tokens` must be a tensor of shape (N, L), got {got}")
        if self.max_len is not None and tokens.shape[1] > self.max_len:
            raise ValueError(f"{where}: `tokens` has length {tokens.shape[1]} > max_len={self.max_len}")
        if tokens.dtype.is_floating_point:
            ids = tokens.round().long()
            if not torch.equal(ids.to(tokens.dtype), tokens):
                raise ValueError(f"{where}: float `tokens` must hold whole numbers (token ids)")
        else:
            ids = tokens.long()
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.vocab):
            raise ValueError(f"{where}: token ids must lie in 0 .. {self.vocab - 1}, got "
                             f"{int(ids.min())} .. {int(ids.max())}")
        e = self.tokens(ids)  # (N, L, hidden)
        if self.positions is not None:
            e = e + self.positions.weight[: ids.shape[1]]
        u = torch.relu(self.token_layer(e))
        mask = (ids != 0).to(u.dtype).unsqueeze(-1)
        pooled = (u * mask).sum(1) / mask.sum(1).clamp(min=1)
        return self.out(pooled)


class ConditioningAugmentation(nn.Module):
    r"""StackGAN's conditioning augmentation (Zhang et al., 2017).

    A linear map of the embedding :math:`e` gives :math:`\mu(e)` and :math:`\log \sigma(e)`; in training mode
    the output is the reparameterized sample :math:`\hat{c} = \mu + \sigma \odot \epsilon`,
    :math:`\epsilon \sim \mathcal{N}(0, I)`, in eval mode :math:`\mu`. The regularizer

    .. math:: \mathrm{KL}\big(\mathcal{N}(\mu, \operatorname{diag} \sigma^2) \,\|\, \mathcal{N}(0, I)\big)
              = \tfrac{1}{2} \sum_k \big(\mu_k^2 + \sigma_k^2 - 1 - 2 \log \sigma_k\big)

    is :meth:`kl`, per example, of the last forward's (or of a given embedding's) :math:`\mu, \sigma`.

    Arguments:
        dim: the size of the input embedding.
        out: the size of the output.

    Example:
        >>> ca = ConditioningAugmentation(8, 4)
        >>> ca(torch.randn(3, 8)).shape, ca.kl().shape
        (torch.Size([3, 4]), torch.Size([3]))
    """

    def __init__(self, dim: int, out: int) -> None:
        super().__init__()
        self.dim = check_integer("ConditioningAugmentation: `dim`", dim, low=1)
        self.out = check_integer("ConditioningAugmentation: `out`", out, low=1)
        self.linear = nn.Linear(dim, 2 * out)
        self._last: tuple[Tensor, Tensor] | None = None

    def params(self, e: Tensor) -> tuple[Tensor, Tensor]:
        r"""The mean :math:`\mu` and the log standard deviation :math:`\log \sigma`, each ``(N, out)``."""
        _check_batch("ConditioningAugmentation", "e", e, (self.dim,))
        mu, log_sigma = self.linear(e).chunk(2, dim=-1)
        return mu, log_sigma

    def forward(self, e: Tensor) -> Tensor:
        mu, log_sigma = self.params(e)
        self._last = (mu, log_sigma)
        if not self.training:
            return mu
        return mu + log_sigma.exp() * torch.randn_like(mu)

    def kl(self, e: Tensor | None = None) -> Tensor:
        r"""The KL divergence to :math:`\mathcal{N}(0, I)` per example, ``(N,)``: of ``e``, or of the last forward."""
        if e is not None:
            mu, log_sigma = self.params(e)
        elif self._last is not None:
            mu, log_sigma = self._last
        else:
            raise RuntimeError("ConditioningAugmentation.kl: no forward yet; call it on an embedding, or pass `e`")
        return 0.5 * (mu.square() + (2 * log_sigma).exp() - 1 - 2 * log_sigma).sum(-1)

    def __getstate__(self) -> dict:
        state = super().__getstate__() if hasattr(super(), "__getstate__") else self.__dict__
        return {**state, "_last": None}  # the last forward's graph is neither copied nor pickled
