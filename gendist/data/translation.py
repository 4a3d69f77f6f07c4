r"""The 8x8 digits for translation and text-to-image models: paired and unpaired image pairs, attributes, captions.

Translation pairs map a digit to a transformed copy of itself: its negative
(:func:`invert_digits`) or a bolder stroke (:func:`thicken_digits`);
:func:`digit_pairs` gives them aligned (paired, for pix2pix-like models) or
drawn from disjoint halves of the split (unpaired, for CycleGAN-like ones).

Two attributes are computed on any image, as numbers and as three bins cut at
the terciles of the training split: the stroke thickness
(:func:`stroke_thickness`) and the slant (:func:`slant`).
:func:`digit_captions` writes them with the class as a short caption, "a thick
three slanted right", and :func:`tokenize` turns captions into word indices of
the fixed vocabulary :data:`CAPTION_VOCAB` (0 is padding).

Images are rows of 64 pixels ``(..., 64)`` (as :func:`~gendist.data.load_digits`
gives them) or ``(..., 8, 8)``, of any float dtype and device, with levels in
``[0, 16]``; functions return the shape they are given.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Size, Tensor

from gendist._checks import check_finite, check_integer, check_number
from gendist.data.digits import DIGITS_SHAPE, Split, load_digits

__all__ = [
    "CAPTION_VOCAB",
    "DIGIT_NAMES",
    "SLANT_BINS",
    "SLANT_TERCILES",
    "THICKNESS_BINS",
    "THICKNESS_TERCILES",
    "detokenize",
    "digit_captions",
    "digit_pairs",
    "invert_digits",
    "slant",
    "stroke_thickness",
    "thicken_digits",
    "tokenize",
]

_TOP = 16.0  # the highest level of a pixel (levels 0..16)

DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
r"""The English name of each class 0..9."""

THICKNESS_BINS = ("thin", "regular", "thick")
r"""The names of the thickness bins 0, 1, 2 (:func:`stroke_thickness` with ``bins=True``)."""

SLANT_BINS = ("left", "upright", "right")
r"""The names of the slant bins 0, 1, 2 (:func:`slant` with ``bins=True``)."""

THICKNESS_TERCILES = (1.161038109143232, 1.287313432835821)
r"""The terciles of :func:`stroke_thickness` on the training split (``torch.quantile``, float64): the bin edges."""

SLANT_TERCILES = (-0.092981856427536, 0.011545919831013192)
r"""The terciles of :func:`slant` on the training split (``torch.quantile``, float64): the bin edges."""

CAPTION_VOCAB = ("<pad>", "a", *THICKNESS_BINS, *DIGIT_NAMES, "slanted", "left", "right", "upright")
r"""The words of the captions; a word's index is its token, and 0 (``"<pad>"``) pads short captions."""

_TOKENS = {word: i for i, word in enumerate(CAPTION_VOCAB) if i > 0}
_SLANT_WORDS = ("slanted left", "upright", "slanted right")


def _as_images(x: object, where: str, name: str = "x") -> tuple[Tensor, Size]:
    r"""``x`` as images ``(*batch, 8, 8)`` and its batch shape, or an error naming ``name``."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{where}: `{name}` must be a torch.Tensor of digits, got {type(x).__name__}")
    if not x.dtype.is_floating_point:
        raise TypeError(f"{where}: `{name}` must be a floating-point tensor, got dtype {x.dtype}; use `{name}.float()`")
    if x.dim() >= 1 and x.shape[-1] == DIGITS_SHAPE[0] * DIGITS_SHAPE[1]:
        batch = x.shape[:-1]
    elif x.dim() >= 2 and tuple(x.shape[-2:]) == DIGITS_SHAPE:
        batch = x.shape[:-2]
    else:
        raise ValueError(
            f"{where}: `{name}` must be 8x8 digits as rows of 64 pixels (..., 64) or images (..., 8, 8), "
            f"got shape {tuple(x.shape)}"
        )
    check_finite(name, x, where)
    if x.numel() and (bool((x < 0).any()) or bool((x > _TOP).any())):
        raise ValueError(
            f"{where}: `{name}` must hold pixel levels in [0, 16], got values in "
            f"[{x.min().item():.4g}, {x.max().item():.4g}]"
        )
    return x.reshape(*batch, *DIGITS_SHAPE), batch


def invert_digits(x: Tensor) -> Tensor:
    r"""The negative of digits: :math:`x \mapsto 16 - x` on the levels 0..16 (an involution).

    Arguments:
        x: Digits, ``(..., 64)`` or ``(..., 8, 8)``, levels in ``[0, 16]``.

    Returns:
        A tensor of ``x``'s shape, dtype and device.

    Example:
        >>> invert_digits(torch.tensor([[0.0, 4.0, 16.0] + [8.0] * 61]))[0, :3]
        tensor([16., 12.,  0.])
    """
    _as_images(x, "invert_digits")
    return _TOP - x


def thicken_digits(
    x: Tensor, amount: int = 1, footprint: Literal["cross", "square"] = "cross", drop: float = 4.0
) -> Tensor:
    r"""Bolder digits: ``amount`` grey-level dilations by a non-flat structuring element.

    One step is the dilation of the image by the structuring function :math:`b`
    with :math:`b(0) = 0` and :math:`b(q) = -\delta` on the neighbours :math:`q`
    of the footprint (the 4 of ``"cross"``, or the 8 of ``"square"``):

    .. math:: (x \oplus b)(p) = \max\Big(x(p),\ \max_{q} x(p + q) - \delta\Big),

    clipped to :math:`[0, 16]` (outside the image counts as empty). It never
    lowers a pixel, and ink spreads to the neighbours of a stroke at its level
    less :math:`\delta`. ``footprint="square", drop=0`` is the flat 3x3 maximum
    filter; on the 8x8 digits it is too strong (it inks 87% of the pixels,
    filling the loops of 0, 6, 8, 9, and a logistic regression trained and tested
    on the thickened digits drops from 0.963 to 0.907 accuracy), while the
    default cross with :math:`\delta = 4` inks 70% (51% before) and keeps 0.963.

    Arguments:
        x: Digits, ``(..., 64)`` or ``(..., 8, 8)``, levels in ``[0, 16]``.
        amount: The number of dilation steps (0 returns ``x`` unchanged).
        footprint: ``"cross"`` (4 neighbours) or ``"square"`` (8 neighbours).
        drop: The level :math:`\delta \ge 0` lost by ink that spreads one pixel.

    Returns:
        A tensor of ``x``'s shape, dtype and device, ``>= x`` everywhere.

    Example:
        >>> x = torch.zeros(8, 8)
        >>> x[4, 4] = 16.0
        >>> thicken_digits(x)[3:6, 3:6]
        tensor([[ 0., 12.,  0.],
                [12., 16., 12.],
                [ 0., 12.,  0.]])
    """
    images, _ = _as_images(x, "thicken_digits")
    amount = check_integer("amount", amount, low=0)
    if footprint not in ("cross", "square"):
        raise ValueError(f"thicken_digits: footprint must be 'cross' or 'square', got {footprint!r}")
    drop = check_number("drop", drop, zero=True)
    h, w = DIGITS_SHAPE
    shifts = [(-1, 0), (1, 0), (0, -1), (0, 1)]
    if footprint == "square":
        shifts += [(-1, -1), (-1, 1), (1, -1), (1, 1)]
    out = images
    for _ in range(amount):
        padded = F.pad(out, (1, 1, 1, 1), value=-float("inf"))
        neighbours = torch.stack([padded[..., 1 + i : 1 + i + h, 1 + j : 1 + j + w] for i, j in shifts]).amax(0)
        out = torch.maximum(out, neighbours - drop).clamp(0.0, _TOP)
    return out.reshape(x.shape)


def _binned(values: Tensor, edges: tuple[float, float]) -> Tensor:
    return torch.bucketize(values, torch.tensor(edges, dtype=values.dtype, device=values.device), right=True)


def stroke_thickness(x: Tensor, bins: bool = False) -> Tensor:
    r"""The stroke width of digits, in pixels: twice the ink over the total variation.

    A stroke of width :math:`w` and length :math:`L \gg w` has area :math:`wL`
    and perimeter about :math:`2L`, so :math:`w \approx 2 \cdot \text{area} /
    \text{perimeter}`. On grey levels the area is the ink :math:`\sum_p x(p)` and
    the perimeter the (anisotropic) total variation
    :math:`\sum |x(p) - x(p')|` over horizontally and vertically adjacent pixels,
    the image padded by zeros:

    .. math:: t(x) = \frac{2 \sum_p x(p)}{\sum_{p \sim p'} |x(p) - x(p')|}.

    The ratio does not depend on the digit's length or size, nor on the scale of
    the levels; a blank image has thickness 0. On the training split it ranges
    over 0.89..2.26 with terciles :data:`THICKNESS_TERCILES`; ones are mostly
    "thick" (92% of them: their bar is drawn 2-3 pixels wide), and
    :func:`thicken_digits` raises it for every digit.

    Arguments:
        x: Digits, ``(..., 64)`` or ``(..., 8, 8)``, levels in ``[0, 16]``.
        bins: Return the bin (0, 1, 2 for :data:`THICKNESS_BINS` "thin", "regular",
            "thick": below the first tercile, between, from the second tercile up) instead.

    Returns:
        A tensor of shape ``x.shape[:-1]`` (rows) or ``x.shape[:-2]`` (images): the thickness in ``x``'s dtype,
        or ``torch.long`` bins.

    Example:
        >>> bar = torch.zeros(8, 8)
        >>> bar[1:7, 3:5] = 16.0  # a vertical bar 2 pixels wide and 6 long
        >>> stroke_thickness(bar)
        tensor(1.5000)
    """
    images, _ = _as_images(x, "stroke_thickness")
    padded = F.pad(images, (1, 1, 1, 1))
    tv = (padded[..., 1:, :] - padded[..., :-1, :]).abs().sum((-2, -1))
    tv = tv + (padded[..., :, 1:] - padded[..., :, :-1]).abs().sum((-2, -1))
    ink = images.sum((-2, -1))
    values = torch.where(tv > 0, 2 * ink / tv.clamp_min(torch.finfo(tv.dtype).tiny), torch.zeros_like(ink))
    return _binned(values, THICKNESS_TERCILES) if bins else values


def slant(x: Tensor, bins: bool = False) -> Tensor:
    r"""The slant of digits: the shear :math:`\mu_{11} / \mu_{02}` of their second-order central moments.

    With :math:`u` the column and :math:`v` the height of a pixel (rows counted
    upwards), the ink :math:`x(p)` as weights and :math:`(\bar u, \bar v)` the
    centre of mass,

    .. math:: s(x) = \frac{\mu_{11}}{\mu_{02}} = \frac{\sum_p x(p) (u_p - \bar u)(v_p - \bar v)}
        {\sum_p x(p) (v_p - \bar v)^2},

    the horizontal shift of the ink per pixel of height (the shear that deskewing
    undoes): positive when the top leans right, as in "/". An image with no
    vertical spread (blank, or ink in one row) has slant 0. On the training split
    the terciles are :data:`SLANT_TERCILES`; sevens are mostly "right" (97%) and
    sixes mostly "left" (93%).

    Arguments:
        x: Digits, ``(..., 64)`` or ``(..., 8, 8)``, levels in ``[0, 16]``.
        bins: Return the bin (0, 1, 2 for :data:`SLANT_BINS` "left", "upright", "right") instead.

    Returns:
        A tensor of shape ``x.shape[:-1]`` (rows) or ``x.shape[:-2]`` (images): the slant in ``x``'s dtype,
        or ``torch.long`` bins.

    Example:
        >>> line = torch.zeros(8, 8)
        >>> line[[6, 5, 4, 3, 2], [2, 3, 4, 5, 6]] = 16.0  # "/" from the lower left up to the right
        >>> slant(line), slant(line, bins=True)
        (tensor(1.), tensor(2))
    """
    images, _ = _as_images(x, "slant")
    h, w = DIGITS_SHAPE
    v = (h - 1 - torch.arange(h, dtype=images.dtype, device=images.device)).unsqueeze(-1)  # height, upwards
    u = torch.arange(w, dtype=images.dtype, device=images.device)
    ink = images.sum((-2, -1), keepdim=True)
    safe = ink.clamp_min(torch.finfo(images.dtype).tiny)
    du = u - (images * u).sum((-2, -1), keepdim=True) / safe
    dv = v - (images * v).sum((-2, -1), keepdim=True) / safe
    mu11 = (images * du * dv).sum((-2, -1))
    mu02 = (images * dv.square()).sum((-2, -1))
    values = torch.where(mu02 > 0, mu11 / mu02.clamp_min(torch.finfo(mu02.dtype).tiny), torch.zeros_like(mu11))
    return _binned(values, SLANT_TERCILES) if bins else values


def digit_captions(x: Tensor, y: Tensor | Sequence[int]) -> list[str]:
    r"""Captions of digits from their class and attribute bins: "a {thickness} {class} {slant}".

    The thickness is one of :data:`THICKNESS_BINS`, the class one of
    :data:`DIGIT_NAMES`, the slant "slanted left", "upright" or "slanted right"
    (:func:`slant`'s bins); every word is in :data:`CAPTION_VOCAB`.

    Arguments:
        x: ``N`` digits, ``(N, 64)`` or ``(N, 8, 8)``, levels in ``[0, 16]``.
        y: Their classes 0..9, an integer tensor or sequence of length ``N``.

    Returns:
        ``N`` captions.

    Example:
        >>> bar = torch.zeros(1, 8, 8)
        >>> bar[0, 1:7, 3:5] = 16.0
        >>> digit_captions(bar, [1])
        ['a thick one upright']
    """
    images, batch = _as_images(x, "digit_captions")
    if len(batch) != 1:
        raise ValueError(f"digit_captions: `x` must be a batch of digits (N, 64) or (N, 8, 8), got {tuple(x.shape)}")
    labels = y if isinstance(y, Tensor) else torch.as_tensor(list(y), dtype=torch.long)
    if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
        raise TypeError(f"digit_captions: `y` must hold integer classes 0..9, got dtype {labels.dtype}")
    if labels.shape != batch:
        raise ValueError(
            f"digit_captions: `y` must have shape ({batch[0]},), one class per digit, got {tuple(labels.shape)}"
        )
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) > 9):
        low, high = int(labels.min()), int(labels.max())
        raise ValueError(f"digit_captions: `y` must hold classes 0..9, got values in [{low}, {high}]")
    thick = stroke_thickness(images, bins=True).tolist()
    lean = slant(images, bins=True).tolist()
    return [
        f"a {THICKNESS_BINS[t]} {DIGIT_NAMES[k]} {_SLANT_WORDS[s]}" for t, k, s in zip(thick, labels.tolist(), lean)
    ]


def tokenize(captions: str | Sequence[str], max_len: int | None = None) -> Tensor:
    r"""Word indices of captions in :data:`CAPTION_VOCAB`, padded with 0 to a common length.

    Words are split on white space and lower-cased.

    Arguments:
        captions: A caption, or a sequence of ``N`` captions.
        max_len: The length ``L`` of the rows (default: the longest caption's number of words).

    Returns:
        A ``torch.long`` tensor of shape ``(N, L)`` (``N = 1`` for a single caption).

    Raises:
        ValueError: For a word outside the vocabulary (naming every such word), an empty caption, or a caption
            longer than ``max_len``.

    Example:
        >>> tokenize(["a thin two upright", "a thick seven slanted right"])
        tensor([[ 1,  2,  7, 18,  0],
                [ 1,  4, 12, 15, 17]])
    """
    if isinstance(captions, str):
        captions = [captions]
    if not isinstance(captions, Sequence):
        got = type(captions).__name__
        raise TypeError(f"tokenize: `captions` must be a string or a sequence of strings, got {got}")
    words = []
    for i, caption in enumerate(captions):
        if not isinstance(caption, str):
            raise TypeError(f"tokenize: `captions[{i}]` must be a string, got {type(caption).__name__}")
        split = caption.lower().split()
        if not split:
            raise ValueError(f"tokenize: `captions[{i}]` is empty; a caption needs at least one word")
        words.append(split)
    unknown = sorted({w for split in words for w in split if w not in _TOKENS})
    if unknown:
        raise ValueError(
            f"tokenize: unknown words {unknown} in `captions`; the vocabulary (CAPTION_VOCAB) is "
            f"{', '.join(CAPTION_VOCAB[1:])}"
        )
    longest = max((len(split) for split in words), default=0)
    if max_len is None:
        max_len = longest
    else:
        max_len = check_integer("max_len", max_len)
        if longest > max_len:
            raise ValueError(f"tokenize: a caption has {longest} words, more than max_len={max_len}")
    out = torch.zeros(len(words), max_len, dtype=torch.long)
    for i, split in enumerate(words):
        out[i, : len(split)] = torch.tensor([_TOKENS[w] for w in split], dtype=torch.long)
    return out


def detokenize(tokens: Tensor) -> list[str]:
    r"""The captions of rows of word indices (the inverse of :func:`tokenize`; padding 0 is dropped).

    Arguments:
        tokens: An integer tensor ``(N, L)`` of indices into :data:`CAPTION_VOCAB`.

    Returns:
        ``N`` captions.

    Example:
        >>> detokenize(tokenize("a regular eight slanted left"))
        ['a regular eight slanted left']
    """
    if not isinstance(tokens, Tensor) or tokens.dtype.is_floating_point or tokens.dtype == torch.bool:
        got = tokens.dtype if isinstance(tokens, Tensor) else type(tokens).__name__
        raise TypeError(f"detokenize: `tokens` must be an integer tensor, got {got}")
    if tokens.dim() != 2:
        raise ValueError(f"detokenize: `tokens` must have shape (N, L), got {tuple(tokens.shape)}")
    if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= len(CAPTION_VOCAB)):
        raise ValueError(
            f"detokenize: `tokens` must be indices 0..{len(CAPTION_VOCAB) - 1} of CAPTION_VOCAB, got values in "
            f"[{int(tokens.min())}, {int(tokens.max())}]"
        )
    return [" ".join(CAPTION_VOCAB[t] for t in row if t > 0) for row in tokens.tolist()]


def _halves(n: int, seed: int) -> tuple[Tensor, Tensor]:
    r"""Two disjoint index sets of size ``n // 2``: a random permutation of ``range(n)`` cut in two."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    half = n // 2
    return perm[:half], perm[half : 2 * half]


def digit_pairs(
    split: Split = "train",
    kind: Literal["thicken", "invert"] = "thicken",
    labels: bool = False,
    *,
    unpaired: bool = False,
    amount: int = 1,
    seed: int = 0,
) -> tuple[Tensor, ...]:
    r"""Source and target digits for translation: a split of the 8x8 digits and their transformed copies.

    Paired (the default), the ``i``-th target is the ``i``-th source
    transformed: :func:`thicken_digits` (``amount`` steps) or
    :func:`invert_digits`. Unpaired, the split is cut in two disjoint halves by a
    permutation drawn from ``seed`` (``torch.randperm`` of a generator seeded
    with it; an odd split drops its last image): the sources are the first half's
    images and the targets the transformed images of the second half, so no
    image is on both sides and no pair is aligned.

    Arguments:
        split: ``"train"``, ``"valid"``, ``"test"`` or ``"all"`` (see :func:`~gendist.data.load_digits`).
        kind: ``"thicken"`` or ``"invert"``.
        labels: Also return the classes 0..9 (``torch.long``).
        unpaired: Draw sources and targets from disjoint halves.
        amount: The dilation steps of ``kind="thicken"``.
        seed: The seed of the halves of ``unpaired=True``.

    Returns:
        ``(source, target)``, float tensors ``(N, 64)`` of levels in ``[0, 16]`` in torch's default dtype; with
        ``labels``, ``(source, target, y)`` paired, or ``(source, target, y_source, y_target)`` unpaired.
        Paired, ``N`` is the split's size; unpaired, half of it.

    Example:
        >>> source, target = digit_pairs("test", kind="invert")  # doctest: +SKIP
        >>> source.shape, bool((target == 16 - source).all())  # doctest: +SKIP
        (torch.Size([300, 64]), True)
    """
    if kind not in ("thicken", "invert"):
        raise ValueError(f"digit_pairs: kind must be 'thicken' or 'invert', got {kind!r}")
    for name, flag in (("labels", labels), ("unpaired", unpaired)):
        if not isinstance(flag, bool):
            raise TypeError(f"digit_pairs: {name} must be True or False, got {flag!r}")
    amount = check_integer("amount", amount, low=0)
    if kind == "invert" and amount != 1:
        raise ValueError(f"digit_pairs: amount is the number of dilation steps of kind='thicken', got {amount} "
                         f"with kind='invert'")
    seed = check_integer("seed", seed, low=0)
    x, y = load_digits(split, labels=True)

    def transform(images: Tensor) -> Tensor:
        return thicken_digits(images, amount) if kind == "thicken" else invert_digits(images)

    if not unpaired:
        return (x, transform(x), y) if labels else (x, transform(x))
    first, second = _halves(len(x), seed)
    source, target = x[first], transform(x[second])
    return (source, target, y[first], y[second]) if labels else (source, target)
