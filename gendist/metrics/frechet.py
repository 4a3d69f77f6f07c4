r"""The Fréchet distance between Gaussians fitted to two feature sets, and a small feature network for images.

With features of an Inception network this is the FID (Heusel et al., 2017). Downloaded weights are not
an option here, so :class:`FeatureClassifier` is a small convolutional classifier that
:func:`train_feature_classifier` fits in seconds on the labelled data itself (the 8x8 digits, say); its
penultimate activations are the features.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from gendist._checks import check_integer, check_number, check_shape
from gendist.metrics.two_sample import _samples

__all__ = ["FeatureClassifier", "frechet_distance", "train_feature_classifier"]


def _moments(x: Tensor) -> tuple[Tensor, Tensor]:
    r"""The mean and the unbiased covariance of the rows of ``x``."""
    mu = x.mean(dim=0)
    xc = x - mu
    return mu, xc.T @ xc / (x.shape[0] - 1)


def _sqrt_psd(s: Tensor) -> tuple[Tensor, Tensor]:
    r"""The eigenvalues of the symmetric ``s`` clamped at 0, and its symmetric square root."""
    w, v = torch.linalg.eigh((s + s.T) / 2)
    w = w.clamp_min(0)
    return w, (v * w.sqrt()) @ v.T


def frechet_distance(a_features: Tensor, b_features: Tensor) -> float:
    r"""The Fréchet (2-Wasserstein) distance between Gaussians fitted to two feature sets.

    .. math::
        d^2 = \lVert \mu_a - \mu_b \rVert^2 + \operatorname{tr}\Sigma_a + \operatorname{tr}\Sigma_b
        - 2 \operatorname{tr}\big(\Sigma_a^{1/2} \Sigma_b \Sigma_a^{1/2}\big)^{1/2},

    with the sample means and unbiased covariances (as FID). The trace term is
    :math:`\operatorname{tr}(\Sigma_a \Sigma_b)^{1/2}` written with a symmetric positive semi-definite
    matrix, whose square root is stable: :math:`\Sigma_a^{1/2}` and the trace come from two symmetric
    eigendecompositions in float64, tiny negative eigenvalues (rounding) clamped at 0, so singular
    covariances (more features than samples) are fine, unlike a general ``sqrtm`` of
    :math:`\Sigma_a \Sigma_b` that can return complex parts. It is what FID reports (the squared distance,
    not its root), clamped at 0.

    Arguments:
        a_features: The first features, shape ``(N, F)`` (trailing dimensions are flattened).
        b_features: The second features, shape ``(M, F)``.

    Returns:
        :math:`d^2`, a non-negative float (0 for identical sets, up to rounding).

    Raises:
        ValueError: On NaN/inf, fewer than 2 samples, or different feature dimensions.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(500, 3, generator=g, dtype=torch.float64)
        >>> round(frechet_distance(x, x + torch.tensor([1.0, 2.0, 0.0], dtype=torch.float64)), 9)
        5.0
        >>> round(frechet_distance(x, x), 9)
        0.0
    """
    a, b = _samples(a_features, "a_features"), _samples(b_features, "b_features")
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"a_features and b_features have different dimensions: {a.shape[1]} and {b.shape[1]} features"
        )
    # float64, and on the CPU where the device has no float64 eigendecomposition (mps)
    device = a.device if a.device.type != "mps" else torch.device("cpu")
    a, b = a.to(device, torch.float64), b.to(device, torch.float64)
    mu_a, cov_a = _moments(a)
    mu_b, cov_b = _moments(b)
    _, root = _sqrt_psd(cov_a)
    w, _ = _sqrt_psd(root @ cov_b @ root)
    d2 = (mu_a - mu_b).square().sum() + cov_a.trace() + cov_b.trace() - 2 * w.sqrt().sum()
    return max(d2.item(), 0.0)


class FeatureClassifier(nn.Module):
    r"""A small convolutional classifier of images whose penultimate activations serve as features.

    Three 3x3 convolutions (``channels``, ``channels`` with stride 2, ``2 * channels`` with stride 2, ReLU),
    an adaptive average pool to 2x2, a linear layer to ``features`` (ReLU) and a linear classifier. The
    input is first standardized by the buffers ``shift`` and ``scale`` (scalars, 0 and 1 until
    :func:`train_feature_classifier` sets them from its data), so the data's range does not matter.

    Arguments:
        shape: The image shape ``(C, H, W)``; inputs are ``(N, C, H, W)`` or flattened ``(N, C * H * W)``.
        classes: The number of classes.
        channels: The width of the first convolutions.
        features: The number of features.

    Attributes:
        accuracy: The held-out accuracy :func:`train_feature_classifier` measured, or None.

    Example:
        >>> net = FeatureClassifier((1, 8, 8), classes=10)
        >>> net.features(torch.zeros(3, 64)).shape, net(torch.zeros(3, 1, 8, 8)).shape
        (torch.Size([3, 64]), torch.Size([3, 10]))
    """

    def __init__(self, shape: Sequence[int], classes: int, channels: int = 32, features: int = 64) -> None:
        super().__init__()
        self.shape = check_shape(shape)
        if len(self.shape) != 3:
            raise ValueError(f"FeatureClassifier: shape must be (C, H, W), got {tuple(self.shape)}")
        classes = check_integer("classes", classes, low=2)
        channels = check_integer("channels", channels)
        features = check_integer("features", features)
        c = self.shape[0]
        self.body = nn.Sequential(
            nn.Conv2d(c, channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, 2 * channels, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
            nn.Linear(8 * channels, features),
            nn.ReLU(),
        )
        self.head = nn.Linear(features, classes)
        self.register_buffer("shift", torch.zeros(()))
        self.register_buffer("scale", torch.ones(()))
        self.accuracy: float | None = None

    def _images(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor) or x.dim() < 2 or x[0].numel() != self.shape.numel():
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(
                f"FeatureClassifier: x must have shape (N, {', '.join(map(str, self.shape))}) or "
                f"(N, {self.shape.numel()}), got {got}"
            )
        return (x.reshape(x.shape[0], *self.shape) - self.shift) / self.scale

    def features(self, x: Tensor) -> Tensor:
        r"""The penultimate activations, shape ``(N, features)``."""
        return self.body(self._images(x))

    def forward(self, x: Tensor) -> Tensor:
        r"""The class logits, shape ``(N, classes)``."""
        return self.head(self.features(x))


def train_feature_classifier(
    x: Tensor,
    y: Tensor,
    shape: Sequence[int],
    *,
    classes: int | None = None,
    epochs: int = 30,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    valid: tuple[Tensor, Tensor] | None = None,
) -> FeatureClassifier:
    r"""Train a :class:`FeatureClassifier` on labelled images with Adam and the cross-entropy.

    Mini-batches of ``batch_size`` (the full batch when it is larger than the data) in a fresh random
    order each epoch. Deterministic given ``seed`` (the initialization and the order; the global random
    state is left as it was), on ``x``'s device and dtype. The network's ``shift`` and ``scale`` are set
    to the mean and standard deviation of ``x``'s pixels.

    Arguments:
        x: The images, shape ``(N, C, H, W)`` or ``(N, C * H * W)``.
        y: The integer labels in ``[0, classes)``, shape ``(N,)``.
        shape: The image shape ``(C, H, W)``.
        classes: The number of classes; default: ``y.max() + 1``.
        epochs: The number of passes over the data.
        batch_size: The mini-batch size.
        lr: Adam's learning rate.
        seed: The seed of the initialization and of the batch order.
        valid: Held-out ``(x, y)``: the trained network's accuracy on it is recorded as ``accuracy``.

    Returns:
        The trained network, in eval mode.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> x, y = torch.rand(40, 1, 8, 8, generator=g), torch.arange(40) % 2
        >>> net = train_feature_classifier(x, y, (1, 8, 8), epochs=2, valid=(x, y))
        >>> net.training, 0.0 <= net.accuracy <= 1.0
        (False, True)
    """
    if not isinstance(x, Tensor) or not x.dtype.is_floating_point:
        raise ValueError(f"x must be a floating-point tensor, got {getattr(x, 'dtype', type(x).__name__)}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError("x contains NaN or inf")
    if not isinstance(y, Tensor) or y.dtype.is_floating_point or y.dtype == torch.bool or y.dim() != 1:
        raise ValueError(f"y must be a 1-D integer tensor of labels, got {getattr(y, 'dtype', type(y).__name__)}")
    if y.shape[0] != x.shape[0] or x.shape[0] < 2:
        raise ValueError(f"x and y must hold the same number (at least 2) of samples, got {x.shape[0]} and "
                         f"{y.shape[0]}")
    classes = int(y.max().item()) + 1 if classes is None else check_integer("classes", classes, low=2)
    if int(y.min().item()) < 0 or int(y.max().item()) >= classes:
        raise ValueError(f"y must hold labels in [0, {classes}), got labels in "
                         f"[{int(y.min().item())}, {int(y.max().item())}]")
    epochs = check_integer("epochs", epochs)
    batch_size = check_integer("batch_size", batch_size)
    lr = check_number("lr", lr)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = FeatureClassifier(shape, max(classes, 2))
    net = net.to(device=x.device, dtype=x.dtype)
    net._images(x[:1])  # the shape check, before any training
    y = y.to(x.device)
    with torch.no_grad():
        net.shift.fill_(x.mean().item())
        net.scale.fill_(max(x.std().item(), 1e-8))
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    net.train()
    n = x.shape[0]
    with torch.enable_grad():
        for _ in range(epochs):
            order = torch.randperm(n, generator=g).to(x.device)
            for i in range(0, n, batch_size):
                idx = order[i : i + batch_size]
                loss = F.cross_entropy(net(x[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
    net.eval()
    if valid is not None:
        xv, yv = valid
        with torch.no_grad():
            pred = net(xv.to(device=x.device, dtype=x.dtype)).argmax(dim=1)
        net.accuracy = (pred == yv.to(x.device)).to(torch.float64).mean().item()
    return net
